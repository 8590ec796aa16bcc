//! Undo runs (SPEC §4 "Undo"): what a run wrote, which of its users changed since, which
//! runs undo which, and the users an undo left.

use crate::domain::RunStatus;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// One audit entry a run wrote about a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrittenRow {
    pub user_id: Uuid,
    pub action: String,
    /// `None` for a create (its `after` is the whole user; an undo needs only the id).
    pub before: Option<serde_json::Value>,
    /// The user has a later audit entry by someone else (another run, an admin).
    pub changed_since: bool,
}

/// Every user entry `run_id` wrote, in the order written, each with whether the user changed
/// again since. One streamed, set-based read (the audit log's by-run index).
pub async fn written(
    conn: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<Vec<WrittenRow>> {
    let mut out = Vec::new();
    let mut rows = sqlx::query_as::<_, WrittenRow>(
        "SELECT a.entity_id AS user_id, a.action,
                CASE WHEN a.action = 'user.create' THEN NULL ELSE a.before END AS before,
                EXISTS (SELECT 1 FROM audit_log l
                        WHERE l.district_id = a.district_id AND l.entity_id = a.entity_id
                          AND l.id > a.id AND l.run_id IS DISTINCT FROM a.run_id) AS changed_since
         FROM audit_log a
         WHERE a.district_id = $1 AND a.run_id = $2 AND a.entity_kind = 'user' AND a.entity_id IS NOT NULL
         ORDER BY a.id",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        out.push(r);
    }
    Ok(out)
}

/// One class or enrollment change a run recorded (`run_roster_changes`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RosterWrittenRow {
    pub kind: String,
    pub class_id: Uuid,
    pub user_id: Option<Uuid>,
    pub before: Option<serde_json::Value>,
    /// A later run changed the same class or enrollment again (or, for a class, someone
    /// else's audit entry came after the run's).
    pub changed_since: bool,
}

/// Every class and enrollment change `run_id` recorded, in order, each with whether it
/// changed again since. Set-based: the changes recorded after the run's first one by other
/// runs (runs of a district are serialised) are read once and joined. A row of enrollments
/// added to one class (`user_ids`, migration 0035) reads as one change per user, in order.
/// Each row goes to `each` as it is read: a first sync's millions are never held twice.
pub async fn roster_written<E: From<sqlx::Error>>(
    conn: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
    mut each: impl FnMut(RosterWrittenRow) -> Result<(), E>,
) -> Result<(), E> {
    let mut rows = sqlx::query_as::<_, RosterWrittenRow>(
        "WITH mine AS (
            SELECT c.id, u.n, c.kind, c.class_id, coalesce(u.user_id, c.user_id) AS user_id, c.before
            FROM run_roster_changes c
            LEFT JOIN LATERAL unnest(c.user_ids) WITH ORDINALITY AS u(user_id, n) ON true
            WHERE c.district_id = $1 AND c.run_id = $2),
         later AS (
            SELECT DISTINCT l.class_id,
                   coalesce(u.user_id, l.user_id, '00000000-0000-0000-0000-000000000000'::uuid) AS user_key
            FROM run_roster_changes l
            LEFT JOIN LATERAL unnest(l.user_ids) AS u(user_id) ON true
            WHERE l.district_id = $1 AND l.run_id <> $2 AND l.id > (SELECT min(id) FROM mine))
         SELECT m.kind, m.class_id, m.user_id, m.before,
                (x.class_id IS NOT NULL
                 OR (m.user_id IS NULL AND EXISTS (
                        SELECT 1 FROM audit_log a
                        WHERE a.district_id = $1 AND a.entity_id = m.class_id AND a.run_id IS DISTINCT FROM $2
                          AND a.id > (SELECT coalesce(max(b.id), 0) FROM audit_log b
                                      WHERE b.district_id = $1 AND b.run_id = $2 AND b.entity_id = m.class_id)))
                ) AS changed_since
         FROM mine m
         LEFT JOIN later x ON x.class_id = m.class_id
              AND x.user_key = coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid)
         ORDER BY m.id, m.n",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        each(r)?;
    }
    Ok(())
}

/// A class or enrollment an undo left as it was, because it changed again since.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct LeftRoster {
    /// `class` or `enrollment`.
    pub kind: String,
    pub class_id: Option<Uuid>,
    /// The class's external id.
    pub class_external_id: String,
    pub user_id: Option<Uuid>,
    #[serde(skip)]
    pub username: Option<String>,
}

