//! The district's current users as a run holds them: packed, about 130 bytes a user instead
//! of a `CurrentUser`'s 272 plus its heap (issue 19: a million of them are loaded per run).
//!
//! Each user is a fixed 40-byte record (GUID, small fields, and where their text starts)
//! plus their text in one shared byte arena: custom_id, email, username, names, position and
//! source_key as length-prefixed strings, then their schools as indexes into the district's
//! school IDs. Owners and feed-password fingerprints are stored once each and referred to by
//! index. [`CurrentUsers::get`] gives a user back as an owned [`CurrentUser`] (the planner's
//! view); the lookups a run makes for every user (keys, owner, archived, schools) read the
//! packed record without building one.

use compact_str::CompactString;
use hashbrown::HashMap;
use uuid::Uuid;

use super::{CurrentUser, FieldSet, Grade, PortalRole, Role, Source, Status};

#[derive(Debug, Clone, Copy)]
struct Packed {
    user_guid: Uuid,
    /// Where this user's text starts in [`CurrentUsers::text`] (a district's text is far
    /// below 4 GiB: ~85 bytes a user).
    text: u32,
    /// 0: no fingerprint; else its index + 1 in [`CurrentUsers::macs`].
    mac: u32,
    /// Index in [`CurrentUsers::sources`].
    source: u32,
    kept: FieldSet,
    role: Role,
    grade: Grade,
    status: Status,
    portal_role: PortalRole,
    archived: bool,
    prevent_archiving: bool,
}

/// Every current user of a district, packed (see the module doc). Positions are stable:
/// user `i` is the `i`th pushed.
#[derive(Debug, Default, Clone)]
pub struct CurrentUsers {
    rows: Vec<Packed>,
    text: Vec<u8>,
    schools: Vec<CompactString>,
    school_at: HashMap<CompactString, u32>,
    sources: Vec<Source>,
    source_at: HashMap<Source, u32>,
    macs: Vec<[u8; 32]>,
}

/// One user's values, borrowed: what [`CurrentUsers::push_parts`] packs.
pub struct UserParts<'a> {
    pub user_guid: Uuid,
    pub custom_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub username: &'a str,
    pub first_name: &'a str,
    pub middle_name: &'a str,
    pub last_name: &'a str,
    pub position: &'a str,
    pub source_key: Option<&'a str>,
    pub source: &'a Source,
    pub feed_password_mac: Option<&'a [u8; 32]>,
    pub kept: FieldSet,
    pub role: Role,
    pub grade: Grade,
    pub status: Status,
    pub portal_role: PortalRole,
    pub archived: bool,
    pub prevent_archiving: bool,
}

/// Users pushed before the text of the rest is estimated ([`CurrentUsers::push`]).
const TEXT_SAMPLE: usize = 1024;

fn put_n(text: &mut Vec<u8>, mut n: u64) {
    // LEB128: seven bits a byte, the high bit set on every byte but the last.
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            text.push(low);
            return;
        }
        text.push(low | 0x80);
    }
}

/// `None` as 0, a string as its length + 1 and its bytes.
fn put_str(text: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_n(text, 0),
        Some(s) => {
            put_n(text, s.len() as u64 + 1);
            text.extend_from_slice(s.as_bytes());
        }
    }
}

/// Reads one user's text in the order [`CurrentUsers::push`] wrote it.
#[derive(Clone)]
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn n(&mut self) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let b = self.buf[0];
            self.buf = &self.buf[1..];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }

    fn opt(&mut self) -> Option<&'a str> {
        let n = self.n();
        if n == 0 {
            return None;
        }
        let (s, rest) = self.buf.split_at((n - 1) as usize);
        self.buf = rest;
        // Written from a `&str` by `put_str`.
        Some(std::str::from_utf8(s).expect("packed text is UTF-8"))
    }

    fn str(&mut self) -> &'a str {
        self.opt().unwrap_or_default()
    }

    fn skip(&mut self, fields: usize) {
        for _ in 0..fields {
            let n = self.n();
            if n > 0 {
                self.buf = &self.buf[(n - 1) as usize..];
            }
        }
    }
}

