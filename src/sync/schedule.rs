//! The schedule: once a minute, every connection whose next run is due (and that is not
//! paused) gets a sync queued, and its next run moves one interval on. A paused connection
//! is never queued; a connection whose previous sync is still queued or running waits.

use crate::clock::Clock;
use crate::db;
use crate::domain::ActorKind;
use anyhow::Result;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

/// How often the schedule looks for due connections.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The next run after `now` for a connection syncing every `minutes`.
pub fn next_after(now: OffsetDateTime, minutes: i32) -> OffsetDateTime {
    now + time::Duration::minutes(i64::from(minutes.max(1)))
}

/// Queue a sync for every due connection. Returns the runs queued.
pub async fn tick(pool: &PgPool, clock: &Clock, wake: &Notify) -> Result<Vec<Uuid>> {
    let now = clock.now();
    // Pauses whose day has come end first, so a connection resumed today syncs today.
    super::pause::resume_due(pool, now).await?;
    let mut queued = Vec::new();
    for conn in db::syncs::due(pool, now).await? {
        let next = Some(next_after(now, conn.interval_minutes));
        db::syncs::schedule(pool, conn.district_id, conn.id, next).await?;
        match super::enqueue(pool, &conn, ActorKind::Sync, "schedule", None).await? {
            super::Enqueued::Run(id) => {
                tracing::info!(connection = %conn.id, district = %conn.district_id, run = %id, "scheduled sync queued");
                queued.push(id);
            }
            super::Enqueued::Busy(id) => {
                tracing::info!(connection = %conn.id, run = %id, "scheduled sync skipped: the previous one is still running")
            }
            super::Enqueued::Paused => {}
        }
    }
    if !queued.is_empty() {
        wake.notify_waiters();
    }
    Ok(queued)
}

/// Run the schedule in the background for as long as the process lives.
pub fn spawn(pool: PgPool, clock: Clock, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&pool, &clock, &wake).await {
                tracing::error!(error = format!("{e:#}"), "sync schedule check failed");
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    })
}
