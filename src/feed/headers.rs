//! Header mapping: which column of a file feeds which user field.
//!
//! Known header spellings map by a synonym table; anything else goes through the admin's
//! column-header mapper, whose answer is saved per district ([`SavedMapping`], keyed by
//! [`signature`]) and reused for the next file with the same header set. Fixed values give a
//! field the file lacks one value for every row (e.g. role Student for `Student.csv`).

use crate::domain::{Field, FieldSet};
use serde::{Deserialize, Serialize};

/// Where a column goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Field(Field),
    Ignore,
}

use Field::*;
use Target::Ignore as IGNORE;

const fn to(f: Field) -> Target {
    Target::Field(f)
}

/// Folded header spellings → target. Canonical names (SPEC §3) first, then the spellings of
/// real exports: Microsoft School Data Sync (`SIS ID`, `School SIS ID`, `First Name`…),
/// OneRoster users.csv (`givenName`, `familyName`, `orgSourcedIds`, `identifier`, `grades`,
/// `enabledUser`), Clever (`Student_id`, `Teacher_number`, `Staff_email`, `Title`…), Adobe
/// (`firstname`, `lastname`) and older portals (`idnumber`, `user_type`,
/// `school_district_external_id`).
/// Deliberately absent because they mean different things in different exports: `id`,
/// `userid`, `type` (Adobe: the identity type), `sourcedid` (a provider key), `school`
/// (often a name), `stateid`.
const SYNONYMS: &[(&str, Target)] = &[
    ("userguid", to(UserGuid)),
    ("guid", to(UserGuid)),
    ("customid", to(CustomId)),
    ("idnumber", to(CustomId)),
    ("studentid", to(CustomId)),
    ("studentnumber", to(CustomId)),
    ("studentno", to(CustomId)),
    ("employeeid", to(CustomId)),
    ("employeenumber", to(CustomId)),
    ("employeeno", to(CustomId)),
    ("staffid", to(CustomId)),
    ("staffnumber", to(CustomId)),
    ("teacherid", to(CustomId)),
    ("teachernumber", to(CustomId)),
    ("sisid", to(CustomId)),
    ("identifier", to(CustomId)),
    ("localid", to(CustomId)),
    ("externalid", to(CustomId)),
    ("email", to(Email)),
    ("emailaddress", to(Email)),
    ("mail", to(Email)),
    ("primaryemail", to(Email)),
    ("useremail", to(Email)),
    ("studentemail", to(Email)),
    ("teacheremail", to(Email)),
    ("staffemail", to(Email)),
    ("username", to(Username)),
    ("login", to(Username)),
    ("loginid", to(Username)),
    ("loginname", to(Username)),
    ("userlogin", to(Username)),
    ("samaccountname", to(Username)),
    ("firstname", to(FirstName)),
    ("first", to(FirstName)),
    ("givenname", to(FirstName)),
    ("fname", to(FirstName)),
    ("forename", to(FirstName)),
    ("middlename", to(MiddleName)),
    ("middle", to(MiddleName)),
    ("middleinitial", to(MiddleName)),
    ("lastname", to(LastName)),
    ("last", to(LastName)),
    ("surname", to(LastName)),
    ("familyname", to(LastName)),
    ("lname", to(LastName)),
    ("role", to(Role)),
    ("usertype", to(Role)),
    ("userrole", to(Role)),
    ("persontype", to(Role)),
    ("schoolexternalid", to(SchoolExternalId)),
    ("schooldistrictexternalid", to(SchoolExternalId)),
    ("schoolid", to(SchoolExternalId)),
    ("schoolids", to(SchoolExternalId)),
    ("schoolsisid", to(SchoolExternalId)),
    ("schoolcode", to(SchoolExternalId)),
    ("schoolnumber", to(SchoolExternalId)),
    ("building", to(SchoolExternalId)),
    ("buildingid", to(SchoolExternalId)),
    ("buildingcode", to(SchoolExternalId)),
    ("location", to(SchoolExternalId)),
    ("locationid", to(SchoolExternalId)),
    ("orgsourcedids", to(SchoolExternalId)),
    ("grade", to(Grade)),
    ("grades", to(Grade)),
    ("gradelevel", to(Grade)),
    ("currentgrade", to(Grade)),
    ("position", to(Position)),
    ("title", to(Position)),
    ("jobtitle", to(Position)),
    ("status", to(Status)),
    ("userstatus", to(Status)),
    ("accountstatus", to(Status)),
    ("enabled", to(Status)),
    ("enableduser", to(Status)),
    ("active", to(Status)),
    ("password", to(Password)),
    // The reason column of our own error file.
    ("error", IGNORE),
];

