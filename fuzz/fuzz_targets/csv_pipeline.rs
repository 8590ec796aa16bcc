//! Bytes → `feed::read::open` → `headers::resolve` → `Validator::validate` for every record
//! (and the in-file duplicate check): whatever the bytes, no panic, and every failure is a
//! file error or a row error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::domain::Field;
use rollcall::feed::{headers, read, validate};
use std::collections::HashSet;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = read::ReadOptions::with_max_bytes(1024 * 1024);
    let Ok(reader) = read::open(Cursor::new(data), &opts) else {
        return;
    };
    let heads = reader.headers().to_vec();
    // With no saved mapping, and again with fixed values filling what a file may lack (the
    // mapper's way), so that files without every column still reach the validator.
    let fixed = [
        (Field::Role, "Student".to_string()),
        (Field::SchoolExternalId, "HS".to_string()),
    ];
    let mapping = headers::resolve(&heads, None, &[], &[])
        .or_else(|_| headers::resolve(&heads, None, &[], &fixed));
    let _ = headers::signature(&heads);
    let _ = headers::propose(&heads);
    let schools: HashSet<String> = ["HS", "MS", "001"].iter().map(|s| s.to_string()).collect();
    let mut rows = Vec::new();
    match &mapping {
        Ok(mapping) => {
            let _ = mapping.ignored_columns(&heads);
            let v = validate::Validator::new(&heads, mapping, &schools);
            for item in reader {
                match item {
                    Err(_) => break, // a file error stops the file
                    Ok(Err(issue)) => rows.push(Err(validate::RowError::from(issue))),
                    Ok(Ok(rec)) => rows.push(v.validate(&rec)),
                }
            }
            v.mark_duplicates(&mut rows);
        }
        Err(e) => {
            let _ = e.to_string();
            for item in reader {
                if item.is_err() {
                    break;
                }
            }
        }
    }
    for r in &rows {
        if let Err(e) = r {
            let _ = e.to_string();
        }
    }
});
