//! The gate in front of password hashing: a fixed number of slots (about one per core) and a
//! bounded line of requests waiting for one. Beyond the line a request is refused at once
//! (`Busy`, answered 503 with Retry-After), so a storm of sign-ins costs a few cores' worth
//! of argon2 and never a pile of blocked threads starving PostgreSQL and every other page.
//! Waiting takes no database connection: callers enter the gate before touching the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many slots: the configured number (0 = one per core), and at most half the
/// database pool's connections — a request holds its slot while it counts the attempt and
/// reads the account, so sign-ins can never hold more than half the pool, however many cores.
pub fn slots(configured: usize, cores: usize, pool_connections: usize) -> usize {
    let wanted = if configured == 0 { cores } else { configured };
    wanted.min(pool_connections / 2).max(1)
}

/// Too many requests already in line for a password slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy signing people in; try again in a few seconds")]
pub struct Busy;

#[derive(Clone)]
pub struct PasswordGate {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Arc<Semaphore>,
    /// Requests holding or waiting for a slot.
    admitted: AtomicUsize,
    max_admitted: usize,
}

impl PasswordGate {
    /// `slots` at once (see `slots`), and at most `queue` more waiting.
    pub fn new(slots: usize, queue: usize) -> PasswordGate {
        let slots = slots.max(1);
        PasswordGate {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(slots)),
                admitted: AtomicUsize::new(0),
                max_admitted: slots + queue,
            }),
        }
    }

    /// Wait for a slot, or `Busy` at once when the line is full.
    pub async fn enter(&self) -> Result<Slot, Busy> {
        let before = self.inner.admitted.fetch_add(1, Ordering::SeqCst);
        // Counted from here; given back when the slot (or this future, if dropped) goes.
        let admitted = Admitted(self.inner.clone());
        if before >= self.inner.max_admitted {
            return Err(Busy);
        }
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed");
        Ok(Slot {
            _permit: permit,
            _admitted: admitted,
        })
    }
}

struct Admitted(Arc<Inner>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One password slot, held until dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _admitted: Admitted,
}

impl Slot {
    /// Run CPU-heavy password work (hashing, verifying) off the async threads.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        Ok(tokio::task::spawn_blocking(work).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cores_and_leave_half_the_pool() {
        assert_eq!(slots(0, 2, 20), 2, "one per core");
        assert_eq!(slots(0, 32, 20), 10, "never more than half the pool");
        assert_eq!(slots(4, 2, 20), 4, "as configured");
        assert_eq!(slots(0, 8, 3), 1, "a tiny pool still signs people in");
        assert_eq!(slots(0, 8, 1), 1);
    }

    #[tokio::test]
    async fn beyond_the_slots_and_the_line_is_busy_at_once() {
        let gate = PasswordGate::new(1, 2);
        let held = gate.enter().await.expect("a slot");
        // Two may wait; the fourth is refused without waiting.
        let g1 = gate.clone();
        let g2 = gate.clone();
        let w1 = tokio::spawn(async move { g1.enter().await.map(|_| ()) });
        let w2 = tokio::spawn(async move { g2.enter().await.map(|_| ()) });
        while gate.inner.admitted.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.enter().await.err(), Some(Busy));
        drop(held);
        assert_eq!(w1.await.unwrap(), Ok(()));
        assert_eq!(w2.await.unwrap(), Ok(()));
        assert_eq!(
            gate.inner.admitted.load(Ordering::SeqCst),
            0,
            "all given back"
        );
        assert!(gate.enter().await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_line() {
        let gate = PasswordGate::new(1, 1);
        let held = gate.enter().await.unwrap();
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(20), gate.enter()).await;
        assert!(gave_up.is_err(), "still waiting when it gave up");
        assert_eq!(gate.inner.admitted.load(Ordering::SeqCst), 1, "it left");
        let g = gate.clone();
        let w = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        drop(held);
        assert_eq!(w.await.unwrap(), Ok(()), "the line had room again");
    }
}
