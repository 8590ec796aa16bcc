//! OneRoster 1.1 and 1.2: the CSV binding (`manifest.csv`, `orgs.csv`, `users.csv`, and 1.2's
//! `roles.csv`) and the REST binding's JSON records, turned into [`ProviderUser`]s and
//! schools. Rosters (classes, terms, enrollments) are [`oneroster_rosters`]'s. Pure: no SQL,
//! no HTTP.
//!
//! [`oneroster_rosters`]: crate::feed::oneroster_rosters

use crate::feed::headers::{fold, with_folded};
use crate::feed::provider::{Orgs, ProviderUser, UserSink, role_kind};
use crate::feed::read::{self, FileError, ReadOptions};
use compact_str::CompactString;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Seek, SeekFrom};

/// How a manifest says a file is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Everything: records missing from it are gone.
    Bulk,
    /// Only what changed: never archive what it leaves out.
    Delta,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub orgs: FileMode,
    pub users: FileMode,
    /// OneRoster 1.2: users' roles and orgs.
    pub roles: FileMode,
    pub academic_sessions: FileMode,
    pub courses: FileMode,
    pub classes: FileMode,
    pub enrollments: FileMode,
    pub version: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("{file}: {error}")]
    File {
        file: &'static str,
        error: FileError,
    },
    #[error("{file} has no column {column}")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
    },
    #[error("manifest.csv: {0}")]
    Manifest(String),
    #[error("manifest.csv lists {0} but the set has no {0}")]
    Missing(&'static str),
}

fn mode(value: &str) -> Option<FileMode> {
    match value.trim().to_ascii_lowercase().as_str() {
        "bulk" => Some(FileMode::Bulk),
        "delta" => Some(FileMode::Delta),
        "absent" | "" => Some(FileMode::Absent),
        _ => None,
    }
}

/// A file of a set as the readers take it: its bytes in memory, or a file on disk (a large
/// entry of a zip is spilled to a temporary file as it is inflated, so that hundreds of MB
/// of users.csv and enrollments.csv are never held by the process — issue 15, memory).
#[derive(Debug, Clone, Copy)]
pub enum SetInput<'a> {
    Bytes(&'a [u8]),
    /// The file and its number of newlines (counted when it was written).
    File(&'a std::fs::File, usize),
}

impl<'a> SetInput<'a> {
    /// Its newlines: an upper bound of its records, to size a list once.
    pub fn lines(&self) -> usize {
        match self {
            SetInput::Bytes(b) => b.iter().filter(|&&c| c == b'\n').count(),
            SetInput::File(_, n) => *n,
        }
    }

    /// A reader from its start.
    pub fn reader(&self) -> std::io::Result<InputReader<'a>> {
        Ok(match *self {
            SetInput::Bytes(b) => InputReader::Bytes(Cursor::new(b)),
            SetInput::File(mut f, _) => {
                f.seek(SeekFrom::Start(0))?;
                InputReader::File(f)
            }
        })
    }
}

/// Reads a [`SetInput`].
pub enum InputReader<'a> {
    Bytes(Cursor<&'a [u8]>),
    File(&'a std::fs::File),
}

impl Read for InputReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            InputReader::Bytes(c) => c.read(buf),
            InputReader::File(f) => f.read(buf),
        }
    }
}

impl Seek for InputReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            InputReader::Bytes(c) => c.seek(pos),
            InputReader::File(f) => f.seek(pos),
        }
    }
}

/// A CSV file's header positions by folded name, and its records.
pub(crate) struct Table {
    cols: HashMap<String, usize>,
    pub(crate) width: usize,
    pub(crate) records: Vec<Result<read::RawRecord, read::RowIssue>>,
}

