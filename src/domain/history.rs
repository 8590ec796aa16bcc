//! The upload history's filters and page cursor (item 6 of issue 14). Plain Rust.

use uuid::Uuid;

/// The statuses a run can be in, as the history filter offers them.
pub const STATUSES: [(&str, &str); 8] = [
    ("needs_mapping", "Needs mapping"),
    ("queued", "Queued"),
    ("in_progress", "In progress"),
    ("completed", "Completed"),
    ("completed_with_errors", "Completed with errors"),
    ("needs_review", "Needs review"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
];

/// The ways a run comes in.
pub const KINDS: [(&str, &str); 5] = [
    ("upload", "Browser upload"),
    ("api", "API"),
    ("drop", "Drop folder"),
    ("cli", "Command line"),
    ("sync", "Sync"),
];

/// A known code of `table`, or `None`.
pub fn known(table: &[(&'static str, &'static str)], code: &str) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(c, _)| *c)
}

/// Where a history page ends: the last run's `received_at` (microseconds since the Unix
/// epoch) and id; the history is ordered by (received_at, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at_micros: i64,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at_micros, self.id.simple())
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (at, id) = s.split_once('_')?;
        Some(Cursor {
            at_micros: at.parse().ok()?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_garbage_is_refused() {
        let c = Cursor {
            at_micros: 1_790_000_000_123_456,
            id: Uuid::from_u128(0xfeed_beef),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in ["", "12", "x_0000", "12_nope", "12_"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_take_known_codes_only() {
        assert_eq!(known(&STATUSES, "needs_mapping"), Some("needs_mapping"));
        assert_eq!(known(&KINDS, "sync"), Some("sync"));
        assert_eq!(known(&KINDS, "ftp"), None);
        assert_eq!(known(&STATUSES, "Completed"), None);
    }
}
