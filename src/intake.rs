//! How a file asks to be run, decided once for every way in (upload form, API, drop folder,
//! command line): its options parsed from text (`scope`, `dry_run`), and what its header says
//! about it — a fixed error file (it carries the `Error` column) is a patch by default and
//! files the users it creates under the source of the run whose error file it is (SPEC §4).

use crate::db;
pub use crate::domain::ErrorFileOf;
use crate::domain::{Scope, Source};
use crate::feed::headers;
use sqlx::PgPool;
use uuid::Uuid;

/// A value of an option that is none of the allowed ones (the message names them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOption(pub String);

/// `scope`: `source`, `district` or `patch` (case and blanks ignored); blank = not given.
pub fn parse_scope(value: &str) -> Result<Option<Scope>, BadOption> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    Scope::parse(value).map(Some).ok_or_else(|| {
        BadOption(format!(
            "scope \"{}\" is not one of: {}",
            value.trim(),
            allowed_scopes()
        ))
    })
}

/// `source, district, patch`.
pub fn allowed_scopes() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

/// The command line's `--scope` (clap value parser).
pub fn scope_arg(value: &str) -> Result<Scope, String> {
    match parse_scope(value) {
        Ok(Some(scope)) => Ok(scope),
        Ok(None) => Err(format!("give one of: {}", allowed_scopes())),
        Err(e) => Err(e.to_string()),
    }
}

/// `dry_run`: `true`/`1`/`on`/`yes` or `false`/`0`/`off`/`no`/blank (case ignored), the same
/// on every way in (the form's checkbox sends `on`).
pub fn parse_dry_run(value: &str) -> Result<bool, BadOption> {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(BadOption(format!(
            "dry_run \"{}\" is not one of: true, false (or 1, 0, on, off, yes, no)",
            value.trim()
        ))),
    }
}

/// Does the header carry the `Error` column of our own error file?
pub fn has_error_column(headers: &[String]) -> bool {
    headers.iter().any(|h| headers::fold(h) == "error")
}

/// What a file's run will be: its source, scope, and where a fixed error file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub source_key: String,
    pub scope: Scope,
    pub error_file_of: Option<ErrorFileOf>,
    /// Said on the run page (e.g. why a fixed error file stayed under its own name).
    pub note: Option<String>,
}

