//! Undo of roster changes (SPEC §4 "Undo", §6a) end to end against real PostgreSQL: a roster
//! CSV run through the real `rollcall import`, undone with the real `rollcall undo` (preview
//! first, writing nothing) — created classes archived, added enrollments removed, updated
//! class fields, ended enrollments and archived classes back — and the undo undone again;
//! a class a later run changed is left and listed; the undo through the run page (queue,
//! run page, status JSON); and the run status JSON / API run object with roster counts.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const V1: &str = "class_external_id,class_title,school_external_id,role,user,primary,subject,period\n\
    M1,Math,HS,teacher,T1,false,Maths,1\n\
    M1,Math,HS,student,S1,,Maths,1\n\
    M1,Math,HS,student,S2,,Maths,1\n\
    E1,English,HS,teacher,T1,true,,2\n\
    E1,English,HS,student,S3,,,2\n";

/// V1 changed: M1 retitled (and its subject, period), T1 made primary in M1, S2 no longer in
/// M1, E1 gone (archived), a new class A1 with T1 and S1.
const V2: &str = "class_external_id,class_title,school_external_id,role,user,primary,subject,period\n\
    M1,Algebra,HS,teacher,T1,true,Mathematics,3\n\
    M1,Algebra,HS,student,S1,,Mathematics,3\n\
    A1,Art,HS,teacher,T1,true,,4\n\
    A1,Art,HS,student,S1,,,4\n";

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

fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `rollcall import` of `body` saved as `rosters.csv`; the JSON summary.
fn import(env: &UploadEnv, body: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rosters.csv");
    std::fs::write(&path, body).unwrap();
    json_of(
        rollcall_bin(&env.app)
            .args(["import", "--district", "springfield"])
            .arg(&path)
            .output()
            .unwrap(),
    )
}

/// `rollcall undo` of a run; the JSON summary.
fn undo(env: &UploadEnv, run: &serde_json::Value, extra: &[&str]) -> serde_json::Value {
    json_of(
        rollcall_bin(&env.app)
            .args(["undo", "--district", "springfield"])
            .args(extra)
            .arg(run.as_str().expect("a run id"))
            .output()
            .unwrap(),
    )
}

