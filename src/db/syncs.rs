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
    /// A pause by date ends on this day (UTC); `None` with `paused`: until resumed by hand.
    pub paused_until: Option<time::Date>,
    pub next_run_at: Option<OffsetDateTime>,
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
    paused, paused_until, next_run_at, last_run_id, created_by, created_at";

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

/// Connection id → name, for messages and pages that name an owner.
pub async fn names(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<std::collections::HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM sync_connections WHERE district_id = $1")
            .bind(district_id)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
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

/// Pause (until a date, or until resumed: `until` None) or resume a connection.
pub async fn set_paused(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    paused: bool,
    until: Option<time::Date>,
) -> sqlx::Result<bool> {
    Ok(
        sqlx::query(
            "UPDATE sync_connections SET paused = $3, paused_until = $4 WHERE district_id = $1 AND id = $2",
        )
        .bind(district_id)
        .bind(id)
        .bind(paused)
        .bind(if paused { until } else { None })
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

/// Connections due to sync: not paused, scheduled, next run at or before `now`.
pub async fn due(db: impl PgExecutor<'_>, now: OffsetDateTime) -> sqlx::Result<Vec<Connection>> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM sync_connections
         WHERE NOT paused AND next_run_at IS NOT NULL AND next_run_at <= $1
         ORDER BY next_run_at LIMIT 100"
    ))
    .bind(now)
    .fetch_all(db)
    .await
}

/// Move a connection's next scheduled run.
pub async fn schedule(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    next_run_at: Option<OffsetDateTime>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sync_connections SET next_run_at = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .bind(next_run_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_last_run(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sync_connections SET last_run_id = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .bind(run_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A run of this source that is queued or in progress, if any.
pub async fn pending_run(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    source: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM runs WHERE district_id = $1 AND source = $2 AND status IN ('queued', 'in_progress')
         ORDER BY received_at LIMIT 1",
    )
    .bind(district_id)
    .bind(source)
    .fetch_optional(db)
    .await
}

/// Record the file a sync run keeps (its snapshot of what the provider sent).
pub async fn set_run_file(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    name: &str,
    path: &std::path::Path,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET file_name = $3, file_path = $4 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(name)
    .bind(path.to_string_lossy().as_ref())
    .execute(db)
    .await?;
    Ok(())
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
        "SELECT * FROM runs WHERE district_id = $1 AND kind = 'sync' AND ($2::text IS NULL OR source = $2)
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
