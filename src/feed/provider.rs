//! One roster provider's user record (OneRoster REST or CSV, Clever), in plain strings, and
//! how it becomes the same typed [`IncomingUser`] a CSV row becomes. Pure: no SQL, no HTTP.

use crate::domain::RowFail;
use crate::domain::encoded::Encoded;
use crate::domain::{Field, FieldSet, Grade, IncomingUser, Role, Status, parse_email};
use crate::feed::validate::{self, KeyColumns, KeyHashes, RowKeys};
use compact_str::CompactString;
use std::collections::{HashMap, HashSet};

/// What a provider's role word means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    User(Role),
    /// Guardians, parents, relatives (and Clever contacts): not portal users; skipped and
    /// counted.
    Skipped,
}

/// Provider role words (OneRoster 1.1 and 1.2, Clever), folded to lower case.
const ROLE_WORDS: &[(&str, RoleKind)] = &[
    ("student", RoleKind::User(Role::Student)),
    ("teacher", RoleKind::User(Role::Teacher)),
    ("administrator", RoleKind::User(Role::Administrator)),
    ("districtadministrator", RoleKind::User(Role::Administrator)),
    ("siteadministrator", RoleKind::User(Role::Administrator)),
    ("systemadministrator", RoleKind::User(Role::Administrator)),
    ("principal", RoleKind::User(Role::Administrator)),
    ("district_admin", RoleKind::User(Role::Administrator)),
    ("aide", RoleKind::User(Role::Staff)),
    ("proctor", RoleKind::User(Role::Staff)),
    ("staff", RoleKind::User(Role::Staff)),
    ("counselor", RoleKind::User(Role::Staff)),
    ("guardian", RoleKind::Skipped),
    ("parent", RoleKind::Skipped),
    ("relative", RoleKind::Skipped),
    ("contact", RoleKind::Skipped),
];

pub fn role_kind(word: &str) -> Option<RoleKind> {
    let w = word.trim().to_ascii_lowercase();
    ROLE_WORDS.iter().find(|(k, _)| *k == w).map(|(_, r)| *r)
}

/// Provider grade words that [`Grade::parse`] does not know (CEDS codes used by OneRoster,
/// Clever's spelled-out levels), folded to lower case.
const GRADE_WORDS: &[(&str, &str)] = &[
    ("it", "PreK"),
    ("pr", "PreK"),
    ("infanttoddler", "PreK"),
    ("preschool", "PreK"),
    ("transitionalkindergarten", "PreK"),
    ("13", "Other"),
    ("ps", "Other"),
    ("postgraduate", "Other"),
];

pub fn parse_grade(raw: &str) -> Option<Grade> {
    let w = raw.trim().to_ascii_lowercase();
    match GRADE_WORDS.iter().find(|(k, _)| *k == w) {
        Some((_, label)) => Grade::parse(label),
        None => Grade::parse(raw),
    }
}

/// One provider user record, as the provider spells it. Its text is inline up to 24 bytes
/// (`CompactString`): a set is read whole, and a million records of a dozen short heap
/// strings each cost ~250 MB more (issue 15, memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderUser {
    /// Where the record came from, for messages (`users.csv line 7`, `record 12`).
    pub origin: CompactString,
    /// The provider's own id (OneRoster sourcedId, Clever id).
    pub key: CompactString,
    pub to_be_deleted: bool,
    /// `false` makes the user Inactive.
    pub enabled: bool,
    pub role: CompactString,
    pub custom_id: CompactString,
    pub username: CompactString,
    pub first_name: CompactString,
    pub middle_name: CompactString,
    pub last_name: CompactString,
    pub email: CompactString,
    /// Provider org / school ids.
    pub orgs: Vec<CompactString>,
    pub grade: CompactString,
    /// Why the record could not be read at all (it becomes an error row).
    pub problem: Option<String>,
}

/// What one record comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    User(Box<IncomingUser>),
    /// A guardian, parent or relative.
    Skipped,
    Failed(RowFail),
}

