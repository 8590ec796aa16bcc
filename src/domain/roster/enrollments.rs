//! A feed's enrollment records, packed: 24 bytes a record, where a record as a value takes 88
//! (issue 19, memory: a feed of 3,000,000 enrollments held 264 MB of records from reading
//! through planning). Each class and user id is kept once, in a table (a file of 3,000,000
//! enrollments names 40,000 classes and 1,000,000 users), and each file name likewise; a
//! record keeps their numbers, its line, role, flags and dates. A record that does not pack
//! (a failure, a line past `u32::MAX`, a 65,536th file name) is kept as it is, beside the
//! others. Records come back out as values, in the order pushed.
//!
//! Once read ([`EnrollmentList::seal`]) the packed records are only walked, so they are kept
//! [`Encoded`]: ~14 bytes a record, and past 16 MiB in a temporary file, read back a block at
//! a time (issue 19, memory: 3,000,000 records held 72 MB from the set read through roster
//! planning, beside the district's users and then its enrollments). Pushing or changing a
//! record after that unpacks them again.

use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashTable};
use time::Date;
use uuid::Uuid;

use super::{At, EnrollmentRecord, EnrollmentRole, Id, IncomingEnrollment, UserRef};
use crate::domain::chunked::Chunked;
use crate::domain::encoded::Encoded;

const TEACHER: u8 = 1;
const PRIMARY: u8 = 2;
const TO_BE_DELETED: u8 = 4;
/// The user is named by a key of the district's ([`UserRef::Key`]), not a provider's id.
const USER_KEY: u8 = 8;
/// The record did not pack: it is in `aside`, at its position.
const ASIDE: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Packed {
    line: u32,
    /// Numbers in [`EnrollmentList::ids`].
    class: u32,
    user: u32,
    begin: Option<Date>,
    end: Option<Date>,
    /// A number in [`EnrollmentList::files`].
    file: u16,
    flags: u8,
}

impl Packed {
    const ASIDE: Packed = Packed {
        line: 0,
        class: 0,
        user: 0,
        begin: None,
        end: None,
        file: 0,
        flags: ASIDE,
    };
}

/// An id as the list keeps it: a GUID spelled the usual way (36 characters, lower-case,
/// hyphenated: most providers' `sourcedId`s) as its 16 bytes, any other id as given. 24
/// bytes an id, where a GUID kept as text took ~80 (its allocation and the pointer to it:
/// ~56 MB for a million users' ids, held from reading through planning — issue 19, memory).
/// A GUID is spelled again when a record is taken out.
#[derive(Clone, PartialEq, Eq)]
enum Kept {
    Guid(Uuid),
    Text(Id),
}

/// `s` as a GUID, when it is one spelled the usual way (and so spelled back the same).
fn usual_guid(s: &str) -> Option<Uuid> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(s).ok()
}

impl Kept {
    fn of(id: &Id) -> Kept {
        match usual_guid(id) {
            Some(g) => Kept::Guid(g),
            None => Kept::Text(id.clone()),
        }
    }