/// The text fields in the order they are written: custom_id, email, username, first,
/// middle and last name, position, source_key; then the schools.
const TEXT_FIELDS: usize = 8;

impl CurrentUsers {
    pub fn with_capacity(users: usize) -> CurrentUsers {
        CurrentUsers {
            rows: Vec::with_capacity(users),
            ..CurrentUsers::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Add `u` at position `len()`.
    pub fn push(&mut self, u: &CurrentUser) {
        self.push_parts(
            &UserParts {
                user_guid: u.user_guid,
                custom_id: u.custom_id.as_deref(),
                email: u.email.as_deref(),
                username: &u.username,
                first_name: &u.first_name,
                middle_name: &u.middle_name,
                last_name: &u.last_name,
                position: &u.position,
                source_key: u.source_key.as_deref(),
                source: &u.source,
                feed_password_mac: u.feed_password_mac.as_deref(),
                kept: u.kept,
                role: u.role,
                grade: u.grade,
                status: u.status,
                portal_role: u.portal_role,
                archived: u.archived,
                prevent_archiving: u.prevent_archiving,
            },
            u.schools.iter().map(CompactString::as_str),
        );
    }

    /// Add a user read as borrowed values (the run's load: no `CurrentUser` built per row),
    /// with their schools' external IDs in the order [`CurrentUsers::schools`] gives back.
    pub fn push_parts<'s>(
        &mut self,
        u: &UserParts<'_>,
        schools: impl ExactSizeIterator<Item = &'s str>,
    ) {
        let text = u32::try_from(self.text.len()).expect("a district's user text fits in 4 GiB");
        for s in [
            u.custom_id,
            u.email,
            Some(u.username),
            Some(u.first_name),
            Some(u.middle_name),
            Some(u.last_name),
            Some(u.position),
            u.source_key,
        ] {
            put_str(&mut self.text, s);
        }
        put_n(&mut self.text, schools.len() as u64);
        for school in schools {
            let at = match self.school_at.get(school) {
                Some(&at) => at,
                None => {
                    let at = self.schools.len() as u32;
                    self.schools.push(school.into());
                    self.school_at.insert(school.into(), at);
                    at
                }
            };
            put_n(&mut self.text, u64::from(at));
        }
        let source = match self.source_at.get(u.source) {
            Some(&at) => at,
            None => {
                let at = self.sources.len() as u32;
                self.sources.push(u.source.clone());
                self.source_at.insert(u.source.clone(), at);
                at
            }
        };
        let mac = match u.feed_password_mac {
            None => 0,
            Some(mac) => {
                self.macs.push(*mac);
                self.macs.len() as u32
            }
        };
        self.rows.push(Packed {
            user_guid: u.user_guid,
            text,
            mac,
            source,
            kept: u.kept,
            role: u.role,
            grade: u.grade,
            status: u.status,
            portal_role: u.portal_role,
            archived: u.archived,
            prevent_archiving: u.prevent_archiving,
        });
        // Sized for many users (`with_capacity`): once a sample is in, the text of them all
        // is reserved from the sample's average, rather than grown by doubling (which held
        // the old and the new buffer at once: ~200 MiB at a million users).
        if self.rows.len() == TEXT_SAMPLE && self.rows.capacity() >= 4 * TEXT_SAMPLE {
            let per_user = self.text.len().div_ceil(TEXT_SAMPLE);
            let all = per_user * self.rows.capacity() / 16 * 17;
            self.text.reserve(all.saturating_sub(self.text.len()));
        }
    }

    /// Every user of `other` added after these.
    pub fn extend(&mut self, other: &CurrentUsers) {
        for i in 0..other.len() {
            self.push(&other.get(i));
        }
    }

    /// Give back the spare capacity of growing (call once every user is pushed). The text
    /// is left when little is spare: shrinking copies it, two buffers at once for a moment.
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
        if self.text.capacity() - self.text.len() > self.text.len() / 8 {
            self.text.shrink_to_fit();
        }
        self.macs.shrink_to_fit();
    }

