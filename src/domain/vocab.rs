//! Vocabularies as data: each accepted spelling maps to one canonical value.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Lower-case and drop spaces, `_`, `-` and `.` so `Pre-K`, `pre k` and `PREK` compare equal.
fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Student,
    Teacher,
    Staff,
    Administrator,
}

const ROLE_WORDS: &[(&str, Role)] = &[
    ("student", Role::Student),
    ("students", Role::Student),
    ("learner", Role::Student),
    ("pupil", Role::Student),
    ("teacher", Role::Teacher),
    ("teachers", Role::Teacher),
    ("faculty", Role::Teacher),
    ("staff", Role::Staff),
    ("aide", Role::Staff),
    ("proctor", Role::Staff),
    ("employee", Role::Staff),
    ("administrator", Role::Administrator),
    ("admin", Role::Administrator),
    ("districtadministrator", Role::Administrator),
    ("schooladministrator", Role::Administrator),
    ("principal", Role::Administrator),
];

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Student,
        Role::Teacher,
        Role::Staff,
        Role::Administrator,
    ];

    /// Every accepted spelling (folded) and its role, for the field reference.
    pub fn words() -> &'static [(&'static str, Role)] {
        ROLE_WORDS
    }

    pub fn parse(raw: &str) -> Option<Role> {
        // The stored spelling (every row a run loads, most file cells) needs no folding.
        if let Some(r) = Self::ALL.into_iter().find(|r| r.as_str() == raw) {
            return Some(r);
        }
        let f = fold(raw);
        ROLE_WORDS.iter().find(|(w, _)| *w == f).map(|(_, r)| *r)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "Student",
            Role::Teacher => "Teacher",
            Role::Staff => "Staff",
            Role::Administrator => "Administrator",
        }
    }

    pub fn is_student(self) -> bool {
        self == Role::Student
    }

    /// The accepted values, for error messages.
    pub fn expected() -> &'static str {
        "Student, Teacher, Staff, Administrator"
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A student's grade: an index into [`Grade::LABELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grade(u8);

const GRADE_WORDS: &[(&str, &str)] = &[
    ("", "Unspecified"),
    ("unspecified", "Unspecified"),
    ("prek", "PreK"),
    ("pk", "PreK"),
    ("tk", "PreK"),
    ("prekindergarten", "PreK"),
    ("k", "K"),
    ("kg", "K"),
    ("kindergarten", "K"),
    ("other", "Other"),
    ("ug", "Other"),
    ("ungraded", "Other"),
];

impl Grade {
    pub const LABELS: [&'static str; 16] = [
        "Unspecified",
        "PreK",
        "K",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "Other",
    ];
    pub const UNSPECIFIED: Grade = Grade(0);

    pub fn all() -> impl Iterator<Item = Grade> {
        (0..Self::LABELS.len() as u8).map(Grade)
    }

    /// The accepted words (folded) and the label each stands for, for the field
    /// reference; numbers 1–12 are read too (`01`, `grade 3`, `3rd`).
    pub fn words() -> &'static [(&'static str, &'static str)] {
        GRADE_WORDS
    }

    pub fn parse(raw: &str) -> Option<Grade> {
        // A label as stored needs no folding.
        if let Some(i) = Self::LABELS.iter().position(|l| *l == raw) {
            return Some(Grade(i as u8));
        }
        let f = fold(raw);
        let label = if let Some((_, l)) = GRADE_WORDS.iter().find(|(w, _)| *w == f) {
            *l
        } else {
            // "01".."12", "grade 3", "3rd"
            let digits = f
                .trim_start_matches("grade")
                .trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let n: u8 = digits.parse().ok()?;
            if !(1..=12).contains(&n) {
                return None;
            }
            Self::LABELS[n as usize + 2]
        };
        Self::LABELS
            .iter()
            .position(|l| *l == label)
            .map(|i| Grade(i as u8))
    }

    pub fn as_str(self) -> &'static str {
        Self::LABELS[self.0 as usize]
    }

    pub fn expected() -> &'static str {
        "Unspecified, PreK, K, 1-12, Other"
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Active,
    Inactive,
}

