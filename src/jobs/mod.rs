//! The job queue, in PostgreSQL: queued runs are taken with `FOR UPDATE SKIP LOCKED`, one
//! run per district at a time. A worker holds a session advisory lock on its run while it
//! works; a run left `in_progress` whose lock is free belongs to a worker that died, and is
//! queued again (its attempts show the retry). Runs are one transaction, so a retried run
//! ends as if it had run once.

pub mod drop;
pub mod retention;

use crate::clock::Clock;
use crate::config::Config;
use crate::db;
use crate::domain::{RunKind, RunStatus, Source};
use crate::reconcile::run::{self, Progress, RunOptions, RunRequest};
use anyhow::{Context, Result};
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the queue needs, cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// Wakes the workers when a run is queued.
    pub notify: Arc<Notify>,
}

const LOCK_SQL: &str = "hashtextextended('rollcall-run:' || $1::text, 0)";

impl Queue {
    pub fn new(pool: PgPool, config: Arc<Config>, clock: Clock) -> Queue {
        Queue {
            pool,
            config,
            clock,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Start the workers and the housekeeping loop (orphaned runs, drop folders, retention).
    pub fn start(&self, workers: usize) {
        for n in 0..workers.max(1) {
            let q = self.clone();
            tokio::spawn(async move { q.work_loop(n).await });
        }
        let q = self.clone();
        tokio::spawn(async move { q.housekeeping_loop().await });
    }

    async fn work_loop(self, n: usize) {
        loop {
            match self.run_one().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(worker = n, error = format!("{e:#}"), "job worker error"),
            }
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn housekeeping_loop(self) {
        let mut tick = 0u64;
        loop {
            if let Err(e) = self.requeue_orphans().await {
                tracing::error!(error = format!("{e:#}"), "requeueing orphaned runs failed");
            }
            if let Err(e) = crate::sync::pause::resume_due(&self.pool, self.clock.now()).await {
                tracing::error!(error = format!("{e:#}"), "ending due pauses failed");
            }
            if let Err(e) = drop::scan(&self).await {
                tracing::error!(error = format!("{e:#}"), "drop folder scan failed");
            }
            if tick.is_multiple_of(720)
                && let Err(e) = retention::purge(&self.pool, &self.config, self.clock.now()).await
            {
                tracing::error!(error = format!("{e:#}"), "retention purge failed");
            }
            tick += 1;
            tokio::time::sleep(Duration::from_secs(self.config.drop_poll_secs.max(1))).await;
        }
    }

    /// Runs left in progress by a worker that is gone go back to the queue.
    pub async fn requeue_orphans(&self) -> Result<u64> {
        let candidates: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT district_id, id FROM runs WHERE status = 'in_progress'")
                .fetch_all(&self.pool)
                .await?;
        let mut requeued = 0;
        if candidates.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.acquire().await?;
        for (district_id, id) in candidates {
            let free: bool =
                sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({LOCK_SQL})"))
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
            if !free {
                continue; // a live worker has it
            }
            let n = sqlx::query(
                "UPDATE runs SET status = 'queued', phase = NULL, done_rows = 0,
                        message = 'picked up again after the server stopped during attempt ' || attempts
                 WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
            )
            .bind(district_id)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK_SQL})"))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if n > 0 {
                tracing::warn!(run = %id, "run requeued after its worker stopped");
                requeued += n;
            }
        }
        if requeued > 0 {
            self.notify.notify_waiters();
        }
        Ok(requeued)
    }

