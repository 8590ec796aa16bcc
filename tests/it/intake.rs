//! The intake, the same for every way in: the drop folder checks a file's columns like the
//! upload form; `dry_run` reads the same words on the form and in the API; a run whose
//! stored options cannot be read fails, saying so, instead of running with defaults.

use crate::helpers::{TestApp, UPLOAD_HEADER, UploadEnv};
use sqlx::PgPool;
use uuid::Uuid;

const SIS_FILE: &str =
    "Student Number,Given Name,Surname,Homeroom\n1001,Ann,Lee,4B\n1002,Bo,Kim,5A\n";

fn students(n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

async fn signed_in(pool: PgPool) -> UploadEnv {
    // Settled at once: a file is taken on the second scan that finds it unchanged.
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
}

async fn run_row(env: &UploadEnv, id: Uuid) -> (String, bool, Option<String>) {
    sqlx::query_as("SELECT status, dry_run, message FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_drop_folder_parks_a_file_whose_columns_need_mapping(pool: PgPool) {
    let env = signed_in(pool).await;
    let q = &env.app.queue;
    let dir = rollcall::jobs::drop::folder(&q.config.data_dir, "springfield", None);
    rollcall::jobs::drop::scan(q).await.unwrap();
    std::fs::write(dir.join("sis.csv"), SIS_FILE).unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    let (id, status): (Uuid, String) =
        sqlx::query_as("SELECT id, status FROM runs WHERE kind = 'drop'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(
        status, "needs_mapping",
        "the drop folder checks the columns like every way in"
    );
    q.drain().await.unwrap();
    assert_eq!(run_row(&env, id).await.0, "needs_mapping", "nothing ran");
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE portal_role = 'user'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(live, 0);
    // The mapper offers it, as for an upload.
    let mapper = env.c.get(&format!("/uploads/{id}/map")).await;
    assert_eq!(mapper.status, 200);
    assert!(mapper.body.contains("Student Number"), "{}", mapper.body);

    // A file whose columns are known is queued and runs.
    std::fs::write(dir.join("students.csv"), students(2)).unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    q.drain().await.unwrap();
    let (status, created): (String, i32) = sqlx::query_as(
        "SELECT status, created FROM runs WHERE kind = 'drop' AND file_name = 'students.csv'",
    )
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), created), ("completed", 2));
}

#[sqlx::test(migrations = "./migrations")]
async fn dry_run_reads_the_same_words_on_the_form_and_in_the_api(pool: PgPool) {
    let env = signed_in(pool).await;
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "nightly",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    for (word, dry) in [("yes", true), ("on", true), ("1", true), ("no", false)] {
        // The upload form.
        let csrf = env.c.csrf().await;
        let form = reqwest::multipart::Form::new().text("dry_run", word).part(
            "file",
            reqwest::multipart::Part::bytes(students(1).into_bytes()).file_name("students.csv"),
        );
        let r = env
            .c
            .http
            .post(format!("{}/uploads?_csrf={csrf}", env.c.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "form, dry_run={word}");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let id: Uuid = loc.trim_start_matches("/uploads/").parse().unwrap();
        assert_eq!(run_row(&env, id).await.1, dry, "form, dry_run={word}");

        // The API.
        let form = reqwest::multipart::Form::new().text("dry_run", word).part(
            "file",
            reqwest::multipart::Part::bytes(students(1).into_bytes()).file_name("students.csv"),
        );
        let r = reqwest::Client::new()
            .post(env.app.url("/api/v1/uploads"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "API, dry_run={word}");
        let id: Uuid = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(run_row(&env, id).await.1, dry, "API, dry_run={word}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_whose_options_cannot_be_read_fails_saying_so(pool: PgPool) {
    let env = signed_in(pool).await;
    let id = env.upload("students.csv", &students(2)).await;
    // Options a run cannot read (here: a mapping override of the wrong shape).
    sqlx::query("UPDATE runs SET options = '{\"overrides\": \"email=custom_id\"}' WHERE id = $1")
        .bind(id)
        .execute(&env.app.pool)
        .await
        .unwrap();
    env.app.queue.drain().await.unwrap();
    let (status, _, message) = run_row(&env, id).await;
    assert_eq!(status, "failed", "not run with default options");
    let message = message.unwrap_or_default();
    assert!(message.contains("options cannot be read"), "{message}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE portal_role = 'user'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing was applied");
}
