use rollcall::clock::Clock;
use rollcall::config::Config;
use rollcall::db::audit::Actor;
use rollcall::web::{self, AppState};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub clock: Clock,
    /// The job queue; tests drain it synchronously (`app.queue.drain()`).
    pub queue: rollcall::jobs::Queue,
    /// The portal's search indexes (tests build one on demand).
    pub search: rollcall::search::Registry,
    /// Password reset mail being sent (`app.outbox.settle()` waits for it).
    #[allow(dead_code)]
    pub outbox: rollcall::web::password_reset::Outbox,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

pub struct District {
    pub id: Uuid,
    #[allow(dead_code)]
    pub slug: String,
    pub admin_email: String,
    pub admin_password: String,
}

pub const PASSWORD: &str = "correct-horse-battery";

impl TestApp {
    pub async fn spawn(pool: PgPool) -> TestApp {
        Self::spawn_with(pool, |_| {}).await
    }

    /// Like `spawn`, with the test's own changes to the configuration.
    pub async fn spawn_with(pool: PgPool, configure: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(data_dir.path().to_path_buf());
        config.max_upload_mb = 2;
        configure(&mut config);
        let clock = Clock::default();
        let state = AppState::new(pool.clone(), Arc::new(config), clock.clone());
        let queue = state.queue.clone();
        let search = state.search.clone();
        let outbox = state.outbox.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = web::start(state, async move {
            let _ = rx.await;
        })
        .await
        .expect("server starts");
        TestApp {
            addr: server.addr,
            pool,
            clock,
            queue,
            search,
            outbox,
            _shutdown: tx,
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: format!("http://{}", self.addr),
        }
    }

    /// A district with a district admin whose password is `PASSWORD` (not temporary).
    pub async fn district(&self, slug: &str) -> District {
        let email = format!("admin@{slug}.org");
        let created = rollcall::ops::create_district(
            &self.pool,
            &self.clock,
            &Actor::cli(),
            &format!("{slug} district"),
            slug,
            &email,
            Some(PASSWORD.to_string()),
        )
        .await
        .expect("district created");
        District {
            id: created.district.id,
            slug: slug.to_string(),
            admin_email: email,
            admin_password: PASSWORD.into(),
        }
    }

    pub async fn school(&self, district: Uuid, external_id: &str, name: &str) -> Uuid {
        rollcall::db::schools::insert(&self.pool, district, external_id, name)
            .await
            .expect("school")
    }

    /// A user with the given portal role, password `PASSWORD`, and schools.
    pub async fn member(
        &self,
        district: Uuid,
        username: &str,
        portal_role: &str,
        schools: &[Uuid],
    ) -> Uuid {
        let id = Uuid::new_v4();
        let hash = rollcall::auth::hash_password(PASSWORD);
        sqlx::query(
            "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, portal_role, password_hash, password_set_at)
             VALUES ($1, $2, $3, $4, 'Test', $4, 'Teacher', $5, $6, now())",
        )
        .bind(district)
        .bind(id)
        .bind(format!("{username}@example.org"))
        .bind(username)
        .bind(portal_role)
        .bind(hash)
        .execute(&self.pool)
        .await
        .expect("user");
        for s in schools {
            sqlx::query(
                "INSERT INTO user_schools (district_id, user_id, school_id) VALUES ($1, $2, $3)",
            )
            .bind(district)
            .bind(id)
            .bind(s)
            .execute(&self.pool)
            .await
            .expect("membership");
        }
        id
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET");
        Page::from(r).await
    }

    /// The CSRF token from a page's forms (any page that renders the layout).
    pub async fn csrf(&self) -> String {
        let mut page = self.get("/login").await;
        for _ in 0..3 {
            match page.location.clone() {
                Some(next) if !page.body.contains("name=\"_csrf\"") => page = self.get(&next).await,
                _ => break,
            }
        }
        extract_csrf(&page.body).expect("page has a CSRF token")
    }