/// The part of a run's file name its downloads are named after: `students.csv` →
/// `students` (our error file is `<stem>-errors.csv`). Characters a file name may not safely
/// carry become `_`.
pub fn download_stem(file_name: &str) -> String {
    let base = strip_extension(file_name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn strip_extension(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for ext in [".csv", ".txt", ".tsv"] {
        if lower.ends_with(ext) {
            return &name[..name.len() - ext.len()];
        }
    }
    name
}

/// The stem of the run an error file came from, read from the error file's name: the
/// extension, a browser's copy suffix (` (1)`, ` - Copy`) and our `-errors` dropped.
pub fn parent_stem(file_name: &str) -> String {
    let mut s = strip_extension(file_name.trim()).trim().to_string();
    loop {
        let before = s.clone();
        // ` (1)`, `(12)`
        if s.ends_with(')')
            && let Some(open) = s.rfind('(')
            && s[open + 1..s.len() - 1].chars().all(|c| c.is_ascii_digit())
            && open + 2 < s.len()
        {
            s.truncate(open);
        }
        for copy in [" - copy", " copy", "-copy", "_copy"] {
            if s.to_ascii_lowercase().ends_with(copy) {
                s.truncate(s.len() - copy.len());
            }
        }
        s = s.trim_end().to_string();
        if s == before {
            break;
        }
    }
    for suffix in ["-errors", "_errors", " errors", "-error", "_error"] {
        if s.to_ascii_lowercase().ends_with(suffix) {
            s.truncate(s.len() - suffix.len());
            break;
        }
    }
    download_stem(&s)
}

/// Decide a file's source and scope. `explicit_*` are what the sender gave (the form, API
/// field, CLI flag); `headers` the file's header when it could be read.
///
/// A file with the `Error` column and no explicit scope is a patch; with no explicit source
/// it belongs to the source of the district's latest run whose error file its name names
/// (`students-errors (1).csv` → the latest run of a file whose downloads are `students-…`,
/// preferring one that had errors). Without such a run it keeps its own name, and says so.
pub async fn decide(
    pool: &PgPool,
    district_id: Uuid,
    file_name: &str,
    headers: Option<&[String]>,
    explicit_source: Option<&str>,
    explicit_scope: Option<Scope>,
) -> sqlx::Result<Decided> {
    let given_source = explicit_source
        .filter(|s| !s.trim().is_empty())
        .map(crate::storage::clean_file_name);
    let error_file = headers.is_some_and(has_error_column);
    let scope = explicit_scope.unwrap_or(if error_file {
        Scope::Patch
    } else {
        Scope::Source
    });
    if !error_file || given_source.is_some() {
        return Ok(Decided {
            source_key: given_source.unwrap_or_else(|| file_name.to_string()),
            scope,
            error_file_of: None,
            note: None,
        });
    }
    let stem = parent_stem(file_name);
    let candidates = db::runs::recent_file_runs(pool, district_id, 500).await?;
    let matching: Vec<&db::runs::FileRun> = candidates
        .iter()
        .filter(|r| download_stem(&r.file_name) == stem)
        .collect();
    let parent = matching
        .iter()
        .find(|r| r.errors > 0)
        .or_else(|| matching.first())
        .copied();
    Ok(match parent {
        Some(p) => Decided {
            source_key: match Source::from_db(&p.source) {
                Source::File(key) => key,
                _ => file_name.to_string(),
            },
            scope,
            error_file_of: Some(ErrorFileOf {
                run_id: p.id,
                file_name: p.file_name.clone(),
            }),
            note: None,
        },
        None => Decided {
            source_key: file_name.to_string(),
            scope,
            error_file_of: None,
            note: Some(format!(
                "This file has an Error column, but no earlier upload of this district matches its name (looked for a file named {stem}.csv), so the users it creates belong to {file_name}. Give the original file's source key with the upload to file them there."
            )),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_parsed_once_with_a_clear_error() {
        assert_eq!(parse_scope(""), Ok(None));
        assert_eq!(parse_scope(" District "), Ok(Some(Scope::District)));
        assert_eq!(parse_scope("patch"), Ok(Some(Scope::Patch)));
        let e = parse_scope("everything").unwrap_err().to_string();
        assert!(
            e.contains("everything") && e.contains("source, district, patch"),
            "{e}"
        );
        assert_eq!(scope_arg("source"), Ok(Scope::Source));
        assert!(
            scope_arg("x")
                .unwrap_err()
                .contains("source, district, patch")
        );
    }

    #[test]
    fn dry_run_accepts_the_same_words_everywhere() {
        for v in ["true", "1", "on", "YES", " True "] {
            assert_eq!(parse_dry_run(v), Ok(true), "{v}");
        }
        for v in ["false", "0", "off", "no", ""] {
            assert_eq!(parse_dry_run(v), Ok(false), "{v}");
        }
        assert!(
            parse_dry_run("maybe")
                .unwrap_err()
                .to_string()
                .contains("true, false")
        );
    }

    #[test]
    fn an_error_files_name_leads_back_to_its_run() {
        assert_eq!(download_stem("students.csv"), "students");
        assert_eq!(download_stem("my students.CSV"), "my_students");
        assert_eq!(parent_stem("students-errors.csv"), "students");
        assert_eq!(parent_stem("students-errors (1).csv"), "students");
        assert_eq!(parent_stem("students-errors(2).csv"), "students");
        assert_eq!(parent_stem("students-errors - Copy.csv"), "students");
        assert_eq!(parent_stem("my_students-errors.csv"), "my_students");
        assert_eq!(parent_stem("students.csv"), "students");
        assert_eq!(
            parent_stem("students-errors-errors.csv"),
            "students-errors",
            "an error file of a fixed error file leads to that run"
        );
    }

    #[test]
    fn the_error_column_is_found_however_it_is_spelled() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(has_error_column(&h(&["email", "Error"])));
        assert!(has_error_column(&h(&["email", " ERROR "])));
        assert!(!has_error_column(&h(&["email", "errors_seen"])));
    }
}
