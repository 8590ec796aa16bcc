//! Users as rosters see them: the district's current users overlaid with what the run's user
//! plan writes, found by an enrollment's user reference without copying the district.
//!
//! Both sides are packed ([`CurrentUsers`]) and looked up through the planner's position
//! index, so a million users cost their packed form plus a few bytes of index each, not a
//! second copy with their keys as strings (issue 15: the resolver's maps took ~300 bytes a
//! user).

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use uuid::Uuid;

use super::super::plan::{Index, NewUser, Plan as UserPlan};
use super::UserRef;
use crate::domain::roster::{EnrollmentList, UserSlot};
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
    pub(super) id: Uuid,
    /// The user's number in the roster plan's users ([`FeedUsers::of`]'s ids).
    pub(super) number: u32,
    pub(super) role: Role,
    pub(super) archived: bool,
    schools: &'r [CompactString],
}

impl RosterUser<'_> {
    /// May the user be enrolled in a class of `school`? A user of no school may be
    /// enrolled anywhere; anyone else only at one of their schools.
    pub(super) fn may_join(&self, school: &str) -> bool {
        self.schools.is_empty() || self.schools.iter().any(|s| s == school)
    }
}

/// A user as the resolver finds them: a position on one side.
struct Found<'r> {
    users: &'r CurrentUsers,
    at: usize,
    archived: bool,
}

/// No user has this slot yet, or none was found for it.
const UNSEEN: u32 = u32::MAX;
const NOBODY: u32 = u32::MAX - 1;

/// The users a feed's enrollments name, each found once, before the enrollments are planned
/// (issue 19, memory: the packed copy of what the run writes and the lookup tables over both
/// sides — ~140 MB when a first sync creates a million users — go before the plan's writes
/// grow). 24 bytes a user found (their id and 8 bytes), their schools each set once.
pub(super) struct FeedUsers {
    /// By [`UserSlot::Named`]: a user's number, or `NOBODY`.
    named: Vec<u32>,
    /// Records kept aside, by position.
    aside: HashMap<usize, u32>,
    /// By number, beside the ids [`FeedUsers::of`] gives out.
    users: Vec<Lean>,
    school_sets: Vec<Box<[CompactString]>>,
}

struct Lean {
    schools: u32,
    role: Role,
    archived: bool,
}

impl FeedUsers {
    /// The users `feed` names, found by `resolver`, and their ids by number (for the roster
    /// plan's table of users, [`super::RosterPlan::number_users`]). A user named two ways (a
    /// key and a provider's id) has two numbers.
    pub(super) fn of(feed: &EnrollmentList, resolver: &UserResolver<'_>) -> (FeedUsers, Vec<Uuid>) {
        let mut r = FeedUsers {
            named: vec![UNSEEN; feed.named_slots()],
            aside: HashMap::new(),
            users: Vec::new(),
            school_sets: Vec::new(),
        };
        // Each set of schools once (a district has a few hundred schools, most users one).
        let mut sets: HashTable<u32> = HashTable::new();
        let hasher = DefaultHashBuilder::default();
        let hash_of = |schools: &mut dyn Iterator<Item = &str>| {
            let mut h = hasher.build_hasher();
            schools.for_each(|s| h.write(s.as_bytes()));
            h.finish()
        };
        let mut ids = Vec::new();
        for (slot, user) in feed.user_refs() {
            let n = match resolver.find(&user) {
                None => NOBODY,
                Some(f) => {
                    let hash = hash_of(&mut f.users.schools(f.at));
                    let sets_made = &r.school_sets;
                    let schools = match sets.find(hash, |&k| {
                        sets_made[k as usize]
                            .iter()
                            .map(|s| s.as_str())
                            .eq(f.users.schools(f.at))
                    }) {
                        Some(&k) => k,
                        None => {
                            let k = r.school_sets.len() as u32;
                            r.school_sets
                                .push(f.users.schools(f.at).map(CompactString::from).collect());
                            let made = &r.school_sets;
                            sets.insert_unique(hash, k, |&k| {
                                hash_of(&mut made[k as usize].iter().map(|s| s.as_str()))
                            });
                            k
                        }
                    };
                    r.users.push(Lean {
                        schools,
                        role: f.users.role(f.at),
                        archived: f.archived,
                    });
                    ids.push(f.users.guid(f.at));
                    u32::try_from(r.users.len() - 1).expect("fewer than 4,294,967,294 users")
                }
            };
            match slot {
                UserSlot::Named(n_) => r.named[n_ as usize] = n,
                UserSlot::Aside(i) => {
                    r.aside.insert(i, n);
                }
            }
        }
        r.users.shrink_to_fit();
        ids.shrink_to_fit();
        (r, ids)
    }

    /// The user of a record with this slot, if there is one; `ids` as [`FeedUsers::of`]
    /// gave them.
    pub(super) fn get(&self, slot: UserSlot, ids: &[Uuid]) -> Option<RosterUser<'_>> {
        let n = match slot {
            UserSlot::Named(n) => self.named.get(n as usize).copied(),
            UserSlot::Aside(i) => self.aside.get(&i).copied(),
        }?;
        let u = self.users.get(n as usize)?;
        Some(RosterUser {
            id: ids[n as usize],
            number: n,
            role: u.role,
            archived: u.archived,
            schools: &self.school_sets[u.schools as usize],
        })
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

    fn find(&self, user: &UserRef) -> Option<Found<'_>> {
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
        Some(Found {
            users,
            at,
            archived: users.archived(at) || self.archived.contains(&users.guid(at)),
        })
    }
}