impl Table {
    pub(crate) fn read(
        file: &'static str,
        bytes: &[u8],
        max_bytes: u64,
    ) -> Result<Table, SetError> {
        let reader = match read::open(Cursor::new(bytes), &ReadOptions::with_max_bytes(max_bytes)) {
            Ok(r) => r,
            Err(FileError::HeaderOnly) => {
                return Ok(Table {
                    cols: HashMap::new(),
                    width: 0,
                    records: Vec::new(),
                });
            }
            Err(error) => return Err(SetError::File { file, error }),
        };
        let headers = reader.headers().to_vec();
        let cols = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (fold(h), i))
            .collect();
        let mut records = Vec::new();
        for item in reader {
            records.push(item.map_err(|error| SetError::File { file, error })?);
        }
        Ok(Table {
            cols,
            width: headers.len(),
            records,
        })
    }

    /// Read `bytes` record by record, keeping none: `each` gets the header positions and
    /// every record (or unreadable record) in file order. The same outcome as [`Table::read`]
    /// then [`Table::require`]: a file error wins over a missing column, and a header-only
    /// file needs no column.
    pub(crate) fn each(
        file: &'static str,
        input: SetInput<'_>,
        max_bytes: u64,
        required: &[&'static str],
        mut each: impl FnMut(&Table, Result<&read::RawRecord, &read::RowIssue>),
    ) -> Result<(), SetError> {
        let input = input.reader().map_err(|e| SetError::File {
            file,
            error: FileError::from(e),
        })?;
        let reader = match read::open(input, &ReadOptions::with_max_bytes(max_bytes)) {
            Ok(r) => r,
            Err(FileError::HeaderOnly) => return Ok(()),
            Err(error) => return Err(SetError::File { file, error }),
        };
        let headers = reader.headers();
        let t = Table {
            cols: headers
                .iter()
                .enumerate()
                .map(|(i, h)| (fold(h), i))
                .collect(),
            width: headers.len(),
            records: Vec::new(),
        };
        // `open` found a record, so the columns are required.
        let missing = required.iter().find(|c| !t.cols.contains_key(&fold(c)));
        for item in reader {
            let item = item.map_err(|error| SetError::File { file, error })?;
            if missing.is_none() {
                each(&t, item.as_ref());
            }
        }
        match missing {
            Some(column) => Err(SetError::MissingColumn { file, column }),
            None => Ok(()),
        }
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        self.cols.contains_key(&fold(column))
    }

    pub(crate) fn require(
        &self,
        file: &'static str,
        columns: &[&'static str],
    ) -> Result<(), SetError> {
        if self.records.is_empty() {
            return Ok(());
        }
        match columns.iter().find(|c| !self.cols.contains_key(&fold(c))) {
            Some(column) => Err(SetError::MissingColumn { file, column }),
            None => Ok(()),
        }
    }

    pub(crate) fn cell<'r>(&self, rec: &'r read::RawRecord, column: &str) -> &'r str {
        with_folded(column, |c| self.cols.get(c).copied())
            .and_then(|i| rec.fields.get(i))
            .map_or("", |c| c.trim())
    }

    /// A record with non-empty cells past the header (empty trailing ones are fine).
    pub(crate) fn overlong(&self, rec: &read::RawRecord) -> bool {
        rec.fields.len() > self.width
            && rec.fields[self.width..]
                .iter()
                .any(|c| !c.trim().is_empty())
    }
}

pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, SetError> {
    let t = Table::read("manifest.csv", bytes, 1024 * 1024)?;
    t.require("manifest.csv", &["propertyName", "value"])?;
    let mut props = HashMap::new();
    for rec in t.records.iter().flatten() {
        props.insert(
            t.cell(rec, "propertyName").to_ascii_lowercase(),
            t.cell(rec, "value").to_string(),
        );
    }
    let file_mode = |key: &str| -> Result<FileMode, SetError> {
        let v = props.get(key).map_or("absent", String::as_str);
        mode(v).ok_or_else(|| {
            SetError::Manifest(format!("{key} is \"{v}\"; expected bulk, delta or absent"))
        })
    };
    Ok(Manifest {
        orgs: file_mode("file.orgs")?,
        users: file_mode("file.users")?,
        roles: file_mode("file.roles")?,
        academic_sessions: file_mode("file.academicsessions")?,
        courses: file_mode("file.courses")?,
        classes: file_mode("file.classes")?,
        enrollments: file_mode("file.enrollments")?,
        version: props.get("oneroster.version").cloned(),
    })
}

