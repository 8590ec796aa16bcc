//! End-to-end tests in real headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini, against the real app on a random port. A separate test binary: when
//! Chromium cannot be started these tests fail loudly, and the `it` suites still run.
//!
//! Screenshots of the main pages land in `target/screenshots/`.

#[path = "../it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::*;
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver on a free port and one headless Chromium session; both end on drop.
struct Browser {
    c: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start(app: &TestApp) -> Browser {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (scripts/test installs them as root: apt-get install -y chromium chromium-driver)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        // chromedriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(20);
        let c = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    panic!("cannot start headless Chromium through {CHROMEDRIVER}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            c,
            driver,
            _profile: profile,
            base: format!("http://{}", app.addr),
        }
    }

    async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn text(&self) -> String {
        self.c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let el = self.c.find(Locator::Css(css)).await.unwrap();
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits (up to 30 s) until the page's text contains `needle`, without navigating: the
    /// page has to get there by itself (redirects, its own polling and reload).
    async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(body) = self.c.find(Locator::Css("body")).await
                && body.text().await.unwrap_or_default().contains(needle)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{needle:?} never appeared on {}:\n{}",
                    self.path().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the run's status badge reads `label` (the page polls and reloads itself).
    async fn wait_for_status(&self, label: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(el) = self.c.find(Locator::Css("#run-status")).await
                && el.text().await.unwrap_or_default().trim() == label
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("the run never reached {label:?}:\n{}", self.text().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks a button whose form asks `window.confirm`, and accepts the dialog.
    async fn click_and_accept(&self, css: &str) -> String {
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.c.get_alert_text().await {
                Ok(text) => {
                    self.c.accept_alert().await.unwrap();
                    return text;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("no confirm dialog after clicking {css}: {e}"),
            }
        }
    }

    async fn sign_in(&self, login: &str, password: &str) {
        self.goto("/login").await;
        self.fill("input[name=login]", login).await;
        self.fill("input[name=password]", password).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// GET a link the page offers, with the browser's session cookie.
    async fn fetch_link(&self, css: &str) -> (u16, String, String) {
        let href = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .expect("the link has an href");
        let cookie = self
            .c
            .get_named_cookie(rollcall::web::SESSION_COOKIE)
            .await
            .expect("signed in");
        let r = reqwest::Client::new()
            .get(format!("{}{href}", self.base))
            .header("cookie", format!("{}={}", cookie.name(), cookie.value()))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ctype, r.text().await.unwrap())
    }

    async fn close(self) {
        let c = self.c.clone();
        c.close().await.ok();
    }
}

/// The test file, written where Chromium can read it.
fn file(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

/// Drains the job queue in the background while the page waits: the app's workers' job.
fn worker(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let q = app.queue.clone();
    tokio::spawn(async move {
        loop {
            let _ = q.drain().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

#[sqlx::test(migrations = "./migrations")]
async fn an_admin_uploads_maps_searches_and_manages_users_in_chromium(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "Springfield High").await;
    app.school(d.id, "MS", "Springfield Middle").await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&app).await;
    let work = worker(&app);
    let mut flows = Vec::new();

    // Sign in.
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    assert_eq!(b.path().await, "/users");
    flows.push("sign in");

    // Upload a CSV through the file input; the page follows the run to its end by itself.
    let mut csv =
        String::from("custom_id,email,first_name,last_name,role,school_external_id,grade,status\n");
    for i in 1..=30 {
        csv += &format!("S{i},s{i}@d.org,Student{i},Lovelace,Student,HS,9,Active\n");
    }
    csv += "T1,ada@d.org,Ada,Byron,Teacher,MS,,Active\n";
    csv += "BAD1,bad@d.org,Bad,Row,Wizard,HS,,Active\n";
    b.goto("/uploads").await;
    b.screenshot("uploads").await;
    let input = b.c.find(Locator::Css("input[type=file]")).await.unwrap();
    input
        .send_keys(&file(&files, "students.csv", &csv))
        .await
        .unwrap();
    b.click("form.upload-form button[type=submit]").await;
    b.wait_for_status("Completed with Errors").await;
    assert!(b.path().await.starts_with("/uploads/"));
    b.screenshot("upload-detail").await;
    flows.push("upload a CSV through the file input and watch it complete");

    // Download the error file from its link.
    let (status, ctype, body) = b.fetch_link("a[href$='/files/errors']").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert!(body.lines().next().unwrap().contains("Error"), "{body}");
    assert!(body.contains("BAD1") && body.contains("Wizard"));
    assert!(!body.contains("S1,"), "only the failed rows");
    flows.push("download the error file");

    // An SIS export with its own headers goes to the mapper; map it and run it.
    let sis = "Student Number,Given,Surname,Building,Kind\n\
               9001,Grace,Hopper,HS,Student\n\
               9002,Alan,Turing,MS,Student\n";
    b.goto("/uploads").await;
    let input = b.c.find(Locator::Css("input[type=file]")).await.unwrap();
    input
        .send_keys(&file(&files, "sis-export.csv", sis))
        .await
        .unwrap();
    b.click("form.upload-form button[type=submit]").await;
    b.wait_for_text("Save mapping and run").await;
    assert!(b.path().await.ends_with("/map"));
    for (column, field) in [
        ("Student Number", "custom_id"),
        ("Given", "first_name"),
        ("Surname", "last_name"),
        ("Building", "school_external_id"),
        ("Kind", "role"),
    ] {
        let select =
            b.c.find(Locator::Css(&format!(
                "select[aria-label='Field for {column}']"
            )))
            .await
            .unwrap();
        select.select_by_value(field).await.unwrap();
    }
    b.screenshot("mapper").await;
    b.click("form[action$='/map'] button.primary").await;
    b.wait_for_status("Completed").await;
    let mapped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE custom_id IN ('9001', '9002')")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(mapped, 2);
    flows.push("map an SIS file's headers");

    // Search a user.
    b.goto("/users").await;
    b.screenshot("users").await;
    b.fill("input[name=q]", "Hopper").await;
    b.click("form[role=search] button[type=submit]").await;
    b.wait_for_text("Grace").await;
    let list = b.text().await;
    assert!(
        list.contains("Hopper") && !list.contains("Lovelace"),
        "{list}"
    );
    flows.push("search a user");

    // Toggle inactive and back, accepting the confirm dialog each time.
    let grace: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE custom_id = '9001'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM users WHERE id = $1")
            .bind(grace)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    b.goto(&format!("/users/{grace}")).await;
    b.screenshot("user").await;
    let asked = b
        .click_and_accept(&format!("form[action='/users/{grace}/status'] button"))
        .await;
    assert!(asked.contains("inactive"), "{asked}");
    b.wait_for_text("Make active").await;
    assert_eq!(status().await, "inactive");
    b.click_and_accept(&format!("form[action='/users/{grace}/status'] button"))
        .await;
    b.wait_for_text("Make inactive").await;
    assert_eq!(status().await, "active");
    flows.push("toggle inactive and back through the confirm dialog");

    // The same from the Users list: the row's status mark (one shared form for all rows).
    let wait_status = |want: &'static str| {
        let status = &status;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while status().await != want {
                assert!(Instant::now() < deadline, "status never became {want}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    b.goto("/users?q=9001").await;
    let mark = format!("button[formaction='/users/{grace}/status']");
    let asked = b.click_and_accept(&mark).await;
    assert!(asked.contains("inactive"), "{asked}");
    wait_status("inactive").await;
    b.wait_for_text("Inactive").await;
    assert!(
        b.path().await.starts_with("/users?"),
        "back on the list: {}",
        b.path().await
    );
    let asked = b.click_and_accept(&mark).await;
    assert!(asked.contains("active"), "{asked}");
    wait_status("active").await;
    flows.push("toggle from the Users list's status mark");
    b.goto(&format!("/users/{grace}")).await;

    // Archive and restore.
    let asked = b
        .click_and_accept(&format!("form[action='/users/{grace}/archive'] button"))
        .await;
    assert!(asked.contains("Archive"), "{asked}");
    b.wait_for_text("Restore").await;
    let archived: bool =
        sqlx::query_scalar("SELECT archived_at IS NOT NULL FROM users WHERE id = $1")
            .bind(grace)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(archived);
    b.screenshot("user-archived").await;
    b.click_and_accept(&format!("form[action='/users/{grace}/restore'] button"))
        .await;
    b.wait_for_text("Archive").await;
    let archived: bool =
        sqlx::query_scalar("SELECT archived_at IS NOT NULL FROM users WHERE id = $1")
            .bind(grace)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!archived);
    flows.push("archive and restore");

    // A truncated students.csv stops in Needs Review; the admin approves it.
    let truncated: String = csv.lines().take(11).map(|l| format!("{l}\n")).collect();
    b.goto("/uploads").await;
    let input = b.c.find(Locator::Css("input[type=file]")).await.unwrap();
    input
        .send_keys(&file(&files, "students.csv", &truncated))
        .await
        .unwrap();
    b.click("form.upload-form button[type=submit]").await;
    b.wait_for_text("Approve and apply").await;
    b.screenshot("needs-review").await;
    let asked = b.click_and_accept("form[action$='/approve'] button").await;
    assert!(asked.contains("Apply this run"), "{asked}");
    b.wait_for_status("Completed").await;
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE custom_id LIKE 'S%' AND archived_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live, 10, "the approved run archived the missing students");
    flows.push("approve a Needs Review run");

    b.goto("/schools").await;
    b.screenshot("schools").await;
    b.goto("/settings").await;
    b.screenshot("settings").await;
    b.goto("/syncs").await;
    b.screenshot("syncs").await;

    // A new user signs in with their temporary password and chooses their own.
    let run: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM runs WHERE file_name = 'students.csv' ORDER BY received_at LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    b.goto(&format!("/uploads/{run}")).await;
    let (status, _, completed) = b.fetch_link("a[href$='/files/completed']").await;
    assert_eq!(status, 200);
    let mut rows = csv::Reader::from_reader(completed.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (email, temp) = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[col("custom_id")] == "S1") // still live after the approved run
        .map(|r| {
            (
                r[col("email")].to_string(),
                r[col("temporary_password")].to_string(),
            )
        })
        .expect("S1's row");
    assert!(!temp.is_empty());
    b.click_and_accept_sign_out().await;
    b.sign_in(&email, &temp).await;
    b.wait_for_text("New password again").await;
    assert_eq!(b.path().await, "/account/password");
    b.screenshot("set-password").await;
    let own = "Student1-chose-this-one";
    b.fill("input[name=current]", &temp).await;
    b.fill("input[name=password]", own).await;
    b.fill("input[name=confirm]", own).await;
    b.click("form[action='/account/password'] button[type=submit]")
        .await;
    b.wait_for_text("Student1").await;
    assert_eq!(b.path().await, "/account");
    b.screenshot("account").await;
    let again = app.client();
    assert_eq!(again.sign_in(&email, own).await.status, 303);
    assert_eq!(app.client().sign_in(&email, &temp).await.status, 401);
    flows.push("first sign-in with a temporary password, then the user's own");

    work.abort();
    b.close().await;
    println!(
        "browser: {} flows passed: {}",
        flows.len(),
        flows.join("; ")
    );
}

impl Browser {
    /// Signs out with the layout's button (a POST form).
    async fn click_and_accept_sign_out(&self) {
        self.click("form[action='/logout'] button").await;
        self.wait_for_text("Sign in").await;
    }
}
