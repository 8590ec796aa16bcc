//! The Users screen's pages: keyset pagination over one index per sort order, and counts
//! that stop early. Never an OFFSET: a page costs the same at row 50 and at row 900,000.
//! A large district's search in name order may come from its in-memory index
//! (`crate::search`): the Users listing (`crate::user_listing`) asks it first and hands the
//! ids it found to `page_of_ids`; everything else is read here.

use super::user_filter::{SEARCH_EXPR, StatusFilter, UserFilter, has_trigram};
use crate::domain::{PortalRole, UserStatus};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder, Row};
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The sort orders of the Users screen. Each is a list of key expressions ending in a unique
/// one, matching an index of migration 0003 column for column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Name,
    Username,
    CustomId,
    Role,
    Grade,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Text,
    Int,
    Uuid,
    Time,
}

impl Sort {
    pub const ALL: [Sort; 6] = [
        Sort::Name,
        Sort::Username,
        Sort::CustomId,
        Sort::Role,
        Sort::Grade,
        Sort::Updated,
    ];

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Username => "username",
            Sort::CustomId => "custom_id",
            Sort::Role => "role",
            Sort::Grade => "grade",
            Sort::Updated => "updated",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "Name",
            Sort::Username => "Username",
            Sort::CustomId => "Custom ID",
            Sort::Role => "Role",
            Sort::Grade => "Grade",
            Sort::Updated => "Last changed",
        }
    }

    /// Newest first reads better for "last changed"; everything else A→Z.
    pub fn default_desc(self) -> bool {
        self == Sort::Updated
    }

    fn keys(self) -> &'static [(&'static str, KeyType)] {
        use KeyType::*;
        match self {
            Sort::Name => &[
                ("u.last_name", Text),
                ("u.first_name", Text),
                ("u.id", Uuid),
            ],
            // lower(username) is unique within a district (users_district_username_key).
            Sort::Username => &[("lower(u.username)", Text)],
            Sort::CustomId => &[("coalesce(u.custom_id, '')", Text), ("u.id", Uuid)],
            Sort::Role => &[
                ("u.role", Text),
                ("u.last_name", Text),
                ("u.first_name", Text),
                ("u.id", Uuid),
            ],
            Sort::Grade => &[
                ("grade_rank(u.grade)", Int),
                ("u.last_name", Text),
                ("u.first_name", Text),
                ("u.id", Uuid),
            ],
            Sort::Updated => &[("u.updated_at", Time), ("u.id", Uuid)],
        }
    }
}

/// Where a page starts: the first page, after a row's sort key (Next), or before one
/// (Previous). The key is the JSON array a row's `sort_key` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    First,
    After(Vec<Value>),
    Before(Vec<Value>),
}

/// A sort key value, checked against its expression's type before it reaches SQL.
#[derive(Clone)]
enum KeyValue {
    Text(String),
    Int(i32),
    Uuid(Uuid),
    Time(OffsetDateTime),
}