/// Orgs the feed knows: schools (by external ID) and other orgs (districts, departments)
/// that users may list and that are quietly left out.
#[derive(Debug, Clone, Default)]
pub struct Orgs {
    pub schools: HashSet<String>,
    pub other: HashSet<String>,
}

impl ProviderUser {
    /// Type the record. `line` is its position in the run (the snapshot file's line).
    pub fn to_incoming(&self, line: u64, orgs: &Orgs) -> Mapped {
        let custom_id = Some(self.custom_id.trim().to_string()).filter(|s| !s.is_empty());
        let email_raw = self.email.trim();
        let fail = |message: String| {
            Mapped::Failed(RowFail {
                line,
                message: format!("{}: {message}", self.origin),
                user_guid: None,
                custom_id: custom_id.clone(),
                email: Some(email_raw.to_lowercase()).filter(|e| !e.is_empty()),
            })
        };
        if let Some(problem) = &self.problem {
            return fail(problem.clone());
        }
        let role = match role_kind(&self.role) {
            Some(RoleKind::Skipped) => return Mapped::Skipped,
            Some(RoleKind::User(r)) => r,
            None => {
                return fail(format!(
                    "role \"{}\" is not a role Rollcall knows (student, teacher, administrator, aide, proctor)",
                    self.role.trim()
                ));
            }
        };
        if self.key.trim().is_empty() {
            return fail("the record has no id".into());
        }
        let email = match email_raw {
            "" => None,
            e => match parse_email(e) {
                Some(e) => Some(e),
                None => return fail(format!("email \"{e}\" is not a valid email address")),
            },
        };
        if custom_id.is_none() && email.is_none() {
            return fail("the record has neither an identifier nor an email".into());
        }
        let (first_name, last_name) = (self.first_name.trim(), self.last_name.trim());
        if first_name.is_empty() || last_name.is_empty() {
            return fail("first and last name are required".into());
        }
        let mut schools = Vec::new();
        for org in self.orgs.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            if orgs.schools.contains(org) {
                schools.push(org.to_string());
            } else if !orgs.other.contains(org) {
                return fail(format!(
                    "school \"{org}\" is not among the provider's schools"
                ));
            }
        }
        schools.sort();
        schools.dedup();
        let grade = if role.is_student() {
            match parse_grade(&self.grade) {
                Some(g) => g,
                None => {
                    return fail(format!(
                        "grade \"{}\" is not one of {}",
                        self.grade.trim(),
                        Grade::expected()
                    ));
                }
            }
        } else {
            Grade::UNSPECIFIED
        };
        let present: FieldSet = [
            Field::CustomId,
            Field::Email,
            Field::Username,
            Field::FirstName,
            Field::MiddleName,
            Field::LastName,
            Field::Role,
            Field::SchoolExternalId,
            Field::Grade,
            Field::Status,
        ]
        .into_iter()
        .collect();
        Mapped::User(Box::new(IncomingUser {
            line,
            user_guid: None,
            custom_id,
            email,
            username: Some(self.username.trim().to_string()).filter(|s| !s.is_empty()),
            first_name: first_name.to_string(),
            middle_name: self.middle_name.trim().to_string(),
            last_name: last_name.to_string(),
            role,
            schools,
            grade,
            position: String::new(),
            status: if self.enabled {
                Status::Active
            } else {
                Status::Inactive
            },
            password: None,
            source_key: Some(self.key.trim().to_string()),
            to_be_deleted: self.to_be_deleted,
            present,
        }))
    }
}

/// The header of a sync run's snapshot file (what the provider sent, one record a line).
pub const SNAPSHOT_HEADER: [&str; 12] = [
    "source_key",
    "provider_status",
    "custom_id",
    "username",
    "first_name",
    "middle_name",
    "last_name",
    "email",
    "role",
    "school_external_id",
    "grade",
    "status",
];

