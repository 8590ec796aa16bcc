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
use crate::db::run_lock::RunLock;
use crate::domain::{RunKind, RunStatus, Source};
use crate::intake::Inbox;
use crate::reconcile::run::{self, Progress, RunOptions, RunRequest};
use anyhow::{Context, Result};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Notify;

/// What the queue needs, cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// Wakes the workers when a run is queued.
    pub notify: Arc<Notify>,
    /// What the intake needs (the same wake-up).
    pub inbox: Inbox,
}

impl AsRef<Inbox> for Queue {
    fn as_ref(&self) -> &Inbox {
        &self.inbox
    }
}

impl Queue {
    pub fn new(pool: PgPool, config: Arc<Config>, clock: Clock) -> Queue {
        let notify = Arc::new(Notify::new());
        let inbox = Inbox {
            pool: pool.clone(),
            data_dir: config.data_dir.clone(),
            max_upload_mb: config.max_upload_mb,
            wake: notify.clone(),
        };
        Queue {
            pool,
            config,
            clock,
            notify,
            inbox,
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
            // Shutting down (the pool closed on SIGTERM): stop, rather than log an error for
            // every worker as it finds the pool gone.
            if self.pool.is_closed() {
                return;
            }
            match self.run_one().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => self.failed(&format!("job worker {n}"), &e),
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
            if self.pool.is_closed() {
                return;
            }
            if let Err(e) = self.requeue_orphans().await {
                self.failed("requeueing orphaned runs", &e);
            }
            if let Err(e) = crate::sync::pause::resume_due(&self.pool, self.clock.now()).await {
                self.failed("ending due pauses", &e);
            }
            if let Err(e) = drop::scan(&self).await {
                self.failed("drop folder scan", &e);
            }
            if tick.is_multiple_of(720)
                && let Err(e) = retention::purge(&self.pool, &self.config, self.clock.now()).await
            {
                self.failed("retention purge", &e);
            }
            tick += 1;
            tokio::time::sleep(Duration::from_secs(self.config.drop_poll_secs.max(1))).await;
        }
    }

    /// Log a worker's or housekeeping's error, unless the process is shutting down (its pool
    /// closed on SIGTERM): then each loop stops at its next turn, and an error from the pool
    /// being gone is no fault to report.
    fn failed(&self, what: &str, e: &anyhow::Error) {
        if !self.pool.is_closed() {
            tracing::error!(error = format!("{e:#}"), "{what} failed");
        }
    }

    /// Runs left in progress by a worker that is gone go back to the queue.
    pub async fn requeue_orphans(&self) -> Result<u64> {
        let candidates = db::queue::in_progress(&self.pool).await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let mut requeued = 0;
        let mut lock = RunLock::reserve(&self.pool).await?;
        for (district_id, id) in candidates {
            if !RunLock::try_lock_in(lock.conn(), id).await? {
                continue; // a live worker has it
            }
            lock.holds(id);
            let orphan = db::queue::requeue_orphan(lock.conn(), district_id, id).await?;
            lock.unlock().await?;
            if orphan {
                tracing::warn!(run = %id, "run requeued after its worker stopped");
                requeued += 1;
            }
        }
        lock.release().await?;
        if requeued > 0 {
            self.notify.notify_waiters();
        }
        Ok(requeued)
    }

    /// Take the oldest queued run of a district with nothing in progress, skipping runs
    /// waiting for their next attempt (`not_before` still ahead on the clock). The returned
    /// lock holds the run's liveness lock.
    async fn claim(&self) -> Result<Option<(db::runs::Run, RunLock)>> {
        let mut lock = RunLock::reserve(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(lock.conn()).await?;
        let Some((district_id, id)) = db::queue::pick_next(&mut tx, self.clock.now()).await? else {
            tx.rollback().await?;
            lock.release().await?;
            return Ok(None);
        };
        // Taken inside the transaction, so the run is never seen in progress without it.
        // Should anything below fail, the dropped `lock` closes its connection (and frees it).
        if !RunLock::try_lock_in(&mut tx, id).await? {
            tx.rollback().await?;
            lock.release().await?;
            return Ok(None);
        }
        db::runs::mark_started(&mut *tx, district_id, id, self.clock.now()).await?;
        tx.commit().await?;
        lock.holds(id);
        let run = db::runs::get(lock.conn(), district_id, id)
            .await?
            .context("claimed run vanished")?;
        Ok(Some((run, lock)))
    }

    /// Process one queued run, if there is one. Returns whether it did.
    pub async fn run_one(&self) -> Result<bool> {
        let Some((run, lock)) = self.claim().await? else {
            return Ok(false);
        };
        let result = self.process(&run).await;
        lock.release().await?;
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

    /// End a run that could not start: Failed, with `message`, nothing changed (a drop
    /// folder's file moves on to `failed/`).
    async fn fail_unstarted(&self, run: &db::runs::Run, message: String) -> Result<run::Summary> {
        tracing::error!(run = %run.id, reason = %message, "run failed before it started");
        let finish = db::runs::Finish::ended(RunStatus::Failed, message.clone());
        db::runs::finish(
            &self.pool,
            run.district_id,
            run.id,
            &finish,
            self.clock.now(),
        )
        .await?;
        if run.kind == RunKind::Drop {
            drop::settle(run, RunStatus::Failed).await;
        }
        Ok(run::Summary::nothing_applied(
            run.id,
            RunStatus::Failed,
            message,
            run.dry_run,
        ))
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
        let options = match RunOptions::from_stored(&run.options) {
            Ok(options) => options,
            // Defaults in their place would lose the run's mapping, scope or overrides: the
            // run fails, saying why, and changes nothing.
            Err(e) => return self.fail_unstarted(run, format!("{e:#}")).await,
        };
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
            password_key: crate::crypto::SecretKey::from_config(&self.config)?.feed_password_key(),
        };
        let reporter = {
            let pool = self.pool.clone();
            let progress = progress.clone();
            let (district_id, id) = (run.district_id, run.id);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = db::queue::report_progress(
                        &pool,
                        district_id,
                        id,
                        progress.done.load(Ordering::Relaxed) as i32,
                        progress.total.load(Ordering::Relaxed) as i32,
                        progress.phase_name(),
                    )
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