    fn id(&self) -> Id {
        match self {
            Kept::Guid(g) => Id::from(&*g.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            Kept::Text(id) => id.clone(),
        }
    }

    /// The id as text: a GUID is spelled into `buf`.
    fn text<'a>(&'a self, buf: &'a mut [u8; 45]) -> &'a str {
        match self {
            Kept::Guid(g) => g.hyphenated().encode_lower(buf),
            Kept::Text(id) => id.as_str(),
        }
    }

    /// Is this `s` (`guid`: `usual_guid(s)`)?
    fn is(&self, s: &str, guid: Option<Uuid>) -> bool {
        match self {
            Kept::Guid(g) => guid == Some(*g),
            Kept::Text(id) => guid.is_none() && id.as_str() == s,
        }
    }
}

/// Enrollment records in the order pushed, packed (see the module's documentation).
#[derive(Clone, Default)]
pub struct EnrollmentList {
    /// The packed records while they are pushed (empty once sealed)…
    rows: Chunked<Packed>,
    /// …and once [`EnrollmentList::seal`]ed: `None` until then.
    sealed: Option<Encoded<Packed>>,
    /// Class and user ids, each once.
    ids: Vec<Kept>,
    /// Positions in `ids` by id, while records are pushed ([`EnrollmentList::seal`] lets it
    /// go; a later push makes it again).
    numbers: HashTable<u32>,
    hasher: DefaultHashBuilder,
    files: Vec<CompactString>,
    /// The records that did not pack, by position (ascending).
    aside: Vec<(usize, EnrollmentRecord)>,
}

impl EnrollmentList {
    pub fn push(&mut self, record: EnrollmentRecord) {
        self.open();
        let at = self.rows.len();
        match self.pack(&record) {
            Some(p) => self.rows.push(p),
            None => {
                self.rows.push(Packed::ASIDE);
                self.aside.push((at, record));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len() + self.sealed.as_ref().map_or(0, Encoded::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record at position `i`, as a value. A sealed list is walked up to it: for tests
    /// and short lists, not for reading a long one record by record.
    pub fn get(&self, i: usize) -> Option<EnrollmentRecord> {
        self.packed().nth(i).map(|p| self.unpack(i, &p))
    }

    /// Every record, as values, in order (the list is kept).
    pub fn iter(&self) -> impl Iterator<Item = EnrollmentRecord> + '_ {
        self.packed().enumerate().map(|(i, p)| self.unpack(i, &p))
    }

    /// The packed records in order, wherever they are kept.
    fn packed(&self) -> impl Iterator<Item = Packed> + '_ {
        let sealed = self.sealed.iter().flat_map(Encoded::iter);
        self.rows.iter().copied().chain(sealed)
    }

    /// Reading is done: give back the table that numbers ids as records come in (about 50
    /// bytes an id; a million users' ids), and keep the packed records encoded (a long list
    /// mostly in a temporary file). Pushing again makes both as they were.
    pub fn seal(&mut self) {
        self.numbers = HashTable::new();
        if self.sealed.is_none() {
            let mut sealed = Encoded::default();
            for p in std::mem::take(&mut self.rows) {
                sealed.push(&p);
            }
            self.sealed = Some(sealed);
        }
    }

    /// The packed records back in memory, to be pushed to or changed.
    fn open(&mut self) {
        if let Some(sealed) = self.sealed.take() {
            self.rows = sealed.into_iter().collect();
        }
    }

    /// Fold every later record of one class and user (the same class id, the same user id
    /// and kind) into the first, by line, with `absorb`, and drop the folded ones; the rest
    /// keep their order. Failures are kept as they are.
    pub fn fold_same(
        &mut self,
        mut absorb: impl FnMut(&mut IncomingEnrollment, IncomingEnrollment),
    ) {
        self.open();
        self.renumber();
        let key = |list: &Self, i: usize| list.key(i);
        let mut order: Vec<u32> = (0..self.len())
            .filter(|&i| key(self, i).is_some())
            .map(|i| u32::try_from(i).expect("fewer than 4,294,967,296 records"))
            .collect();
        // Every record has its own position, so an unstable sort is deterministic.
        order.sort_unstable_by_key(|&i| (key(self, i as usize), i));
        let mut folded = vec![false; self.len()];
        let mut first: Option<(usize, (u32, u32, bool))> = None;
        for &i in &order {
            let i = i as usize;
            let (class, user, by_key, _) = self.key(i).expect("only records with a key");
            match first {
                Some((f, same)) if same == (class, user, by_key) => {
                    if let (Some(Ok(later)), Some(Ok(mut into))) = (self.get(i), self.get(f)) {
                        absorb(&mut into, later);
                        self.set(f, Ok(into));
                    }
                    folded[i] = true;
                }
                _ => first = Some((i, (class, user, by_key))),
            }
        }
        drop(order);
        self.drop_where(&folded);
    }

    /// A record's class, user, kind of user and line, for [`EnrollmentList::fold_same`];
    /// `None` for a failure.
    fn key(&self, i: usize) -> Option<(u32, u32, bool, u64)> {
        let p = &self.rows[i];
        if p.flags & ASIDE == 0 {
            return Some((p.class, p.user, p.flags & USER_KEY != 0, u64::from(p.line)));
        }
        let e = self.aside_at(i).as_ref().ok()?;
        let (by_key, user) = user_parts(&e.user);
        let numbered = |id: &str| self.lookup(id).expect("an enrollment's ids are numbered");
        Some((
            numbered(e.class_external_id.as_str()),
            numbered(user.as_str()),
            by_key,
            e.at.line,
        ))
    }

    fn set(&mut self, i: usize, record: EnrollmentRecord) {
        self.open();
        let aside = self.aside.binary_search_by_key(&i, |(at, _)| *at);
        match (self.pack(&record), aside) {
            (Some(p), Ok(a)) => {
                self.rows[i] = p;
                let _unpacked_before = self.aside.remove(a);
            }
            (Some(p), Err(_)) => self.rows[i] = p,
            (None, Ok(a)) => self.aside[a].1 = record,
            (None, Err(a)) => {
                self.rows[i] = Packed::ASIDE;
                self.aside.insert(a, (i, record));
            }
        }
    }

    /// Drop the records at the positions `gone` marks; the rest move up, in order.
    fn drop_where(&mut self, gone: &[bool]) {
        self.open();
        debug_assert_eq!(gone.len(), self.rows.len());
        let mut kept = 0;
        for (i, &dropped) in gone.iter().enumerate() {
            if !dropped {
                if kept != i {
                    self.rows[kept] = self.rows[i];
                }
                kept += 1;
            }
        }
        self.rows.truncate(kept);
        let mut before = 0;
        let mut next = 0;
        self.aside.retain_mut(|(at, _)| {
            before += gone[next..*at].iter().filter(|g| **g).count();
            next = *at;
            let keep = !gone[*at];
            *at -= before;
            keep
        });
    }

    fn aside_at(&self, i: usize) -> &EnrollmentRecord {
        let a = self
            .aside
            .binary_search_by_key(&i, |(at, _)| *at)
            .expect("a record marked aside is in `aside`");
        &self.aside[a].1
    }

    /// Make the id numbers again if [`EnrollmentList::seal`] let them go.
    fn renumber(&mut self) {
        if self.numbers.len() != self.ids.len() {
            let (ids, hasher) = (&self.ids, &self.hasher);
            let mut numbers = HashTable::with_capacity(ids.len());
            for (n, id) in ids.iter().enumerate() {
                numbers.insert_unique(hash_kept(hasher, id), n as u32, |&m| {
                    hash_kept(hasher, &ids[m as usize])
                });
            }
            self.numbers = numbers;
        }
    }

    /// The number of id `s`, if it has one.
    fn lookup(&self, s: &str) -> Option<u32> {
        let guid = usual_guid(s);
        self.numbers
            .find(hash_text(&self.hasher, s, guid), |&n| {
                self.ids[n as usize].is(s, guid)
            })
            .copied()
    }

    /// An id for a reader to put in the record it pushes next: the list's own copy of an id
    /// kept as text (one allocation for every record that names it), a new one for a GUID
    /// (kept as its 16 bytes, [`Kept`]).
    pub fn id(&mut self, s: &str) -> Id {
        if usual_guid(s).is_some() {
            return Id::from(s);
        }
        self.renumber();
        match self.lookup(s) {
            Some(n) => self.ids[n as usize].id(),
            None => {
                let id = Id::from(s);
                self.number(&id);
                id
            }
        }
    }

    fn number(&mut self, id: &Id) -> u32 {
        if let Some(n) = self.lookup(id) {
            return n;
        }
        let n = u32::try_from(self.ids.len()).expect("fewer than 4,294,967,296 ids");
        let kept = Kept::of(id);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.numbers
            .insert_unique(hash_kept(hasher, &kept), n, |&m| {
                hash_kept(hasher, &ids[m as usize])
            });
        self.ids.push(kept);
        n
    }

    /// A record packed, or `None` when it does not pack. The ids of an enrollment are
    /// numbered either way ([`EnrollmentList::key`] needs them).
    fn pack(&mut self, record: &EnrollmentRecord) -> Option<Packed> {
        let e = record.as_ref().ok()?;
        self.renumber();
        let class = self.number(&e.class_external_id);
        let (by_key, user) = user_parts(&e.user);
        let user = self.number(user);
        let line = u32::try_from(e.at.line).ok()?;
        let file = match self.files.iter().position(|f| *f == e.at.file) {
            Some(n) => n,
            None if self.files.len() <= usize::from(u16::MAX) => {
                self.files.push(e.at.file.clone());
                self.files.len() - 1
            }
            None => return None,
        };
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        Some(Packed {
            line,
            class,
            user,
            begin: e.begin,
            end: e.end,
            file: file as u16,
            flags: flag(e.role == EnrollmentRole::Teacher, TEACHER)
                | flag(e.primary, PRIMARY)
                | flag(e.to_be_deleted, TO_BE_DELETED)
                | flag(by_key, USER_KEY),
        })
    }

    fn unpack(&self, i: usize, p: &Packed) -> EnrollmentRecord {
        if p.flags & ASIDE != 0 {
            return self.aside_at(i).clone();
        }
        Ok(unpacked(p, &self.ids, &self.files))
    }
}

/// An id's hash as `numbers` keeps it: a GUID's by its bytes, any other id's by its text.
fn hash_text(hasher: &DefaultHashBuilder, s: &str, guid: Option<Uuid>) -> u64 {
    match guid {
        Some(g) => hasher.hash_one(g),
        None => hasher.hash_one(s),
    }
}

fn hash_kept(hasher: &DefaultHashBuilder, id: &Kept) -> u64 {
    match id {
        Kept::Guid(g) => hasher.hash_one(*g),
        Kept::Text(t) => hasher.hash_one(t.as_str()),
    }
}

fn user_parts(u: &UserRef) -> (bool, &Id) {
    match u {
        UserRef::Key(id) => (true, id),
        UserRef::Provider(id) => (false, id),
    }
}

fn unpacked(p: &Packed, ids: &[Kept], files: &[CompactString]) -> IncomingEnrollment {
    let id = |n: u32| ids[n as usize].id();
    IncomingEnrollment {
        at: At {
            file: files[usize::from(p.file)].clone(),
            line: u64::from(p.line),
        },
        class_external_id: id(p.class),
        user: if p.flags & USER_KEY != 0 {
            UserRef::Key(id(p.user))
        } else {
            UserRef::Provider(id(p.user))
        },
        role: EnrollmentRole::teacher_if(p.flags & TEACHER != 0),
        primary: p.flags & PRIMARY != 0,
        begin: p.begin,
        end: p.end,
        to_be_deleted: p.flags & TO_BE_DELETED != 0,
    }
}

/// How a record names its user, numbered: every packed record that names a user the same
/// way (the same id, as a district's key or as a provider's id) has the same `Named` slot,
/// so a planner finds each user once, not once for each of their enrollments (issue 19,
/// memory: the lookup tables can go before the records are planned). A record kept aside has
/// its own slot, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserSlot {
    /// Below [`EnrollmentList::named_slots`].
    Named(u32),
    Aside(usize),
}

fn named_slot(p: &Packed) -> u32 {
    p.user * 2 + u32::from(p.flags & USER_KEY != 0)
}

impl EnrollmentList {
    /// How many `Named` slots there can be: every one is below this.
    pub fn named_slots(&self) -> usize {
        self.ids.len() * 2
    }