/// A record as a snapshot line. Line breaks inside values become spaces, so record `i` is
/// on line `i + 2` and the run's row results line up with the file.
pub fn snapshot_record(u: &ProviderUser) -> [String; 12] {
    let flat = |s: &str| s.replace(['\r', '\n'], " ");
    [
        flat(&u.key),
        if u.to_be_deleted {
            "tobedeleted".into()
        } else {
            "active".into()
        },
        flat(&u.custom_id),
        flat(&u.username),
        flat(&u.first_name),
        flat(&u.middle_name),
        flat(&u.last_name),
        flat(&u.email),
        flat(&u.role),
        flat(&u.orgs.join(";")),
        flat(&u.grade),
        if u.enabled {
            "Active".into()
        } else {
            "Inactive".into()
        },
    ]
}

/// Where a reader puts the provider records it reads, one at a time.
pub trait UserSink {
    /// About how many records are coming (the file's lines), to size lists once.
    fn reserve(&mut self, records: usize);
    fn push(&mut self, user: ProviderUser);
}

impl UserSink for Vec<ProviderUser> {
    fn reserve(&mut self, records: usize) {
        Vec::reserve(self, records);
    }
    fn push(&mut self, user: ProviderUser) {
        Vec::push(self, user);
    }
}

/// The typed rows of a sync's records (same order as its snapshot's lines), and how many
/// guardian, parent or relative records were skipped.
#[derive(Debug, Default)]
pub struct Typed {
    pub rows: TypedRows,
    pub skipped: usize,
}

/// A sync's typed rows, kept encoded ([`Encoded`]: a million users in ~100 MiB rather than
/// ~420; issue 15), with the rows found to repeat another's identifiers turned into errors
/// and the usernames the rows give explicitly (which generated ones must avoid).
#[derive(Debug, Default)]
pub struct TypedRows {
    encoded: Encoded<Row>,
    /// Position → the error that replaces the row (a custom ID, email or username used twice).
    replaced: HashMap<usize, RowFail>,
    /// The keys of the usernames accepted rows give (`plan::GivenNames::Keys`).
    reserved: Vec<u64>,
}

type Row = Result<IncomingUser, RowFail>;

impl TypedRows {
    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The keys of the usernames the accepted rows give explicitly, taken out for the
    /// planner.
    pub fn take_reserved_usernames(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.reserved)
    }

    /// Every row, decoded, in order (the rows are kept).
    pub fn iter(&self) -> impl Iterator<Item = Row> + '_ {
        let mut replaced = self.replaced.clone();
        self.encoded
            .iter()
            .enumerate()
            .map(move |(i, row)| replaced.remove(&i).map_or(row, Err))
    }

    /// Every row, decoded, in order; the encoded rows are freed as they are read.
    pub fn into_rows(self) -> impl Iterator<Item = Row> {
        let TypedRows {
            encoded,
            mut replaced,
            ..
        } = self;
        encoded
            .into_iter()
            .enumerate()
            .map(move |(i, row)| replaced.remove(&i).map_or(row, Err))
    }
}

/// Types provider records as they arrive: each becomes its row for the planner at once and
/// its line of the run's snapshot file is written, so a set's million users are never held
/// as provider records beside the rows made of them (issue 15, memory). Records are
/// numbered from line 2 (the snapshot's header is line 1); skipped records get no line.
/// [`Typing::finish`] marks custom IDs, emails and usernames used twice as errors on every
/// occurrence.
pub struct Typing<'o, W: std::io::Write> {
    orgs: &'o Orgs,
    rows: Encoded<Row>,
    /// Each row's record origin (`users.csv line 7`), for the duplicate messages.
    origins: Vec<CompactString>,
    skipped: usize,
    snapshot: csv::Writer<W>,
    /// The first write that failed (reported by `finish`).
    failed: Option<csv::Error>,
}

impl<'o, W: std::io::Write> Typing<'o, W> {
    pub fn new(orgs: &'o Orgs, snapshot: W) -> Self {
        let mut snapshot = csv::Writer::from_writer(snapshot);
        let failed = snapshot.write_record(SNAPSHOT_HEADER).err();
        Typing {
            orgs,
            rows: Encoded::default(),
            origins: Vec::new(),
            skipped: 0,
            snapshot,
            failed,
        }
    }

    /// Type every record of a list.
    pub fn push_all(&mut self, users: &[ProviderUser]) {
        self.reserve(users.len());
        for u in users {
            self.push_ref(u);
        }
    }

