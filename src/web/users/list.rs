//! `GET /users` (search, filters, sorting, keyset pages) and `GET /users.csv` (the master
//! CSV, streamed, with the same filters).

use super::{Opt, display_name, source_label, thousands};
use crate::db;
use crate::db::user_filter::{SchoolFilter, StatusFilter, UserFilter};
use crate::db::user_list::{PageError, Position, Sort};
use crate::domain::{Grade, PortalRole, Role, UserStatus};
use crate::reconcile::report::{MASTER_HEADER, master_record};
use crate::user_listing::{self, Listing};
use crate::web::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::keyset::{self, PER_PAGE, Start, given, url};
use crate::web::page::{Chrome, chrome, render};
use crate::web::session::DistrictScope;
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

/// The query string of `/users` and `/users.csv`. Empty values mean "not given".
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    role: Option<String>,
    school: Option<String>,
    grade: Option<String>,
    source: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    before: Option<String>,
    per: Option<String>,
    /// The page's number, carried by the Next and Previous links ("page N of M").
    page: Option<String>,
}

/// Free text that reaches SQL (the search term, a source): without NUL bytes, which no
/// PostgreSQL text can hold (a query carrying one fails); empty once they are gone: not given.
fn given_text(v: &Option<String>) -> Option<String> {
    let text = v.as_deref()?.replace('\0', "");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The query, parsed: values that mean nothing (an unknown role, a malformed school id) are
/// dropped rather than answered with an error page.
struct Params {
    filter: UserFilter,
    sort: Sort,
    desc: bool,
    per: i64,
    position: Position,
    /// The page number the link that led here carried; 1 on the first page.
    page_no: Option<i64>,
}

impl Params {
    fn parse(q: &ListQuery) -> AppResult<Params> {
        let filter = UserFilter {
            q: given_text(&q.q).map(|s| s.chars().take(200).collect()),
            status: given(&q.status)
                .map(StatusFilter::parse)
                .unwrap_or_default(),
            role: given(&q.role)
                .and_then(Role::parse)
                .map(|r| r.as_str().to_string()),
            school: given(&q.school).and_then(SchoolFilter::parse),
            grade: given(&q.grade)
                .and_then(Grade::parse)
                .map(|g| g.as_str().to_string()),
            source: given_text(&q.source),
        };
        let sort = given(&q.sort).and_then(Sort::parse).unwrap_or_default();
        let desc = match given(&q.dir) {
            Some("desc") => true,
            Some("asc") => false,
            _ => sort.default_desc(),
        };
        let per = keyset::per(&q.per);
        let key = |b: &[u8]| serde_json::from_slice::<Vec<serde_json::Value>>(b).ok();
        let position = match keyset::start(&q.after, &q.before, key)? {
            Start::First => Position::First,
            Start::After(k) => Position::After(k),
            Start::Before(k) => Position::Before(k),
        };
        let page_no = match position {
            Position::First => Some(1),
            _ => given(&q.page)
                .and_then(|p| p.parse::<i64>().ok())
                .filter(|p| *p >= 1),
        };
        Ok(Params {
            filter,
            sort,
            desc,
            per,
            position,
            page_no,
        })
    }

    /// The filter as query pairs (what "Download filtered" and the page links carry).
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        let f = &self.filter;
        let mut pairs = Vec::new();
        if let Some(q) = &f.q {
            pairs.push(("q", q.clone()));
        }
        if f.status != StatusFilter::Live {
            pairs.push(("status", f.status.as_str().to_string()));
        }
        if let Some(r) = &f.role {
            pairs.push(("role", r.clone()));
        }
        if let Some(s) = f.school {
            pairs.push(("school", s.as_query()));
        }
        if let Some(g) = &f.grade {
            pairs.push(("grade", g.clone()));
        }
        if let Some(s) = &f.source {
            pairs.push(("source", s.clone()));
        }
        pairs
    }

    fn sort_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.sort != Sort::default() {
            pairs.push(("sort", self.sort.as_str().to_string()));
        }
        if self.desc != self.sort.default_desc() {
            pairs.push(("dir", if self.desc { "desc" } else { "asc" }.to_string()));
        }
        if self.per != PER_PAGE {
            pairs.push(("per", self.per.to_string()));
        }
        pairs
    }
}