    /// Does every record name its user by a provider's id ([`UserRef::Provider`]), none kept
    /// aside (but failures)? Then [`EnrollmentList::provider_slots`] are all its users.
    pub fn by_provider_only(&self) -> bool {
        self.packed().all(|p| p.flags & USER_KEY == 0) && self.aside.iter().all(|(_, r)| r.is_err())
    }

    /// Each `Named` slot of a provider's id, once ([`EnrollmentList::slot_text`] tells the
    /// id).
    pub fn provider_slots(&self) -> impl Iterator<Item = u32> + '_ {
        let mut seen = vec![false; self.named_slots()];
        self.packed().filter_map(move |p| {
            if p.flags & (ASIDE | USER_KEY) != 0 {
                return None;
            }
            let slot = named_slot(&p);
            if std::mem::replace(&mut seen[slot as usize], true) {
                return None;
            }
            Some(slot)
        })
    }

    /// The id a `Named` slot names the user by (a GUID spelled into `buf`).
    pub fn slot_text<'a>(&'a self, slot: u32, buf: &'a mut [u8; 45]) -> &'a str {
        self.ids[(slot / 2) as usize].text(buf)
    }

    /// Each way a user is named, once, with its slot: a `Named` slot at its first record,
    /// and every record kept aside that is not a failure.
    pub fn user_refs(&self) -> impl Iterator<Item = (UserSlot, UserRef)> + '_ {
        let mut seen = vec![false; self.named_slots()];
        self.packed().enumerate().filter_map(move |(i, p)| {
            if p.flags & ASIDE != 0 {
                let e = self.aside_at(i).as_ref().ok()?;
                return Some((UserSlot::Aside(i), e.user.clone()));
            }
            let slot = named_slot(&p);
            if std::mem::replace(&mut seen[slot as usize], true) {
                return None;
            }
            let id = self.ids[p.user as usize].id();
            let user = if p.flags & USER_KEY != 0 {
                UserRef::Key(id)
            } else {
                UserRef::Provider(id)
            };
            Some((UserSlot::Named(slot), user))
        })
    }

