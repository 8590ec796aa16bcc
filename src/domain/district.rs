//! The district's own identity settings in plain Rust (issue 16, item 7; SPEC §1): its
//! external ID, the SIS district code a user file's school column gives for central-office
//! staff (eChalk's `school_district_external_id`, seed 002).

/// Longest external ID (as for schools).
pub const MAX_EXTERNAL_ID: usize = 100;

/// The external ID typed on Settings, checked: blank clears it (`None`); otherwise trimmed,
/// at most [`MAX_EXTERNAL_ID`] characters, without the `;` and `,` that separate schools in
/// a file's cell, and not one of the district's schools' IDs (case-insensitive), since a
/// file row's school column must name one or the other.
pub fn check_external_id(raw: &str, school_ids: &[String]) -> Result<Option<String>, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Ok(None);
    }
    if id.chars().count() > MAX_EXTERNAL_ID {
        return Err(format!(
            "the district's external ID is longer than {MAX_EXTERNAL_ID} characters"
        ));
    }
    if id.contains([';', ',']) || id.chars().any(char::is_control) {
        return Err(
            "the district's external ID cannot hold ; or , (they separate schools in a file)"
                .into(),
        );
    }
    let folded = id.to_lowercase();
    if let Some(school) = school_ids.iter().find(|s| s.to_lowercase() == folded) {
        return Err(format!(
            "\"{school}\" is already a school's external ID; the district's must differ from every school's"
        ));
    }
    Ok(Some(id.to_string()))
}

/// Whether a file's school cell value names the district itself (case-insensitive, as
/// school IDs are matched when unambiguous).
pub fn is_district(value: &str, district_id: Option<&str>) -> bool {
    district_id.is_some_and(|d| d == value || d.to_lowercase() == value.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_trimmed_checked_and_blank_clears() {
        let schools = vec!["S1".to_string(), "North-HS".to_string()];
        assert_eq!(check_external_id("  ", &schools), Ok(None));
        assert_eq!(
            check_external_id(" D-100 ", &schools),
            Ok(Some("D-100".into()))
        );
        assert!(
            check_external_id("north-hs", &schools)
                .unwrap_err()
                .contains("North-HS")
        );
        assert!(check_external_id("D1;D2", &schools).is_err());
        assert!(check_external_id(&"x".repeat(101), &schools).is_err());
        assert_eq!(
            check_external_id(&"é".repeat(100), &schools),
            Ok(Some("é".repeat(100)))
        );
    }

    #[test]
    fn the_district_is_named_in_any_case() {
        assert!(is_district("D-100", Some("D-100")));
        assert!(is_district("d-100", Some("D-100")));
        assert!(!is_district("D-10", Some("D-100")));
        assert!(!is_district("D-100", None));
    }
}