/// A OneRoster org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub sourced_id: String,
    pub name: String,
    pub org_type: String,
    pub to_be_deleted: bool,
}

impl Org {
    pub fn is_school(&self) -> bool {
        self.org_type.eq_ignore_ascii_case("school")
    }
}

pub fn parse_orgs_csv(bytes: &[u8], max_bytes: u64) -> Result<Vec<Org>, SetError> {
    let t = Table::read("orgs.csv", bytes, max_bytes)?;
    t.require("orgs.csv", &["sourcedId", "name", "type"])?;
    Ok(t.records
        .iter()
        .flatten()
        .map(|rec| Org {
            sourced_id: t.cell(rec, "sourcedId").to_string(),
            name: t.cell(rec, "name").to_string(),
            org_type: t.cell(rec, "type").to_string(),
            to_be_deleted: t.cell(rec, "status").eq_ignore_ascii_case("tobedeleted"),
        })
        .filter(|o| !o.sourced_id.is_empty())
        .collect())
}

/// `identifier` when given, else `sourcedId` (SPEC §6).
fn custom_id(identifier: &str, sourced_id: &str) -> String {
    if identifier.trim().is_empty() {
        sourced_id.trim().to_string()
    } else {
        identifier.trim().to_string()
    }
}

fn enabled(raw: &str) -> bool {
    !raw.trim().eq_ignore_ascii_case("false")
}

pub(crate) fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn parse_users_csv(bytes: &[u8], max_bytes: u64) -> Result<Vec<ProviderUser>, SetError> {
    parse_users_with_roles(SetInput::Bytes(bytes), max_bytes, None)
}

/// `users.csv` of 1.1 (each user's `role` and `orgSourcedIds` in it) or of 1.2 (no such
/// columns: `roles` from `roles.csv` give them; a 1.2 file that still has them falls back to
/// them for a user `roles.csv` does not list).
pub fn parse_users_with_roles(
    input: SetInput<'_>,
    max_bytes: u64,
    roles: Option<&Roles>,
) -> Result<Vec<ProviderUser>, SetError> {
    let mut out = Vec::new();
    each_user(input, max_bytes, roles, &mut out)?;
    Ok(out)
}

/// [`parse_users_with_roles`], each record given to `out` as it is read.
pub fn each_user(
    input: SetInput<'_>,
    max_bytes: u64,
    roles: Option<&Roles>,
    out: &mut impl UserSink,
) -> Result<(), SetError> {
    let required: &[&'static str] = match roles {
        Some(_) => &["sourcedId", "givenName", "familyName"],
        None => &[
            "sourcedId",
            "role",
            "givenName",
            "familyName",
            "orgSourcedIds",
        ],
    };
    // Record by record, as the roster files: a million users' raw records (a string a cell)
    // are never all held beside the users made of them (issue 15, memory). Lists are sized
    // once from the file's lines.
    out.reserve(input.lines());
    Table::each("users.csv", input, max_bytes, required, |t, rec| {
        let rec = match rec {
            Ok(rec) => rec,
            Err(issue) => {
                out.push(ProviderUser {
                    origin: compact_str::format_compact!("users.csv line {}", issue.line),
                    problem: Some(issue.message.clone()),
                    ..Default::default()
                });
                return;
            }
        };
        let c = |col| t.cell(rec, col);
        let sourced_id = c("sourcedId");
        let mut problem = t.overlong(rec).then(|| {
            format!(
                "the row has {} fields but the header has {}",
                rec.fields.len(),
                t.width
            )
        });
        let (role, orgs) = match roles.and_then(|r| r.resolve(sourced_id, c("primaryOrgSourcedId")))
        {
            Some(found) => found,
            None if roles.is_some() && !t.has("role") => {
                if problem.is_none() {
                    problem = Some("roles.csv gives this user no role".into());
                }
                (String::new(), Vec::new())
            }
            None => (c("role").to_string(), list(c("orgSourcedIds"))),
        };
        let orgs = orgs.into_iter().map(CompactString::from).collect();
        out.push(ProviderUser {
            origin: compact_str::format_compact!("users.csv line {}", rec.line),
            key: sourced_id.into(),
            to_be_deleted: c("status").eq_ignore_ascii_case("tobedeleted"),
            enabled: enabled(c("enabledUser")),
            role: role.into(),
            custom_id: custom_id(c("identifier"), sourced_id).into(),
            username: c("username").into(),
            first_name: c("givenName").into(),
            middle_name: c("middleName").into(),
            last_name: c("familyName").into(),
            email: c("email").into(),
            orgs,
            grade: list(c("grades"))
                .into_iter()
                .next()
                .unwrap_or_default()
                .into(),
            problem,
        });
    })
}