    /// Every record with its user's slot, in order; freed a chunk at a time as `into_iter`.
    pub fn into_slotted(self) -> impl Iterator<Item = (UserSlot, EnrollmentRecord)> {
        let mut records = self.into_iter();
        std::iter::from_fn(move || {
            let at = records.taken;
            let p = records.rows.next()?;
            records.taken += 1;
            if p.flags & ASIDE != 0 {
                return Some((UserSlot::Aside(at), records.next_aside()));
            }
            let slot = UserSlot::Named(named_slot(&p));
            Some((slot, Ok(unpacked(&p, &records.ids, &records.files))))
        })
    }
}

/// [`EnrollmentList`] taken by value.
pub struct IntoIter {
    rows: std::iter::Chain<
        <Chunked<Packed> as IntoIterator>::IntoIter,
        std::iter::Flatten<std::option::IntoIter<crate::domain::encoded::IntoIter<Packed>>>,
    >,
    ids: Vec<Kept>,
    files: Vec<CompactString>,
    aside: std::vec::IntoIter<(usize, EnrollmentRecord)>,
    /// How many records were taken.
    taken: usize,
}

impl IntoIter {
    fn next_aside(&mut self) -> EnrollmentRecord {
        let (_, record) = self
            .aside
            .next()
            .expect("a record marked aside is in `aside`");
        record
    }
}