    fn reader(&self, i: usize) -> Reader<'_> {
        Reader {
            buf: &self.text[self.rows[i].text as usize..],
        }
    }

    pub fn guid(&self, i: usize) -> Uuid {
        self.rows[i].user_guid
    }

    pub fn custom_id(&self, i: usize) -> Option<&str> {
        self.reader(i).opt()
    }

    pub fn email(&self, i: usize) -> Option<&str> {
        let mut r = self.reader(i);
        r.skip(1);
        r.opt()
    }

    pub fn username(&self, i: usize) -> &str {
        let mut r = self.reader(i);
        r.skip(2);
        r.str()
    }

    pub fn source_key(&self, i: usize) -> Option<&str> {
        let mut r = self.reader(i);
        r.skip(TEXT_FIELDS - 1);
        r.opt()
    }

    pub fn source(&self, i: usize) -> &Source {
        &self.sources[self.rows[i].source as usize]
    }

    pub fn role(&self, i: usize) -> Role {
        self.rows[i].role
    }

    pub fn archived(&self, i: usize) -> bool {
        self.rows[i].archived
    }

    pub fn prevent_archiving(&self, i: usize) -> bool {
        self.rows[i].prevent_archiving
    }

    pub fn portal_role(&self, i: usize) -> PortalRole {
        self.rows[i].portal_role
    }

    /// School external IDs, sorted as pushed.
    pub fn schools(&self, i: usize) -> impl Iterator<Item = &str> + Clone + '_ {
        let mut r = self.reader(i);
        r.skip(TEXT_FIELDS);
        let n = r.n();
        (0..n).map(move |_| self.schools[r.n() as usize].as_str())
    }

    /// User `i` as the planner sees them.
    pub fn get(&self, i: usize) -> CurrentUser {
        let p = &self.rows[i];
        let mut r = self.reader(i);
        let custom_id = r.opt().map(CompactString::from);
        let email = r.opt().map(CompactString::from);
        let username = r.str().into();
        let first_name = r.str().into();
        let middle_name = r.str().into();
        let last_name = r.str().into();
        let position = r.str().into();
        let source_key = r.opt().map(CompactString::from);
        let n = r.n() as usize;
        let schools = (0..n)
            .map(|_| self.schools[r.n() as usize].clone())
            .collect();
        CurrentUser {
            user_guid: p.user_guid,
            custom_id,
            email,
            username,
            first_name,
            middle_name,
            last_name,
            role: p.role,
            schools,
            grade: p.grade,
            position,
            status: p.status,
            archived: p.archived,
            source: self.sources[p.source as usize].clone(),
            prevent_archiving: p.prevent_archiving,
            source_key,
            portal_role: p.portal_role,
            kept: p.kept,
            feed_password_mac: (p.mac > 0).then(|| Box::new(self.macs[p.mac as usize - 1])),
        }
    }

    /// Every user in position order, each built as [`CurrentUsers::get`] builds them.
    pub fn iter(&self) -> impl Iterator<Item = CurrentUser> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<'u> FromIterator<&'u CurrentUser> for CurrentUsers {
    fn from_iter<I: IntoIterator<Item = &'u CurrentUser>>(iter: I) -> Self {
        let mut out = CurrentUsers::default();
        for u in iter {
            out.push(u);
        }
        out
    }
}

impl FromIterator<CurrentUser> for CurrentUsers {
    fn from_iter<I: IntoIterator<Item = CurrentUser>>(iter: I) -> Self {
        let mut out = CurrentUsers::default();
        for u in iter {
            out.push(&u);
        }
        out
    }
}

impl From<&[CurrentUser]> for CurrentUsers {
    fn from(users: &[CurrentUser]) -> Self {
        users.iter().collect()
    }
}

