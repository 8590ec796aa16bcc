//! Exact user counts for the Users screen, from the district's count groups
//! (`db::user_list::count_groups`, kept current by triggers on `users`): the district's
//! totals, and the count of any filter made of status, role, grade and source (the common
//! ones) without counting users. A search, a school or a school admin's scope needs the
//! users themselves: `exact` answers `None` and the listing counts (capped) instead.

use crate::db::user_filter::{StatusFilter, UserFilter};
use crate::db::user_list::CountGroup;
use crate::domain::UserStatus;

/// The district's users by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub active: i64,
    pub inactive: i64,
    pub archived: i64,
}

impl Totals {
    /// Everyone not archived (the default view).
    pub fn live(&self) -> i64 {
        self.active + self.inactive
    }

    pub fn all(&self) -> i64 {
        self.live() + self.archived
    }
}

pub fn totals(groups: &[CountGroup]) -> Totals {
    let mut t = Totals::default();
    for g in groups {
        match (g.archived, g.status) {
            (true, _) => t.archived += g.n,
            (false, UserStatus::Active) => t.active += g.n,
            (false, UserStatus::Inactive) => t.inactive += g.n,
        }
    }
    t
}

/// Whether `exact` can count this filter.
pub fn countable(filter: &UserFilter) -> bool {
    filter.search_term().is_none() && filter.school.is_none()
}

fn selects(filter: &UserFilter, g: &CountGroup) -> bool {
    let status = match filter.status {
        StatusFilter::Live => !g.archived,
        StatusFilter::Active => !g.archived && g.status == UserStatus::Active,
        StatusFilter::Inactive => !g.archived && g.status == UserStatus::Inactive,
        StatusFilter::Archived => g.archived,
    };
    // The grade filter selects students of that grade (`UserFilter`'s SQL: role Student and
    // the same grade rank, that is the same canonical grade).
    status
        && filter.role.as_ref().is_none_or(|r| *r == g.role)
        && filter
            .grade
            .as_ref()
            .is_none_or(|gr| g.role == "Student" && *gr == g.grade)
        && filter.source.as_ref().is_none_or(|s| *s == g.source)
}

/// How many users `filter` selects, exactly; `None` for a filter the groups cannot answer
/// (a search, a school).
pub fn exact(groups: &[CountGroup], filter: &UserFilter) -> Option<i64> {
    countable(filter).then(|| {
        groups
            .iter()
            .filter(|g| selects(filter, g))
            .map(|g| g.n)
            .sum()
    })
}

/// "Page N of M": how many pages of `per` hold `count` users (at least one).
pub fn pages(count: i64, per: i64) -> i64 {
    ((count + per - 1) / per.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(
        role: &str,
        grade: &str,
        source: &str,
        status: &str,
        archived: bool,
        n: i64,
    ) -> CountGroup {
        CountGroup {
            role: role.into(),
            grade: grade.into(),
            source: source.into(),
            status: UserStatus::from_text(status).unwrap(),
            archived,
            n,
        }
    }

    fn groups() -> Vec<CountGroup> {
        vec![
            g("Student", "5", "file:a", "active", false, 100),
            g("Student", "5", "file:a", "inactive", false, 7),
            g("Student", "6", "sync:x", "active", false, 50),
            g("Student", "5", "file:a", "active", true, 3),
            g("Teacher", "Unspecified", "manual", "active", false, 9),
            g("Teacher", "5", "manual", "active", false, 1),
        ]
    }

    #[test]
    fn totals_split_by_state() {
        let t = totals(&groups());
        assert_eq!(
            t,
            Totals {
                active: 160,
                inactive: 7,
                archived: 3
            }
        );
        assert_eq!(t.live(), 167);
        assert_eq!(t.all(), 170);
    }

    #[test]
    fn common_filters_are_summed_as_the_sql_selects() {
        let gs = groups();
        let f =
            |status, role: Option<&str>, grade: Option<&str>, source: Option<&str>| UserFilter {
                status,
                role: role.map(Into::into),
                grade: grade.map(Into::into),
                source: source.map(Into::into),
                ..Default::default()
            };
        assert_eq!(
            exact(&gs, &f(StatusFilter::Live, None, None, None)),
            Some(167)
        );
        assert_eq!(
            exact(&gs, &f(StatusFilter::Active, None, None, None)),
            Some(160)
        );
        assert_eq!(
            exact(&gs, &f(StatusFilter::Inactive, None, None, None)),
            Some(7)
        );
        assert_eq!(
            exact(&gs, &f(StatusFilter::Archived, None, None, None)),
            Some(3)
        );
        assert_eq!(
            exact(&gs, &f(StatusFilter::Live, Some("Teacher"), None, None)),
            Some(10)
        );
        // A teacher's grade is no grade filter's business.
        assert_eq!(
            exact(&gs, &f(StatusFilter::Live, None, Some("5"), None)),
            Some(107)
        );
        assert_eq!(
            exact(&gs, &f(StatusFilter::Live, None, None, Some("sync:x"))),
            Some(50)
        );
        assert_eq!(
            exact(
                &gs,
                &f(
                    StatusFilter::Active,
                    Some("Student"),
                    Some("5"),
                    Some("file:a")
                )
            ),
            Some(100)
        );
    }

    #[test]
    fn searches_and_schools_are_not_counted_here() {
        let gs = groups();
        let searched = UserFilter {
            q: Some("ana".into()),
            ..Default::default()
        };
        assert_eq!(exact(&gs, &searched), None);
        let school = UserFilter {
            school: Some(crate::db::user_filter::SchoolFilter::School(
                uuid::Uuid::nil(),
            )),
            ..Default::default()
        };
        assert_eq!(exact(&gs, &school), None);
    }

    #[test]
    fn pages_round_up() {
        assert_eq!(pages(0, 50), 1);
        assert_eq!(pages(50, 50), 1);
        assert_eq!(pages(51, 50), 2);
        assert_eq!(pages(1_000_000, 50), 20_000);
    }
}
