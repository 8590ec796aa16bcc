//! End-to-end tests in real headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini, against the real app on a random port. A separate test binary: when
//! Chromium cannot be started these tests fail loudly, and the `it` suites still run.
//!
//! Screenshots of the main pages land in `target/screenshots/`.

#[path = "../it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod home;

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
    assert_eq!(b.path().await, "/", "admins land on the home page");
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

// ---- Issue 13: the seeds' source workflows (003, 004) through the real pages. ----

const HEADER13: &str =
    "custom_id,email,first_name,last_name,role,school_external_id,grade,status\n";

fn student(i: u32, school: &str, grade: &str) -> String {
    format!("S{i},s{i}@d.org,Student{i},Lovelace,Student,{school},{grade},Active\n")
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

impl Browser {
    /// Chooses `path` in the upload form's file input (Chromium reads it from disk).
    async fn choose_file(&self, path: &str) {
        self.goto("/uploads").await;
        let input = self.c.find(Locator::Css("input[type=file]")).await.unwrap();
        input.send_keys(path).await.unwrap();
    }

    /// Submits the upload form and waits for the run page it redirects to; the run's id.
    async fn submit_upload(&self) -> uuid::Uuid {
        self.click("form.upload-form button[type=submit]").await;
        self.wait_for_new_run(None).await
    }

    /// Waits until the browser is on a run page other than `not`; that run's id.
    async fn wait_for_new_run(&self, not: Option<uuid::Uuid>) -> uuid::Uuid {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let path = self.path().await;
            if let Some(id) = path
                .strip_prefix("/uploads/")
                .and_then(|rest| uuid::Uuid::parse_str(rest).ok())
                && Some(id) != not
            {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no new run page, still on {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Uploads `name` with `body` through the form (default scope) and waits for `status`.
    async fn upload(
        &self,
        files: &tempfile::TempDir,
        name: &str,
        body: &str,
        status: &str,
    ) -> uuid::Uuid {
        self.choose_file(&file(files, name, body)).await;
        let id = self.submit_upload().await;
        self.wait_for_status(status).await;
        id
    }

    /// The run page's counts box, label → number ("Created" → 3).
    async fn counts(&self) -> std::collections::HashMap<String, i64> {
        let v = self
            .c
            .execute(
                "return Array.from(document.querySelectorAll('table.counts th'))\
                 .map(th => [th.textContent.trim(), th.nextElementSibling.textContent.trim()]);",
                vec![],
            )
            .await
            .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    /// Asserts the counts box has these values (other labels are not looked at).
    async fn assert_counts(&self, want: &[(&str, i64)]) {
        let got = self.counts().await;
        for (label, n) in want {
            assert_eq!(
                got.get(*label),
                Some(n),
                "{label} on {}: {got:?}\n{}",
                self.path().await,
                self.text().await
            );
        }
    }

    /// GET a link's href with the session cookie: status, headers and the raw bytes.
    async fn download(&self, css: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let href = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
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
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    async fn owner_card(&self, user: uuid::Uuid) -> String {
        self.goto(&format!("/users/{user}")).await;
        self.c
            .find(Locator::Css("#owner"))
            .await
            .expect("the user page has an Owner card")
            .text()
            .await
            .unwrap()
    }
}

async fn user_id(pool: &PgPool, district: uuid::Uuid, custom_id: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
        .bind(district)
        .bind(custom_id)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("no user {custom_id}: {e}"))
}

async fn grade_of(pool: &PgPool, user: uuid::Uuid) -> String {
    sqlx::query_scalar("SELECT grade FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The custom IDs of the district's archived users, sorted.
async fn archived_ids(pool: &PgPool, district: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT coalesce(custom_id, username) FROM users \
         WHERE district_id = $1 AND archived_at IS NOT NULL ORDER BY 1",
    )
    .bind(district)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn seed_source_workflows_work_end_to_end_in_chromium(pool: PgPool) {
    let started = Instant::now();
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "Springfield High").await;
    app.school(d.id, "MS", "Springfield Middle").await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&app).await;
    let work = worker(&app);
    let pool = app.pool.clone();
    let mut steps = Vec::new();

    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    // 1. Two files: students.csv (2 bad rows) and adults.csv; the error file fixed and sent
    //    back as downloaded goes home to students.csv.
    let mut students = String::from(HEADER13);
    for i in 1..=6 {
        students += &student(i, "HS", "9");
    }
    students += &student(7, "XX", "9"); // unknown school
    students += &student(8, "HS", "14"); // no such grade
    let students_run = b
        .upload(&files, "students.csv", &students, "Completed with Errors")
        .await;
    b.assert_counts(&[("Created", 6), ("Errors", 2), ("Archived", 0)])
        .await;
    let adults = format!(
        "{HEADER13}T1,t1@d.org,Ada,Byron,Teacher,MS,,Active\n\
         T2,t2@d.org,Charles,Babbage,Teacher,HS,,Active\n"
    );
    b.upload(&files, "adults.csv", &adults, "Completed").await;
    b.assert_counts(&[("Created", 2), ("Errors", 0)]).await;

    b.goto(&format!("/uploads/{students_run}")).await;
    let (status, headers, bytes) = b.download("a[href$='/files/errors']").await;
    assert_eq!(status, 200);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.contains("students-errors.csv"), "{disposition}");
    let errors = String::from_utf8(bytes).unwrap();
    let mut reader = csv::Reader::from_reader(strip_bom(&errors).as_bytes());
    let head = reader.headers().unwrap().clone();
    assert!(head.iter().any(|h| h == "Error"), "{head:?}");
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let mut fixed = csv::Writer::from_writer(Vec::new());
    fixed.write_record(&head).unwrap();
    let mut bad = Vec::new();
    for r in reader.records() {
        let mut r: Vec<String> = r.unwrap().iter().map(str::to_string).collect();
        bad.push(r[col("custom_id")].clone());
        if r[col("school_external_id")] == "XX" {
            r[col("school_external_id")] = "HS".into();
        }
        if r[col("grade")] == "14" {
            r[col("grade")] = "10".into();
        }
        fixed.write_record(&r).unwrap();
    }
    bad.sort();
    assert_eq!(bad, ["S7", "S8"], "the error file has the two bad rows");
    let fixed = String::from_utf8(fixed.into_inner().unwrap()).unwrap();
    b.choose_file(&file(&files, "students-errors.csv", &fixed))
        .await;
    // The form sees the Error column and proposes a patch.
    b.wait_for_text("This looks like a fixed error file").await;
    let patch =
        b.c.find(Locator::Css("input[name=scope][value=patch]"))
            .await
            .unwrap();
    assert!(patch.is_selected().await.unwrap(), "patch is preselected");
    let fix_run = b.submit_upload().await;
    b.wait_for_status("Completed").await;
    b.wait_for_text("Fixed error file of").await;
    let page = b.text().await;
    assert!(
        page.contains("Fixed error file of the run of students.csv"),
        "{page}"
    );
    assert!(
        b.c.find(Locator::Css("#run-scope"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("scope: patch")
    );
    b.assert_counts(&[("Created", 2), ("Errors", 0), ("Archived", 0)])
        .await;
    let s7 = user_id(&pool, d.id, "S7").await;
    let s8 = user_id(&pool, d.id, "S8").await;
    for u in [s7, s8] {
        let owner = b.owner_card(u).await;
        assert!(owner.contains("students.csv"), "{owner}");
    }
    assert_eq!(grade_of(&pool, s8).await, "10");
    let (source, file_name): (String, String) =
        sqlx::query_as("SELECT source, file_name FROM runs WHERE id = $1")
            .bind(fix_run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (source.as_str(), file_name.as_str()),
        ("file:students.csv", "students-errors.csv")
    );
    steps.push("two files; the error file fixed and re-imported as downloaded (patch, home to students.csv)");

    // 2. S6 moves to the staff file: adults.csv with S6 as Staff, then students.csv
    //    without S6 (the fixed rows now part of it). Nobody archived, nothing refused.
    let adults2 = format!("{adults}S6,s6@d.org,Student6,Lovelace,Staff,HS,,Active\n");
    b.upload(&files, "adults.csv", &adults2, "Completed").await;
    b.assert_counts(&[("Moved", 1), ("Archived", 0), ("Errors", 0)])
        .await;
    let mut students2 = String::from(HEADER13);
    for i in 1..=5 {
        students2 += &student(i, "HS", "9");
    }
    students2 += &student(7, "HS", "9");
    students2 += &student(8, "HS", "10");
    b.upload(&files, "students.csv", &students2, "Completed")
        .await;
    b.assert_counts(&[
        ("Unchanged", 7),
        ("Archived", 0),
        ("Errors", 0),
        ("Created", 0),
    ])
    .await;
    let s6 = user_id(&pool, d.id, "S6").await;
    let owner = b.owner_card(s6).await;
    assert!(owner.contains("adults.csv"), "{owner}");
    assert!(archived_ids(&pool, d.id).await.is_empty());
    steps.push("a student moved into adults.csv as staff, nobody archived");

    // 3. One file with everyone: all.csv takes everyone over.
    let everyone = format!("{}{}", students2, adults2.strip_prefix(HEADER13).unwrap());
    b.upload(&files, "all.csv", &everyone, "Completed").await;
    b.assert_counts(&[
        ("Moved", 10),
        ("Errors", 0),
        ("Archived", 0),
        ("Created", 0),
    ])
    .await;
    b.screenshot("i13-all-csv").await;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT source FROM users WHERE district_id = $1 AND custom_id IS NOT NULL",
    )
    .bind(d.id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(owners, ["file:all.csv"]);
    assert!(archived_ids(&pool, d.id).await.is_empty());
    steps.push("one file (all.csv): everyone moved, nothing refused or archived");

    // 4. An admin's hand edit sticks until released.
    let s1 = user_id(&pool, d.id, "S1").await;
    b.goto(&format!("/users/{s1}")).await;
    let warning =
        b.c.find(Locator::Css(".feed-owner"))
            .await
            .expect("the form names the owning feed")
            .text()
            .await
            .unwrap();
    assert!(
        warning.contains("all.csv provides this user") && warning.contains("overwrite"),
        "{warning}"
    );
    b.c.find(Locator::Css("select#f-grade"))
        .await
        .unwrap()
        .select_by_value("10")
        .await
        .unwrap();
    b.click("form.user-form button[type=submit]").await;
    b.wait_for_text("Kept against all.csv:").await;
    assert_eq!(grade_of(&pool, s1).await, "10");
    let kept =
        b.c.find(Locator::Css("ul.kept-fields"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(kept.contains("Grade"), "{kept}");

    b.upload(&files, "all.csv", &everyone, "Completed").await;
    b.assert_counts(&[("Errors", 0), ("Archived", 0), ("Updated", 0)])
        .await;
    assert_eq!(grade_of(&pool, s1).await, "10", "the hand edit is kept");
    let (status, _, completed) = b.download("a[href$='/files/completed']").await;
    assert_eq!(status, 200);
    let completed = String::from_utf8(completed).unwrap();
    let mut rows = csv::Reader::from_reader(strip_bom(&completed).as_bytes());
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {head:?}"))
    };
    let s1_row = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[col("custom_id")] == "S1")
        .expect("S1's row");
    assert!(s1_row[col("kept")].contains("grade"), "{s1_row:?}");

    b.goto(&format!("/users/{s1}")).await;
    let asked = b
        .click_and_accept(&format!("form[action='/users/{s1}/kept/release'] button"))
        .await;
    assert!(asked.contains("Release"), "{asked}");
    b.wait_for_text("No fields kept").await;
    b.upload(&files, "all.csv", &everyone, "Completed").await;
    b.assert_counts(&[("Updated", 1), ("Errors", 0), ("Archived", 0)])
        .await;
    assert_eq!(
        grade_of(&pool, s1).await,
        "9",
        "released: the file's grade again"
    );
    steps.push("a hand edit kept against all.csv, then released");

    // 5. The master CSV: downloaded, two rows removed, sent back as the whole district.
    b.goto("/users").await;
    let (status, headers, master) = b.download("a[href='/users.csv']").await;
    assert_eq!(status, 200);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename=\"springfield-users.csv\""),
        "{disposition}"
    );
    assert!(master.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let master = String::from_utf8(master).unwrap();
    let kept_lines: Vec<&str> = master
        .lines()
        .filter(|l| !l.contains(",S2,") && !l.contains(",S3,"))
        .collect();
    assert_eq!(kept_lines.len(), master.lines().count() - 2);
    let edited = kept_lines.join("\r\n") + "\r\n";
    b.choose_file(&file(&files, "springfield-users.csv", &edited))
        .await;
    b.wait_for_text("This looks like the master CSV sent back")
        .await;
    let district =
        b.c.find(Locator::Css("input[name=scope][value=district]"))
            .await
            .unwrap();
    assert!(
        district.is_selected().await.unwrap(),
        "district is proposed"
    );
    district.click().await.unwrap();
    let master_run = b.submit_upload().await;
    b.wait_for_text("Approve and apply").await;
    b.wait_for_status("Needs Review").await;
    let page = b.text().await;
    assert!(
        page.contains("Would archive (2)")
            && page.contains("Student2 Lovelace")
            && page.contains("Student3 Lovelace"),
        "{page}"
    );
    assert!(archived_ids(&pool, d.id).await.is_empty(), "nothing yet");
    let asked = b.click_and_accept("form[action$='/approve'] button").await;
    assert!(asked.contains("Apply this run"), "{asked}");
    b.wait_for_status("Completed").await;
    b.assert_counts(&[("Archived", 2), ("Errors", 0)]).await;
    assert_eq!(archived_ids(&pool, d.id).await, ["S2", "S3"]);
    steps.push("master CSV: 2 rows removed, district scope, reviewed, exactly 2 archived");

    // 6. Undo that run from its page: preview, then apply.
    b.click(&format!("form[action='/uploads/{master_run}/undo'] button"))
        .await;
    let preview = b.wait_for_new_run(Some(master_run)).await;
    b.wait_for_status("Completed").await;
    b.wait_for_text("Undo preview: nothing has been changed")
        .await;
    b.wait_for_text("Apply undo").await;
    b.assert_counts(&[("Would restore", 2)]).await;
    b.screenshot("i13-undo-preview").await;
    assert_eq!(archived_ids(&pool, d.id).await, ["S2", "S3"], "a preview");
    let asked = b
        .click_and_accept(&format!(
            "form[action='/uploads/{master_run}/undo'] button.primary"
        ))
        .await;
    assert!(asked.contains("Apply this undo"), "{asked}");
    let undo_run = b.wait_for_new_run(Some(preview)).await;
    b.wait_for_status("Completed").await;
    b.assert_counts(&[("Restored", 2), ("Errors", 0)]).await;
    assert!(
        archived_ids(&pool, d.id).await.is_empty(),
        "S2 and S3 are back"
    );
    let kind: String = sqlx::query_scalar("SELECT kind FROM runs WHERE id = $1")
        .bind(undo_run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kind, "undo");
    let s2 = user_id(&pool, d.id, "S2").await;
    let owner = b.owner_card(s2).await;
    assert!(owner.contains("all.csv"), "back with their owner: {owner}");
    assert!(
        b.c.find(Locator::Css(&format!("form[action='/users/{s2}/archive']")))
            .await
            .is_ok(),
        "S2's page offers Archive, not Restore"
    );
    b.goto(&format!("/uploads/{master_run}")).await;
    b.wait_for_text("Undone by").await;
    steps.push("undo from the run page: preview, apply, the 2 users back");

    work.abort();
    b.close().await;
    println!(
        "browser (issue 13): {} steps passed in {:.1}s: {}",
        steps.len(),
        started.elapsed().as_secs_f64(),
        steps.join("; ")
    );
}
mod axe;
mod bulk;
mod classes;
mod district;
mod history;
mod layout;
mod mappings;
mod search;
mod teaching;