/// The fields a file must provide (by a column or a fixed value).
pub const REQUIRED: [Field; 4] = [FirstName, LastName, Role, SchoolExternalId];
/// Of these, a file must provide at least one.
pub const ONE_OF_REQUIRED: [Field; 2] = [CustomId, Email];

/// The header spellings that map to `field` by themselves (folded, as in the table), its
/// canonical name's folded form left out.
pub fn synonyms(field: Field) -> Vec<&'static str> {
    let own = fold(field.name());
    SYNONYMS
        .iter()
        .filter(|(k, t)| *t == Target::Field(field) && *k != own)
        .map(|(k, _)| *k)
        .collect()
}

/// Lower-case and drop whitespace, `_`, `-` and `.`: `First Name`, `first_name` and
/// `FIRST-NAME` all fold to `firstname`.
pub fn fold(h: &str) -> String {
    h.chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, '_' | '-' | '.' | '\u{feff}')))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `f` of [`fold`]`(h)`, without allocating when `h` is short and ASCII (a column name the
/// code gives): a cell is found this way in every record of a file of millions, where
/// folding into a new `String` each time took ~10% of a 1M-user set's re-sync (issue 15).
pub fn with_folded<R>(h: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    if !h.is_ascii() || h.len() > buf.len() {
        return f(&fold(h));
    }
    let mut n = 0;
    for b in h.bytes() {
        if !(char::from(b).is_whitespace() || matches!(b, b'_' | b'-' | b'.')) {
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    f(std::str::from_utf8(&buf[..n]).expect("ASCII stays UTF-8"))
}

fn lookup(folded: &str) -> Option<Target> {
    SYNONYMS.iter().find(|(k, _)| *k == folded).map(|(_, t)| *t)
}

fn is_error_column(folded: &str) -> bool {
    lookup(folded) == Some(Target::Ignore)
}

/// How a file's columns feed the user fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// One per header column; `None` = ignored. A field appears at most once.
    pub columns: Vec<Option<Field>>,
    /// Values for fields no column provides, the same for every row.
    pub fixed: Vec<(Field, String)>,
}

impl Mapping {
    /// The fields the feed carries (by a column or a fixed value).
    pub fn present(&self) -> FieldSet {
        self.columns
            .iter()
            .flatten()
            .copied()
            .chain(self.fixed.iter().map(|(f, _)| *f))
            .collect()
    }

    /// The index of the column feeding `field`.
    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.columns.iter().position(|c| *c == Some(field))
    }

    /// The fixed value of `field`, if it has one.
    pub fn fixed_value(&self, field: Field) -> Option<&str> {
        self.fixed
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
    }

    /// The columns no field takes (as sent; `column N` for a blank name), for the summary.
    /// The `Error` column of our own error file is left out.
    pub fn ignored_columns(&self, headers: &[String]) -> Vec<String> {
        headers
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                self.columns.get(*i).copied().flatten().is_none() && !is_error_column(&fold(h))
            })
            .map(|(i, h)| {
                if h.trim().is_empty() {
                    format!("column {}", i + 1)
                } else {
                    h.clone()
                }
            })
            .collect()
    }

    /// The mapping in the form stored per district.
    pub fn to_saved(&self, headers: &[String]) -> SavedMapping {
        SavedMapping {
            columns: headers
                .iter()
                .cloned()
                .zip(self.columns.iter().copied())
                .collect(),
            fixed: self.fixed.clone(),
        }
    }
}

/// An admin's mapping as stored (JSON) per district, reused for files with the same
/// [`signature`]. Columns are matched by folded name, so order and spelling may vary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMapping {
    /// (header as sent, field or `None` = ignore)
    pub columns: Vec<(String, Option<Field>)>,
    pub fixed: Vec<(Field, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("required fields not mapped: {}; columns in the file: {}", describe(.missing), .seen.join(", "))]
    MissingRequired {
        missing: Vec<Field>,
        seen: Vec<String>,
    },
    #[error("there is no column \"{0}\" in the file")]
    UnknownColumn(String),
    #[error("\"{0}\" is not a field (fields: {fields}; or ignore)", fields = field_names())]
    UnknownField(String),
    #[error("\"{0}\" should look like NAME=VALUE")]
    Syntax(String),
}