    fn push_ref(&mut self, u: &ProviderUser) {
        let line = self.rows.len() as u64 + 2;
        match u.to_incoming(line, self.orgs) {
            Mapped::Skipped => {
                self.skipped += 1;
                return;
            }
            Mapped::User(inc) => _ = self.rows.push(&Ok(*inc)),
            Mapped::Failed(f) => _ = self.rows.push(&Err(f)),
        }
        self.origins.push(u.origin.clone());
        if self.failed.is_none()
            && let Err(e) = self.snapshot.write_record(snapshot_record(u))
        {
            self.failed = Some(e);
        }
    }

    /// The rows, with duplicates marked, and the snapshot writer flushed and given back.
    /// Duplicates are found as a large file's are: the rows' identifiers hashed (fixed size,
    /// one pass), then only the rows whose hashes collide decoded again and compared by value.
    pub fn finish(self) -> Result<(Typed, W), csv::Error> {
        let Typing {
            rows,
            origins,
            skipped,
            snapshot,
            failed,
            ..
        } = self;
        if let Some(e) = failed {
            return Err(e);
        }
        let snapshot = snapshot
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        let mut hashes = KeyColumns::with_capacity(rows.len());
        let mut usernames: Vec<(usize, u64)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let keys = row.as_ref().ok().map(KeyHashes::of);
            hashes.push(keys.as_ref());
            if let Some(key) = keys.as_ref().and_then(KeyHashes::explicit_username_key) {
                usernames.push((i, key));
            }
        }
        let candidates = hashes.candidates();
        let mut replaced = HashMap::new();
        if !candidates.is_empty() {
            let mut wanted = candidates.iter().copied().peekable();
            let mut keys: Vec<Result<RowKeys, ()>> = Vec::with_capacity(candidates.len());
            for (i, row) in rows.iter().enumerate() {
                let Some(&next) = wanted.peek() else { break };
                if i == next {
                    wanted.next();
                    keys.push(row.as_ref().map(RowKeys::of).map_err(|_| ()));
                }
            }
            for (k, e) in validate::duplicates_among(&keys) {
                let i = candidates[k];
                let (custom_id, email) = match &keys[k] {
                    Ok(u) => (
                        u.custom_id.as_deref().map(String::from),
                        u.email.as_deref().map(String::from),
                    ),
                    Err(()) => (None, None),
                };
                replaced.insert(
                    i,
                    RowFail {
                        line: e.line,
                        message: format!("{}: {}", origins[i], e.message),
                        user_guid: None,
                        custom_id,
                        email,
                    },
                );
            }
        }
        let reserved = usernames
            .into_iter()
            .filter(|(i, _)| !replaced.contains_key(i))
            .map(|(_, key)| key)
            .collect();
        let rows = TypedRows {
            encoded: rows,
            replaced,
            reserved,
        };
        Ok((Typed { rows, skipped }, snapshot))
    }
}

impl<W: std::io::Write> UserSink for Typing<'_, W> {
    fn reserve(&mut self, records: usize) {
        self.origins.reserve(records);
    }
    fn push(&mut self, user: ProviderUser) {
        self.push_ref(&user);
    }
}

