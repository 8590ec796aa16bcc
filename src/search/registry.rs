//! The search indexes a running portal holds: one per large district that has been searched,
//! built in the background, dropped when old or when memory runs over its budget.
//!
//! A district's index is built the first time someone searches it (that search, and any
//! until the index is ready, are answered by PostgreSQL alone). Each use checks with the
//! database that no change to the district's users has committed since the index was read
//! (`db::search_index::is_stale`); a stale index is not used, and is rebuilt — at most once
//! per `REBUILD_GAP`, so a district under constant change is searched in PostgreSQL rather
//! than rebuilt over and over.

use super::{NameIndex, NameIndexBuilder, Status};
use crate::db::search_index::IndexRow;
use crate::domain::UserStatus;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Least time between two builds of one district's index.
const REBUILD_GAP: Duration = Duration::from_secs(10);
/// An index older than this is rebuilt (it also bounds how long the database keeps the
/// change notes an index is checked against: see the retention job).
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a district found too small for an index (or whose index would not fit the memory
/// budget) is not tried again.
const SMALL_AGAIN: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Slot {
    index: Option<Arc<NameIndex>>,
    built: Option<Instant>,
    used: Option<Instant>,
    building: bool,
    started: Option<Instant>,
    small_until: Option<Instant>,
}

struct Inner {
    slots: Mutex<HashMap<Uuid, Slot>>,
    min_users: i64,
    max_bytes: usize,
    /// Pages answered from an index (for tests and the log).
    served: AtomicU64,
    /// One build at a time: each takes a core for a couple of seconds at 1,000,000 users.
    builds: tokio::sync::Semaphore,
}

/// A current index and the search term as its text holds it.
pub struct Current {
    pub index: Arc<NameIndex>,
    pub needle: String,
}

/// Cheap to clone: one registry per running portal.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Registry {
    /// Districts with at least `min_users` live users get an index; all indexes together stay
    /// within `max_mb` MiB (0: no indexes at all).
    pub fn new(min_users: i64, max_mb: u64) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                min_users,
                max_bytes: usize::try_from(max_mb.saturating_mul(1024 * 1024))
                    .unwrap_or(usize::MAX),
                served: AtomicU64::new(0),
                builds: tokio::sync::Semaphore::new(1),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.max_bytes > 0
    }

    /// The district's index, if one is built and not too old (it may still be stale: the
    /// caller checks with the database).
    pub fn get(&self, district_id: Uuid) -> Option<Arc<NameIndex>> {
        let mut slots = self.inner.slots.lock().ok()?;
        let slot = slots.get_mut(&district_id)?;
        if slot.built.is_none_or(|b| b.elapsed() > MAX_AGE) {
            return None;
        }
        slot.used = Some(Instant::now());
        slot.index.clone()
    }

    /// The district's index if no change to its users has committed since it was read, with
    /// `term` as its text holds it (folded: `domain::fold`); otherwise `None`, and a new
    /// index is asked for (`want`).
    pub async fn current(
        &self,
        pool: &PgPool,
        conn: &mut PgConnection,
        district_id: Uuid,
        term: &str,
    ) -> sqlx::Result<Option<Current>> {
        let current = match self.get(district_id) {
            Some(index) => {
                crate::db::search_index::current_needle(conn, district_id, index.snapshot(), term)
                    .await?
                    .map(|needle| Current { index, needle })
            }
            None => None,
        };
        if current.is_none() {
            self.want(pool, district_id);
        }
        Ok(current)
    }

    /// Note that a page was answered from an index.
    pub fn note_served(&self) {
        self.inner.served.fetch_add(1, Ordering::Relaxed);
    }

    /// How many pages were answered from an index.
    pub fn served(&self) -> u64 {
        self.inner.served.load(Ordering::Relaxed)
    }

    /// A search could not use an index (none, too old, or stale): build one in the
    /// background, unless one is being built, was started lately, or the district is small.
    fn want(&self, pool: &PgPool, district_id: Uuid) {
        if !self.enabled() {
            return;
        }
        {
            let Ok(mut slots) = self.inner.slots.lock() else {
                return;
            };
            let slot = slots.entry(district_id).or_default();
            let now = Instant::now();
            if slot.building
                || slot.started.is_some_and(|s| now - s < REBUILD_GAP)
                || slot.small_until.is_some_and(|u| now < u)
            {
                return;
            }
            slot.building = true;
            slot.started = Some(now);
        }
        let this = self.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = this.build(&pool, district_id, false).await {
                tracing::warn!(district = %district_id, error = %e, "search index not built");
            }
        });
    }

    /// Build the district's index now (`force`: whatever its size) and put it in place.
    /// Returns whether an index was built.
    pub async fn build(
        &self,
        pool: &PgPool,
        district_id: Uuid,
        force: bool,
    ) -> anyhow::Result<bool> {
        let result = self.build_inner(pool, district_id, force).await;
        if let Ok(mut slots) = self.inner.slots.lock() {
            let slot = slots.entry(district_id).or_default();
            slot.building = false;
            match &result {
                Ok(Some(index)) => {
                    slot.index = Some(index.clone());
                    slot.built = Some(Instant::now());
                    slot.used = Some(Instant::now());
                    slot.small_until = None;
                }
                Ok(None) => {
                    slot.index = None;
                    slot.built = None;
                    slot.small_until = Some(Instant::now() + SMALL_AGAIN);
                }
                Err(_) => {}
            }
            Self::trim(&mut slots, self.inner.max_bytes);
        }
        Ok(result?.is_some())
    }

    async fn build_inner(
        &self,
        pool: &PgPool,
        district_id: Uuid,
        force: bool,
    ) -> anyhow::Result<Option<Arc<NameIndex>>> {
        let _turn = self.inner.builds.acquire().await?;
        if !force {
            let live =
                crate::db::search_index::live_users_upto(pool, district_id, self.inner.min_users)
                    .await?;
            if live < self.inner.min_users {
                return Ok(None);
            }
        }
        let started = Instant::now();
        let index = load(pool, district_id).await?;
        if index.approx_bytes() > self.inner.max_bytes {
            tracing::warn!(
                district = %district_id,
                users = index.len(),
                mib = index.approx_bytes() / (1024 * 1024),
                "search index not kept: larger than the whole memory budget (ROLLCALL_SEARCH_INDEX_MAX_MB)"
            );
            return Ok(None);
        }
        tracing::info!(
            district = %district_id,
            users = index.len(),
            mib = index.approx_bytes() / (1024 * 1024),
            ms = started.elapsed().as_millis() as u64,
            "search index built"
        );
        Ok(Some(Arc::new(index)))
    }

    /// Drop the least recently used indexes until the rest fit the budget.
    fn trim(slots: &mut HashMap<Uuid, Slot>, max_bytes: usize) {
        loop {
            let total: usize = slots
                .values()
                .filter_map(|s| s.index.as_ref())
                .map(|i| i.approx_bytes())
                .sum();
            if total <= max_bytes {
                return;
            }
            let Some(oldest) = slots
                .iter()
                .filter(|(_, s)| s.index.is_some())
                .min_by_key(|(_, s)| s.used)
                .map(|(d, _)| *d)
            else {
                return;
            };
            if let Some(s) = slots.get_mut(&oldest) {
                tracing::info!(district = %oldest, "search index dropped: over the memory budget");
                s.index = None;
                s.built = None;
            }
        }
    }
}

