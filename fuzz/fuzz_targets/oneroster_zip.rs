//! Bytes → the OneRoster zip reader (`feed::bundle::from_zip`) → the manifest, orgs and
//! users parsers: whatever the bytes, no panic, and memory stays within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::feed::{bundle, oneroster};
use std::collections::HashSet;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let limits = bundle::Limits {
        max_file: 4 * 1024 * 1024,
        max_total: 8 * 1024 * 1024,
        max_ratio: 100,
        max_entries: 1_000,
        // In memory: the reader's files are read back with `get`.
        spill_over: None,
    };
    let Ok(set) = bundle::from_zip(Cursor::new(data), &limits) else {
        return;
    };
    if let Some(m) = set.get("manifest.csv") {
        let _ = oneroster::parse_manifest(m);
    }
    let orgs = set
        .get("orgs.csv")
        .and_then(|o| oneroster::parse_orgs_csv(o, limits.max_file).ok())
        .unwrap_or_default();
    let _ = oneroster::index_orgs(&orgs, &HashSet::new());
    if let Some(u) = set.get("users.csv") {
        let _ = oneroster::parse_users_csv(u, limits.max_file);
    }
});
