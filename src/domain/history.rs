//! The upload history's filters and page cursor (item 6 of issue 14). Plain Rust.

use super::{RunKind, RunStatus};
use uuid::Uuid;

/// The statuses a run can be in, as the history filter offers them: (stored word, label),
/// from `RunStatus`.
pub const STATUSES: [(&str, &str); RunStatus::ALL.len()] = {
    let mut out = [("", ""); RunStatus::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = (RunStatus::ALL[i].as_str(), RunStatus::ALL[i].label());
        i += 1;
    }
    out
};

/// The ways a run comes in, as the filter offers them (an undo is not one).
const KIND_FILTER: [RunKind; 5] = [
    RunKind::Upload,
    RunKind::Api,
    RunKind::Drop,
    RunKind::Cli,
    RunKind::Sync,
];

/// (stored word, label) of each [`KIND_FILTER`] kind, from `RunKind`.
pub const KINDS: [(&str, &str); KIND_FILTER.len()] = {
    let mut out = [("", ""); KIND_FILTER.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = (KIND_FILTER[i].as_str(), KIND_FILTER[i].label());
        i += 1;
    }
    out
};

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