/// The list's search and filters from query pairs (the bulk actions' "all matching" carries
/// the list's own filter fields).
pub(crate) fn filter_of(pairs: &[(String, String)]) -> AppResult<UserFilter> {
    let query: ListQuery = serde_urlencoded::from_str(
        &serde_urlencoded::to_string(pairs).map_err(|e| AppError::BadRequest(e.to_string()))?,
    )
    .map_err(|e| AppError::BadRequest(e.to_string()))?;
    Ok(Params::parse(&query)?.filter)
}

/// How the list names users with no school, and the School filter that selects them.
pub const DISTRICT_OFFICE: &str = "District office";

fn encode_cursor(sort_key: &str) -> String {
    keyset::cursor(sort_key.as_bytes())
}

pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub username: String,
    pub email: String,
    pub custom_id: String,
    pub role: String,
    pub admin_badge: &'static str,
    pub schools: String,
    pub grade: String,
    /// `active`, `inactive` or `archived`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub source: String,
    /// What the status mark's form sets (`inactive` for an active user); empty when the mark
    /// is not a button (archived users, or an admin account a school admin cannot change).
    pub toggle_to: &'static str,
    pub confirm: String,
}

pub struct SortHead {
    pub href: String,
    pub label: &'static str,
    pub mark: &'static str,
    pub aria: &'static str,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    q: String,
    status_opts: Vec<Opt>,
    role_opts: Vec<Opt>,
    school_opts: Vec<Opt>,
    grade_opts: Vec<Opt>,
    source_opts: Vec<Opt>,
    sort_opts: Vec<Opt>,
    rows: Vec<Row>,
    count_label: String,
    /// The district's totals (district admins): "of 12,345 in the district: …".
    totals_label: Option<String>,
    /// "Page 3 of 250" (or "250 pages" when the page's number is not known).
    position_label: Option<String>,
    filtered: bool,
    archived_view: bool,
    csv_href: String,
    csv_filtered_href: String,
    clear_href: String,
    first_href: Option<String>,
    prev_href: Option<String>,
    next_href: Option<String>,
    back: String,
    h_name: SortHead,
    h_username: SortHead,
    h_custom_id: SortHead,
    h_role: SortHead,
    h_grade: SortHead,
    per: i64,
    bulk: super::bulk_bar::BulkBar,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    scope: DistrictScope,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let params = Params::parse(&query)?;
    let filter_pairs = params.filter_pairs();
    let request = user_listing::Request {
        district_id: scope.district_id,
        scope: scope.schools.as_deref(),
        filter: &params.filter,
        sort: params.sort,
        desc: params.desc,
        position: &params.position,
        per: params.per,
    };
    let Listing {
        count,
        cap,
        exact,
        totals,
        page,
        options,
        sync_names,
    } = match user_listing::listing(&state.pool, &state.search, &request).await {
        Ok(l) => l,
        Err(PageError::BadCursor) => {
            return Err(AppError::BadRequest(
                "this page link does not fit the chosen sort order; start from the first page"
                    .into(),
            ));
        }
        Err(PageError::Db(e)) => return Err(e.into()),
    };
    let (schools, sources) = (&options.schools, &options.sources);
    let school_names: HashMap<Uuid, &str> =
        schools.iter().map(|s| (s.id, s.name.as_str())).collect();

    let rows = page
        .rows
        .iter()
        .map(|r| {
            let name = display_name(&r.first_name, &r.last_name, &r.username);
            let archived = r.archived_at.is_some();
            let (state_word, state_label) = if archived {
                ("archived", "Archived")
            } else {
                (r.status.as_str(), r.status.label())
            };
            let manageable = scope.is_district_admin() || r.portal_role == PortalRole::User;
            let (toggle_to, confirm) = match r.status {
                _ if archived || !manageable => ("", String::new()),
                UserStatus::Active => (
                    UserStatus::Inactive.as_str(),
                    format!("Make {name} inactive? They will be signed out and cannot sign in."),
                ),
                UserStatus::Inactive => (
                    UserStatus::Active.as_str(),
                    format!("Make {name} active again? They will be able to sign in."),
                ),
            };
            let mut school_list: Vec<&str> = r
                .school_ids
                .iter()
                .filter_map(|id| school_names.get(id).copied())
                .collect();
            school_list.sort_unstable();
            let hidden = r.school_ids.len() - school_list.len();
            let mut schools_text = school_list.join(", ");
            if r.school_ids.is_empty() {
                // A district-level user (issue 16, item 7).
                schools_text = DISTRICT_OFFICE.to_string();
            }
            if hidden > 0 {
                // A school admin sees the names of their own schools only.
                if !schools_text.is_empty() {
                    schools_text.push_str(", ");
                }
                schools_text.push_str(&format!("+{hidden} other"));
            }
            Row {
                id: r.id,
                name,
                username: r.username.clone(),
                email: r.email.clone().unwrap_or_default(),
                custom_id: r.custom_id.clone().unwrap_or_default(),
                role: r.role.clone(),
                admin_badge: if r.portal_role.is_admin() {
                    r.portal_role.label()
                } else {
                    ""
                },
                schools: schools_text,
                grade: if r.role == "Student" {
                    r.grade.clone()
                } else {
                    String::new()
                },
                state: state_word,
                state_label,
                source: source_label(&r.source, &sync_names),
                toggle_to,
                confirm,
            }
        })
        .collect();