    /// Take the oldest queued run of a district with nothing in progress, skipping runs
    /// waiting for their next attempt (`not_before` still ahead on the clock). The returned
    /// connection holds the run's liveness lock.
    async fn claim(&self) -> Result<Option<(db::runs::Run, PoolConnection<sqlx::Postgres>)>> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let picked: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT r.district_id, r.id FROM runs r
             WHERE r.status = 'queued'
               AND (r.not_before IS NULL OR r.not_before <= $1)
               AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.district_id = r.district_id AND b.status = 'in_progress')
             ORDER BY r.received_at
             FOR UPDATE SKIP LOCKED LIMIT 1",
        )
        .bind(self.clock.now())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((district_id, id)) = picked else {
            tx.rollback().await?;
            return Ok(None);
        };
        let locked: bool = sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({LOCK_SQL})"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(None);
        }
        db::runs::mark_started(&mut *tx, district_id, id, self.clock.now()).await?;
        tx.commit().await?;
        let run = db::runs::get(&mut *conn, district_id, id)
            .await?
            .context("claimed run vanished")?;
        Ok(Some((run, conn)))
    }

    /// Process one queued run, if there is one. Returns whether it did.
    pub async fn run_one(&self) -> Result<bool> {
        let Some((run, mut lock_conn)) = self.claim().await? else {
            return Ok(false);
        };
        let result = self.process(&run).await;
        sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK_SQL})"))
            .bind(run.id)
            .execute(&mut *lock_conn)
            .await?;
        if let Err(e) = result {
            tracing::error!(run = %run.id, error = format!("{e:#}"), "run failed");
        }
        Ok(true)
    }

    /// Work through every queued run (tests drain the queue synchronously).
    pub async fn drain(&self) -> Result<usize> {
        let mut n = 0;
        while self.run_one().await? {
            n += 1;
        }
        Ok(n)
    }

    async fn process(&self, run: &db::runs::Run) -> Result<run::Summary> {
        if run.kind == RunKind::Sync {
            // Roster syncs fetch from their provider instead of reading an uploaded file.
            return crate::sync::execute_run(&self.pool, &self.clock, &self.config, run).await;
        }
        if run.kind == RunKind::Undo {
            // An undo reads what the undone run wrote, not a file.
            return crate::reconcile::undo_run::execute(&self.pool, &self.clock, run).await;
        }
        let options: RunOptions = serde_json::from_value(run.options.clone()).unwrap_or_default();
        let path = run
            .file_path
            .clone()
            .map(PathBuf::from)
            .context("the run has no stored file")?;
        let progress = Arc::new(Progress::default());
        let req = RunRequest {
            district_id: run.district_id,
            run_id: run.id,
            path,
            source: Source::from_db(&run.source),
            dry_run: run.dry_run,
            approved: run.approved,
            options,
            actor_kind: run.submitted_kind,
            actor_id: None,
            actor_label: &run.submitted_by,
            max_bytes: self.config.max_upload_bytes(),
            progress: progress.clone(),
            password_key: crate::sync::crypto::SecretKey::from_config(&self.config)?
                .feed_password_key(),
        };
        let reporter = {
            let pool = self.pool.clone();
            let progress = progress.clone();
            let (district_id, id) = (run.district_id, run.id);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = sqlx::query(
                        "UPDATE runs SET done_rows = $3, total_rows = $4, phase = $5
                         WHERE district_id = $1 AND id = $2 AND status = 'in_progress'",
                    )
                    .bind(district_id)
                    .bind(id)
                    .bind(progress.done.load(Ordering::Relaxed) as i32)
                    .bind(progress.total.load(Ordering::Relaxed) as i32)
                    .bind(progress.phase_name())
                    .execute(&pool)
                    .await;
                }
            })
        };
        let result = run::execute(&self.pool, &self.clock, &req).await;
        reporter.abort();
        if run.kind == RunKind::Drop {
            drop::settle(
                run,
                result
                    .as_ref()
                    .ok()
                    .map(|s| s.status)
                    .unwrap_or(RunStatus::Failed),
            )
            .await;
        }
        result
    }
}

/// Hold a run's liveness lock while a run is carried out outside the workers (the command
/// line), so no server takes it for an orphan. Release it with [`release_run_lock`].
pub async fn hold_run_lock(pool: &PgPool, run_id: Uuid) -> Result<PoolConnection<sqlx::Postgres>> {
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("SELECT pg_advisory_lock({LOCK_SQL})"))
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    Ok(conn)
}

pub async fn release_run_lock(
    mut conn: PoolConnection<sqlx::Postgres>,
    run_id: Uuid,
) -> Result<()> {
    sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK_SQL})"))
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
