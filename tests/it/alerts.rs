//! Alerts (issue 14 item 2): the 0013 trigger, fan-out by each district's rules, real SMTP
//! (Debian's python3-aiosmtpd, started per test on a free port) and signed webhooks (a local
//! axum receiver), retries after a mail server comes back, no duplicates after a restart,
//! the staleness check driven by the clock, and the Settings → Alerts page.

use crate::helpers::*;
use hmac::{Hmac, Mac};
use rollcall::alerts::{check_stale_once, fan_out_once, send_due_once};
use rollcall::config::{Config, KeyText, SmtpTls};
use rollcall::db::alerts::NewEvent;
use rollcall::domain::health::EventKind;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use time::Duration;
use uuid::Uuid;

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A real SMTP server (aiosmtpd) writing each message it accepts into a directory, as
/// `<n>.eml`, before it answers 250.
pub(crate) struct Smtp {
    child: Child,
    dir: tempfile::TempDir,
}

const SMTP_SERVER: &str = r#"
import email, email.policy, itertools, os, sys
from aiosmtpd.controller import Controller
class Keep:
    count = itertools.count()
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        text = "X-Envelope-To: %s\nFrom: %s\nTo: %s\nSubject: %s\n\n%s" % (
            ",".join(envelope.rcpt_tos), m["from"], m["to"], m["subject"], m.get_content())
        path = os.path.join(sys.argv[2], "%06d.eml" % next(self.count))
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        return "250 OK"
c = Controller(Keep(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl Smtp {
    /// Start on `port` and wait until it listens (it says "ready").
    pub(crate) fn start(port: u16) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 (scripts/test installs python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server started");
        Smtp { child, dir }
    }

    /// The messages received, in order.
    pub(crate) fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request a webhook receiver got: the signature header and the exact body.
type Received = (String, Vec<u8>);

/// A local webhook receiver: what it got, and the status it answers with.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<std::sync::atomic::AtomicU16>,
}

impl Hooks {
    async fn start() -> (Hooks, String) {
        let hooks = Hooks::default();
        hooks.answer.store(200, std::sync::atomic::Ordering::SeqCst);
        let h = hooks.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let h = h.clone();
                    async move {
                        let sig = headers
                            .get("x-rollcall-signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        h.got.lock().unwrap().push((sig, body.to_vec()));
                        axum::http::StatusCode::from_u16(
                            h.answer.load(std::sync::atomic::Ordering::SeqCst),
                        )
                        .unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (hooks, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The app's configuration as the alert passes see it (the same secret key as the app).
fn config(dir: &Path, smtp_port: Option<u16>) -> Config {
    let mut c = Config::for_tests(dir.to_path_buf());
    c.secret_key = Some(KeyText(KEY.into()));
    c.public_url = Some("https://rollcall.example.org".into());
    if let Some(port) = smtp_port {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = Some(port);
        c.smtp_tls = SmtpTls::None;
        c.smtp_from = "Rollcall <alerts@rollcall.example.org>".into();
    }
    c
}

struct Env {
    app: TestApp,
    district: District,
    c: Client,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(pool: PgPool, slug: &str) -> Env {
        let app = TestApp::spawn_with(pool, |c| {
            c.secret_key = Some(KeyText(KEY.into()));
        })
        .await;
        Self::on(app, slug).await
    }

    async fn on(app: TestApp, slug: &str) -> Env {
        let district = app.district(slug).await;
        app.school(district.id, "HS", "High School").await;
        let c = app.client();
        assert_eq!(c.sign_in(&district.admin_email, PASSWORD).await.status, 303);
        Env {
            app,
            district,
            c,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.app.clock.now()
    }

    /// Fan out and send once, as the background loop does.
    async fn pass(&self, config: &Config) -> usize {
        fan_out_once(&self.app.pool, self.now()).await.unwrap();
        send_due_once(&self.app.pool, config, self.now())
            .await
            .unwrap()
    }

    async fn recipient(&self, email: &str) {
        let r = self
            .c
            .post("/settings/alerts/recipients", &[("email", email)])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }

    /// Turn the webhook on; returns the secret shown once.
    async fn webhook(&self, url: &str) -> String {
        let r = self
            .c
            .post(
                "/settings/alerts/webhook",
                &[("url", url), ("enabled", "on")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        secret_in(&r.body)
    }

    async fn rules(&self, fields: &[(&str, &str)]) {
        let r = self.c.post("/settings/alerts/rules", fields).await;
        assert_eq!(r.status, 303, "{}", r.body);
    }

    async fn raise(&self, kind: EventKind, key: &str, detail: Value) {
        let new = rollcall::db::alerts::raise(
            &self.app.pool,
            self.district.id,
            &NewEvent {
                kind,
                dedupe_key: key,
                run_id: None,
                source: Some("file:students.csv"),
                at: self.now(),
                detail,
            },
        )
        .await
        .unwrap();
        assert!(new);
    }

    /// A CLI import of `content`, drained; returns (run id, status).
    async fn import(&self, name: &str, content: &str, dry_run: bool) -> (Uuid, String) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let config = config(self.dir.path(), None);
        let s = rollcall::ops::import_file(
            &self.app.pool,
            &self.app.clock,
            &config,
            self.district.id,
            &path,
            None,
            dry_run,
            false,
            Default::default(),
        )
        .await
        .expect("the run finishes");
        (s.run_id, s.status.as_str().to_string())
    }

    async fn events(&self) -> Vec<rollcall::db::alerts::Event> {
        rollcall::db::alerts::recent(&self.app.pool, self.district.id, 100)
            .await
            .unwrap()
    }

    async fn deliveries(&self) -> Vec<(String, String, i32)> {
        sqlx::query_as(
            "SELECT channel, status, attempts FROM alert_deliveries WHERE district_id = $1 ORDER BY id",
        )
        .bind(self.district.id)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

fn secret_in(body: &str) -> String {
    let start = body.find("whsec_").expect("the secret is shown once");
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

const GOOD: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade,status\n\
                    S1,s1@d.org,Ann,Lee,Student,HS,9,Active\n\
                    S2,s2@d.org,Bo,Kim,Student,HS,13,Active\n\
                    S3,s3@d.org,Cy,Ng,Student,HS,14,Active\n";
/// Required columns missing: the run fails.
const BROKEN: &str = "Student Number,Given Name\n1001,Ann\n";

#[sqlx::test(migrations = "./migrations")]
async fn the_trigger_raises_one_event_per_run_and_none_for_dry_runs(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let (failed, status) = env.import("sis.csv", BROKEN, false).await;
    assert_eq!(status, "failed");
    let (_, status) = env.import("sis-preview.csv", BROKEN, true).await;
    assert_eq!(status, "failed", "the dry run failed too");
    let (errors, status) = env.import("students.csv", GOOD, false).await;
    assert_eq!(status, "completed_with_errors");
    let events = env.events().await;
    let got: Vec<(&str, Option<Uuid>)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.run_id))
        .rev()
        .collect();
    assert_eq!(
        got,
        [("run_failed", Some(failed)), ("run_errors", Some(errors))],
        "one event per real run; none for the dry run"
    );
    assert_eq!(events[0].detail["errors"], 2);
    assert_eq!(events[1].source.as_deref(), Some("file:sis.csv"));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_upload_is_emailed_and_posted_once_with_what_where_and_a_link(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let port = free_port();
    let smtp = Smtp::start(port);
    let config = config(env.dir.path(), Some(port));
    let (hooks, url) = Hooks::start().await;
    env.recipient("It-Team@Springfield.org").await;
    env.recipient("noc@springfield.org").await;
    let secret = env.webhook(&url).await;

    let (run, _) = env.import("sis.csv", BROKEN, false).await;
    assert_eq!(env.pass(&config).await, 3, "two emails and one webhook");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2, "one email per recipient");
    let to: Vec<&str> = mail
        .iter()
        .map(|m| {
            m.lines()
                .next()
                .unwrap()
                .trim_start_matches("X-Envelope-To: ")
        })
        .collect();
    assert_eq!(to, ["it-team@springfield.org", "noc@springfield.org"]);
    for m in &mail {
        for want in [
            "Subject: [Rollcall] springfield district: Run failed",
            "Run failed in springfield district.",
            "Source: sis.csv",
            "Status: failed",
            "required fields not mapped",
            &format!("See the run: https://rollcall.example.org/uploads/{run}"),
        ] {
            assert!(m.contains(want), "{want:?} missing from:\n{m}");
        }
        assert!(m.contains("From: Rollcall <alerts@rollcall.example.org>"));
    }
    let bodies = hooks.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["kind"], "run_failed");
    assert_eq!(bodies[0]["district"]["slug"], "springfield");
    assert_eq!(bodies[0]["source"]["name"], "sis.csv");
    assert_eq!(bodies[0]["run_id"], run.to_string());
    let (sig, raw) = hooks.got.lock().unwrap()[0].clone();
    assert_eq!(sig, hmac_hex(&secret, &raw));

    // A restart: a fresh pass (new mailer, new HTTP client), fan-out and send again.
    let again = config.clone();
    assert_eq!(env.pass(&again).await, 0);
    assert_eq!(fan_out_once(&env.app.pool, env.now()).await.unwrap(), 0);
    env.app.clock.advance(Duration::days(2));
    assert_eq!(env.pass(&again).await, 0, "nothing is sent twice");
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(hooks.bodies().len(), 1);
    let log = env.deliveries().await;
    assert!(
        log.iter().all(|(_, s, a)| s == "delivered" && *a == 1),
        "{log:?}"
    );
    // The log on the settings page shows them, with the receiver's code.
    let page = env.c.get("/settings/alerts").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("noc@springfield.org") && page.body.contains(&url));
    assert!(page.body.contains("delivery-delivered") && page.body.contains(">200<"));
    assert!(
        !page.body.contains(&secret),
        "the secret is shown once only"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn each_rule_fires_once_for_its_event_and_not_for_the_others(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let port = free_port();
    let smtp = Smtp::start(port);
    let config = config(env.dir.path(), Some(port));
    let (hooks, url) = Hooks::start().await;
    env.recipient("ops@springfield.org").await;
    env.webhook(&url).await;
    let rules = [
        (EventKind::RunFailed, "run_failed"),
        (EventKind::SyncFailed, "sync_failed"),
        (EventKind::NeedsReview, "needs_review"),
        (EventKind::RunErrors, "run_errors"),
        (EventKind::SourceStale, "source_stale"),
        (EventKind::SyncResumed, "sync_resumed"),
    ];
    for (round, (kind, field)) in rules.iter().enumerate() {
        // Only this rule on (errors above 0).
        env.rules(&[(field, "on"), ("errors_above", "0")]).await;
        for (other, _) in &rules {
            env.raise(
                *other,
                &format!("{}:{round}", other.as_str()),
                json!({ "errors": 4 }),
            )
            .await;
        }
        assert_eq!(
            env.pass(&config).await,
            2,
            "{field}: one email, one webhook"
        );
        let mail = smtp.messages();
        assert_eq!(mail.len(), round + 1, "{field}");
        assert!(
            mail[round].contains(&format!("{} in springfield district.", kind.title())),
            "{field}: {}",
            mail[round]
        );
        let bodies = hooks.bodies();
        assert_eq!(bodies.len(), round + 1, "{field}");
        assert_eq!(bodies[round]["kind"], *field);
    }
    // With every rule off, nothing goes out.
    env.rules(&[]).await;
    for (kind, _) in &rules {
        env.raise(
            *kind,
            &format!("{}:off", kind.as_str()),
            json!({ "errors": 9 }),
        )
        .await;
    }
    assert_eq!(env.pass(&config).await, 0);
    assert_eq!(smtp.messages().len(), rules.len());
}

#[sqlx::test(migrations = "./migrations")]
async fn errors_above_n_respects_n(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let (hooks, url) = Hooks::start().await;
    let config = config(env.dir.path(), None);
    env.webhook(&url).await;
    env.rules(&[("run_errors", "on"), ("errors_above", "2")])
        .await;
    // A real run with 2 error rows: not above 2.
    let (_, status) = env.import("students.csv", GOOD, false).await;
    assert_eq!(status, "completed_with_errors");
    env.pass(&config).await;
    assert!(hooks.bodies().is_empty(), "2 errors is not above 2");
    // Three error rows: above.
    let three = format!("{GOOD}S4,s4@d.org,Di,Oh,Student,HS,15,Active\n");
    let (run, _) = env.import("students.csv", &three, false).await;
    env.pass(&config).await;
    let bodies = hooks.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["kind"], "run_errors");
    assert_eq!(bodies[0]["detail"]["errors"], 3);
    assert_eq!(bodies[0]["run_id"], run.to_string());
    // The default (no rules saved) leaves errors alone: another district.
    let other = Env::on(
        TestApp::spawn_with(env.app.pool.clone(), |c| {
            c.secret_key = Some(KeyText(KEY.into()))
        })
        .await,
        "shelbyville",
    )
    .await;
    other.webhook(&url).await;
    other.import("students.csv", &three, false).await;
    other.pass(&config).await;
    assert_eq!(hooks.bodies().len(), 1, "run errors are off by default");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_mail_server_that_is_down_holds_the_alert_until_it_comes_back(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let port = free_port(); // nothing listens there yet
    let config = config(env.dir.path(), Some(port));
    env.recipient("ops@springfield.org").await;

    let (run, status) = env.import("sis.csv", BROKEN, false).await;
    assert_eq!(status, "failed", "the run finishes as it would anyway");
    assert_eq!(env.pass(&config).await, 1);
    let d = env.deliveries().await;
    assert_eq!(d, [("email".into(), "pending".into(), 1)]);
    let error: String = sqlx::query_scalar("SELECT last_error FROM alert_deliveries")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(error.contains("mail server"), "{error}");
    let page = env.c.get("/settings/alerts").await;
    assert!(page.body.contains("delivery-pending"), "{}", page.body);

    let smtp = Smtp::start(port);
    assert_eq!(env.pass(&config).await, 0, "not due before its backoff");
    env.app.clock.advance(Duration::seconds(61));
    assert_eq!(env.pass(&config).await, 1);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains(&format!("/uploads/{run}")));
    assert_eq!(
        env.deliveries().await,
        [("email".into(), "delivered".into(), 2)]
    );
    env.app.clock.advance(Duration::hours(3));
    assert_eq!(env.pass(&config).await, 0);
    assert_eq!(smtp.messages().len(), 1, "delivered once");
}

#[sqlx::test(migrations = "./migrations")]
async fn without_smtp_emails_wait_and_the_page_says_so(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let config = config(env.dir.path(), None);
    env.recipient("ops@springfield.org").await;
    env.import("sis.csv", BROKEN, false).await;
    assert_eq!(env.pass(&config).await, 0);
    assert_eq!(
        env.deliveries().await,
        [("email".into(), "pending".into(), 0)]
    );
    let page = env.c.get("/settings/alerts").await;
    assert!(page.body.contains("No SMTP server is configured"));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_webhook_that_fails_is_retried_with_backoff_and_a_claimed_delivery_is_not_sent_twice(
    pool: PgPool,
) {
    let env = Env::new(pool, "springfield").await;
    let (hooks, url) = Hooks::start().await;
    let config = config(env.dir.path(), None);
    env.webhook(&url).await;
    hooks.answer.store(500, std::sync::atomic::Ordering::SeqCst);
    env.import("sis.csv", BROKEN, false).await;
    assert_eq!(env.pass(&config).await, 1);
    let (code, status): (Option<i32>, String) =
        sqlx::query_as("SELECT last_code, status FROM alert_deliveries")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!((code, status.as_str()), (Some(500), "pending"));
    env.app.clock.advance(Duration::seconds(61));
    hooks.answer.store(204, std::sync::atomic::Ordering::SeqCst);
    // Another sender (a process that died after claiming) holds it: it waits for the lease.
    let held = rollcall::db::alert_delivery::claim_due(&env.app.pool, env.now(), &["webhook"], 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(env.pass(&config).await, 0, "leased to the other sender");
    env.app.clock.advance(Duration::minutes(5));
    assert_eq!(env.pass(&config).await, 1, "the lease ran out");
    assert_eq!(hooks.bodies().len(), 2);
    assert_eq!(
        env.deliveries().await,
        [("webhook".into(), "delivered".into(), 2)]
    );
    // Two senders at once send nothing twice.
    env.raise(EventKind::NeedsReview, "needs_review:x", json!({}))
        .await;
    fan_out_once(&env.app.pool, env.now()).await.unwrap();
    let (a, b) = tokio::join!(
        send_due_once(&env.app.pool, &config, env.now()),
        send_due_once(&env.app.pool, &config, env.now())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(hooks.bodies().len(), 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_webhook_signature_verifies_with_the_districts_secret_only(pool: PgPool) {
    let a = Env::new(pool, "springfield").await;
    let b = Env::on(
        TestApp::spawn_with(a.app.pool.clone(), |c| {
            c.secret_key = Some(KeyText(KEY.into()))
        })
        .await,
        "shelbyville",
    )
    .await;
    let (hooks, url) = Hooks::start().await;
    let config = config(a.dir.path(), None);
    let secret_a = a.webhook(&url).await;
    let secret_b = b.webhook(&url).await;
    assert_ne!(secret_a, secret_b);
    let r = a.c.post("/settings/alerts/test-webhook", &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(a.pass(&config).await, 1);
    let (sig, raw) = hooks.got.lock().unwrap()[0].clone();
    assert_eq!(sig, hmac_hex(&secret_a, &raw), "verifies with A's secret");
    assert_ne!(sig, hmac_hex(&secret_b, &raw), "not with B's");
    let body: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(body["kind"], "test");
    assert_eq!(body["district"]["slug"], "springfield");
    // A new secret: later deliveries are signed with it, the old one no longer verifies.
    let r = a.c.post("/settings/alerts/webhook/secret", &[]).await;
    assert_eq!(r.status, 200);
    let renewed = secret_in(&r.body);
    a.c.post("/settings/alerts/test-webhook", &[]).await;
    a.pass(&config).await;
    let (sig, raw) = hooks.got.lock().unwrap()[1].clone();
    assert_eq!(sig, hmac_hex(&renewed, &raw));
    assert_ne!(sig, hmac_hex(&secret_a, &raw));
}

#[sqlx::test(migrations = "./migrations")]
async fn test_email_reaches_the_recipients(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let port = free_port();
    let smtp = Smtp::start(port);
    let config = config(env.dir.path(), Some(port));
    let r = env.c.post("/settings/alerts/test-email", &[]).await;
    assert_eq!(r.status, 422, "no recipient yet");
    env.recipient("ops@springfield.org").await;
    let r = env.c.post("/settings/alerts/test-email", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(env.pass(&config).await, 1);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Test alert in springfield district."));
}

/// Runs of `source` at the given times (not dry runs).
async fn runs_at(pool: &PgPool, district: Uuid, source: &str, times: &[time::OffsetDateTime]) {
    for t in times {
        sqlx::query(
            "INSERT INTO runs (district_id, id, kind, source, file_name, status, submitted_kind, submitted_by, received_at, finished_at)
             VALUES ($1, $2, 'drop', $3, 'students.csv', 'completed', 'drop', 'drop folder', $4, $4)",
        )
        .bind(district)
        .bind(Uuid::new_v4())
        .bind(source)
        .bind(t)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_source_that_stops_arriving_alerts_once_per_quiet_spell(pool: PgPool) {
    let env = Env::new(pool, "springfield").await;
    let port = free_port();
    let smtp = Smtp::start(port);
    let config = config(env.dir.path(), Some(port));
    env.recipient("ops@springfield.org").await;
    let pool = &env.app.pool;
    let now = env.now();
    let nightly: Vec<_> = (1..=5).map(|d| now - Duration::days(d)).collect();
    runs_at(pool, env.district.id, "file:students.csv", &nightly).await;
    // A paused source, just as regular, never counts.
    runs_at(pool, env.district.id, "file:staff.csv", &nightly).await;
    sqlx::query("INSERT INTO source_pauses (district_id, source, paused_by) VALUES ($1, 'file:staff.csv', 'test')")
        .bind(env.district.id)
        .execute(pool)
        .await
        .unwrap();

    assert_eq!(
        check_stale_once(pool, env.now()).await.unwrap(),
        0,
        "1 day quiet"
    );
    env.app.clock.advance(Duration::hours(11)); // 35 h quiet: within 36 h
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 0);
    env.app.clock.advance(Duration::hours(2)); // 37 h
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 1);
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 0, "once");
    env.app.clock.advance(Duration::days(3));
    assert_eq!(
        check_stale_once(pool, env.now()).await.unwrap(),
        0,
        "same quiet spell"
    );
    let events = env.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "source_stale");
    assert_eq!(events[0].source.as_deref(), Some("file:students.csv"));
    assert_eq!(env.pass(&config).await, 1);
    let mail = smtp.messages();
    assert!(mail[0].contains("Source stopped arriving in springfield district."));
    assert!(mail[0].contains("Source: students.csv"));
    assert!(
        mail[0].contains("it usually runs every 1 day"),
        "{}",
        mail[0]
    );

    // It comes back, then stops again: a new spell, a new alert.
    runs_at(pool, env.district.id, "file:students.csv", &[env.now()]).await;
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 0);
    env.app.clock.advance(Duration::hours(37));
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 1);
    // A longer "stale after" (the page's setting) keeps a quiet source quiet.
    env.rules(&[("source_stale", "on"), ("stale_after_hours", "100")])
        .await;
    runs_at(pool, env.district.id, "file:students.csv", &[env.now()]).await;
    env.app.clock.advance(Duration::hours(50));
    assert_eq!(check_stale_once(pool, env.now()).await.unwrap(), 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_alerts_page_is_the_district_admins_own(pool: PgPool) {
    let a = Env::new(pool, "springfield").await;
    let b = Env::on(
        TestApp::spawn_with(a.app.pool.clone(), |c| {
            c.secret_key = Some(KeyText(KEY.into()))
        })
        .await,
        "shelbyville",
    )
    .await;
    let (hooks, url) = Hooks::start().await;
    let config = config(a.dir.path(), None);
    b.recipient("bart@shelbyville.org").await;
    b.webhook(&format!("{url}?shelbyville")).await;
    b.import("sis.csv", BROKEN, false).await;
    b.pass(&config).await;
    assert_eq!(hooks.bodies().len(), 1);

    let page = a.c.get("/settings/alerts").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Nothing sent yet."));
    assert!(!page.body.contains("bart@shelbyville.org") && !page.body.contains("?shelbyville"));
    // A's admin cannot remove B's recipient.
    let r =
        a.c.post(
            "/settings/alerts/recipients/remove",
            &[("email", "bart@shelbyville.org")],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        rollcall::db::alert_delivery::recipients(&a.app.pool, b.district.id)
            .await
            .unwrap(),
        ["bart@shelbyville.org"]
    );
    // Invalid addresses are refused; every change is audited.
    let r =
        a.c.post(
            "/settings/alerts/recipients",
            &[("email", "not an address")],
        )
        .await;
    assert_eq!(r.status, 422);
    a.recipient("lisa@springfield.org").await;
    let r =
        a.c.post(
            "/settings/alerts/recipients/remove",
            &[("email", "lisa@springfield.org")],
        )
        .await;
    assert_eq!(r.status, 303);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE district_id = $1 AND action LIKE 'alerts.%' ORDER BY id",
    )
    .bind(a.district.id)
    .fetch_all(&a.app.pool)
    .await
    .unwrap();
    assert_eq!(actions, ["alerts.recipient.add", "alerts.recipient.remove"]);
    // A school admin may not open it.
    let school = a.app.school(a.district.id, "MS", "Middle School").await;
    a.app
        .member(a.district.id, "principal", "school_admin", &[school])
        .await;
    let p = a.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    assert_eq!(p.get("/settings/alerts").await.status, 403);
    // The Settings page links to it.
    assert!(a.c.get("/settings").await.body.contains("/settings/alerts"));
}
