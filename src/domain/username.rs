//! Generated usernames, the one rule for every way a user comes in (the add-user form, a
//! file, a roster sync): `first.last`, then `first.last2`, `first.last3`… in lower-case
//! ASCII letters and digits.
//!
//! Letters of the alphabetic scripts (Latin in all its extensions, Greek, Cyrillic) are
//! transliterated by the `deunicode` crate, so a name keeps its letters: `Nguyễn` → `nguyen`,
//! `Ægir` → `aegir`, `Łukasz` → `lukasz`, `Müller` → `muller`, `Straße` → `strasse`.
//! Characters of other scripts (`李`: its reading depends on the language) and everything
//! else outside `[a-z0-9]` (spaces, hyphens, apostrophes) are dropped; a name with nothing
//! left gives `user`. Only new users get a generated username: an existing user's username
//! never changes when this rule does.

/// Whether `c` belongs to a script whose letters are transliterated.
fn alphabetic_script(c: char) -> bool {
    matches!(c as u32,
        0x0000..=0x024F   // Basic Latin, Latin-1, Latin Extended-A and -B
        | 0x0250..=0x02AF // IPA extensions
        | 0x0370..=0x03FF // Greek
        | 0x0400..=0x052F // Cyrillic and its supplement
        | 0x1E00..=0x1EFF // Latin Extended Additional (Vietnamese)
        | 0x1F00..=0x1FFF // Greek Extended
        | 0x2C60..=0x2C7F // Latin Extended-C
        | 0xA720..=0xA7FF // Latin Extended-D
        | 0xAB30..=0xAB6F // Latin Extended-E
        | 0xFB00..=0xFB06 // Latin ligatures (ﬁ, ﬂ)
    )
}

/// One name part as username material: `"Zoë-Ann O'Brien"` → `"zoeannobrien"`.
pub fn part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Decomposed accents (e + U+0301) read as the precomposed letter.
    for c in unicode_normalization::UnicodeNormalization::nfc(s) {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            }
        } else if alphabetic_script(c)
            && let Some(t) = deunicode::deunicode_char(c)
        {
            out.extend(
                t.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase()),
            );
        }
    }
    out
}

/// The generated username's stem: `first.last`, or whichever part has letters, or `user`.
pub fn base(first: &str, last: &str) -> String {
    let (f, l) = (part(first), part(last));
    match (f.is_empty(), l.is_empty()) {
        (false, false) => format!("{f}.{l}"),
        (false, true) => f,
        (true, false) => l,
        (true, true) => "user".to_string(),
    }
}

/// The `n`th candidate of a stem: the stem itself for 1, then `stem2`, `stem3`, ….
pub fn numbered(base: &str, n: usize) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_letters() {
        assert_eq!(part("Nguyễn"), "nguyen");
        assert_eq!(part("Ægir"), "aegir");
        assert_eq!(part("Łukasz"), "lukasz");
        assert_eq!(part("Bjørn"), "bjorn");
        assert_eq!(part("Müller"), "muller");
        assert_eq!(part("Straße"), "strasse");
        assert_eq!(part("Þórður"), "thordur");
        assert_eq!(part("Đặng"), "dang");
        assert_eq!(part("Trần Thị Hương"), "tranthihuong");
        assert_eq!(part("José-María"), "josemaria");
        assert_eq!(part("Zoë-Ann O'Brien"), "zoeannobrien");
        assert_eq!(part("Jose\u{301}"), "jose");
        assert_eq!(part("Œuvre"), "oeuvre");
        assert_eq!(part("Işık"), "isik");
        assert_eq!(part("Σοφία"), "sophia");
        assert_eq!(part("Иван"), "ivan");
    }

    #[test]
    fn other_scripts_and_punctuation_give_nothing() {
        assert_eq!(part("李"), "");
        assert_eq!(part("-- '"), "");
        assert_eq!(part("😀"), "");
        assert_eq!(part(""), "");
    }

    #[test]
    fn stems_and_numbers() {
        assert_eq!(base("Ægir", "Nguyễn"), "aegir.nguyen");
        assert_eq!(base("Łukasz", "李"), "lukasz");
        assert_eq!(base("李", "Bjørn"), "bjorn");
        assert_eq!(base("李", "王"), "user");
        assert_eq!(numbered("ana.li", 1), "ana.li");
        assert_eq!(numbered("ana.li", 2), "ana.li2");
    }
}
