//! The schools CSV: `external_id,name` (also `SIS ID,Name` and similar), for districts with
//! hundreds of buildings. All-or-nothing: any bad row stops the import with every problem
//! listed by line and column.

use std::collections::HashMap;

const EXTERNAL_ID: &[&str] = &[
    "externalid",
    "schoolexternalid",
    "sisid",
    "schoolid",
    "schoolsisid",
    "buildingid",
    "building",
    "sourcedid",
    "id",
    "code",
    "schoolcode",
];
const NAME: &[&str] = &["name", "schoolname", "buildingname"];

fn fold(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Decode as UTF-8 (BOM stripped) or, when that fails, Windows-1252.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, Vec<String>> {
    let text = decode(bytes);
    if text.trim().is_empty() {
        return Err(vec!["the file is empty".into()]);
    }
    let first = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (first.matches(*d as char).count(), *d == b','))
        .unwrap_or(b',');
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(fold).collect(),
        Err(e) => return Err(vec![format!("the header line cannot be read: {e}")]),
    };
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h == n))
    };
    let (Some(ext_col), Some(name_col)) = (find(EXTERNAL_ID), find(NAME)) else {
        return Err(vec![format!(
            "the file needs the columns external_id and name; it has: {}",
            headers.join(", ")
        )]);
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!(
                    "line {}: {e}",
                    e.position().map_or(0, |p| p.line())
                ));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let ext = rec.get(ext_col).unwrap_or("").trim().to_string();
        let name = rec.get(name_col).unwrap_or("").trim().to_string();
        if ext.is_empty() {
            errors.push(format!(
                "line {line}, column \"external_id\": the external ID is blank"
            ));
        } else if ext.chars().count() > 100 {
            errors.push(format!(
                "line {line}, column \"external_id\": longer than 100 characters"
            ));
        } else if name.is_empty() {
            errors.push(format!("line {line}, column \"name\": the name is blank"));
        } else if name.chars().count() > 200 {
            errors.push(format!(
                "line {line}, column \"name\": longer than 200 characters"
            ));
        } else if let Some(prev) = seen.insert(ext.clone(), line) {
            errors.push(format!(
                "line {line}, column \"external_id\": \"{ext}\" also appears on line {prev}"
            ));
        } else {
            rows.push((ext, name));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec!["the file has a header but no schools".into()]);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_sds_headers() {
        let rows = parse(b"external_id,name\r\nS1,North High\r\nS2,\"South, Middle\"\r\n").unwrap();
        assert_eq!(
            rows,
            vec![
                ("S1".into(), "North High".into()),
                ("S2".into(), "South, Middle".into())
            ]
        );
        let rows = parse(b"SIS ID,Name,School Number\n10001,Contoso High,1\n").unwrap();
        assert_eq!(rows, vec![("10001".into(), "Contoso High".into())]);
    }

    #[test]
    fn semicolons_bom_and_windows_1252() {
        let rows = parse(b"\xEF\xBB\xBFexternal_id;name\nS1;Ecole\n").unwrap();
        assert_eq!(rows[0].0, "S1");
        let rows = parse(b"external_id,name\nS1,Jos\xe9 Mart\xed\n").unwrap();
        assert_eq!(rows[0].1, "Jos\u{e9} Mart\u{ed}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let errs = parse(b"external_id,name\nS1,A\n,B\nS3,\nS1,C\n").unwrap_err();
        assert_eq!(
            errs,
            vec![
                "line 3, column \"external_id\": the external ID is blank",
                "line 4, column \"name\": the name is blank",
                "line 5, column \"external_id\": \"S1\" also appears on line 2",
            ]
        );
        assert!(parse(b"").unwrap_err()[0].contains("empty"));
        assert!(parse(b"foo,bar\n1,2\n").unwrap_err()[0].contains("external_id and name"));
        assert!(parse(b"external_id,name\n").unwrap_err()[0].contains("no schools"));
    }
}
