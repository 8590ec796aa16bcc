//! The identity domain: vocabularies and typed users. Plain Rust, no SQL, no HTTP.
//!
//! Vocabularies are tables of data (see `vocab.rs`), parsed once at the edge.

pub mod alerts;
pub mod audit;
pub mod bulk;
pub mod chunked;
mod current_users;
pub mod district;
pub mod encoded;
pub mod fold;
pub mod health;
pub mod history;
pub mod home;
pub mod person;
pub mod roster;
pub mod teaching;
pub mod user_form;
pub mod username;
mod vocab;
pub mod windows;
pub mod zone;

pub use current_users::{CurrentUsers, UserParts};
pub use vocab::{
    ActorKind, Grade, PortalRole, Role, RunKind, RunStatus, Status, UnknownWord, UserStatus,
};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// What a file covers (SPEC §4), chosen with the upload: which users missing from it are
/// archived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The file lists every user of its source; that source's users missing from it are
    /// archived.
    #[default]
    Source,
    /// The file lists every user of the district that is not sync-owned (the master CSV sent
    /// back): missing file-owned users, and missing manual users without
    /// `prevent_archiving`, are archived.
    District,
    /// Adds and updates only; archives nobody.
    Patch,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Source, Scope::District, Scope::Patch];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Source => "source",
            Scope::District => "district",
            Scope::Patch => "patch",
        }
    }

    /// `source`, `district` or `patch` (case and surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<Scope> {
        let s = s.trim();
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str().eq_ignore_ascii_case(s))
    }

    pub fn label(self) -> &'static str {
        match self {
            Scope::Source => "This file's users",
            Scope::District => "The whole district",
            Scope::Patch => "Changes only",
        }
    }

    /// One line for the upload form.
    pub fn explanation(self) -> &'static str {
        match self {
            Scope::Source => {
                "The file lists every user of its source: users of this file missing from it are archived."
            }
            Scope::District => {
                "The file lists every user of the district not provisioned by a roster sync (the master CSV sent back): users missing from it are archived."
            }
            Scope::Patch => "Adds and updates the users in the file; archives nobody.",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who provisions a user. Stored as text: `manual`, `file:<name>`, `sync:<connection uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    Manual,
    /// An uploaded file, keyed by its file name (`students.csv`). Inline up to 24 bytes: a
    /// million current users each carry their owner (issue 19).
    File(CompactString),
    /// A roster sync connection.
    Sync(Uuid),
}

impl Source {
    pub fn to_db(&self) -> String {
        match self {
            Source::Manual => "manual".to_string(),
            Source::File(name) => format!("file:{name}"),
            Source::Sync(id) => format!("sync:{id}"),
        }
    }

    pub fn from_db(s: &str) -> Source {
        if let Some(name) = s.strip_prefix("file:") {
            Source::File(name.into())
        } else if let Some(id) = s
            .strip_prefix("sync:")
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            Source::Sync(id)
        } else {
            Source::Manual
        }
    }

    pub fn is_sync(&self) -> bool {
        matches!(self, Source::Sync(_))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Manual => write!(f, "manual"),
            Source::File(name) => write!(f, "file {name}"),
            Source::Sync(id) => write!(f, "sync connection {id}"),
        }
    }
}

/// Normalise an email: trimmed and lower-cased (emails compare case-insensitively).
/// Returns `None` when it does not have the shape `local@domain.tld`.
pub fn parse_email(raw: &str) -> Option<String> {
    let s = raw.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';');
    ok.then(|| s.to_lowercase())
}

/// The fields of the canonical user CSV (SPEC §3), in canonical column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    UserGuid,
    CustomId,
    Email,
    Username,
    FirstName,
    MiddleName,
    LastName,
    Role,
    SchoolExternalId,
    Grade,
    Position,
    Status,
    Password,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::UserGuid,
        Field::CustomId,
        Field::Email,
        Field::Username,
        Field::FirstName,
        Field::MiddleName,
        Field::LastName,
        Field::Role,
        Field::SchoolExternalId,
        Field::Grade,
        Field::Position,
        Field::Status,
        Field::Password,
    ];

    /// The canonical column name.
    pub fn name(self) -> &'static str {
        match self {
            Field::UserGuid => "user_guid",
            Field::CustomId => "custom_id",
            Field::Email => "email",
            Field::Username => "username",
            Field::FirstName => "first_name",
            Field::MiddleName => "middle_name",
            Field::LastName => "last_name",
            Field::Role => "role",
            Field::SchoolExternalId => "school_external_id",
            Field::Grade => "grade",
            Field::Position => "position",
            Field::Status => "status",
            Field::Password => "password",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The field in words, for people (the mapper, the field reference).
    pub fn label(self) -> &'static str {
        match self {
            Field::UserGuid => "User GUID",
            Field::CustomId => "Student or employee ID",
            Field::Email => "Email",
            Field::Username => "Username",
            Field::FirstName => "First name",
            Field::MiddleName => "Middle name",
            Field::LastName => "Last name",
            Field::Role => "Role",
            Field::SchoolExternalId => "School external ID",
            Field::Grade => "Grade",
            Field::Position => "Position (job title)",
            Field::Status => "Status",
            Field::Password => "Password",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of fields (which columns a feed carries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldSet(u16);

impl FieldSet {
    pub fn all() -> FieldSet {
        Field::ALL.into_iter().collect()
    }
    pub fn insert(&mut self, f: Field) {
        self.0 |= f.bit();
    }
    pub fn remove(&mut self, f: Field) {
        self.0 &= !f.bit();
    }
    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The fields of `self` that are not in `other`.
    pub fn without(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & !other.0)
    }
    /// The fields, in canonical column order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        let mut s = FieldSet::default();
        for f in iter {
            s.insert(f);
        }
        s
    }
}

/// One user as a feed (file row or sync record) describes them, already parsed and typed.
/// Built once by validation; after that no code re-checks strings. Serialized only to be
/// kept encoded in memory ([`encoded::Encoded`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingUser {
    /// 1-based line number in the source file of the row's first line (the header is line 1);
    /// for syncs, the record's position.
    pub line: u64,
    pub user_guid: Option<Uuid>,
    pub custom_id: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub role: Role,
    /// School external IDs, sorted and de-duplicated; each one exists in the district.
    pub schools: Vec<String>,
    /// Always `Unspecified` for adults.
    pub grade: Grade,
    /// Always empty for students.
    pub position: String,
    pub status: Status,
    /// A password given in the feed (never logged).
    pub password: Option<String>,
    /// Provider-side key within a sync connection (OneRoster sourcedId, Clever id).
    pub source_key: Option<String>,
    /// Sync records with status `tobedeleted`: archive this user.
    pub to_be_deleted: bool,
    /// Which fields the feed carries (a column or a fixed value). A field the feed does not
    /// carry keeps its current value; a carried field that is blank clears it (except
    /// username, which blank means "keep, or generate for a new user").
    pub present: FieldSet,
}

/// A user as the database holds them now (the planner's view), archived ones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub user_guid: Uuid,
    pub custom_id: Option<CompactString>,
    pub email: Option<CompactString>,
    pub username: CompactString,
    pub first_name: CompactString,
    pub middle_name: CompactString,
    pub last_name: CompactString,
    pub role: Role,
    /// School external IDs, sorted.
    pub schools: Vec<CompactString>,
    pub grade: Grade,
    pub position: CompactString,
    pub status: Status,
    pub archived: bool,
    pub source: Source,
    pub prevent_archiving: bool,
    pub source_key: Option<CompactString>,
    /// Portal rights. Feeds never change an admin's status, role, sign-in names or owner,
    /// and never archive them (see `reconcile::plan`).
    pub portal_role: PortalRole,
    /// Fields an admin changed by hand on a feed-owned user: feeds leave them (SPEC §4, "Fields
    /// an admin edited") until the admin releases them.
    pub kept: FieldSet,
    /// Fingerprint of the last password a feed gave this user (`users.feed_password_mac`,
    /// see `crypto::FeedPasswordKey`): the same password again changes nothing.
    /// Boxed: most users have none, and a million current users are loaded per run.
    pub feed_password_mac: Option<Box<[u8; 32]>>,
}

/// A row that validation already refused, with whatever identifiers it could still read, so
/// the user it refers to is protected from being archived as missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowFail {
    pub line: u64,
    pub message: String,
    pub user_guid: Option<Uuid>,
    pub custom_id: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
}

/// The run an error file came from, as stored in the run's options (the intake finds it
/// from the error file's name; the run's report reads it back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorFileOf {
    pub run_id: Uuid,
    pub file_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert_eq!(
            parse_email(" A.B@Example.ORG "),
            Some("a.b@example.org".into())
        );
        assert_eq!(parse_email("dwizardexample.com"), None);
        assert_eq!(parse_email("a@b"), None);
        assert_eq!(parse_email("a@@b.com"), None);
        assert_eq!(parse_email("a b@c.com"), None);
        assert_eq!(parse_email("@c.com"), None);
    }

    #[test]
    fn source_round_trips() {
        for s in [
            Source::Manual,
            Source::File("students.csv".into()),
            Source::Sync(Uuid::nil()),
        ] {
            assert_eq!(Source::from_db(&s.to_db()), s);
        }
    }
}
