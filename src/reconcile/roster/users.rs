//! Users as rosters see them: the district's current users overlaid with what the run's user
//! plan writes, found by an enrollment's user reference without copying the district.
//!
//! Both sides are packed ([`CurrentUsers`]) and looked up through the planner's position
//! index, so a million users cost their packed form plus a few bytes of index each, not a
//! second copy with their keys as strings (issue 15: the resolver's maps took ~300 bytes a
//! user).

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};
use uuid::Uuid;

use super::super::plan::{Index, NewUser, Plan as UserPlan};
use super::UserRef;
use crate::domain::{CurrentUser, CurrentUsers, FieldSet, PortalRole, Role, Source};

/// What a run's user plan leaves written: the users it creates, updates or restores (in line
/// order, packed) and the users it archives.
#[derive(Debug, Default)]
pub struct WrittenUsers {
    users: CurrentUsers,
    archived: HashSet<Uuid>,
}

impl WrittenUsers {
    pub fn of(plan: Option<&UserPlan>) -> WrittenUsers {
        let Some(plan) = plan else {
            return WrittenUsers::default();
        };
        let mut users = CurrentUsers::default();
        // Every user the plan writes, in line order: the rows' own writes merged with, in a
        // compact plan, the users it creates (decoded one at a time).
        let mut own = plan
            .rows
            .iter()
            .filter_map(|row| row.write.as_deref().map(|w| (row.line, w)))
            .peekable();
        let mut created = plan.created.iter().peekable();
        loop {
            let take_own = match (own.peek(), created.peek()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let w = if take_own {
                own.next().map(|(_, w)| Cow::Borrowed(w))
            } else {
                created.next().map(|(_, w)| Cow::<NewUser>::Owned(w))
            };
            if let Some(w) = w {
                users.push(&as_current(&w));
            }
        }
        users.shrink_to_fit();
        WrittenUsers {
            users,
            archived: plan.archive.iter().copied().collect(),
        }
    }
}

/// A written user in the packed form (what rosters read of them: keys, role, schools, owner).
fn as_current(w: &NewUser) -> CurrentUser {
    CurrentUser {
        user_guid: w.user_guid,
        custom_id: w.custom_id.clone(),
        email: w.email.clone(),
        username: w.username.clone(),
        first_name: Default::default(),
        middle_name: Default::default(),
        last_name: Default::default(),
        role: w.role,
        schools: w.schools.clone(),
        grade: w.grade,
        position: Default::default(),
        status: w.status,
        archived: false,
        source: w.source.clone(),
        prevent_archiving: w.prevent_archiving,
        source_key: w.source_key.clone(),
        portal_role: PortalRole::User,
        kept: FieldSet::default(),
        feed_password_mac: None,
    }
}

/// One side (current or written) with its lookups.
struct Side<'a> {
    users: &'a CurrentUsers,
    /// By GUID, custom_id and email: made at the first lookup that needs it. A provider's
    /// feed names its users by `source_key` only, and four tables over a million users are
    /// ~42 MB (issue 19, memory).
    index: std::cell::OnceCell<Index<'a>>,
    /// Positions of the run's source's users by `source_key`.
    source_keys: HashTable<u32>,
}

impl<'a> Side<'a> {
    fn new(users: &'a CurrentUsers, source: &Source, hasher: &DefaultHashBuilder) -> Side<'a> {
        let mut source_keys = HashTable::new();
        for i in 0..users.len() {
            if users.source(i) != source {
                continue;
            }
            let Some(key) = users.source_key(i).filter(|k| !k.is_empty()) else {
                continue;
            };
            let hash = hasher.hash_one(key);
            // The last user with a key wins, as a feed read in order would have it.
            match source_keys.find_mut(hash, |&j| users.source_key(j as usize) == Some(key)) {
                Some(j) => *j = i as u32,
                None => {
                    source_keys.insert_unique(hash, i as u32, |&j| {
                        hasher.hash_one(users.source_key(j as usize).unwrap_or_default())
                    });
                }
            }
        }
        Side {
            users,
            index: std::cell::OnceCell::new(),
            source_keys,
        }
    }

    fn index(&self) -> &Index<'a> {
        self.index.get_or_init(|| Index::new(self.users))
    }

    /// The position of the user with `guid` (none on a side without users, at no cost).
    fn by_guid(&self, guid: Uuid) -> Option<usize> {
        if self.users.is_empty() {
            return None;
        }
        self.index().by_guid(guid)
    }

    fn find(&self, user: &UserRef, hasher: &DefaultHashBuilder) -> Option<usize> {
        match user {
            UserRef::Key(k) => {
                let k = k.trim();
                Uuid::parse_str(k)
                    .ok()
                    .and_then(|g| self.by_guid(g))
                    .or_else(|| {
                        (!k.is_empty())
                            .then(|| self.index().by_custom_id(k))
                            .flatten()
                    })
                    .or_else(|| (!k.is_empty()).then(|| self.index().by_email(k)).flatten())
            }
            UserRef::Provider(k) => {
                let k = k.trim();
                self.source_keys
                    .find(hasher.hash_one(k), |&j| {
                        self.users.source_key(j as usize) == Some(k)
                    })
                    .map(|&j| j as usize)
            }
        }
    }
}

/// A user an enrollment refers to, as this run leaves them.
#[derive(Clone, Copy)]
pub(super) struct RosterUser<'r> {
    users: &'r CurrentUsers,
    at: usize,
    pub(super) id: Uuid,
    pub(super) role: Role,
    pub(super) archived: bool,
}

impl RosterUser<'_> {
    /// May the user be enrolled in a class of `school`? A user of no school may be
    /// enrolled anywhere; anyone else only at one of their schools.
    pub(super) fn may_join(&self, school: &str) -> bool {
        let mut none = true;
        for s in self.users.schools(self.at) {
            if s == school {
                return true;
            }
            none = false;
        }
        none
    }
}

/// Finds users by a feed's [`UserRef`]: what the run writes first, then the district as it
/// was; `source`'s users also by `source_key`.
pub struct UserResolver<'a> {
    hasher: DefaultHashBuilder,
    current: Side<'a>,
    written: Side<'a>,
    archived: &'a HashSet<Uuid>,
}

impl<'a> UserResolver<'a> {
    pub fn new(
        current: &'a CurrentUsers,
        written: &'a WrittenUsers,
        source: &Source,
    ) -> UserResolver<'a> {
        let hasher = DefaultHashBuilder::default();
        UserResolver {
            current: Side::new(current, source, &hasher),
            written: Side::new(&written.users, source, &hasher),
            archived: &written.archived,
            hasher,
        }
    }

    pub(super) fn find(&self, user: &UserRef) -> Option<RosterUser<'_>> {
        let (users, at) = match self.written.find(user, &self.hasher) {
            Some(at) => (self.written.users, at),
            None => {
                let at = self.current.find(user, &self.hasher)?;
                // A user the run writes is read as written.
                match self.written.by_guid(self.current.users.guid(at)) {
                    Some(w) => (self.written.users, w),
                    None => (self.current.users, at),
                }
            }
        };
        let id = users.guid(at);
        Some(RosterUser {
            users,
            at,
            id,
            role: users.role(at),
            archived: users.archived(at) || self.archived.contains(&id),
        })
    }
}
