//! Users as rosters see them: the district's current users overlaid with what the run's user
//! plan writes, found by an enrollment's user reference without copying the district.
//!
//! Each user a feed's enrollments name is found once, before the enrollments are planned
//! ([`FeedUsers`]: 24 bytes a user found), and the lookups are let go. A provider's feed
//! (OneRoster, Clever, SDS: users named by `source_key`) is matched by reading the written
//! users and the district's once each; any other feed through the [`UserResolver`], over the
//! packed district ([`CurrentUsers`]) and a packed copy of the written users, looked up
//! through the planner's position index (issue 15: the resolver's maps took ~300 bytes a
//! user; issue 19: the copy and the tables took ~140 MB of a million-user first sync).

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use uuid::Uuid;

use super::super::plan::{Index, NewUser, Plan as UserPlan};
use super::UserRef;
use crate::domain::roster::{EnrollmentList, UserSlot};
use crate::domain::{CurrentUser, CurrentUsers, FieldSet, PortalRole, Role, Source};

/// Every user a run's user plan writes (creates, updates or restores), in line order: the
/// rows' own writes merged with, in a compact plan, the users it creates (decoded one at a
/// time).
fn each_written(plan: &UserPlan, mut f: impl FnMut(&NewUser)) {
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
            f(&w);
        }
    }
}

/// The users a run's user plan archives.
fn archived_by(plan: Option<&UserPlan>) -> HashSet<Uuid> {
    plan.map(|p| p.archive.iter().copied().collect())
        .unwrap_or_default()
}

/// What a run's user plan leaves written, packed: the users it creates, updates or restores
/// (in line order) and the users it archives. Made only for a feed that names users by the
/// district's keys (the roster CSV): a provider's feed is resolved without it
/// ([`FeedUsers::of`]).
#[derive(Debug, Default)]
struct WrittenUsers {
    users: CurrentUsers,
    archived: HashSet<Uuid>,
}

