//! Runs (uploads, syncs, command-line imports) and their per-row results.

use crate::domain::{ActorKind, RunKind, RunStatus};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Run {
    pub district_id: Uuid,
    pub id: Uuid,
    pub kind: RunKind,
    pub source: String,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    pub file_path: Option<String>,
    pub status: RunStatus,
    pub dry_run: bool,
    pub approved: bool,
    pub options: serde_json::Value,
    pub submitted_kind: ActorKind,
    pub submitted_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub attempts: i32,
    pub total_rows: i32,
    pub done_rows: i32,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub restored: i32,
    pub archived: i32,
    pub errors: i32,
    pub moved: i32,
    pub skipped: i32,
    pub message: Option<String>,
    pub ignored_columns: Vec<String>,
    pub reviewed_by: Option<String>,
    pub phase: Option<String>,
    /// Classes and enrollments (SPEC §6a), all zero for a run without rosters.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub rosters: RunRosterCounts,
}

/// A run's roster counts as stored on it (migration 0018).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct RunRosterCounts {
    pub classes_created: i32,
    pub classes_updated: i32,
    pub classes_unchanged: i32,
    pub classes_restored: i32,
    pub classes_archived: i32,
    pub enrollments_added: i32,
    pub enrollments_changed: i32,
    pub enrollments_unchanged: i32,
    pub enrollments_ended: i32,
    pub roster_errors: i32,
}

impl Run {
    /// Whether this run's counts and outcomes were written: a real (not dry) run that
    /// finished. A dry run, a run in Needs Review, a cancelled or failed one and one not
    /// finished yet only say what it would do — the one place pages and the API decide this.
    pub fn applied(&self) -> bool {
        !self.dry_run && self.status.is_applied()
    }
}

const COLS: &str = "district_id, id, kind, source, file_name, file_sha256, file_path, status, dry_run, approved, options,
    submitted_kind, submitted_by, received_at, started_at, finished_at, attempts, total_rows, done_rows, created, updated,
    unchanged, restored, archived, errors, moved, skipped, message, ignored_columns, reviewed_by, phase,
    classes_created, classes_updated, classes_unchanged, classes_restored, classes_archived, enrollments_added,
    enrollments_changed, enrollments_unchanged, enrollments_ended, roster_errors";

pub struct NewRun<'a> {
    pub kind: RunKind,
    pub source: &'a str,
    pub file_name: Option<&'a str>,
    pub file_sha256: Option<&'a str>,
    pub file_path: Option<&'a str>,
    pub dry_run: bool,
    pub approved: bool,
    pub options: serde_json::Value,
    pub submitted_kind: ActorKind,
    pub submitted_by: &'a str,
    pub status: RunStatus,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run: &NewRun<'_>,
) -> sqlx::Result<Uuid> {
    insert_with_id(db, district_id, Uuid::new_v4(), run).await
}

/// A run whose id was chosen first (its file is stored under it).
pub async fn insert_with_id(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    run: &NewRun<'_>,
) -> sqlx::Result<Uuid> {
    insert_row(db, district_id, id, run, None).await
}

/// Insert a run already started at `now` (in progress, its first attempt): one statement
/// where `insert_with_id` and `mark_started` are two (the command line, which runs it at
/// once).
pub async fn insert_started(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    run: &NewRun<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    insert_row(db, district_id, id, run, Some(now)).await
}

async fn insert_row(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    run: &NewRun<'_>,
    started_at: Option<OffsetDateTime>,
) -> sqlx::Result<Uuid> {
    let status = match started_at {
        Some(_) => RunStatus::InProgress,
        None => run.status,
    };
    sqlx::query(
        "INSERT INTO runs (district_id, id, kind, source, file_name, file_sha256, file_path, dry_run, approved, options,
                           submitted_kind, submitted_by, status, started_at, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $14 IS NULL THEN 0 ELSE 1 END)",
    )
    .bind(district_id)
    .bind(id)
    .bind(run.kind)
    .bind(run.source)
    .bind(run.file_name)
    .bind(run.file_sha256)
    .bind(run.file_path)
    .bind(run.dry_run)
    .bind(run.approved)
    .bind(&run.options)
    .bind(run.submitted_kind)
    .bind(run.submitted_by)
    .bind(status)
    .bind(started_at)
    .execute(db)
    .await?;
    Ok(id)
}

pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Run>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM runs WHERE district_id = $1 AND id = $2"
    ))
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn mark_started(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET status = 'in_progress', started_at = $3, attempts = attempts + 1 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A sync attempt failed and will be tried again: the run goes back to the queue, not to be
/// taken before `not_before` (the district's other runs go ahead meanwhile).
pub async fn requeue_later(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    not_before: OffsetDateTime,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET status = 'queued', phase = NULL, done_rows = 0, not_before = $3, message = $4
         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
    )
    .bind(district_id)
    .bind(id)
    .bind(not_before)
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
}

/// A run in progress found its district's lock held by another run (or by a connection being
/// deleted): it shows as waiting (no start time) until [`mark_lock_held`].
pub async fn mark_waiting(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET started_at = NULL, phase = 'waiting'
         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
    )
    .bind(district_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// The waiting run got its district's lock: it starts now.
pub async fn mark_lock_held(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET started_at = $3, phase = 'planning'
         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
    )
    .bind(district_id)
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The final state of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finish {
    pub status: RunStatus,
    pub total_rows: i32,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub restored: i32,
    pub archived: i32,
    pub errors: i32,
    pub moved: i32,
    pub skipped: i32,
    pub message: Option<String>,
    pub ignored_columns: Vec<String>,
}

impl Finish {
    /// A run that ended without applying anything (failed, or back in the queue): no counts,
    /// only why.
    pub fn ended(status: RunStatus, message: String) -> Finish {
        Finish {
            status,
            total_rows: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            restored: 0,
            archived: 0,
            errors: 0,
            moved: 0,
            skipped: 0,
            message: Some(message),
            ignored_columns: Vec::new(),
        }
    }
}

pub async fn finish(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    f: &Finish,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET status = $3, finished_at = $4, total_rows = $5, done_rows = $5, created = $6, updated = $7,
                unchanged = $8, restored = $9, archived = $10, errors = $11, message = $12, ignored_columns = $13,
                moved = $14, skipped = $15
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(f.status)
    .bind(now)
    .bind(f.total_rows)
    .bind(f.created)
    .bind(f.updated)
    .bind(f.unchanged)
    .bind(f.restored)
    .bind(f.archived)
    .bind(f.errors)
    .bind(&f.message)
    .bind(&f.ignored_columns)
    .bind(f.moved)
    .bind(f.skipped)
    .execute(db)
    .await?;
    Ok(())
}

/// Replace a run's row results (CSV
/// `district_id,run_id,line,outcome,user_id,username,temp_password,changed,error,matched_by,
/// previous_source`; empty = NULL)
/// and archive list; the rows that found their user and changed nothing are removed too, and
/// stored after by [`add_unchanged`].
pub async fn store_results(
    conn: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
    rows: super::reconcile::Chunks,
    archive: &[Uuid],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM run_rows WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM run_archives WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM run_unchanged WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    super::reconcile::copy_chunks(
        conn,
        "COPY run_rows (district_id, run_id, line, outcome, user_id, username, temp_password, changed, error,
                        matched_by, previous_source, kept)
         FROM STDIN (FORMAT csv)",
        rows,
    )
    .await?;
    sqlx::query(
        "INSERT INTO run_archives (district_id, run_id, user_id) SELECT $1, $2, unnest($3::uuid[])",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(archive)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Some of a run's plainly unchanged rows (see `run_unchanged`): parallel lists in line order.
#[derive(Debug, Clone, Copy)]
pub struct UnchangedRows<'a> {
    pub lines: &'a [i64],
    pub users: &'a [Uuid],
    pub matched_by: &'a [&'a str],
}

/// Store part `part` of a run's plainly unchanged rows, as one `run_unchanged` row (after
/// [`store_results`]; parts are numbered from 0 and follow each other in line order).
pub async fn add_unchanged(
    conn: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
    part: i32,
    rows: UnchangedRows<'_>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO run_unchanged (district_id, run_id, part, lines, users, matched_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(part)
    .bind(rows.lines)
    .bind(rows.users)
    .bind(rows.matched_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `run_unchanged`'s rows as `run_rows` columns (`$1` district, `$2` run); `username` is the
/// user's (an unchanged row did not change it).
const UNCHANGED_ROWS: &str = "SELECT x.line, 'unchanged'::text AS outcome, x.user_id, u.username,
            NULL::text AS temp_password, '{}'::text[] AS changed, NULL::text AS error, x.matched_by,
            NULL::text AS previous_source, '{}'::text[] AS kept
     FROM run_unchanged c
     CROSS JOIN LATERAL unnest(c.lines, c.users, c.matched_by) AS x(line, user_id, matched_by)
     LEFT JOIN users u ON u.district_id = c.district_id AND u.id = x.user_id
     WHERE c.district_id = $1 AND c.run_id = $2";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub line: i64,
    pub outcome: String,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub temp_password: Option<String>,
    pub changed: Vec<String>,
    pub error: Option<String>,
    pub matched_by: Option<String>,
    /// The user's owner before the run when the row moved them (`users.source` form).
    pub previous_source: Option<String>,
    /// Kept fields the row would otherwise have changed.
    pub kept: Vec<String>,
}

/// The columns of a [`RunRow`] as `run_rows` holds them.
const RUN_ROW_COLUMNS: &str = "line, outcome, user_id, username, temp_password, changed, error, matched_by, previous_source, kept";

/// A run's row results in line order, streamed.
pub fn rows_stream<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
) -> futures::stream::BoxStream<'a, sqlx::Result<RunRow>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {RUN_ROW_COLUMNS} FROM run_rows WHERE district_id = $1 AND run_id = $2
             UNION ALL {UNCHANGED_ROWS}
             ORDER BY line"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(district_id)
        .bind(run_id)
        .fetch(db)
}