/// One `roles.csv` record (OneRoster 1.2): a user's role in an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRole {
    /// `roleType = primary`.
    pub primary: bool,
    pub role: String,
    pub org: String,
}

/// Users' roles from `roles.csv`, by `userSourcedId`, in file order (records with status
/// `tobedeleted` left out).
#[derive(Debug, Clone, Default)]
pub struct Roles {
    by_user: HashMap<String, Vec<UserRole>>,
}

impl Roles {
    /// A user's role word and orgs. The primary role wins (the one in the user's
    /// `primaryOrgSourcedId` when the user is primary in several orgs; else the first); with
    /// no primary role, the first. The orgs are those where the user holds a role of the same
    /// kind (a teacher who is also a parent elsewhere is a teacher at the school only).
    pub fn resolve(&self, user: &str, primary_org: &str) -> Option<(String, Vec<String>)> {
        let roles = self.by_user.get(user).filter(|r| !r.is_empty())?;
        let winner = roles
            .iter()
            .find(|r| r.primary && !primary_org.is_empty() && r.org == primary_org)
            .or_else(|| roles.iter().find(|r| r.primary))
            .unwrap_or(&roles[0]);
        let kind = role_kind(&winner.role);
        let mut orgs: Vec<String> = Vec::new();
        for r in roles {
            let same = match kind {
                Some(k) => role_kind(&r.role) == Some(k),
                None => r.role.eq_ignore_ascii_case(&winner.role),
            };
            if same && !r.org.is_empty() && !orgs.contains(&r.org) {
                orgs.push(r.org.clone());
            }
        }
        Some((winner.role.clone(), orgs))
    }
}

/// `roles.csv` (OneRoster 1.2): sourcedId, status, dateLastModified, userSourcedId, roleType
/// (primary | secondary), role, beginDate, endDate, orgSourcedId, userProfileSourcedId.
pub fn parse_roles_csv(input: SetInput<'_>, max_bytes: u64) -> Result<Roles, SetError> {
    let mut roles = Roles::default();
    // Record by record (a role a user: millions of records in a large district's set).
    let required = ["userSourcedId", "roleType", "role", "orgSourcedId"];
    Table::each("roles.csv", input, max_bytes, &required, |t, rec| {
        let Ok(rec) = rec else { return };
        let c = |col| t.cell(rec, col);
        let user = c("userSourcedId");
        if user.is_empty() || c("status").eq_ignore_ascii_case("tobedeleted") {
            return;
        }
        roles
            .by_user
            .entry(user.to_string())
            .or_default()
            .push(UserRole {
                primary: c("roleType").eq_ignore_ascii_case("primary"),
                role: c("role").to_string(),
                org: c("orgSourcedId").to_string(),
            });
    })?;
    Ok(roles)
}

