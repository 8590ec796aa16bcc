//! Roster syncs end to end: the real clients against the fake providers over HTTP, the job
//! queue, the reconcile engine and PostgreSQL; OneRoster CSV sets; the Syncs screen.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::config::Config;
use rollcall::db;
use rollcall::reconcile::run::Summary;
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const SECRET: &str = "or-client-secret-7f3a9c1e5d";
const CLEVER_TOKEN: &str = "clever-district-token-b41d97e2";

struct Env {
    app: TestApp,
    district: District,
    client: Client,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let app = TestApp::spawn(pool).await;
        let district = app.district("springfield").await;
        let client = app.client();
        client
            .sign_in(&district.admin_email, &district.admin_password)
            .await;
        Env {
            app,
            district,
            client,
        }
    }

    /// Add a connection through the page; returns its id.
    async fn connect(&self, fields: &[(&str, &str)]) -> Uuid {
        let page = self.client.post("/syncs", fields).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let loc = page.location.expect("redirect to the connection");
        loc.trim_start_matches("/syncs/").parse().unwrap()
    }

    async fn connect_oneroster(&self, fake: &Fake) -> Uuid {
        self.connect(&[
            ("kind", "oneroster_rest"),
            ("name", "ClassLink"),
            ("base_url", &fake.url()),
            ("client_id", "rollcall"),
            ("secret", SECRET),
            ("interval_hours", "6"),
        ])
        .await
    }

    /// "Sync now", then let the job queue work; returns the run.
    async fn sync_now(&self, conn: Uuid) -> db::runs::Run {
        let page = self.client.post(&format!("/syncs/{conn}/run"), &[]).await;
        assert_eq!(page.status, 303);
        // Until the run's status is final (a failed attempt waits in the queue for its retry).
        crate::helpers::settle(&self.app, self.district.id, &format!("sync:{conn}")).await
    }

    async fn last_run(&self, conn: Uuid) -> db::runs::Run {
        let source = format!("sync:{conn}");
        db::syncs::recent_runs(&self.app.pool, self.district.id, Some(&source), 1)
            .await
            .unwrap()
            .pop()
            .expect("a run")
    }

    async fn user(&self, custom_id: &str) -> (String, String, bool, String, String) {
        sqlx::query_as(
            "SELECT first_name, status, archived_at IS NOT NULL, source, grade FROM users WHERE district_id = $1 AND custom_id = $2",
        )
        .bind(self.district.id)
        .bind(custom_id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn live_users(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE district_id = $1 AND archived_at IS NULL AND portal_role = 'user'",
        )
        .bind(self.district.id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

fn counts(r: &db::runs::Run) -> [i32; 6] {
    [
        r.created,
        r.updated,
        r.unchanged,
        r.restored,
        r.archived,
        r.errors,
    ]
}

fn oneroster() -> Provider {
    Provider {
        client_id: "rollcall".into(),
        client_secret: SECRET.into(),
        max_page: 100,
        orgs: vec![
            or_org("D1", "Springfield USD", "district"),
            or_org("HS", "Springfield High", "school"),
            or_org("MS", "Springfield Middle", "school"),
        ],
        users: vec![
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
            or_user("s3", "student", "Cy", "Fox", "06", "MS"),
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
            or_user("a1", "aide", "Ed", "Orr", "", "MS"),
            or_user("g1", "guardian", "Flo", "Lee", "", "HS"),
        ],
        ..Default::default()
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn oneroster_full_sync_then_a_sync_with_changes(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;

    let run = env.sync_now(conn).await;
    assert_eq!(run.kind, "sync");
    assert_eq!(run.source, format!("sync:{conn}"));
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(counts(&run), [5, 0, 0, 0, 0, 0]);
    let message = run.message.clone().unwrap_or_default();
    assert!(message.contains("1 guardian"), "{message}");
    let schools: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, name FROM schools WHERE district_id = $1 ORDER BY external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        schools,
        vec![
            ("HS".into(), "Springfield High".into()),
            ("MS".into(), "Springfield Middle".into())
        ]
    );
    let (first, status, archived, source, grade) = env.user("ID-s1").await;
    assert_eq!(
        (first.as_str(), status.as_str(), archived, grade.as_str()),
        ("Ann", "active", false, "9")
    );
    assert_eq!(source, format!("sync:{conn}"));
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE custom_id = 'ID-a1'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(role, "Staff", "aide → Staff");

    // The provider changes: s1 renamed, s2 gone, s3 to be deleted, t1 disabled, s4 new.
    fake.with(|p| {
        p.users[0]["givenName"] = "Anna".into();
        p.users[2]["status"] = "tobedeleted".into();
        p.users[3]["enabledUser"] = "false".into();
        p.users.remove(1);
        p.users
            .push(or_user("s4", "student", "Gus", "Hale", "KG", "MS"));
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    // created, updated, unchanged, restored, archived, errors
    assert_eq!(counts(&run), [1, 2, 1, 0, 2, 0]);
    assert_eq!(env.user("ID-s1").await.0, "Anna");
    assert!(
        env.user("ID-s2").await.2,
        "missing from the provider: archived"
    );
    assert!(env.user("ID-s3").await.2, "tobedeleted: archived");
    let t1 = env.user("ID-t1").await;
    assert_eq!(
        (t1.1.as_str(), t1.2),
        ("inactive", false),
        "disabled → Inactive"
    );
    assert_eq!(env.user("ID-s4").await.4, "K");

    // Nothing changed at the provider: nothing changes here (s3, still to be deleted and
    // already archived, is unchanged too).
    let run = env.sync_now(conn).await;
    assert_eq!(counts(&run), [0, 0, 5, 0, 0, 0]);

    // The history shows the runs like uploads.
    let page = env.client.get(&format!("/syncs/{conn}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Completed"), "{}", page.body);
}

#[sqlx::test(migrations = "./migrations")]
async fn paging_over_several_pages_and_an_expired_token_refreshed(pool: PgPool) {
    let env = Env::new(pool).await;
    let mut p = oneroster();
    p.max_page = 2;
    p.users = (1..=7)
        .map(|i| {
            or_user(
                &format!("u{i}"),
                "student",
                &format!("N{i}"),
                "Page",
                "05",
                "HS",
            )
        })
        .collect();
    // orgs take 2 pages; the token expires after the third data request (mid users).
    p.expire_tokens_after = Some(3);
    let fake = Fake::start(p).await;
    let conn = env.connect_oneroster(&fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(counts(&run), [7, 0, 0, 0, 0, 0]);
    let (tokens, requests) = fake.with(|p| (p.token_requests, p.data_requests));
    assert_eq!(tokens, 2, "one token, refreshed once");
    // orgs: 2 pages (3 orgs, 2 a page); users: 4 pages; plus the refused request; then one
    // (empty) page of each roster list: academicSessions, courses, classes, enrollments.
    assert_eq!(requests, 2 + 4 + 1 + 4);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_server_error_midway_leaves_everything_unchanged_and_the_run_failed(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    assert_eq!(env.sync_now(conn).await.status, "completed");
    let before = env.live_users().await;
    assert_eq!(before, 5);

    // Everyone renamed or dropped at the provider, but the users list breaks half-way.
    fake.with(|p| {
        p.users.truncate(1);
        p.users[0]["givenName"] = "Changed".into();
        p.max_page = 1;
        p.fail_from = Some(p.data_requests + 2);
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed");
    let message = run.message.unwrap_or_default();
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(message.contains("4 attempts"), "three retries: {message}");
    assert_eq!(env.live_users().await, before);
    assert_eq!(env.user("ID-s1").await.0, "Ann");
}

#[sqlx::test(migrations = "./migrations")]
async fn clever_schools_and_users_by_role_over_pages(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(Provider {
        max_page: 2,
        clever_token: CLEVER_TOKEN.into(),
        clever_schools: vec![
            clever_school("5f1", "Lincoln Elementary"),
            clever_school("5f2", "Lincoln Middle"),
            clever_school("5f3", "Lincoln High"),
        ],
        clever_users: vec![
            clever_user("c1", "student", "Ana", "Diaz", "1001", "5f1"),
            clever_user("c2", "student", "Ben", "Diaz", "1002", "5f1"),
            clever_user("c3", "student", "Cal", "Diaz", "1003", "5f3"),
            clever_user("c4", "teacher", "Dee", "Ames", "T-4", "5f2"),
            clever_user("c5", "staff", "Eve", "Ames", "E-5", "5f2"),
        ],
        ..Default::default()
    })
    .await;
    let conn = env
        .connect(&[
            ("kind", "clever"),
            ("name", "Clever"),
            ("base_url", &fake.url()),
            ("secret", CLEVER_TOKEN),
        ])
        .await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(counts(&run), [5, 0, 0, 0, 0, 0]);
    assert_eq!(env.user("1003").await.4, "9");
    let teacher: (String, String) =
        sqlx::query_as("SELECT role, source_key FROM users WHERE custom_id = 'T-4'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(teacher, ("Teacher".into(), "c4".into()));
    let staff: String = sqlx::query_scalar("SELECT role FROM users WHERE custom_id = 'E-5'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(staff, "Staff");
    let schools: i64 = sqlx::query_scalar("SELECT count(*) FROM schools WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(schools, 3);

    // A revoked token: the sync fails, nothing changes.
    fake.with(|p| p.clever_token = "another".into());
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed");
    assert!(run.message.unwrap().contains("401"));
    assert_eq!(env.live_users().await, 5);
}

// ---- OneRoster CSV sets ----

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/test-data/edfi-lms-toolkit/oneroster-1.1")
}

fn zip_dir(dir: &Path, out: &Path) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        w.start_file(entry.file_name().to_str().unwrap(), opts)
            .unwrap();
        w.write_all(&std::fs::read(entry.path()).unwrap()).unwrap();
    }
    w.finish().unwrap();
}

fn zip_of(out: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap();
}

async fn import_set(env: &Env, path: &Path) -> Summary {
    let config = Config::for_tests(env.app.queue.config.data_dir.clone());
    rollcall::sync::import_set(
        &env.app.pool,
        &env.app.clock,
        &config,
        env.district.id,
        path,
        false,
    )
    .await
    .expect("the import runs")
}

#[sqlx::test(migrations = "./migrations")]
async fn the_oneroster_sample_set_imports_with_its_expected_outcomes(pool: PgPool) {
    let env = Env::new(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("classlink.zip");
    zip_dir(&sample_dir(), &zip);

    let s = import_set(&env, &zip).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.archived, s.errors),
        (10, 0, 0, 0, 0)
    );
    let schools: Vec<(String, String)> =
        sqlx::query_as("SELECT external_id, name FROM schools WHERE district_id = $1")
            .bind(env.district.id)
            .fetch_all(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(
        schools,
        vec![("255901001".into(), "Grand Bend High School".into())]
    );
    let roles: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT role, grade, count(*) FROM users WHERE district_id = $1 AND portal_role = 'user'
         GROUP BY role, grade ORDER BY role",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        roles,
        vec![
            ("Student".into(), "9".into(), 8),
            ("Teacher".into(), "Unspecified".into(), 2)
        ]
    );
    let mary: (String, String) =
        sqlx::query_as("SELECT username, email FROM users WHERE custom_id = '604863'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(
        mary,
        ("Mary Archer".into(), "mary.archer@studentgps.org".into())
    );

    // The same set again, this time as a folder: a no-op.
    let s = import_set(&env, &sample_dir()).await;
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.archived, s.errors),
        (0, 0, 10, 0, 0)
    );
    let runs = db::syncs::recent_runs(&env.app.pool, env.district.id, None, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.kind == "sync" && r.source.starts_with("sync:"))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_delta_set_never_archives(pool: PgPool) {
    let env = Env::new(pool).await;
    assert_eq!(import_set(&env, &sample_dir()).await.created, 10);
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("delta.zip");
    let users = std::fs::read_to_string(sample_dir().join("users.csv")).unwrap();
    let mut lines = users.lines();
    let one = format!("{}\n{}\n", lines.next().unwrap(), lines.next().unwrap())
        .replace(",Mary,Archer,", ",Maria,Archer,");
    zip_of(
        &zip,
        &[
            (
                "manifest.csv",
                b"propertyName,value\nmanifest.version,1\noneroster.version,1.1\nfile.orgs,absent\nfile.users,delta\n"
                    .to_vec(),
            ),
            ("users.csv", one.into_bytes()),
        ],
    );
    let s = import_set(&env, &zip).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!((s.updated, s.archived), (1, 0));
    assert_eq!(env.live_users().await, 10);
    assert!(s.message.unwrap().contains("delta"));
}

#[sqlx::test(migrations = "./migrations")]
async fn zip_bombs_traversal_and_oversized_files_are_refused(pool: PgPool) {
    let env = Env::new(pool).await;
    let dir = tempfile::tempdir().unwrap();

    let evil = dir.path().join("evil.zip");
    zip_of(
        &evil,
        &[
            (
                "manifest.csv",
                b"propertyName,value\nfile.users,bulk\n".to_vec(),
            ),
            ("../../users.csv", b"sourcedId\n".to_vec()),
        ],
    );
    let s = import_set(&env, &evil).await;
    assert_eq!(s.status, "failed");
    assert!(s.message.unwrap().contains("outside the archive"));

    let bomb = dir.path().join("bomb.zip");
    zip_of(
        &bomb,
        &[
            (
                "manifest.csv",
                b"propertyName,value\nfile.users,bulk\n".to_vec(),
            ),
            ("users.csv", vec![b' '; 8 * 1024 * 1024]),
        ],
    );
    let s = import_set(&env, &bomb).await;
    assert_eq!(s.status, "failed");
    assert!(s.message.unwrap().contains("zip bomb"));

    let config = Config {
        max_upload_mb: 1,
        ..Config::for_tests(dir.path().to_path_buf())
    };
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    std::fs::write(
        big.join("manifest.csv"),
        "propertyName,value\nfile.users,bulk\n",
    )
    .unwrap();
    std::fs::write(big.join("users.csv"), vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let s = rollcall::sync::import_set(
        &env.app.pool,
        &env.app.clock,
        &config,
        env.district.id,
        &big,
        false,
    )
    .await
    .unwrap();
    assert_eq!(s.status, "failed");
    assert!(s.message.unwrap().contains("larger than the limit"));
    assert_eq!(env.live_users().await, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_zip_past_the_size_limit_answers_413_like_every_upload(pool: PgPool) {
    let env = Env::new(pool).await;
    let conn = env
        .connect(&[("kind", "oneroster_csv"), ("name", "Nightly SIS set")])
        .await;
    // Past the 2 MiB limit, within the body's room for multipart framing: the intake's
    // store refuses it, as on the upload form and in the API.
    let page = env
        .client
        .post_file(
            &format!("/syncs/{conn}/upload"),
            "set.zip",
            vec![b'x'; 2 * 1024 * 1024 + 64 * 1024],
        )
        .await;
    assert_eq!(page.status, 413, "{}", page.body);
    assert!(
        page.body.contains("larger than the limit of 2 MiB"),
        "{}",
        page.body
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(runs, 0, "nothing queued");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_csv_connection_takes_a_zip_upload_through_the_queue(pool: PgPool) {
    let env = Env::new(pool).await;
    let conn = env
        .connect(&[("kind", "oneroster_csv"), ("name", "Nightly SIS set")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("set.zip");
    zip_dir(&sample_dir(), &zip);
    let page = env
        .client
        .post_file(
            &format!("/syncs/{conn}/upload"),
            "set.zip",
            std::fs::read(&zip).unwrap(),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    env.app.queue.drain().await.unwrap();
    let run = env.last_run(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(run.created, 10);
    assert_eq!(run.file_name.as_deref(), Some("users.csv"));
}

// ---- ownership, pause, delete, secrets ----

#[sqlx::test(migrations = "./migrations")]
async fn a_file_cannot_change_sync_users_but_adds_staff_the_sync_lacks(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    assert_eq!(env.sync_now(conn).await.status, "completed");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adults.csv");
    std::fs::write(
        &file,
        "custom_id,email,first_name,last_name,role,school_external_id\n\
         ID-t1,di.kim@district.example.org,Changed,Kim,Teacher,HS\n\
         E-900,nurse@district.example.org,Nia,Nurse,Staff,HS\n",
    )
    .unwrap();
    let config = Config::for_tests(dir.path().to_path_buf());
    let s = rollcall::ops::import_file(
        &env.app.pool,
        &env.app.clock,
        &config,
        env.district.id,
        &file,
        None,
        false,
        false,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!((s.created, s.errors), (1, 1));
    assert_eq!(
        env.user("ID-t1").await.0,
        "Di",
        "the sync's user is untouched"
    );
    assert_eq!(env.user("E-900").await.3, "file:adults.csv");
    let error: String =
        sqlx::query_scalar("SELECT error FROM run_rows WHERE run_id = $1 AND outcome = 'error'")
            .bind(s.run_id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert!(error.contains("roster sync"), "{error}");
}

#[sqlx::test(migrations = "./migrations")]
async fn pause_holds_and_deleting_archives_nobody(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    // A new connection is due at once; the schedule queues it.
    let queued = rollcall::sync::schedule::tick(
        &env.app.queue.pool,
        &env.app.queue.clock,
        &env.app.queue.notify,
    )
    .await
    .unwrap();
    assert_eq!(queued.len(), 1);
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.live_users().await, 5);

    let page = env
        .client
        .post(&format!("/syncs/{conn}/pause"), &[("paused", "true")])
        .await;
    assert_eq!(page.status, 303);
    // Long past due, but paused: nothing runs, and the page says so.
    env.app.clock.advance(time::Duration::days(2));
    fake.with(|p| p.users.clear());
    assert!(
        rollcall::sync::schedule::tick(
            &env.app.queue.pool,
            &env.app.queue.clock,
            &env.app.queue.notify
        )
        .await
        .unwrap()
        .is_empty()
    );
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.live_users().await, 5);
    let page = env.client.get(&format!("/syncs/{conn}")).await;
    assert!(page.body.contains("Paused"));
    let page = env.client.post(&format!("/syncs/{conn}/run"), &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        env.app.queue.drain().await.unwrap(),
        0,
        "Sync now refused while paused"
    );

    // Deleting the connection keeps every user, now managed by hand.
    let page = env.client.post(&format!("/syncs/{conn}/delete"), &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(env.live_users().await, 5);
    assert_eq!(env.user("ID-s1").await.3, "manual");
}

#[sqlx::test(migrations = "./migrations")]
async fn secrets_never_reach_logs_or_pages(pool: PgPool) {
    let logs = LogCapture::install();
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    let clever = env
        .connect(&[
            ("kind", "clever"),
            ("name", "Clever"),
            ("base_url", &fake.url()),
            ("secret", CLEVER_TOKEN),
        ])
        .await;
    let test = env.client.post(&format!("/syncs/{conn}/test"), &[]).await;
    assert_eq!(test.status, 303);
    let page = env.client.get(&format!("/syncs/{conn}")).await;
    assert!(
        page.body
            .contains("Connection works: 2 schools and 5 users"),
        "{}",
        page.body
    );
    assert_eq!(env.sync_now(conn).await.status, "completed");
    env.sync_now(clever).await; // Clever has no data here: it fails, which logs too
    // A failing sync with a wrong secret logs its reason, never the secret.
    fake.with(|p| p.client_secret = "rotated".into());
    assert_eq!(env.sync_now(conn).await.status, "failed");

    let mut pages = String::new();
    for path in [
        "/syncs",
        &format!("/syncs/{conn}"),
        &format!("/syncs/{clever}"),
    ] {
        let page = env.client.get(path).await;
        assert_eq!(page.status, 200);
        pages.push_str(&page.body);
    }
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secret_sealed FROM sync_connections")
        .fetch_all(&env.app.pool)
        .await
        .unwrap();
    let logs = logs.text();
    assert!(logs.contains("sync"), "the capture works");
    let issued = fake.with(|p| p.issued.clone());
    assert!(!issued.is_empty());
    for secret in [SECRET, CLEVER_TOKEN]
        .iter()
        .map(|s| s.to_string())
        .chain(issued)
    {
        assert!(!logs.contains(&secret), "{secret} in the logs");
        assert!(!pages.contains(&secret), "{secret} in a page");
        assert!(
            sealed
                .iter()
                .all(|s| !s.windows(secret.len()).any(|w| w == secret.as_bytes())),
            "stored in clear"
        );
    }
}

/// Every log line of this test (all levels), kept in memory.
struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[derive(Clone)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn install() -> LogCapture {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        // nextest runs each test in its own process: the global default is this test's.
        let _ = tracing::subscriber::set_global_default(subscriber);
        LogCapture(buf)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