/// A run's failed rows in line order, streamed (the error file: no unchanged row is read).
pub fn error_rows_stream<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
) -> futures::stream::BoxStream<'a, sqlx::Result<RunRow>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {RUN_ROW_COLUMNS} FROM run_rows
             WHERE district_id = $1 AND run_id = $2 AND outcome = 'error'
             ORDER BY line"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(district_id)
        .bind(run_id)
        .fetch(db)
}

// ---- saved header mappings ----

pub async fn saved_mapping(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    signature: &str,
) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar(
        "SELECT mapping FROM header_mappings WHERE district_id = $1 AND signature = $2",
    )
    .bind(district_id)
    .bind(signature)
    .fetch_optional(db)
    .await
}

pub async fn save_mapping(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    signature: &str,
    mapping: &serde_json::Value,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO header_mappings (district_id, signature, mapping, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (district_id, signature) DO UPDATE SET mapping = EXCLUDED.mapping, updated_by = EXCLUDED.updated_by,
                                                          updated_at = now()",
    )
    .bind(district_id)
    .bind(signature)
    .bind(mapping)
    .bind(by)
    .execute(db)
    .await?;
    Ok(())
}

/// A district's most recent runs, newest first.
pub async fn recent(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM runs WHERE district_id = $1 ORDER BY received_at DESC, id LIMIT $2"
    ))
    .bind(district_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The district's file sources (as `users.source` stores them: `file:<name>`), by name: every
/// file key a run was ever made for.
pub async fn file_sources(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT source FROM runs WHERE district_id = $1 AND source LIKE 'file:%' ORDER BY source",
    )
    .bind(district_id)
    .fetch_all(db)
    .await
}

/// Runs of other file sources than `except` waiting in the district's queue (not dry runs),
/// oldest first.
pub async fn queued_files(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    except: &str,
) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM runs
         WHERE district_id = $1 AND status = 'queued' AND kind <> 'sync' AND source LIKE 'file:%'
           AND source <> $2 AND NOT dry_run AND file_path IS NOT NULL
         ORDER BY received_at, id"
    ))
    .bind(district_id)
    .bind(except)
    .fetch_all(db)
    .await
}