/// The classes and enrollments an undo left, in order, at most `limit`.
pub async fn left_rosters(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<LeftRoster>> {
    sqlx::query_as(
        "SELECT r.kind, r.class_id, r.key AS class_external_id, r.user_id, u.username
         FROM run_roster_rows r
         LEFT JOIN users u ON u.district_id = r.district_id AND u.id = r.user_id
         WHERE r.district_id = $1 AND r.run_id = $2 AND r.outcome = 'skipped'
         ORDER BY r.seq LIMIT $3",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A run's place in undos: the run it undoes, and the runs that undo it.
#[derive(Debug, Clone, Default)]
pub struct UndoLinks {
    /// The run this one undoes (an undo run).
    pub undoes: Option<Uuid>,
    /// Its files are gone (retention): it can no longer be undone.
    pub files_purged: bool,
    /// Runs undoing this one, newest first.
    pub undone_by: Vec<UndoRun>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UndoRun {
    pub id: Uuid,
    pub status: RunStatus,
    pub dry_run: bool,
}

impl UndoRun {
    /// A real undo that applied or may still apply.
    pub fn counts(&self) -> bool {
        !self.dry_run
            && matches!(
                self.status,
                RunStatus::Queued
                    | RunStatus::InProgress
                    | RunStatus::NeedsReview
                    | RunStatus::Completed
                    | RunStatus::CompletedWithErrors
            )
    }
    pub fn applied(&self) -> bool {
        !self.dry_run && self.status.is_applied()
    }
}

pub async fn links(
    db: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<UndoLinks> {
    let Some((undoes, files_purged)): Option<(Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT undoes, files_purged_at IS NOT NULL FROM runs WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_optional(&mut *db)
    .await?
    else {
        return Ok(UndoLinks::default());
    };
    let undone_by = sqlx::query_as(
        "SELECT id, status, dry_run FROM runs WHERE district_id = $1 AND undoes = $2
         ORDER BY received_at DESC, id",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_all(&mut *db)
    .await?;
    Ok(UndoLinks {
        undoes,
        files_purged,
        undone_by,
    })
}

/// Lock a run's row until the transaction ends (two undo requests for one run at once).
pub async fn lock_run(db: &mut PgConnection, district_id: Uuid, run_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM runs WHERE district_id = $1 AND id = $2 FOR UPDATE")
        .bind(district_id)
        .bind(run_id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_undoes(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    target: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE runs SET undoes = $3 WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(run_id)
        .bind(target)
        .execute(db)
        .await?;
    Ok(())
}

/// A user an undo left as they were, because they changed again since the undone run.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct LeftUser {
    pub user_guid: Uuid,
    pub username: Option<String>,
    /// The latest change since (who, what, when), when there is one.
    #[serde(skip)]
    pub changed_by: Option<String>,
    #[serde(skip)]
    pub change: Option<String>,
    #[serde(skip)]
    pub changed_at: Option<OffsetDateTime>,
}

/// The users an undo (`run_id`, undoing `target`) left, in line order, at most `limit`.
pub async fn left(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    target: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<LeftUser>> {
    sqlx::query_as(
        "SELECT r.user_id AS user_guid, coalesce(u.username, r.username) AS username,
                l.actor_label AS changed_by, l.action AS change, l.at AS changed_at
         FROM run_rows r
         LEFT JOIN users u ON u.district_id = r.district_id AND u.id = r.user_id
         LEFT JOIN LATERAL (SELECT a.actor_label, a.action, a.at FROM audit_log a
                            WHERE a.district_id = r.district_id AND a.entity_id = r.user_id
                              AND a.run_id IS DISTINCT FROM $3 AND a.run_id IS DISTINCT FROM $2
                            ORDER BY a.id DESC LIMIT 1) l ON true
         WHERE r.district_id = $1 AND r.run_id = $2 AND r.outcome = 'skipped' AND r.user_id IS NOT NULL
         ORDER BY r.line LIMIT $4",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(target)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many users an undo left.
pub async fn left_count(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM run_rows WHERE district_id = $1 AND run_id = $2 AND outcome = 'skipped'",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_one(db)
    .await
}
