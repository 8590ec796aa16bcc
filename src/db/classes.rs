//! Reads for the admin's Classes screens, the user page's classes, the classes and
//! enrollments downloads and the classes API (SPEC §6a). Keyset pages in title order over
//! 0017's and 0021's indexes; a page counts the enrollments of its own classes only.

use super::user_filter::{has_trigram, like_pattern};
use crate::domain::UserStatus;
use futures::{Stream, StreamExt};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use std::collections::HashMap;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Which classes a list shows: the live ones (the default) or the archived ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClassStatus {
    #[default]
    Active,
    Archived,
}

impl ClassStatus {
    pub const ALL: [ClassStatus; 2] = [ClassStatus::Active, ClassStatus::Archived];

    /// `active` or `archived` (any case); anything else is no choice.
    pub fn parse(s: &str) -> Option<ClassStatus> {
        let s = s.trim().to_ascii_lowercase();
        ClassStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClassStatus::Active => "active",
            ClassStatus::Archived => "archived",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ClassStatus::Active => "Active",
            ClassStatus::Archived => "Archived",
        }
    }
}

/// The Classes screen's filters, shared by the list and the downloads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassFilter {
    /// Part of a title, of an external ID, or of a (not archived) teacher's name.
    pub q: Option<String>,
    pub school: Option<Uuid>,
    pub term: Option<Uuid>,
    pub status: ClassStatus,
}

impl ClassFilter {
    fn search_term(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// `AND …` conditions for alias `c` (the caller has filtered on `c.district_id`).
    /// `scope` is a school admin's schools.
    fn push_conditions(
        &self,
        qb: &mut QueryBuilder<'_, Postgres>,
        district_id: Uuid,
        scope: Option<&[Uuid]>,
    ) {
        qb.push(match self.status {
            ClassStatus::Active => " AND c.archived_at IS NULL",
            ClassStatus::Archived => " AND c.archived_at IS NOT NULL",
        });
        if let Some(school) = self.school {
            qb.push(" AND c.school_id = ").push_bind(school);
        }
        if let Some(term) = self.term {
            qb.push(" AND c.term_id = ").push_bind(term);
        }
        if let Some(schools) = scope {
            qb.push(" AND c.school_id = ANY(")
                .push_bind(schools.to_vec())
                .push(")");
        }
        if let Some(term) = self.search_term() {
            let pattern = like_pattern(&term.to_lowercase());
            // Teachers' names are matched as the Users screen matches them: folded, accents
            // or not (`search_fold()`, `domain::fold`).
            let folded = crate::domain::fold::fold(term);
            let teacher = like_pattern(&folded);
            // The matching classes as one set: titles and external IDs from their trigram
            // indexes, teachers' classes from the users' trigram index (or, for a term too
            // short for trigrams, from the district's teacher enrollments).
            qb.push(" AND c.id IN (SELECT x.id FROM classes x WHERE x.district_id = ")
                .push_bind(district_id)
                .push(" AND (lower(x.title) LIKE ")
                .push_bind(pattern.clone())
                .push(" OR lower(x.external_id) LIKE ")
                .push_bind(pattern.clone())
                .push(") UNION ALL SELECT t.class_id FROM enrollments t JOIN users u ON u.district_id = t.district_id AND u.id = t.user_id WHERE t.district_id = ")
                .push_bind(district_id)
                .push(" AND t.role = 'teacher' AND u.archived_at IS NULL AND search_fold(u.first_name || ' ' || u.last_name) LIKE ")
                .push_bind(teacher.clone());
            if has_trigram(&folded) {
                qb.push(" AND u.search_text LIKE ").push_bind(teacher);
            }
            qb.push(")");
        }
    }
}

/// Where a page starts: the first page, after a row's key (Next), or before one (Previous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    First,
    After(Key),
    Before(Key),
}

/// A class's place in title order: `lower(title)`, then id (`classes_title_idx`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Key {
    pub title: String,
    pub id: Uuid,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassRow {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub school_id: Uuid,
    pub term_id: Option<Uuid>,
    pub archived_at: Option<OffsetDateTime>,
    /// `lower(title)`, the page key's first part.
    pub sort_title: String,
}

