//! The reconcile engine against real PostgreSQL: every rule of SPEC §4, the shared test
//! data, malformed files, round trips, and a failure mid-apply.

use crate::helpers::*;
use rollcall::config::Config;
use rollcall::reconcile::run::{RunOptions, Summary};
use sqlx::PgPool;
use std::path::PathBuf;
use uuid::Uuid;

const HEADER: &str =
    "custom_id,email,first_name,last_name,role,school_external_id,grade,position,status";

struct Env {
    app: TestApp,
    district: Uuid,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let app = TestApp::spawn(pool).await;
        let d = app.district("springfield").await;
        app.school(d.id, "HS", "High School").await;
        app.school(d.id, "MS", "Middle School").await;
        Env {
            app,
            district: d.id,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    async fn import_with(
        &self,
        name: &str,
        content: &str,
        dry_run: bool,
        approve: bool,
        options: RunOptions,
    ) -> Summary {
        let path = self.file(name, content.as_bytes());
        let config = Config::for_tests(self.dir.path().to_path_buf());
        rollcall::ops::import_file(
            &self.app.pool,
            &self.app.clock,
            &config,
            self.district,
            &path,
            None,
            dry_run,
            approve,
            options,
        )
        .await
        .expect("run finishes")
    }

    async fn import(&self, name: &str, content: &str) -> Summary {
        self.import_with(name, content, false, false, RunOptions::default())
            .await
    }

    async fn import_path(&self, path: &std::path::Path, options: RunOptions) -> Summary {
        let config = Config::for_tests(self.dir.path().to_path_buf());
        rollcall::ops::import_file(
            &self.app.pool,
            &self.app.clock,
            &config,
            self.district,
            path,
            None,
            false,
            false,
            options,
        )
        .await
        .expect("run finishes")
    }

    /// A fingerprint of everything a run may change (users, memberships, audit log).
    async fn snapshot(&self) -> String {
        sqlx::query_scalar(
            "SELECT md5(coalesce((SELECT string_agg(u::text, '|' ORDER BY u.id) FROM users u), '') ||
                        coalesce((SELECT string_agg(m::text, '|' ORDER BY m.user_id, m.school_id) FROM user_schools m), '') ||
                        coalesce((SELECT string_agg(a.id::text || a.action, '|' ORDER BY a.id) FROM audit_log a), '') ||
                        coalesce((SELECT string_agg(s::text, '|' ORDER BY s.id) FROM schools s), ''))",
        )
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn user(&self, custom_id: &str) -> UserRow {
        sqlx::query_as(
            "SELECT id, custom_id, email, username, first_name, last_name, role, grade, status, archived_at IS NOT NULL AS archived,
                    source, prevent_archiving, updated_at
             FROM users WHERE district_id = $1 AND custom_id = $2",
        )
        .bind(self.district)
        .bind(custom_id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn count(&self, sql_where: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM users WHERE district_id = $1 AND {sql_where}"
        ))
        .bind(self.district)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn run_rows(&self, run: Uuid) -> Vec<(i64, String, Option<String>, Option<String>)> {
        // Every row's result: `run_rows`, and the plainly unchanged rows kept in `run_unchanged`.
        sqlx::query_as(
            "SELECT line, outcome, error, temp_password FROM run_rows WHERE run_id = $1
             UNION ALL
             SELECT x.line, 'unchanged', NULL, NULL FROM run_unchanged c,
                    unnest(c.lines, c.users, c.matched_by) AS x(line, user_id, matched_by)
             WHERE c.run_id = $1
             ORDER BY line",
        )
        .bind(run)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)]
struct UserRow {
    id: Uuid,
    custom_id: Option<String>,
    email: Option<String>,
    username: String,
    first_name: String,
    last_name: String,
    role: String,
    grade: String,
    status: String,
    archived: bool,
    source: String,
    prevent_archiving: bool,
    updated_at: time::OffsetDateTime,
}

fn students(n: usize) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,,Active\n");
    }
    s
}