impl Iterator for IntoIter {
    type Item = EnrollmentRecord;
    fn next(&mut self) -> Option<EnrollmentRecord> {
        let p = self.rows.next()?;
        self.taken += 1;
        if p.flags & ASIDE != 0 {
            return Some(self.next_aside());
        }
        Some(Ok(unpacked(&p, &self.ids, &self.files)))
    }
}

impl IntoIterator for EnrollmentList {
    type Item = EnrollmentRecord;
    type IntoIter = IntoIter;

    /// Every record, in order; the packed records are freed a chunk at a time as they are
    /// taken (the table of id numbers at once).
    fn into_iter(self) -> IntoIter {
        IntoIter {
            rows: self
                .rows
                .into_iter()
                .chain(self.sealed.map(Encoded::into_iter).into_iter().flatten()),
            ids: self.ids,
            files: self.files,
            aside: self.aside.into_iter(),
            taken: 0,
        }
    }
}

impl Extend<EnrollmentRecord> for EnrollmentList {
    fn extend<I: IntoIterator<Item = EnrollmentRecord>>(&mut self, records: I) {
        for r in records {
            self.push(r);
        }
    }
}

impl FromIterator<EnrollmentRecord> for EnrollmentList {
    fn from_iter<I: IntoIterator<Item = EnrollmentRecord>>(records: I) -> Self {
        let mut list = EnrollmentList::default();
        list.extend(records);
        list
    }
}

impl PartialEq for EnrollmentList {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for EnrollmentList {}

impl std::fmt::Debug for EnrollmentList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roster::RosterFail;

    fn enr(file: &str, line: u64, class: &str, user: UserRef) -> IncomingEnrollment {
        IncomingEnrollment {
            at: At {
                file: file.into(),
                line,
            },
            class_external_id: Id::from(class),
            user,
            role: EnrollmentRole::Student,
            primary: false,
            begin: None,
            end: None,
            to_be_deleted: false,
        }
    }

    fn fail(line: u64) -> EnrollmentRecord {
        Err(Box::new(RosterFail {
            at: At {
                file: "enrollments.csv".into(),
                line,
            },
            column: Some("role".into()),
            message: "role \"janitor\" is not one of teacher, student".into(),
            class_external_id: Some("K9".into()),
        }))
    }

