//! A run's liveness lock: a session advisory lock named after the run, held by whoever
//! carries the run out (a queue worker, the command line, an undo). A run left
//! `in_progress` whose lock is free belongs to a worker that died (`jobs` queues it again).
//!
//! This is the only place the lock is taken or released. [`RunLock`] owns the pooled
//! connection whose session holds the lock, and cannot leak it: [`RunLock::release`]
//! unlocks and hands the connection back to the pool; a `RunLock` dropped on any other path
//! (an error returned with `?`, a panic) closes its connection instead of returning it, so
//! PostgreSQL ends the session and frees the lock. [`with_run_lock`] holds the lock around a
//! piece of work and releases it whatever the work returns.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::future::Future;
use uuid::Uuid;

/// The lock's key: one 64-bit number per run.
const KEY: &str = "hashtextextended('rollcall-run:' || $1::text, 0)";

/// A pooled connection set apart for a run's liveness lock (see the module comment).
pub struct RunLock {
    conn: Option<PoolConnection<Postgres>>,
    run_id: Option<Uuid>,
}

impl RunLock {
    /// A connection set apart for a lock not taken yet ([`RunLock::try_lock_in`] takes it
    /// inside a transaction on [`RunLock::conn`]; [`RunLock::holds`] records it then).
    pub async fn reserve(pool: &PgPool) -> sqlx::Result<RunLock> {
        Ok(RunLock {
            conn: Some(pool.acquire().await?),
            run_id: None,
        })
    }

    /// Wait for a run's lock and hold it.
    pub async fn hold(pool: &PgPool, run_id: Uuid) -> sqlx::Result<RunLock> {
        let mut lock = RunLock::reserve(pool).await?;
        sqlx::query(&format!("SELECT pg_advisory_lock({KEY})"))
            .bind(run_id)
            .execute(lock.conn())
            .await?;
        lock.run_id = Some(run_id);
        Ok(lock)
    }

    /// The reserved connection (for the transaction that claims a run).
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a RunLock keeps its connection until dropped")
    }

    /// Try the lock of `run_id` on `conn` (a transaction on [`RunLock::conn`]); a session
    /// lock, so it outlives the transaction. Call [`RunLock::holds`] once it is over.
    pub async fn try_lock_in(conn: &mut PgConnection, run_id: Uuid) -> sqlx::Result<bool> {
        sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({KEY})"))
            .bind(run_id)
            .fetch_one(conn)
            .await
    }

    /// Record that this connection's session holds the lock of `run_id`.
    pub fn holds(&mut self, run_id: Uuid) {
        self.run_id = Some(run_id);
    }

    /// Unlock the run this connection holds, keeping the connection set apart (to lock
    /// another run on it).
    pub async fn unlock(&mut self) -> sqlx::Result<()> {
        if let Some(run_id) = self.run_id {
            sqlx::query(&format!("SELECT pg_advisory_unlock({KEY})"))
                .bind(run_id)
                .execute(self.conn())
                .await?;
            self.run_id = None;
        }
        Ok(())
    }

    /// Unlock and give the connection back to the pool. If unlocking fails the connection
    /// is closed (which frees the lock) and the error returned.
    pub async fn release(mut self) -> sqlx::Result<()> {
        self.unlock().await?;
        // Unlocked: the connection may go back to the pool.
        drop(self.conn.take());
        Ok(())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Not released (even one whose lock was never recorded: a transaction on it may
            // have taken one before failing): the session may hold a lock. Closing it frees the lock; a
            // pooled connection must never carry it to another user.
            conn.close_on_drop();
        }
    }
}

/// Hold the lock of `run_id` while `work` runs, and release it whatever `work` returns.
pub async fn with_run_lock<T, E, F>(pool: &PgPool, run_id: Uuid, work: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<sqlx::Error>,
{
    let lock = RunLock::hold(pool, run_id).await?;
    let result = work.await;
    let released = lock.release().await;
    let value = result?;
    released?;
    Ok(value)
}