/// The schools to create or rename (external ID = sourcedId, name), and the org index
/// users are checked against: these schools plus the district's `existing` ones, and every
/// other org (districts, departments, deleted schools) left out of users' schools.
pub fn index_orgs(orgs: &[Org], existing: &HashSet<String>) -> (Vec<(String, String)>, Orgs) {
    let mut upserts: Vec<(String, String)> = Vec::new();
    let mut index = Orgs {
        schools: existing.clone(),
        other: HashSet::new(),
    };
    let mut seen = HashSet::new();
    for o in orgs {
        let id = o.sourced_id.trim();
        let usable = o.is_school() && !o.to_be_deleted && id.chars().count() <= 100;
        if !usable {
            if !existing.contains(id) {
                index.other.insert(id.to_string());
            }
            continue;
        }
        if !seen.insert(id.to_string()) {
            continue;
        }
        let name: String = match o.name.trim() {
            "" => id.to_string(),
            n => n.chars().take(200).collect(),
        };
        upserts.push((id.to_string(), name));
        index.schools.insert(id.to_string());
    }
    (upserts, index)
}

// ---- the REST binding's JSON ----

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("").trim()
}

/// `enabledUser` is a string ("true"/"false") in OneRoster 1.1 JSON; some providers send a
/// boolean.
fn json_enabled(v: &Value) -> bool {
    match v.get("enabledUser") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => enabled(s),
        _ => true,
    }
}

pub fn org_from_json(v: &Value) -> Option<Org> {
    let id = text(v, "sourcedId");
    (!id.is_empty()).then(|| Org {
        sourced_id: id.to_string(),
        name: text(v, "name").to_string(),
        org_type: text(v, "type").to_string(),
        to_be_deleted: text(v, "status").eq_ignore_ascii_case("tobedeleted"),
    })
}

