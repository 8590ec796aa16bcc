//! Sync health and summer pause (issue 14, items 4 and 5): connections named by their name
//! in every list, the connections list's health columns, retries that wait in the queue
//! (not in a worker), pauses by date that end on their day with one event, and drop-folder
//! files of a paused source that wait.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::db;
use sqlx::PgPool;
use time::Duration;
use uuid::Uuid;

const SECRET: &str = "or-client-secret-health-91c2";

fn provider() -> Provider {
    Provider {
        client_id: "rollcall".into(),
        client_secret: SECRET.into(),
        max_page: 100,
        orgs: vec![
            or_org("D1", "Springfield USD", "district"),
            or_org("HS", "Springfield High", "school"),
        ],
        users: vec![
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
        ],
        ..Default::default()
    }
}

struct Env {
    app: TestApp,
    district: District,
    c: Client,
}

impl Env {
    async fn new(app: TestApp) -> Env {
        let district = app.district("springfield").await;
        app.school(district.id, "HS", "High School").await;
        let c = app.client();
        assert_eq!(
            c.sign_in(&district.admin_email, &district.admin_password)
                .await
                .status,
            303
        );
        Env { app, district, c }
    }

    async fn connect(&self, name: &str, fake: &Fake) -> Uuid {
        let page = self
            .c
            .post(
                "/syncs",
                &[
                    ("kind", "oneroster_rest"),
                    ("name", name),
                    ("base_url", &fake.url()),
                    ("client_id", "rollcall"),
                    ("secret", SECRET),
                    ("interval_hours", "6"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        page.location
            .unwrap()
            .trim_start_matches("/syncs/")
            .parse()
            .unwrap()
    }

    /// "Sync now", then the queue until the run's status is final.
    async fn sync_now(&self, conn: Uuid) -> db::runs::Run {
        let page = self.c.post(&format!("/syncs/{conn}/run"), &[]).await;
        assert_eq!(page.status, 303);
        settle(&self.app, self.district.id, &format!("sync:{conn}")).await
    }

    async fn upload(&self, name: &str, body: &str) -> Uuid {
        let r = self
            .c
            .post_file("/uploads", name, body.as_bytes().to_vec())
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        r.location
            .unwrap()
            .trim_start_matches("/uploads/")
            .trim_end_matches("/map")
            .parse()
            .unwrap()
    }

    async fn run(&self, id: Uuid) -> db::runs::Run {
        db::runs::get(&self.app.pool, self.district.id, id)
            .await
            .unwrap()
            .expect("run")
    }
}

/// No page names a connection by a piece of its id.
fn assert_named(body: &str, conn: Uuid, name: &str, what: &str) {
    assert!(body.contains(name), "{what} names {name}: {body}");
    let short = &conn.to_string()[..8];
    assert!(!body.contains(&format!("Sync {short}")), "{what}: {body}");
    assert!(
        !body.contains(&format!("sync connection {conn}")),
        "{what}: {body}"
    );
    assert!(!body.contains(&format!("sync:{conn}<")), "{what}: {body}");
}

fn staff(n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("T{i},t{i}@d.org,Tess{i},Lee,Teacher,HS,,Active,\n");
    }
    s
}

#[sqlx::test(migrations = "./migrations")]
async fn every_list_names_a_connection_by_its_name(pool: PgPool) {
    let env = Env::new(TestApp::spawn(pool).await).await;
    let fake = Fake::start(provider()).await;
    let conn = env.connect("ClassLink North", &fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);

    let syncs = env.c.get("/syncs").await.body;
    let runs_table = &syncs[syncs.find("Recent sync runs").unwrap()..];
    assert_named(runs_table, conn, "ClassLink North", "/syncs runs");
    let detail = env.c.get(&format!("/syncs/{conn}")).await.body;
    assert_named(&detail, conn, "ClassLink North", "connection page");
    let run_page = env.c.get(&format!("/uploads/{}", run.id)).await.body;
    assert!(
        run_page.contains("<dt>Source</dt><dd>ClassLink North</dd>"),
        "{run_page}"
    );
    assert_named(&run_page, conn, "ClassLink North", "run page");
    // The Users list: the Source column and the Source filter.
    let users = env.c.get("/users").await.body;
    assert_named(&users, conn, "ClassLink North", "users list");
    assert!(
        users.contains(&format!("value=\"sync:{conn}\">ClassLink North</option>"))
            || users.contains(&format!(
                "value=\"sync:{conn}\" selected>ClassLink North</option>"
            )),
        "{users}"
    );
    let filtered = env.c.get(&format!("/users?source=sync:{conn}")).await;
    assert_eq!(filtered.status, 200);
    assert!(filtered.body.contains("Ann"), "{}", filtered.body);
    // The user page.
    let guid: Uuid = sqlx::query_scalar(
        "SELECT id FROM users WHERE district_id = $1 AND source = $2 ORDER BY custom_id LIMIT 1",
    )
    .bind(env.district.id)
    .bind(format!("sync:{conn}"))
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    let user = env.c.get(&format!("/users/{guid}")).await.body;
    assert_named(&user, conn, "ClassLink North", "user page");
    // The home page card.
    let home = env.c.get("/").await.body;
    assert!(home.contains("aria-label=\"ClassLink North\""), "{home}");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_connections_list_shows_last_success_result_duration_and_errors(pool: PgPool) {
    let env = Env::new(TestApp::spawn(pool).await).await;
    let good = Fake::start(provider()).await;
    let bad = Fake::start(provider()).await;
    bad.with(|p| p.fail_from = Some(1));
    let good_id = env.connect("Good Feed", &good).await;
    let bad_id = env.connect("Broken Feed", &bad).await;
    // A connection that never ran has an empty row.
    let page = env.c.get("/syncs").await.body;
    for h in ["Last success", "Last result", "Duration", "Error rows"] {
        assert!(page.contains(&format!("<th>{h}</th>")), "{h}: {page}");
    }
    assert_eq!(env.sync_now(good_id).await.status, "completed");
    let failed = env.sync_now(bad_id).await;
    assert_eq!(failed.status, "failed");

    let page = env.c.get("/syncs").await.body;
    let row = |name: &str| -> String {
        let at = page.find(&format!(">{name}</a></td>")).expect(name);
        let start = page[..at].rfind("<tr").unwrap();
        let end = at + page[at..].find("</tr>").unwrap();
        page[start..end].to_string()
    };
    let good_row = row("Good Feed");
    assert!(
        good_row.contains("badge-ok") && good_row.contains("Completed"),
        "{good_row}"
    );
    assert!(
        good_row.contains(" UTC</td>"),
        "a last success time: {good_row}"
    );
    assert!(good_row.contains(" s</td>"), "a duration: {good_row}");
    assert!(good_row.contains("<td>0</td>"), "no error rows: {good_row}");
    let bad_row = row("Broken Feed");
    assert!(
        bad_row.contains("badge-err") && bad_row.contains("Failed"),
        "{bad_row}"
    );
    assert!(bad_row.contains("<td>never</td>"), "{bad_row}");
    assert!(bad_row.contains(&format!("href=\"/uploads/{}\"", failed.id)));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sync_waiting_to_retry_does_not_hold_the_districts_other_runs(pool: PgPool) {
    // An hour between attempts: while it waits, the run is queued with a time, not running.
    let app = TestApp::spawn_with(pool, |c| c.sync_retry_ms = vec![3_600_000, 3_600_000]).await;
    let env = Env::new(app).await;
    let fake = Fake::start(provider()).await;
    fake.with(|p| p.fail_from = Some(1));
    let conn = env.connect("Flaky SIS", &fake).await;
    assert_eq!(
        env.c.post(&format!("/syncs/{conn}/run"), &[]).await.status,
        303
    );
    env.app.queue.drain().await.unwrap();
    let sync = latest_run(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(
        (sync.status.as_str(), sync.attempts),
        ("queued", 1),
        "{:?}",
        sync.message
    );
    let message = sync.message.clone().unwrap_or_default();
    assert!(message.contains("attempt 1 failed"), "{message}");
    assert!(message.contains("500"), "{message}");

    // Meanwhile an upload of the same district runs to its end.
    let upload = env.upload("staff.csv", &staff(3)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.run(upload).await.status, "completed");
    let sync = env.run(sync.id).await;
    assert_eq!((sync.status.as_str(), sync.attempts), ("queued", 1));

    // Its time comes: attempt 2, then 3 (the last), and it fails; nothing changed.
    env.app.clock.advance(Duration::minutes(61));
    env.app.queue.drain().await.unwrap();
    let sync = env.run(sync.id).await;
    assert_eq!((sync.status.as_str(), sync.attempts), ("queued", 2));
    env.app.clock.advance(Duration::minutes(61));
    env.app.queue.drain().await.unwrap();
    let sync = env.run(sync.id).await;
    assert_eq!((sync.status.as_str(), sync.attempts), ("failed", 3));
    let message = sync.message.unwrap_or_default();
    assert!(
        message.contains("(after 3 attempts); nothing was changed"),
        "{message}"
    );
    let requests = fake.with(|p| p.data_requests);
    assert_eq!(
        requests, 3,
        "one request an attempt (the first fails at once)"
    );
    // One sync_failed event for the run, none for the attempts.
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_events WHERE district_id = $1 AND run_id = $2",
    )
    .bind(env.district.id)
    .bind(sync.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_connection_paused_until_a_date_resumes_that_day_with_one_event(pool: PgPool) {
    let env = Env::new(TestApp::spawn(pool).await).await;
    let fake = Fake::start(provider()).await;
    let conn = env.connect("Summer SIS", &fake).await;
    let today = env.app.clock.now().date();
    let until = today + Duration::days(3);
    // A date in the past is refused.
    let r = env
        .c
        .post(
            &format!("/syncs/{conn}/pause"),
            &[("paused", "true"), ("until", &today.to_string())],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = env
        .c
        .post(
            &format!("/syncs/{conn}/pause"),
            &[("paused", "true"), ("until", &until.to_string())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let c = db::syncs::get(&env.app.pool, env.district.id, conn)
        .await
        .unwrap()
        .unwrap();
    assert!(c.paused);
    assert_eq!(c.paused_until, Some(until));
    let page = env.c.get(&format!("/syncs/{conn}")).await.body;
    assert!(page.contains(&format!("Paused until {until}")), "{page}");
    let home = env.c.get("/").await.body;
    assert!(home.contains(&format!("Paused until {until}")), "{home}");

    // Not scheduled while paused, and not resumed before the day.
    let queue = &env.app.queue;
    env.app.clock.advance(Duration::days(2));
    assert!(
        rollcall::sync::schedule::tick(&queue.pool, &queue.clock, &queue.notify)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        rollcall::sync::pause::resume_due(&env.app.pool, env.app.clock.now())
            .await
            .unwrap(),
        0
    );
    // The day comes (UTC): the pause ends once, with one event and one audit entry.
    let day = time::OffsetDateTime::new_utc(until, time::Time::MIDNIGHT);
    let to_day = day - env.app.clock.now() + Duration::minutes(1);
    env.app.clock.advance(to_day);
    let now = env.app.clock.now();
    assert_eq!(now.date(), until);
    assert_eq!(
        rollcall::sync::pause::resume_due(&env.app.pool, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        rollcall::sync::pause::resume_due(&env.app.pool, now)
            .await
            .unwrap(),
        0,
        "a second pass finds nothing"
    );
    let key = format!("sync_resumed:sync:{conn}:{until}");
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, dedupe_key FROM alert_events WHERE district_id = $1 AND kind = 'sync_resumed'",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(events, vec![("sync_resumed".to_string(), key)]);
    let audits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = 'sync.resume'
           AND entity_id = $2 AND actor_kind = 'system'",
    )
    .bind(env.district.id)
    .bind(conn)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(audits, 1);
    let c = db::syncs::get(&env.app.pool, env.district.id, conn)
        .await
        .unwrap()
        .unwrap();
    assert!(!c.paused && c.paused_until.is_none());
    // Scheduled again: the tick queues it, and it runs.
    assert_eq!(
        rollcall::sync::schedule::tick(&queue.pool, &queue.clock, &queue.notify)
            .await
            .unwrap()
            .len(),
        1
    );
    let run = settle(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_paused_file_sources_drop_files_wait_and_a_browser_upload_still_runs(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.drop_settle_secs = 0).await;
    let env = Env::new(app).await;
    let q = &env.app.queue;
    let drops = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs WHERE kind = 'drop'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap()
    };
    // staff.csv came once by the browser; it is paused until a date.
    env.upload("staff.csv", &staff(2)).await;
    q.drain().await.unwrap();
    let until = env.app.clock.now().date() + Duration::days(5);
    let r = env
        .c
        .post(
            "/sources/pause",
            &[("source", "file:staff.csv"), ("until", &until.to_string())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    let dir = rollcall::jobs::drop::folder(&q.config.data_dir, "springfield", None);
    rollcall::jobs::drop::scan(q).await.unwrap();
    std::fs::write(dir.join("staff.csv"), staff(4)).unwrap();
    std::fs::write(
        dir.join("other.csv"),
        format!("{UPLOAD_HEADER}\nO1,o1@d.org,Otto,Lee,Staff,HS,,Active,\n"),
    )
    .unwrap();
    for _ in 0..3 {
        rollcall::jobs::drop::scan(q).await.unwrap();
    }
    assert_eq!(drops().await, 1, "only the other source's file is taken");
    assert!(
        dir.join("staff.csv").exists(),
        "the paused source's file waits"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("staff.csv")).unwrap(),
        staff(4),
        "untouched"
    );
    // A browser upload of the paused source still runs.
    let id = env.upload("staff.csv", &staff(3)).await;
    q.drain().await.unwrap();
    assert_eq!(env.run(id).await.status, "completed");

    // On its date the pause ends (one event) and the file is taken.
    env.app.clock.advance(Duration::days(5));
    assert_eq!(
        rollcall::sync::pause::resume_due(&env.app.pool, env.app.clock.now())
            .await
            .unwrap(),
        1
    );
    let key = format!("sync_resumed:file:staff.csv:{until}");
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_events WHERE district_id = $1 AND dedupe_key = $2",
    )
    .bind(env.district.id)
    .bind(&key)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    assert_eq!(drops().await, 2);
    assert!(!dir.join("staff.csv").exists());
    q.drain().await.unwrap();
    let status: String = sqlx::query_scalar(
        "SELECT status FROM runs WHERE kind = 'drop' AND source = 'file:staff.csv'",
    )
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(status, "completed");
}
