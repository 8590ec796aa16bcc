//! Rosters (SPEC §6a) through the roster engine: a roster CSV on the command line and through
//! the upload form — classes and enrollments created; the same file again writes nothing; a
//! removed row ends its enrollment and a missing class is archived; a truncated file stops in
//! Needs Review and `--approve` applies it; row errors name row and column; a dry run writes
//! nothing; the completed and error files (the error file, fixed, goes back in).

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const ROSTER_HEADER: &str = "class_external_id,class_title,school_external_id,role,user";

const FULL: &str = "class_external_id,class_title,school_external_id,role,user\n\
    M1,Math,HS,teacher,T1\n\
    M1,Math,HS,student,S1\n\
    M1,Math,HS,student,S2\n\
    E1,English,HS,teacher,T1\n\
    E1,English,HS,student,S3\n";

fn rollcall_bin(app: &TestApp) -> std::process::Command {
    let db = app
        .pool
        .connect_options()
        .get_database()
        .unwrap()
        .to_string();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (head, tail) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let url = format!("{}/{db}?{tail}", &head[..head.rfind('/').unwrap()]);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    c.env("DATABASE_URL", url).env("RUST_LOG", "warn");
    c
}

/// A district with a teacher T1 and students S1–S4 at HS (S4 at another school, OS).
async fn env_with_users(pool: PgPool) -> UploadEnv {
    let env = UploadEnv::new(pool).await;
    env.app.school(env.district.id, "OS", "Other School").await;
    let users = format!(
        "{UPLOAD_HEADER}\n\
         T1,t1@d.org,Tea,Cher,Teacher,HS,,Active,\n\
         S1,s1@d.org,Ann,One,Student,HS,5,Active,\n\
         S2,s2@d.org,Bo,Two,Student,HS,5,Active,\n\
         S3,s3@d.org,Cy,Three,Student,HS,5,Active,\n\
         S4,s4@d.org,Di,Four,Student,OS,5,Active,\n"
    );
    env.upload("users.csv", &users).await;
    let run = settle(&env.app, env.district.id, "file:users.csv").await;
    assert_eq!(run.created, 5, "{:?}", run.message);
    env
}