/// Type every record, writing no snapshot.
#[cfg(test)]
pub fn map_all(users: &[ProviderUser], orgs: &Orgs) -> Typed {
    let mut typing = Typing::new(orgs, std::io::sink());
    typing.push_all(users);
    match typing.finish() {
        Ok((typed, _)) => typed,
        Err(e) => unreachable!("writing to a sink cannot fail: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orgs() -> Orgs {
        Orgs {
            schools: ["S1".to_string(), "S2".to_string()].into(),
            other: ["D1".to_string()].into(),
        }
    }

    fn student() -> ProviderUser {
        ProviderUser {
            origin: "record 1".into(),
            key: "u1".into(),
            enabled: true,
            role: "student".into(),
            custom_id: "1001".into(),
            username: "ann".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "Ann.Lee@Example.org".into(),
            orgs: vec!["S2".into(), "D1".into(), "S1".into()],
            grade: "09".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_student_becomes_an_incoming_user() {
        let Mapped::User(u) = student().to_incoming(2, &orgs()) else {
            panic!("mapped")
        };
        assert_eq!(u.role, Role::Student);
        assert_eq!(u.grade.as_str(), "9");
        assert_eq!(u.schools, vec!["S1", "S2"], "district org left out, sorted");
        assert_eq!(u.email.as_deref(), Some("ann.lee@example.org"));
        assert_eq!(u.source_key.as_deref(), Some("u1"));
        assert_eq!(u.status, Status::Active);
        assert!(u.present.contains(Field::Status) && !u.present.contains(Field::Position));
    }

    #[test]
    fn vocabularies() {
        for (w, r) in [
            ("aide", Role::Staff),
            ("proctor", Role::Staff),
            ("administrator", Role::Administrator),
            ("Teacher", Role::Teacher),
        ] {
            assert_eq!(role_kind(w), Some(RoleKind::User(r)));
        }
        for w in ["guardian", "parent", "relative"] {
            assert_eq!(role_kind(w), Some(RoleKind::Skipped));
        }
        assert_eq!(role_kind("janitor"), None);
        assert_eq!(parse_grade("KG").unwrap().as_str(), "K");
        assert_eq!(parse_grade("PR").unwrap().as_str(), "PreK");
        assert_eq!(parse_grade("13").unwrap().as_str(), "Other");
        assert_eq!(
            parse_grade("TransitionalKindergarten").unwrap().as_str(),
            "PreK"
        );
    }

    #[test]
    fn disabled_and_deleted() {
        let mut u = student();
        u.enabled = false;
        u.to_be_deleted = true;
        let Mapped::User(inc) = u.to_incoming(2, &orgs()) else {
            panic!()
        };
        assert_eq!(inc.status, Status::Inactive);
        assert!(inc.to_be_deleted);
    }

    #[test]
    fn failures_keep_identifiers_and_guardians_are_skipped() {
        let mut u = student();
        u.orgs = vec!["S9".into()];
        let Mapped::Failed(f) = u.to_incoming(5, &orgs()) else {
            panic!()
        };
        assert_eq!(f.line, 5);
        assert_eq!(f.custom_id.as_deref(), Some("1001"));
        assert_eq!(f.email.as_deref(), Some("ann.lee@example.org"));
        assert!(f.message.contains("record 1") && f.message.contains("S9"));

        let mut g = student();
        g.role = "guardian".into();
        assert_eq!(g.to_incoming(2, &orgs()), Mapped::Skipped);

        let mut bad = student();
        bad.grade = "14".into();
        assert!(matches!(bad.to_incoming(2, &orgs()), Mapped::Failed(_)));
    }

    #[test]
    fn map_all_numbers_lines_and_marks_duplicates() {
        let mut g = student();
        g.role = "parent".into();
        let mut twin = student();
        twin.key = "u2".into();
        twin.email = CompactString::default();
        let orgs = orgs();
        let mut typing = Typing::new(&orgs, Vec::new());
        for u in [g, student(), twin] {
            typing.push(u);
        }
        let (Typed { rows, skipped }, snapshot) = typing.finish().unwrap();
        let rows: Vec<_> = rows.iter().collect();
        assert_eq!(skipped, 1);
        let snapshot = String::from_utf8(snapshot).unwrap();
        assert_eq!(
            snapshot.lines().count(),
            3,
            "header and the two kept records"
        );
        assert!(snapshot.lines().nth(2).unwrap().starts_with("u2,"));
        let lines: Vec<u64> = rows
            .iter()
            .map(|r| match r {
                Ok(u) => u.line,
                Err(f) => f.line,
            })
            .collect();
        assert_eq!(lines, vec![2, 3]);
        assert!(rows.iter().all(|r| r.is_err()), "custom_id 1001 twice");
        let Err(f) = &rows[0] else { unreachable!() };
        assert!(f.message.starts_with("record 1: "), "{}", f.message);
        assert_eq!(f.custom_id.as_deref(), Some("1001"));
        assert_eq!(f.email.as_deref(), Some("ann.lee@example.org"));
    }
}