fn n(summary: &serde_json::Value, key: &str) -> i64 {
    summary[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

/// A district with a teacher T1 and students S1–S3 at HS.
async fn env_with_users(pool: PgPool) -> UploadEnv {
    let env = UploadEnv::new(pool).await;
    let users = format!(
        "{UPLOAD_HEADER}\n\
         T1,t1@d.org,Tea,Cher,Teacher,HS,,Active,\n\
         S1,s1@d.org,Ann,One,Student,HS,5,Active,\n\
         S2,s2@d.org,Bo,Two,Student,HS,5,Active,\n\
         S3,s3@d.org,Cy,Three,Student,HS,5,Active,\n"
    );
    env.upload("users.csv", &users).await;
    let run = settle(&env.app, env.district.id, "file:users.csv").await;
    assert_eq!(run.created, 4, "{:?}", run.message);
    env
}

/// The rosters as they matter to an undo: every class's fields, owner and archived state,
/// every enrollment's values (no timestamps).
async fn rosters(env: &UploadEnv) -> Vec<String> {
    let classes: Vec<(String, String, String, String, String, bool)> = sqlx::query_as(
        "SELECT external_id, title, subject, period, source, archived_at IS NOT NULL
         FROM classes WHERE district_id = $1 ORDER BY external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let enrollments: Vec<String> = sqlx::query_scalar(
        "SELECT c.external_id || ':' || u.custom_id || ':' || e.role || ':' || e.is_primary
         FROM enrollments e JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1 ORDER BY 1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    classes
        .iter()
        .map(|c| format!("{c:?}"))
        .chain(enrollments)
        .collect()
}

/// Every row of the roster tables and of the undo's record, with timestamps: nothing
/// written shows as the same snapshot.
async fn everything(env: &UploadEnv) -> (Vec<String>, i64, i64) {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT c::text FROM classes c WHERE district_id = $1
         UNION ALL SELECT e::text FROM enrollments e WHERE district_id = $1 ORDER BY 1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let changes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM run_roster_changes WHERE district_id = $1")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    (rows, changes, audit)
}

#[sqlx::test(migrations = "./migrations")]
async fn undoing_a_roster_run_gives_the_classes_and_enrollments_back(pool: PgPool) {
    let env = env_with_users(pool).await;
    let s = import(&env, V1);
    assert_eq!(s["status"], "completed", "{s}");
    let at_v1 = rosters(&env).await;

    // The same file again records nothing for an undo.
    let (_, changes, _) = everything(&env).await;
    let s = import(&env, V1);
    assert_eq!(n(&s, "classes_unchanged"), 2, "{s}");
    assert_eq!(
        everything(&env).await.1,
        changes,
        "no change, nothing recorded"
    );

    let run = import(&env, V2);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(n(&run, "classes_created"), 1, "{run}");
    assert_eq!(n(&run, "classes_updated"), 1, "{run}");
    assert_eq!(n(&run, "classes_archived"), 1, "{run}");
    assert_eq!(n(&run, "enrollments_added"), 2, "{run}");
    assert_eq!(n(&run, "enrollments_changed"), 1, "{run}");
    assert_eq!(n(&run, "enrollments_ended"), 1, "{run}");
    let at_v2 = rosters(&env).await;

    // V2 again changes nothing: the class it archived keeps its enrollments run after run.
    let again = import(&env, V2);
    assert_eq!(again["status"], "completed", "{again}");
    for count in [
        "classes_archived",
        "enrollments_ended",
        "enrollments_added",
        "enrollments_changed",
    ] {
        assert_eq!(n(&again, count), 0, "{count}: {again}");
    }
    assert_eq!(rosters(&env).await, at_v2);

    // The preview says what it would do and writes nothing.
    let before = everything(&env).await;
    let preview = undo(&env, &run["run_id"], &["--dry-run"]);
    assert_eq!(preview["dry_run"], true, "{preview}");
    assert_eq!(n(&preview, "classes_archived"), 1, "{preview}");
    assert_eq!(n(&preview, "classes_restored"), 1, "{preview}");
    assert_eq!(n(&preview, "enrollments_ended"), 2, "{preview}");
    let after = everything(&env).await;
    assert_eq!(
        after.0, before.0,
        "a preview changes no class or enrollment"
    );
    assert_eq!(after.1, before.1, "a preview records no change");

    // The undo: A1 archived (never deleted) and its enrollments removed, M1's fields and
    // T1's primary back, S2 back in M1, E1 restored.
    let done = undo(&env, &run["run_id"], &[]);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["undoes"], run["run_id"]);
    assert_eq!(n(&done, "classes_archived"), 1, "{done}");
    assert_eq!(n(&done, "classes_restored"), 1, "{done}");
    assert_eq!(n(&done, "classes_updated"), 1, "{done}");
    assert_eq!(n(&done, "enrollments_ended"), 2, "{done}");
    assert_eq!(n(&done, "enrollments_added"), 1, "{done}");
    assert_eq!(n(&done, "enrollments_changed"), 1, "{done}");
    assert_eq!(n(&done, "roster_errors"), 0, "{done}");
    assert_eq!(done["left_rosters"], serde_json::json!([]));
    let now = rosters(&env).await;
    let a1 = "(\"A1\", \"Art\", \"\", \"4\", \"file:rosters.csv\", true)".to_string();
    let mut expected = vec![a1];
    expected.extend(at_v1.iter().cloned());
    expected.sort();
    let mut got = now.clone();
    got.sort();
    assert_eq!(got, expected, "V1's rosters, and A1 archived");
    // Audited like any run's class changes, carrying the undo's run id.
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE district_id = $1 AND run_id = $2 AND entity_kind = 'class'
         ORDER BY action",
    )
    .bind(env.district.id)
    .bind(Uuid::parse_str(done["run_id"].as_str().unwrap()).unwrap())
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        audited,
        vec!["class.archive", "class.restore", "class.update"]
    );

    // Undoing the undo redoes the run.
    let redo = undo(&env, &done["run_id"], &[]);
    assert_eq!(redo["status"], "completed", "{redo}");
    assert_eq!(n(&redo, "classes_restored"), 1, "{redo}");
    assert_eq!(rosters(&env).await, at_v2, "the run's own result again");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_class_a_later_run_changed_is_left_and_listed(pool: PgPool) {
    let env = env_with_users(pool).await;
    import(&env, V1);
    let run = import(&env, V2);
    // A later run retitles M1 again (patch-like: the same classes, M1 renamed).
    let v3 = V2.replace("Algebra", "Geometry");
    let later = import(&env, &v3);
    assert_eq!(n(&later, "classes_updated"), 1, "{later}");

    let done = undo(&env, &run["run_id"], &[]);
    assert_eq!(done["status"], "completed", "{done}");
    let left = done["left_rosters"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{done}");
    assert_eq!(left[0]["kind"], "class");
    assert_eq!(left[0]["class_external_id"], "M1");
    let m1: (String, String) = sqlx::query_as(
        "SELECT title, subject FROM classes WHERE district_id = $1 AND external_id = 'M1'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        m1,
        ("Geometry".into(), "Mathematics".into()),
        "left as it is"
    );
    // The undo's run page lists it.
    let page = env
        .c
        .get(&format!("/uploads/{}", done["run_id"].as_str().unwrap()))
        .await;
    assert!(
        page.body
            .contains("Classes and enrollments left as they are (1)"),
        "{}",
        page.body
    );
    // The rest of the run is undone: A1 archived, E1 restored, S2 back in M1.
    let archived: Vec<String> = sqlx::query_scalar(
        "SELECT external_id FROM classes WHERE district_id = $1 AND archived_at IS NOT NULL",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(archived, vec!["A1"]);
    assert!(
        rosters(&env)
            .await
            .contains(&"M1:S2:student:false".to_string())
    );
}

/// The enrollments a run adds are recorded one row per class (migration 0035), and the undo
/// still reads them one by one: of the two it added to A1, the one a later run ended is left
/// and listed, the other removed; and the enrollment it ended that the later run added back
/// (recorded in the later run's row for M1) is left too.
#[sqlx::test(migrations = "./migrations")]
async fn enrollments_a_later_run_changed_are_left_one_by_one(pool: PgPool) {
    let env = env_with_users(pool).await;
    import(&env, V1);
    let run = import(&env, V2);
    let run_id = Uuid::parse_str(run["run_id"].as_str().unwrap()).unwrap();
    let added: Vec<(Option<Uuid>, i32)> = sqlx::query_as(
        "SELECT user_id, cardinality(user_ids) FROM run_roster_changes
         WHERE district_id = $1 AND run_id = $2 AND kind = 'enrollment_added'",
    )
    .bind(env.district.id)
    .bind(run_id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(added, [(None, 2)], "A1's two enrollments, one row");

    let v3 =
        V2.replace("A1,Art,HS,student,S1,,,4\n", "") + "M1,Algebra,HS,student,S2,,Mathematics,3\n";
    let later = import(&env, &v3);
    assert_eq!(later["status"], "completed", "{later}");
    assert_eq!(n(&later, "enrollments_added"), 1, "{later}");
    let between = rosters(&env).await;
    assert!(
        between.contains(&"M1:S2:student:false".to_string())
            && !between.contains(&"A1:S1:student:false".to_string()),
        "the later run put S2 back in M1 and ended S1 in A1: {between:?}"
    );

    let done = undo(&env, &run["run_id"], &[]);
    assert_eq!(done["status"], "completed", "{done}");
    let mut left: Vec<(String, String)> = done["left_rosters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["class_external_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ("enrollment".to_string(), "A1".to_string()),
            ("enrollment".to_string(), "M1".to_string())
        ],
        "{done}"
    );
    let now = rosters(&env).await;
    assert!(
        now.contains(&"M1:S2:student:false".to_string()),
        "the later run's S2 in M1 stays: {now:?}"
    );
    assert!(
        !now.iter().any(|r| r.starts_with("A1:")),
        "A1:T1 removed by the undo, A1:S1 ended by the later run: {now:?}"
    );
}

/// The undo from the run page: a preview (queued, nothing written), then "Apply undo"; the
/// run page and the status JSON show its roster outcomes.
#[sqlx::test(migrations = "./migrations")]
async fn a_roster_undo_through_the_run_page(pool: PgPool) {
    let env = env_with_users(pool).await;
    import(&env, V1);
    let run = import(&env, V2);
    let id: Uuid = run["run_id"].as_str().unwrap().parse().unwrap();
    let at_v2 = rosters(&env).await;

    let r = env.c.post(&format!("/uploads/{id}/undo"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.app.queue.drain().await.unwrap();
    let preview: Uuid = r
        .location
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    assert_eq!(rosters(&env).await, at_v2, "a preview writes nothing");
    let s = env.status(preview).await;
    assert_eq!(s["dry_run"], true, "{s}");
    assert_eq!(s["rosters"]["classes"]["archived"], 1, "{s}");
    assert_eq!(s["rosters"]["enrollments"]["ended"], 2, "{s}");
    let page = env.c.get(&format!("/uploads/{preview}")).await;
    assert!(
        page.body.contains("Classes that would be archived"),
        "{}",
        page.body
    );

    let r = env
        .c
        .post(&format!("/uploads/{id}/undo"), &[("apply", "true")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.app.queue.drain().await.unwrap();
    let applied: Uuid = r
        .location
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    let s = env.status(applied).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["applied"], true, "{s}");
    assert_eq!(s["rosters"]["classes"]["restored"], 1, "{s}");
    assert_eq!(s["rosters"]["enrollments"]["added"], 1, "{s}");
    let page = env.c.get(&format!("/uploads/{applied}")).await;
    assert!(page.body.contains("Classes restored"), "{}", page.body);
    let archived: bool = sqlx::query_scalar(
        "SELECT archived_at IS NOT NULL FROM classes WHERE district_id = $1 AND external_id = 'A1'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert!(archived, "the created class is archived");
}

/// The status JSON (the upload page's poll) and the API run object carry the roster counts,
/// and a run whose only errors are roster errors says so (`counts.roster_errors`,
/// `rosters.errors`) beside the users' `errors`, which stay the users'.
#[sqlx::test(migrations = "./migrations")]
async fn the_run_status_carries_the_roster_counts(pool: PgPool) {
    let env = env_with_users(pool).await;
    let body = "class_external_id,class_title,school_external_id,role,user\n\
        M1,Math,HS,teacher,T1\n\
        M1,Math,HS,student,S1\n\
        M1,Math,HS,student,nobody@d.org\n";
    let id = env.upload("rosters.csv", body).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed_with_errors", "{s}");
    assert_eq!(s["counts"]["errors"], 0, "the users' errors: {s}");
    assert_eq!(s["counts"]["roster_errors"], 1, "{s}");
    let expected = serde_json::json!({
        "classes": {"created": 1, "updated": 0, "unchanged": 0, "restored": 0, "archived": 0},
        "enrollments": {"added": 2, "changed": 0, "unchanged": 0, "ended": 0},
        "errors": 1,
    });
    assert_eq!(s["rosters"], expected, "{s}");

    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "status",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let r = reqwest::Client::new()
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let api: serde_json::Value = r.json().await.unwrap();
    assert_eq!(api["rosters"], expected, "{api}");
    assert_eq!(api["counts"]["roster_errors"], 1, "{api}");

    // A users file: the roster counts are there, all zero.
    let users = format!("{UPLOAD_HEADER}\nS9,s9@d.org,Ed,Nine,Student,HS,5,Active,\n");
    let id = env.upload("more.csv", &users).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["counts"]["created"], 1, "{s}");
    assert_eq!(s["rosters"]["classes"]["created"], 0, "{s}");
    assert_eq!(s["rosters"]["errors"], 0, "{s}");
}
