//! The Users screen's filters, shared by the list, the master CSV and the API.

use crate::domain::UserStatus;
use crate::domain::fold::fold;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// The searchable text of a user: name, email, username and custom ID, folded (lower-case,
/// no accents: `search_fold()`, a stored generated column of migration 0023, the same rule
/// as `domain::fold::fold`, which folds the term), under the trigram index `users_search_trgm_idx` and
/// carried by the name-order index `users_list_name_idx`.
pub const SEARCH_EXPR: &str = "u.search_text";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatusFilter {
    /// Active and inactive (not archived): the default view and the master CSV.
    #[default]
    Live,
    Active,
    Inactive,
    Archived,
}

impl StatusFilter {
    pub fn parse(s: &str) -> StatusFilter {
        let s = s.to_ascii_lowercase();
        match UserStatus::from_text(&s) {
            Some(UserStatus::Active) => StatusFilter::Active,
            Some(UserStatus::Inactive) => StatusFilter::Inactive,
            None if s == "archived" => StatusFilter::Archived,
            None => StatusFilter::Live,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Live => "",
            StatusFilter::Active => "active",
            StatusFilter::Inactive => "inactive",
            StatusFilter::Archived => "archived",
        }
    }
}

/// The School filter: one school, or the district office (issue 16, item 7: users with no
/// school, the district-level staff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchoolFilter {
    School(Uuid),
    DistrictOffice,
}

impl SchoolFilter {
    /// The query value that selects the district office.
    pub const DISTRICT_OFFICE: &'static str = "district";

    /// A `school` query value: a school's id, or `district`; anything else selects nothing.
    pub fn parse(s: &str) -> Option<SchoolFilter> {
        if s == Self::DISTRICT_OFFICE {
            return Some(SchoolFilter::DistrictOffice);
        }
        Uuid::parse_str(s).ok().map(SchoolFilter::School)
    }

