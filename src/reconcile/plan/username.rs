//! Generated usernames: `first.last`, then `first.last2`, `first.last3`…
//!
//! Lower-case ASCII only: simple accented letters fold to their base letter (é → e, ß → ss),
//! every other character outside `[a-z0-9]` is dropped; nothing left gives `user`.

use std::collections::HashMap;

/// Letters that fold to plain ASCII (after lower-casing). Anything else non-ASCII is dropped.
#[rustfmt::skip]
const FOLDS: &[(char, &str)] = &[
    ('à', "a"), ('á', "a"), ('â', "a"), ('ã', "a"), ('ä', "a"), ('å', "a"), ('ā', "a"),
    ('ă', "a"), ('ą', "a"), ('æ', "ae"), ('ç', "c"), ('ć', "c"), ('č', "c"), ('ď', "d"),
    ('đ', "d"), ('ð', "d"), ('è', "e"), ('é', "e"), ('ê', "e"), ('ë', "e"), ('ē', "e"),
    ('ė', "e"), ('ę', "e"), ('ě', "e"), ('ğ', "g"), ('ì', "i"), ('í', "i"), ('î', "i"),
    ('ï', "i"), ('ī', "i"), ('į', "i"), ('ı', "i"), ('ł', "l"), ('ľ', "l"), ('ñ', "n"),
    ('ń', "n"), ('ň', "n"), ('ò', "o"), ('ó', "o"), ('ô', "o"), ('õ', "o"), ('ö', "o"),
    ('ø', "o"), ('ō', "o"), ('ő', "o"), ('œ', "oe"), ('ř', "r"), ('ś', "s"), ('š', "s"),
    ('ş', "s"), ('ș', "s"), ('ß', "ss"), ('ť', "t"), ('ț', "t"), ('þ', "th"), ('ù', "u"),
    ('ú', "u"), ('û', "u"), ('ü', "u"), ('ū', "u"), ('ů', "u"), ('ű', "u"), ('ų', "u"),
    ('ý', "y"), ('ÿ', "y"), ('ź', "z"), ('ż', "z"), ('ž', "z"),
];

/// One name part as username material: `"Zoë-Ann O'Brien"` → `"zoeannobrien"`.
pub(super) fn slug(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if let Some((_, folded)) = FOLDS.iter().find(|(k, _)| *k == c) {
            out.push_str(folded);
        }
    }
    out
}

/// `first.last`; one part alone when the other is empty; `user` when both are.
pub(super) fn base(first: &str, last: &str) -> String {
    let (f, l) = (slug(first), slug(last));
    match (f.is_empty(), l.is_empty()) {
        (false, false) => format!("{f}.{l}"),
        (false, true) => f,
        (true, false) => l,
        (true, true) => "user".to_string(),
    }
}

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
            let candidate = if *n == 1 {
                base.clone()
            } else {
                format!("{base}{n}")
            };
            *n += 1;
            if !taken(&candidate) {
                return candidate;
            }
        }
    }
}
