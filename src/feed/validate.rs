//! Records → typed users. Each row is parsed once into an [`IncomingUser`] or gets exactly
//! one [`RowError`]: the first problem found, in canonical field order, naming the line and
//! the column (the file's header, or the field name for a fixed value).

use crate::domain::fold::{fold_case, key_hash};
use crate::domain::{Field, FieldSet, Grade, IncomingUser, Role, Status, parse_email};
use crate::feed::headers::Mapping;
use crate::feed::read::{RawRecord, RowIssue};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use uuid::Uuid;

/// Longest accepted identifier (custom_id, email, username), in characters. The database
/// keeps them in unique indexes, whose entries must stay small: a longer value used to fail
/// the whole run with an internal error; it is a row error now. (Names may be long.)
pub const MAX_VALUE_CHARS: usize = 256;

/// The fields [`MAX_VALUE_CHARS`] applies to.
const LIMITED: [Field; 3] = [Field::CustomId, Field::Email, Field::Username];

/// Why one row was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    /// The file's header name, or the canonical field name for a fixed value; `None` when
    /// the problem is not one column's.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column \"{}\": {}", self.line, c, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RowError {}

impl From<RowIssue> for RowError {
    fn from(issue: RowIssue) -> Self {
        RowError {
            line: issue.line,
            column: None,
            message: issue.message,
        }
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Column(usize),
    Fixed(&'a str),
    Absent,
}

/// Validates the records of one file against its mapping and the district's schools.
pub struct Validator<'a> {
    headers: &'a [String],
    schools: &'a HashSet<String>,
    /// Lower-cased external ID → the district's spelling (`None`: two schools differ only
    /// in case, so a case-insensitive match would be a guess).
    schools_folded: HashMap<String, Option<&'a str>>,
    sources: [Source<'a>; Field::ALL.len()],
    present: FieldSet,
    /// The district's own external ID (issue 16, item 7): see [`Validator::with_district`].
    district: Option<&'a str>,
}

impl<'a> Validator<'a> {
    pub fn new(headers: &'a [String], mapping: &'a Mapping, schools: &'a HashSet<String>) -> Self {
        let mut schools_folded: HashMap<String, Option<&'a str>> =
            HashMap::with_capacity(schools.len());
        for s in schools {
            schools_folded
                .entry(s.to_lowercase())
                .and_modify(|v| *v = None)
                .or_insert(Some(s.as_str()));
        }
        let sources = Field::ALL.map(|f| match (mapping.column_of(f), mapping.fixed_value(f)) {
            (Some(i), _) => Source::Column(i),
            (None, Some(v)) => Source::Fixed(v),
            (None, None) => Source::Absent,
        });
        Validator {
            headers,
            schools,
            schools_folded,
            sources,
            present: mapping.present(),
            district: None,
        }
    }

    /// Issue 16, item 7 (SPEC §1): a school cell holding the district's own external ID
    /// (alone) names a district-level user with no school; the row's schools are then empty
    /// and given, so an existing user's schools are cleared.
    pub fn with_district(mut self, external_id: Option<&'a str>) -> Self {
        self.district = external_id;
        self
    }

    /// The name an error shows for `field`: its column's header, or the field name for a
    /// fixed value.
    pub fn column_name(&self, field: Field) -> Option<String> {
        match self.sources[field as usize] {
            Source::Column(i) => match self.headers.get(i).map(|h| h.trim()) {
                Some(h) if !h.is_empty() => Some(h.to_string()),
                _ => Some(format!("column {}", i + 1)),
            },
            Source::Fixed(_) => Some(field.name().to_string()),
            Source::Absent => None,
        }
    }

    /// The cleaned value of `field` on this record ("" when absent or past the row's end).
    fn value<'r>(&'r self, rec: &'r RawRecord, field: Field) -> &'r str {
        match self.sources[field as usize] {
            Source::Column(i) => rec.fields.get(i).map_or("", |c| clean(c)),
            Source::Fixed(v) => clean(v),
            Source::Absent => "",
        }
    }

    fn error(&self, rec: &RawRecord, field: Field, message: String) -> RowError {
        RowError {
            line: rec.line,
            column: self.column_name(field),
            message,
        }
    }

    /// Parses one record into a user, or the first problem with it.
    pub fn validate(&self, rec: &RawRecord) -> Result<IncomingUser, RowError> {
        let width = self.headers.len();
        if rec.fields.len() > width && rec.fields[width..].iter().any(|c| !c.trim().is_empty()) {
            let message = format!(
                "row has {} fields but the header has {}",
                rec.fields.len(),
                width
            );
            return Err(RowError {
                line: rec.line,
                column: None,
                message,
            });
        }
        let get = |f| self.value(rec, f);
        let fail = |f, message| self.error(rec, f, message);
        let required = |f: Field| match get(f) {
            "" => Err(fail(f, format!("{} is required", f.name()))),
            v => Ok(v.to_string()),
        };

        for f in LIMITED {
            if get(f).chars().count() > MAX_VALUE_CHARS {
                let message = format!("{} is longer than {MAX_VALUE_CHARS} characters", f.name());
                return Err(fail(f, message));
            }
        }

        let user_guid = match get(Field::UserGuid) {
            "" => None,
            v => Some(Uuid::parse_str(v).map_err(|_| {
                fail(
                    Field::UserGuid,
                    format!("user_guid {} is not a valid UUID", quote(v)),
                )
            })?),
        };
        let custom_id = match get(Field::CustomId) {
            "" => None,
            v if looks_like_excel_number(v) => {
                return Err(fail(
                    Field::CustomId,
                    format!(
                        "custom_id {} looks like a number Excel reformatted; export the column as text",
                        quote(v)
                    ),
                ));
            }
            v => Some(v.to_string()),
        };
        let email = match get(Field::Email) {
            "" => None,
            v => Some(parse_email(v).ok_or_else(|| {
                fail(
                    Field::Email,
                    format!("email {} is not a valid email address", quote(v)),
                )
            })?),
        };
        if custom_id.is_none() && email.is_none() {
            let f = match self.sources[Field::CustomId as usize] {
                Source::Absent => Field::Email,
                _ => Field::CustomId,
            };
            return Err(fail(f, "custom_id or email is required".to_string()));
        }
        let username = Some(get(Field::Username))
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let first_name = required(Field::FirstName)?;
        let middle_name = get(Field::MiddleName).to_string();
        let last_name = required(Field::LastName)?;
        let role = required(Field::Role)?;
        let role = Role::parse(&role).ok_or_else(|| {
            fail(
                Field::Role,
                format!("role {} is not one of {}", quote(&role), Role::expected()),
            )
        })?;
        let (schools, district_level) = self.schools(rec)?;
        let mut present = self.present;
        if schools.is_empty() && !district_level {
            // A row naming its user by user_guid (the master CSV) may leave schools blank:
            // the user keeps theirs (district admins often have none). Any other row needs one.
            if user_guid.is_none() {
                let f = Field::SchoolExternalId;
                return Err(fail(f, format!("{} is required", f.name())));
            }
            present.remove(Field::SchoolExternalId);
        }
        let grade = if role.is_student() {
            let v = get(Field::Grade);
            Grade::parse(v).ok_or_else(|| {
                fail(
                    Field::Grade,
                    format!("grade {} is not one of {}", quote(v), Grade::expected()),
                )
            })?
        } else {
            Grade::UNSPECIFIED
        };
        let position = if role.is_student() {
            String::new()
        } else {
            get(Field::Position).to_string()
        };
        let status = get(Field::Status);
        let status = Status::parse(status).ok_or_else(|| {
            fail(
                Field::Status,
                format!(
                    "status {} is not one of {}",
                    quote(status),
                    Status::expected()
                ),
            )
        })?;
        let password = Some(get(Field::Password))
            .filter(|v| !v.is_empty())
            .map(str::to_string);

        Ok(IncomingUser {
            line: rec.line,
            user_guid,
            custom_id,
            email,
            username,
            first_name,
            middle_name,
            last_name,
            role,
            schools,
            grade,
            position,
            status,
            password,
            source_key: None,
            to_be_deleted: false,
            present,
        })
    }

    /// The row's schools: several separated by `;` (or `,`, as OneRoster lists them), each
    /// one of the district's (exact, else case-insensitive in the district's spelling);
    /// sorted and de-duplicated; and whether the cell named the district itself (issue 16,
    /// item 7: then it names nothing else).
    fn schools(&self, rec: &RawRecord) -> Result<(Vec<String>, bool), RowError> {
        let field = Field::SchoolExternalId;
        let mut out = Vec::new();
        let mut district_level = false;
        for id in self
            .value(rec, field)
            .split([';', ','])
            .map(clean)
            .filter(|s| !s.is_empty())
        {
            if let Some(known) = self.schools.get(id) {
                out.push(known.clone());
            } else if let Some(Some(known)) = self.schools_folded.get(&id.to_lowercase()) {
                out.push((*known).to_string());
            } else if crate::domain::district::is_district(id, self.district) {
                district_level = true;
            } else {
                let message = format!(
                    "school {} is not a school of this district (add it on the Schools screen first)",
                    quote(id)
                );
                return Err(self.error(rec, field, message));
            }
        }
        if district_level && !out.is_empty() {
            let message = format!(
                "{} is the district's own ID (a district-level user, no school): list it alone, or the schools only",
                quote(self.district.unwrap_or_default())
            );
            return Err(self.error(rec, field, message));
        }
        out.sort();
        out.dedup();
        Ok((out, district_level))
    }

    /// [`mark_duplicates`], naming the file's columns.
    pub fn mark_duplicates<K: Keyed>(&self, rows: &mut [Result<K, RowError>]) {
        for (i, e) in self.duplicates(rows) {
            rows[i] = Err(e);
        }
    }

    /// The errors [`Validator::mark_duplicates`] would set, by position, without setting them.
    pub fn duplicates<K: Keyed>(&self, rows: &[Result<K, RowError>]) -> HashMap<usize, RowError> {
        duplicate_errors(rows, |f| {
            self.column_name(f).or_else(|| Some(f.name().to_string()))
        })
    }
}

/// Trims a cell and removes the `'` our own export puts before a cell a spreadsheet would
/// take for a formula ([`crate::feed::read::formula_like`]).
fn clean(cell: &str) -> &str {
    let t = cell.trim_start();
    match t.strip_prefix('\'') {
        Some(rest) if crate::feed::read::formula_like(rest) => rest.trim(),
        _ => t.trim_end(),
    }
}

/// `1.23E+05`, `4,5E+11`: what Excel shows for a long numeric ID it turned into a number.
fn looks_like_excel_number(v: &str) -> bool {
    let Some((mantissa, exponent)) = v.split_once(['e', 'E']) else {
        return false;
    };
    let (int, frac) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let exp = exponent.strip_prefix(['+', '-']);
    digits(int) && digits(frac) && exp.is_some_and(digits)
}

/// A value quoted for a message, cut short when long.
fn quote(v: &str) -> String {
    const MAX: usize = 60;
    if v.chars().count() > MAX {
        format!("\"{}…\"", v.chars().take(MAX).collect::<String>())
    } else {
        format!("\"{v}\"")
    }
}

/// Turns every OK row whose custom_id, email or username (both case-insensitive) is shared
/// with another OK row into an error, on all its occurrences. The first reason in canonical
/// order wins. Linear in the number of rows; messages list at most 5 lines.
pub fn mark_duplicates<K: Keyed>(rows: &mut [Result<K, RowError>]) {
    for (i, e) in duplicate_errors(rows, |f| Some(f.name().to_string())) {
        rows[i] = Err(e);
    }
}

/// The errors [`mark_duplicates`] would set, by position, over rows of any error type (a
/// sync's rows carry their own failures).
pub fn duplicates_among<K: Keyed, E>(rows: &[Result<K, E>]) -> HashMap<usize, RowError> {
    duplicate_errors(rows, |f| Some(f.name().to_string()))
}

/// What duplicate detection reads of an accepted row.
pub trait Keyed {
    fn line(&self) -> u64;
    /// The row's custom_id, email or username as validated (`None` when absent).
    fn key(&self, field: Field) -> Option<&str>;
}

impl Keyed for IncomingUser {
    fn line(&self) -> u64 {
        self.line
    }
    fn key(&self, field: Field) -> Option<&str> {
        match field {
            Field::CustomId => self.custom_id.as_deref(),
            Field::Email => self.email.as_deref(),
            Field::Username => self.username.as_deref(),
            _ => None,
        }
    }
}

/// The identifiers of an accepted row, kept instead of the whole row when a large file is
/// read twice (once to find duplicates, once to plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKeys {
    pub line: u64,
    pub user_guid: Option<uuid::Uuid>,
    pub custom_id: Option<Box<str>>,
    pub email: Option<Box<str>>,
    pub username: Option<Box<str>>,
    /// The username the row gives explicitly (the field is carried and not blank).
    pub explicit_username: bool,
}

impl RowKeys {
    pub fn of(u: &IncomingUser) -> RowKeys {
        RowKeys {
            line: u.line,
            user_guid: u.user_guid,
            custom_id: u.custom_id.as_deref().map(Box::from),
            email: u.email.as_deref().map(Box::from),
            username: u.username.as_deref().map(Box::from),
            explicit_username: u.present.contains(Field::Username)
                && u.username.as_deref().is_some_and(|n| !n.trim().is_empty()),
        }
    }
}

impl Keyed for RowKeys {
    fn line(&self) -> u64 {
        self.line
    }
    fn key(&self, field: Field) -> Option<&str> {
        match field {
            Field::CustomId => self.custom_id.as_deref(),
            Field::Email => self.email.as_deref(),
            Field::Username => self.username.as_deref(),
            _ => None,
        }
    }
}

/// An accepted row's identifiers as fixed-size hashes (issue 19: a million rows are not kept
/// as strings). A reader keeps only two parts of it: the three key hashes, in [`KeyColumns`]
/// (duplicate detection finds every row that may share a value; those few are then read again
/// as [`RowKeys`] and [`Validator::duplicates`] decides on the values themselves, so a shared
/// hash never refuses a row), and its [`KeyHashes::digest`], which tells whether the row reads
/// the same the second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHashes {
    pub line: u64,
    pub user_guid: Option<uuid::Uuid>,
    /// custom_id (exact), email and username (case-folded), hashed as duplicate detection
    /// compares them; bit `i` of `present` says whether the row has value `i`.
    keys: [u64; 3],
    present: u8,
    /// Every identifier exactly as validated (and whether the username is explicit).
    fingerprint: u64,
    /// The username the row gives explicitly (the field is carried and not blank).
    pub explicit_username: bool,
}