/// Read the district's live users (`db::search_index::read_live_users`, one snapshot) and
/// build its index. The rows go to a builder on a blocking thread, so memory holds the
/// index, not the result set, and the async workers are not held up.
pub async fn load(pool: &PgPool, district_id: Uuid) -> anyhow::Result<NameIndex> {
    let mut builder = None;
    crate::db::search_index::read_live_users(pool, district_id, |snapshot| {
        let (send, mut receive) = tokio::sync::mpsc::channel::<Vec<IndexRow>>(4);
        builder = Some(tokio::task::spawn_blocking(move || {
            let mut b = NameIndexBuilder::new(snapshot);
            while let Some(batch) = receive.blocking_recv() {
                for row in batch {
                    let status = match row.status {
                        UserStatus::Inactive => Status::Inactive,
                        UserStatus::Active => Status::Active,
                    };
                    b.push(row.id, &row.search_text, status);
                }
            }
            b.finish()
        }));
        send
    })
    .await?;
    let builder = builder.ok_or_else(|| anyhow::anyhow!("the index's rows were never read"))?;
    Ok(builder.await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{NameIndexBuilder, Status};

    fn index(users: u128) -> Arc<NameIndex> {
        let mut b = NameIndexBuilder::new(String::new());
        for i in 0..users {
            b.push(
                Uuid::from_u128(i + 1),
                &format!("user {i} u{i}@d.org"),
                Status::Active,
            );
        }
        Arc::new(b.finish())
    }

    #[test]
    fn over_the_budget_the_least_recently_used_index_goes() {
        let now = Instant::now();
        let (old, new) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut slots = HashMap::new();
        for (d, used) in [(old, now - Duration::from_secs(60)), (new, now)] {
            slots.insert(
                d,
                Slot {
                    index: Some(index(2_000)),
                    built: Some(used),
                    used: Some(used),
                    ..Slot::default()
                },
            );
        }
        let each = slots[&old].index.as_ref().unwrap().approx_bytes();
        assert!(each > 50_000, "{each}");
        Registry::trim(&mut slots, 2 * each);
        assert!(
            slots[&old].index.is_some() && slots[&new].index.is_some(),
            "both fit"
        );
        Registry::trim(&mut slots, 2 * each - 1);
        assert!(slots[&old].index.is_none(), "the older one is dropped");
        assert!(slots[&new].index.is_some(), "the newer one stays");
        Registry::trim(&mut slots, 0);
        assert!(slots.values().all(|s| s.index.is_none()));
    }

    #[test]
    fn a_registry_with_no_memory_builds_nothing() {
        let r = Registry::new(0, 0);
        assert!(!r.enabled());
        assert!(r.get(Uuid::from_u128(1)).is_none());
        assert!(Registry::new(0, 1).enabled());
    }
}