impl WrittenUsers {
    fn of(plan: Option<&UserPlan>) -> WrittenUsers {
        let mut users = CurrentUsers::default();
        if let Some(plan) = plan {
            each_written(plan, |w| users.push(&as_current(w)));
        }
        users.shrink_to_fit();
        WrittenUsers {
            users,
            archived: archived_by(plan),
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

/// Makes a [`FeedUsers`]: each user found is given the next number.
struct Numbering {
    r: FeedUsers,
    ids: Vec<Uuid>,
    /// Each set of schools once (a district has a few hundred schools, most users one).
    sets: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Numbering {
    fn new(named_slots: usize) -> Numbering {
        Numbering {
            r: FeedUsers {
                named: vec![UNSEEN; named_slots],
                aside: HashMap::new(),
                users: Vec::new(),
                school_sets: Vec::new(),
            },
            ids: Vec::new(),
            sets: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash_of<'s>(&self, schools: impl Iterator<Item = &'s str>) -> u64 {
        let mut h = self.hasher.build_hasher();
        schools.for_each(|s| {
            h.write(s.as_bytes());
            h.write_u8(0xff);
        });
        h.finish()
    }

    /// A user's number (a new one each time).
    fn add<'s>(
        &mut self,
        id: Uuid,
        role: Role,
        schools: impl Iterator<Item = &'s str> + Clone,
        archived: bool,
    ) -> u32 {
        let hash = self.hash_of(schools.clone());
        let made = &self.r.school_sets;
        let found = self.sets.find(hash, |&k| {
            made[k as usize]
                .iter()
                .map(|s| s.as_str())
                .eq(schools.clone())
        });
        let schools = match found {
            Some(&k) => k,
            None => {
                let k = u32::try_from(made.len()).expect("fewer than 2^32 sets of schools");
                self.r
                    .school_sets
                    .push(schools.map(CompactString::from).collect());
                let (made, hasher) = (&self.r.school_sets, &self.hasher);
                self.sets.insert_unique(hash, k, |&k| {
                    let mut h = hasher.build_hasher();
                    made[k as usize].iter().for_each(|s| {
                        h.write(s.as_bytes());
                        h.write_u8(0xff);
                    });
                    h.finish()
                });
                k
            }
        };
        self.r.users.push(Lean {
            schools,
            role,
            archived,
        });
        self.ids.push(id);
        u32::try_from(self.ids.len() - 1).expect("fewer than 4,294,967,294 users")
    }

    /// A user the run's plan writes (archived when the plan archives them).
    fn add_written(&mut self, w: &NewUser, archived: &HashSet<Uuid>) -> u32 {
        self.add(
            w.user_guid,
            w.role,
            w.schools.iter().map(|s| s.as_str()),
            archived.contains(&w.user_guid),
        )
    }

    fn done(mut self) -> (FeedUsers, Vec<Uuid>) {
        self.r.users.shrink_to_fit();
        self.ids.shrink_to_fit();
        (self.r, self.ids)
    }
}

impl FeedUsers {
    /// The users `feed` names, as this run leaves them: the district's users before it
    /// (`current`) overlaid with what its user plan writes, and their ids by number (for the
    /// roster plan's table of users, [`super::RosterPlan::number_users`]). A user named two
    /// ways (a key and a provider's id) has two numbers.
    pub(super) fn of(
        feed: &EnrollmentList,
        current: &CurrentUsers,
        plan: Option<&UserPlan>,
        source: &Source,
    ) -> (FeedUsers, Vec<Uuid>) {
        if feed.by_provider_only() {
            FeedUsers::by_provider(feed, current, plan, source)
        } else {
            FeedUsers::by_resolver(feed, current, plan, source)
        }
    }

    /// [`FeedUsers::of`] by the [`UserResolver`], over a packed copy of what the plan
    /// writes: any feed (the roster CSV names users by the district's keys).
    pub(super) fn by_resolver(
        feed: &EnrollmentList,
        current: &CurrentUsers,
        plan: Option<&UserPlan>,
        source: &Source,
    ) -> (FeedUsers, Vec<Uuid>) {
        let written = WrittenUsers::of(plan);
        let resolver = UserResolver::new(current, &written, source);
        let mut n = Numbering::new(feed.named_slots());
        for (slot, user) in feed.user_refs() {
            let at = match resolver.find(&user) {
                None => NOBODY,
                Some(f) => n.add(
                    f.users.guid(f.at),
                    f.users.role(f.at),
                    f.users.schools(f.at),
                    f.archived,
                ),
            };
            match slot {
                UserSlot::Named(s) => n.r.named[s as usize] = at,
                UserSlot::Aside(i) => {
                    n.r.aside.insert(i, at);
                }
            }
        }
        n.done()
    }

    /// [`FeedUsers::of`] for a feed that names every user by a provider's id (OneRoster,
    /// Clever, SDS): the users the plan writes and the district's are read once each, in
    /// order, and matched against the feed's ids. No packed copy of the written users and no
    /// table over either side is made (issue 19, memory: ~140 MB when a first sync creates
    /// a million users). Finds what [`UserResolver`] would: among `source`'s users with the
    /// `source_key`, the last written one, else the last of the district's, read as the
    /// plan writes them.
    pub(super) fn by_provider(
        feed: &EnrollmentList,
        current: &CurrentUsers,
        plan: Option<&UserPlan>,
        source: &Source,
    ) -> (FeedUsers, Vec<Uuid>) {
        let mut n = Numbering::new(feed.named_slots());
        // The feed's ids without surrounding spaces (as the resolver looks them up), each
        // once: id → the first slot naming it; a later slot of the same id follows it.
        let hasher = DefaultHashBuilder::default();
        let is = |slot: u32, key: &str| feed.slot_text(slot, &mut [0; 45]).trim() == key;
        let hash_of = |slot: u32| hasher.hash_one(feed.slot_text(slot, &mut [0; 45]).trim());
        let mut wanted: HashTable<u32> = HashTable::new();
        let mut follows: Vec<(u32, u32)> = Vec::new();
        for slot in feed.provider_slots() {
            let mut buf = [0; 45];
            let id = feed.slot_text(slot, &mut buf).trim();
            if id.is_empty() {
                continue;
            }
            let hash = hasher.hash_one(id);
            match wanted.find(hash, |&s| is(s, id)) {
                Some(&first) => follows.push((slot, first)),
                None => {
                    wanted.insert_unique(hash, slot, |&s| hash_of(s));
                }
            }
        }
        let find = |key: &str| wanted.find(hasher.hash_one(key), |&s| is(s, key)).copied();
        let archived = archived_by(plan);
        // What the run writes comes first: the last written user with the key.
        if let Some(plan) = plan {
            each_written(plan, |w| {
                let Some(slot) = (w.source == *source)
                    .then_some(w.source_key.as_deref())
                    .flatten()
                    .filter(|k| !k.is_empty())
                    .and_then(find)
                else {
                    return;
                };
                n.r.named[slot as usize] = n.add_written(w, &archived);
            });
        }
        // Then the district's: the last user with the key, for an id no written user has.
        let mut at_current = vec![UNSEEN; feed.named_slots()];
        for i in 0..current.len() {
            if current.source(i) != source {
                continue;
            }
            let Some(slot) = current
                .source_key(i)
                .filter(|k| !k.is_empty())
                .and_then(find)
            else {
                continue;
            };
            if n.r.named[slot as usize] == UNSEEN {
                at_current[slot as usize] = i as u32;
            }
        }
        let mut in_district: Vec<(u32, u32)> = (0..)
            .zip(at_current)
            .filter(|&(_, i)| i != UNSEEN)
            .collect();
        // A user of the district the run writes is read as written.
        let mut rewritten: Vec<(u32, u32)> = Vec::new();
        if let Some(plan) = plan.filter(|_| !in_district.is_empty()) {
            let mut order: HashMap<Uuid, u32> = HashMap::new();
            let mut k = 0u32;
            each_written(plan, |w| {
                order.insert(w.user_guid, k);
                k += 1;
            });
            in_district.retain(|&(slot, i)| match order.get(&current.guid(i as usize)) {
                Some(&k) => {
                    rewritten.push((k, slot));
                    false
                }
                None => true,
            });
        }
        for (slot, i) in in_district {
            let i = i as usize;
            let id = current.guid(i);
            let at = n.add(
                id,
                current.role(i),
                current.schools(i),
                current.archived(i) || archived.contains(&id),
            );
            n.r.named[slot as usize] = at;
        }
        if let Some(plan) = plan.filter(|_| !rewritten.is_empty()) {
            rewritten.sort_unstable();
            let mut next = rewritten.iter().peekable();
            let mut k = 0u32;
            each_written(plan, |w| {
                while let Some(&&(at, slot)) = next.peek() {
                    if at != k {
                        break;
                    }
                    n.r.named[slot as usize] = n.add_written(w, &archived);
                    next.next();
                }
                k += 1;
            });
        }
        for (slot, first) in follows {
            n.r.named[slot as usize] = n.r.named[first as usize];
        }
        n.done()
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
struct UserResolver<'a> {
    hasher: DefaultHashBuilder,
    current: Side<'a>,
    written: Side<'a>,
    archived: &'a HashSet<Uuid>,
}

impl<'a> UserResolver<'a> {
    fn new(
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