    /// A million users' three million enrollments: 24 bytes each, not 88.
    #[test]
    fn a_packed_record_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Packed>(), 24);
    }

    #[test]
    fn records_come_back_as_they_were_pushed_in_order() {
        let d = |s| {
            Some(Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).unwrap())
        };
        let mut teacher = enr("classes.csv", 2, "K1", UserRef::Provider(Id::from("t1")));
        teacher.role = EnrollmentRole::Teacher;
        teacher.primary = true;
        teacher.begin = d("2026-08-20");
        teacher.end = d("2027-06-01");
        let mut gone = enr("/enrollments", 7, "K2", UserRef::Key(Id::from("t1")));
        gone.to_be_deleted = true;
        let far = enr(
            "enrollments.csv",
            u64::from(u32::MAX) + 5,
            "K1",
            UserRef::Provider(Id::from("s1")),
        );
        let records = vec![
            Ok(teacher.clone()),
            fail(3),
            Ok(gone.clone()),
            Ok(far.clone()),
            Ok(enr(
                "enrollments.csv",
                9,
                "K1",
                UserRef::Provider(Id::from("s2")),
            )),
        ];
        let mut list: EnrollmentList = records.clone().into_iter().collect();
        assert_eq!(list.len(), 5);
        assert_eq!(list.aside.len(), 2, "the failure and the line past u32");
        assert_eq!(list.ids.len(), 5, "K1, t1, K2, s1, s2: one each");
        assert!(list.iter().eq(records.clone()));
        assert_eq!(list.get(2), Some(Ok(gone)));
        assert_eq!(list.get(3), Some(Ok(far)));
        assert_eq!(list.get(5), None);
        list.seal();
        list.push(Ok(enr(
            "enrollments.csv",
            10,
            "K2",
            UserRef::Provider(Id::from("s2")),
        )));
        assert_eq!(list.ids.len(), 5, "numbered again after sealing, not twice");
        assert_eq!(list.get(0), Some(Ok(teacher)));
        let back: Vec<_> = list.clone().into_iter().collect();
        assert_eq!(back.len(), 6);
        assert_eq!(back[..5], records[..]);
        assert_eq!(EnrollmentList::from_iter(back), list);
    }

    /// A GUID spelled the usual way is kept in 16 bytes and spelled back the same; any other
    /// spelling (upper case, braces, spaces around it) is kept as given and stays another id.
    #[test]
    fn ids_come_back_as_given_whether_kept_as_guids_or_as_text() {
        let guid = "0a1b2c3d-0000-4000-8000-00000000000f";
        let spellings = [
            guid.to_string(),
            guid.to_uppercase(),
            format!("{{{guid}}}"),
            format!(" {guid}"),
            "T-1".to_string(),
        ];
        let p = |s: &str| UserRef::Provider(Id::from(s));
        let records: Vec<EnrollmentRecord> = spellings
            .iter()
            .enumerate()
            .map(|(i, s)| Ok(enr("enrollments.csv", i as u64 + 2, guid, p(s))))
            .collect();
        let mut list: EnrollmentList = records.clone().into_iter().collect();
        assert_eq!(
            list.ids.len(),
            5,
            "the class is the first user's id: one number"
        );
        assert!(matches!(list.ids[0], Kept::Guid(_)));
        assert!(list.ids[1..].iter().all(|k| matches!(k, Kept::Text(_))));
        assert!(list.iter().eq(records.clone()), "every id spelled as given");
        let slots: Vec<u32> = list.provider_slots().collect();
        assert_eq!(slots.len(), 5);
        let texts: Vec<String> = slots
            .iter()
            .map(|&s| list.slot_text(s, &mut [0; 45]).to_string())
            .collect();
        assert_eq!(texts, spellings);
        // A reader's id: the same text back, shared when kept as text.
        assert_eq!(list.id(guid).as_str(), guid);
        assert_eq!(list.id("T-1").as_str(), "T-1");
        list.seal();
        list.push(Ok(enr("enrollments.csv", 9, "T-1", p(guid))));
        assert_eq!(list.ids.len(), 5, "numbered again after sealing, not twice");
        assert_eq!(
            list.get(5),
            Some(Ok(enr("enrollments.csv", 9, "T-1", p(guid))))
        );
    }

    /// A planner finds each user once: the records that name a user the same way share a
    /// slot, a key and a provider's id of the same text do not, and a record kept aside has
    /// its own.
    #[test]
    fn records_that_name_a_user_the_same_way_share_a_slot() {
        let p = |s: &str| UserRef::Provider(Id::from(s));
        let far = enr("enrollments.csv", u64::from(u32::MAX) + 1, "K1", p("s1"));
        let records = vec![
            Ok(enr("enrollments.csv", 2, "K1", p("s1"))),
            Ok(enr("enrollments.csv", 3, "K2", p("s1"))),
            fail(4),
            Ok(enr(
                "enrollments.csv",
                5,
                "K2",
                UserRef::Key(Id::from("s1")),
            )),
            Ok(far.clone()),
            Ok(enr("enrollments.csv", 7, "K1", p("s2"))),
        ];
        let list: EnrollmentList = records.clone().into_iter().collect();
        let refs: Vec<(UserSlot, UserRef)> = list.user_refs().collect();
        assert_eq!(
            refs.len(),
            4,
            "s1, s1 as a key, the record aside, s2: {refs:?}"
        );
        assert_eq!(refs[0].1, p("s1"));
        assert_eq!(refs[1].1, UserRef::Key(Id::from("s1")));
        assert_eq!(refs[2], (UserSlot::Aside(4), p("s1")));
        assert_eq!(refs[3].1, p("s2"));
        for (slot, _) in &refs {
            if let UserSlot::Named(n) = slot {
                assert!((*n as usize) < list.named_slots());
            }
        }
        // Sealed, the packed records are encoded (a long list's mostly in a file) and read
        // back the same: every walk, and the list taken by value.
        let mut sealed = list.clone();
        sealed.seal();
        assert!(sealed.rows.is_empty(), "no packed record left as a value");
        assert_eq!(sealed.sealed.as_ref().map(Encoded::len), Some(6));
        assert_eq!(sealed, list);
        assert_eq!(sealed.user_refs().collect::<Vec<_>>(), refs);
        assert!(
            sealed.provider_slots().eq(list.provider_slots()),
            "the same provider slots"
        );
        assert_eq!(sealed.by_provider_only(), list.by_provider_only());
        assert_eq!(sealed.get(4), list.get(4));
        assert!(sealed.clone().into_iter().eq(list.iter()));
        assert!(
            sealed.into_slotted().eq(list.clone().into_slotted()),
            "the same records with the same slots"
        );
        let slotted: Vec<(UserSlot, EnrollmentRecord)> = list.into_slotted().collect();
        let back: Vec<EnrollmentRecord> = slotted.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(back, records, "the records, in order");
        let slots: Vec<UserSlot> = slotted.iter().map(|(s, _)| *s).collect();
        assert_eq!(slots[0], refs[0].0);
        assert_eq!(slots[1], refs[0].0, "s1 again: the same slot");
        assert_eq!(slots[2], UserSlot::Aside(2), "the failure: its position");
        assert_eq!(slots[3], refs[1].0);
        assert_eq!(slots[4], UserSlot::Aside(4));
        assert_eq!(slots[5], refs[3].0);
        assert_ne!(refs[0].0, refs[1].0);
    }

    #[test]
    fn later_records_of_a_class_and_user_fold_into_the_first() {
        let s1 = || UserRef::Provider(Id::from("s1"));
        let mut far = enr("enrollments.csv", u64::from(u32::MAX) + 1, "K1", s1());
        far.primary = true;
        let records = vec![
            Ok(enr("enrollments.csv", 2, "K1", s1())),
            Ok(enr("enrollments.csv", 3, "K2", s1())),
            fail(4),
            Ok(enr(
                "enrollments.csv",
                5,
                "K1",
                UserRef::Key(Id::from("s1")),
            )),
            Ok(enr("enrollments.csv", 6, "K1", s1())),
            Ok(far),
            Ok(enr("enrollments.csv", 7, "K2", s1())),
        ];
        let mut list: EnrollmentList = records.clone().into_iter().collect();
        list.seal();
        let mut folds = Vec::new();
        list.fold_same(|into, later| {
            folds.push((into.at.line, later.at.line));
            into.primary |= later.primary;
        });
        folds.sort();
        assert_eq!(
            folds,
            [(2, 6), (2, u64::from(u32::MAX) + 1), (3, 7)],
            "by class, user and kind of user"
        );
        let lines: Vec<u64> = list
            .iter()
            .map(|r| match r {
                Ok(e) => e.at.line,
                Err(f) => f.at.line,
            })
            .collect();
        assert_eq!(lines, [2, 3, 4, 5], "the rest in order, the failure kept");
        assert!(
            list.get(0).unwrap().unwrap().primary,
            "folded into the first"
        );
        assert!(
            list.aside.len() == 1 && list.aside[0].0 == 2,
            "the failure moved with the rest"
        );
        assert_eq!(list.get(2).unwrap().unwrap_err().at.line, 4);
    }
}
