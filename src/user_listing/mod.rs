//! The Users screen's listing, as data: how many users a filter selects (remembered, and
//! capped), one page of them, and what the filters offer (schools, sources, and the names of
//! sync connections that label sources). It chooses between a remembered count, the
//! in-memory search index (`crate::search`) and PostgreSQL (`db::user_list`); the web
//! handler (`web::users::list`) parses the query and builds the page from what it returns.

pub mod cache;
pub mod totals;

use crate::db;
use crate::db::user_filter::UserFilter;
use crate::db::user_list::{Page, PageError, PageRequest, Position, Sort};
use crate::search;
use cache::{CountKey, FilterOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// What to list.
pub struct Request<'a> {
    pub district_id: Uuid,
    /// A school admin's schools; `None` for a district admin.
    pub scope: Option<&'a [Uuid]>,
    pub filter: &'a UserFilter,
    pub sort: Sort,
    pub desc: bool,
    pub position: &'a Position,
    pub per: i64,
}

/// One page of the Users screen, as data.
pub struct Listing {
    /// How many users the filter selects, counted no further than just past `cap`.
    pub count: i64,
    /// Where counting stops: more than this reads "10,000+".
    pub cap: i64,
    /// Whether `count` is exact (from the district's count groups, `totals`), never capped.
    pub exact: bool,
    /// The district's totals by state, for a district admin (`None` for a school admin).
    pub totals: Option<totals::Totals>,
    pub page: Page,
    /// The choices of the School and Source filters.
    pub options: Arc<FilterOptions>,
    /// The district's sync connections by id (`db::syncs::names`), naming sources.
    pub sync_names: HashMap<Uuid, String>,
}

/// The listing. `PageError::BadCursor`: the page link does not fit the sort order.
pub async fn listing(
    pool: &PgPool,
    index: &search::Registry,
    req: &Request<'_>,
) -> Result<Listing, PageError> {
    let district_id = req.district_id;
    // One pooled connection for the page's statements: the pool checks a connection each
    // time it takes one back, a round trip of its own.
    let mut conn = pool.acquire().await?;
    // The count first (remembered, and capped): a search that matches few users is looked up
    // at once rather than walked.
    let count_key = CountKey {
        scope: req.scope.map(<[Uuid]>::to_vec),
        filter: req.filter.clone(),
    };
    let cap = if req.filter.q.is_some() {
        cache::SEARCH_CAP
    } else {
        cache::CAP
    };
    let marker = db::user_list::change_marker(&mut *conn, district_id).await?;
    // A large district's search is answered from its in-memory index, if no change to its
    // users has committed since the index was read (count and page both).
    let current = match req.filter.search_term() {
        Some(term) if search::serves(req.filter, req.scope, req.sort) => {
            index.current(pool, &mut conn, district_id, term).await?
        }
        _ => None,
    };
    // A district admin's totals, and the exact count of a filter of status, role, grade and
    // source: from the count groups the triggers on `users` keep (a few hundred rows).
    let (district_totals, exact) = if req.scope.is_none() {
        let groups = db::user_list::count_groups(&mut conn, district_id).await?;
        (
            Some(totals::totals(&groups)),
            totals::exact(&groups, req.filter),
        )
    } else {
        (None, None)
    };
    let count = match (
        exact,
        cache::count(district_id, &count_key, &marker),
        &current,
    ) {
        (Some(n), _, _) => n,
        (None, Some(n), _) => n,
        (None, None, Some(c)) => {
            let n = c
                .index
                .count(&c.needle, search::which(req.filter.status), cap as usize)
                as i64;
            cache::put_count(district_id, &count_key, &marker, n);
            n
        }
        (None, None, None) => {
            let n =
                db::user_list::count_capped(&mut *conn, district_id, req.filter, req.scope, cap)
                    .await?;
            cache::put_count(district_id, &count_key, &marker, n);
            n
        }
    };
    let page_req = PageRequest {
        filter: req.filter,
        scope: req.scope,
        sort: req.sort,
        desc: req.desc,
        position: req.position,
        limit: req.per,
        search_matches: req.filter.search_term().map(|_| count),
    };
    let mut from_index = None;
    if let Some(c) = &current
        && count != 0
    {
        let (after, desc) = db::user_list::name_order_start(&page_req)?;
        let query = search::Query {
            needle: &c.needle,
            which: search::which(req.filter.status),
            after,
            desc,
            want: (req.per + 1) as usize,
        };
        if let Some(ids) = c.index.find(&query) {
            from_index =
                Some(db::user_list::page_of_ids(&mut conn, district_id, &ids, &page_req).await?);
        }
    }
    let page = match from_index {
        Some(page) => {
            index.note_served();
            page
        }
        None => db::user_list::page(&mut conn, district_id, &page_req).await?,
    };
    let options = match cache::options(district_id, req.scope, &marker) {
        Some(o) => o,
        None => {
            let o = Arc::new(FilterOptions {
                schools: db::schools::options(&mut *conn, district_id, req.scope).await?,
                sources: db::user_list::sources(&mut *conn, district_id).await?,
            });
            cache::put_options(district_id, req.scope, &marker, o.clone());
            o
        }
    };
    let sync_names = db::syncs::names(&mut *conn, district_id).await?;
    Ok(Listing {
        count,
        cap,
        exact: exact.is_some(),
        totals: district_totals,
        page,
        options,
        sync_names,
    })
}