fn counts(s: &Summary) -> (usize, usize, usize, usize, usize, usize) {
    (
        s.created,
        s.updated,
        s.unchanged,
        s.restored,
        s.archived,
        s.errors,
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn creates_then_reupload_is_a_no_op(pool: PgPool) {
    let env = Env::new(pool).await;
    let s = env.import("students.csv", &students(20)).await;
    assert_eq!(s.status, "completed");
    assert_eq!(counts(&s), (20, 0, 0, 0, 0, 0));
    assert_eq!(
        env.count("source = 'file:students.csv' AND archived_at IS NULL")
            .await,
        20
    );
    let before = env.snapshot().await;
    let ann = env.user("S1").await;

    let again = env.import("students.csv", &students(20)).await;
    assert_eq!(counts(&again), (0, 0, 20, 0, 0, 0));
    assert_eq!(
        env.snapshot().await,
        before,
        "unchanged rows write nothing, not even audit entries"
    );
    assert_eq!(env.user("S1").await.updated_at, ann.updated_at);
    // Results that cost nothing when nothing changed (issue 19): no `run_rows` row, one
    // `run_unchanged` row naming the 20 users in line order.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM run_rows WHERE run_id = $1")
        .bind(again.run_id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let (lines, users, matched): (Vec<i64>, Vec<Uuid>, Vec<String>) =
        sqlx::query_as("SELECT lines, users, matched_by FROM run_unchanged WHERE run_id = $1")
            .bind(again.run_id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(lines, (2..=21).collect::<Vec<i64>>());
    assert_eq!(users[0], ann.id);
    assert!(matched.iter().all(|m| m == "custom_id"), "{matched:?}");
    assert_eq!(env.run_rows(again.run_id).await.len(), 20);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_large_first_import_refreshes_the_planner_statistics(pool: PgPool) {
    // Before this, a re-import right after a first import of 100,000 users (before
    // autovacuum had analysed them) read the district with a join planned for an empty
    // table and ran for over ten minutes. The run now analyses what it created.
    let env = Env::new(pool).await;
    let s = env.import("students.csv", &students(1_200)).await;
    assert_eq!(s.created, 1_200);
    let tuples: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'users'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(tuples >= 1_200.0, "users analysed: {tuples}");
    let again = env.import("students.csv", &students(1_200)).await;
    assert_eq!(counts(&again), (0, 0, 1_200, 0, 0, 0));
}

#[sqlx::test(migrations = "./migrations")]
async fn new_accounts_get_unique_usernames_and_one_time_passwords(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = format!(
        "{HEADER}\nA1,a1@d.org,José,García,Student,HS,K,,\nA2,a2@d.org,Jose,Garcia,Student,HS,KG,,\nA3,,Jose,Garcia,Student,MS,PK,,\n"
    );
    let s = env.import("students.csv", &file).await;
    assert_eq!(counts(&s), (3, 0, 0, 0, 0, 0));
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT username FROM users WHERE custom_id LIKE 'A%' ORDER BY custom_id",
    )
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(names, vec!["jose.garcia", "jose.garcia2", "jose.garcia3"]);
    assert_eq!(env.user("A2").await.grade, "K");
    assert_eq!(env.user("A3").await.grade, "PreK");
    // The completed file's temporary password signs in, once, then forces a change.
    let rows = env.run_rows(s.run_id).await;
    let temp = rows[0]
        .3
        .clone()
        .expect("a temporary password for an account created without one");
    let c = env.app.client();
    let r = c.sign_in("jose.garcia", &temp).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
}

#[sqlx::test(migrations = "./migrations")]
async fn match_by_custom_id_keeps_guid_and_history_when_email_changes(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(12)).await;
    let before = env.user("S3").await;
    let changed = students(12).replace("S3,s3@d.org", "S3,new3@d.org");
    let s = env.import("students.csv", &changed).await;
    assert_eq!(counts(&s), (0, 1, 11, 0, 0, 0));
    let after = env.user("S3").await;
    assert_eq!(after.id, before.id);
    assert_eq!(after.email.as_deref(), Some("new3@d.org"));
    let audit: Vec<(String, Option<serde_json::Value>, Option<serde_json::Value>)> =
        sqlx::query_as(
            "SELECT action, before, after FROM audit_log WHERE entity_id = $1 ORDER BY id",
        )
        .bind(after.id)
        .fetch_all(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(audit.len(), 2, "created, then updated");
    assert_eq!(audit[1].0, "user.update");
    assert_eq!(audit[1].1, Some(serde_json::json!({ "email": "s3@d.org" })));
    assert_eq!(
        audit[1].2,
        Some(serde_json::json!({ "email": "new3@d.org" }))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn without_custom_id_an_email_change_is_a_new_user_and_the_old_one_is_archived(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = |email: &str| {
        format!("email,first_name,last_name,role,school_external_id\n{email},Kim,Park,Teacher,HS\n")
    };
    env.import("adults.csv", &file("kim@d.org")).await;
    let old: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'kim@d.org'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    let s = env.import("adults.csv", &file("kim.park@d.org")).await;
    assert_eq!(counts(&s), (1, 0, 0, 0, 1, 0));
    let archived: bool =
        sqlx::query_scalar("SELECT archived_at IS NOT NULL FROM users WHERE id = $1")
            .bind(old)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert!(archived);
}

#[sqlx::test(migrations = "./migrations")]
async fn missing_users_are_archived_except_protected_and_other_sources(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(20)).await;
    env.import(
        "adults.csv",
        &format!("{HEADER}\nT1,t1@d.org,Tom,Hall,Teacher,HS,,Math,\n"),
    )
    .await;
    sqlx::query("UPDATE users SET prevent_archiving = true WHERE custom_id = 'S20'")
        .execute(&env.app.pool)
        .await
        .unwrap();
    // Drop S19 and S20 (10% of 20 is 2: not more than the threshold).
    let s = env.import("students.csv", &students(18)).await;
    assert_eq!(s.status, "completed");
    assert_eq!(counts(&s), (0, 0, 18, 0, 1, 0));
    assert!(env.user("S19").await.archived);
    assert!(
        !env.user("S20").await.archived,
        "prevent_archiving respected"
    );
    assert!(
        !env.user("T1").await.archived,
        "users of other sources are never touched"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_returning_archived_user_is_restored_with_the_same_guid(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(20)).await;
    let guid = env.user("S20").await.id;
    env.import("students.csv", &students(19)).await;
    assert!(env.user("S20").await.archived);
    let s = env.import("students.csv", &students(20)).await;
    assert_eq!(counts(&s), (0, 0, 19, 1, 0, 0));
    let back = env.user("S20").await;
    assert!(!back.archived);
    assert_eq!(back.id, guid);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_row_with_an_error_leaves_its_user_exactly_as_it_was(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(20)).await;
    let before = env.user("S5").await;
    // S5's row now has a bad grade and a changed name: skipped, and never archived for it.
    let file = students(20).replace(
        "S5,s5@d.org,Ann5,Lee,Student,HS,9",
        "S5,s5@d.org,Changed,Lee,Student,HS,13",
    );
    let s = env.import("students.csv", &file).await;
    assert_eq!(s.status, "completed_with_errors");
    assert_eq!(counts(&s), (0, 0, 19, 0, 0, 1));
    let after = env.user("S5").await;
    assert_eq!(
        (after.first_name.as_str(), after.archived, after.updated_at),
        ("Ann5", false, before.updated_at)
    );
    let rows = env.run_rows(s.run_id).await;
    let err = rows.iter().find(|r| r.1 == "error").unwrap();
    assert_eq!(err.0, 6, "line 6 of the file");
    assert_eq!(
        err.2.as_deref(),
        Some(
            "line 6, column \"grade\": grade \"13\" is not one of Unspecified, PreK, K, 1-12, Other"
        )
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn unmapped_columns_are_ignored_and_listed(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = "custom_id,first_name,last_name,role,school_external_id,locker,bus_route\nS1,Ann,Lee,Student,HS,12,7\n";
    let s = env.import("students.csv", file).await;
    assert_eq!(s.created, 1);
    assert_eq!(s.ignored_columns, vec!["locker", "bus_route"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_manual_user_in_a_feed_is_adopted_and_stays_protected(pool: PgPool) {
    let env = Env::new(pool).await;
    env.app.member(env.district, "mteacher", "user", &[]).await;
    sqlx::query(
        "UPDATE users SET custom_id = 'M1', prevent_archiving = true WHERE username = 'mteacher'",
    )
    .execute(&env.app.pool)
    .await
    .unwrap();
    let s = env
        .import(
            "adults.csv",
            &format!("{HEADER}\nM1,mteacher@example.org,Test,mteacher,Teacher,HS,,Science,\n"),
        )
        .await;
    assert_eq!(counts(&s), (0, 1, 0, 0, 0, 0));
    let u = env.user("M1").await;
    assert_eq!(u.source, "file:adults.csv");
    assert!(u.prevent_archiving);
    // Dropped from the feed, still protected until an admin unchecks it.
    let s = env
        .import(
            "adults.csv",
            &format!("{HEADER}\nX1,x1@d.org,Xi,Yu,Teacher,HS,,,\n"),
        )
        .await;
    assert_eq!(s.archived, 0);
    assert!(!env.user("M1").await.archived);
}

#[sqlx::test(migrations = "./migrations")]
async fn sync_owned_users_are_refused_in_files(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(1)).await;
    sqlx::query("UPDATE users SET source = 'sync:' || gen_random_uuid()::text")
        .execute(&env.app.pool)
        .await
        .unwrap();
    let s = env
        .import("other.csv", &students(1).replace("Ann1", "Changed"))
        .await;
    assert_eq!(counts(&s), (0, 0, 0, 0, 0, 1));
    let rows = env.run_rows(s.run_id).await;
    assert!(
        rows[0]
            .2
            .as_deref()
            .unwrap()
            .contains("provisioned by roster sync")
    );
    assert_eq!(env.user("S1").await.first_name, "Ann1");
}

#[sqlx::test(migrations = "./migrations")]
async fn mass_archive_stops_in_needs_review_until_approved(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(50)).await;
    let before = env.snapshot().await;
    // A truncated file: 10 of 50 rows.
    let s = env.import("students.csv", &students(10)).await;
    assert_eq!(s.status, "needs_review");
    assert_eq!(s.archived, 40);
    assert_eq!(
        s.message.as_deref(),
        Some("would archive 40 of 50 users of students.csv (80%)")
    );
    assert_eq!(env.snapshot().await, before, "nothing applied");
    let preview: i64 = sqlx::query_scalar("SELECT count(*) FROM run_archives WHERE run_id = $1")
        .bind(s.run_id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(preview, 40, "the archive list is kept for the review page");

    let approved = env
        .import_with(
            "students.csv",
            &students(10),
            false,
            true,
            RunOptions::default(),
        )
        .await;
    assert_eq!(approved.status, "completed");
    assert_eq!(env.count("archived_at IS NOT NULL").await, 40);
}

#[sqlx::test(migrations = "./migrations")]
async fn mass_update_stops_in_needs_review(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(20)).await;
    let before = env.snapshot().await;
    let s = env
        .import(
            "students.csv",
            &students(20).replace(",9,,Active", ",10,,Active"),
        )
        .await;
    assert_eq!(s.status, "needs_review");
    assert!(
        s.message
            .as_deref()
            .unwrap()
            .contains("would update 20 of 20"),
        "{:?}",
        s.message
    );
    assert_eq!(env.snapshot().await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn guard_thresholds_are_per_district(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(50)).await;
    // Every student is in HS: the per-school guard (80% of HS) is raised too.
    sqlx::query("UPDATE districts SET guard_archive_pct = 90, guard_school_pct = 90")
        .execute(&env.app.pool)
        .await
        .unwrap();
    let s = env.import("students.csv", &students(10)).await;
    assert_eq!(s.status, "completed", "80% is under this district's 90%");
    assert_eq!(s.archived, 40);
}

#[sqlx::test(migrations = "./migrations")]
async fn dry_run_writes_nothing(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(5)).await;
    let before = env.snapshot().await;
    let s = env
        .import_with(
            "students.csv",
            &students(8),
            true,
            false,
            RunOptions::default(),
        )
        .await;
    assert_eq!(counts(&s), (3, 0, 5, 0, 0, 0));
    assert!(s.dry_run);
    assert_eq!(env.snapshot().await, before);
    let temps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM run_rows WHERE run_id = $1 AND temp_password IS NOT NULL",
    )
    .bind(s.run_id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(temps, 0, "no passwords for accounts that do not exist");
}

#[sqlx::test(migrations = "./migrations")]
async fn mapping_fixed_values_and_missing_required_columns(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = "Student Number,Given Name,Surname,Homeroom\n1001,Ann,Lee,4B\n";
    let before = env.snapshot().await;
    let s = env.import("sis.csv", file).await;
    assert_eq!(s.status, "failed");
    let msg = s.message.unwrap();
    assert!(msg.contains("required fields not mapped"), "{msg}");
    assert!(msg.contains("Homeroom"), "lists the columns it saw: {msg}");
    assert_eq!(env.snapshot().await, before);

    let options = RunOptions {
        overrides: vec![(
            "Student Number".into(),
            Some(rollcall::domain::Field::CustomId),
        )],
        fixed: vec![
            (rollcall::domain::Field::Role, "Student".into()),
            (rollcall::domain::Field::SchoolExternalId, "MS".into()),
        ],
        save_mapping: true,
        ..Default::default()
    };
    let s = env
        .import_with("sis.csv", file, false, false, options)
        .await;
    assert_eq!(counts(&s), (1, 0, 0, 0, 0, 0), "{:?}", s.message);
    let u = env.user("1001").await;
    assert_eq!((u.first_name.as_str(), u.role.as_str()), ("Ann", "Student"));
    // The saved mapping is reused for the next file with the same headers.
    let s = env
        .import("sis.csv", &format!("{file}1002,Bo,Kim,5A\n"))
        .await;
    assert_eq!(counts(&s), (1, 0, 1, 0, 0, 0), "{:?}", s.message);
}

#[sqlx::test(migrations = "./migrations")]
async fn malformed_files_fail_clearly_and_change_nothing(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(3)).await;
    let before = env.snapshot().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", vec![], "the file is empty"),
        (
            "header.csv",
            format!("{HEADER}\n").into_bytes(),
            "has a header but no rows",
        ),
        (
            "binary.csv",
            vec![0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 1, 2, 3],
            "not a CSV file",
        ),
        (
            "dup.csv",
            b"email,first_name,last_name,E-mail\na@b.org,A,B,c@d.org\n".to_vec(),
            "appears twice",
        ),
        (
            "cols.csv",
            b"first_name,last_name\nAnn,Lee\n".to_vec(),
            "required fields not mapped",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = env.file(name, &bytes);
        let s = env.import_path(&path, RunOptions::default()).await;
        assert_eq!(s.status, "failed", "{name}");
        assert!(
            s.message.as_deref().unwrap_or("").contains(expected),
            "{name}: {:?}",
            s.message
        );
        assert_eq!(env.snapshot().await, before, "{name} changed nothing");
    }
    // Over the size limit.
    let path = env.file("big.csv", &vec![b'a'; 300 * 1024 * 1024 / 100]);
    let mut config = Config::for_tests(env.dir.path().to_path_buf());
    config.max_upload_mb = 1;
    let s = rollcall::ops::import_file(
        &env.app.pool,
        &env.app.clock,
        &config,
        env.district,
        &path,
        None,
        false,
        false,
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(s.status, "failed");
    assert!(s.message.unwrap().contains("larger than the limit"));
    // A whole file of a deleted source would archive everyone: it only needs review.
    assert_eq!(env.snapshot().await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn shared_test_data_oneroster_users_and_adobe_fixture(pool: PgPool) {
    let env = Env::new(pool).await;
    env.app
        .school(env.district, "255901001", "Grand Bend High School")
        .await;
    let users = PathBuf::from("../shared/test-data/edfi-lms-toolkit/oneroster-1.1/users.csv");
    let s = env.import_path(&users, RunOptions::default()).await;
    assert_eq!(counts(&s), (10, 0, 0, 0, 0, 0), "{:?}", s.message);
    assert_eq!(env.count("role = 'Student' AND grade = '9'").await, 8);
    assert_eq!(env.count("role = 'Teacher'").await, 2);
    let s = env.import_path(&users, RunOptions::default()).await;
    assert_eq!(counts(&s), (0, 0, 10, 0, 0, 0));

    // Adobe's broken fixture: no role or school column (fixed values supply them). Every bad
    // row is an error naming its line; the good rows go in. (pwizard and swizard have no
    // fields beyond the 10-column header, so under SPEC §3 they are good rows too.)
    let adobe =
        PathBuf::from("../shared/test-data/adobe-user-sync/tests-fixture/test_csv_data.csv");
    let options = RunOptions {
        fixed: vec![
            (rollcall::domain::Field::Role, "Staff".into()),
            (rollcall::domain::Field::SchoolExternalId, "HS".into()),
        ],
        ..Default::default()
    };
    let s = env.import_path(&adobe, options).await;
    assert_eq!(s.status, "completed_with_errors");
    assert_eq!((s.created, s.errors), (5, 6));
    for email in [
        "jsmith@example.com",
        "jdoe@example.com",
        "rroe@example.com",
        "pwizard@example.com",
        "swizard@example.com",
    ] {
        assert_eq!(env.count(&format!("email = '{email}'")).await, 1, "{email}");
    }
    let errors: Vec<(i64, String, Option<String>, Option<String>)> = env
        .run_rows(s.run_id)
        .await
        .into_iter()
        .filter(|r| r.1 == "error")
        .collect();
    let lines: Vec<i64> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![2, 3, 4, 10, 11, 12]);
    assert!(
        errors[0]
            .2
            .as_deref()
            .unwrap()
            .contains("email \"dwizardexample.com\" is not a valid email address")
    );
    assert!(
        errors[1]
            .2
            .as_deref()
            .unwrap()
            .contains("first_name is required")
    );
    assert!(
        errors[2]
            .2
            .as_deref()
            .unwrap()
            .contains("last_name is required")
    );
    assert!(
        errors[3]
            .2
            .as_deref()
            .unwrap()
            .contains("row has 14 fields but the header has 10")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn export_then_import_is_a_no_op_and_three_edits_update_three_users(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(30)).await;
    env.import(
        "adults.csv",
        &format!("{HEADER}\nT1,t1@d.org,=cmd,Hall,Teacher,HS;MS,,Math,\n"),
    )
    .await;
    let mut out = Vec::new();
    rollcall::ops::export_master(&env.app.pool, env.district, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(",'=cmd,"),
        "formula neutralised in the export"
    );
    let before = env.snapshot().await;
    let s = env.import("master.csv", &text).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!(
        (s.created, s.updated, s.restored, s.archived, s.errors),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(
        s.unchanged, 32,
        "30 students, a teacher and the district admin"
    );
    assert_eq!(env.snapshot().await, before);

    let edited = text
        .replace("Ann3,", "Anne3,")
        .replace(",s7@d.org,", ",seven@d.org,")
        .replace("Ann9,,Lee,Student,HS,9,", "Ann9,,Lee,Student,HS,10,");
    let s = env.import("master.csv", &edited).await;
    assert_eq!(
        (s.updated, s.unchanged, s.errors),
        (3, 29, 0),
        "{:?}",
        s.message
    );
    assert_eq!(env.user("S3").await.first_name, "Anne3");
    assert_eq!(env.user("S7").await.email.as_deref(), Some("seven@d.org"));
    assert_eq!(env.user("S9").await.grade, "10");
    assert_eq!(
        env.user("S3").await.source,
        "file:students.csv",
        "edited in place, still the students feed's"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failure_in_the_middle_of_applying_leaves_everything_as_before(pool: PgPool) {
    let env = Env::new(pool).await;
    env.import("students.csv", &students(20)).await;
    let before = env.snapshot().await;
    // The database fails after the users were already written inside the run's transaction.
    sqlx::query(
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.action = 'user.create' THEN RAISE EXCEPTION 'simulated crash'; END IF; RETURN NEW; END $$",
    )
    .execute(&env.app.pool)
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION fail_audit()")
        .execute(&env.app.pool)
        .await
        .unwrap();
    let path = env.file(
        "students.csv",
        students(22).replace("Ann1,", "Changed1,").as_bytes(),
    );
    let config = Config::for_tests(env.dir.path().to_path_buf());
    let result = rollcall::ops::import_file(
        &env.app.pool,
        &env.app.clock,
        &config,
        env.district,
        &path,
        None,
        false,
        false,
        RunOptions::default(),
    )
    .await;
    assert!(result.is_err(), "the run reports the failure");
    assert_eq!(
        env.snapshot().await,
        before,
        "no user, membership or audit row changed"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM runs ORDER BY received_at DESC LIMIT 1")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_for_one_district_at_once_are_serialised(pool: PgPool) {
    let env = Env::new(pool).await;
    let first = students(200);
    let mut second = format!("{HEADER}\n");
    for i in 1..=200 {
        second += &format!("X{i},x{i}@d.org,Ann{i},Lee,Student,MS,8,,Active\n");
    }
    let a = env.import_with("a.csv", &first, false, false, RunOptions::default());
    let b = env.import_with("b.csv", &second, false, false, RunOptions::default());
    let (a, b) = tokio::join!(a, b);
    assert_eq!((a.created, a.errors), (200, 0));
    assert_eq!((b.created, b.errors), (200, 0));
    assert_eq!(env.count("archived_at IS NULL").await, 401);
    // Usernames generated by both runs are all distinct (the second saw the first's).
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT lower(username)) FROM users")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(distinct, 401);
}

/// A run reads its file while the district's users load, but a run that must wait for the
/// district's lock reads first: a file it cannot use fails at once, while another run still
/// holds the lock, and changes nothing.
#[sqlx::test(migrations = "./migrations")]
async fn a_file_that_cannot_be_used_fails_without_waiting_for_the_districts_lock(pool: PgPool) {
    let env = Env::new(pool).await;
    let before = env.snapshot().await;
    // Hold the district's lock as a run's transaction does (the engine's own lock).
    let mut holder = env.app.pool.begin().await.unwrap();
    rollcall::db::reconcile::lock_district(&mut holder, env.district)
        .await
        .unwrap();
    let file = "Student Number,Given Name,Surname,Homeroom\n1001,Ann,Lee,4B\n";
    // Bounded only so that a run stuck behind the lock fails the test instead of hanging it.
    let s = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        env.import("sis.csv", file),
    )
    .await
    .expect("the run ended while another run held the district's lock");
    assert_eq!(s.status, "failed");
    let message = s.message.unwrap();
    assert!(message.contains("required fields not mapped"), "{message}");
    holder.rollback().await.unwrap();
    assert_eq!(env.snapshot().await, before);
    // With the lock free, a good file goes in.
    let s = env.import("students.csv", &students(3)).await;
    assert_eq!(
        (s.created, s.errors, s.status.as_str()),
        (3, 0, "completed")
    );
}

/// An update that moves no user between schools leaves their memberships as they were (not
/// deleted and written again); a user who moves school gets a new one.
#[sqlx::test(migrations = "./migrations")]
async fn an_update_rewrites_memberships_only_of_users_whose_schools_changed(pool: PgPool) {
    let env = Env::new(pool).await;
    let s = env
        .import(
            "s.csv",
            &format!(
                "{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,,Active\nS2,s2@d.org,Bo,Kim,Student,HS,9,,Active\n"
            ),
        )
        .await;
    assert_eq!(s.created, 2);
    // Each membership with the transaction that wrote it.
    let memberships = || async {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT u.custom_id, sc.external_id, m.xmin::text
             FROM user_schools m
             JOIN users u ON u.district_id = m.district_id AND u.id = m.user_id
             JOIN schools sc ON sc.district_id = m.district_id AND sc.id = m.school_id
             WHERE m.district_id = $1 ORDER BY 1, 2",
        )
        .bind(env.district)
        .fetch_all(&env.app.pool)
        .await
        .unwrap();
        rows
    };
    let first = memberships().await;
    assert_eq!(first.len(), 2);
    let s = env
        .import(
            "s.csv",
            &format!(
                "{HEADER}\nS1,s1@d.org,Ann,Leigh,Student,HS,9,,Active\nS2,s2@d.org,Bo,Kim,Student,MS,9,,Active\n"
            ),
        )
        .await;
    assert_eq!((s.updated, s.errors), (2, 0), "{s:?}");
    assert_eq!(env.user("S1").await.last_name, "Leigh");
    let after = memberships().await;
    let of = |rows: &[(String, String, String)], who: &str| -> Vec<(String, String)> {
        rows.iter()
            .filter(|r| r.0 == who)
            .map(|r| (r.1.clone(), r.2.clone()))
            .collect()
    };
    // S1 changed only its last name: its membership is the row written when it was created.
    assert_eq!(of(&after, "S1"), of(&first, "S1"));
    // S2 moved to another school: its membership is new, written by this run.
    let s2 = of(&after, "S2");
    assert_eq!(s2.len(), 1);
    assert_eq!(s2[0].0, "MS");
    assert_ne!(s2[0].1, of(&first, "S2")[0].1);
}

#[sqlx::test(migrations = "./migrations")]
async fn cli_writes_the_error_and_completed_files(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = students(3).replace(
        "S2,s2@d.org,Ann2,Lee,Student,HS,9",
        "S2,s2@d.org,Ann2,Lee,Student,HS,13",
    );
    let s = env.import("students.csv", &file).await;
    let config = Config::for_tests(env.dir.path().to_path_buf());
    let errors = env.dir.path().join("errors.csv");
    let completed = env.dir.path().join("completed.csv");
    rollcall::ops::write_run_file(
        &env.app.pool,
        &config,
        env.district,
        s.run_id,
        rollcall::reconcile::report::FileKind::Errors,
        &errors,
    )
    .await
    .unwrap();
    rollcall::ops::write_run_file(
        &env.app.pool,
        &config,
        env.district,
        s.run_id,
        rollcall::reconcile::report::FileKind::Completed,
        &completed,
    )
    .await
    .unwrap();
    let errors = std::fs::read_to_string(errors).unwrap();
    assert_eq!(errors.lines().count(), 2);
    assert!(errors.lines().next().unwrap().ends_with(",Error"));
    assert!(errors.contains("S2,s2@d.org,Ann2,Lee,Student,HS,13,,Active,\"line 3, column \"\"grade\"\": grade \"\"13\"\""), "{errors}");
    let completed = std::fs::read_to_string(completed).unwrap();
    assert_eq!(completed.lines().count(), 3);
    assert!(completed.lines().next().unwrap().ends_with(
        "user_guid,username,outcome,temporary_password,matched_by,previous_source,kept"
    ));
}