    /// POST a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("_csrf", &token));
        self.post_raw(path, &all).await
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{}", self.base, path))
            .form(fields)
            .send()
            .await
            .expect("POST");
        Page::from(r).await
    }

    pub async fn post_file(&self, path: &str, file_name: &str, bytes: Vec<u8>) -> Page {
        let token = self.csrf().await;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
        );
        let r = self
            .http
            .post(format!("{}{}?_csrf={}", self.base, path, token))
            .multipart(form)
            .send()
            .await
            .expect("POST file");
        Page::from(r).await
    }

    pub async fn sign_in(&self, login: &str, password: &str) -> Page {
        self.post("/login", &[("login", login), ("password", password)])
            .await
    }
}

impl Page {
    async fn from(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let start = body.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_string())
}

/// A district "springfield" with one school (HS) and its admin signed in, for tests that
/// upload user files through the page: the upload, its status and its files.
pub struct UploadEnv {
    pub app: TestApp,
    pub district: District,
    pub c: Client,
}

/// The user-file header the upload tests write.
pub const UPLOAD_HEADER: &str =
    "custom_id,email,first_name,last_name,role,school_external_id,grade,status,password";

impl UploadEnv {
    pub async fn new(pool: PgPool) -> UploadEnv {
        let app = TestApp::spawn(pool).await;
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

    /// Upload through the form; returns the run id.
    pub async fn upload(&self, name: &str, body: &str) -> Uuid {
        let r = self
            .c
            .post_file("/uploads", name, body.as_bytes().to_vec())
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let loc = r.location.unwrap();
        loc.trim_start_matches("/uploads/")
            .trim_end_matches("/map")
            .parse()
            .unwrap()
    }

    pub async fn status(&self, id: Uuid) -> serde_json::Value {
        let r = self.c.get(&format!("/uploads/{id}/status.json")).await;
        assert_eq!(r.status, 200);
        serde_json::from_str(&r.body).unwrap()
    }
}

/// Work the queue until a source's latest run has a final status. A sync attempt that fails
/// and will be retried goes back to the queue with a time before which it is not taken
/// (`runs.not_before`); this moves the clock past it and drains again, a bounded number of
/// times, so a test always reads a final status, never a retry still pending.
#[allow(dead_code)]
pub async fn settle(app: &TestApp, district_id: Uuid, source: &str) -> rollcall::db::runs::Run {
    for _ in 0..20 {
        app.queue.drain().await.expect("queue drains");
        let run = latest_run(app, district_id, source).await;
        if run.status != "queued" && run.status != "in_progress" {
            return run;
        }
        // Past any configured pause between attempts (the tests' are milliseconds).
        app.clock.advance(time::Duration::minutes(1));
    }
    panic!("the run of {source} did not reach a final status after 20 rounds");
}

/// The latest run of a source, of any kind.
#[allow(dead_code)]
pub async fn latest_run(app: &TestApp, district_id: Uuid, source: &str) -> rollcall::db::runs::Run {
    let id: Uuid = sqlx::query_scalar(
        "SELECT id FROM runs WHERE district_id = $1 AND source = $2 ORDER BY received_at DESC LIMIT 1",
    )
    .bind(district_id)
    .bind(source)
    .fetch_one(&app.pool)
    .await
    .expect("a run of the source");
    rollcall::db::runs::get(&app.pool, district_id, id)
        .await
        .expect("run read")
        .expect("the run")
}

/// A class to seed straight into the roster tables (until the roster engine fills them):
/// its first teacher is the primary one.
#[allow(dead_code)]
pub struct RosterSeed<'a> {
    pub class: &'a str,
    pub title: &'a str,
    pub school: Uuid,
    pub term: Option<Uuid>,
    pub teachers: &'a [Uuid],
    pub students: &'a [Uuid],
}