    let base: Vec<(&str, String)> = filter_pairs
        .iter()
        .cloned()
        .chain(params.sort_pairs())
        .collect();
    let mut links = keyset::links(
        "/users",
        &base,
        params.position == Position::First,
        page.has_prev
            .then(|| page.rows.first())
            .flatten()
            .map(|r| encode_cursor(&r.sort_key)),
        page.has_next
            .then(|| page.rows.last())
            .flatten()
            .map(|r| encode_cursor(&r.sort_key)),
    );
    // "Page N of M": M whenever the count is exact (or under its cap); N carried by the links
    // from page to page (keyset pages have no offset to compute it from), and known for sure
    // at either end.
    let known = exact || count <= cap;
    let pages = known.then(|| user_listing::totals::pages(count, params.per));
    let page_no = if !page.has_prev {
        Some(1)
    } else if let (false, Some(m)) = (page.has_next, pages) {
        Some(m)
    } else {
        params.page_no.map(|n| pages.map_or(n, |m| n.min(m)))
    };
    if let Some(n) = page_no {
        let with_page = |href: String, k: i64| {
            let sep = if href.contains('?') { '&' } else { '?' };
            format!("{href}{sep}page={k}")
        };
        links.prev = links.prev.map(|h| with_page(h, (n - 1).max(1)));
        links.next = links.next.map(|h| with_page(h, n + 1));
    }
    let position_label = match (page_no, pages) {
        (Some(n), Some(m)) if m > 1 => Some(format!("Page {} of {}", thousands(n), thousands(m))),
        (None, Some(m)) if m > 1 => Some(format!("{} pages", thousands(m))),
        _ => None,
    };
    let totals_label = totals.map(|t| {
        format!(
            "District total {}: {} active, {} inactive, {} archived",
            thousands(t.all()),
            thousands(t.active),
            thousands(t.inactive),
            thousands(t.archived)
        )
    });
    let back = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/users".to_string());

    let head = |s: Sort| {
        let current = s == params.sort;
        let desc = if current {
            !params.desc
        } else {
            s.default_desc()
        };
        let mut p = filter_pairs.clone();
        if s != Sort::default() {
            p.push(("sort", s.as_str().to_string()));
        }
        if desc != s.default_desc() {
            p.push(("dir", if desc { "desc" } else { "asc" }.to_string()));
        }
        SortHead {
            href: url("/users", &p),
            label: s.label(),
            mark: match (current, params.desc) {
                (false, _) => "",
                (true, false) => " ▲",
                (true, true) => " ▼",
            },
            aria: match (current, params.desc) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
        }
    };

