//! The user CSV's field reference and its template, built from the importer's own tables.
//!
//! Every column, its synonyms and its accepted values come from the tables the importer
//! reads files with (`headers::SYNONYMS`, `headers::REQUIRED`, the vocabularies of
//! `domain`), so the reference page cannot drift from what an upload accepts. The template
//! is the canonical header and two example rows that import cleanly.

use crate::domain::{Field, Grade, Role, Status};
use crate::feed::headers::{self, ONE_OF_REQUIRED, REQUIRED};

/// Whether a file must carry a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Yes,
    /// At least one of [`ONE_OF_REQUIRED`] (custom_id or email).
    OneOf,
    No,
}

impl Required {
    pub fn of(field: Field) -> Required {
        if REQUIRED.contains(&field) {
            Required::Yes
        } else if ONE_OF_REQUIRED.contains(&field) {
            Required::OneOf
        } else {
            Required::No
        }
    }

    pub fn words(self) -> String {
        match self {
            Required::Yes => "Required".into(),
            Required::OneOf => format!(
                "Required: {} (at least one)",
                ONE_OF_REQUIRED.map(Field::name).join(" or ")
            ),
            Required::No => "Optional".into(),
        }
    }
}

/// One accepted value and the spellings read as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub value: String,
    pub spellings: Vec<String>,
}

/// One column of the user CSV, as the reference page shows it.
#[derive(Debug, Clone)]
pub struct FieldDoc {
    pub field: Field,
    pub required: Required,
    /// Header spellings mapped to it automatically (folded: case, spaces, `_`, `-` and `.`
    /// do not matter).
    pub synonyms: Vec<&'static str>,
    /// For a vocabulary field: its values and their accepted spellings.
    pub values: Vec<Value>,
    /// What goes in the cell.
    pub about: &'static str,
}

impl FieldDoc {
    pub fn name(&self) -> &'static str {
        self.field.name()
    }
    pub fn label(&self) -> &'static str {
        self.field.label()
    }
    pub fn required_words(&self) -> String {
        self.required.words()
    }
    pub fn is_required(&self) -> bool {
        self.required != Required::No
    }
}

fn about(field: Field) -> &'static str {
    match field {
        Field::UserGuid => {
            "The user's ID in Rollcall, from the master CSV or a completed file. Leave it blank for new users; never change it."
        }
        Field::CustomId => "The SIS student number or employee ID; unique in the district.",
        Field::Email => {
            "An address like name@school.org; unique in the district. Optional for students when custom_id is given."
        }
        Field::Username => {
            "Unique in the district. Left blank, one is made from the name (first.last, then first.last2…)."
        }
        Field::FirstName | Field::LastName => "As it should appear in the portal.",
        Field::MiddleName => "Optional; a name or an initial.",
        Field::Role => "One of the values below.",
        Field::SchoolExternalId => {
            "The school's external ID as on the Schools page; several schools separated by ;."
        }
        Field::Grade => "Students only (ignored for adults); blank is Unspecified.",
        Field::Position => "Adults only (ignored for students), e.g. Math teacher.",
        Field::Status => "Active users can sign in; blank is Active.",
        Field::Password => {
            "Sets the user's password; blank leaves it (a new user gets a temporary one, in the completed file). Never shown in any download."
        }
    }
}

