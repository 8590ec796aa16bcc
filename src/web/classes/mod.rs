//! The admin's Classes screens (SPEC §6a): the list with its search, filters and keyset
//! pages, the class page with its roster, and the classes and enrollments downloads. A
//! school admin sees the classes of their schools only.

pub mod download;
pub mod list;
pub mod show;

use crate::db::classes::{ClassFilter, ClassStatus, Key, Position};
use crate::web::error::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;

/// Classes per page, unless `per` says otherwise (at most `MAX_PER_PAGE`).
const PER_PAGE: i64 = 50;
const MAX_PER_PAGE: i64 = 200;

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

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
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
        let per = given(&q.per)
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(PER_PAGE)
            .clamp(1, MAX_PER_PAGE);
        let cursor = |s: &str| -> AppResult<Key> {
            URL_SAFE_NO_PAD
                .decode(s)
                .ok()
                .and_then(|b| serde_json::from_slice::<Key>(&b).ok())
                .filter(|k| !k.title.contains('\0'))
                .ok_or_else(|| {
                    AppError::BadRequest(
                        "this page link is not valid; start from the first page".into(),
                    )
                })
        };
        let position = match (given(&q.after), given(&q.before)) {
            (Some(a), _) => Position::After(cursor(a)?),
            (None, Some(b)) => Position::Before(cursor(b)?),
            (None, None) => Position::First,
        };
        Ok(Params {
            filter,
            per,
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

fn url(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

fn encode_cursor(key: &Key) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
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
        assert_eq!(p.per, MAX_PER_PAGE);
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