const STATUS_WORDS: &[(&str, Status)] = &[
    ("", Status::Active),
    ("active", Status::Active),
    ("1", Status::Active),
    ("enabled", Status::Active),
    ("true", Status::Active),
    ("yes", Status::Active),
    ("y", Status::Active),
    ("inactive", Status::Inactive),
    ("0", Status::Inactive),
    ("disabled", Status::Inactive),
    ("false", Status::Inactive),
    ("no", Status::Inactive),
    ("n", Status::Inactive),
    ("suspended", Status::Inactive),
];

impl Status {
    /// Every accepted spelling (folded; `""` is a blank cell) and its status, for the
    /// field reference.
    pub fn words() -> &'static [(&'static str, Status)] {
        STATUS_WORDS
    }

    pub fn parse(raw: &str) -> Option<Status> {
        match raw {
            "Active" => return Some(Status::Active),
            "Inactive" => return Some(Status::Inactive),
            _ => {}
        }
        let f = fold(raw);
        STATUS_WORDS.iter().find(|(w, _)| *w == f).map(|(_, s)| *s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Inactive => "Inactive",
        }
    }

    pub fn to_db(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }

    pub fn expected() -> &'static str {
        "Active, Inactive (or 1/0, Disabled)"
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// The portal's own vocabularies: what a run, a user's status, a portal role and an actor can
// be. Each is stored as lower-case text (the names below, `snake_case`), read and written
// through `sqlx::Type`, and labelled for screens here and nowhere else.
// ---------------------------------------------------------------------------------------

/// Generates the text spelling (`as_str`, also the database value), parsing back from it,
/// `Display` (the spelling) and the list of every value.
macro_rules! text_vocabulary {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling (database, JSON, URLs).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose stored spelling this is (exact match).
            pub fn from_text(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Equal to its stored spelling. For tests and for values read as text elsewhere;
        /// `scripts/vocab-literals` refuses such comparisons in `src/`.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;
            fn from_str(text: &str) -> Result<$name, UnknownWord> {
                $name::from_text(text).ok_or_else(|| UnknownWord {
                    vocabulary: stringify!($name),
                    word: text.to_string(),
                })
            }
        }
    };
}

/// A stored word that is none of its vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{word}\" is not a {vocabulary}")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub word: String,
}

/// Where a run is (`runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    NeedsMapping,
    Queued,
    InProgress,
    Completed,
    CompletedWithErrors,
    NeedsReview,
    Failed,
    Cancelled,
}

text_vocabulary!(RunStatus {
    NeedsMapping => "needs_mapping",
    Queued => "queued",
    InProgress => "in_progress",
    Completed => "completed",
    CompletedWithErrors => "completed_with_errors",
    NeedsReview => "needs_review",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl RunStatus {
    /// How screens name it (SPEC §5's names; the one place a status gets its words).
    pub const fn label(self) -> &'static str {
        match self {
            RunStatus::NeedsMapping => "Needs mapping",
            RunStatus::Queued => "Queued",
            RunStatus::InProgress => "In Progress",
            RunStatus::Completed => "Completed",
            RunStatus::CompletedWithErrors => "Completed with Errors",
            RunStatus::NeedsReview => "Needs Review",
            RunStatus::Failed => "Failed",
            RunStatus::Cancelled => "Cancelled",
        }
    }

    /// Nothing more will happen to the run by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed
                | RunStatus::CompletedWithErrors
                | RunStatus::Failed
                | RunStatus::Cancelled
        )
    }

    /// The run changed users (or was applied, possibly with row errors).
    pub fn is_applied(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::CompletedWithErrors)
    }
}

