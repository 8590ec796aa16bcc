//! Keyset paging shared by the admin lists (Users, Classes): the `per`, `after` and `before`
//! query values, the opaque page cursors, and the First / Previous / Next links that carry
//! the list's other query pairs.
//!
//! A cursor is the page's first or last row key, base64url (no padding) of bytes the list
//! chooses (its sort key, JSON); a cursor that does not decode is a 400 telling the person
//! to start from the first page.

use crate::web::error::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Rows per page, unless `per` says otherwise (at most [`MAX_PER_PAGE`]).
pub const PER_PAGE: i64 = 50;
pub const MAX_PER_PAGE: i64 = 200;

/// A query value, trimmed; empty means not given.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The `per` value: a number, clamped to 1..=[`MAX_PER_PAGE`]; [`PER_PAGE`] otherwise.
pub fn per(v: &Option<String>) -> i64 {
    given(v)
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(PER_PAGE)
        .clamp(1, MAX_PER_PAGE)
}

/// Where a page starts: a list maps it onto its own position type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start<K> {
    First,
    After(K),
    Before(K),
}

/// The page's start from `after` (wins) or `before`; `key` reads a cursor's bytes (`None`:
/// not a key of this list).
pub fn start<K>(
    after: &Option<String>,
    before: &Option<String>,
    key: impl Fn(&[u8]) -> Option<K>,
) -> AppResult<Start<K>> {
    let cursor = |s: &str| -> AppResult<K> {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| key(&b))
            .ok_or_else(|| {
                AppError::BadRequest(
                    "this page link is not valid; start from the first page".into(),
                )
            })
    };
    Ok(match (given(after), given(before)) {
        (Some(a), _) => Start::After(cursor(a)?),
        (None, Some(b)) => Start::Before(cursor(b)?),
        (None, None) => Start::First,
    })
}

/// A cursor for a row key's bytes.
pub fn cursor(key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// `path`, with `pairs` as its query string when there are any.
pub fn url(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// A page's links.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Links {
    pub first: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// The links of a page of `path` whose query pairs (filters, sort, `per`) are `base`:
/// Previous `before` the page's first row's cursor, when there is a page before; Next
/// `after` its last row's, when there is one after; First when this page is not the first.
pub fn links(
    path: &str,
    base: &[(&'static str, String)],
    at_first: bool,
    prev: Option<String>,
    next: Option<String>,
) -> Links {
    let with = |extra: (&'static str, String)| {
        let mut p = base.to_vec();
        p.push(extra);
        url(path, &p)
    };
    Links {
        first: (!at_first).then(|| url(path, base)),
        prev: prev.map(|c| with(("before", c))),
        next: next.map(|c| with(("after", c))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_a_bad_one_is_a_400() {
        let c = cursor(b"[\"lee\",7]");
        let s = start(&Some(c.clone()), &Some("ignored".into()), |b| {
            serde_json::from_slice::<serde_json::Value>(b).ok()
        })
        .unwrap();
        assert_eq!(s, Start::After(serde_json::json!(["lee", 7])));
        let s = start(&None, &Some(c), |b| Some(b.to_vec())).unwrap();
        assert_eq!(s, Start::Before(b"[\"lee\",7]".to_vec()));
        assert_eq!(
            start(&Some(" ".into()), &None, |_| Some(())).unwrap(),
            Start::First
        );
        assert!(start(&Some("%%%".into()), &None, |_| Some(())).is_err());
        assert!(start(&None, &Some(cursor(b"x")), |_| None::<()>).is_err());
    }

    #[test]
    fn per_is_clamped_and_links_carry_the_query() {
        assert_eq!(per(&None), PER_PAGE);
        assert_eq!(per(&Some("5000".into())), MAX_PER_PAGE);
        assert_eq!(per(&Some("0".into())), 1);
        assert_eq!(per(&Some("ten".into())), PER_PAGE);
        let base = [("q", "a b".to_string())];
        let l = links("/classes", &base, false, Some("P".into()), None);
        assert_eq!(
            l,
            Links {
                first: Some("/classes?q=a+b".into()),
                prev: Some("/classes?q=a+b&before=P".into()),
                next: None,
            }
        );
        assert_eq!(links("/users", &[], true, None, None), Links::default());
        assert_eq!(url("/users", &[]), "/users");
    }
}
