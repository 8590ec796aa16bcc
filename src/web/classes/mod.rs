//! The admin's Classes screens (SPEC §6a): the list with its search, filters and keyset
//! pages, the class page with its roster, and the classes and enrollments downloads. A
//! school admin sees the classes of their schools only.

pub mod download;
pub mod lifecycle;
pub mod list;
pub mod show;

use crate::db::classes::{ClassFilter, ClassStatus, Key, Position};
use crate::web::error::AppResult;
use crate::web::keyset::{self, Start, given};
use serde::Deserialize;
use uuid::Uuid;

/// The query string of `/classes`, `/classes.csv` and `/enrollments.csv`. Empty values mean
/// "not given"; values that mean nothing (a malformed school id) are dropped.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    school: Option<String>,
    term: Option<String>,
    status: Option<String>,
    after: Option<String>,
    before: Option<String>,
    per: Option<String>,
}

/// The query, parsed.
struct Params {
    filter: ClassFilter,
    per: i64,
    position: Position,
}

impl Params {
    fn parse(q: &ListQuery) -> AppResult<Params> {
        let filter = ClassFilter {
            // No NUL byte reaches SQL (PostgreSQL text cannot hold one).
            q: given(&q.q)
                .map(|s| s.replace('\0', "").chars().take(200).collect::<String>())
                .filter(|s| !s.trim().is_empty()),
            school: given(&q.school).and_then(|s| Uuid::parse_str(s).ok()),
            term: given(&q.term).and_then(|s| Uuid::parse_str(s).ok()),
            status: given(&q.status)
                .and_then(ClassStatus::parse)
                .unwrap_or_default(),
        };
        let key = |b: &[u8]| {
            serde_json::from_slice::<Key>(b)
                .ok()
                .filter(|k| !k.title.contains('\0'))
        };
        let position = match keyset::start(&q.after, &q.before, key)? {
            Start::First => Position::First,
            Start::After(k) => Position::After(k),
            Start::Before(k) => Position::Before(k),
        };
        Ok(Params {
            filter,
            per: keyset::per(&q.per),
            position,
        })
    }

    /// The filter as query pairs (what the downloads and the page links carry).
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        let f = &self.filter;
        let mut pairs = Vec::new();
        if let Some(q) = &f.q {
            pairs.push(("q", q.clone()));
        }
        if let Some(s) = f.school {
            pairs.push(("school", s.to_string()));
        }
        if let Some(t) = f.term {
            pairs.push(("term", t.to_string()));
        }
        if f.status != ClassStatus::default() {
            pairs.push(("status", f.status.as_str().to_string()));
        }
        pairs
    }
}

fn encode_cursor(key: &Key) -> String {
    keyset::cursor(&serde_json::to_vec(key).unwrap_or_default())
}

/// "Ann Lee", or the username when a user has no name.
fn person_name(first: &str, last: &str, username: &str) -> String {
    crate::web::users::display_name(first, last, username)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_carry_the_filters_and_read_back_their_cursor() {
        let key = Key {
            title: "algebra i".into(),
            id: Uuid::new_v4(),
        };
        let q = ListQuery {
            q: Some(" lee ".into()),
            status: Some("Archived".into()),
            school: Some("not-a-uuid".into()),
            after: Some(encode_cursor(&key)),
            per: Some("5000".into()),
            ..Default::default()
        };
        let p = Params::parse(&q).unwrap();
        assert_eq!(p.position, Position::After(key));
        assert_eq!(p.per, keyset::MAX_PER_PAGE);
        assert_eq!(p.filter.school, None);
        assert_eq!(
            p.filter_pairs(),
            vec![("q", "lee".to_string()), ("status", "archived".to_string())]
        );
        let bad = ListQuery {
            before: Some("%%%".into()),
            ..Default::default()
        };
        assert!(Params::parse(&bad).is_err());
    }
}
