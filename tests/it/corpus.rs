//! The malformed-input corpus: every file under `tests/corpus/` (and a few generated ones
//! too large to commit) goes through the real pipeline — `rollcall::ops::import_file`, or
//! the OneRoster set import for zips, as `rollcall import` does — into a district with a
//! known population. Each outcome must match `tests/corpus/expected.json`, and nothing
//! else in the database may change: the population's users, memberships, schools, audit
//! entries and mappings, and every other district, are fingerprinted before and after.
//!
//! `CORPUS_RECORD=1` prints the observed outcomes as JSON instead of checking them (to
//! review, then copy into the manifest).

use crate::helpers::*;
use rollcall::config::Config;
use rollcall::reconcile::run::{RunOptions, Summary};
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// Why the file is in the corpus.
    #[allow(dead_code)]
    about: String,
    /// `completed`, `completed_with_errors`, `needs_review` or `failed`.
    status: String,
    created: usize,
    errors: usize,
    /// A substring of the first error (the file error, or the first row error), if any.
    #[serde(default)]
    first_error: Option<String>,
    /// Made by the test (too large, or pointless, to commit).
    #[serde(default)]
    generated: bool,
    /// The upload size limit for this file, in MiB (default 20).
    #[serde(default)]
    max_upload_mb: Option<u64>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The files too large (or too silly) to keep in git.
fn generate(name: &str) -> Vec<u8> {
    const H: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade";
    match name {
        "ten_mb_single_line.csv" => {
            let mut v = b"custom_id,email,first_name,last_name,role,school_external_id,".to_vec();
            v.resize(10 * 1024 * 1024, b'A');
            v
        }
        "ten_thousand_duplicate_ids.csv" => {
            let mut s = format!("{H}\n");
            for i in 0..10_000 {
                s += &format!("DUP1,dup{i}@d.org,Dup,Licate{i},Student,HS,5\n");
            }
            s.into_bytes()
        }
        "over_the_size_limit.csv" => {
            let mut s = format!("{H}\n");
            let mut i = 0;
            while s.len() < 1024 * 1024 + 10 {
                s += &format!("L{i},l{i}@d.org,Long,List{i},Student,HS,5\n");
                i += 1;
            }
            s.into_bytes()
        }
        "zip_bomb.zip" | "zip_bomb_named_csv.csv" => zip_bomb(),
        other => panic!("no generator for {other}"),
    }
}

