//! Generated usernames: `first.last`, then `first.last2`, `first.last3`…
//!
//! The stem is `domain::username`'s, the one rule for every way in (lower-case ASCII,
//! names transliterated: `Nguyễn` → `nguyen`); this module only numbers them.

use std::collections::HashMap;

pub(super) use crate::domain::username::base;
use crate::domain::username::numbered;

/// Remembers, per base, the next suffix to try, so a thousand `john.smith`s cost a thousand
/// probes in all rather than half a million. That is also all it needs to know which names it
/// gave out, so the run keeps no list of them (a first import of a million users generates a
/// million; issue 19): every name it tried for a base is `numbered(base, n)` with `n` below
/// that base's next suffix.
#[derive(Default)]
pub(super) struct Generator {
    next: HashMap<String, u32>,
}

impl Generator {
    /// The first free candidate for this base; `taken` answers for a lower-case candidate
    /// (names held by users or by rows of the run); names this generator tried before, for
    /// any base, are never given again.
    pub(super) fn generate(&mut self, base: String, taken: impl Fn(&str) -> bool) -> String {
        let mut n = self.next.get(&base).copied().unwrap_or(1);
        let name = loop {
            let candidate = numbered(&base, n as usize);
            n += 1;
            if !taken(&candidate) && !self.tried(&candidate) {
                break candidate;
            }
        };
        self.next.insert(base, n);
        name
    }

    /// Every candidate [`Generator::generate`] would look at, giving one name for each of
    /// `bases` in turn, while `taken` answers as it will: the names to ask the database
    /// about before planning a window (`super::window`). Fewer or other rows creating users
    /// look at no name past these: each base's candidates are always the same sequence.
    pub(super) fn probe(&self, bases: &[String], taken: impl Fn(&str) -> bool) -> Vec<String> {
        let mut sim = Generator {
            next: HashMap::new(),
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for base in bases {
            let mut n = sim
                .next
                .get(base)
                .or_else(|| self.next.get(base))
                .copied()
                .unwrap_or(1);
            loop {
                let candidate = numbered(base, n as usize);
                n += 1;
                let free = !taken(&candidate) && !self.tried(&candidate) && !sim.tried(&candidate);
                if seen.insert(candidate.clone()) {
                    out.push(candidate);
                }
                if free {
                    break;
                }
            }
            sim.next.insert(base.clone(), n);
        }
        out
    }

    /// Was `name` tried for some base: is it `numbered(b, n)` for a base `b` whose next
    /// suffix is past `n`? A base other than the one being numbered can give the same name
    /// only when one of them ends in digits (`jo.sm` 12th and `jo.sm1` 2nd are `jo.sm12`),
    /// so the bases to ask are `name` itself and `name` without a trailing number.
    fn tried(&self, name: &str) -> bool {
        if self.next.get(name).is_some_and(|&next| next > 1) {
            return true;
        }
        let bytes = name.as_bytes();
        let mut at = name.len();
        while at > 0 && bytes[at - 1].is_ascii_digit() {
            at -= 1;
            let digits = &name[at..];
            if digits.starts_with('0') {
                continue;
            }
            let (Ok(n), Some(&next)) = (digits.parse::<u64>(), self.next.get(&name[..at])) else {
                continue;
            };
            if n >= 2 && n < u64::from(next) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &mut Generator, base: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| g.generate(base.to_string(), |_| false))
            .collect()
    }

    #[test]
    fn a_base_is_numbered_in_order_past_what_is_taken() {
        let mut g = Generator::default();
        assert_eq!(
            names(&mut g, "ann.lee", 3),
            ["ann.lee", "ann.lee2", "ann.lee3"]
        );
        let taken = |c: &str| c == "ann.lee4" || c == "bo.kim";
        assert_eq!(g.generate("ann.lee".into(), taken), "ann.lee5");
        assert_eq!(g.generate("bo.kim".into(), taken), "bo.kim2");
    }

    #[test]
    fn names_from_bases_ending_in_digits_never_repeat_another_base_s() {
        // `jo.sm` numbered to 12, then a `jo.sm1` (a name with a digit in it): its first
        // candidate `jo.sm1` was never given (`jo.sm` starts numbering at 2), its second,
        // `jo.sm12`, was.
        let mut g = Generator::default();
        let first = names(&mut g, "jo.sm", 12);
        assert_eq!(first.last().map(String::as_str), Some("jo.sm12"));
        assert_eq!(names(&mut g, "jo.sm1", 2), ["jo.sm1", "jo.sm13"]);
        // The other way round: `jo.sm2` given first, `jo.sm` skips it.
        let mut g = Generator::default();
        assert_eq!(names(&mut g, "jo.sm2", 1), ["jo.sm2"]);
        assert_eq!(names(&mut g, "jo.sm", 3), ["jo.sm", "jo.sm3", "jo.sm4"]);
        // A number with a leading zero is no suffix `numbered` makes.
        let mut g = Generator::default();
        names(&mut g, "x", 5);
        assert_eq!(names(&mut g, "x0", 2), ["x0", "x02"]);
        let mut all: Vec<String> = names(&mut g, "x", 3);
        all.extend(names(&mut g, "x1", 3));
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{all:?}");
    }
}
