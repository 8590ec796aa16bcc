//! A district's time zone (issue 16, item 10): an IANA name (`America/Chicago`), and
//! instants read in it, daylight saving time included. The zone data is bundled into the
//! binary (`jiff`'s copy of the IANA database), so a server without `/usr/share/zoneinfo`
//! reads times the same way.

use jiff::tz::TimeZone;
use time::{OffsetDateTime, UtcOffset};

/// A time zone by its IANA name. `UTC` unless a district chose another.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// The zone an IANA name names (any case, spaces around ignored), in its canonical
    /// spelling; `None` for a name the database does not know or a fixed offset (`+05:00`,
    /// which has no daylight saving time and is not a place).
    pub fn parse(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().any(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let tz = TimeZone::get(name).ok()?;
        let canonical = tz.iana_name()?.to_string();
        Some(Zone {
            name: canonical,
            tz,
        })
    }

    /// A stored name, or UTC when it no longer names a zone.
    pub fn or_utc(name: &str) -> Zone {
        Zone::parse(name).unwrap_or_else(Zone::utc)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_utc(&self) -> bool {
        self.name == "UTC"
    }

    /// `t` as the district's clocks show it, with the zone's abbreviation at that instant
    /// (`CDT`, `CST`, `UTC`; some zones have only a numeric one such as `+03`).
    pub fn local(&self, t: OffsetDateTime) -> (OffsetDateTime, String) {
        let Ok(ts) = jiff::Timestamp::from_second(t.unix_timestamp()) else {
            return (t.to_offset(UtcOffset::UTC), "UTC".into());
        };
        let info = self.tz.to_offset_info(ts);
        let offset =
            UtcOffset::from_whole_seconds(info.offset().seconds()).unwrap_or(UtcOffset::UTC);
        (t.to_offset(offset), info.abbreviation().to_string())
    }

    /// Every zone name the settings page offers, sorted: the bundled database's names
    /// (`Etc/…` and the like included, as IANA lists them).
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_string())
            .filter(|n| n.contains('/') || n == "UTC")
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_parse_to_their_canonical_spelling() {
        assert_eq!(
            Zone::parse("America/Chicago").unwrap().name(),
            "America/Chicago"
        );
        assert_eq!(
            Zone::parse(" america/chicago ").unwrap().name(),
            "America/Chicago"
        );
        assert_eq!(Zone::parse("UTC").unwrap().name(), "UTC");
        assert!(Zone::parse("Mars/Olympus_Mons").is_none());
        assert!(Zone::parse("").is_none());
        assert!(Zone::parse("+05:00").is_none());
        assert!(Zone::or_utc("nowhere").is_utc());
    }

    #[test]
    fn chicago_moves_with_daylight_saving_time() {
        let z = Zone::parse("America/Chicago").unwrap();
        // Summer: CDT, five hours behind UTC.
        let (t, abbr) = z.local(datetime!(2026-07-01 15:30 UTC));
        assert_eq!(
            (t, abbr.as_str()),
            (datetime!(2026-07-01 10:30 -05:00), "CDT")
        );
        // Winter: CST, six hours behind.
        let (t, abbr) = z.local(datetime!(2026-01-15 15:30 UTC));
        assert_eq!(
            (t, abbr.as_str()),
            (datetime!(2026-01-15 09:30 -06:00), "CST")
        );
        // The spring-forward night: 07:59 UTC is 01:59 CST, 08:00 UTC is 03:00 CDT.
        assert_eq!(z.local(datetime!(2026-03-08 07:59 UTC)).0.hour(), 1);
        assert_eq!(z.local(datetime!(2026-03-08 08:00 UTC)).0.hour(), 3);
        // Late evening in Chicago is already tomorrow in UTC.
        let (t, _) = z.local(datetime!(2026-09-02 03:00 UTC));
        assert_eq!(t.date(), time::macros::date!(2026 - 09 - 01));
    }

    #[test]
    fn utc_stays_utc_and_the_list_has_the_us_zones() {
        let (t, abbr) = Zone::utc().local(datetime!(2026-09-01 09:30 +02:00));
        assert_eq!((t, abbr.as_str()), (datetime!(2026-09-01 07:30 UTC), "UTC"));
        let names = Zone::names();
        for n in [
            "UTC",
            "America/Chicago",
            "America/New_York",
            "Pacific/Honolulu",
        ] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }
}
