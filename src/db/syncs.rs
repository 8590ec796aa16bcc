//! Roster sync connections: settings, the schedule, and the claim a running sync holds.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// A connection as stored. `secret_sealed` is the encrypted secret; it never leaves the
/// server and its Debug output is redacted.
#[derive(Clone, sqlx::FromRow)]
pub struct Connection {
    pub district_id: Uuid,
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub base_url: Option<String>,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub secret_sealed: Option<Vec<u8>>,
    pub interval_minutes: i32,
    pub paused: bool,
    pub next_run_at: Option<OffsetDateTime>,
    pub running_since: Option<OffsetDateTime>,
    pub last_run_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("district_id", &self.district_id)
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("secret", &self.secret_sealed.as_ref().map(|_| "<sealed>"))
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

const COLS: &str =
    "district_id, id, kind, name, base_url, token_url, client_id, secret_sealed, interval_minutes,
    paused, next_run_at, running_since, last_run_id, created_by, created_at";

pub struct NewConnection<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub base_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub secret_sealed: Option<&'a [u8]>,
    pub interval_minutes: i32,
    pub next_run_at: Option<OffsetDateTime>,
    pub created_by: &'a str,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    c: &NewConnection<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sync_connections (district_id, id, kind, name, base_url, token_url, client_id, secret_sealed,
                                       interval_minutes, next_run_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(district_id)
    .bind(c.id)
    .bind(c.kind)
    .bind(c.name)
    .bind(c.base_url)
    .bind(c.token_url)
    .bind(c.client_id)
    .bind(c.secret_sealed)
    .bind(c.interval_minutes)
    .bind(c.next_run_at)
    .bind(c.created_by)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn list(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<Connection>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM sync_connections WHERE district_id = $1 ORDER BY name"
    ))
    .bind(district_id)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Connection>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM sync_connections WHERE district_id = $1 AND id = $2"
    ))
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The settings an admin can change (the secret separately).
pub struct Settings<'a> {
    pub name: &'a str,
    pub base_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub interval_minutes: i32,
    pub next_run_at: Option<OffsetDateTime>,
}

pub async fn update_settings(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    s: &Settings<'_>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE sync_connections SET name = $3, base_url = $4, token_url = $5, client_id = $6, interval_minutes = $7,
                next_run_at = $8
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(s.name)
    .bind(s.base_url)
    .bind(s.token_url)
    .bind(s.client_id)
    .bind(s.interval_minutes)
    .bind(s.next_run_at)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn set_secret(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    sealed: &[u8],
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE sync_connections SET secret_sealed = $3 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(sealed)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn set_paused(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    paused: bool,
) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("UPDATE sync_connections SET paused = $3 WHERE district_id = $1 AND id = $2")
            .bind(district_id)
            .bind(id)
            .bind(paused)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Delete a connection. Its users are handed over to manual provisioning (never archived):
/// a later feed may adopt them. Returns how many users were released, or `None` when there
/// is no such connection.
pub async fn delete(
    conn: &mut PgConnection,
    district_id: Uuid,
    id: Uuid,
    actor: &super::audit::Actor,
) -> sqlx::Result<Option<u64>> {
    let deleted = sqlx::query("DELETE FROM sync_connections WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(None);
    }
    let source = format!("sync:{id}");
    let released = sqlx::query(
        "WITH released AS (
             UPDATE users SET source = 'manual', version = version + 1
             WHERE district_id = $1 AND source = $2 RETURNING id)
         INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, before, after)
         SELECT $1, $3, $4, $5, 'user.update', 'user', id, jsonb_build_object('source', $2::text),
                jsonb_build_object('source', 'manual')
         FROM released",
    )
    .bind(district_id)
    .bind(&source)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Some(released))
}