/// How a run came in (`runs.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Upload,
    Api,
    Drop,
    Cli,
    Sync,
    Undo,
}

text_vocabulary!(RunKind {
    Upload => "upload",
    Api => "api",
    Drop => "drop",
    Cli => "cli",
    Sync => "sync",
    Undo => "undo",
});

impl RunKind {
    /// The kind of a run of a file sent by `sender`: a token's is an API run, the drop
    /// folder's a drop run, anyone else's an upload.
    pub fn of_file_from(sender: ActorKind) -> RunKind {
        match sender {
            ActorKind::Token => RunKind::Api,
            ActorKind::Drop => RunKind::Drop,
            ActorKind::Cli => RunKind::Cli,
            ActorKind::User | ActorKind::Operator | ActorKind::Sync | ActorKind::System => {
                RunKind::Upload
            }
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            RunKind::Upload => "Browser upload",
            RunKind::Api => "API",
            RunKind::Drop => "Drop folder",
            RunKind::Cli => "Command line",
            RunKind::Sync => "Sync",
            RunKind::Undo => "Undo",
        }
    }
}

/// A user's status in the portal (`users.status`). The SIS file's words for it are [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Inactive,
}

text_vocabulary!(UserStatus {
    Active => "active",
    Inactive => "inactive",
});

impl UserStatus {
    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Active => "Active",
            UserStatus::Inactive => "Inactive",
        }
    }
}

impl From<Status> for UserStatus {
    fn from(s: Status) -> UserStatus {
        match s {
            Status::Active => UserStatus::Active,
            Status::Inactive => UserStatus::Inactive,
        }
    }
}

impl From<UserStatus> for Status {
    fn from(s: UserStatus) -> Status {
        match s {
            UserStatus::Active => Status::Active,
            UserStatus::Inactive => Status::Inactive,
        }
    }
}

/// Portal rights of a signed-in person (`users.portal_role`; admin rights as a type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PortalRole {
    /// A plain user (teacher, staff, student): own account page only.
    User,
    SchoolAdmin,
    DistrictAdmin,
}

text_vocabulary!(PortalRole {
    User => "user",
    SchoolAdmin => "school_admin",
    DistrictAdmin => "district_admin",
});

impl PortalRole {
    pub fn parse(s: &str) -> Option<PortalRole> {
        PortalRole::from_text(s)
    }

    /// A school or district admin: managed in the portal, never by a file or a sync.
    pub fn is_admin(self) -> bool {
        !matches!(self, PortalRole::User)
    }

    pub fn label(self) -> &'static str {
        match self {
            PortalRole::User => "User",
            PortalRole::SchoolAdmin => "School admin",
            PortalRole::DistrictAdmin => "District admin",
        }
    }
}

/// Who did something (`audit_log.actor_kind`, `runs.submitted_kind`). One word per actor: the
/// changes a run writes carry the run's `submitted_kind`. Rows written before that carried the
/// run's kind instead (`upload`, `api`, `undo`); [`ActorKind::from_stored`] still reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A signed-in person.
    User,
    /// The operator at the command line (`rollcall` subcommands).
    Operator,
    /// A script with an API token.
    Token,
    Cli,
    Drop,
    Sync,
    /// The portal itself (retention, schedules).
    System,
}

text_vocabulary!(ActorKind {
    User => "user",
    Operator => "operator",
    Token => "token",
    Cli => "cli",
    Drop => "drop",
    Sync => "sync",
    System => "system",
});