/// Deterministic within a process (SipHash with fixed keys): equal values hash equal.
fn hash_of(value: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

impl KeyHashes {
    const FIELDS: [Field; 3] = [Field::CustomId, Field::Email, Field::Username];

    pub fn of(u: &IncomingUser) -> KeyHashes {
        let explicit_username = u.present.contains(Field::Username)
            && u.username.as_deref().is_some_and(|n| !n.trim().is_empty());
        let hashed = Self::FIELDS.map(|f| key_of(u, f).map(|k| key_hash(&k)));
        KeyHashes {
            line: u.line,
            user_guid: u.user_guid,
            keys: hashed.map(Option::unwrap_or_default),
            present: hashed
                .iter()
                .enumerate()
                .fold(0, |bits, (i, h)| bits | (u8::from(h.is_some()) << i)),
            fingerprint: hash_of((
                u.user_guid,
                u.custom_id.as_deref(),
                u.email.as_deref(),
                u.username.as_deref(),
                explicit_username,
            )),
            explicit_username,
        }
    }
}

impl KeyHashes {
    /// The [`crate::domain::fold::username_key`] of the username the row gives explicitly.
    pub fn explicit_username_key(&self) -> Option<u64> {
        (self.explicit_username && self.present & 0b100 != 0).then_some(self.keys[2])
    }

    /// One number for everything the row's identifiers hash to (its line included): equal
    /// when the row reads the same again.
    pub fn digest(&self) -> u64 {
        hash_of(self)
    }
}

/// The key hashes of a reader's rows, by position: one column of 8-byte hashes per key, 0
/// where the row has no such value or was refused (24 bytes a row; a map from each hash to
/// its first row took ~50 MB a column at a million rows).
#[derive(Debug, Default)]
pub struct KeyColumns {
    columns: [Vec<u64>; 3],
}

impl KeyColumns {
    pub fn with_capacity(rows: usize) -> KeyColumns {
        KeyColumns {
            columns: std::array::from_fn(|_| Vec::with_capacity(rows)),
        }
    }

    /// The next row: its hashes when it was accepted, `None` when refused.
    pub fn push(&mut self, keys: Option<&KeyHashes>) {
        for (field, column) in self.columns.iter_mut().enumerate() {
            let hash = keys
                .filter(|k| k.present & (1 << field) != 0)
                // 0 means "none": a value hashing to 0 shares 1 with any other that does
                // (a candidate more, decided on the values).
                .map_or(0, |k| k.keys[field].max(1));
            column.push(hash);
        }
    }

    /// Positions (ascending) of the accepted rows that share a hashed custom_id, email or
    /// username with another accepted row: a superset of the rows [`Validator::duplicates`]
    /// would refuse. One column at a time is sorted (a copy: 8 bytes a row) to find the
    /// hashes held twice, then the rows holding them are listed.
    pub fn candidates(self) -> Vec<usize> {
        let mut candidates: Vec<usize> = Vec::new();
        for column in self.columns {
            let mut sorted: Vec<u64> = column.iter().copied().filter(|&h| h != 0).collect();
            sorted.sort_unstable();
            let shared: hashbrown::HashSet<u64> = sorted
                .windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect();
            drop(sorted);
            if shared.is_empty() {
                continue;
            }
            candidates.extend(
                column
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| shared.contains(*h))
                    .map(|(i, _)| i),
            );
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
    }
}

/// A row's value for duplicate detection: custom_id exact, email and username case-folded.
fn key_of<K: Keyed>(u: &K, field: Field) -> Option<Cow<'_, str>> {
    let v = u.key(field)?;
    Some(if field == Field::CustomId {
        Cow::Borrowed(v)
    } else {
        fold_case(v)
    })
}

