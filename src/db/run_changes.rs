//! Old → new values of the users a run updated or restored: its row results joined with
//! the audit entries it wrote (`before`/`after` hold the changed fields).

use futures::{Stream, StreamExt};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// An updated or restored row and, for an applied run, the audit entry it wrote.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub line: i64,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub changed: Vec<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The `before`/`after` a run wrote for each of `users` it updated or restored.
pub async fn for_users(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    users: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, (Option<Value>, Option<Value>)>> {
    let rows: Vec<(Uuid, Option<Value>, Option<Value>)> = sqlx::query_as(
        "SELECT entity_id, before, after FROM audit_log
         WHERE district_id = $1 AND run_id = $2 AND entity_id = ANY($3)
           AND action IN ('user.update', 'user.restore')
         ORDER BY id",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(users)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(u, b, a)| (u, (b, a))).collect())
}

/// Every updated and restored row of a run in line order, streamed; `with_values` joins the
/// audit entries (only an applied run wrote any).
pub fn stream(
    pool: PgPool,
    district_id: Uuid,
    run_id: Uuid,
    with_values: bool,
) -> impl Stream<Item = sqlx::Result<ChangeRow>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<sqlx::Result<ChangeRow>>(256);
    tokio::spawn(async move {
        let mut rows = sqlx::query_as::<_, ChangeRow>(
            "SELECT r.line, r.user_id, r.username, r.changed, a.before, a.after
             FROM run_rows r
             LEFT JOIN LATERAL (SELECT before, after FROM audit_log a
                                WHERE $3 AND a.district_id = r.district_id AND a.run_id = r.run_id
                                  AND a.entity_id = r.user_id AND a.action IN ('user.update', 'user.restore')
                                ORDER BY a.id LIMIT 1) a ON true
             WHERE r.district_id = $1 AND r.run_id = $2 AND r.outcome IN ('updated', 'restored')
             ORDER BY r.line",
        )
        .bind(district_id)
        .bind(run_id)
        .bind(with_values)
        .fetch(&pool);
        while let Some(row) = rows.next().await {
            if tx.send(row).await.is_err() {
                break; // the client went away
            }
        }
    });
    let mut rx = rx;
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
