//! Generated usernames: `first.last`, then `first.last2`, `first.last3`…
//!
//! The stem is `domain::username`'s, the one rule for every way in (lower-case ASCII,
//! names transliterated: `Nguyễn` → `nguyen`); this module only numbers them.

use std::collections::HashMap;

pub(super) use crate::domain::username::base;

/// Remembers, per base, the next suffix to try, so a thousand `john.smith`s cost a thousand
/// probes in all rather than half a million.
#[derive(Default)]
pub(super) struct Generator {
    next: HashMap<String, u32>,
}

impl Generator {
    /// The first free candidate for this base; `taken` answers for a lower-case candidate.
    pub(super) fn generate(&mut self, base: String, taken: impl Fn(&str) -> bool) -> String {
        let n = self.next.entry(base.clone()).or_insert(1);
        loop {
            let candidate = crate::domain::username::numbered(&base, *n as usize);
            *n += 1;
            if !taken(&candidate) {
                return candidate;
            }
        }
    }
}