impl From<Vec<CurrentUser>> for CurrentUsers {
    fn from(users: Vec<CurrentUser>) -> Self {
        users.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Field;

    fn user(n: u128) -> CurrentUser {
        CurrentUser {
            user_guid: Uuid::from_u128(n),
            custom_id: Some(format!("S{n}").into()),
            email: Some(format!("a.rather.long.address.{n}@example.org").into()),
            username: format!("s{n}").into(),
            first_name: "Ann".into(),
            middle_name: "".into(),
            last_name: "Lee — ünïcode".into(),
            role: Role::Student,
            schools: vec!["HS".into(), "MS".into()],
            grade: Grade::parse("9").unwrap(),
            position: "".into(),
            status: Status::Active,
            archived: false,
            source: Source::File("students.csv".into()),
            prevent_archiving: false,
            source_key: None,
            portal_role: PortalRole::User,
            kept: FieldSet::default(),
            feed_password_mac: None,
        }
    }

    /// A table sized for its users reserves their text once, from a sample: no growing by
    /// doubling after it, and little left spare.
    #[test]
    fn a_sized_table_reserves_its_text_once() {
        let n = 20 * TEXT_SAMPLE;
        let mut users = CurrentUsers::with_capacity(n);
        let mut reserved = None;
        for i in 0..n {
            users.push(&user(1_000_000 + i as u128));
            if i == TEXT_SAMPLE {
                reserved = Some(users.text.capacity());
            }
        }
        let reserved = reserved.unwrap();
        assert_eq!(users.text.capacity(), reserved, "grown after the sample");
        assert!(users.text.len() <= reserved);
        assert!(reserved - users.text.len() <= users.text.len() / 8);
        assert_eq!(users.get(n - 1), user(1_000_000 + n as u128 - 1));
    }

    #[test]
    fn users_come_back_as_they_went_in() {
        let mut odd = user(2);
        odd.custom_id = None;
        odd.email = None;
        odd.username = "x".repeat(300).into();
        odd.schools = Vec::new();
        odd.source = Source::Sync(Uuid::from_u128(9));
        odd.source_key = Some("".into());
        odd.archived = true;
        odd.prevent_archiving = true;
        odd.portal_role = PortalRole::SchoolAdmin;
        odd.kept.insert(Field::LastName);
        odd.feed_password_mac = Some(Box::new([7; 32]));
        odd.status = Status::Inactive;
        odd.role = Role::Teacher;
        let users = vec![user(1), odd, user(3)];
        let packed = CurrentUsers::from(users.as_slice());
        assert_eq!(packed.len(), 3);
        assert_eq!(packed.iter().collect::<Vec<_>>(), users);
        for (i, u) in users.iter().enumerate() {
            assert_eq!(packed.guid(i), u.user_guid);
            assert_eq!(packed.custom_id(i), u.custom_id.as_deref());
            assert_eq!(packed.email(i), u.email.as_deref());
            assert_eq!(packed.username(i), u.username);
            assert_eq!(packed.source(i), &u.source);
            assert_eq!(packed.source_key(i), u.source_key.as_deref());
            assert_eq!(packed.archived(i), u.archived);
            assert_eq!(packed.prevent_archiving(i), u.prevent_archiving);
            assert_eq!(packed.portal_role(i), u.portal_role);
            assert_eq!(packed.role(i), u.role);
            assert!(packed.schools(i).eq(u.schools.iter().map(|s| s.as_str())));
        }
        // Owners and schools are stored once each.
        assert_eq!(packed.sources.len(), 2);
        assert_eq!(packed.schools.len(), 2);
    }

    #[test]
    fn a_user_takes_a_fraction_of_a_current_user() {
        assert!(size_of::<Packed>() <= 36, "{}", size_of::<Packed>());
        let packed: CurrentUsers = (0..1000).map(user).collect();
        let per_user = packed.text.len() / 1000 + size_of::<Packed>();
        assert!(
            per_user * 2 < size_of::<CurrentUser>(),
            "{per_user} bytes a user"
        );
    }
}