/// Field names for a message; custom_id and email both missing read "custom_id or email".
fn describe(missing: &[Field]) -> String {
    let either = missing.contains(&CustomId) && missing.contains(&Email);
    missing
        .iter()
        .filter(|f| !(either && **f == Email))
        .map(|f| {
            if either && *f == CustomId {
                "custom_id or email"
            } else {
                f.name()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_names() -> String {
    Field::ALL.map(Field::name).join(", ")
}

/// Proposes a field per column from the synonym table. A field claimed by several columns
/// goes to the first column spelling its canonical name, else to the first claimant.
pub fn propose(headers: &[String]) -> Vec<Option<Field>> {
    let claims: Vec<Option<(Field, bool)>> = headers
        .iter()
        .map(|h| {
            let folded = fold(h);
            match lookup(&folded)? {
                Target::Field(f) => Some((f, folded == fold(f.name()))),
                Target::Ignore => None,
            }
        })
        .collect();
    let mut columns = vec![None; headers.len()];
    for field in Field::ALL {
        let winner = claims
            .iter()
            .position(|c| *c == Some((field, true)))
            .or_else(|| {
                claims
                    .iter()
                    .position(|c| matches!(c, Some((f, _)) if *f == field))
            });
        if let Some(i) = winner {
            columns[i] = Some(field);
        }
    }
    columns
}

/// Does the header carry the `Error` column of our own error file?
pub fn has_error_column(headers: &[String]) -> bool {
    headers.iter().any(|h| fold(h) == "error")
}

/// A stable key for "the same header set": folded names, sorted, joined with `|`
/// (blank names and an `Error` column left out).
pub fn signature(headers: &[String]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|h| fold(h))
        .filter(|f| !f.is_empty() && !is_error_column(f))
        .collect();
    names.sort();
    names.join("|")
}

/// Builds the mapping for a file: the proposal, then the saved mapping (matched by folded
/// header), then `overrides` (`--map COLUMN=FIELD|ignore`), then fixed values (saved ones,
/// then `--set FIELD=VALUE`, later wins). A fixed value only fills a field that no column
/// provides; when a column provides it, the column wins and the fixed value is dropped.
/// Mapping a field to a column takes it away from any other column. An `Error` column is
/// always ignored.
pub fn resolve(
    headers: &[String],
    saved: Option<&SavedMapping>,
    overrides: &[(String, Option<Field>)],
    fixed: &[(Field, String)],
) -> Result<Mapping, MappingError> {
    let folded: Vec<String> = headers.iter().map(|h| fold(h)).collect();
    let mut columns = propose(headers);
    for (name, field) in saved.map_or(&[][..], |s| &s.columns[..]) {
        let name = fold(name);
        if let Some(i) = folded.iter().position(|f| *f == name) {
            assign(&mut columns, i, *field);
        }
    }
    for (name, field) in overrides {
        let i = headers
            .iter()
            .position(|h| h == name.trim())
            .or_else(|| folded.iter().position(|f| *f == fold(name)))
            .ok_or_else(|| MappingError::UnknownColumn(name.clone()))?;
        assign(&mut columns, i, *field);
    }
    for (i, f) in folded.iter().enumerate() {
        if is_error_column(f) {
            columns[i] = None;
        }
    }
    let mut chosen: Vec<(Field, String)> = Vec::new();
    for (field, value) in saved.map_or(&[][..], |s| &s.fixed[..]).iter().chain(fixed) {
        if !columns.contains(&Some(*field)) {
            chosen.retain(|(f, _)| f != field);
            chosen.push((*field, value.clone()));
        }
    }
    chosen.sort_by_key(|(f, _)| *f);
    let mapping = Mapping {
        columns,
        fixed: chosen,
    };

    let present = mapping.present();
    let mut missing = Vec::new();
    if !ONE_OF_REQUIRED.iter().any(|f| present.contains(*f)) {
        missing.extend(ONE_OF_REQUIRED);
    }
    missing.extend(REQUIRED.into_iter().filter(|f| !present.contains(*f)));
    if missing.is_empty() {
        Ok(mapping)
    } else {
        let seen = headers
            .iter()
            .filter(|h| !h.trim().is_empty())
            .cloned()
            .collect();
        Err(MappingError::MissingRequired { missing, seen })
    }
}

fn assign(columns: &mut [Option<Field>], i: usize, field: Option<Field>) {
    if field.is_some() {
        for c in columns.iter_mut().filter(|c| **c == field) {
            *c = None;
        }
    }
    columns[i] = field;
}

/// A field name as typed on the command line (`--map col=field`, `--set field=value`):
/// a canonical name in any case/spacing (`First Name`, `first_name`), or `ignore`.
pub fn parse_field(name: &str) -> Option<Target> {
    let folded = fold(name);
    if matches!(folded.as_str(), "ignore" | "skip" | "none") {
        return Some(Target::Ignore);
    }
    Field::ALL
        .into_iter()
        .find(|f| fold(f.name()) == folded)
        .map(Target::Field)
}

/// Parses `--map COLUMN=FIELD` (or `COLUMN=ignore`). The column may contain `=`; the field
/// is after the last one.
pub fn parse_override(spec: &str) -> Result<(String, Option<Field>), MappingError> {
    let (column, field) = spec
        .rsplit_once('=')
        .ok_or_else(|| MappingError::Syntax(spec.to_string()))?;
    match parse_field(field) {
        Some(Target::Field(f)) => Ok((column.trim().to_string(), Some(f))),
        Some(Target::Ignore) => Ok((column.trim().to_string(), None)),
        None => Err(MappingError::UnknownField(field.trim().to_string())),
    }
}

/// Parses `--set FIELD=VALUE`.
pub fn parse_fixed(spec: &str) -> Result<(Field, String), MappingError> {
    let (field, value) = spec
        .split_once('=')
        .ok_or_else(|| MappingError::Syntax(spec.to_string()))?;
    match parse_field(field) {
        Some(Target::Field(f)) => Ok((f, value.trim().to_string())),
        _ => Err(MappingError::UnknownField(field.trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn folding_in_place_gives_what_fold_gives() {
        let long = "x".repeat(65);
        for h in [
            "sourcedId",
            "SIS ID",
            "First Name",
            "first_name",
            "FIRST-NAME",
            "user.email",
            "tab\there",
            "vt\u{b}here",
            "",
            "\u{feff}sourcedId",
            "Straße",
            "ÉCOLE",
            long.as_str(),
        ] {
            assert_eq!(
                super::with_folded(h, str::to_string),
                super::fold(h),
                "{h:?}"
            );
        }
    }

    use super::*;

    fn h(names: &str) -> Vec<String> {
        names.split(',').map(str::to_string).collect()
    }

    fn names(cols: &[Option<Field>]) -> Vec<&'static str> {
        cols.iter().map(|c| c.map_or("-", Field::name)).collect()
    }

    #[test]
    fn fold_ignores_case_spacing_and_punctuation() {
        for s in [
            "First Name",
            "first_name",
            "FIRST-NAME",
            " first.name ",
            "FirstName",
            "first\u{a0}name",
        ] {
            assert_eq!(fold(s), "firstname", "{s:?}");
        }
        assert_eq!(fold("E-mail"), "email");
        assert_eq!(fold("\u{feff}Email"), "email");
    }

    #[test]
    fn synonym_table_is_folded_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (k, _) in SYNONYMS {
            assert_eq!(fold(k), *k, "{k} is not folded");
            assert!(seen.insert(*k), "{k} twice");
        }
        for f in Field::ALL {
            assert_eq!(
                lookup(&fold(f.name())),
                Some(Target::Field(f)),
                "{}",
                f.name()
            );
        }
        for ambiguous in ["id", "userid", "type", "sourcedid", "school", "name"] {
            assert_eq!(lookup(ambiguous), None, "{ambiguous}");
        }
    }

    #[test]
    fn canonical_header_maps_one_to_one() {
        let headers: Vec<String> = Field::ALL
            .iter()
            .rev()
            .map(|f| f.name().to_uppercase())
            .collect();
        let cols = propose(&headers);
        let expected: Vec<Option<Field>> = Field::ALL.iter().rev().map(|f| Some(*f)).collect();
        assert_eq!(cols, expected);
    }

    #[test]
    fn school_data_sync_headers() {
        let headers = h(
            "SIS ID,School SIS ID,First Name,Last Name,Username,Password,Grade,Status,Middle Name",
        );
        assert_eq!(
            names(&propose(&headers)),
            [
                "custom_id",
                "school_external_id",
                "first_name",
                "last_name",
                "username",
                "password",
                "grade",
                "status",
                "middle_name"
            ]
        );
    }

    #[test]
    fn oneroster_users_headers() {
        let headers = h(
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password",
        );
        assert_eq!(
            names(&propose(&headers)),
            [
                "-",
                "status",
                "-",
                "-", // enabledUser loses to the canonical `status`
                "school_external_id",
                "role",
                "username",
                "-",
                "first_name",
                "last_name",
                "middle_name",
                "custom_id",
                "email",
                "-",
                "-",
                "-",
                "grade",
                "password"
            ]
        );
        let without_status = h("sourcedId,enabledUser,givenName");
        assert_eq!(
            names(&propose(&without_status)),
            ["-", "status", "first_name"]
        );
    }

    #[test]
    fn adobe_headers_leave_type_alone() {
        let headers = h(
            "firstname,lastname,email,country,groups,type,username,domain,untracked,extraattribute",
        );
        assert_eq!(
            names(&propose(&headers)),
            [
                "first_name",
                "last_name",
                "email",
                "-",
                "-",
                "-",
                "username",
                "-",
                "-",
                "-"
            ]
        );
    }

    #[test]
    fn clever_and_old_portal_headers() {
        let clever = h(
            "School_id,Teacher_id,Teacher_number,State_teacher_id,Teacher_email,First_name,Middle_name,Last_name,Title,Username,Password",
        );
        assert_eq!(
            names(&propose(&clever)),
            [
                "school_external_id",
                "custom_id",
                "-",
                "-",
                "email",
                "first_name",
                "middle_name",
                "last_name",
                "position",
                "username",
                "password"
            ]
        );
        let old = h(
            "idnumber,First Name,Last Name,Email Address,user_type,school_district_external_id,Grade Level,Job Title",
        );
        assert_eq!(
            names(&propose(&old)),
            [
                "custom_id",
                "first_name",
                "last_name",
                "email",
                "role",
                "school_external_id",
                "grade",
                "position"
            ]
        );
        let more = h("Student Number,Given Name,Surname,E-Mail,Building,Login,GUID");
        assert_eq!(
            names(&propose(&more)),
            [
                "custom_id",
                "first_name",
                "last_name",
                "email",
                "school_external_id",
                "username",
                "user_guid"
            ]
        );
    }

    #[test]
    fn canonical_name_beats_synonym_then_first_wins() {
        assert_eq!(
            names(&propose(&h("student_id,Custom ID"))),
            ["-", "custom_id"]
        );
        assert_eq!(names(&propose(&h("Email Address,E-mail"))), ["-", "email"]);
        assert_eq!(
            names(&propose(&h("student_id,employee_id"))),
            ["custom_id", "-"]
        );
        assert_eq!(
            names(&propose(&h("error,email,Error"))),
            ["-", "email", "-"]
        );
    }

    fn adobe() -> Vec<String> {
        h("firstname,lastname,email,country,groups,type,username,domain,untracked,extraattribute")
    }

    #[test]
    fn missing_required_lists_fields_and_columns() {
        let err = resolve(&h("firstname,lastname,email,country"), None, &[], &[]).err();
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "required fields not mapped: role, school_external_id; columns in the file: firstname, lastname, email, country"
        );
        let err = resolve(
            &h("first_name,last_name,role,school_external_id"),
            None,
            &[],
            &[],
        )
        .err();
        assert_eq!(
            err,
            Some(MappingError::MissingRequired {
                missing: vec![CustomId, Email],
                seen: h("first_name,last_name,role,school_external_id"),
            })
        );
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "required fields not mapped: custom_id or email; columns in the file: first_name, last_name, role, school_external_id"
        );
        let err = resolve(&h("country,,notes"), None, &[], &[]).err();
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "required fields not mapped: custom_id or email, first_name, last_name, role, school_external_id; columns in the file: country, notes"
        );
    }

    #[test]
    fn fixed_values_fill_missing_fields() {
        let fixed = [
            (Role, "Staff".to_string()),
            (SchoolExternalId, "S1".to_string()),
        ];
        let m = resolve(&adobe(), None, &[], &fixed).expect("maps");
        assert_eq!(m.fixed, fixed);
        let present = m.present();
        for f in [FirstName, LastName, Email, Username, Role, SchoolExternalId] {
            assert!(present.contains(f), "{}", f.name());
        }
        for f in [CustomId, Grade, Status, Password, UserGuid] {
            assert!(!present.contains(f), "{}", f.name());
        }
        assert_eq!(m.fixed_value(Role), Some("Staff"));
        assert_eq!(m.column_of(Email), Some(2));
        assert_eq!(
            m.ignored_columns(&adobe()),
            [
                "country",
                "groups",
                "type",
                "domain",
                "untracked",
                "extraattribute"
            ]
        );
    }

    #[test]
    fn a_column_beats_a_fixed_value_and_later_fixed_values_win() {
        let headers = h("email,first_name,last_name,role,school_id");
        let fixed = [
            (Role, "Staff".to_string()),
            (Grade, "K".to_string()),
            (Grade, "3".to_string()),
        ];
        let m = resolve(&headers, None, &[], &fixed).expect("maps");
        assert_eq!(m.fixed, [(Grade, "3".to_string())]);
        assert_eq!(m.column_of(Role), Some(3));
    }

    #[test]
    fn error_column_is_always_ignored() {
        let headers = h("email,first_name,last_name,role,school_id,Error");
        let m = resolve(&headers, None, &[("Error".into(), Some(Position))], &[]).expect("maps");
        assert_eq!(m.columns[5], None);
        assert!(m.ignored_columns(&headers).is_empty());
        assert_eq!(signature(&headers), signature(&headers[..5]));
    }

    #[test]
    fn overrides_move_and_drop_fields() {
        let headers = h("Kennung,Vorname,Nachname,E-Mail,Art,Schule,student_id");
        let overrides = [
            ("kennung".to_string(), Some(CustomId)),
            ("Vorname".to_string(), Some(FirstName)),
            ("Nachname".to_string(), Some(LastName)),
            ("Art".to_string(), Some(Role)),
            ("Schule".to_string(), Some(SchoolExternalId)),
            ("E-Mail".to_string(), None),
        ];
        let m = resolve(&headers, None, &overrides, &[]).expect("maps");
        assert_eq!(
            names(&m.columns),
            [
                "custom_id",
                "first_name",
                "last_name",
                "-",
                "role",
                "school_external_id",
                "-"
            ]
        );
        assert_eq!(m.ignored_columns(&headers), ["E-Mail", "student_id"]);
        let err = resolve(&headers, None, &[("Klasse".into(), Some(Grade))], &[]).err();
        assert_eq!(err, Some(MappingError::UnknownColumn("Klasse".into())));
        assert_eq!(
            MappingError::UnknownColumn("Klasse".into()).to_string(),
            "there is no column \"Klasse\" in the file"
        );
    }

    #[test]
    fn saved_mapping_is_reused_by_name() {
        let headers = h("Kennung,Vorname,Nachname,Art,Schule,Notiz");
        assert!(resolve(&headers, None, &[], &[]).is_err());
        let overrides: Vec<(String, Option<Field>)> = vec![
            ("Kennung".into(), Some(CustomId)),
            ("Vorname".into(), Some(FirstName)),
            ("Nachname".into(), Some(LastName)),
            ("Art".into(), Some(Role)),
        ];
        let fixed = [(SchoolExternalId, "S1".to_string())];
        let m = resolve(&headers, None, &overrides, &fixed).expect("maps");
        let saved = m.to_saved(&headers);
        let json = serde_json::to_string(&saved).expect("serialises");
        let back: SavedMapping = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, saved);
        assert_eq!(resolve(&headers, Some(&back), &[], &[]), Ok(m.clone()));

        // Next month: same columns, other order and spelling.
        let next = h("NOTIZ,schule,ART,nachname,VORNAME,kennung");
        assert_eq!(signature(&next), signature(&headers));
        let m2 = resolve(&next, Some(&back), &[], &[]).expect("maps");
        assert_eq!(
            names(&m2.columns),
            ["-", "-", "role", "last_name", "first_name", "custom_id"]
        );
        assert_eq!(m2.fixed, fixed);
        // Overrides and --set still apply over a saved mapping.
        let m3 = resolve(
            &next,
            Some(&back),
            &[("schule".into(), Some(SchoolExternalId))],
            &[],
        )
        .expect("maps");
        assert_eq!(m3.column_of(SchoolExternalId), Some(1));
        assert!(m3.fixed.is_empty());
    }

    #[test]
    fn saved_mapping_overrules_the_proposal() {
        let headers = h("email,first_name,last_name,role,school_id,student_id");
        let saved = SavedMapping {
            columns: vec![
                ("student_id".into(), None),
                ("email".into(), Some(Username)),
            ],
            fixed: vec![],
        };
        let err = resolve(&headers, Some(&saved), &[], &[]).err();
        assert!(
            matches!(err, Some(MappingError::MissingRequired { ref missing, .. }) if missing == &[CustomId, Email])
        );
        let saved = SavedMapping {
            columns: vec![("school_id".into(), Some(CustomId))],
            fixed: vec![],
        };
        let m = resolve(
            &headers,
            Some(&saved),
            &[],
            &[(SchoolExternalId, "S1".into())],
        )
        .expect("maps");
        assert_eq!(m.column_of(CustomId), Some(4));
        assert_eq!(m.fixed_value(SchoolExternalId), Some("S1"));
    }

    #[test]
    fn signature_is_stable() {
        let a = signature(&h("First Name,last_name,EMAIL,Role,School"));
        assert_eq!(a, "email|firstname|lastname|role|school");
        assert_eq!(
            a,
            signature(&h("school,ROLE,e_mail,LastName,first-name,Error"))
        );
        assert_ne!(a, signature(&h("First Name,last_name,EMAIL,Role")));
        assert_eq!(signature(&h("a,,b")), "a|b");
    }

    #[test]
    fn ignored_columns_name_blank_headers_by_number() {
        let headers = h("email,,first_name");
        let m = Mapping {
            columns: vec![Some(Email), None, Some(FirstName)],
            fixed: vec![],
        };
        assert_eq!(m.ignored_columns(&headers), ["column 2"]);
    }

    #[test]
    fn parse_field_takes_canonical_names_and_ignore() {
        assert_eq!(parse_field("First Name"), Some(Target::Field(FirstName)));
        assert_eq!(
            parse_field("school_external_id"),
            Some(Target::Field(SchoolExternalId))
        );
        assert_eq!(parse_field("CUSTOM-ID"), Some(Target::Field(CustomId)));
        assert_eq!(parse_field("ignore"), Some(Target::Ignore));
        assert_eq!(parse_field("Ignore"), Some(Target::Ignore));
        assert_eq!(parse_field("user_type"), None);
        assert_eq!(parse_field("shoe size"), None);
    }

    #[test]
    fn cli_specs() {
        assert_eq!(
            parse_override("Student ID=custom_id"),
            Ok(("Student ID".into(), Some(CustomId)))
        );
        assert_eq!(parse_override("Notes=ignore"), Ok(("Notes".into(), None)));
        assert_eq!(parse_override("a=b=role"), Ok(("a=b".into(), Some(Role))));
        assert_eq!(
            parse_override("Notes=shoe"),
            Err(MappingError::UnknownField("shoe".into()))
        );
        assert_eq!(
            parse_override("Notes"),
            Err(MappingError::Syntax("Notes".into()))
        );
        assert_eq!(parse_fixed("role=Staff"), Ok((Role, "Staff".into())));
        assert_eq!(
            parse_fixed("school_external_id= A=B "),
            Ok((SchoolExternalId, "A=B".into()))
        );
        assert_eq!(
            parse_fixed("ignore=x"),
            Err(MappingError::UnknownField("ignore".into()))
        );
        let msg = MappingError::UnknownField("shoe".into()).to_string();
        assert!(
            msg.starts_with("\"shoe\" is not a field (fields: user_guid, custom_id,"),
            "{msg}"
        );
        assert_eq!(
            MappingError::Syntax("x".into()).to_string(),
            "\"x\" should look like NAME=VALUE"
        );
    }
}