/// Groups `(spelling, value)` pairs by value, in the order of `order`, leaving out the
/// spelling that is the value itself (folded) and the blank cell, which `blank` names.
fn group<T: PartialEq + Copy>(
    order: &[T],
    label: impl Fn(T) -> String,
    words: &[(&str, T)],
) -> Vec<Value> {
    order
        .iter()
        .map(|v| {
            let value = label(*v);
            let own = headers::fold(&value);
            let spellings = words
                .iter()
                .filter(|(w, t)| t == v && *w != own)
                .map(|(w, _)| {
                    if w.is_empty() {
                        "(blank)".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            Value { value, spellings }
        })
        .collect()
}

fn values(field: Field) -> Vec<Value> {
    match field {
        Field::Role => group(&Role::ALL, |r| r.as_str().to_string(), Role::words()),
        Field::Status => group(
            &[Status::Active, Status::Inactive],
            |s| s.as_str().to_string(),
            Status::words(),
        ),
        Field::Grade => {
            let labels: Vec<&'static str> = Grade::all().map(Grade::as_str).collect();
            let mut out = group(&labels, |l| l.to_string(), Grade::words());
            for v in out.iter_mut() {
                // Numbers are read by `Grade::parse` itself: `03`, `grade 3`, `3rd`.
                if let Ok(n) = v.value.parse::<u8>() {
                    v.spellings = if n < 10 {
                        vec![format!("0{n}"), format!("grade {n}")]
                    } else {
                        vec![format!("grade {n}")]
                    };
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every column of the user CSV, in canonical order.
pub fn fields() -> Vec<FieldDoc> {
    Field::ALL
        .into_iter()
        .map(|field| FieldDoc {
            field,
            required: Required::of(field),
            synonyms: headers::synonyms(field),
            values: values(field),
            about: about(field),
        })
        .collect()
}

/// The canonical header and two example rows (a student and a teacher at `school`), as a
/// CSV in UTF-8 with a BOM (so Excel keeps the accents); it imports as it is.
pub fn template_csv(school: &str) -> Vec<u8> {
    let row = |pairs: &[(Field, &str)]| -> Vec<String> {
        Field::ALL
            .iter()
            .map(|f| {
                pairs
                    .iter()
                    .find(|(g, _)| g == f)
                    .map_or(String::new(), |(_, v)| v.to_string())
            })
            .collect()
    };
    let student = row(&[
        (Field::CustomId, "100234"),
        (Field::Email, "ana.garcia@example.org"),
        (Field::FirstName, "Ana"),
        (Field::MiddleName, "María"),
        (Field::LastName, "García"),
        (Field::Role, Role::Student.as_str()),
        (Field::SchoolExternalId, school),
        (Field::Grade, "5"),
        (Field::Status, Status::Active.as_str()),
    ]);
    let teacher = row(&[
        (Field::CustomId, "T-2001"),
        (Field::Email, "john.smith@example.org"),
        (Field::FirstName, "John"),
        (Field::LastName, "Smith"),
        (Field::Role, Role::Teacher.as_str()),
        (Field::SchoolExternalId, school),
        (Field::Position, "Math teacher"),
        (Field::Status, Status::Active.as_str()),
    ]);
    let mut w = csv::Writer::from_writer(UTF8_BOM.to_vec());
    let written = w
        .write_record(Field::ALL.map(Field::name))
        .and_then(|_| w.write_record(&student))
        .and_then(|_| w.write_record(&teacher));
    debug_assert!(written.is_ok());
    w.into_inner().unwrap_or_default()
}

/// UTF-8's byte order mark, which Excel needs to read the accents.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The template's file name.
pub const TEMPLATE_NAME: &str = "rollcall-users-template.csv";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::read::{ReadOptions, open};
    use crate::feed::validate::Validator;
    use std::collections::HashSet;

    #[test]
    fn every_field_is_documented_with_the_importers_own_synonyms() {
        let docs = fields();
        assert_eq!(docs.len(), Field::ALL.len());
        for d in &docs {
            for s in &d.synonyms {
                // Each listed spelling is proposed for that field by the importer itself.
                assert_eq!(
                    headers::propose(&[s.to_string()]),
                    [Some(d.field)],
                    "{s} for {}",
                    d.name()
                );
            }
        }
        let custom = docs.iter().find(|d| d.field == Field::CustomId).unwrap();
        assert!(custom.synonyms.contains(&"idnumber"));
        assert!(!custom.synonyms.contains(&"customid"), "the name itself");
        let school = docs
            .iter()
            .find(|d| d.field == Field::SchoolExternalId)
            .unwrap();
        assert!(school.synonyms.contains(&"schooldistrictexternalid"));
        assert_eq!(school.required, Required::Yes);
        assert_eq!(custom.required, Required::OneOf);
        assert_eq!(
            custom.required_words(),
            "Required: custom_id or email (at least one)"
        );
        assert_eq!(
            docs.iter().filter(|d| d.required == Required::Yes).count(),
            4
        );
    }

    #[test]
    fn vocabulary_values_come_with_every_accepted_spelling() {
        let docs = fields();
        let values = |f: Field| docs.iter().find(|d| d.field == f).unwrap().values.clone();
        let roles = values(Field::Role);
        assert_eq!(
            roles.iter().map(|v| v.value.as_str()).collect::<Vec<_>>(),
            ["Student", "Teacher", "Staff", "Administrator"]
        );
        for v in &roles {
            for s in &v.spellings {
                assert_eq!(Role::parse(s).map(|r| r.as_str()), Some(v.value.as_str()));
            }
        }
        assert!(roles[0].spellings.contains(&"pupil".to_string()));
        for v in values(Field::Grade) {
            for s in &v.spellings {
                let s = if s == "(blank)" { "" } else { s.as_str() };
                assert_eq!(
                    Grade::parse(s).map(|g| g.as_str()),
                    Some(v.value.as_str()),
                    "{s}"
                );
            }
        }
        let grades = values(Field::Grade);
        assert_eq!(grades.len(), Grade::LABELS.len());
        let k = grades.iter().find(|v| v.value == "K").unwrap();
        assert!(k.spellings.contains(&"kg".to_string()));
        let three = grades.iter().find(|v| v.value == "3").unwrap();
        assert_eq!(three.spellings, ["03", "grade 3"]);
        let twelve = grades.iter().find(|v| v.value == "12").unwrap();
        assert_eq!(twelve.spellings, ["grade 12"]);
        let status = values(Field::Status);
        assert!(status[0].spellings.contains(&"(blank)".to_string()));
        assert!(status[1].spellings.contains(&"disabled".to_string()));
        for v in &status {
            for s in &v.spellings {
                let s = if s == "(blank)" { "" } else { s.as_str() };
                assert_eq!(Status::parse(s).map(|x| x.as_str()), Some(v.value.as_str()));
            }
        }
        assert!(values(Field::Email).is_empty());
    }

    #[test]
    fn the_template_reads_and_validates_cleanly() {
        let bytes = template_csv("HS");
        assert!(bytes.starts_with(UTF8_BOM));
        let reader = open(std::io::Cursor::new(&bytes[..]), &ReadOptions::default()).unwrap();
        let header: Vec<String> = reader.headers().to_vec();
        assert_eq!(header, Field::ALL.map(|f| f.name().to_string()));
        let mapping = headers::resolve(&header, None, &[], &[]).expect("canonical header");
        assert!(mapping.columns.iter().all(Option::is_some));
        let schools: HashSet<String> = ["HS".to_string()].into();
        let v = Validator::new(&header, &mapping, &schools);
        let users: Vec<_> = reader
            .map(|r| v.validate(&r.unwrap().unwrap()).expect("a clean row"))
            .collect();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].last_name, "García");
        assert_eq!(users[0].role, Role::Student);
        assert_eq!(users[1].role, Role::Teacher);
        assert_eq!(users[1].line, 3);
    }
}