/// The first rows whose user the run moved from another owner (any outcome).
pub async fn moved_rows(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "SELECT line, outcome, user_id, username, NULL::text AS temp_password, changed, error, matched_by,
                previous_source, kept
         FROM run_rows WHERE district_id = $1 AND run_id = $2 AND previous_source IS NOT NULL
         ORDER BY line LIMIT $3",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The first rows of one outcome; an error row that names a user shows their username.
pub async fn rows_by_outcome(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    outcome: &str,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    // The plainly unchanged rows are in `run_unchanged` (`$3` is then 'unchanged' too).
    let sql = format!(
        "SELECT r.line, r.outcome, r.user_id, coalesce(r.username, u.username) AS username,
                NULL::text AS temp_password, r.changed, r.error, r.matched_by, r.previous_source, r.kept
         FROM run_rows r LEFT JOIN users u ON u.district_id = r.district_id AND u.id = r.user_id
         WHERE r.district_id = $1 AND r.run_id = $2 AND r.outcome = $3
         UNION ALL
         SELECT * FROM ({UNCHANGED_ROWS} AND $3 = 'unchanged' ORDER BY x.line LIMIT $4) c
         ORDER BY line LIMIT $4"
    );
    sqlx::query_as(&sql)
        .bind(district_id)
        .bind(run_id)
        .bind(outcome)
        .bind(limit)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivePreview {
    pub user_id: Uuid,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub custom_id: Option<String>,
    pub role: String,
}

/// The users a run archives (or would), the first `limit` of them and how many in all.
pub async fn archive_preview(
    db: &sqlx::PgPool,
    district_id: Uuid,
    run_id: Uuid,
    limit: i64,
) -> sqlx::Result<(Vec<ArchivePreview>, i64)> {
    let rows = sqlx::query_as(
        "SELECT u.id AS user_id, u.username, u.first_name, u.last_name, u.custom_id, u.role
         FROM run_archives a JOIN users u ON u.district_id = a.district_id AND u.id = a.user_id
         WHERE a.district_id = $1 AND a.run_id = $2 ORDER BY u.last_name, u.first_name LIMIT $3",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM run_archives WHERE district_id = $1 AND run_id = $2",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_one(db)
    .await?;
    Ok((rows, total))
}

/// Move a run from one status to another; false when it was not in `from` any more.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    from: RunStatus,
    to: RunStatus,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE runs SET status = $4 WHERE district_id = $1 AND id = $2 AND status = $3",
    )
    .bind(district_id)
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// An admin approved a run that needed review: it is queued again, past the guard. Its
/// attempts start again from zero: the approval is not a retry (attempts count the tries
/// to apply it, and only a crash makes a second).
pub async fn approve(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE runs SET status = 'queued', approved = true, attempts = 0, reviewed_by = $3, reviewed_at = $4, message = NULL
         WHERE district_id = $1 AND id = $2 AND status = 'needs_review'",
    )
    .bind(district_id)
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn mark_reviewed(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET reviewed_by = $3, reviewed_at = $4 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A run of a user file, as the intake sees it when looking for the run an error file came
/// from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRun {
    pub id: Uuid,
    pub file_name: String,
    pub source: String,
    pub errors: i32,
}

/// A district's latest runs of user files (uploads, API, drop folder, command line), newest
/// first.
pub async fn recent_file_runs(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<FileRun>> {
    sqlx::query_as(
        "SELECT id, file_name, source, errors FROM runs
         WHERE district_id = $1 AND file_name IS NOT NULL AND source LIKE 'file:%'
           AND kind IN ('upload', 'api', 'drop', 'cli')
         ORDER BY received_at DESC, id LIMIT $2",
    )
    .bind(district_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Whether any error row of a run names a user (its error file then carries their GUIDs).
pub async fn errors_name_users(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM run_rows WHERE district_id = $1 AND run_id = $2
                        AND outcome = 'error' AND user_id IS NOT NULL)",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_one(db)
    .await
}

/// A note on a finished run that has none (a hint the run page shows).
pub async fn add_note(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    note: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET message = $3 WHERE district_id = $1 AND id = $2 AND message IS NULL",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(note)
    .execute(db)
    .await?;
    Ok(())
}

/// The filters of the upload history (`/uploads`).
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    /// A source key (`manual`, `file:<name>`, `sync:<uuid>`).
    pub source: Option<String>,
    /// Received at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Received before this instant.
    pub to: Option<OffsetDateTime>,
    /// A school admin's schools: only runs of files for one of them (issue 16, item 6).
    pub schools: Option<Vec<Uuid>>,
}

/// One page of a district's runs, newest first, after the run at `after` = (received_at,
/// id): keyset on (received_at, id), never OFFSET, no cap on how far back.
pub async fn history(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &HistoryFilter,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    let mut qb: sqlx::QueryBuilder<sqlx::Postgres> =
        sqlx::QueryBuilder::new(format!("SELECT {COLS} FROM runs WHERE district_id = "));
    qb.push_bind(district_id);
    if let Some(s) = &filter.status {
        qb.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(k) = &filter.kind {
        qb.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(s) = &filter.source {
        qb.push(" AND source = ").push_bind(s.clone());
    }
    if let Some(from) = filter.from {
        qb.push(" AND received_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        qb.push(" AND received_at < ").push_bind(to);
    }
    if let Some(schools) = &filter.schools {
        let ids: Vec<String> = schools.iter().map(Uuid::to_string).collect();
        qb.push(" AND options->>'school' = ANY(")
            .push_bind(ids)
            .push(")");
    }
    if let Some((at, id)) = after {
        qb.push(" AND (received_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    qb.build_query_as::<Run>().fetch_all(db).await
}

/// Every source key the district's runs were made for.
pub async fn sources(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT source FROM runs WHERE district_id = $1")
        .bind(district_id)
        .fetch_all(db)
        .await
}
