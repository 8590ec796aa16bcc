//! Counts for the Users screen, remembered briefly so that paging through a result (or many
//! admins opening the same list) does not count the same rows again on every page. A count
//! stops at `CAP` ("10,000+"; `SEARCH_CAP` for a search), so even a miss is bounded. Changes made through this screen
//! forget their district's counts at once; changes from runs show within `TTL`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const CAP: i64 = 10_000;
/// A search counts its matches through the trigram index: stop sooner.
pub const SEARCH_CAP: i64 = 1_000;
const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 4096;

type Key = (Uuid, String);

static COUNTS: LazyLock<Mutex<HashMap<Key, (Instant, i64)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

pub fn get(district_id: Uuid, key: &str) -> Option<i64> {
    let map = COUNTS.lock().ok()?;
    map.get(&(district_id, key.to_string()))
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, n)| *n)
}

pub fn put(district_id: Uuid, key: String, n: i64) {
    if let Ok(mut map) = COUNTS.lock() {
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert((district_id, key), (Instant::now(), n));
    }
}

/// Forget a district's counts (after a change).
pub fn forget(district_id: Uuid) {
    if let Ok(mut map) = COUNTS.lock() {
        map.retain(|(d, _), _| *d != district_id);
    }
}