/// A user from the JSON of `GET /ims/oneroster/v1p1/users`; `n` is its position (1-based).
pub fn user_from_json(v: &Value, n: usize) -> ProviderUser {
    let origin = compact_str::format_compact!("user record {n}");
    if !v.is_object() {
        return ProviderUser {
            origin,
            problem: Some("the record is not a JSON object".into()),
            ..Default::default()
        };
    }
    let sourced_id = text(v, "sourcedId");
    let orgs = v
        .get("orgs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("sourcedId").and_then(Value::as_str))
                .map(|s| CompactString::from(s.trim()))
                .collect()
        })
        .unwrap_or_default();
    let grade = match v.get("grades") {
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).unwrap_or("").to_string(),
        Some(Value::String(s)) => list(s).into_iter().next().unwrap_or_default(),
        _ => String::new(),
    };
    ProviderUser {
        origin: compact_str::format_compact!("user {sourced_id} (record {n})"),
        key: sourced_id.into(),
        to_be_deleted: text(v, "status").eq_ignore_ascii_case("tobedeleted"),
        enabled: json_enabled(v),
        role: text(v, "role").into(),
        custom_id: custom_id(text(v, "identifier"), sourced_id).into(),
        username: text(v, "username").into(),
        first_name: text(v, "givenName").into(),
        middle_name: text(v, "middleName").into(),
        last_name: text(v, "familyName").into(),
        email: text(v, "email").into(),
        orgs,
        grade: grade.into(),
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::provider::{Mapped, map_all};
    use serde_json::json;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/test-data/edfi-lms-toolkit/oneroster-1.1"
    );

    fn sample(name: &str) -> Option<Vec<u8>> {
        std::fs::read(format!("{SAMPLE}/{name}")).ok()
    }

    #[test]
    fn manifest_modes() {
        let m = parse_manifest(
            b"propertyName,value\nmanifest.version,1\noneroster.version,1.1\nfile.orgs,bulk\nfile.users,delta\n",
        )
        .unwrap();
        assert_eq!((m.orgs, m.users), (FileMode::Bulk, FileMode::Delta));
        assert_eq!(m.version.as_deref(), Some("1.1"));
        let m = parse_manifest(b"propertyName,value\nfile.orgs,bulk\n").unwrap();
        assert_eq!(m.users, FileMode::Absent);
        assert!(parse_manifest(b"propertyName,value\nfile.users,sometimes\n").is_err());
    }

    #[test]
    fn the_sample_set_reads_and_maps() {
        let (Some(orgs), Some(users), Some(manifest)) = (
            sample("orgs.csv"),
            sample("users.csv"),
            sample("manifest.csv"),
        ) else {
            eprintln!("shared test data not found; skipped");
            return;
        };
        assert_eq!(parse_manifest(&manifest).unwrap().users, FileMode::Bulk);
        let orgs = parse_orgs_csv(&orgs, 1 << 20).unwrap();
        let (upserts, index) = index_orgs(&orgs, &HashSet::new());
        assert_eq!(
            upserts,
            vec![(
                "255901001".to_string(),
                "Grand Bend High School".to_string()
            )]
        );
        assert!(index.other.contains("255901"));
        let users = parse_users_csv(&users, 1 << 20).unwrap();
        assert_eq!(users.len(), 10);
        assert_eq!(users[0].username, "Mary Archer");
        assert_eq!(
            users[0].custom_id, "604863",
            "sourcedId when identifier is empty"
        );
        let crate::feed::provider::Typed { rows, skipped } = map_all(&users, &index);
        let rows: Vec<_> = rows.iter().collect();
        assert_eq!(skipped, 0);
        let ok: Vec<_> = rows.iter().map(|r| r.as_ref().expect("row maps")).collect();
        assert_eq!(ok.iter().filter(|u| u.role.is_student()).count(), 8);
        assert!(
            ok.iter()
                .filter(|u| u.role.is_student())
                .all(|u| u.grade.as_str() == "9")
        );
        assert_eq!(ok[8].schools, vec!["255901001"]);
    }

    #[test]
    fn csv_oddities() {
        let csv = b"sourcedId,status,enabledUser,orgSourcedIds,role,username,givenName,familyName,identifier,email,grades\n\
            1,tobedeleted,false,\"S1,S2\",student,a b,Ann,Lee,ID-1,ann@x.org,\"09,10\"\n\
            2,,true,S1,teacher,,Bo,Ray,,bo@x.org,,\n\
            3,,true,S1,teacher,,Cy,Ray,,cy@x.org,,,oops\n";
        let users = parse_users_csv(csv, 1 << 20).unwrap();
        assert_eq!(users[0].orgs, vec!["S1", "S2"]);
        assert!(users[0].to_be_deleted && !users[0].enabled);
        assert_eq!(users[0].grade, "09");
        assert_eq!(users[0].custom_id, "ID-1");
        assert_eq!(users[1].problem, None, "an extra empty field is fine");
        assert!(
            users[2].problem.is_some(),
            "an extra non-empty field is not"
        );
        let index = Orgs {
            schools: ["S1".to_string(), "S2".to_string()].into(),
            other: HashSet::new(),
        };
        assert!(matches!(users[2].to_incoming(4, &index), Mapped::Failed(_)));
        assert!(matches!(
            parse_users_csv(b"sourcedId,role\n1,student\n", 1 << 20),
            Err(SetError::MissingColumn { .. })
        ));
    }

    #[test]
    fn rest_json_records() {
        let v = json!({
            "sourcedId": "u-1", "status": "active", "dateLastModified": "2024-01-01T00:00:00Z",
            "username": "ann", "enabledUser": "false", "givenName": "Ann", "familyName": "Lee",
            "middleName": "", "role": "student", "identifier": "", "email": "ann@x.org",
            "orgs": [{"href": "https://x/orgs/S1", "sourcedId": "S1", "type": "org"}],
            "grades": ["KG"], "userIds": [], "agents": []
        });
        let u = user_from_json(&v, 1);
        assert_eq!((u.key.as_str(), u.custom_id.as_str()), ("u-1", "u-1"));
        assert!(!u.enabled);
        assert_eq!(u.orgs, vec!["S1"]);
        assert_eq!(u.grade, "KG");
        assert!(user_from_json(&json!("x"), 2).problem.is_some());
        let o = org_from_json(
            &json!({"sourcedId": "S1", "name": "High", "type": "school", "status": "active"}),
        )
        .unwrap();
        assert!(o.is_school() && !o.to_be_deleted);
    }
}
