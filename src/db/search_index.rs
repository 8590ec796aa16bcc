//! What the in-memory search index (`crate::search`) reads from the database: a district's
//! live users in name order as plain rows (`IndexRow`), in one snapshot, and whether any change to them has committed
//! since that snapshot.
//!
//! Changes are noted by triggers on `users` (migration 0007): every transaction that
//! inserts, deletes, or changes a user's name, search text, status or archived state adds one
//! row per district to `user_changes`, carrying its transaction id. An index read in
//! snapshot S is stale when some noted transaction is not visible in S — whenever it
//! committed, and however the ids were handed out.

use crate::domain::UserStatus;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Rows handed from the reader to the builder at a time.
const BATCH: usize = 4096;

/// The district's live users, counting no further than `cap`.
pub async fn live_users_upto(pool: &PgPool, district_id: Uuid, cap: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM users
                               WHERE district_id = $1 AND archived_at IS NULL LIMIT $2) t",
    )
    .bind(district_id)
    .bind(cap)
    .fetch_one(pool)
    .await
}

/// A live user as the search index reads it (`crate::search` builds its index from these).
#[derive(Debug, Clone)]
pub struct IndexRow {
    pub id: Uuid,
    pub search_text: String,
    pub status: UserStatus,
}

/// Read the district's live users in name order (the Users screen's order: the
/// `users_list_name_idx` walk) in one repeatable-read snapshot. `start` is told the snapshot
/// (`pg_current_snapshot`) once it is taken and answers with the channel the rows go to, in
/// batches; the reader waits for the receiver, so memory holds what the receiver keeps, not
/// the result set.
pub async fn read_live_users(
    pool: &PgPool,
    district_id: Uuid,
    start: impl FnOnce(String) -> mpsc::Sender<Vec<IndexRow>>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    // The transaction's snapshot: taken by this first statement, used by the read below.
    let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *tx)
        .await?;
    let send = start(snapshot);
    {
        let mut rows = sqlx::query_as::<_, (Uuid, String, UserStatus)>(
            "SELECT u.id, u.search_text, u.status FROM users u
             WHERE u.district_id = $1 AND u.archived_at IS NULL
             ORDER BY u.last_name, u.first_name, u.id",
        )
        .bind(district_id)
        .fetch(&mut *tx);
        let mut batch = Vec::with_capacity(BATCH);
        while let Some((id, search_text, status)) = rows.try_next().await? {
            batch.push(IndexRow {
                id,
                search_text,
                status,
            });
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                send.send(full).await?;
            }
        }
        if !batch.is_empty() {
            send.send(batch).await?;
        }
    }
    drop(send);
    tx.commit().await?;
    Ok(())
}

/// `term` folded as the search text is (`domain::fold`, the rule of `search_fold()`) — if no
/// change to the district's users has committed that `snapshot` does not see; `None` if one
/// has (the index read in it is stale). One round trip.
pub async fn current_needle(
    conn: &mut PgConnection,
    district_id: Uuid,
    snapshot: &str,
    term: &str,
) -> sqlx::Result<Option<String>> {
    let stale: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_changes c
                        WHERE c.district_id = $1
                          AND c.xid >= pg_snapshot_xmin($2::text::pg_snapshot)
                          AND NOT pg_visible_in_snapshot(c.xid, $2::text::pg_snapshot))",
    )
    .bind(district_id)
    .bind(snapshot)
    .fetch_one(conn)
    .await?;
    Ok((!stale).then(|| crate::domain::fold::fold(term)))
}

/// Forget change notes no index can still need (indexes are rebuilt within
/// `search::registry::MAX_AGE`; notes are kept a day).
pub async fn purge_changes(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM user_changes WHERE noted_at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
