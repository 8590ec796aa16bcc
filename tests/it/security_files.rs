//! Files that cannot touch admins, and the smaller file holes of issue 20: a file row that
//! would change a portal administrator is a row error; passwords in files follow the length
//! rule; formula cells hidden behind whitespace are neutralised in the downloads; an
//! over-long record is refused before it is buffered; a file name with bidi controls is
//! cleaned; a run waiting for its district's lock shows as waiting.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const HEADER: &str = UPLOAD_HEADER;

type Env = UploadEnv;

impl UploadEnv {
    async fn file(&self, id: Uuid, kind: &str) -> String {
        let r = self.c.get(&format!("/uploads/{id}/files/{kind}")).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        r.body
    }

    async fn token(&self) -> String {
        rollcall::ops::create_token(
            &self.app.pool,
            self.district.id,
            "nightly",
            &rollcall::db::audit::Actor::cli(),
        )
        .await
        .unwrap()
    }

    /// Upload with an API token; returns the run id.
    async fn api_upload(&self, token: &str, name: &str, body: &str) -> Uuid {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name(name.to_string()),
        );
        let r = reqwest::Client::new()
            .post(self.app.url("/api/v1/uploads"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let body: serde_json::Value = r.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// The run's row errors, by line.
    async fn row_errors(&self, run: Uuid) -> Vec<(i64, String)> {
        sqlx::query_as(
            "SELECT line, error FROM run_rows WHERE run_id = $1 AND outcome = 'error' ORDER BY line",
        )
        .bind(run)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

/// Everything about a user a file could change, as stored.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Stored {
    email: Option<String>,
    username: String,
    first_name: String,
    last_name: String,
    role: String,
    status: String,
    source: String,
    portal_role: String,
    archived: bool,
    version: i64,
}

async fn stored(pool: &PgPool, email: &str) -> Stored {
    sqlx::query_as(
        "SELECT email, username, first_name, last_name, role, status, source, portal_role,
                archived_at IS NOT NULL AS archived, version
         FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Finding 9: one row with the admin's email, a new name and `status=Inactive`, sent with an
/// API token, used to take the admin over (inactive, renamed, owned by the file) and lock
/// them out. Now it is a row error naming the row and the column, and the admin keeps
/// everything and can still sign in.
#[sqlx::test(migrations = "./migrations")]
async fn an_api_file_row_cannot_deactivate_or_rename_the_district_admin(pool: PgPool) {
    let env = Env::new(pool).await;
    let admin = env.district.admin_email.clone();
    let before = stored(&env.app.pool, &admin).await;
    let token = env.token().await;
    let body = format!(
        "{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n,{admin},Evil,Owner,Staff,HS,,Inactive,\n"
    );
    let run = env.api_upload(&token, "staff.csv", &body).await;
    env.app.queue.drain().await.unwrap();

    let s = env.status(run).await;
    assert_eq!(s["status"], "completed_with_errors", "{s}");
    assert_eq!(s["counts"]["created"], 1, "the other row still goes in");
    let errors = env.row_errors(run).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, message) = &errors[0];
    assert_eq!(*line, 3);
    assert!(
        message.contains("line 3") && message.contains("\"status\""),
        "names the row and the column: {message}"
    );
    assert!(
        message.contains("administrators are managed in the portal"),
        "{message}"
    );
    assert_eq!(
        stored(&env.app.pool, &admin).await,
        before,
        "the admin is exactly as before"
    );
    let fresh = env.app.client();
    assert_eq!(
        fresh.sign_in(&admin, PASSWORD).await.status,
        303,
        "the admin can still sign in"
    );
}

/// Finding 9 through the browser upload, with a row that only renames the admin: the file
/// would take them over (their source would become the file), so it is refused too.
#[sqlx::test(migrations = "./migrations")]
async fn a_page_upload_cannot_take_over_the_district_admin(pool: PgPool) {
    let env = Env::new(pool).await;
    let admin = env.district.admin_email.clone();
    let before = stored(&env.app.pool, &admin).await;
    let body = format!("{HEADER}\n,{admin},Evil,Owner,Administrator,HS,,Active,\n");
    let run = env.upload("staff.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let errors = env.row_errors(run).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .1
            .contains("administrators are managed in the portal"),
        "{errors:?}"
    );
    assert_eq!(stored(&env.app.pool, &admin).await, before);

    // A row that matches the admin and changes nothing (the master CSV's row, by user_guid)
    // is simply unchanged.
    let guid: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&admin)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    let body = format!(
        "user_guid,email,first_name,last_name,role,school_external_id,status\n{guid},{admin},District,Admin,Administrator,,Active\n"
    );
    let run = env.upload("staff.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(run).await;
    assert_eq!(
        (
            s["counts"]["unchanged"].as_i64(),
            s["counts"]["errors"].as_i64()
        ),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(stored(&env.app.pool, &admin).await, before);
}

/// Finding 9: a school admin first created by a file (so that file owns them) and then
/// given portal rights is not archived when the file no longer lists them.
#[sqlx::test(migrations = "./migrations")]
async fn an_admin_missing_from_the_file_that_owns_them_is_not_archived(pool: PgPool) {
    let env = Env::new(pool).await;
    let school: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE external_id = 'HS'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    env.app
        .member(env.district.id, "principal", "school_admin", &[school])
        .await;
    sqlx::query("UPDATE users SET source = 'file:staff.csv' WHERE username = 'principal'")
        .execute(&env.app.pool)
        .await
        .unwrap();
    let before = stored(&env.app.pool, "principal@example.org").await;
    let body = format!("{HEADER}\nT1,t1@d.org,Tom,Hall,Teacher,HS,,Active,\n");
    let run = env.upload("staff.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(run).await;
    assert_eq!(s["counts"]["archived"], 0, "{s}");
    assert_eq!(stored(&env.app.pool, "principal@example.org").await, before);
    assert_eq!(
        env.app.client().sign_in("principal", PASSWORD).await.status,
        303
    );
}

/// Finding 10a: a password shorter than the sign-in rule (8 characters) is a row error naming
/// the row and the password column; no account is created with it and it appears in no
/// download.
#[sqlx::test(migrations = "./migrations")]
async fn a_short_password_in_a_file_is_a_row_error(pool: PgPool) {
    let env = Env::new(pool).await;
    let body = format!(
        "{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,Qz7!xw\nS2,s2@d.org,Bob,Ray,Student,HS,9,Active,long-enough-1\n"
    );
    let run = env.upload("students.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let errors = env.row_errors(run).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, message) = &errors[0];
    assert_eq!(*line, 2);
    assert!(
        message.contains("line 2") && message.contains("\"password\"") && message.contains('8'),
        "{message}"
    );
    assert!(!message.contains("Qz7!xw"), "never echoes the password");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE custom_id = 'S1'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no user created with the short password");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE custom_id = 'S2'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "the good row goes in");
    for kind in ["uploaded", "errors", "completed"] {
        let f = env.file(run, kind).await;
        assert!(!f.contains("Qz7!xw"), "{kind} file shows the password: {f}");
        assert!(!f.contains("long-enough-1"), "{kind} file shows a password");
    }
}

/// Finding 10b: `" =4+4"` and `"\n=3+3"` went out unprefixed in the uploaded and error files.
#[sqlx::test(migrations = "./migrations")]
async fn formula_cells_behind_whitespace_are_neutralised_in_downloads(pool: PgPool) {
    let env = Env::new(pool).await;
    let body = format!(
        "{HEADER}\nS1,s1@d.org,\" =4+4\",\"\n=3+3\",Student,HS,9,Active,\nS2,s2@d.org,\"\t@x\",\"\r+1\",Nope,HS,9,Active,\n"
    );
    let run = env.upload("students.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let cells = |text: &str| -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    };
    let uploaded = cells(&env.file(run, "uploaded").await);
    assert_eq!(uploaded[1][2], "' =4+4", "{uploaded:?}");
    assert_eq!(uploaded[1][3], "'\n=3+3", "{uploaded:?}");
    assert_eq!(uploaded[2][2], "'\t@x", "{uploaded:?}");
    assert_eq!(uploaded[2][3], "'\r+1", "{uploaded:?}");
    let errors = cells(&env.file(run, "errors").await);
    assert_eq!(errors.len(), 2, "the Nope row fails: {errors:?}");
    assert_eq!(errors[1][2], "'\t@x", "{errors:?}");
    assert_eq!(errors[1][3], "'\r+1", "{errors:?}");
    let completed = cells(&env.file(run, "completed").await);
    assert_eq!(completed[1][2], "' =4+4", "{completed:?}");
    assert_eq!(completed[1][3], "'\n=3+3", "{completed:?}");
}

/// Finding 10c: a record longer than the per-record limit (1 MiB) is refused with an error
/// naming its line, before the reader buffers it whole.
#[sqlx::test(migrations = "./migrations")]
async fn an_over_long_record_is_refused_with_its_line(pool: PgPool) {
    let env = Env::new(pool).await;
    let long = "x".repeat(1024 * 1024 + 10);
    let body = format!(
        "{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\nS2,s2@d.org,Bob,{long},Student,HS,9,Active,\n"
    );
    let run = env.upload("students.csv", &body).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(run).await;
    assert_eq!(s["status"], "failed", "{s}");
    let message = s["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 3") && message.contains("1 MiB"),
        "a clear error naming the row: {message}"
    );
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE source = 'file:students.csv'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(n, 0, "nothing of the file is applied");
}

/// Finding 10d: a right-to-left override in an upload's name showed a spoofed name in the
/// history (`invoice\u{202E}vsc.exe` reads as `invoiceexe.csv`).
#[sqlx::test(migrations = "./migrations")]
async fn bidi_controls_are_dropped_from_upload_names(pool: PgPool) {
    let env = Env::new(pool).await;
    let name = "stu\u{202E}vsc.stneduts\u{200B}\u{2066}x\u{2069}\u{200F}.csv";
    let form = reqwest::multipart::Form::new().percent_encode_noop().part(
        "file",
        reqwest::multipart::Part::bytes(
            format!("{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n").into_bytes(),
        )
        .file_name(name.to_string()),
    );
    let token = env.c.csrf().await;
    let r = env
        .c
        .http
        .post(env.app.url(&format!("/uploads?_csrf={token}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let history = env.c.get("/uploads").await;
    assert!(
        history.body.contains("stuvsc.stnedutsx.csv"),
        "the cleaned name is shown"
    );
    for c in ['\u{202E}', '\u{200B}', '\u{2066}', '\u{2069}', '\u{200F}'] {
        assert!(
            !history.body.contains(c),
            "U+{:04X} is in the history",
            c as u32
        );
    }
    let (file_name, source): (String, String) =
        sqlx::query_as("SELECT file_name, source FROM runs")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(file_name, "stuvsc.stnedutsx.csv");
    assert_eq!(source, "file:stuvsc.stnedutsx.csv");
}

/// Finding 10e: a run taken by a worker but waiting for its district's lock (another run or
/// a connection being deleted holds it) showed "In Progress" with a start time. It shows as
/// waiting, and its start time is when it got the lock.
#[sqlx::test(migrations = "./migrations")]
async fn a_run_waiting_for_the_district_lock_shows_as_waiting(pool: PgPool) {
    let env = Env::new(pool).await;
    let run = env
        .upload(
            "students.csv",
            &format!("{HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n"),
        )
        .await;
    // Hold the district's lock as a run's transaction does (the engine's own lock).
    let mut holder = env.app.pool.begin().await.unwrap();
    rollcall::db::reconcile::lock_district(&mut holder, env.district.id)
        .await
        .unwrap();
    let queue = env.app.queue.clone();
    let worker = tokio::spawn(async move { queue.run_one().await.unwrap() });

    // Wait (bounded) until the worker has taken the run and reached the lock.
    let mut seen = serde_json::Value::Null;
    for _ in 0..200 {
        seen = env.status(run).await;
        if seen["status_label"] != "Queued" || seen["attempts"] != 0 {
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                                WHERE l.locktype = 'advisory' AND NOT l.granted
                                  AND d.datname = current_database())",
            )
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
            if waiting {
                seen = env.status(run).await;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen["status_label"], "Waiting for another run of this district",
        "{seen}"
    );
    assert_eq!(seen["started_at"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["finished"], false);
    let page = env.c.get(&format!("/uploads/{run}")).await;
    assert!(
        page.body
            .contains("Waiting for another run of this district")
    );
    assert!(!page.body.contains("In Progress"));

    let released = env.app.clock.now();
    holder.commit().await.unwrap();
    assert!(worker.await.unwrap(), "the worker ran it");
    let s = env.status(run).await;
    assert_eq!(s["status"], "completed", "{s}");
    let started: time::OffsetDateTime = time::OffsetDateTime::parse(
        s["started_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        started >= released - time::Duration::seconds(1),
        "started when it got the lock ({started} vs released {released})"
    );
}