/// `rollcall import` of `body` saved as `name`; the JSON summary.
fn import(env: &UploadEnv, name: &str, body: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let out = rollcall_bin(&env.app)
        .args(["import", "--district", "springfield"])
        .args(extra)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn n(summary: &serde_json::Value, key: &str) -> i64 {
    summary[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

/// Everything the district's rosters hold, with their timestamps: nothing written shows as
/// the same snapshot.
async fn snapshot(env: &UploadEnv) -> Vec<String> {
    let classes: Vec<(String, String, bool, String, String)> = sqlx::query_as(
        "SELECT external_id, title, archived_at IS NOT NULL, created_at::text, updated_at::text
         FROM classes WHERE district_id = $1 ORDER BY external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let enrollments: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.external_id, u.custom_id, e.role, e.created_at::text
         FROM enrollments e JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1 ORDER BY 1, 2",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    classes
        .iter()
        .map(|c| format!("{c:?}"))
        .chain(enrollments.iter().map(|e| format!("{e:?}")))
        .collect()
}

async fn enrolled(env: &UploadEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.external_id || ':' || u.custom_id || ':' || e.role
         FROM enrollments e JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1 ORDER BY 1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap()
}

async fn archived_classes(env: &UploadEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT external_id FROM classes WHERE district_id = $1 AND archived_at IS NOT NULL ORDER BY 1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap()
}

async fn audit_count(env: &UploadEnv) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_roster_csv_on_the_command_line(pool: PgPool) {
    let env = env_with_users(pool).await;

    // First import: two classes, five enrollments, audited class creations.
    let s = import(&env, "rosters.csv", FULL, &[]);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(n(&s, "classes_created"), 2, "{s}");
    assert_eq!(n(&s, "enrollments_added"), 5, "{s}");
    assert_eq!(n(&s, "roster_errors"), 0, "{s}");
    assert_eq!(
        enrolled(&env).await,
        vec![
            "E1:S3:student",
            "E1:T1:teacher",
            "M1:S1:student",
            "M1:S2:student",
            "M1:T1:teacher"
        ]
    );
    let creates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = 'class.create'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(creates, 2);
    let source: String =
        sqlx::query_scalar("SELECT DISTINCT source FROM classes WHERE district_id = $1")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(source, "file:rosters.csv");

    // The same file again writes nothing: no class or enrollment touched, no audit entry.
    let before = snapshot(&env).await;
    let audits = audit_count(&env).await;
    let s = import(&env, "rosters.csv", FULL, &[]);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(n(&s, "classes_unchanged"), 2, "{s}");
    assert_eq!(n(&s, "enrollments_unchanged"), 5, "{s}");
    for key in [
        "classes_created",
        "classes_updated",
        "classes_archived",
        "classes_restored",
        "enrollments_added",
        "enrollments_changed",
        "enrollments_ended",
    ] {
        assert_eq!(n(&s, key), 0, "{key}: {s}");
    }
    assert_eq!(snapshot(&env).await, before);
    assert_eq!(audit_count(&env).await, audits);

    // A dry run says what it would do and writes nothing.
    let more = format!("{FULL}M1,Math,HS,student,S3\n");
    let s = import(&env, "rosters.csv", &more, &["--dry-run"]);
    assert_eq!(n(&s, "enrollments_added"), 1, "{s}");
    assert_eq!(s["dry_run"], true);
    assert_eq!(snapshot(&env).await, before);

    // A removed row ends its enrollment; a class no longer listed is archived (its
    // enrollments stay with it).
    let fewer = "class_external_id,class_title,school_external_id,role,user\n\
        M1,Math,HS,teacher,T1\n\
        M1,Math,HS,student,S1\n";
    let s = import(&env, "rosters.csv", fewer, &[]);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(n(&s, "enrollments_ended"), 1, "{s}");
    assert_eq!(n(&s, "classes_archived"), 1, "{s}");
    assert_eq!(archived_classes(&env).await, vec!["E1"]);
    assert!(!enrolled(&env).await.contains(&"M1:S2:student".to_string()));
    let archives: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = 'class.archive'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(archives, 1);

    // The full file restores E1 and adds S2 back.
    let s = import(&env, "rosters.csv", FULL, &[]);
    assert_eq!(n(&s, "classes_restored"), 1, "{s}");
    assert_eq!(n(&s, "enrollments_added"), 1, "{s}");
    assert!(archived_classes(&env).await.is_empty());

    // A truncated file stops in Needs Review with nothing applied; --approve applies it.
    sqlx::query("UPDATE districts SET guard_archive_min = 1 WHERE id = $1")
        .bind(env.district.id)
        .execute(&env.app.pool)
        .await
        .unwrap();
    let before = snapshot(&env).await;
    let truncated = format!("{ROSTER_HEADER}\nM1,Math,HS,teacher,T1\n");
    let s = import(&env, "rosters.csv", &truncated, &[]);
    assert_eq!(s["status"], "needs_review", "{s}");
    let message = s["message"].as_str().unwrap();
    assert!(
        message.contains("would archive 1 of 2 classes of rosters.csv")
            && message.contains("would end 2 of 5 enrollments of rosters.csv"),
        "{message}"
    );
    assert_eq!(snapshot(&env).await, before);
    let s = import(&env, "rosters.csv", &truncated, &["--approve"]);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(archived_classes(&env).await, vec!["E1"]);
    assert_eq!(
        enrolled(&env).await,
        vec!["E1:S3:student", "E1:T1:teacher", "M1:T1:teacher"]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_roster_csv_through_the_form_with_row_errors_and_its_files(pool: PgPool) {
    let env = env_with_users(pool).await;
    let body = "class_external_id,class_title,school_external_id,role,user\n\
        M1,Math,HS,teacher,T1\n\
        M1,Math,HS,student,nobody@d.org\n\
        M1,Math,HS,student,T1\n\
        M1,Math,HS,student,S4\n\
        M1,Math,HS,student,S1\n\
        X1,Lab,ZZ,student,S2\n";
    let id = env.upload("rosters.csv", body).await;
    env.app.queue.drain().await.unwrap();
    let run = rollcall::db::runs::get(&env.app.pool, env.district.id, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, "completed_with_errors", "{:?}", run.message);
    let counts = rollcall::db::rosters::counts(&env.app.pool, env.district.id, id)
        .await
        .unwrap();
    assert_eq!(counts.classes_created, 1);
    assert_eq!(counts.enrollments_added, 2);
    // Four rows fail; the unknown school's row fails as a class and as an enrollment.
    assert_eq!(counts.roster_errors, 5, "{counts:?}");
    assert_eq!(enrolled(&env).await, vec!["M1:S1:student", "M1:T1:teacher"]);

    // The run page shows the roster counts and each error with its row and column.
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert_eq!(page.status, 200);
    for needle in [
        "Classes and enrollments",
        "Enrollments added",
        "rosters.csv line 3, column user: unknown user",
        // T1 is already the class's teacher (line 2): the reader refuses the pair twice.
        "rosters.csv line 4, column user: T1 is enrolled in M1 twice",
        "rosters.csv line 5, column user: user S4 is not at the class",
        "rosters.csv line 7, column school_external_id: unknown school",
    ] {
        assert!(page.body.contains(needle), "{needle} not on the page");
    }

    // The completed file: each row processed, with its class's and user's GUIDs and outcome.
    let r = env.c.get(&format!("/uploads/{id}/files/completed")).await;
    assert_eq!(r.status, 200);
    let text = r.body.trim_start_matches('\u{feff}').to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{ROSTER_HEADER},class_guid,user_guid,outcome")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{text}");
    let class_guid: Uuid =
        sqlx::query_scalar("SELECT id FROM classes WHERE district_id = $1 AND external_id = 'M1'")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let t1: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = 'T1'")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(
        rows[0],
        format!("M1,Math,HS,teacher,T1,{class_guid},{t1},added")
    );

    // The error file: the failed rows as sent plus an Error column.
    let r = env.c.get(&format!("/uploads/{id}/files/errors")).await;
    assert_eq!(r.status, 200);
    let text = r.body.trim_start_matches('\u{feff}').to_string();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), format!("{ROSTER_HEADER},Error"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[0].starts_with("M1,Math,HS,student,nobody@d.org,"),
        "{}",
        rows[0]
    );
    assert!(
        rows[0].contains("line 3, column user: unknown user"),
        "{}",
        rows[0]
    );

    // Fixed and sent back as it is (Error column and all), it goes in: a patch of the same
    // source that archives nothing.
    let fixed = text.replace("nobody@d.org", "S2");
    let id2 = env.upload("rosters-errors.csv", &fixed).await;
    env.app.queue.drain().await.unwrap();
    let counts = rollcall::db::rosters::counts(&env.app.pool, env.district.id, id2)
        .await
        .unwrap();
    assert_eq!(counts.enrollments_added, 1, "{counts:?}");
    assert_eq!(counts.enrollments_ended, 0);
    assert_eq!(counts.classes_archived, 0);
    assert!(enrolled(&env).await.contains(&"M1:S2:student".to_string()));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_roster_csv_through_the_api(pool: PgPool) {
    let env = env_with_users(pool).await;
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "rosters",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(FULL.as_bytes().to_vec()).file_name("rosters.csv"),
    );
    let r = reqwest::Client::new()
        .post(env.app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let run = settle(&env.app, env.district.id, "file:rosters.csv").await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(enrolled(&env).await.len(), 5);
}

/// The statistics a table has in this test's database: `reltuples` (-1 before any ANALYZE or
/// VACUUM) and the columns `pg_stats` has a row for.
async fn statistics(env: &UploadEnv, table: &str) -> (f32, Vec<String>) {
    let tuples: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
        .bind(table)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_stats
         WHERE schemaname = current_schema() AND tablename = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    (tuples, columns)
}

/// A run that adds a thousand users, or a thousand classes and enrollments, to a district
/// that had far fewer analyzes them in its own transaction: the first requests after it are
/// planned from the district as it now is (at 1,000,000 users a user's lookup planned from no
/// statistics hashed every class of the district; issue 15). Autovacuum would come only
/// after its naptime, so what is seen here is the run's.
#[sqlx::test(migrations = "./migrations")]
async fn a_large_first_import_leaves_statistics_for_users_classes_and_enrollments(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let mut users = format!("{UPLOAD_HEADER}\nT1,t1@d.org,Tea,Cher,Teacher,HS,,Active,\n");
    let mut rosters = format!("{ROSTER_HEADER}\n");
    for i in 0..1_000 {
        users.push_str(&format!(
            "S{i},s{i}@d.org,Stu,Dent{i},Student,HS,5,Active,\n"
        ));
        rosters.push_str(&format!(
            "C{i},Class {i},HS,teacher,T1\nC{i},Class {i},HS,student,S{i}\n"
        ));
    }
    assert_eq!(
        statistics(&env, "users").await.0,
        -1.0,
        "never analyzed yet"
    );
    env.upload("users.csv", &users).await;
    let run = settle(&env.app, env.district.id, "file:users.csv").await;
    assert_eq!(run.created, 1_001, "{:?}", run.message);
    let (tuples, columns) = statistics(&env, "users").await;
    assert!(tuples >= 1_001.0, "{tuples}");
    // `id` too: a user looked up by id is estimated at one row, not a share of the district.
    for c in ["id", "district_id", "role", "status"] {
        assert!(columns.iter().any(|x| x == c), "{c} in {columns:?}");
    }
    let distinct: f32 = sqlx::query_scalar(
        "SELECT n_distinct FROM pg_stats
         WHERE schemaname = current_schema() AND tablename = 'users' AND attname = 'id'",
    )
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(distinct, -1.0, "every id is distinct");

    assert_eq!(statistics(&env, "enrollments").await.0, -1.0);
    let s = import(&env, "rosters.csv", &rosters, &[]);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(n(&s, "classes_created"), 1_000, "{s}");
    assert_eq!(n(&s, "enrollments_added"), 2_000, "{s}");
    let (classes, class_columns) = statistics(&env, "classes").await;
    let (enrollments, enrollment_columns) = statistics(&env, "enrollments").await;
    assert_eq!((classes, enrollments), (1_000.0, 2_000.0));
    assert!(
        class_columns.iter().any(|c| c == "external_id"),
        "{class_columns:?}"
    );
    assert!(
        enrollment_columns.iter().any(|c| c == "user_id"),
        "{enrollment_columns:?}"
    );
}
