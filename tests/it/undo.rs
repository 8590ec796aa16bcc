//! Undo a run (SPEC §4 "Undo") end to end against real PostgreSQL: through the run page over
//! HTTP (preview, then apply), the queue, the guard, and the real `rollcall undo` binary; and
//! a run's old → new values on its page and in its changes CSV.

use crate::helpers::*;
use rollcall::reconcile::undo_run;
use sqlx::PgPool;
use uuid::Uuid;

const HEADER: &str = UPLOAD_HEADER;

fn row(n: u32, first: &str, school: &str, grade: &str, status: &str) -> String {
    format!("S{n},s{n}@d.org,{first},Lee,Student,{school},{grade},{status},\n")
}

fn students(n: u32) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &row(i, &format!("Ann{i}"), "HS", "9", "Active");
    }
    s
}

impl UploadEnv {
    /// Upload and run it; returns the run id.
    async fn run_undo(&self, name: &str, body: &str) -> Uuid {
        let id = self.upload(name, body).await;
        self.app.queue.drain().await.unwrap();
        id
    }

    /// Everything an undo must give back, of the users named (all users when `None`): every
    /// column that matters (owner, status, archived, prevent_archiving included) and the
    /// memberships.
    async fn fingerprint(&self, users: Option<&[Uuid]>) -> String {
        let all: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1")
            .bind(self.district.id)
            .fetch_all(&self.app.pool)
            .await
            .unwrap();
        let users = users.map(<[Uuid]>::to_vec).unwrap_or(all);
        sqlx::query_scalar(
            "SELECT coalesce(string_agg(concat_ws('|', u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name,
                        u.last_name, u.role, u.grade, u.position, u.status, u.archived_at IS NOT NULL, u.source,
                        u.source_key, u.prevent_archiving, u.portal_role,
                        (SELECT string_agg(s.external_id, ';' ORDER BY s.external_id) FROM user_schools m
                         JOIN schools s ON s.district_id = m.district_id AND s.id = m.school_id
                         WHERE m.district_id = u.district_id AND m.user_id = u.id)), E'\\n' ORDER BY u.id), '')
             FROM users u WHERE u.district_id = $1 AND u.id = ANY($2)",
        )
        .bind(self.district.id)
        .bind(&users)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn user_ids(&self) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 ORDER BY id")
            .bind(self.district.id)
            .fetch_all(&self.app.pool)
            .await
            .unwrap()
    }

    async fn guid_undo(&self, custom_id: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
            .bind(self.district.id)
            .bind(custom_id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn archived(&self, custom_id: &str) -> bool {
        sqlx::query_scalar(
            "SELECT archived_at IS NOT NULL FROM users WHERE district_id = $1 AND custom_id = $2",
        )
        .bind(self.district.id)
        .bind(custom_id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    /// "Undo this run" (or "Apply undo") on the run page; returns the undo run's id.
    async fn press_undo(&self, run: Uuid, apply: bool) -> Uuid {
        let fields: &[(&str, &str)] = if apply { &[("apply", "true")] } else { &[] };
        let r = self.c.post(&format!("/uploads/{run}/undo"), fields).await;
        assert_eq!(r.status, 303, "{}", r.body);
        r.location
            .unwrap()
            .trim_start_matches("/uploads/")
            .parse()
            .unwrap()
    }

    async fn undo_now(&self, run: Uuid, dry_run: bool) -> undo_run::UndoSummary {
        undo_run::undo_now(
            &self.app.pool,
            &self.app.clock,
            self.district.id,
            run,
            dry_run,
            false,
        )
        .await
        .expect("undo runs")
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn undo_gives_back_the_exact_previous_state(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.app.school(env.district.id, "MS", "Middle School").await;
    env.run_undo("students.csv", &students(12)).await;
    // A manual user the next file adopts (the file takes them over: their owner changes).
    let mara = env.app.member(env.district.id, "mara", "user", &[]).await;
    let before_ids = env.user_ids().await;
    let before = env.fingerprint(None).await;

    let mut next = format!("{HEADER}\n");
    next += &row(1, "Ann1", "MS", "10", "Active"); // grade and school
    next += &row(2, "Anne", "HS", "9", "Active"); // first name
    next += &row(4, "Ann4", "HS", "9", "Inactive"); // status
    for i in 5..=12 {
        next += &row(i, &format!("Ann{i}"), "HS", "9", "Active");
    }
    next += "S20,s20@d.org,New,Kid,Student,HS,3,Active,\n"; // created
    next += ",mara@example.org,Mara,Lee,Teacher,HS,,Active,\n"; // adopts the manual user
    // S3 is missing: archived.
    let run = env.run_undo("students.csv", &next).await;
    let s = env.status(run).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(
        (
            s["counts"]["created"].as_i64(),
            s["counts"]["archived"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let source: String = sqlx::query_scalar("SELECT source FROM users WHERE id = $1")
        .bind(mara)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(
        source, "file:students.csv",
        "the file took the manual user over"
    );
    assert_ne!(env.fingerprint(Some(&before_ids)).await, before);

    let undo = env.undo_now(run, false).await;
    assert_eq!(undo.summary.status, "completed", "{undo:?}");
    assert_eq!(undo.undoes, run);
    assert!(undo.left.is_empty());
    assert_eq!(undo.summary.archived, 1, "the created user");
    assert_eq!(undo.summary.restored, 1, "the archived user");
    assert_eq!(undo.summary.updated, 4, "S1, S2, S4 and the adopted user");

    assert_eq!(
        env.fingerprint(Some(&before_ids)).await,
        before,
        "every user, owner, status, archive state and membership as before the run"
    );
    assert!(
        env.archived("S20").await,
        "the created user is archived, not deleted"
    );
    assert_eq!(env.user_ids().await.len(), before_ids.len() + 1);
    // Audited like any run: one entry per user written, carrying the undo's run id.
    let entries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND run_id = $2 AND entity_kind = 'user'",
    )
    .bind(env.district.id)
    .bind(undo.summary.run_id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(entries, 6);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_user_edited_after_the_run_is_left_and_listed(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_undo("students.csv", &students(3)).await;
    let mut next = format!("{HEADER}\n");
    next += &row(1, "Edith", "HS", "9", "Active");
    next += &row(2, "Bea", "HS", "9", "Active");
    next += &row(3, "Ann3", "HS", "9", "Active");
    let run = env.run_undo("students.csv", &next).await;
    // An admin makes S1 inactive after the run.
    let s1 = env.guid_undo("S1").await;
    let r = env
        .c
        .post(&format!("/users/{s1}/status"), &[("status", "inactive")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let edited = env.fingerprint(Some(&[s1])).await;

    let undo = env.press_undo(run, true).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(undo).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["updated"], 1, "only S2 is put back");
    let first: String = sqlx::query_scalar("SELECT first_name FROM users WHERE id = $1")
        .bind(env.guid_undo("S2").await)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(first, "Ann2");
    assert_eq!(
        env.fingerprint(Some(&[s1])).await,
        edited,
        "the user edited since is left exactly as the admin left them"
    );
    let page = env.c.get(&format!("/uploads/{undo}")).await;
    assert!(page.body.contains("Left as they are (1)"), "{}", page.body);
    assert!(page.body.contains(&format!("/users/{s1}")));
    assert!(
        page.body.contains(&env.district.admin_email) && page.body.contains("user.deactivate"),
        "says who changed them since, and how"
    );
    let summary = undo_run::undo_now(
        &env.app.pool,
        &env.app.clock,
        env.district.id,
        undo,
        true,
        false,
    )
    .await
    .expect("a preview of undoing the undo");
    assert_eq!(summary.summary.status, "completed");
}

#[sqlx::test(migrations = "./migrations")]
async fn undo_previews_first_and_writes_nothing(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let run = env.run_undo("students.csv", &students(3)).await;
    let before = env.fingerprint(None).await;
    let audit = |env: &UploadEnv| {
        let pool = env.app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM audit_log WHERE entity_kind = 'user'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let entries = audit(&env).await;

    let preview = env.press_undo(run, false).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(preview).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["applied"], false);
    assert_eq!(s["counts"]["archived"], 3, "what it would do");
    assert_eq!(env.fingerprint(None).await, before, "no user written");
    assert_eq!(audit(&env).await, entries, "no user audited");
    let page = env.c.get(&format!("/uploads/{preview}")).await;
    assert!(page.body.contains("Undo preview: nothing has been changed"));
    assert!(page.body.contains("Would archive"), "{}", page.body);
    assert!(page.body.contains("Apply undo"));
    // The undone run is not undone by a preview, and can still be undone.
    let original = env.c.get(&format!("/uploads/{run}")).await;
    assert!(!original.body.contains("Undone by"));
    assert!(original.body.contains("Undo this run"));
    // The CLI's preview writes nothing either.
    let cli = env.undo_now(run, true).await;
    assert!(cli.summary.dry_run);
    assert_eq!(cli.summary.archived, 3);
    assert_eq!(env.fingerprint(None).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn undoing_an_undo_redoes(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_undo("students.csv", &students(4)).await;
    let mut next = format!("{HEADER}\n");
    next += &row(1, "Anna", "HS", "10", "Inactive");
    next += &row(2, "Ann2", "HS", "9", "Active");
    next += &row(3, "Ann3", "HS", "9", "Active");
    next += "S9,s9@d.org,New,Kid,Student,HS,3,Active,\n";
    // S4 missing: archived.
    let run = env.run_undo("students.csv", &next).await;
    assert_eq!(env.status(run).await["status"], "completed");
    let after_run = env.fingerprint(None).await;

    let undo = env.undo_now(run, false).await;
    assert_eq!(undo.summary.status, "completed");
    assert_ne!(env.fingerprint(None).await, after_run);
    assert!(env.archived("S9").await && !env.archived("S4").await);

    let redo = env.undo_now(undo.summary.run_id, false).await;
    assert_eq!(redo.summary.status, "completed", "{redo:?}");
    assert_eq!((redo.summary.restored, redo.summary.archived), (1, 1));
    assert_eq!(
        env.fingerprint(None).await,
        after_run,
        "undoing the undo gives back the run's own result"
    );
    let page = env
        .c
        .get(&format!("/uploads/{}", undo.summary.run_id))
        .await;
    assert!(page.body.contains(&format!(
        "Undone by <a href=\"/uploads/{}\"",
        redo.summary.run_id
    )));
}

#[sqlx::test(migrations = "./migrations")]
async fn undo_passes_the_mass_change_guard(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let run = env.run_undo("students.csv", &students(30)).await;
    let before = env.fingerprint(None).await;
    let undo = env.press_undo(run, true).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(undo).await;
    assert_eq!(s["status"], "needs_review", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("would archive 30 of 30 users of students.csv"),
        "{s}"
    );
    assert_eq!(env.fingerprint(None).await, before, "nothing applied");
    let page = env.c.get(&format!("/uploads/{undo}")).await;
    assert!(page.body.contains("Approve and apply"));
    let original = env.c.get(&format!("/uploads/{run}")).await;
    assert!(original.body.contains("An undo of this run is on its way"));
    assert!(
        !original.body.contains("Undo this run"),
        "one undo at a time"
    );

    let r = env.c.post(&format!("/uploads/{undo}/approve"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.app.queue.drain().await.unwrap();
    let s = env.status(undo).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["archived"], 30);
    let archived: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND archived_at IS NOT NULL",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(archived, 30);
}

#[sqlx::test(migrations = "./migrations")]
async fn undo_from_the_run_page_over_http(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let run = env.run_undo("students.csv", &students(3)).await;
    let page = env.c.get(&format!("/uploads/{run}")).await;
    assert!(
        page.body
            .contains(&format!("action=\"/uploads/{run}/undo\""))
    );
    assert!(page.body.contains("Undo this run"));

    let preview = env.press_undo(run, false).await;
    env.app.queue.drain().await.unwrap();
    let page = env.c.get(&format!("/uploads/{preview}")).await;
    assert!(page.body.contains("Apply undo"), "{}", page.body);
    assert!(page.body.contains(&format!("href=\"/uploads/{run}\"")));
    assert!(!env.archived("S1").await);

    let real = env.press_undo(run, true).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(real).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["applied"], true);
    assert_eq!(s["counts"]["archived"], 3);
    assert!(env.archived("S1").await && env.archived("S3").await);
    let kind: String = sqlx::query_scalar("SELECT kind FROM runs WHERE id = $1")
        .bind(real)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(kind, "undo");

    let original = env.c.get(&format!("/uploads/{run}")).await;
    assert!(
        original
            .body
            .contains(&format!("Undone by <a href=\"/uploads/{real}\"")),
        "{}",
        original.body
    );
    assert!(!original.body.contains("Undo this run"));
    let preview_page = env.c.get(&format!("/uploads/{preview}")).await;
    assert!(
        !preview_page.body.contains("Apply undo</button>"),
        "a preview of a run already undone cannot be applied"
    );
    let again = env
        .c
        .post(&format!("/uploads/{run}/undo"), &[("apply", "true")])
        .await;
    assert_eq!(again.status, 409, "a run is undone once");
    // Without the form token nothing happens.
    let forged = env
        .c
        .post_raw(&format!("/uploads/{preview}/undo"), &[])
        .await;
    assert_eq!(forged.status, 403);
}

#[sqlx::test(migrations = "./migrations")]
async fn run_page_shows_old_and_new_values_and_the_changes_csv(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_undo("students.csv", &students(2)).await;
    let mut next = format!("{HEADER}\n");
    next += "S1,s1@d.org,Ann1,=cmd|calc,Student,HS,10,Active,Secret-pass-1\n";
    next += &row(2, "Ann2", "HS", "9", "Active");
    let run = env.run_undo("students.csv", &next).await;
    assert_eq!(env.status(run).await["counts"]["updated"], 1);

    let page = env.c.get(&format!("/uploads/{run}")).await;
    assert!(
        page.body.contains("grade</span>: 9 → 10"),
        "old → new on the page: {}",
        page.body
    );
    assert!(page.body.contains("last_name</span>: Lee → =cmd|calc"));
    assert!(page.body.contains(&format!("/uploads/{run}/changes.csv")));

    let r = env.c.get(&format!("/uploads/{run}/changes.csv")).await;
    assert_eq!(r.status, 200);
    let s1 = env.guid_undo("S1").await.to_string();
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(r.body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "2".to_string(),
                s1.clone(),
                "ann1.lee".into(),
                "last_name".into(),
                "Lee".into(),
                "'=cmd|calc".into()
            ],
            vec![
                "2".to_string(),
                s1,
                "ann1.lee".into(),
                "grade".into(),
                "9".into(),
                "10".into()
            ],
        ],
        "{}",
        r.body
    );
    assert!(r.body.starts_with("line,user_guid,username,field,old,new"));
    assert!(!r.body.contains("Secret-pass-1"), "never a password");

    // A dry run has field names only, and says so.
    let mut dry = format!("{HEADER}\n");
    dry += &row(1, "Ann1", "HS", "11", "Active");
    dry += &row(2, "Ann2", "HS", "9", "Active");
    let token = env.c.csrf().await;
    let form = reqwest::multipart::Form::new().text("dry_run", "on").part(
        "file",
        reqwest::multipart::Part::bytes(dry.into_bytes()).file_name("students.csv"),
    );
    let r = env
        .c
        .http
        .post(format!("{}/uploads?_csrf={token}", env.c.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let dry_id: Uuid = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    env.app.queue.drain().await.unwrap();
    let page = env.c.get(&format!("/uploads/{dry_id}")).await;
    assert!(page.body.contains("Field names only"), "{}", page.body);
    let r = env.c.get(&format!("/uploads/{dry_id}/changes.csv")).await;
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 3, "last_name and grade: {}", r.body);
    assert!(lines[2].ends_with(",grade,,"), "no values: {}", r.body);
}

#[sqlx::test(migrations = "./migrations")]
async fn cli_undo_prints_a_summary(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let run = env.run_undo("students.csv", &students(3)).await;
    let db = env
        .app
        .pool
        .connect_options()
        .get_database()
        .unwrap()
        .to_string();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (head, tail) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let url = format!("{}/{db}?{tail}", &head[..head.rfind('/').unwrap()]);
    let undo = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .args(["undo", "--district", "springfield", &run.to_string()])
            .args(extra)
            .output()
            .unwrap()
    };
    // A reader that has gone (`| head`) before the summary is printed: the command still
    // succeeds, without a panic on the closed pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .args([
            "undo",
            "--district",
            "springfield",
            &run.to_string(),
            "--dry-run",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = undo(&["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["archived"], 3);
    assert_eq!(s["undoes"], run.to_string());
    assert!(!env.archived("S1").await);

    let out = undo(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "run_id",
        "created",
        "updated",
        "unchanged",
        "restored",
        "archived",
        "errors",
        "status",
    ] {
        assert!(s.get(key).is_some(), "{key} in {s}");
    }
    assert_eq!(s["status"], "completed");
    assert_eq!(s["archived"], 3);
    assert_eq!(s["left"], serde_json::json!([]));
    assert!(env.archived("S1").await);

    let out = undo(&[]);
    assert!(!out.status.success(), "a run is undone once");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already undone"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sync_run_is_undone_like_an_upload(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let dir = std::path::Path::new("../shared/test-data/edfi-lms-toolkit/oneroster-1.1");
    for name in ["manifest.csv", "orgs.csv", "users.csv"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(dir.join(name)).unwrap()).unwrap();
    }
    let r = env
        .c
        .post_file(
            "/uploads",
            "oneroster.zip",
            zip.finish().unwrap().into_inner(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.app.queue.drain().await.unwrap();
    let (run, kind, source): (Uuid, String, String) = sqlx::query_as(
        "SELECT id, kind, source FROM runs WHERE district_id = $1 ORDER BY received_at DESC LIMIT 1",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(kind, "sync");
    let s = env.status(run).await;
    assert_eq!(s["counts"]["created"], 10, "{s}");

    // Ten of ten users: the guard stops it; approved, the sync's users are archived.
    let stopped = env.undo_now(run, false).await;
    assert_eq!(stopped.summary.status, "needs_review");
    let undo = undo_run::undo_now(
        &env.app.pool,
        &env.app.clock,
        env.district.id,
        run,
        false,
        true,
    )
    .await;
    assert!(
        undo.as_ref()
            .is_err_and(|e| e.to_string().contains("on its way")),
        "one undo at a time: {undo:?}"
    );
    let r = env
        .c
        .post(&format!("/uploads/{}/approve", stopped.summary.run_id), &[])
        .await;
    assert_eq!(r.status, 303);
    env.app.queue.drain().await.unwrap();
    let s = env.status(stopped.summary.run_id).await;
    assert_eq!(
        (s["status"].as_str(), s["counts"]["archived"].as_i64()),
        (Some("completed"), Some(10)),
        "{s}"
    );
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND source = $2 AND archived_at IS NULL",
    )
    .bind(env.district.id)
    .bind(&source)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);
}