fn duplicate_errors<K: Keyed, E>(
    rows: &[Result<K, E>],
    column: impl Fn(Field) -> Option<String>,
) -> HashMap<usize, RowError> {
    const KEYS: [Field; 3] = [Field::CustomId, Field::Email, Field::Username];
    let mut errors: HashMap<usize, RowError> = HashMap::new();
    for field in KEYS {
        let mut first: HashMap<Cow<'_, str>, usize> = HashMap::with_capacity(rows.len());
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: HashMap<usize, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let Some(key) = row.as_ref().ok().and_then(|u| key_of(u, field)) else {
                continue;
            };
            match first.entry(key) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
                std::collections::hash_map::Entry::Occupied(e) => {
                    let f = *e.get();
                    let g = *group_of.entry(f).or_insert_with(|| {
                        groups.push(vec![f]);
                        groups.len() - 1
                    });
                    groups[g].push(i);
                }
            }
        }
        for group in groups {
            let lines = list_lines(
                group
                    .iter()
                    .filter_map(|&i| rows[i].as_ref().ok().map(|u| u.line())),
                group.len(),
            );
            for &i in &group {
                let Ok(user) = &rows[i] else { continue };
                let value = user.key(field).unwrap_or_default();
                errors.entry(i).or_insert_with(|| RowError {
                    line: user.line(),
                    column: column(field),
                    message: format!(
                        "{} {} appears more than once in the file ({lines})",
                        field.name(),
                        quote(value)
                    ),
                });
            }
        }
    }
    errors
}

