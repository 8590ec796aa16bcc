//! What the Users screen remembers briefly, per district, so that paging through a result (or
//! many admins opening the same list) does not redo the same work on every page:
//! - counts, which stop at `CAP` ("10,000+"; `SEARCH_CAP` for a search), so even a miss is
//!   bounded;
//! - the filter choices (the district's schools and user sources).
//!
//! Changes made through the Users screen forget their district's entries at once; changes
//! from runs, syncs or the Schools screen show within `TTL`.

use crate::db::schools::SchoolOption;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const CAP: i64 = 10_000;
/// A search counts its matches through the trigram index: stop sooner.
pub const SEARCH_CAP: i64 = 1_000;
const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 4096;

/// The choices of the list's filters.
pub struct FilterOptions {
    pub schools: Vec<SchoolOption>,
    pub sources: Vec<String>,
}

#[derive(Clone)]
enum Value {
    Count(i64),
    Options(Arc<FilterOptions>),
}

type Key = (Uuid, String);

static CACHE: LazyLock<Mutex<HashMap<Key, (Instant, Value)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn get(district_id: Uuid, key: String) -> Option<Value> {
    let map = CACHE.lock().ok()?;
    map.get(&(district_id, key))
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, v)| v.clone())
}

fn put(district_id: Uuid, key: String, value: Value) {
    if let Ok(mut map) = CACHE.lock() {
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert((district_id, key), (Instant::now(), value));
    }
}

pub fn count(district_id: Uuid, key: &str) -> Option<i64> {
    match get(district_id, format!("count|{key}"))? {
        Value::Count(n) => Some(n),
        Value::Options(_) => None,
    }
}

pub fn put_count(district_id: Uuid, key: &str, n: i64) {
    put(district_id, format!("count|{key}"), Value::Count(n));
}

pub fn options(district_id: Uuid, key: &str) -> Option<Arc<FilterOptions>> {
    match get(district_id, format!("options|{key}"))? {
        Value::Options(o) => Some(o),
        Value::Count(_) => None,
    }
}

pub fn put_options(district_id: Uuid, key: &str, options: Arc<FilterOptions>) {
    put(
        district_id,
        format!("options|{key}"),
        Value::Options(options),
    );
}

/// Forget a district's entries (after a change).
pub fn forget(district_id: Uuid) {
    if let Ok(mut map) = CACHE.lock() {
        map.retain(|(d, _), _| *d != district_id);
    }
}
