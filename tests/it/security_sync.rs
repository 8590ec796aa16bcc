//! Syncs cannot be turned against the server (issue 20, findings 6 and 7): with private
//! addresses off, a connection to this machine is refused on save, test and run and never
//! contacted; a redirect to another server is not followed; a provider that pages without
//! end, repeats a page, sends too much or never answers stops the run (Failed, nothing
//! changed) and "Test connection" still answers.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::config::Config;
use rollcall::crypto::SecretKey;
use rollcall::db;
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "or-client-secret-5e8a1c";

struct Env {
    app: TestApp,
    district: District,
    client: Client,
}

impl Env {
    async fn new(pool: PgPool, configure: impl FnOnce(&mut Config)) -> Env {
        let app = TestApp::spawn_with(pool, configure).await;
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

    /// A OneRoster connection through the page; the page's answer.
    async fn save(&self, base_url: &str, token_url: &str) -> Page {
        self.client
            .post(
                "/syncs",
                &[
                    ("kind", "oneroster_rest"),
                    ("name", "ClassLink"),
                    ("base_url", base_url),
                    ("token_url", token_url),
                    ("client_id", "rollcall"),
                    ("secret", SECRET),
                    ("interval_hours", "6"),
                ],
            )
            .await
    }

    async fn connect(&self, base_url: &str) -> Uuid {
        let page = self.save(base_url, "").await;
        assert_eq!(page.status, 303, "{}", page.body);
        page.location
            .unwrap()
            .trim_start_matches("/syncs/")
            .parse()
            .unwrap()
    }

    /// A connection stored as it is, past the form's checks (saved by an older version, or
    /// while private addresses were allowed).
    async fn stored(&self, kind: &str, base_url: &str) -> Uuid {
        let id = Uuid::new_v4();
        let key = SecretKey::from_config(&self.app.queue.config).unwrap();
        let sealed = key.seal(SECRET, self.district.id, id);
        db::syncs::insert(
            &self.app.pool,
            self.district.id,
            &db::syncs::NewConnection {
                id,
                kind,
                name: &format!("stored {id}"),
                base_url: Some(base_url),
                token_url: None,
                client_id: Some("rollcall"),
                secret_sealed: Some(&sealed),
                interval_minutes: 360,
                next_run_at: None,
                created_by: "test",
            },
        )
        .await
        .unwrap();
        id
    }

    /// "Test connection"; the flash it leaves on the connection's page.
    async fn test_connection(&self, conn: Uuid) -> String {
        let page = self.client.post(&format!("/syncs/{conn}/test"), &[]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let page = self.client.get(&format!("/syncs/{conn}")).await;
        flash(&page.body)
    }

    /// "Sync now", then let the job queue work; returns the run.
    async fn sync_now(&self, conn: Uuid) -> db::runs::Run {
        let page = self.client.post(&format!("/syncs/{conn}/run"), &[]).await;
        assert_eq!(page.status, 303);
        // Until the run's status is final (a failed attempt waits in the queue for its retry).
        crate::helpers::settle(&self.app, self.district.id, &format!("sync:{conn}")).await
    }

    /// Live users' first names, sorted.
    async fn names(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT first_name FROM users WHERE district_id = $1 AND archived_at IS NULL
             AND portal_role = 'user' ORDER BY first_name",
        )
        .bind(self.district.id)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

fn flash(body: &str) -> String {
    let start = body.find("class=\"flash flash-").expect("a flash");
    let text = &body[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    text[..text.find("</div>").unwrap()].to_string()
}

fn oneroster() -> Provider {
    Provider {
        client_id: "rollcall".into(),
        client_secret: SECRET.into(),
        max_page: 2,
        orgs: vec![or_org("HS", "Springfield High", "school")],
        users: vec![
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
        ],
        ..Default::default()
    }
}

fn private_off(c: &mut Config) {
    c.sync_allow_private = false;
}

/// Listeners on this machine, by the URL a district admin would type (IPv6 when the
/// machine has an IPv6 loopback).
async fn local_listeners() -> Vec<(String, Silent)> {
    let v4 = Silent::start("127.0.0.1:0").await;
    let named = Silent::start("127.0.0.1:0").await;
    let mut all = vec![
        (format!("http://127.0.0.1:{}", v4.addr.port()), v4),
        (format!("http://localhost:{}", named.addr.port()), named),
    ];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = Silent::start("[::1]:0").await;
        all.push((format!("http://[::1]:{}", v6.addr.port()), v6));
    } else {
        eprintln!("no IPv6 loopback here: the [::1] case is left out");
    }
    all
}

#[sqlx::test(migrations = "./migrations")]
async fn a_connection_to_this_machine_is_refused_on_save(pool: PgPool) {
    let env = Env::new(pool, private_off).await;
    for (url, listener) in local_listeners().await {
        let page = env.save(&url, "").await;
        assert_eq!(page.status, 422, "{url} saved: {}", page.body);
        assert!(page.body.contains("Base URL"), "{url}: {}", page.body);
        assert!(page.body.contains("loopback"), "{url}: {}", page.body);
        if url.contains("localhost") {
            assert!(page.body.contains("localhost resolves to"), "{}", page.body);
        }
        // A public base URL with a token URL on this machine.
        let page = env
            .save("https://203.0.113.10", &format!("{url}/token"))
            .await;
        assert_eq!(page.status, 422, "{url} as token URL saved: {}", page.body);
        assert!(page.body.contains("Token URL"), "{url}: {}", page.body);
        assert!(page.body.contains("loopback"), "{url}: {}", page.body);
        assert_eq!(listener.accepted(), 0, "{url} was contacted");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_connections")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_stored_connection_to_this_machine_is_refused_on_test_and_run(pool: PgPool) {
    let env = Env::new(pool, private_off).await;
    for (url, listener) in local_listeners().await {
        for kind in ["oneroster_rest", "clever"] {
            let conn = env.stored(kind, &url).await;
            let text = env.test_connection(conn).await;
            assert!(
                text.contains("Connection test failed") && text.contains("loopback"),
                "{kind} {url}: {text}"
            );
            let run = env.sync_now(conn).await;
            assert_eq!(run.status, "failed", "{kind} {url}: {:?}", run.message);
            let message = run.message.unwrap_or_default();
            assert!(message.contains("loopback"), "{kind} {url}: {message}");
            assert!(message.contains("nothing was changed"), "{message}");
            if url.contains("localhost") {
                // A name is refused by the resolver, at the moment of connecting.
                assert!(
                    message.contains("localhost resolves to"),
                    "{kind} {url}: {message}"
                );
            }
            assert_eq!(listener.accepted(), 0, "{kind} {url} was contacted");
        }
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_redirect_to_another_server_is_not_followed(pool: PgPool) {
    let env = Env::new(pool, |_| {}).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect(&fake.url()).await;
    // Another address of this machine, and the same address under another name and port.
    let other_host = Silent::start("127.0.0.2:0").await;
    let other_port = Silent::start("127.0.0.1:0").await;
    for (target, listener) in [
        (
            format!("http://127.0.0.2:{}", other_host.addr.port()),
            &other_host,
        ),
        (
            format!("http://localhost:{}", other_port.addr.port()),
            &other_port,
        ),
    ] {
        fake.with(|p| p.redirect_to = Some(target.clone()));
        let text = env.test_connection(conn).await;
        assert!(
            text.contains("Connection test failed") && text.contains("redirected"),
            "{target}: {text}"
        );
        let run = env.sync_now(conn).await;
        assert_eq!(run.status, "failed", "{target}: {:?}", run.message);
        let message = run.message.unwrap_or_default();
        assert!(
            message.contains("redirected to another server"),
            "{target}: {message}"
        );
        assert_eq!(
            listener.accepted(),
            0,
            "the redirect to {target} was followed"
        );
    }
    assert!(env.names().await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn endless_paging_stops_at_the_page_cap_and_changes_nothing(pool: PgPool) {
    let env = Env::new(pool, |c| c.sync_max_pages = 5).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect(&fake.url()).await;
    assert_eq!(env.sync_now(conn).await.status, "completed");
    let before = env.names().await;
    assert_eq!(before, ["Ann", "Bo", "Di"]);

    // The users list now always has a full page more (for 60 pages, so that a client
    // without a cap ends too).
    fake.with(|p| {
        p.endless_for = Some(60);
        p.data_requests = 0;
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed", "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("more than 5 pages"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(env.names().await, before);
    let requests = fake.with(|p| p.data_requests);
    assert!(requests <= 1 + 5, "{requests} data requests");
}

#[sqlx::test(migrations = "./migrations")]
async fn endless_clever_paging_stops_at_the_page_cap(pool: PgPool) {
    let env = Env::new(pool, |c| c.sync_max_pages = 5).await;
    let fake = Fake::start(Provider {
        max_page: 2,
        clever_token: SECRET.into(),
        clever_schools: vec![clever_school("5f1", "Lincoln High")],
        endless_for: Some(60),
        ..Default::default()
    })
    .await;
    let conn = env.stored("clever", &fake.url()).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed", "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("more than 5 pages"), "{message}");
    assert!(env.names().await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn a_repeated_page_stops_the_run(pool: PgPool) {
    let env = Env::new(pool, |_| {}).await;
    let mut p = oneroster();
    p.users.extend([
        or_user("s4", "student", "Cy", "Fox", "06", "HS"),
        or_user("s5", "student", "Ed", "Orr", "07", "HS"),
    ]);
    // `offset` ignored: every page of 2 is the first one.
    p.repeat_first_page = true;
    let fake = Fake::start(p).await;
    let conn = env.connect(&fake.url()).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed", "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("the same page"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(env.names().await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn an_oversized_response_stops_the_run(pool: PgPool) {
    let env = Env::new(pool, |c| c.sync_max_response_mb = 1).await;
    let mut p = oneroster();
    p.users[0]["middleName"] = "m".repeat(1024 * 1024 + 10).into();
    let fake = Fake::start(p).await;
    let conn = env.connect(&fake.url()).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed", "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("larger than 1 MiB"), "{message}");
    assert!(env.names().await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn test_connection_against_a_provider_that_never_answers_returns_an_error(pool: PgPool) {
    let env = Env::new(pool, |c| c.sync_test_deadline_secs = 1).await;
    let silent = Silent::start("127.0.0.1:0").await;
    let conn = env.connect(&format!("http://{}", silent.addr)).await;
    let text = env.test_connection(conn).await;
    assert!(text.contains("Connection test failed"), "{text}");
    assert!(text.contains("did not answer within 1 s"), "{text}");
    assert!(silent.accepted() >= 1, "the provider was asked");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sync_that_outlasts_its_deadline_fails_and_test_connection_still_answers(pool: PgPool) {
    let env = Env::new(pool, |c| {
        c.sync_deadline_secs = 1;
        c.sync_test_deadline_secs = 1;
    })
    .await;
    // 100 pages, each answered after 100 ms: at least 10 s to list them all.
    let mut p = oneroster();
    p.endless_for = Some(100);
    p.delay_ms = 100;
    let fake = Fake::start(p).await;
    let conn = env.connect(&fake.url()).await;

    let text = env.test_connection(conn).await;
    assert!(text.contains("Connection works"), "{text}");
    assert!(text.contains("longer than 1 s"), "{text}");

    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "failed", "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("did not finish within 1 s"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(env.names().await.is_empty());
}