/// Connections whose next run is due: not paused, scheduled, not running (or a claim older
/// than `stale`, left by a crash).
pub async fn due(
    db: impl PgExecutor<'_>,
    now: OffsetDateTime,
    stale: OffsetDateTime,
) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    sqlx::query_as(
        "SELECT district_id, id FROM sync_connections
         WHERE NOT paused AND next_run_at IS NOT NULL AND next_run_at <= $1
           AND (running_since IS NULL OR running_since < $2)
         ORDER BY next_run_at LIMIT 100",
    )
    .bind(now)
    .bind(stale)
    .fetch_all(db)
    .await
}

/// Claim a connection for one sync. `None` when it is paused, gone, or already running.
pub async fn claim(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    now: OffsetDateTime,
    stale: OffsetDateTime,
) -> sqlx::Result<Option<Connection>> {
    sqlx::query_as(&format!(
        "UPDATE sync_connections SET running_since = $3
         WHERE district_id = $1 AND id = $2 AND NOT paused AND (running_since IS NULL OR running_since < $4)
         RETURNING {COLS}"
    ))
    .bind(district_id)
    .bind(id)
    .bind(now)
    .bind(stale)
    .fetch_optional(db)
    .await
}

/// Release the claim, remember the run, and schedule the next one.
pub async fn release(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    run_id: Option<Uuid>,
    next_run_at: Option<OffsetDateTime>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sync_connections SET running_since = NULL, last_run_id = coalesce($3, last_run_id),
                next_run_at = CASE WHEN kind = 'oneroster_csv' THEN NULL ELSE $4 END
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(run_id)
    .bind(next_run_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Forget claims left by a process that stopped mid-sync (at server start).
pub async fn clear_stale_claims(
    db: impl PgExecutor<'_>,
    stale: OffsetDateTime,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE sync_connections SET running_since = NULL WHERE running_since IS NOT NULL AND running_since < $1",
    )
    .bind(stale)
    .execute(db)
    .await?
    .rows_affected())
}

/// Sync runs left In Progress by a process that stopped: marked Failed (they changed
/// nothing: a run applies in one transaction). Returns how many.
pub async fn fail_interrupted_runs(
    db: impl PgExecutor<'_>,
    before: OffsetDateTime,
    now: OffsetDateTime,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE runs SET status = 'failed', finished_at = $2,
                message = 'the sync was interrupted (the server stopped) and changed nothing; the next scheduled sync runs as usual'
         WHERE kind = 'sync' AND status IN ('queued', 'in_progress') AND coalesce(started_at, received_at) < $1",
    )
    .bind(before)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected())
}

/// The district's first OneRoster CSV connection (the command line imports through it).
pub async fn first_csv(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Option<Connection>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM sync_connections WHERE district_id = $1 AND kind = 'oneroster_csv'
         ORDER BY created_at, name LIMIT 1"
    ))
    .bind(district_id)
    .fetch_optional(db)
    .await
}

/// The latest runs of a district's syncs (all connections, or one), newest first.
pub async fn recent_runs(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<super::runs::Run>> {
    sqlx::query_as(
        "SELECT district_id, id, kind, source, file_name, file_sha256, file_path, status, dry_run, approved, options,
                submitted_kind, submitted_by, received_at, started_at, finished_at, attempts, total_rows, done_rows,
                created, updated, unchanged, restored, archived, errors, message, ignored_columns
         FROM runs WHERE district_id = $1 AND kind = 'sync' AND ($2::text IS NULL OR source = $2)
         ORDER BY received_at DESC LIMIT $3",
    )
    .bind(district_id)
    .bind(source)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Set a run's message (a sync adds what it skipped to what the run recorded).
pub async fn set_run_message(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    message: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE runs SET message = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(run_id)
        .bind(message)
        .execute(db)
        .await?;
    Ok(())
}

/// Mark a run waiting for review as cancelled.
pub async fn cancel_run(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE runs SET status = 'cancelled', finished_at = $4, reviewed_by = $3, reviewed_at = $4
         WHERE district_id = $1 AND id = $2 AND status = 'needs_review'",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Mark a run waiting for review as approved (it is then run again past the guard).
pub async fn approve_run(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE runs SET status = 'in_progress', approved = true, reviewed_by = $3, reviewed_at = $4
         WHERE district_id = $1 AND id = $2 AND status = 'needs_review'",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