/// Insert classes and their enrollments with SQL (owner `file:roster.csv`); their ids, in
/// order.
#[allow(dead_code)]
pub async fn seed_rosters(pool: &PgPool, district: Uuid, seeds: &[RosterSeed<'_>]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for s in seeds {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO classes (district_id, id, external_id, school_id, title, course_code, subject, period, grades, term_id, source)
             VALUES ($1, $2, $3, $4, $5, 'C' || $3, 'Math', '2', '{9,10}', $6, 'file:roster.csv')",
        )
        .bind(district)
        .bind(id)
        .bind(s.class)
        .bind(s.school)
        .bind(s.title)
        .bind(s.term)
        .execute(pool)
        .await
        .expect("class");
        for (i, t) in s.teachers.iter().enumerate() {
            seed_enrollment(pool, district, id, *t, "teacher", i == 0).await;
        }
        for st in s.students {
            seed_enrollment(pool, district, id, *st, "student", false).await;
        }
        ids.push(id);
    }
    ids
}

#[allow(dead_code)]
pub async fn seed_enrollment(
    pool: &PgPool,
    district: Uuid,
    class: Uuid,
    user: Uuid,
    role: &str,
    primary: bool,
) {
    sqlx::query(
        "INSERT INTO enrollments (district_id, class_id, user_id, role, is_primary) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(district)
    .bind(class)
    .bind(user)
    .bind(role)
    .bind(primary)
    .execute(pool)
    .await
    .expect("enrollment");
}

/// A term (owner `file:roster.csv`).
#[allow(dead_code)]
pub async fn seed_term(
    pool: &PgPool,
    district: Uuid,
    external_id: &str,
    title: &str,
    start: Option<time::Date>,
    end: Option<time::Date>,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO terms (district_id, id, external_id, title, start_date, end_date, source)
         VALUES ($1, $2, $3, $4, $5, $6, 'file:roster.csv')",
    )
    .bind(district)
    .bind(id)
    .bind(external_id)
    .bind(title)
    .bind(start)
    .bind(end)
    .execute(pool)
    .await
    .expect("term");
    id
}

/// A user's id by custom ID.
#[allow(dead_code)]
pub async fn user_by_custom_id(pool: &PgPool, district: Uuid, custom_id: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
        .bind(district)
        .bind(custom_id)
        .fetch_one(pool)
        .await
        .expect("a user with that custom ID")
}

/// A [`RosterSeed`].
#[allow(dead_code)]
pub fn roster_seed<'a>(
    class: &'a str,
    title: &'a str,
    school: Uuid,
    term: Option<Uuid>,
    teachers: &'a [Uuid],
    students: &'a [Uuid],
) -> RosterSeed<'a> {
    RosterSeed {
        class,
        title,
        school,
        term,
        teachers,
        students,
    }
}

/// The people of [`seed_classes`].
pub const CLASS_PEOPLE: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade,status,password\n\
    T-1,tran@d.org,Linh,Nguyen,Teacher,HS,,Active,\n\
    T-2,ng@d.org,Wei,Ng,Teacher,HS,,Active,\n\
    T-3,mo@d.org,Mona,Okafor,Teacher,MS,,Active,\n\
    S-1,s1@d.org,Ann,Avery,Student,HS,9,Active,\n\
    S-2,s2@d.org,Ben,Brook,Student,HS,9,Inactive,\n\
    S-3,s3@d.org,Cal,Archer,Student,HS,9,Active,\n\
    S-4,,Dee,Dune,Student,MS,7,Active,\n";

/// What [`seed_classes`] made.
#[allow(dead_code)]
pub struct Classes {
    pub hs: Uuid,
    pub ms: Uuid,
    pub fall: Uuid,
    pub spring: Uuid,
    pub algebra: Uuid,
    pub biology: Uuid,
    pub chemistry: Uuid,
    pub drama: Uuid,
    pub economics: Uuid,
    pub art: Uuid,
    pub ann: Uuid,
    pub ben: Uuid,
    pub cal: Uuid,
    pub dee: Uuid,
    pub nguyen: Uuid,
    pub ng: Uuid,
    pub okafor: Uuid,
}

