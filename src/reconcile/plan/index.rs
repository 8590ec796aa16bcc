//! Lookups over the district's current users: by GUID, custom_id, email and username.
//!
//! Each lookup is a hash table of positions in the caller's slice (4 bytes a user), hashed
//! from the users' own values: a million users cost four small tables, not a copy of their
//! keys (the tables of `(key, position)` pairs they replaced took ~230 MiB at 1,000,000).
//!
//! Each table is made the first time it is asked (~10 MB at a million users): a feed whose
//! rows all carry a `custom_id` and change nothing makes that one table alone, and a feed
//! that never names a user by GUID never makes the GUID table.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use uuid::Uuid;

use crate::domain::CurrentUsers;

pub(super) use crate::domain::fold::fold_case;

/// An optional value, or `None` when it is blank.
pub(super) fn nonblank<S: AsRef<str>>(v: &Option<S>) -> Option<&str> {
    v.as_ref()
        .map(AsRef::as_ref)
        .filter(|s: &&str| !s.trim().is_empty())
}

/// The keys besides the GUID a user is found by, as the tables hash and compare them.
#[derive(Clone, Copy)]
enum Key {
    CustomId,
    /// Case-insensitive.
    Email,
    /// Case-insensitive.
    Username,
}

impl Key {
    /// The user's value for this key, folded where the key compares case-insensitively;
    /// `None` when blank (not indexed).
    fn of(self, users: &CurrentUsers, i: usize) -> Option<Cow<'_, str>> {
        match self {
            Key::CustomId => users
                .custom_id(i)
                .filter(|s| !s.trim().is_empty())
                .map(Cow::Borrowed),
            Key::Email => users
                .email(i)
                .filter(|s| !s.trim().is_empty())
                .map(fold_case),
            Key::Username => {
                let name = users.username(i);
                (!name.is_empty()).then(|| fold_case(name))
            }
        }
    }
}

/// Indexes of positions in the current-users slice. When the database somehow holds a
/// value twice, the first user wins (the unique constraints make that impossible).
pub(crate) struct Index<'a> {
    users: &'a CurrentUsers,
    hasher: DefaultHashBuilder,
    guid: OnceCell<HashTable<u32>>,
    custom_id: OnceCell<HashTable<u32>>,
    email: OnceCell<HashTable<u32>>,
    username: OnceCell<HashTable<u32>>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(users: &'a CurrentUsers) -> Index<'a> {
        assert!(
            u32::try_from(users.len()).is_ok(),
            "more users than an index holds"
        );
        Index {
            users,
            hasher: DefaultHashBuilder::default(),
            guid: OnceCell::new(),
            custom_id: OnceCell::new(),
            email: OnceCell::new(),
            username: OnceCell::new(),
        }
    }

    fn guid_table(&self) -> &HashTable<u32> {
        self.guid.get_or_init(|| {
            let (users, hasher) = (self.users, &self.hasher);
            let mut table = HashTable::with_capacity(users.len());
            for at in 0..users.len() {
                let guid = users.guid(at);
                let hash = hasher.hash_one(guid);
                if table
                    .find(hash, |&j| users.guid(j as usize) == guid)
                    .is_none()
                {
                    // Fewer users than `u32::MAX` (checked by `new`).
                    table.insert_unique(hash, at as u32, |&j| {
                        hasher.hash_one(users.guid(j as usize))
                    });
                }
            }
            table
        })
    }

    fn table(&self, key: Key) -> &HashTable<u32> {
        let cell = match key {
            Key::CustomId => &self.custom_id,
            Key::Email => &self.email,
            Key::Username => &self.username,
        };
        cell.get_or_init(|| {
            let (users, hasher) = (self.users, &self.hasher);
            let hash_at = |j: u32| {
                key.of(users, j as usize)
                    .map(|v| hasher.hash_one(v.as_ref()))
                    .unwrap_or_default()
            };
            let mut table = HashTable::with_capacity(users.len());
            for at in 0..users.len() {
                let Some(value) = key.of(users, at) else {
                    continue;
                };
                let hash = hasher.hash_one(value.as_ref());
                let held = |&j: &u32| key.of(users, j as usize).as_deref() == Some(value.as_ref());
                if table.find(hash, held).is_none() {
                    // Fewer users than `u32::MAX` (checked by `new`).
                    table.insert_unique(hash, at as u32, |&j| hash_at(j));
                }
            }
            table
        })
    }

    fn find_guid(&self, hash: u64, guid: Uuid) -> Option<usize> {
        self.guid_table()
            .find(hash, |&j| self.users.guid(j as usize) == guid)
            .map(|&j| j as usize)
    }

    /// `value` already folded as `key` folds it.
    fn find(&self, key: Key, hash: u64, value: &str) -> Option<usize> {
        self.table(key)
            .find(hash, |&j| {
                key.of(self.users, j as usize).as_deref() == Some(value)
            })
            .map(|&j| j as usize)
    }

    fn lookup(&self, key: Key, value: &str) -> Option<usize> {
        self.find(key, self.hasher.hash_one(value), value)
    }

    pub(crate) fn by_guid(&self, guid: Uuid) -> Option<usize> {
        self.find_guid(self.hasher.hash_one(guid), guid)
    }

    /// Exact match.
    pub(crate) fn by_custom_id(&self, custom_id: &str) -> Option<usize> {
        self.lookup(Key::CustomId, custom_id)
    }

    /// Case-insensitive.
    pub(crate) fn by_email(&self, email: &str) -> Option<usize> {
        self.lookup(Key::Email, fold_case(email).as_ref())
    }

    /// Case-insensitive.
    pub(crate) fn by_username(&self, username: &str) -> Option<usize> {
        self.lookup(Key::Username, fold_case(username).as_ref())
    }
}