    let f = &params.filter;
    let current_school = f.school.map(SchoolFilter::as_query).unwrap_or_default();
    let matching = if count > cap {
        format!("{}+", thousands(cap))
    } else {
        thousands(count)
    };
    let bulk_bar = super::bulk_bar::bar(&state, &scope, &filter_pairs, &matching).await?;
    let page_view = UsersPage {
        chrome: chrome(&session, Some(&scope.person), "/users").await,
        q: f.q.clone().unwrap_or_default(),
        status_opts: std::iter::once(Opt::new("", "Active and inactive", f.status.as_str()))
            .chain(
                UserStatus::ALL
                    .iter()
                    .map(|s| Opt::new(s.as_str(), s.label(), f.status.as_str())),
            )
            .chain(std::iter::once(Opt::new(
                "archived",
                "Archived",
                f.status.as_str(),
            )))
            .collect(),
        role_opts: std::iter::once(Opt::new("", "Any role", f.role.as_deref().unwrap_or("")))
            .chain(
                Role::ALL
                    .iter()
                    .map(|r| Opt::new(r.as_str(), r.as_str(), f.role.as_deref().unwrap_or(""))),
            )
            .collect(),
        school_opts: std::iter::once(Opt::new("", "Any school", &current_school))
            // District-level users (no school): a district admin's view only.
            .chain(scope.is_district_admin().then(|| {
                Opt::new(
                    SchoolFilter::DISTRICT_OFFICE,
                    DISTRICT_OFFICE,
                    &current_school,
                )
            }))
            .chain(
                schools
                    .iter()
                    .map(|s| Opt::new(s.id.to_string(), s.name.clone(), &current_school)),
            )
            .collect(),
        grade_opts: std::iter::once(Opt::new("", "Any grade", f.grade.as_deref().unwrap_or("")))
            .chain(
                Grade::all()
                    .map(|g| Opt::new(g.as_str(), g.as_str(), f.grade.as_deref().unwrap_or(""))),
            )
            .collect(),
        source_opts: std::iter::once(Opt::new(
            "",
            "Any source",
            f.source.as_deref().unwrap_or(""),
        ))
        .chain(sources.iter().map(|s| {
            Opt::new(
                s.clone(),
                source_label(s, &sync_names),
                f.source.as_deref().unwrap_or(""),
            )
        }))
        .collect(),
        sort_opts: Sort::ALL
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), params.sort.as_str()))
            .collect(),
        rows,
        count_label: if count > cap && !exact {
            format!("{}+ users", thousands(cap))
        } else if count == 1 {
            "1 user".to_string()
        } else {
            format!("{} users", thousands(count))
        },
        totals_label,
        position_label,
        filtered: !filter_pairs.is_empty(),
        archived_view: f.status == StatusFilter::Archived,
        csv_href: "/users.csv".to_string(),
        csv_filtered_href: url("/users.csv", &filter_pairs),
        clear_href: "/users".to_string(),
        first_href: links.first,
        prev_href: links.prev,
        next_href: links.next,
        back,
        h_name: head(Sort::Name),
        h_username: head(Sort::Username),
        h_custom_id: head(Sort::CustomId),
        h_role: head(Sort::Role),
        h_grade: head(Sort::Grade),
        per: params.per,
        bulk: bulk_bar,
    };
    Ok(render(&page_view)?.into_response())
}

/// `GET /users.csv`: every user the filters select (by default every non-archived user in
/// the admin's scope) in the canonical format, streamed row by row from the database.
pub async fn csv(
    State(state): State<AppState>,
    scope: DistrictScope,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let params = Params::parse(&ListQuery {
        after: None,
        before: None,
        ..query
    })?;
    let filtered = !params.filter_pairs().is_empty();
    // UTF-8 with a BOM, so Excel opens it with accents intact (our reader strips it again).
    let mut header_line = crate::reconcile::report::UTF8_BOM.to_vec();
    header_line.extend_from_slice(
        &csv_bytes(std::iter::once(MASTER_HEADER.map(str::to_string)))
            .map_err(|e| AppError::Internal(e.into()))?,
    );
    let header_line = Bytes::from(header_line);
    let rows = db::export::master_rows(
        state.pool.clone(),
        scope.district_id,
        params.filter,
        scope.schools.clone(),
    );
    let district = scope.district_id;
    // Users with no school carry the district's own ID (issue 16, item 7).
    let district_ext = db::districts::external_id(&state.pool, district).await?;
    let body = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(header_line) })
        .chain(rows.ready_chunks(512).map(move |chunk| {
            let mut w = csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
            for row in chunk {
                match row {
                    Ok(r) => {
                        let record = master_record(&r, district_ext.as_deref());
                        w.write_record(record.iter().map(|c| c.as_bytes()))
                            .map_err(std::io::Error::other)?;
                    }
                    Err(e) => {
                        // The download ends short and the client sees a broken transfer,
                        // never a file that looks complete.
                        tracing::error!(district = %district, error = %e, "master CSV stopped");
                        return Err(std::io::Error::other("database error"));
                    }
                }
            }
            w.into_inner()
                .map(Bytes::from)
                .map_err(|e| std::io::Error::other(e.into_error()))
        }));
    // A stable name (SPEC §5): the admin's master file keeps one source key, day after day.
    // A filtered download is not the master, and is named so.
    let file_name = if filtered {
        format!("{}-users-filtered.csv", scope.district_slug)
    } else {
        crate::reconcile::report::master_file_name(&scope.district_slug)
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn csv_bytes(records: impl Iterator<Item = [String; 13]>) -> Result<Bytes, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(8192));
    for r in records {
        w.write_record(&r)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}
