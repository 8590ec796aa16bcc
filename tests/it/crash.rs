//! The real binary killed with SIGKILL in the middle of a 200,000-row run, then restarted:
//! the run is picked up again, completes once, and the database equals a clean run's.

use crate::helpers::*;
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn database_url(pool_db: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let (head, query) = base.split_once('?').unwrap_or((&base, ""));
    let root = head.rsplit_once('/').map(|(r, _)| r).unwrap_or(head);
    if query.is_empty() {
        format!("{root}/{pool_db}")
    } else {
        format!("{root}/{pool_db}?{query}")
    }
}

fn serve(url: &str, data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url)
        .env("ROLLCALL_DATA_DIR", data)
        .env("ROLLCALL_WORKERS", "1")
        .env("ROLLCALL_DROP_POLL_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts")
}

async fn wait_up(base: &str) {
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not come up");
}

/// Users of a district as comparable text (no ids, timestamps or password hashes).
async fn fingerprint(pool: &PgPool, district: uuid::Uuid) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), md5(string_agg(concat_ws('|', u.custom_id, u.email, u.username, u.first_name, u.last_name, u.role,
                    u.grade, u.status, u.archived_at IS NULL, u.password_temporary,
                    (SELECT string_agg(s.external_id, ';') FROM user_schools us JOIN schools s ON s.id = us.school_id
                     WHERE us.district_id = u.district_id AND us.user_id = u.id)), ',' ORDER BY u.custom_id))
         FROM users u WHERE u.district_id = $1 AND u.source = 'file:students.csv'",
    )
    .bind(district)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn kill_9_during_a_200k_row_run_then_restart_applies_it_once(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = database_url(&db);
    let app = TestApp::spawn(pool.clone()).await;
    let crashed = app.district("crashed").await;
    let clean = app.district("clean").await;
    for d in [crashed.id, clean.id] {
        for s in 1..=20 {
            app.school(d, &format!("SCH{s:02}"), &format!("School {s}"))
                .await;
        }
    }
    let token = rollcall::ops::create_token(
        &pool,
        crashed.id,
        "crash",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut csv =
        String::from("custom_id,email,first_name,last_name,role,school_external_id,grade\n");
    for i in 0..200_000u32 {
        csv += &format!(
            "S{i:06},s{i:06}@d.org,First{},Last{},Student,SCH{:02},{}\n",
            i % 97,
            i % 89,
            i % 20 + 1,
            i % 12 + 1
        );
    }
    let file = dir.path().join("students.csv");
    std::fs::write(&file, &csv).unwrap();

    // The clean run, for comparison.
    let config = rollcall::config::Config::for_tests(dir.path().to_path_buf());
    let s = rollcall::ops::import_file(
        &pool,
        &app.clock,
        &config,
        clean.id,
        &file,
        None,
        false,
        false,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(s.created, 200_000);

    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&url, &data, port);
    wait_up(&base).await;
    let http = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("students.csv"),
    );
    let r = http
        .post(format!("{base}/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id: uuid::Uuid = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Wait until it is writing, then SIGKILL.
    let start = Instant::now();
    loop {
        let (status, phase): (String, Option<String>) =
            sqlx::query_as("SELECT status, phase FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            status == "queued" || status == "in_progress",
            "the run finished before it could be killed ({status})"
        );
        if phase.as_deref() == Some("applying") || phase.as_deref() == Some("planning") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let (status, n): (String, i64) = sqlx::query_as(
        "SELECT status, (SELECT count(*) FROM users WHERE district_id = $2 AND source = 'file:students.csv') FROM runs WHERE id = $1",
    )
    .bind(id)
    .bind(crashed.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), n),
        ("in_progress", 0),
        "killed mid-run: nothing of it landed"
    );

    let mut server = serve(&url, &data, port);
    wait_up(&base).await;
    let start = Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        if status == "completed" {
            break;
        }
        assert!(
            !matches!(status.as_str(), "failed" | "completed_with_errors"),
            "{status}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the run was not picked up again ({status})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    server.wait().unwrap();

    let (created, attempts): (i32, i32) =
        sqlx::query_as("SELECT created, attempts FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (created, attempts),
        (200_000, 2),
        "completed once, on the second attempt"
    );
    let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE run_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        audits, 200_000,
        "one audit entry per user: the run applied once"
    );
    assert_eq!(
        fingerprint(&pool, crashed.id).await,
        fingerprint(&pool, clean.id).await,
        "the same users as a clean run"
    );
}