impl ClassRow {
    pub fn key(&self) -> Key {
        Key {
            title: self.sort_title.clone(),
            id: self.id,
        }
    }
}

/// One page of classes and whether more exist beyond each end.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<ClassRow>,
    pub has_prev: bool,
    pub has_next: bool,
}

const CLASS_COLUMNS: &str = "SELECT c.id, c.external_id, c.title, c.school_id, c.term_id, c.archived_at, lower(c.title) AS sort_title FROM classes c WHERE c.district_id = ";

/// Up to `limit` classes in title order from `position` (reading backwards before a key).
async fn walk(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &ClassFilter,
    scope: Option<&[Uuid]>,
    position: &Position,
    limit: i64,
) -> sqlx::Result<Vec<ClassRow>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(CLASS_COLUMNS);
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, district_id, scope);
    let backwards = matches!(position, Position::Before(_));
    match position {
        Position::First => {}
        Position::After(k) | Position::Before(k) => {
            qb.push(" AND (lower(c.title), c.id) ")
                .push(if backwards { "<" } else { ">" })
                .push(" (")
                .push_bind(k.title.clone())
                .push(", ")
                .push_bind(k.id)
                .push(")");
        }
    }
    qb.push(if backwards {
        " ORDER BY lower(c.title) DESC, c.id DESC"
    } else {
        " ORDER BY lower(c.title), c.id"
    });
    qb.push(" LIMIT ").push_bind(limit);
    qb.build_query_as().fetch_all(db).await
}

/// One page of the Classes screen.
pub async fn page(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &ClassFilter,
    scope: Option<&[Uuid]>,
    position: &Position,
    limit: i64,
) -> sqlx::Result<Page> {
    let mut rows = walk(db, district_id, filter, scope, position, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let (has_prev, has_next) = match position {
        Position::First => (false, more),
        Position::After(_) => (true, more),
        Position::Before(_) => {
            rows.reverse();
            (more, true)
        }
    };
    Ok(Page {
        rows,
        has_prev,
        has_next,
    })
}

/// How many classes the filter selects, counting no further than `cap`.
pub async fn count_capped(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &ClassFilter,
    scope: Option<&[Uuid]>,
    cap: i64,
) -> sqlx::Result<i64> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM classes c WHERE c.district_id = ");
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, district_id, scope);
    qb.push(" LIMIT ").push_bind(cap + 1).push(") t");
    qb.build_query_scalar().fetch_one(db).await
}

/// A teacher of a class, as lists show them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeacherRow {
    pub class_id: Uuid,
    pub user_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub is_primary: bool,
}

/// The (not archived) teachers of the given classes, primary first, then by name
/// (`enrollments_class_teachers_idx`).
pub async fn teachers_of(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_ids: &[Uuid],
) -> sqlx::Result<Vec<TeacherRow>> {
    sqlx::query_as(
        "SELECT t.class_id, u.id AS user_id, u.first_name, u.last_name, u.username, t.is_primary
         FROM enrollments t
         JOIN users u ON u.district_id = t.district_id AND u.id = t.user_id AND u.archived_at IS NULL
         WHERE t.district_id = $1 AND t.class_id = ANY($2) AND t.role = 'teacher'
         ORDER BY t.is_primary DESC, u.last_name, u.first_name, u.id",
    )
    .bind(district_id)
    .bind(class_ids)
    .fetch_all(db)
    .await
}