/// The Classes screens' district (tests/it/classes.rs, tests/browser/classes.rs): two
/// schools (HS, MS), two terms (FALL25 with dates, SPR26), [`CLASS_PEOPLE`] uploaded, and
/// classes: HS: Algebra I (Nguyen + Ng, Ann, Ben inactive, Cal archived), Biology (Ng, Ann),
/// Chemistry (archived class), Drama (no one), Economics (Fall term); MS: Art 7 (Okafor, Dee).
#[allow(dead_code)]
pub async fn seed_classes(env: &UploadEnv) -> Classes {
    let d = env.district.id;
    let pool = env.app.pool.clone();
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(&pool)
        .await
        .unwrap();
    let ms = env.app.school(d, "MS", "Middle School").await;
    env.upload("people.csv", CLASS_PEOPLE).await;
    env.app.queue.drain().await.unwrap();
    let mut people = Vec::new();
    for c in ["T-1", "T-2", "T-3", "S-1", "S-2", "S-3", "S-4"] {
        people.push(user_by_custom_id(&pool, d, c).await);
    }
    let [nguyen, ng, okafor, ann, ben, cal, dee] = people[..] else {
        unreachable!()
    };
    let fall = seed_term(
        &pool,
        d,
        "FALL25",
        "Fall 2025",
        Some(time::macros::date!(2025 - 08 - 20)),
        Some(time::macros::date!(2025 - 12 - 19)),
    )
    .await;
    let spring = seed_term(&pool, d, "SPR26", "Spring 2026", None, None).await;
    let seed = roster_seed;
    let ids = seed_rosters(
        &pool,
        d,
        &[
            seed(
                "HS-ALG-1",
                "Algebra I",
                hs,
                Some(spring),
                &[nguyen, ng],
                &[ann, ben, cal],
            ),
            seed("HS-BIO-1", "Biology", hs, Some(spring), &[ng], &[ann]),
            seed("HS-CHEM-1", "Chemistry", hs, Some(spring), &[ng], &[]),
            seed("HS-DRA-1", "Drama", hs, None, &[], &[]),
            seed("HS-ECO-1", "Economics", hs, Some(fall), &[], &[ann]),
            seed("MS-ART-7", "Art 7", ms, Some(spring), &[okafor], &[dee]),
        ],
    )
    .await;
    sqlx::query("UPDATE classes SET archived_at = now() WHERE district_id = $1 AND id = $2")
        .bind(d)
        .bind(ids[2])
        .execute(&pool)
        .await
        .unwrap();
    let r = env.c.post(&format!("/users/{cal}/archive"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    Classes {
        hs,
        ms,
        fall,
        spring,
        algebra: ids[0],
        biology: ids[1],
        chemistry: ids[2],
        drama: ids[3],
        economics: ids[4],
        art: ids[5],
        ann,
        ben,
        cal,
        dee,
        nguyen,
        ng,
        okafor,
    }
}

/// What MFA enrolment showed: the secret (as an authenticator app reads it) and the
/// recovery codes.
#[allow(dead_code)]
pub struct Enrolled {
    pub secret: String,
    pub recovery: Vec<String>,
}

impl Client {
    /// Set up two-step sign-in on the signed-in account's page, the way a person does: read
    /// the key under the QR code, compute the app's code for `now`, confirm it.
    #[allow(dead_code)]
    pub async fn enrol_mfa(&self, now: time::OffsetDateTime) -> Enrolled {
        let page = self.get("/account/mfa").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("<svg"), "the QR code is on the page");
        let start = page
            .body
            .find("id=\"mfa-secret\">")
            .expect("the key is shown")
            + "id=\"mfa-secret\">".len();
        let end = start + page.body[start..].find('<').unwrap();
        let secret = page.body[start..end].to_string();
        let code = rollcall::auth::mfa::code_at(&secret, now).unwrap();
        let done = self.post("/account/mfa", &[("code", &code)]).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let recovery = done
            .body
            .split("<code class=\"secret\">")
            .skip(1)
            .map(|s| s[..s.find('<').unwrap()].to_string())
            .collect::<Vec<_>>();
        assert_eq!(recovery.len(), 10, "ten recovery codes shown once");
        Enrolled { secret, recovery }
    }
}