/// A OneRoster set whose users.csv inflates from ~20 KiB to 20 MiB of one byte.
fn zip_bomb() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("manifest.csv", opts).unwrap();
    zip.write_all(b"propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\nfile.orgs,bulk\n")
        .unwrap();
    zip.start_file("orgs.csv", opts).unwrap();
    zip.write_all(b"sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n")
        .unwrap();
    zip.start_file("users.csv", opts).unwrap();
    let chunk = vec![b'0'; 1024 * 1024];
    for _ in 0..20 {
        zip.write_all(&chunk).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// The known population: 20 students and a teacher from `roster.csv`, two schools.
const POPULATION: usize = 21;

async fn populate(app: &TestApp, dir: &Path, n: usize) -> Uuid {
    let d = app.district(&format!("corpus{n}")).await;
    app.school(d.id, "HS", "High School").await;
    app.school(d.id, "MS", "Middle School").await;
    let mut roster =
        String::from("custom_id,email,first_name,last_name,role,school_external_id,grade\n");
    for i in 1..=20 {
        let school = if i % 2 == 0 { "HS" } else { "MS" };
        roster += &format!(
            "P{i},pop{i}@d.org,Pop{i},Ulation,Student,{school},{}\n",
            i % 12 + 1
        );
    }
    roster += "000123,pop123@d.org,Zed,Zero,Teacher,HS,\n";
    let path = dir.join(format!("roster{n}")).join("roster.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, roster).unwrap();
    let s = run(app, d.id, &path, 20).await;
    assert_eq!((s.status.as_str(), s.created), ("completed", POPULATION));
    d.id
}

async fn run(app: &TestApp, district: Uuid, path: &Path, max_mb: u64) -> Summary {
    let mut config = Config::for_tests(path.parent().unwrap().to_path_buf());
    config.max_upload_mb = max_mb;
    if path.extension().is_some_and(|e| e == "zip") {
        rollcall::sync::import_set(&app.pool, &app.clock, &config, district, path, false)
            .await
            .expect("the set import finishes")
    } else {
        rollcall::ops::import_file(
            &app.pool,
            &app.clock,
            &config,
            district,
            path,
            None,
            false,
            false,
            RunOptions::default(),
        )
        .await
        .expect("the run finishes")
    }
}

/// Everything that existed before a file ran: it must be exactly as it was after.
async fn fingerprint(pool: &PgPool, district: Uuid, users: &[Uuid], last_audit: i64) -> String {
    sqlx::query_scalar(
        "SELECT md5(concat_ws('#',
            (SELECT string_agg(t::text, '|' ORDER BY t.id) FROM users t WHERE district_id = $1 AND id = ANY($2)),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM user_schools t WHERE district_id = $1 AND user_id = ANY($2)),
            (SELECT string_agg(t::text, '|' ORDER BY t.id) FROM schools t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t.id) FROM audit_log t WHERE district_id = $1 AND id <= $3),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM header_mappings t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM districts t WHERE id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM users t WHERE district_id <> $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM schools t WHERE district_id <> $1)))",
    )
    .bind(district)
    .bind(users)
    .bind(last_audit)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn first_error(pool: &PgPool, s: &Summary) -> Option<String> {
    if let Some(m) = &s.message {
        return Some(m.clone());
    }
    sqlx::query_scalar(
        "SELECT error FROM run_rows WHERE run_id = $1 AND error IS NOT NULL ORDER BY line LIMIT 1",
    )
    .bind(s.run_id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn every_corpus_file_has_its_expected_outcome_and_touches_nothing_else(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let manifest: BTreeMap<String, Expected> = serde_json::from_str(
        &std::fs::read_to_string(corpus_dir().join("expected.json")).expect("manifest"),
    )
    .expect("manifest parses");
    // Every committed file is in the manifest, and every entry has a file or a generator.
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "expected.json" && name != "README.md" {
            assert!(
                manifest.contains_key(&name),
                "{name} is not in expected.json"
            );
        }
    }
    let record = std::env::var("CORPUS_RECORD").is_ok();
    let work = tempfile::tempdir().unwrap();
    let mut observed = BTreeMap::new();
    let mut failures = Vec::new();
    for (n, (name, want)) in manifest.iter().enumerate() {
        let bytes = if want.generated {
            generate(name)
        } else {
            std::fs::read(corpus_dir().join(name)).unwrap_or_else(|_| panic!("{name} missing"))
        };
        let district = populate(&app, work.path(), n).await;
        let users: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1")
            .bind(district)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        let last_audit: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM audit_log")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let before = fingerprint(&app.pool, district, &users, last_audit).await;

        let dir = work.path().join(format!("file{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let s = run(&app, district, &path, want.max_upload_mb.unwrap_or(20)).await;
        let error = first_error(&app.pool, &s).await;
        observed.insert(
            name.clone(),
            serde_json::json!({"status": s.status, "created": s.created, "updated": s.updated,
                               "errors": s.errors, "first_error": error}),
        );

        let after = fingerprint(&app.pool, district, &users, last_audit).await;
        let (now, new_audit_on_old): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM users WHERE district_id = $1),
                    (SELECT count(*) FROM audit_log WHERE district_id = $1 AND id > $3 AND entity_id = ANY($2))",
        )
        .bind(district)
        .bind(&users)
        .bind(last_audit)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let mut problems = Vec::new();
        if before != after {
            problems.push("the population or another district changed".to_string());
        }
        if new_audit_on_old != 0 || s.updated + s.archived + s.restored != 0 {
            problems.push(format!(
                "existing users were touched: {} updated, {} archived, {} restored, {new_audit_on_old} audit entries",
                s.updated, s.archived, s.restored
            ));
        }
        if now as usize != users.len() + s.created {
            problems.push(format!(
                "{} users, expected {} + {}",
                now,
                users.len(),
                s.created
            ));
        }
        if !record {
            if (s.status.as_str(), s.created, s.errors)
                != (want.status.as_str(), want.created, want.errors)
            {
                problems.push(format!(
                    "got {} created={} errors={}, expected {} created={} errors={}",
                    s.status, s.created, s.errors, want.status, want.created, want.errors
                ));
            }
            match (&want.first_error, &error) {
                (Some(w), Some(e)) if e.contains(w.as_str()) => {}
                (None, None) => {}
                (w, e) => problems.push(format!("first error {e:?}, expected to contain {w:?}")),
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    if record {
        println!("{}", serde_json::to_string_pretty(&observed).unwrap());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "corpus: {} files ({} committed, {} generated) gave their expected outcomes",
        manifest.len(),
        manifest.values().filter(|e| !e.generated).count(),
        manifest.values().filter(|e| e.generated).count()
    );
}
