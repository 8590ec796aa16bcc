//! Scopes on every way in (SPEC §4, §5, §7): the upload form, the API field `scope`, the
//! command line's `--scope`, the drop folder; a fixed error file goes home as a patch; the
//! error file carries the matched users' GUIDs; the master CSV's stable name, its BOM, and
//! its way back (district scope reviewed before anyone is archived).

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const HEADER: &str = UPLOAD_HEADER;

fn students(n: usize) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

fn adults(n: usize) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &format!("T{i},t{i}@d.org,Tom{i},Hall,Teacher,HS,,Active,\n");
    }
    s
}

/// A download: its file name (from Content-Disposition) and its bytes.
async fn download(env: &UploadEnv, path: &str) -> (String, Vec<u8>) {
    let r = env
        .c
        .http
        .get(format!("{}{path}", env.c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    let name = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    (name, r.bytes().await.unwrap().to_vec())
}

/// Upload through the form with extra fields (e.g. a scope chosen by hand); the response.
async fn upload_form(env: &UploadEnv, name: &str, body: &[u8], fields: &[(&str, &str)]) -> Page {
    let token = env.c.csrf().await;
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(body.to_vec()).file_name(name.to_string()),
    );
    let r = env
        .c
        .http
        .post(format!("{}/uploads?_csrf={token}", env.c.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        location,
        body: r.text().await.unwrap_or_default(),
    }
}

/// Upload with a scope chosen by hand on the form; the run id.
async fn upload_scoped(env: &UploadEnv, name: &str, body: &[u8], scope: &str) -> Uuid {
    let r = upload_form(env, name, body, &[("scope", scope), ("scope_touched", "1")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    run_id(&r.location.unwrap())
}

fn run_id(location: &str) -> Uuid {
    location
        .trim_start_matches("/uploads/")
        .trim_end_matches("/map")
        .parse()
        .unwrap()
}

async fn run_scope_and_source(env: &UploadEnv, id: Uuid) -> (Option<String>, String) {
    let (options, source): (serde_json::Value, String) =
        sqlx::query_as("SELECT options, source FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    (options["scope"].as_str().map(str::to_string), source)
}

async fn source_of(env: &UploadEnv, custom_id: &str) -> String {
    sqlx::query_scalar("SELECT source FROM users WHERE district_id = $1 AND custom_id = $2")
        .bind(env.district.id)
        .bind(custom_id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap()
}

async fn guid_of(env: &UploadEnv, custom_id: &str) -> (Uuid, String) {
    sqlx::query_as("SELECT id, username FROM users WHERE district_id = $1 AND custom_id = $2")
        .bind(env.district.id)
        .bind(custom_id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap()
}

async fn archived(env: &UploadEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT coalesce(custom_id, email) FROM users WHERE district_id = $1 AND archived_at IS NOT NULL ORDER BY 1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap()
}

/// Every user's row as the database has it, to compare before and after.
async fn fingerprint(env: &UploadEnv) -> Vec<(Uuid, String, Option<String>, String, bool)> {
    sqlx::query_as(
        "SELECT id, username, email, source, archived_at IS NOT NULL FROM users
         WHERE district_id = $1 ORDER BY id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap()
}

fn records(bytes: &[u8]) -> (Vec<String>, Vec<csv::StringRecord>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    (header, r.records().map(Result::unwrap).collect())
}

#[sqlx::test(migrations = "./migrations")]
async fn fixed_error_file_goes_home_and_next_upload_is_a_no_op(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let mut file = students(3);
    file += "S4,s4@d.org,Bo,Kim,Student,HS,13,Active,\n";
    file += "S5,s5@d.org,Cy,Ng,Student,HS,14,Active,\n";
    let first = env.upload("students.csv", &file).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(first).await;
    assert_eq!(
        (
            s["counts"]["created"].as_i64(),
            s["counts"]["errors"].as_i64()
        ),
        (Some(3), Some(2))
    );

    // The error file, downloaded under its own name, fixed, and uploaded as downloaded.
    let (name, bytes) = download(&env, &format!("/uploads/{first}/files/errors")).await;
    assert_eq!(name, "students-errors.csv");
    let fixed = String::from_utf8(bytes)
        .unwrap()
        .replace(",13,", ",12,")
        .replace(",14,", ",11,");
    let second = env.upload(&name, &fixed).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(second).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["created"], 2);
    assert_eq!(s["counts"]["archived"], 0);
    assert_eq!(
        run_scope_and_source(&env, second).await,
        (Some("patch".into()), "file:students.csv".into()),
        "a patch, filed under the source of the run whose error file it is"
    );
    for id in ["S4", "S5"] {
        assert_eq!(source_of(&env, id).await, "file:students.csv", "{id}");
    }
    let page = env.c.get(&format!("/uploads/{second}")).await;
    assert!(page.body.contains("Fixed error file of"), "{}", page.body);
    assert!(page.body.contains(&format!("href=\"/uploads/{first}\"")));
    assert!(page.body.contains("scope: patch"));
    let history = env.c.get("/uploads").await;
    assert!(history.body.contains("scope: patch") && history.body.contains("scope: source"));

    // The next regular students.csv, with the fixed rows: nothing to do.
    let before = fingerprint(&env).await;
    let regular = students(3)
        + "S4,s4@d.org,Bo,Kim,Student,HS,12,Active,\n"
        + "S5,s5@d.org,Cy,Ng,Student,HS,11,Active,\n";
    let third = env.upload("students.csv", &regular).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(third).await;
    assert_eq!(s["status"], "completed", "{s}");
    let c = &s["counts"];
    assert_eq!(
        (
            c["created"].as_i64(),
            c["updated"].as_i64(),
            c["unchanged"].as_i64(),
            c["archived"].as_i64(),
            c["errors"].as_i64()
        ),
        (Some(0), Some(0), Some(5), Some(0), Some(0)),
        "unchanged, nothing refused, nothing archived"
    );
    assert_eq!(fingerprint(&env).await, before);

    // A browser's copy of the error file (" (1)") finds its way home as well.
    let fourth = env
        .upload(
            "students-errors (1).csv",
            &format!("{HEADER},Error\nS6,s6@d.org,Di,Ono,Student,HS,10,Active,,bad grade\n"),
        )
        .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(
        run_scope_and_source(&env, fourth).await,
        (Some("patch".into()), "file:students.csv".into())
    );
    // An error file whose original cannot be found keeps its own name, and says so.
    let orphan = env
        .upload(
            "staff-errors.csv",
            &format!("{HEADER},Error\nT9,t9@d.org,Ed,Roe,Teacher,HS,,Active,,x\n"),
        )
        .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(
        run_scope_and_source(&env, orphan).await,
        (Some("patch".into()), "file:staff-errors.csv".into())
    );
    let page = env.c.get(&format!("/uploads/{orphan}")).await;
    assert!(
        page.body
            .contains("no earlier upload of this district matches its name"),
        "{}",
        page.body
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn error_file_rows_carry_the_matched_users_guid(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let id = env.upload("students.csv", &students(3)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(id).await["status"], "completed");
    let (g2, u2) = guid_of(&env, "S2").await;
    let (g3, u3) = guid_of(&env, "S3").await;

    // S2: a bad grade (validation); S3: an email another user (the admin) holds (the
    // planner); S4: a new user with a bad grade.
    let admin = &env.district.admin_email;
    let file = format!(
        "{HEADER}\nS1,s1@d.org,Ann1,Lee,Student,HS,9,Active,\n\
         S2,s2@d.org,Ann2,Lee,Student,HS,13,Active,\n\
         S3,{admin},Ann3,Lee,Student,HS,9,Active,\n\
         S4,s4@d.org,Di,Ono,Student,HS,77,Active,\n"
    );
    let id = env.upload("students.csv", &file).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["counts"]["errors"], 3, "{s}");

    let (name, bytes) = download(&env, &format!("/uploads/{id}/files/errors")).await;
    let (header, rows) = records(&bytes);
    let n = HEADER.split(',').count();
    assert_eq!(
        &header[n..],
        &["user_guid", "Error"],
        "the GUID column, then Error on the far right"
    );
    let row = |cid: &str| rows.iter().find(|r| &r[0] == cid).unwrap().clone();
    assert_eq!(&row("S2")[n], g2.to_string());
    assert_eq!(&row("S3")[n], g3.to_string());
    assert_eq!(&row("S4")[n], "", "a new user has no GUID yet");

    // The run page names the users of error rows by username, not by GUID.
    let page = env.c.get(&format!("/uploads/{id}")).await;
    for (g, u) in [(g2, &u2), (g3, &u3)] {
        assert!(
            page.body
                .contains(&format!("<a href=\"/users/{g}\">{u}</a>")),
            "{u}: {}",
            page.body
        );
        assert!(!page.body.contains(&format!(">{g}<")), "no raw GUID shown");
    }

    // Fixed (S3's email put back, grades fixed) and sent as downloaded: the GUIDs find them.
    let fixed = String::from_utf8(bytes)
        .unwrap()
        .replace(",13,", ",10,")
        .replace(",77,", ",8,")
        .replace(&format!("S3,{admin}"), "S3,s3@d.org");
    let id = env.upload(&name, &fixed).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed", "{s}");
    let c = &s["counts"];
    assert_eq!(
        (
            c["created"].as_i64(),
            c["updated"].as_i64(),
            c["unchanged"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let grade: String = sqlx::query_scalar("SELECT grade FROM users WHERE id = $1")
        .bind(g2)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(grade, "10");
    assert!(archived(&env).await.is_empty());
}

/// Students and adults from two files, then the master CSV downloaded.
async fn two_files_and_the_master(env: &UploadEnv) -> (String, Vec<u8>) {
    for (name, body) in [("students.csv", students(12)), ("adults.csv", adults(4))] {
        let id = env.upload(name, &body).await;
        env.app.queue.drain().await.unwrap();
        assert_eq!(env.status(id).await["status"], "completed");
    }
    download(env, "/users.csv").await
}

/// The master CSV without the rows of the given custom_ids.
fn without(master: &[u8], gone: &[&str]) -> Vec<u8> {
    let text = String::from_utf8(master.to_vec()).unwrap();
    text.lines()
        .filter(|l| !gone.iter().any(|g| l.contains(&format!(",{g},"))))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

#[sqlx::test(migrations = "./migrations")]
async fn master_csv_with_two_rows_removed_archives_two_with_district_scope_and_none_with_source(
    pool: PgPool,
) {
    let env = UploadEnv::new(pool).await;
    let (name, master) = two_files_and_the_master(&env).await;
    let edited = without(&master, &["S3", "T2"]);
    assert_eq!(
        records(&edited).1.len(),
        12 + 4 + 1 - 2,
        "the admin is in it too"
    );

    // Source scope (the form's default): the master's own source owns nobody.
    let id = env
        .upload(&name, &String::from_utf8(edited.clone()).unwrap())
        .await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["archived"], 0);
    assert_eq!(s["counts"]["errors"], 0);
    assert!(archived(&env).await.is_empty());
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(
        page.body.contains("upload it with scope district"),
        "the page says how removing rows archives users: {}",
        page.body
    );

    // District scope: Needs Review first, listing exactly the two; nothing archived yet.
    let id = upload_scoped(&env, &name, &edited, "district").await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "needs_review", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("would archive 2 users missing from the file"),
        "{s}"
    );
    assert!(
        archived(&env).await.is_empty(),
        "nothing happens before the review"
    );
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(page.body.contains("Would archive (2)"), "{}", page.body);
    assert!(page.body.contains("Ann3 Lee") && page.body.contains("Tom2 Hall"));
    assert!(page.body.contains("scope: district"));

    // Approved: exactly those two are archived.
    assert_eq!(
        env.c
            .post(&format!("/uploads/{id}/approve"), &[])
            .await
            .status,
        303
    );
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["archived"], 2);
    assert_eq!(
        archived(&env).await,
        vec!["S3".to_string(), "T2".to_string()]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn master_csv_has_a_stable_name_and_a_bom(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let id = env
        .upload(
            "students.csv",
            &format!("{HEADER}\nS1,s1@d.org,José,Núñez,Student,HS,9,Active,\n"),
        )
        .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(id).await["status"], "completed");

    let (name, bytes) = download(&env, "/users.csv").await;
    assert_eq!(
        name, "springfield-users.csv",
        "no date: the same name every day"
    );
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBFuser_guid,"),
        "UTF-8 with a BOM"
    );
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(text.contains("José,,Núñez"), "accents intact");
    let (again, _) = download(&env, "/users.csv").await;
    assert_eq!(again, name);
    let (filtered, _) = download(&env, "/users.csv?role=Student").await;
    assert_eq!(
        filtered, "springfield-users-filtered.csv",
        "a filtered copy is not the master"
    );

    // `rollcall export` writes the same bytes.
    let mut out = Vec::new();
    rollcall::ops::export_master(&env.app.pool, env.district.id, &mut out)
        .await
        .unwrap();
    assert_eq!(out, bytes);

    // The reader strips the BOM on the way back in: user_guid is a column like any other.
    let id = env.upload(&name, text).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(
        (
            s["counts"]["unchanged"].as_i64(),
            s["counts"]["errors"].as_i64()
        ),
        (Some(2), Some(0))
    );
    let ignored: Vec<String> = sqlx::query_scalar("SELECT ignored_columns FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(ignored.is_empty(), "{ignored:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn master_csv_sent_back_unchanged_is_a_no_op(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let (name, master) = two_files_and_the_master(&env).await;
    let before = fingerprint(&env).await;
    for scope in ["source", "district", "patch"] {
        let id = upload_scoped(&env, &name, &master, scope).await;
        env.app.queue.drain().await.unwrap();
        let s = env.status(id).await;
        assert_eq!(s["status"], "completed", "{scope}: {s}");
        let c = &s["counts"];
        assert_eq!(
            (
                c["created"].as_i64(),
                c["updated"].as_i64(),
                c["unchanged"].as_i64(),
                c["archived"].as_i64(),
                c["errors"].as_i64()
            ),
            (Some(0), Some(0), Some(17), Some(0), Some(0)),
            "{scope}"
        );
        assert_eq!(fingerprint(&env).await, before, "{scope}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn scope_is_accepted_on_every_way_in(pool: PgPool) {
    let env = {
        let app = TestApp::spawn_with(pool, |c| c.drop_settle_secs = 0).await;
        let district = app.district("springfield").await;
        app.school(district.id, "HS", "High School").await;
        let c = app.client();
        assert_eq!(
            c.sign_in(&district.admin_email, &district.admin_password)
                .await
                .status,
            303
        );
        UploadEnv { app, district, c }
    };
    let mut file = students(3);
    file += "S4,s4@d.org,Bo,Kim,Student,HS,13,Active,\n";
    let first = env.upload("students.csv", &file).await;
    env.app.queue.drain().await.unwrap();

    // The form: a scope chosen by hand, shown in the history and on the run page.
    let page = env.c.get("/uploads").await;
    for scope in ["source", "district", "patch"] {
        assert!(
            page.body
                .contains(&format!("name=\"scope\" value=\"{scope}\"")),
            "{scope}"
        );
    }
    assert!(
        page.body.contains("value=\"source\" checked"),
        "source is the default"
    );
    let id = upload_scoped(&env, "adults.csv", adults(2).as_bytes(), "district").await;
    assert_eq!(
        run_scope_and_source(&env, id).await.0.as_deref(),
        Some("district")
    );
    env.app.queue.drain().await.unwrap();
    assert!(env.c.get("/uploads").await.body.contains("scope: district"));
    assert!(
        env.c
            .get(&format!("/uploads/{id}"))
            .await
            .body
            .contains("scope: district")
    );
    // Left untouched, the form's preselected source is the default: an error file is a patch.
    let r = upload_form(
        &env,
        "students-errors.csv",
        format!("{HEADER},Error\nS4,s4@d.org,Bo,Kim,Student,HS,12,Active,,x\n").as_bytes(),
        &[("scope", "source")],
    )
    .await;
    let id = run_id(&r.location.unwrap());
    assert_eq!(
        run_scope_and_source(&env, id).await,
        (Some("patch".into()), "file:students.csv".into())
    );
    env.app.queue.drain().await.unwrap();

    // The API's `scope` field.
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "nightly",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("scope", "patch")
        .text("dry_run", "yes")
        .part(
            "file",
            reqwest::multipart::Part::bytes(adults(1).into_bytes()).file_name("adults.csv"),
        );
    let r = reqwest::Client::new()
        .post(env.app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id: Uuid = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        run_scope_and_source(&env, id).await.0.as_deref(),
        Some("patch")
    );
    let dry: bool = sqlx::query_scalar("SELECT dry_run FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(dry, "dry_run=yes reads as it does on every way in");
    let status: serde_json::Value = reqwest::Client::new()
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["scope"], "patch", "{status}");
    env.app.queue.drain().await.unwrap();

    // The command line's `--scope` (the real binary against this test's database).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adults.csv");
    std::fs::write(&path, adults(2)).unwrap();
    let out = rollcall_bin(&env.app)
        .args(["import", "--district", "springfield", "--scope", "patch"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id: Uuid = summary["run_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        run_scope_and_source(&env, id).await,
        (Some("patch".into()), "file:adults.csv".into())
    );

    // The drop folder: a regular file covers its source; one with an Error column is a patch
    // that goes home.
    let q = &env.app.queue;
    let dir = rollcall::jobs::drop::folder(&q.config.data_dir, "springfield", None);
    rollcall::jobs::drop::scan(q).await.unwrap();
    std::fs::write(dir.join("adults.csv"), adults(2)).unwrap();
    std::fs::write(
        dir.join("students-errors.csv"),
        format!("{HEADER},Error\nS4,s4@d.org,Bo,Kim,Student,HS,11,Active,,x\n"),
    )
    .unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    let drops: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, file_name FROM runs WHERE kind = 'drop' ORDER BY file_name")
            .fetch_all(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(drops.len(), 2, "{drops:?}");
    assert_eq!(
        run_scope_and_source(&env, drops[0].0).await,
        (Some("source".into()), "file:adults.csv".into())
    );
    assert_eq!(
        run_scope_and_source(&env, drops[1].0).await,
        (Some("patch".into()), "file:students.csv".into())
    );
    q.drain().await.unwrap();
    let options: serde_json::Value = sqlx::query_scalar("SELECT options FROM runs WHERE id = $1")
        .bind(drops[1].0)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(options["error_file_of"]["run_id"], first.to_string());
    assert!(
        options["drop_path"].is_string(),
        "the drop folder's own option is kept"
    );
}

/// The `rollcall` binary pointed at this test's database.
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

#[sqlx::test(migrations = "./migrations")]
async fn unknown_scope_is_a_clear_error(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs")
            .fetch_one(&env.app.pool)
            .await
            .unwrap()
    };

    // The API: 422, like its other field errors, naming the allowed values.
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "x",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    for (field, value, says) in [
        ("scope", "everything", "source, district, patch"),
        ("dry_run", "maybe", "true, false"),
    ] {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(students(1).into_bytes()).file_name("s.csv"),
            )
            .text(field, value);
        let r = reqwest::Client::new()
            .post(env.app.url("/api/v1/uploads"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{field}");
        let body: serde_json::Value = r.json().await.unwrap();
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(value) && msg.contains(says), "{msg}");
    }

    // The form: a 400 page that says the same.
    let r = upload_form(
        &env,
        "s.csv",
        students(1).as_bytes(),
        &[("scope", "everything"), ("scope_touched", "1")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("source, district, patch"), "{}", r.body);
    assert_eq!(runs().await, 0, "nothing queued");
    let uploads = env.app.queue.config.data_dir.join("uploads");
    let kept = walk_files(&uploads);
    assert_eq!(kept, 0, "nothing of the refused files kept");

    // The command line: clap refuses it, naming the values.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.csv");
    std::fs::write(&path, students(1)).unwrap();
    let out = rollcall_bin(&env.app)
        .args([
            "import",
            "--district",
            "springfield",
            "--scope",
            "everything",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("everything") && err.contains("source, district, patch"),
        "{err}"
    );
    assert_eq!(runs().await, 0);
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { walk_files(&p) } else { 1 }
        })
        .sum()
}