/// How many (not archived) students each of the given classes has: the enrollments of these
/// classes only, never the district's.
pub async fn student_counts(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_ids: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT e.class_id, count(*)
         FROM enrollments e
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id AND u.archived_at IS NULL
         WHERE e.district_id = $1 AND e.class_id = ANY($2) AND e.role = 'student'
         GROUP BY e.class_id",
    )
    .bind(district_id)
    .bind(class_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A term, for the Term filter and the class page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TermOption {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
}

/// The district's terms, latest first.
pub async fn terms(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<TermOption>> {
    sqlx::query_as(
        "SELECT id, external_id, title, start_date, end_date FROM terms WHERE district_id = $1
         ORDER BY start_date DESC NULLS LAST, title, external_id LIMIT 500",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

/// A class with its school and term, for the class page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassRecord {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    pub source: String,
    pub archived_at: Option<OffsetDateTime>,
    pub school_id: Uuid,
    pub school_name: String,
    pub school_external_id: String,
    pub term_title: Option<String>,
    pub term_external_id: Option<String>,
    pub term_start: Option<Date>,
    pub term_end: Option<Date>,
}

/// A class of the district, or `None`; `None` too for a school admin when it is at none of
/// their schools.
pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    scope: Option<&[Uuid]>,
) -> sqlx::Result<Option<ClassRecord>> {
    sqlx::query_as(
        "SELECT c.id, c.external_id, c.title, c.course_code, c.subject, c.period, c.grades,
                c.source, c.archived_at, c.school_id, s.name AS school_name,
                s.external_id AS school_external_id, t.title AS term_title,
                t.external_id AS term_external_id, t.start_date AS term_start, t.end_date AS term_end
         FROM classes c
         JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE c.district_id = $1 AND c.id = $2 AND ($3::uuid[] IS NULL OR c.school_id = ANY($3))",
    )
    .bind(district_id)
    .bind(id)
    .bind(scope)
    .fetch_optional(db)
    .await
}

/// A member of a class's roster.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RosterRow {
    pub user_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub custom_id: Option<String>,
    pub email: Option<String>,
    pub status: UserStatus,
    pub role: String,
    pub is_primary: bool,
}

/// A class's teachers and students, teachers first (primary first), then by name. Archived
/// users are not listed (seed 001); inactive ones are, with their status.
pub async fn roster(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_id: Uuid,
) -> sqlx::Result<Vec<RosterRow>> {
    sqlx::query_as(
        "SELECT u.id AS user_id, u.first_name, u.last_name, u.username, u.custom_id, u.email,
                u.status, e.role, e.is_primary
         FROM enrollments e
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id AND u.archived_at IS NULL
         WHERE e.district_id = $1 AND e.class_id = $2
         ORDER BY e.role DESC, e.is_primary DESC, u.last_name, u.first_name, u.id",
    )
    .bind(district_id)
    .bind(class_id)
    .fetch_all(db)
    .await
}

/// A class of a user, for the user page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserClassRow {
    pub class_id: Uuid,
    pub title: String,
    pub external_id: String,
    pub role: String,
    pub is_primary: bool,
    pub school_name: String,
    pub archived_at: Option<OffsetDateTime>,
}

/// The classes a user is enrolled in (`enrollments_user_idx`), live ones first, by title;
/// for a school admin only those at their schools.
pub async fn of_user(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    user_id: Uuid,
    scope: Option<&[Uuid]>,
) -> sqlx::Result<Vec<UserClassRow>> {
    sqlx::query_as(
        "SELECT c.id AS class_id, c.title, c.external_id, e.role, e.is_primary,
                s.name AS school_name, c.archived_at
         FROM enrollments e
         JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         WHERE e.district_id = $1 AND e.user_id = $2
           AND ($3::uuid[] IS NULL OR c.school_id = ANY($3))
         ORDER BY c.archived_at IS NOT NULL, lower(c.title), c.id
         LIMIT 500",
    )
    .bind(district_id)
    .bind(user_id)
    .bind(scope)
    .fetch_all(db)
    .await
}

/// One row of the classes or enrollments download: a class, and one of its enrollments
/// (`role`/`user`/`primary` empty on a class's own row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub class_external_id: String,
    pub class_title: String,
    pub school_external_id: String,
    pub role: Option<String>,
    /// The user's custom_id, else email, else user_guid.
    pub user: Option<String>,
    pub primary: Option<bool>,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    pub term: Option<String>,
    pub term_start: Option<Date>,
    pub term_end: Option<Date>,
    /// The class's GUID (the downloads' `class_guid` column).
    pub class_guid: Uuid,
}

#[derive(Debug, sqlx::FromRow)]
struct ExportClass {
    id: Uuid,
    external_id: String,
    title: String,
    sort_title: String,
    school_external_id: String,
    course_code: String,
    subject: String,
    period: String,
    grades: Vec<String>,
    term: Option<String>,
    term_start: Option<Date>,
    term_end: Option<Date>,
}

