//! Times and dates on screens, in one place: every page shows instants in UTC in one of two
//! precisions, and reads a filter's or a form's day as `YYYY-MM-DD`.

use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// `2026-09-01 07:30 UTC`: when something was made, changed or is due.
pub fn minute(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// `2026-09-01 07:30:05 UTC`, or `—` for none: when a run or an entry happened.
pub fn second(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.to_offset(UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
    })
    .unwrap_or_else(|| "—".into())
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
}