/// `lines 4, 9` or `lines 2, 3, 4, 5, 6 and 9995 more`.
fn list_lines(lines: impl Iterator<Item = u64>, total: usize) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = lines.take(SHOWN).map(|l| l.to_string()).collect();
    let mut s = format!("lines {}", shown.join(", "));
    if total > SHOWN {
        s.push_str(&format!(" and {} more", total - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_keys_find_every_duplicate_and_stay_small() {
        assert!(std::mem::size_of::<KeyHashes>() <= 64);
        let hs = headers("custom_id,first_name,last_name,role,email,username,school_id");
        let mapping = resolve(&hs, None, &[], &[]).expect("maps");
        let schools = district();
        let v = Validator::new(&hs, &mapping, &schools);
        let cells = [
            ["a1", "Ann", "Lee", "student", "Ann@x.org", "", "S1"],
            ["a2", "Bo", "Lee", "student", "ann@X.org", "", "S1"],
            ["a3", "Cy", "Lee", "student", "cy@x.org", "cy", "S1"],
            ["a3", "Di", "Lee", "student", "di@x.org", "CY", "S1"],
            ["a5", "Ed", "Lee", "student", "", "", "S1"],
        ];
        let users: Vec<IncomingUser> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| v.validate(&rec(i as u64 + 2, c)).expect("valid row"))
            .collect();
        let mut hashed = KeyColumns::default();
        for u in &users {
            hashed.push(Some(&KeyHashes::of(u)));
        }
        let exact: Vec<Result<RowKeys, RowError>> =
            users.iter().map(|u| Ok(RowKeys::of(u))).collect();
        let mut refused: Vec<usize> = v.duplicates(&exact).into_keys().collect();
        refused.sort_unstable();
        assert_eq!(refused, vec![0, 1, 2, 3]);
        // Every refused row is a candidate; a row with unique values is not.
        assert_eq!(hashed.candidates(), refused);
        // A row reads the same twice: same hashes; another value: another fingerprint.
        assert_eq!(KeyHashes::of(&users[4]), KeyHashes::of(&users[4].clone()));
        assert_ne!(KeyHashes::of(&users[0]), KeyHashes::of(&users[1]));
    }
    use crate::feed::headers::resolve;
    use crate::feed::read::{ReadOptions, open};

    const CANON: &str = "user_guid,custom_id,email,username,first_name,middle_name,last_name,role,school_external_id,grade,position,status,password";

    fn headers(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    fn district() -> HashSet<String> {
        ["S1", "S2", "North-HS"].map(String::from).into()
    }

    fn rec(line: u64, cells: &[&str]) -> RawRecord {
        RawRecord {
            line,
            fields: cells.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Validates one row of a canonical-header file given as `field=value` pairs.
    fn row(pairs: &[(&str, &str)]) -> Result<IncomingUser, RowError> {
        let hs = headers(CANON);
        let cells: Vec<&str> = hs
            .iter()
            .map(|h| pairs.iter().find(|(k, _)| k == h).map_or("", |(_, v)| *v))
            .collect();
        let mapping = resolve(&hs, None, &[], &[]).expect("canonical header maps");
        let schools = district();
        Validator::new(&hs, &mapping, &schools).validate(&rec(7, &cells))
    }

    const STUDENT: [(&str, &str); 5] = [
        ("custom_id", "1001"),
        ("first_name", "Ann"),
        ("last_name", "Lee"),
        ("role", "Student"),
        ("school_external_id", "S1"),
    ];

    fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs: Vec<_> = STUDENT
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        pairs.extend_from_slice(changes);
        pairs
    }

    fn error(changes: &[(&'static str, &'static str)]) -> String {
        match row(&with(changes)) {
            Ok(u) => panic!("expected an error, got {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_full_student_row() {
        let u = row(&[
            ("user_guid", "67e55044-10b1-426f-9247-bb680e5fe0c8"),
            ("custom_id", " 1001 "),
            ("email", "Ann.Lee@Example.ORG"),
            ("username", "ann.lee"),
            ("first_name", "Ann"),
            ("middle_name", "Q"),
            ("last_name", "Lee"),
            ("role", "student"),
            ("school_external_id", "S2; s1;S2;"),
            ("grade", "09"),
            ("position", "Hall monitor"),
            ("status", "Disabled"),
            ("password", "hunter2!"),
        ])
        .expect("valid");
        assert_eq!(u.line, 7);
        assert_eq!(
            u.user_guid.map(|g| g.to_string()).as_deref(),
            Some("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
        assert_eq!(u.custom_id.as_deref(), Some("1001"));
        assert_eq!(u.email.as_deref(), Some("ann.lee@example.org"));
        assert_eq!(u.username.as_deref(), Some("ann.lee"));
        assert_eq!(
            (
                u.first_name.as_str(),
                u.middle_name.as_str(),
                u.last_name.as_str()
            ),
            ("Ann", "Q", "Lee")
        );
        assert_eq!(u.role, Role::Student);
        assert_eq!(u.schools, ["S1", "S2"]);
        assert_eq!(u.grade.as_str(), "9");
        assert_eq!(u.position, "", "position is ignored for students");
        assert_eq!(u.status, Status::Inactive);
        assert_eq!(u.password.as_deref(), Some("hunter2!"));
        assert_eq!(u.source_key, None);
        assert!(!u.to_be_deleted);
        assert_eq!(u.present, FieldSet::all());
    }

    #[test]
    fn defaults_for_blank_optional_cells() {
        let u = row(&STUDENT).expect("valid");
        assert_eq!(u.user_guid, None);
        assert_eq!(u.email, None);
        assert_eq!(u.username, None);
        assert_eq!(u.grade, Grade::UNSPECIFIED);
        assert_eq!(u.status, Status::Active);
        assert_eq!(u.password, None);
        assert_eq!(u.middle_name, "");
    }

    #[test]
    fn adults_ignore_grade_and_keep_position() {
        let u = row(&with(&[
            ("role", "Teacher"),
            ("grade", "garbage"),
            ("position", " Librarian "),
        ]))
        .expect("valid");
        assert_eq!(u.role, Role::Teacher);
        assert_eq!(u.grade, Grade::UNSPECIFIED);
        assert_eq!(u.position, "Librarian");
    }

    #[test]
    fn cells_are_trimmed_and_our_formula_guard_removed() {
        let u = row(&with(&[
            ("first_name", " '=Ann "),
            ("middle_name", "'-"),
            ("last_name", "O'Neil"),
            ("position", "'@x"),
            ("custom_id", "'+1001"),
        ]))
        .expect("valid");
        assert_eq!(u.first_name, "=Ann");
        assert_eq!(u.middle_name, "-");
        assert_eq!(u.last_name, "O'Neil");
        assert_eq!(u.custom_id.as_deref(), Some("+1001"));
        assert_eq!(clean("'\tabc"), "abc");
        assert_eq!(clean("'\r"), "");
        assert_eq!(clean("'plain"), "'plain");
        assert_eq!(clean("\u{a0}x\u{a0}"), "x");
        // What `neutralise` writes for a formula behind whitespace comes back as the value.
        assert_eq!(clean("' =4+4"), "=4+4");
        assert_eq!(clean("'\n=3+3"), "=3+3");
        assert_eq!(clean("' Ann"), "' Ann");
    }

    #[test]
    fn over_long_values_are_row_errors() {
        let long: &'static str = "x".repeat(MAX_VALUE_CHARS + 1).leak();
        let e = row(&with(&[("username", long)])).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("username"));
        assert_eq!(e.message, "username is longer than 256 characters");
        let e = row(&with(&[("custom_id", long)])).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("custom_id"));
        let fits: &'static str = "é".repeat(MAX_VALUE_CHARS).leak();
        assert!(row(&with(&[("username", fits)])).is_ok());
        assert!(
            row(&with(&[("last_name", long)])).is_ok(),
            "names may be long"
        );
    }

    #[test]
    fn required_values() {
        assert_eq!(
            error(&[("first_name", " ")]),
            "line 7, column \"first_name\": first_name is required"
        );
        assert_eq!(
            error(&[("last_name", "")]),
            "line 7, column \"last_name\": last_name is required"
        );
        assert_eq!(
            error(&[("role", "")]),
            "line 7, column \"role\": role is required"
        );
        assert_eq!(
            error(&[("school_external_id", " ; ")]),
            "line 7, column \"school_external_id\": school_external_id is required"
        );
        assert_eq!(
            error(&[("custom_id", "")]),
            "line 7, column \"custom_id\": custom_id or email is required"
        );
        assert!(row(&with(&[("custom_id", ""), ("email", "a@b.org")])).is_ok());
    }

    #[test]
    fn vocabulary_errors() {
        assert_eq!(
            error(&[("role", "Guardian")]),
            "line 7, column \"role\": role \"Guardian\" is not one of Student, Teacher, Staff, Administrator"
        );
        assert_eq!(
            error(&[("grade", "13")]),
            "line 7, column \"grade\": grade \"13\" is not one of Unspecified, PreK, K, 1-12, Other"
        );
        assert_eq!(
            error(&[("status", "maybe")]),
            "line 7, column \"status\": status \"maybe\" is not one of Active, Inactive (or 1/0, Disabled)"
        );
        for (g, want) in [
            ("KG", "K"),
            ("PK", "PreK"),
            ("12", "12"),
            ("", "Unspecified"),
        ] {
            let u = row(&with(&[("grade", g)])).expect("valid grade");
            assert_eq!(u.grade.as_str(), want);
        }
        for (s, want) in [
            ("1", Status::Active),
            ("0", Status::Inactive),
            ("Active", Status::Active),
        ] {
            assert_eq!(row(&with(&[("status", s)])).map(|u| u.status), Ok(want));
        }
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            error(&[("email", "dwizardexample.com")]),
            "line 7, column \"email\": email \"dwizardexample.com\" is not a valid email address"
        );
        assert_eq!(
            error(&[("user_guid", "not-a-guid")]),
            "line 7, column \"user_guid\": user_guid \"not-a-guid\" is not a valid UUID"
        );
        assert_eq!(
            error(&[("custom_id", "1.23E+05")]),
            "line 7, column \"custom_id\": custom_id \"1.23E+05\" looks like a number Excel reformatted; export the column as text"
        );
        assert!(error(&[("custom_id", "4,5e-11")]).contains("Excel"));
        for fine in ["12E4", "E+5", "1.2.3E+4", "A1E+5", "00123"] {
            assert!(row(&with(&[("custom_id", fine)])).is_ok(), "{fine}");
        }
    }

    #[test]
    fn schools_must_be_the_districts() {
        assert_eq!(
            error(&[("school_external_id", "S1;S9")]),
            "line 7, column \"school_external_id\": school \"S9\" is not a school of this district (add it on the Schools screen first)"
        );
        let u = row(&with(&[("school_external_id", "north-hs,S1")])).expect("valid");
        assert_eq!(u.schools, ["North-HS", "S1"]);
        // Two schools that differ only in case: no guessing.
        let hs = headers(CANON);
        let mapping = resolve(&hs, None, &[], &[]).expect("maps");
        let schools: HashSet<String> = ["ab", "AB"].map(String::from).into();
        let v = Validator::new(&hs, &mapping, &schools);
        let mut cells = vec![""; 13];
        (cells[1], cells[4], cells[6], cells[7]) = ("1", "A", "B", "Staff");
        cells[8] = "AB";
        assert_eq!(
            v.validate(&rec(2, &cells)).map(|u| u.schools),
            Ok(vec!["AB".to_string()])
        );
        cells[8] = "Ab";
        assert!(v.validate(&rec(2, &cells)).is_err());
    }

    /// Issue 16, item 7: the district's own ID in the school column.
    #[test]
    fn the_districts_own_id_names_a_district_level_user() {
        let hs = headers("custom_id,first_name,last_name,user_type,school_district_external_id");
        let mapping = resolve(&hs, None, &[], &[]).expect("eChalk header maps");
        let schools = district();
        let v = Validator::new(&hs, &mapping, &schools).with_district(Some("D-100"));
        let u = v
            .validate(&rec(2, &["9001", "Cam", "Ortiz", "Staff", "d-100"]))
            .expect("a district-level row");
        assert!(u.schools.is_empty());
        assert!(
            u.present.contains(Field::SchoolExternalId),
            "given: no school"
        );
        assert_eq!(
            v.validate(&rec(3, &["9002", "Dee", "Fox", "Staff", "D-100;S1"]))
                .unwrap_err()
                .to_string(),
            "line 3, column \"school_district_external_id\": \"D-100\" is the district's own ID (a district-level user, no school): list it alone, or the schools only"
        );
        // Without the district's ID set, the same cell is an unknown school, as before.
        let plain = Validator::new(&hs, &mapping, &schools);
        let e = plain
            .validate(&rec(2, &["9001", "Cam", "Ortiz", "Staff", "D-100"]))
            .unwrap_err();
        assert!(e.message.contains("not a school of this district"), "{e}");
        // A school of the district keeps its meaning.
        let u = v
            .validate(&rec(4, &["9003", "Eli", "Gray", "Teacher", "S2"]))
            .expect("a school row");
        assert_eq!(u.schools, ["S2"]);
    }

    #[test]
    fn first_problem_in_canonical_order_wins() {
        let e = error(&[("role", "Guardian"), ("email", "bad"), ("grade", "99")]);
        assert!(e.contains("email \"bad\""), "{e}");
        let e = error(&[("role", "Guardian"), ("grade", "99"), ("last_name", "")]);
        assert!(e.contains("last_name is required"), "{e}");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);
        let leaked: &'static str = Box::leak(long.into_boxed_str());
        let e = error(&[("role", leaked)]);
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("…\""));
    }

    #[test]
    fn short_and_long_rows() {
        let hs = headers("custom_id,first_name,last_name,role,school_external_id,grade,notes");
        let mapping = resolve(&hs, None, &[], &[]).expect("maps");
        let schools = district();
        let v = Validator::new(&hs, &mapping, &schools);
        let short = v
            .validate(&rec(3, &["1", "Ann", "Lee", "Staff", "S1"]))
            .expect("short row is fine");
        assert_eq!(short.grade, Grade::UNSPECIFIED);
        assert!(
            v.validate(&rec(
                4,
                &["1", "Ann", "Lee", "Staff", "S1", "", "", "", " ", ""]
            ))
            .is_ok()
        );
        let e = v
            .validate(&rec(
                5,
                &["1", "Ann", "Lee", "Staff", "S1", "", "", "", "x"],
            ))
            .expect_err("extra cell");
        assert_eq!(
            e,
            RowError {
                line: 5,
                column: None,
                message: "row has 9 fields but the header has 7".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "line 5: row has 9 fields but the header has 7"
        );
        let e = v
            .validate(&rec(6, &["1", "Ann"]))
            .expect_err("too short for last_name");
        assert_eq!(
            e.to_string(),
            "line 6, column \"last_name\": last_name is required"
        );
        let e = v.validate(&rec(8, &[])).expect_err("nothing");
        assert_eq!(
            e.to_string(),
            "line 8, column \"custom_id\": custom_id or email is required"
        );
    }

    #[test]
    fn fixed_values_are_validated_and_named_by_field() {
        let hs = headers("email,firstname,lastname");
        let schools = district();
        let mapping = resolve(
            &hs,
            None,
            &[],
            &[
                (Field::Role, "Guardian".into()),
                (Field::SchoolExternalId, "s2".into()),
            ],
        )
        .expect("maps");
        let v = Validator::new(&hs, &mapping, &schools);
        let e = v
            .validate(&rec(2, &["a@b.org", "Ann", "Lee"]))
            .expect_err("bad role");
        assert_eq!(e.column.as_deref(), Some("role"));
        let mapping = resolve(
            &hs,
            None,
            &[],
            &[
                (Field::Role, "staff".into()),
                (Field::SchoolExternalId, "s2".into()),
            ],
        )
        .expect("maps");
        let v = Validator::new(&hs, &mapping, &schools);
        let u = v
            .validate(&rec(2, &["a@b.org", "Ann", "Lee"]))
            .expect("valid");
        assert_eq!(
            (u.role, u.schools.as_slice()),
            (Role::Staff, &["S2".to_string()][..])
        );
        assert!(u.present.contains(Field::Role) && !u.present.contains(Field::Grade));
        let e = v
            .validate(&rec(3, &["", " Ann", "Lee"]))
            .expect_err("no id");
        assert_eq!(
            e.to_string(),
            "line 3, column \"email\": custom_id or email is required"
        );
        let e = v
            .validate(&rec(4, &["a@b.org", "", "Lee"]))
            .expect_err("no first name");
        assert_eq!(
            e.to_string(),
            "line 4, column \"firstname\": first_name is required"
        );
    }

    #[test]
    fn blank_header_columns_are_named_by_number() {
        let hs = headers("custom_id,,first_name,last_name,role,school_external_id");
        let mapping = crate::feed::headers::Mapping {
            columns: vec![
                Some(Field::CustomId),
                Some(Field::Email),
                Some(Field::FirstName),
                Some(Field::LastName),
                Some(Field::Role),
                Some(Field::SchoolExternalId),
            ],
            fixed: vec![],
        };
        let schools = district();
        let v = Validator::new(&hs, &mapping, &schools);
        let e = v
            .validate(&rec(2, &["1", "nope", "A", "B", "Staff", "S1"]))
            .expect_err("bad email");
        assert_eq!(e.column.as_deref(), Some("column 2"));
    }

    #[test]
    fn row_issues_become_row_errors() {
        let e: RowError = RowIssue {
            line: 9,
            message: "this line could not be read: x".into(),
        }
        .into();
        assert_eq!(e.to_string(), "line 9: this line could not be read: x");
    }

    fn user(
        line: u64,
        id: Option<&str>,
        email: Option<&str>,
        username: Option<&str>,
    ) -> Result<IncomingUser, RowError> {
        thread_local!(static BASE: IncomingUser = row(&STUDENT).expect("valid"));
        let mut u = BASE.with(IncomingUser::clone);
        u.line = line;
        u.custom_id = id.map(String::from);
        u.email = email.map(String::from);
        u.username = username.map(String::from);
        Ok(u)
    }

    fn outcome(rows: &[Result<IncomingUser, RowError>]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                r.as_ref()
                    .map_or_else(|e| e.to_string(), |u| format!("ok {}", u.line))
            })
            .collect()
    }

    #[test]
    fn duplicates_mark_every_occurrence() {
        let mut rows = vec![
            user(2, Some("123"), None, None),
            user(3, Some("124"), Some("a@b.org"), Some("Ann")),
            user(4, Some("123"), None, None),
            Err(RowError {
                line: 5,
                column: None,
                message: "bad".into(),
            }),
            user(6, Some("125"), Some("x@y.org"), Some("ann")),
            user(7, Some("126"), Some("a@b.org"), None),
            user(9, Some("123"), None, Some("bo")),
        ];
        mark_duplicates(&mut rows);
        assert_eq!(
            outcome(&rows),
            [
                "line 2, column \"custom_id\": custom_id \"123\" appears more than once in the file (lines 2, 4, 9)",
                "line 3, column \"email\": email \"a@b.org\" appears more than once in the file (lines 3, 7)",
                "line 4, column \"custom_id\": custom_id \"123\" appears more than once in the file (lines 2, 4, 9)",
                "line 5: bad",
                "line 6, column \"username\": username \"ann\" appears more than once in the file (lines 3, 6)",
                "line 7, column \"email\": email \"a@b.org\" appears more than once in the file (lines 3, 7)",
                "line 9, column \"custom_id\": custom_id \"123\" appears more than once in the file (lines 2, 4, 9)",
            ]
        );
    }

    #[test]
    fn error_rows_do_not_make_duplicates() {
        let mut rows = vec![
            user(2, Some("1"), None, None),
            Err(RowError {
                line: 3,
                column: None,
                message: "bad".into(),
            }),
            user(4, Some("2"), None, None),
        ];
        mark_duplicates(&mut rows);
        assert_eq!(outcome(&rows), ["ok 2", "line 3: bad", "ok 4"]);
    }

    #[test]
    fn many_duplicates_are_linear_and_capped() {
        let mut rows: Vec<_> = (0..10_000)
            .map(|i| user(i + 2, Some("same"), None, None))
            .collect();
        rows.extend((0..100_000).map(|i| user(i + 20_000, Some(&i.to_string()), None, None)));
        mark_duplicates(&mut rows);
        assert_eq!(
            rows[9_999].as_ref().map_err(|e| e.message.as_str()),
            Err(
                "custom_id \"same\" appears more than once in the file (lines 2, 3, 4, 5, 6 and 9995 more)"
            )
        );
        assert!(rows[..10_000].iter().all(Result::is_err));
        assert!(rows[10_000..].iter().all(Result::is_ok));
    }

    #[test]
    fn validator_names_the_files_columns_for_duplicates() {
        let hs = headers("Student ID,First,Last,role,school_id");
        let mapping = resolve(&hs, None, &[], &[]).expect("maps");
        let schools = district();
        let v = Validator::new(&hs, &mapping, &schools);
        let mut rows: Vec<_> = [2, 3]
            .iter()
            .map(|&l| v.validate(&rec(l, &["7", "A", "B", "Student", "S1"])))
            .collect();
        v.mark_duplicates(&mut rows);
        assert_eq!(
            rows[1].as_ref().map_err(|e| e.column.as_deref()),
            Err(Some("Student ID"))
        );
    }

    fn test_data(path: &str) -> std::fs::File {
        std::fs::File::open(format!(
            "{}/../shared/test-data/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test data")
    }

    fn validate_file(
        path: &str,
        fixed: &[(Field, String)],
        schools: &HashSet<String>,
    ) -> Vec<Result<IncomingUser, RowError>> {
        let reader = open(test_data(path), &ReadOptions::default()).expect("opens");
        let hs = reader.headers().to_vec();
        let mapping = resolve(&hs, None, &[], fixed).expect("maps");
        let v = Validator::new(&hs, &mapping, schools);
        let mut rows: Vec<_> = reader
            .map(|item| {
                item.expect("no I/O error")
                    .map_err(RowError::from)
                    .and_then(|r| v.validate(&r))
            })
            .collect();
        v.mark_duplicates(&mut rows);
        rows
    }

    #[test]
    fn adobe_broken_fixture() {
        let fixed = [
            (Field::Role, "Staff".to_string()),
            (Field::SchoolExternalId, "S1".to_string()),
        ];
        let rows = validate_file(
            "adobe-user-sync/tests-fixture/test_csv_data.csv",
            &fixed,
            &district(),
        );
        let ok: Vec<&str> = rows
            .iter()
            .flatten()
            .filter_map(|u| u.username.as_deref().or(u.email.as_deref()))
            .collect();
        // pwizard (9 fields) and swizard (10 fields) are not longer than the 10-column header.
        assert_eq!(
            ok,
            [
                "pwizard@example.com",
                "swizard@example.com",
                "jsmith@example.com",
                "jdoe@example.com",
                "rroe@example.com"
            ]
        );
        let errors: Vec<String> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "line 2, column \"email\": email \"dwizardexample.com\" is not a valid email address",
                "line 3, column \"firstname\": first_name is required",
                "line 4, column \"lastname\": last_name is required",
                "line 10: row has 14 fields but the header has 10",
                "line 11, column \"email\": custom_id or email is required",
                "line 12, column \"email\": custom_id or email is required",
            ]
        );
        let jsmith = rows
            .iter()
            .flatten()
            .find(|u| u.email.as_deref() == Some("jsmith@example.com"));
        let jsmith = jsmith.expect("jsmith");
        assert_eq!(
            (jsmith.line, jsmith.role, jsmith.username.as_deref()),
            (7, Role::Staff, None)
        );
        assert_eq!(jsmith.schools, ["S1"]);
    }

    #[test]
    fn oneroster_users_file() {
        let schools: HashSet<String> = ["255901001".to_string()].into();
        let rows = validate_file("edfi-lms-toolkit/oneroster-1.1/users.csv", &[], &schools);
        assert_eq!(rows.len(), 10);
        let users: Vec<&IncomingUser> = rows
            .iter()
            .map(|r| r.as_ref().expect("every row is good"))
            .collect();
        let students: Vec<_> = users.iter().filter(|u| u.role == Role::Student).collect();
        assert_eq!(students.len(), 8);
        assert!(students.iter().all(|u| u.grade.as_str() == "9"));
        let teachers: Vec<_> = users.iter().filter(|u| u.role == Role::Teacher).collect();
        assert_eq!(teachers.len(), 2);
        assert!(teachers.iter().all(|u| u.grade == Grade::UNSPECIFIED));
        assert!(
            users
                .iter()
                .all(|u| u.custom_id.is_none() && u.status == Status::Active)
        );
        assert!(users.iter().all(|u| u.schools == ["255901001"]));
        let mary = users[0];
        assert_eq!(mary.email.as_deref(), Some("mary.archer@studentgps.org"));
        assert_eq!(mary.username.as_deref(), Some("Mary Archer"));
        assert_eq!(users[2].middle_name, "Ivan");
        assert_eq!(users[9].line, 11);
    }
}