fn typed(keys: &[(&str, KeyType)], values: &[Value]) -> Option<Vec<KeyValue>> {
    if keys.len() != values.len() {
        return None;
    }
    keys.iter()
        .zip(values)
        .map(|((_, t), v)| match (t, v) {
            // (No sort key holds a NUL byte: PostgreSQL text cannot.)
            (KeyType::Text, Value::String(s)) if !s.contains('\0') => {
                Some(KeyValue::Text(s.clone()))
            }
            (KeyType::Int, Value::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(KeyValue::Int),
            (KeyType::Uuid, Value::String(s)) => Uuid::parse_str(s).ok().map(KeyValue::Uuid),
            (KeyType::Time, Value::String(s)) => {
                OffsetDateTime::parse(s, &Rfc3339).ok().map(KeyValue::Time)
            }
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub id: Uuid,
    pub custom_id: Option<String>,
    pub email: Option<String>,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub grade: String,
    pub status: UserStatus,
    pub archived_at: Option<OffsetDateTime>,
    pub source: String,
    pub portal_role: PortalRole,
    pub school_ids: Vec<Uuid>,
    /// This row's sort key as a JSON array, for the Next/Previous links.
    #[sqlx(skip)]
    pub sort_key: String,
}

/// A row's sort key (columns `k0`, `k1`, … after the id) as the JSON values a cursor
/// carries, each in the form `typed` reads back.
fn sort_key_values(keys: &[(&str, KeyType)], row: &PgRow) -> sqlx::Result<Vec<Value>> {
    keys.iter()
        .enumerate()
        .map(|(i, (_, t))| {
            let i = i + 1;
            Ok(match t {
                KeyType::Text => Value::String(row.try_get(i)?),
                KeyType::Int => Value::from(row.try_get::<i32, _>(i)?),
                KeyType::Uuid => Value::String(row.try_get::<Uuid, _>(i)?.to_string()),
                KeyType::Time => Value::String(
                    row.try_get::<OffsetDateTime, _>(i)?
                        .format(&Rfc3339)
                        .map_err(|e| sqlx::Error::Decode(e.into()))?,
                ),
            })
        })
        .collect()
}

/// How many entries of its sort order a search reads, looking for a page of matches, before
/// it looks the term up in the trigram index instead. Walking the order is the cheap way
/// for a term many users match ("ander": the first page within ~8,300 entries, 2 ms); but
/// a term whose matches sit far along the order ("williams", in name order) would walk most
/// of the district (~180 ms at 1,000,000 users) where the lookup fetches its ~4,300
/// matches and sorts them (~35 ms). The walk is index-only in name order
/// (`users_list_name_idx` carries the search text and the status, role and source filters),
/// and costs a table visit or a user_schools probe per entry otherwise.
const SEARCH_WALK_COVERED: i64 = 20_000;
const SEARCH_WALK_TABLE: i64 = 2_000;
/// A search known to match at most this many users looks them up and sorts them (an ID or an
/// email: well under a millisecond) rather than walking first.
pub const SEARCH_LOOKUP_MAX: i64 = 1_000;

/// The conditions of every step of a page: district, filters (without the search term) and
/// the cursor.
fn push_where(
    qb: &mut QueryBuilder<'_, Postgres>,
    district_id: Uuid,
    req: &PageRequest<'_>,
    after: Option<(&str, bool, Vec<KeyValue>)>,
) {
    qb.push(" FROM users u WHERE u.district_id = ")
        .push_bind(district_id);
    req.filter.push_conditions_but_search(qb, req.scope);
    if let Some((key_list, desc, values)) = after {
        qb.push(" AND (").push(key_list).push(") ");
        qb.push(if desc { "< (" } else { "> (" });
        let mut sep = qb.separated(", ");
        for v in values {
            match v {
                KeyValue::Text(s) => sep.push_bind(s),
                KeyValue::Int(n) => sep.push_bind(n),
                KeyValue::Uuid(u) => sep.push_bind(u),
                KeyValue::Time(t) => sep.push_bind(t),
            };
        }
        qb.push(")");
    }
}

/// One page of users and whether more exist beyond each end.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<ListRow>,
    pub has_prev: bool,
    pub has_next: bool,
    /// Whether the in-memory search index answered.
    pub from_index: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the page link does not fit this sort order")]
    BadCursor,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub struct PageRequest<'a> {
    pub filter: &'a UserFilter,
    /// A school admin's schools.
    pub scope: Option<&'a [Uuid]>,
    pub sort: Sort,
    pub desc: bool,
    pub position: &'a Position,
    pub limit: i64,
    /// How many users the search matches, if known (a remembered count, capped): few enough
    /// (`SEARCH_LOOKUP_MAX`) and the page looks them up at once instead of walking.
    pub search_matches: Option<i64>,
}

/// Where a page in name order starts, as the in-memory search index (`crate::search`) takes
/// it: after which user (the cursor's last key), and in which direction it reads (reading
/// backwards, for Previous, flips the order; `page_of_ids` flips the page back).
pub fn name_order_start(req: &PageRequest<'_>) -> Result<(Option<Uuid>, bool), PageError> {
    let keys = req.sort.keys();
    let (cursor, backwards) = match req.position {
        Position::First => (None, false),
        Position::After(k) => (Some(typed(keys, k).ok_or(PageError::BadCursor)?), false),
        Position::Before(k) => (Some(typed(keys, k).ok_or(PageError::BadCursor)?), true),
    };
    let after = match cursor.as_ref().and_then(|c| c.last()) {
        Some(KeyValue::Uuid(id)) => Some(*id),
        _ => None,
    };
    Ok((after, req.desc != backwards))
}

/// The page whose users (one more than the limit, if there are more) someone else found:
/// the in-memory search index. Their rows, in the order of `ids`.
pub async fn page_of_ids(
    conn: &mut PgConnection,
    district_id: Uuid,
    ids: &[Uuid],
    req: &PageRequest<'_>,
) -> sqlx::Result<Page> {
    let rows = rows_by_id(conn, district_id, ids, None).await?;
    Ok(finish(rows, req, true))
}

/// One page of the Users screen.
pub async fn page(
    conn: &mut PgConnection,
    district_id: Uuid,
    req: &PageRequest<'_>,
) -> Result<Page, PageError> {
    let keys = req.sort.keys();
    let (cursor, backwards) = match req.position {
        Position::First => (None, false),
        Position::After(k) => (Some(typed(keys, k).ok_or(PageError::BadCursor)?), false),
        Position::Before(k) => (Some(typed(keys, k).ok_or(PageError::BadCursor)?), true),
    };
    // Reading backwards (Previous) walks the index the other way and flips the page after.
    let desc = req.desc != backwards;
    let key_list = keys.iter().map(|(e, _)| *e).collect::<Vec<_>>().join(", ");

    let dir = if desc { " DESC" } else { "" };
    let order_by = keys
        .iter()
        .map(|(e, _)| format!("{e}{dir}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The same order over a subquery's columns k0, k1, …
    let outer_order_by = (0..keys.len())
        .map(|i| format!("k{i}{dir}"))
        .collect::<Vec<_>>()
        .join(", ");

    // Two steps. First the page's ids and sort keys, walking the sort order's index
    // (index-only when the filters are columns the index carries); this statement's shape
    // follows the filters, so it is planned for each request's values.
    let select_keys = |qb: &mut QueryBuilder<Postgres>| {
        for (i, (expr, _)) in keys.iter().enumerate() {
            qb.push(format_args!(", {expr} AS k{i}"));
        }
    };
    let after =
        |values: &Option<Vec<KeyValue>>| values.clone().map(|v| (key_list.as_str(), desc, v));
    let want = req.limit + 1;

    let found: Vec<PgRow> = match req.filter.search_needle() {
        // Known to match nobody: nothing to look for.
        Some(_) if req.search_matches == Some(0) => Vec::new(),
        Some(needle) if has_trigram(&needle) => {
            // A search. `lookup`: the first `n` matches after `from`, from a materialised set
            // (so PostgreSQL fetches them through the trigram index rather than walking the
            // order), sorted.
            let lookup = |from: Option<Vec<KeyValue>>, n: i64| {
                let mut qb: QueryBuilder<Postgres> =
                    QueryBuilder::new("WITH m AS MATERIALIZED (SELECT u.id");
                select_keys(&mut qb);
                push_where(
                    &mut qb,
                    district_id,
                    req,
                    from.map(|v| (key_list.as_str(), desc, v)),
                );
                req.filter.push_search(&mut qb);
                qb.push(") SELECT m.* FROM m ORDER BY ")
                    .push(&outer_order_by);
                qb.push(" LIMIT ").push_bind(n);
                qb
            };
            // Few matches: look them up at once. Many: read the order's first entries after
            // the cursor, keep those that match, and look up the rest beyond them.
            if req.search_matches.is_some_and(|n| n <= SEARCH_LOOKUP_MAX) {
                lookup(cursor.clone(), want)
                    .build()
                    .fetch_all(&mut *conn)
                    .await?
            } else {
                // Index-only only where `users_list_name_idx` carries every condition: name
                // order, not archived, no grade (computed from the table's column) and no
                // school (a school filter or a school admin's scope probes user_schools).
                let f = req.filter;
                let covered = req.sort == Sort::Name
                    && f.status != StatusFilter::Archived
                    && f.grade.is_none()
                    && f.school.is_none()
                    && req.scope.is_none();
                let walk = if covered {
                    SEARCH_WALK_COVERED
                } else {
                    SEARCH_WALK_TABLE
                };
                let mut qb: QueryBuilder<Postgres> =
                    QueryBuilder::new("SELECT w.* FROM (SELECT u.id");
                select_keys(&mut qb);
                qb.push(format_args!(", {SEARCH_EXPR} AS search_text"));
                push_where(&mut qb, district_id, req, after(&cursor));
                qb.push(" ORDER BY ").push(&order_by);
                qb.push(" LIMIT ").push_bind(walk);
                qb.push(") w WHERE strpos(w.search_text, ")
                    .push_bind(needle.clone())
                    .push(") > 0 ORDER BY ")
                    .push(&outer_order_by);
                qb.push(" LIMIT ").push_bind(want);
                let mut found = qb.build().fetch_all(&mut *conn).await?;
                if (found.len() as i64) < want {
                    // Where the walk stopped: its last entry, if it did not reach the end.
                    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT u.id");
                    select_keys(&mut qb);
                    push_where(&mut qb, district_id, req, after(&cursor));
                    qb.push(" ORDER BY ").push(&order_by);
                    qb.push(" OFFSET ").push_bind(walk - 1).push(" LIMIT 1");
                    if let Some(edge) = qb.build().fetch_optional(&mut *conn).await? {
                        // Our own row's key: it always fits its sort order.
                        let edge =
                            typed(keys, &sort_key_values(keys, &edge)?).ok_or_else(|| {
                                sqlx::Error::Protocol("a walked row's sort key did not fit".into())
                            })?;
                        let rest = want - found.len() as i64;
                        found.extend(
                            lookup(Some(edge), rest)
                                .build()
                                .fetch_all(&mut *conn)
                                .await?,
                        );
                    }
                }
                found
            }
        }
        _ => {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT u.id");
            select_keys(&mut qb);
            push_where(&mut qb, district_id, req, after(&cursor));
            // A search term too short for the trigram index: walking the order is the only way.
            req.filter.push_search(&mut qb);
            qb.push(" ORDER BY ").push(&order_by);
            qb.push(" LIMIT ").push_bind(want);
            qb.build().fetch_all(&mut *conn).await?
        }
    };
    let mut ids = Vec::with_capacity(found.len());
    let mut sort_keys = Vec::with_capacity(found.len());
    for row in &found {
        ids.push(row.try_get::<Uuid, _>(0)?);
        sort_keys.push(Value::Array(sort_key_values(keys, row)?).to_string());
    }
    let rows = rows_by_id(conn, district_id, &ids, Some(sort_keys)).await?;
    Ok(finish(rows, req, false))
}

/// The page's rows, by primary key, in the order of `ids`, each with its sort key (given, or
/// else its name-order key). One statement whatever the filters, so PostgreSQL keeps its plan
/// rather than planning it again for every page.
async fn rows_by_id(
    conn: &mut PgConnection,
    district_id: Uuid,
    ids: &[Uuid],
    sort_keys: Option<Vec<String>>,
) -> sqlx::Result<Vec<ListRow>> {
    let mut by_id: HashMap<Uuid, ListRow> = sqlx::query_as(
        "SELECT u.id, u.custom_id, u.email, u.username, u.first_name, u.last_name, u.role, u.grade,
                u.status, u.archived_at, u.source, u.portal_role,
                ARRAY(SELECT us.school_id FROM user_schools us
                      WHERE us.district_id = u.district_id AND us.user_id = u.id) AS school_ids
         FROM users u WHERE u.district_id = $1 AND u.id = ANY($2)",
    )
    .bind(district_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r: ListRow| (r.id, r))
    .collect();
    let mut sort_keys = sort_keys.map(Vec::into_iter);
    // In page order; a user deleted between the two statements is left out.
    Ok(ids
        .iter()
        .filter_map(|id| {
            let key = sort_keys.as_mut().and_then(Iterator::next);
            by_id.remove(id).map(|mut r| {
                r.sort_key = key.unwrap_or_else(|| {
                    Value::Array(vec![
                        Value::String(r.last_name.clone()),
                        Value::String(r.first_name.clone()),
                        Value::String(r.id.to_string()),
                    ])
                    .to_string()
                });
                r
            })
        })
        .collect())
}

/// The page from its rows (one more than the limit, if there are more).
fn finish(mut rows: Vec<ListRow>, req: &PageRequest<'_>, from_index: bool) -> Page {
    let more = rows.len() as i64 > req.limit;
    rows.truncate(req.limit as usize);
    let (has_prev, has_next) = match req.position {
        Position::First => (false, more),
        Position::After(_) => (true, more),
        Position::Before(_) => {
            rows.reverse();
            (more, true)
        }
    };
    Page {
        rows,
        has_prev,
        has_next,
        from_index,
    }
}

/// How many users the filter selects, counting no further than `cap` (a page shows
/// "10,000+" rather than scanning a million rows to say exactly how many).
pub async fn count_capped(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &UserFilter,
    scope: Option<&[Uuid]>,
    cap: i64,
) -> sqlx::Result<i64> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM users u WHERE u.district_id = ");
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, scope);
    qb.push(" LIMIT ").push_bind(cap + 1).push(") t");
    qb.build_query_scalar().fetch_one(db).await
}

/// The district's user sources (`manual`, `file:…`, `sync:…`), for the Source filter.
/// A loose index scan over `users_district_source_idx`: one probe per distinct source,
/// not a pass over every user.
pub async fn sources(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "WITH RECURSIVE s(source) AS (
             (SELECT source FROM users WHERE district_id = $1 ORDER BY source LIMIT 1)
             UNION ALL
             SELECT (SELECT u.source FROM users u WHERE u.district_id = $1 AND u.source > s.source
                     ORDER BY u.source LIMIT 1)
             FROM s WHERE s.source IS NOT NULL)
         SELECT source FROM s WHERE source IS NOT NULL LIMIT 200",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

/// What tells whether the district's users may have changed outside the Users screen: the
/// latest finish of its recent runs (uploads, syncs, imports), and whether one is applying
/// now. Read on every page view; it touches a handful of `runs` rows.
pub async fn change_marker(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<String> {
    let (finished, running): (Option<OffsetDateTime>, Option<bool>) = sqlx::query_as(
        "SELECT max(finished_at), bool_or(status = 'in_progress')
         FROM (SELECT finished_at, status FROM runs WHERE district_id = $1
               ORDER BY received_at DESC LIMIT 100) r",
    )
    .bind(district_id)
    .fetch_one(db)
    .await?;
    Ok(if running == Some(true) {
        // A run is applying: no remembered count can be trusted until it finishes.
        format!("running|{}", Uuid::new_v4())
    } else {
        format!("{finished:?}")
    })
}

/// One group of a district's users, as migration 0023's `user_count_deltas` sums them: how
/// many users have this role, grade, source, status and archived state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CountGroup {
    pub role: String,
    pub grade: String,
    pub source: String,
    pub status: UserStatus,
    pub archived: bool,
    pub n: i64,
}

/// A district holding more delta rows than this (beyond one per group) has them folded
/// into one row per group by the next reader.
const COMPACT_AFTER: i64 = 200;

/// The district's user counts by group (kept by triggers on `users`, migration 0023): a sum
/// over a few hundred rows at most, whatever the district's size. Past `COMPACT_AFTER`
/// surplus rows, they are folded first.
pub async fn count_groups(
    conn: &mut PgConnection,
    district_id: Uuid,
) -> sqlx::Result<Vec<CountGroup>> {
    let mut rows = read_count_groups(&mut *conn, district_id).await?;
    let stored: i64 = rows.iter().map(|r| r.6).sum();
    if stored - rows.len() as i64 > COMPACT_AFTER {
        compact_counts(&mut *conn, district_id).await?;
        rows = read_count_groups(&mut *conn, district_id).await?;
    }
    Ok(rows
        .into_iter()
        .filter(|r| r.5 != 0)
        .map(|(role, grade, source, status, archived, n, _)| CountGroup {
            role,
            grade,
            source,
            status,
            archived,
            n,
        })
        .collect())
}

type GroupRow = (String, String, String, UserStatus, bool, i64, i64);

/// The sums by group, and how many delta rows each sums.
async fn read_count_groups(
    conn: &mut PgConnection,
    district_id: Uuid,
) -> sqlx::Result<Vec<GroupRow>> {
    sqlx::query_as(
        "SELECT role, grade, source, status, archived, sum(n)::bigint, count(*)
         FROM user_count_deltas WHERE district_id = $1
         GROUP BY role, grade, source, status, archived",
    )
    .bind(district_id)
    .fetch_all(conn)
    .await
}

/// Fold a district's count deltas into one row per group, in one statement. Writers only
/// ever insert rows, so they never wait for this; two readers folding at once each fold the
/// rows they deleted (a row deleted by the other is skipped), so nothing counts twice.
pub async fn compact_counts(conn: &mut PgConnection, district_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "WITH gone AS (DELETE FROM user_count_deltas WHERE district_id = $1
                       RETURNING role, grade, source, status, archived, n)
         INSERT INTO user_count_deltas (district_id, role, grade, source, status, archived, n)
         SELECT $1, role, grade, source, status, archived, sum(n) FROM gone
         GROUP BY role, grade, source, status, archived HAVING sum(n) <> 0",
    )
    .bind(district_id)
    .execute(conn)
    .await?;
    Ok(())
}