impl ActorKind {
    /// A stored word, including the older spellings: `upload` (a signed-in person's file),
    /// `api` (a token's) and `undo` (an undo run, asked for by a person).
    pub fn from_stored(text: &str) -> Option<ActorKind> {
        ActorKind::from_text(text).or(match text {
            "upload" | "undo" => Some(ActorKind::User),
            "api" => Some(ActorKind::Token),
            _ => None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            ActorKind::User => "User",
            ActorKind::Operator => "Operator",
            ActorKind::Token => "API token",
            ActorKind::Cli => "Command line",
            ActorKind::Drop => "Drop folder",
            ActorKind::Sync => "Roster sync",
            ActorKind::System => "Rollcall",
        }
    }
}

// `ActorKind` by hand (the others derive it): decoding also accepts the older spellings.
impl sqlx::Type<sqlx::Postgres> for ActorKind {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl sqlx::postgres::PgHasArrayType for ActorKind {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Postgres> for ActorKind {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for ActorKind {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        ActorKind::from_stored(text).ok_or_else(|| {
            Box::new(UnknownWord {
                vocabulary: "ActorKind",
                word: text.to_string(),
            }) as sqlx::error::BoxDynError
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(Role::parse(" teacher "), Some(Role::Teacher));
        assert_eq!(Role::parse("ADMINISTRATOR"), Some(Role::Administrator));
        assert_eq!(Role::parse("aide"), Some(Role::Staff));
        assert_eq!(Role::parse("guardian"), None);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn grades() {
        assert_eq!(Grade::parse("KG").unwrap().as_str(), "K");
        assert_eq!(Grade::parse("PK").unwrap().as_str(), "PreK");
        assert_eq!(Grade::parse("Pre-K").unwrap().as_str(), "PreK");
        assert_eq!(Grade::parse("09").unwrap().as_str(), "9");
        assert_eq!(Grade::parse("12").unwrap().as_str(), "12");
        assert_eq!(Grade::parse("").unwrap(), Grade::UNSPECIFIED);
        assert_eq!(Grade::parse("13"), None);
        assert_eq!(Grade::parse("0"), None);
        for g in Grade::all() {
            assert_eq!(Grade::parse(g.as_str()), Some(g));
        }
    }

    #[test]
    fn stored_words_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(*s));
        }
        for k in RunKind::ALL {
            assert_eq!(RunKind::from_text(k.as_str()), Some(*k));
        }
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::from_text(k.as_str()), Some(*k));
        }
        for r in PortalRole::ALL {
            assert_eq!(PortalRole::from_text(r.as_str()), Some(*r));
        }
        assert_eq!(
            "done".parse::<RunStatus>().unwrap_err().to_string(),
            "\"done\" is not a RunStatus"
        );
        assert_eq!(UserStatus::from(Status::Inactive).as_str(), "inactive");
        assert_eq!(ActorKind::from_stored("upload"), Some(ActorKind::User));
        assert_eq!(ActorKind::from_stored("api"), Some(ActorKind::Token));
        assert_eq!(ActorKind::from_stored("token"), Some(ActorKind::Token));
        assert_eq!(ActorKind::from_stored("robot"), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(Status::parse("1"), Some(Status::Active));
        assert_eq!(Status::parse("Disabled"), Some(Status::Inactive));
        assert_eq!(Status::parse(""), Some(Status::Active));
        assert_eq!(Status::parse("maybe"), None);
        for st in [Status::Active, Status::Inactive] {
            assert_eq!(Status::parse(st.as_str()), Some(st));
        }
    }

    /// The stored spellings are read without folding: they must read as their folded forms
    /// (and as themselves in capitals, spaced out) do.
    #[test]
    fn a_stored_spelling_reads_as_its_folded_form() {
        let spaced = |s: &str| format!(" {} ", s.to_uppercase());
        for r in Role::ALL {
            assert_eq!(Role::parse(&spaced(r.as_str())), Role::parse(r.as_str()));
        }
        for g in Grade::all() {
            assert_eq!(Grade::parse(&spaced(g.as_str())), Grade::parse(g.as_str()));
        }
        for st in [Status::Active, Status::Inactive] {
            assert_eq!(
                Status::parse(&spaced(st.as_str())),
                Status::parse(st.as_str())
            );
        }
    }
}
