//! What the Users screen remembers briefly, per district, so that paging through a result (or
//! many admins opening the same list) does not redo the same work on every page:
//! - counts, which stop at `CAP` ("10,000+"; `SEARCH_CAP` for a search), so even a miss is
//!   bounded;
//! - the filter choices (the district's schools and user sources).
//!
//! Every entry carries the district's change marker (`db::user_list::change_marker`: its runs'
//! latest finish) and is used only while the marker is the same, so a finished upload or
//! sync shows at once; changes made through the Users screen forget the district's entries;
//! anything else (a school renamed) shows within `TTL`.

use crate::db::schools::SchoolOption;
use crate::db::user_filter::UserFilter;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const CAP: i64 = 10_000;
/// A search counts its matches through the trigram index: stop sooner.
pub const SEARCH_CAP: i64 = crate::db::user_list::SEARCH_LOOKUP_MAX;
const TTL: Duration = Duration::from_secs(60);
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

/// What a count is remembered under: the admin's scope (a school admin's schools) and the
/// filter, as typed values (two requests share an entry exactly when they are equal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub scope: Option<Vec<Uuid>>,
    pub filter: UserFilter,
}

/// An entry's key within its district.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum What {
    Count(CountKey),
    /// The filter choices a scope sees (a school admin's schools only).
    Options(Option<Vec<Uuid>>),
}

type Key = (Uuid, What);
/// Each entry: when it was put, the change marker it was computed under, the value.
type Entries = HashMap<Key, (Instant, String, Value)>;

static CACHE: LazyLock<Mutex<Entries>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn get(district_id: Uuid, key: What, marker: &str) -> Option<Value> {
    let map = CACHE.lock().ok()?;
    map.get(&(district_id, key))
        .filter(|(at, m, _)| at.elapsed() < TTL && m == marker)
        .map(|(_, _, v)| v.clone())
}

fn put(district_id: Uuid, key: What, marker: &str, value: Value) {
    if let Ok(mut map) = CACHE.lock() {
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _, _)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            (district_id, key),
            (Instant::now(), marker.to_string(), value),
        );
    }
}

pub fn count(district_id: Uuid, key: &CountKey, marker: &str) -> Option<i64> {
    match get(district_id, What::Count(key.clone()), marker)? {
        Value::Count(n) => Some(n),
        Value::Options(_) => None,
    }
}

pub fn put_count(district_id: Uuid, key: &CountKey, marker: &str, n: i64) {
    put(
        district_id,
        What::Count(key.clone()),
        marker,
        Value::Count(n),
    );
}

pub fn options(
    district_id: Uuid,
    scope: Option<&[Uuid]>,
    marker: &str,
) -> Option<Arc<FilterOptions>> {
    match get(
        district_id,
        What::Options(scope.map(<[Uuid]>::to_vec)),
        marker,
    )? {
        Value::Options(o) => Some(o),
        Value::Count(_) => None,
    }
}

pub fn put_options(
    district_id: Uuid,
    scope: Option<&[Uuid]>,
    marker: &str,
    options: Arc<FilterOptions>,
) {
    put(
        district_id,
        What::Options(scope.map(<[Uuid]>::to_vec)),
        marker,
        Value::Options(options),
    );
}

/// Forget a district's entries (after a change).
pub fn forget(district_id: Uuid) {
    if let Ok(mut map) = CACHE.lock() {
        map.retain(|(d, _), _| *d != district_id);
    }
}