#[derive(Debug, sqlx::FromRow)]
struct ExportEnrollment {
    class_id: Uuid,
    role: String,
    user_key: String,
    is_primary: bool,
}

/// Classes read per step of a download (and their enrollments with them).
const EXPORT_BATCH: i64 = 500;

/// Every class the filter selects, in title order, streamed a batch at a time (no sort of
/// the district's enrollments, no more than a batch in memory). With `enrollments`, each
/// class's enrollments follow as rows (teachers first, then by user key), and a class with
/// none keeps one row of its own, so that the file re-imports as the same classes.
pub fn export_rows(
    pool: PgPool,
    district_id: Uuid,
    filter: ClassFilter,
    scope: Option<Vec<Uuid>>,
    enrollments: bool,
) -> impl Stream<Item = sqlx::Result<ExportRow>> + Send + 'static {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<sqlx::Result<ExportRow>>(512);
    tokio::spawn(async move {
        let mut position = Position::First;
        loop {
            let batch = match export_batch(&pool, district_id, &filter, scope.as_deref(), &position)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let Some(last) = batch.last() else { return };
            position = Position::After(Key {
                title: last.sort_title.clone(),
                id: last.id,
            });
            let mut of_class: HashMap<Uuid, Vec<ExportEnrollment>> = HashMap::new();
            if enrollments {
                let ids: Vec<Uuid> = batch.iter().map(|c| c.id).collect();
                match export_enrollments(&pool, district_id, &ids).await {
                    Ok(rows) => {
                        for r in rows {
                            of_class.entry(r.class_id).or_default().push(r);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            let done = (batch.len() as i64) < EXPORT_BATCH;
            for c in batch {
                let row = |e: Option<&ExportEnrollment>| ExportRow {
                    class_external_id: c.external_id.clone(),
                    class_title: c.title.clone(),
                    school_external_id: c.school_external_id.clone(),
                    role: e.map(|e| e.role.clone()),
                    user: e.map(|e| e.user_key.clone()),
                    primary: e.map(|e| e.is_primary),
                    course_code: c.course_code.clone(),
                    subject: c.subject.clone(),
                    period: c.period.clone(),
                    grades: c.grades.clone(),
                    term: c.term.clone(),
                    term_start: c.term_start,
                    term_end: c.term_end,
                    class_guid: c.id,
                };
                let rows: Vec<ExportRow> = match of_class.get(&c.id) {
                    Some(list) if !list.is_empty() => list.iter().map(|e| row(Some(e))).collect(),
                    _ => vec![row(None)],
                };
                for r in rows {
                    if tx.send(Ok(r)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            if done {
                return;
            }
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

async fn export_batch(
    pool: &PgPool,
    district_id: Uuid,
    filter: &ClassFilter,
    scope: Option<&[Uuid]>,
    position: &Position,
) -> sqlx::Result<Vec<ExportClass>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT c.id, c.external_id, c.title, lower(c.title) AS sort_title,
                s.external_id AS school_external_id, c.course_code, c.subject, c.period, c.grades,
                t.external_id AS term, t.start_date AS term_start, t.end_date AS term_end
         FROM classes c
         JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE c.district_id = ",
    );
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, district_id, scope);
    if let Position::After(k) = position {
        qb.push(" AND (lower(c.title), c.id) > (")
            .push_bind(k.title.clone())
            .push(", ")
            .push_bind(k.id)
            .push(")");
    }
    qb.push(" ORDER BY lower(c.title), c.id LIMIT ")
        .push_bind(EXPORT_BATCH);
    qb.build_query_as().fetch_all(pool).await
}

/// Every enrollment of the given classes (archived users' too: the file must re-import as
/// the same rosters), teachers first, by user key.
async fn export_enrollments(
    pool: &PgPool,
    district_id: Uuid,
    class_ids: &[Uuid],
) -> sqlx::Result<Vec<ExportEnrollment>> {
    sqlx::query_as(
        "SELECT e.class_id, e.role, e.is_primary,
                coalesce(nullif(u.custom_id, ''), nullif(u.email, ''), u.id::text) AS user_key
         FROM enrollments e
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1 AND e.class_id = ANY($2)
         ORDER BY e.class_id, e.role DESC, user_key",
    )
    .bind(district_id)
    .bind(class_ids)
    .fetch_all(pool)
    .await
}

/// A class as the API gives it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiClass {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub school_external_id: String,
    pub course_code: String,
    pub subject: String,
    pub period: String,
    pub grades: Vec<String>,
    pub term_external_id: Option<String>,
    pub term_title: Option<String>,
    pub term_start: Option<Date>,
    pub term_end: Option<Date>,
    pub archived_at: Option<OffsetDateTime>,
}

/// One page of the district's classes for the API, in id order (keyset: `after` the previous
/// page's last id).
pub async fn api_page(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    status: ClassStatus,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApiClass>> {
    sqlx::query_as(
        "SELECT c.id, c.external_id, c.title, s.external_id AS school_external_id, c.course_code,
                c.subject, c.period, c.grades, t.external_id AS term_external_id,
                t.title AS term_title, t.start_date AS term_start, t.end_date AS term_end,
                c.archived_at
         FROM classes c
         JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE c.district_id = $1 AND ($2::uuid IS NULL OR c.id > $2)
           AND (c.archived_at IS NOT NULL) = $3
         ORDER BY c.id LIMIT $4",
    )
    .bind(district_id)
    .bind(after)
    .bind(status == ClassStatus::Archived)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// An enrollment as the API gives it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiEnrollment {
    pub user_id: Uuid,
    pub custom_id: Option<String>,
    pub email: Option<String>,
    pub username: String,
    pub role: String,
    pub is_primary: bool,
    pub begin_date: Option<Date>,
    pub end_date: Option<Date>,
    pub status: UserStatus,
}

/// One page of a class's enrollments for the API, in user id order (the primary key), of
/// users not archived.
pub async fn api_enrollments(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApiEnrollment>> {
    sqlx::query_as(
        "SELECT e.user_id, u.custom_id, u.email, u.username, e.role, e.is_primary, e.begin_date,
                e.end_date, u.status
         FROM enrollments e
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id AND u.archived_at IS NULL
         WHERE e.district_id = $1 AND e.class_id = $2 AND ($3::uuid IS NULL OR e.user_id > $3)
         ORDER BY e.user_id LIMIT $4",
    )
    .bind(district_id)
    .bind(class_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Whether the district has this class (any school, archived or not): the API's 404.
pub async fn exists(db: impl PgExecutor<'_>, district_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM classes WHERE district_id = $1 AND id = $2)")
        .bind(district_id)
        .bind(id)
        .fetch_one(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_parse_case_free_and_default_to_active() {
        assert_eq!(
            ClassStatus::parse(" Archived "),
            Some(ClassStatus::Archived)
        );
        assert_eq!(ClassStatus::parse("active"), Some(ClassStatus::Active));
        assert_eq!(ClassStatus::parse("deleted"), None);
        assert_eq!(ClassStatus::default(), ClassStatus::Active);
        for s in ClassStatus::ALL {
            assert_eq!(ClassStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_search_reaches_titles_ids_and_teachers_in_one_set() {
        let district = Uuid::nil();
        let f = ClassFilter {
            q: Some(" Ng ".into()),
            ..Default::default()
        };
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT 1 FROM classes c WHERE true");
        f.push_conditions(&mut qb, district, Some(&[Uuid::nil()]));
        let sql = qb.sql();
        assert!(sql.contains("c.archived_at IS NULL"), "{sql}");
        assert!(sql.contains("lower(x.external_id) LIKE"), "{sql}");
        assert!(sql.contains("t.role = 'teacher'"), "{sql}");
        assert!(sql.contains("c.school_id = ANY("), "{sql}");
        // "Ng" has no trigram: the users' trigram index cannot help.
        assert!(!sql.contains("u.search_text"), "{sql}");
        let f = ClassFilter {
            q: Some("Nguyen".into()),
            status: ClassStatus::Archived,
            ..Default::default()
        };
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT 1 FROM classes c WHERE true");
        f.push_conditions(&mut qb, district, None);
        let sql = qb.sql();
        assert!(sql.contains("u.search_text LIKE"), "{sql}");
        assert!(sql.contains("c.archived_at IS NOT NULL"), "{sql}");
        assert!(!sql.contains("ANY("), "{sql}");
    }
}
