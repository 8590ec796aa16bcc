//! Lookups over the district's current users: by GUID, custom_id, email and username.
//!
//! The maps hold references into the caller's slice (plus an owned key only where a value
//! had to be lower-cased), so a million users cost a few hash tables, not a copy of them.

use std::borrow::Cow;
use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::CurrentUser;

/// Lower-case a value that compares case-insensitively, borrowing when it already is.
pub(super) fn fold_case(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// An optional value, or `None` when it is blank.
pub(super) fn nonblank(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// Indexes of positions in the current-users slice. When the database somehow holds a
/// value twice, the first user wins (the unique constraints make that impossible).
pub(super) struct Index<'a> {
    guid: HashMap<Uuid, usize>,
    custom_id: HashMap<&'a str, usize>,
    email: HashMap<Cow<'a, str>, usize>,
    username: HashMap<Cow<'a, str>, usize>,
}

impl<'a> Index<'a> {
    pub(super) fn new(users: &'a [CurrentUser]) -> Index<'a> {
        let n = users.len();
        let mut ix = Index {
            guid: HashMap::with_capacity(n),
            custom_id: HashMap::with_capacity(n),
            email: HashMap::with_capacity(n),
            username: HashMap::with_capacity(n),
        };
        for (i, u) in users.iter().enumerate() {
            ix.guid.entry(u.user_guid).or_insert(i);
            if let Some(c) = nonblank(&u.custom_id) {
                ix.custom_id.entry(c).or_insert(i);
            }
            if let Some(e) = nonblank(&u.email) {
                ix.email.entry(fold_case(e)).or_insert(i);
            }
            if !u.username.is_empty() {
                ix.username.entry(fold_case(&u.username)).or_insert(i);
            }
        }
        ix
    }

    pub(super) fn by_guid(&self, guid: Uuid) -> Option<usize> {
        self.guid.get(&guid).copied()
    }

    /// Exact match.
    pub(super) fn by_custom_id(&self, custom_id: &str) -> Option<usize> {
        self.custom_id.get(custom_id).copied()
    }

    /// Case-insensitive.
    pub(super) fn by_email(&self, email: &str) -> Option<usize> {
        self.email.get(fold_case(email).as_ref()).copied()
    }

    /// Case-insensitive.
    pub(super) fn by_username(&self, username: &str) -> Option<usize> {
        self.username.get(fold_case(username).as_ref()).copied()
    }
}