    pub fn as_query(self) -> String {
        match self {
            SchoolFilter::School(id) => id.to_string(),
            SchoolFilter::DistrictOffice => Self::DISTRICT_OFFICE.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserFilter {
    pub q: Option<String>,
    pub status: StatusFilter,
    pub role: Option<String>,
    pub school: Option<SchoolFilter>,
    pub grade: Option<String>,
    pub source: Option<String>,
}

impl UserFilter {
    /// Append `AND …` conditions for alias `u` (the caller has already filtered on
    /// `u.district_id`). `scope` is a school admin's schools.
    pub fn push_conditions(&self, qb: &mut QueryBuilder<'_, Postgres>, scope: Option<&[Uuid]>) {
        self.push_conditions_but_search(qb, scope);
        self.push_search(qb);
    }

    /// The search term's condition (`AND search_text LIKE '%term%'`, the term folded as the
    /// text is), if there is a term.
    pub fn push_search(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        if let Some(needle) = self.search_needle() {
            qb.push(" AND ")
                .push(SEARCH_EXPR)
                .push(" LIKE ")
                .push_bind(like_pattern(&needle));
        }
    }

    /// The search term folded as the search text is (`domain::fold`): what is looked for.
    pub fn search_needle(&self) -> Option<String> {
        self.search_term().map(fold)
    }

    /// The search box's text, trimmed; `None` when there is nothing to search for.
    pub fn search_term(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// Every condition but the search term's.
    pub fn push_conditions_but_search(
        &self,
        qb: &mut QueryBuilder<'_, Postgres>,
        scope: Option<&[Uuid]>,
    ) {
        match self.status {
            StatusFilter::Live => qb.push(" AND u.archived_at IS NULL"),
            StatusFilter::Active => qb.push(" AND u.archived_at IS NULL AND u.status = 'active'"),
            StatusFilter::Inactive => {
                qb.push(" AND u.archived_at IS NULL AND u.status = 'inactive'")
            }
            StatusFilter::Archived => qb.push(" AND u.archived_at IS NOT NULL"),
        };
        if let Some(role) = &self.role {
            qb.push(" AND u.role = ").push_bind(role.clone());
        }
        if let Some(grade) = &self.grade {
            qb.push(" AND u.role = 'Student' AND grade_rank(u.grade) = grade_rank(")
                .push_bind(grade.clone())
                .push(")");
        }
        if let Some(source) = &self.source {
            qb.push(" AND u.source = ").push_bind(source.clone());
        }
        match self.school {
            Some(SchoolFilter::School(school)) => {
                qb.push(" AND EXISTS (SELECT 1 FROM user_schools f WHERE f.district_id = u.district_id AND f.user_id = u.id AND f.school_id = ")
                    .push_bind(school)
                    .push(")");
            }
            Some(SchoolFilter::DistrictOffice) => {
                qb.push(" AND NOT EXISTS (SELECT 1 FROM user_schools f WHERE f.district_id = u.district_id AND f.user_id = u.id)");
            }
            None => {}
        }
        if let Some(schools) = scope {
            qb.push(" AND EXISTS (SELECT 1 FROM user_schools s WHERE s.district_id = u.district_id AND s.user_id = u.id AND s.school_id = ANY(")
                .push_bind(schools.to_vec())
                .push("))");
        }
    }
}

/// `term` as a LIKE pattern matching it anywhere (its own `%`, `_` and `\\` taken literally).
pub fn like_pattern(term: &str) -> String {
    format!(
        "%{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Whether the trigram index can find `term`'s matches: pg_trgm takes trigrams from runs of
/// at least three letters or digits; a shorter term ("ab", "a.b") has none, and looking
/// its matches up means reading every user.
pub fn has_trigram(term: &str) -> bool {
    let mut run = 0;
    for c in term.chars() {
        run = if c.is_alphanumeric() { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("ander"), "%ander%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn trigram_terms_need_three_letters_or_digits_in_a_row() {
        assert!(has_trigram("smith"));
        assert!(has_trigram("s00"));
        assert!(has_trigram("a.bcd"));
        assert!(has_trigram("zoë"));
        assert!(!has_trigram("ab"));
        assert!(!has_trigram("a.b.c"));
        assert!(!has_trigram("@."));
    }

    #[test]
    fn the_school_filter_reads_a_school_or_the_district_office() {
        let id = Uuid::new_v4();
        assert_eq!(
            SchoolFilter::parse(&id.to_string()),
            Some(SchoolFilter::School(id))
        );
        assert_eq!(
            SchoolFilter::parse("district"),
            Some(SchoolFilter::DistrictOffice)
        );
        assert_eq!(SchoolFilter::parse("nonsense"), None);
        assert_eq!(SchoolFilter::DistrictOffice.as_query(), "district");
        let f = UserFilter {
            school: Some(SchoolFilter::DistrictOffice),
            ..Default::default()
        };
        let mut qb = QueryBuilder::new("SELECT 1 FROM users u WHERE true");
        f.push_conditions_but_search(&mut qb, None);
        assert!(
            qb.sql()
                .contains("AND NOT EXISTS (SELECT 1 FROM user_schools"),
            "{}",
            qb.sql()
        );
    }

    #[test]
    fn blank_searches_are_no_search() {
        let f = UserFilter {
            q: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(f.search_term(), None);
        let f = UserFilter {
            q: Some(" Ander ".into()),
            ..Default::default()
        };
        assert_eq!(f.search_term(), Some("Ander"));
    }

    #[test]
    fn the_needle_is_the_term_folded() {
        let f = UserFilter {
            q: Some(" José GARCÍA ".into()),
            ..Default::default()
        };
        assert_eq!(f.search_needle().as_deref(), Some("jose garcia"));
        let mut qb = QueryBuilder::new("SELECT 1 FROM users u WHERE true");
        f.push_search(&mut qb);
        assert!(
            qb.sql().ends_with("AND u.search_text LIKE $1"),
            "{}",
            qb.sql()
        );
    }
}
