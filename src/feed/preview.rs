//! The mapper's preview: the first rows of a file as a column mapping reads them, each with
//! the importer's own verdict (fine, or the row error it would be).

use crate::domain::Field;
use crate::feed::headers::Mapping;
use crate::feed::read::RawRecord;
use crate::feed::validate::Validator;
use std::collections::HashSet;

/// How many rows the mapper previews.
pub const ROWS: usize = 5;

/// A few rows as mapped: one column per field the mapping provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub fields: Vec<Field>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    /// One per field of [`Preview::fields`], trimmed; a password shows as dots.
    pub values: Vec<String>,
    /// The row error this row would be, if any.
    pub problem: Option<String>,
}

/// Reads `records` (the file's first rows) through `mapping` as an upload would.
pub fn preview(
    headers: &[String],
    mapping: &Mapping,
    schools: &HashSet<String>,
    records: &[RawRecord],
) -> Preview {
    let present = mapping.present();
    let fields: Vec<Field> = Field::ALL
        .into_iter()
        .filter(|f| present.contains(*f))
        .collect();
    let validator = Validator::new(headers, mapping, schools);
    let rows = records
        .iter()
        .map(|rec| {
            let values = fields
                .iter()
                .map(|f| {
                    let v = match mapping.column_of(*f) {
                        Some(i) => rec.fields.get(i).map_or("", |c| c.trim()),
                        None => mapping.fixed_value(*f).unwrap_or(""),
                    };
                    if *f == Field::Password && !v.is_empty() {
                        "••••••".to_string()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            let problem = validator.validate(rec).err().map(|e| match e.column {
                Some(c) => format!("column \"{c}\": {}", e.message),
                None => e.message,
            });
            Row {
                line: rec.line,
                values,
                problem,
            }
        })
        .collect();
    Preview { fields, rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::headers::{SavedMapping, resolve};

    fn rec(line: u64, cells: &[&str]) -> RawRecord {
        RawRecord {
            line,
            fields: cells.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn rows_read_through_the_mapping_with_their_verdict() {
        let headers: Vec<String> = ["Ident", "Nom", "Prenom", "Secret"]
            .map(String::from)
            .to_vec();
        let saved = SavedMapping {
            columns: vec![
                ("Ident".into(), Some(Field::CustomId)),
                ("Nom".into(), Some(Field::LastName)),
                ("Prenom".into(), Some(Field::FirstName)),
                ("Secret".into(), Some(Field::Password)),
            ],
            fixed: vec![
                (Field::Role, "Student".into()),
                (Field::SchoolExternalId, "HS".into()),
            ],
        };
        let mapping = resolve(&headers, Some(&saved), &[], &[]).unwrap();
        let schools: HashSet<String> = ["HS".to_string()].into();
        let p = preview(
            &headers,
            &mapping,
            &schools,
            &[
                rec(2, &["1001", " Lee ", "Ann", "pw-1"]),
                rec(4, &["1002", "", "Bo", ""]),
            ],
        );
        assert_eq!(
            p.fields,
            [
                Field::CustomId,
                Field::FirstName,
                Field::LastName,
                Field::Role,
                Field::SchoolExternalId,
                Field::Password
            ]
        );
        assert_eq!(
            p.rows[0].values,
            ["1001", "Ann", "Lee", "Student", "HS", "••••••"]
        );
        assert_eq!(p.rows[0].problem, None);
        assert_eq!(p.rows[1].line, 4);
        assert_eq!(p.rows[1].values[5], "");
        assert_eq!(
            p.rows[1].problem.as_deref(),
            Some("column \"Nom\": last_name is required")
        );
    }
}
