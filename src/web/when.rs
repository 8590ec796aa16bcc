//! Times and dates on screens, in one place: every page shows instants in its district's
//! time zone (Settings; UTC by default) in one of two precisions, downloads carry ISO 8601
//! with the offset, and a filter's or a form's day is read as `YYYY-MM-DD`.
//!
//! The zone is the request's: [`request_zone`] (a layer around every page) opens a slot for
//! it, and the signed-in person's extractor fills it with their district's zone
//! ([`use_zone`], read with the person on every request, no extra query). So
//! [`minute`] and [`second`] need no zone argument and every page (templates included)
//! reads the same zone. Work that leaves the request's task (a streamed download's producer)
//! takes [`zone`] with it and uses the `_in` forms.

use crate::domain::zone::Zone;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::cell::RefCell;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

tokio::task_local! {
    static ZONE: RefCell<Zone>;
}

/// The layer that gives each page request its zone slot (UTC until a district's person is
/// read).
pub async fn request_zone(req: Request, next: Next) -> Response {
    ZONE.scope(RefCell::new(Zone::utc()), next.run(req)).await
}

/// The signed-in person's district zone, for the rest of this request. Outside a request
/// (background work, tests) it does nothing.
pub fn use_zone(name: &str) {
    let _ = ZONE.try_with(|z| {
        if z.borrow().name() != name {
            *z.borrow_mut() = Zone::or_utc(name);
        }
    });
}

/// This request's zone (UTC outside a request, or before anyone is signed in).
pub fn zone() -> Zone {
    ZONE.try_with(|z| z.borrow().clone())
        .unwrap_or_else(|_| Zone::utc())
}

/// `2026-09-01 07:30 UTC` (`2026-09-01 02:30 CDT` in Chicago): when something was made,
/// changed or is due.
pub fn minute(t: OffsetDateTime) -> String {
    minute_in(&zone(), t)
}

/// [`minute`] in a given zone.
pub fn minute_in(zone: &Zone, t: OffsetDateTime) -> String {
    let (local, abbr) = zone.local(t);
    local
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .map(|s| format!("{s} {abbr}"))
        .unwrap_or_default()
}

/// `2026-09-01 07:30:05 UTC`, or `—` for none: when a run or an entry happened.
pub fn second(t: Option<OffsetDateTime>) -> String {
    second_in(&zone(), t)
}

/// [`second`] in a given zone.
pub fn second_in(zone: &Zone, t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        let (local, abbr) = zone.local(t);
        local
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .map(|s| format!("{s} {abbr}"))
            .ok()
    })
    .unwrap_or_else(|| "—".into())
}

/// `2026-09-01`: the day `t` falls on in this request's zone.
pub fn day(t: OffsetDateTime) -> String {
    day_in(&zone(), t)
}

/// [`day`] in a given zone.
pub fn day_in(zone: &Zone, t: OffsetDateTime) -> String {
    zone.local(t).0.date().to_string()
}

/// `2026-09-01T02:30:05-05:00`: an instant in a download (ISO 8601 / RFC 3339, with the
/// zone's offset at that instant; `Z` for UTC).
pub fn iso_in(zone: &Zone, t: OffsetDateTime) -> String {
    zone.local(t).0.format(&Rfc3339).unwrap_or_default()
}

/// A day written `YYYY-MM-DD` (filters, a pause's end).
pub fn parse_day(raw: &str) -> Option<Date> {
    Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_read_in_utc_and_days_parse() {
        let t = datetime!(2026-09-01 09:30:05 +02:00);
        assert_eq!(minute(t), "2026-09-01 07:30 UTC");
        assert_eq!(second(Some(t)), "2026-09-01 07:30:05 UTC");
        assert_eq!(second(None), "—");
        assert_eq!(
            parse_day("2026-09-01"),
            Some(time::macros::date!(2026 - 09 - 01))
        );
        assert_eq!(parse_day("1 Sept"), None);
    }

    #[test]
    fn a_district_zone_reads_local_time_and_offsets() {
        let chicago = Zone::parse("America/Chicago").unwrap();
        let summer = datetime!(2026-07-01 03:30:05 UTC);
        assert_eq!(minute_in(&chicago, summer), "2026-06-30 22:30 CDT");
        assert_eq!(second_in(&chicago, Some(summer)), "2026-06-30 22:30:05 CDT");
        assert_eq!(day_in(&chicago, summer), "2026-06-30");
        assert_eq!(iso_in(&chicago, summer), "2026-06-30T22:30:05-05:00");
        let winter = datetime!(2026-12-01 15:00 UTC);
        assert_eq!(iso_in(&chicago, winter), "2026-12-01T09:00:00-06:00");
        assert_eq!(iso_in(&Zone::utc(), winter), "2026-12-01T15:00:00Z");
    }

    #[tokio::test]
    async fn the_request_zone_is_set_once_per_request_and_utc_outside() {
        let t = datetime!(2026-07-01 15:30 UTC);
        let inside = ZONE
            .scope(RefCell::new(Zone::utc()), async move {
                let before = minute(t);
                use_zone("America/Chicago");
                (before, minute(t), zone().name().to_string())
            })
            .await;
        assert_eq!(
            inside,
            (
                "2026-07-01 15:30 UTC".to_string(),
                "2026-07-01 10:30 CDT".to_string(),
                "America/Chicago".to_string()
            )
        );
        use_zone("America/Chicago");
        assert_eq!(minute(t), "2026-07-01 15:30 UTC", "no request, no zone");
    }
}
