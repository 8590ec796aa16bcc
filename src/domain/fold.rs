//! Folding text for search: lower-case, accents taken off, and the letters that carry no
//! accent mark but read as plain Latin ones spelled out (`Æ` → `ae`, `ø` → `o`, `ß` → `ss`),
//! so that `jose garcia` finds "José García" and `José García` finds "Jose Garcia".
//!
//! One rule, in two places that must agree: [`fold`] here folds what a person types, and
//! PostgreSQL's `search_fold()` (migration 0023) folds the stored `users.search_text` the
//! Users screen's search (the trigram index, the name-order walk and the in-memory index of
//! `crate::search`) reads. Both do the same steps in the same order: lower-case each
//! character, decompose (Unicode NFD), drop the combining marks U+0300–U+036F, then spell out
//! the letters of [`SPELLED`]. An integration test (`tests/it/search_fold.rs`) runs both
//! over a list of names and whole Unicode blocks and requires the same text.
//!
//! German umlauts fold like every other accent (`ü` → `u`): `muller` and `müller` find
//! "Müller", `mueller` finds only users spelled "Mueller" (as the generated usernames, made
//! with the same reading by `deunicode`, spell him `muller`).

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// Lower-case a value that compares case-insensitively (an email, a username), borrowing
/// when it already is. Not the search fold: accents are kept.
pub fn fold_case(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A fixed-size key for an identifier value as duplicate detection and the planner compare
/// it (give it folded where the value compares case-insensitively): equal values give equal
/// keys, in every process (SipHash with fixed keys); different values collide once in 2^64.
pub fn key_hash(value: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// The [`key_hash`] of a username (case-insensitive).
pub fn username_key(name: &str) -> u64 {
    key_hash(&fold_case(name))
}

/// Lower-case letters with no decomposition that read as plain Latin letters. Kept in step
/// with `search_fold()` in migration 0023 (its `translate` and `replace` calls).
pub const SPELLED: &[(char, &str)] = &[
    ('ø', "o"),
    ('đ', "d"),
    ('ð', "d"),
    ('ł', "l"),
    ('ħ', "h"),
    ('ı', "i"),
    ('ŧ', "t"),
    ('æ', "ae"),
    ('œ', "oe"),
    ('ß', "ss"),
    ('þ', "th"),
];

fn is_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036f}').contains(&c)
}

/// `text` folded for search: `"José GARCÍA"` → `"jose garcia"`, `"Nguyễn"` → `"nguyen"`,
/// `"Ægir Bjørn"` → `"aegir bjorn"`.
pub fn fold(text: &str) -> String {
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    let mut out = String::with_capacity(lower.len());
    for c in lower.nfd().filter(|c| !is_mark(*c)) {
        match SPELLED.iter().find(|(k, _)| *k == c) {
            Some((_, s)) => out.push_str(s),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn spanish_names_fold_both_ways() {
        assert_eq!(fold("José García"), "jose garcia");
        assert_eq!(fold("jose garcia"), "jose garcia");
        assert_eq!(fold("JOSÉ GARCÍA"), "jose garcia");
        assert_eq!(fold("María Muntz"), "maria muntz");
        assert_eq!(fold("Peña Núñez"), "pena nunez");
        // Precomposed and decomposed accents are one and the same.
        assert_eq!(fold("Jose\u{301}"), fold("José"));
    }

    #[test]
    fn vietnamese_names_lose_every_tone_and_vowel_mark() {
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("Trần Thị Hương"), "tran thi huong");
        assert_eq!(fold("Đặng Văn Lơ"), "dang van lo");
        assert_eq!(fold("Phạm Ưng"), "pham ung");
    }

    #[test]
    fn german_umlauts_fold_to_the_plain_vowel() {
        assert_eq!(fold("Müller"), "muller");
        assert_eq!(fold("müller"), "muller");
        assert_eq!(fold("MÜLLER"), "muller");
        // Decided: `ü` is `u`, not `ue`; "mueller" is another spelling.
        assert_ne!(fold("Müller"), fold("Mueller"));
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("STRAẞE"), "strasse");
    }

    #[test]
    fn nordic_and_other_letters_are_spelled_out() {
        assert_eq!(fold("Ægir"), "aegir");
        assert_eq!(fold("Bjørn Ødegård"), "bjorn odegard");
        assert_eq!(fold("Þórður"), "thordur");
        assert_eq!(fold("Łukasz Żółć"), "lukasz zolc");
        assert_eq!(fold("Œuvre"), "oeuvre");
        assert_eq!(fold("Işık"), "isik");
        assert_eq!(fold("İlker"), "ilker");
    }

    #[test]
    fn ascii_and_other_scripts_are_only_lower_cased() {
        assert_eq!(fold("O'Neil-Smith s0012@D.org"), "o'neil-smith s0012@d.org");
        assert_eq!(fold("李王"), "李王");
        assert_eq!(fold("Иван"), "иван");
        assert_eq!(fold(""), "");
    }
}
