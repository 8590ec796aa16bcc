//! Optional roster lists (issue 15): a OneRoster REST provider or Clever that does not offer
//! `/classes`, `/enrollments`, `/academicSessions`, `/courses`, `/v3.0/sections`,
//! `/v3.0/terms` or `/v3.0/courses` (404) still syncs its schools and users; the run says
//! what was left as it is, and nothing is archived or ended for a list that was not read.
//! Other failures still fail the sync. Clever's `/v3.0/courses` gives the classes' course
//! codes. All through the fake providers, the real client, the queue and PostgreSQL.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::db;
use rollcall::sync::client::{Client, Limits, Provider as Source};
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "or-lists-secret-7a21";
const CLEVER_TOKEN: &str = "clever-lists-token-91d0";
const OR: &str = "/ims/oneroster/v1p1";

/// A OneRoster district with two classes (K1: a teacher and two students; K2: a teacher and
/// one student) in one term.
fn oneroster() -> Provider {
    Provider {
        client_id: "rollcall".into(),
        client_secret: SECRET.into(),
        max_page: 50,
        orgs: vec![
            or_org("D1", "Springfield USD", "district"),
            or_org("HS", "Springfield High", "school"),
        ],
        users: vec![
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
        ],
        academic_sessions: vec![or_session(
            "Y25",
            "2024-2025",
            "schoolYear",
            "2024-08-19",
            "2025-06-14",
            None,
        )],
        courses: vec![or_course("C1", "Algebra I", "ALG1", "Mathematics")],
        classes: vec![
            or_class("K1", "Algebra I", "C1", "HS", &["Y25"], "2"),
            or_class("K2", "Algebra I", "C1", "HS", &["Y25"], "5"),
        ],
        enrollments: vec![
            or_enrollment("E1", "K1", "t1", "teacher", true, "HS"),
            or_enrollment("E2", "K1", "s1", "student", false, "HS"),
            or_enrollment("E3", "K1", "s2", "student", false, "HS"),
            or_enrollment("E4", "K2", "t1", "teacher", true, "HS"),
            or_enrollment("E5", "K2", "s2", "student", false, "HS"),
        ],
        ..Default::default()
    }
}

/// A Clever district: one school, a term, two courses (one without a number), three
/// sections.
fn clever() -> Provider {
    Provider {
        max_page: 2,
        clever_token: CLEVER_TOKEN.into(),
        clever_schools: vec![clever_school("5f3", "Lincoln High")],
        clever_users: vec![
            clever_user("c1", "student", "Ana", "Diaz", "1001", "5f3"),
            clever_user("c2", "student", "Ben", "Diaz", "1002", "5f3"),
            clever_user("c4", "teacher", "Dee", "Ames", "T-4", "5f3"),
        ],
        clever_terms: vec![clever_term("t1", "Fall 2024", "2024-08-15", "2024-12-20")],
        // Three courses over two pages (crs-sec1 on the second); crs-sec2 has no number.
        clever_courses: vec![
            clever_course("crs-other", "Chemistry", "SC-201"),
            clever_course("crs-sec2", "Biology", ""),
            clever_course("crs-sec1", "Algebra I", "MA-101"),
        ],
        clever_sections: vec![
            clever_section("sec1", "5f3", "Algebra", "t1", &["c4"], &["c1", "c2"]),
            clever_section("sec2", "5f3", "Biology", "t1", &["c4"], &["c1"]),
            clever_section("sec3", "5f3", "Homeroom", "", &["c4"], &["c2"]),
        ],
        ..Default::default()
    }
}

struct Env {
    app: TestApp,
    district: District,
    client: crate::helpers::Client,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let app = TestApp::spawn(pool).await;
        let district = app.district("riverside").await;
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

    async fn connect_clever(&self, fake: &Fake) -> Uuid {
        self.connect(&[
            ("kind", "clever"),
            ("name", "Clever"),
            ("base_url", &fake.url()),
            ("secret", CLEVER_TOKEN),
            ("interval_hours", "6"),
        ])
        .await
    }

    async fn sync_now(&self, conn: Uuid) -> db::runs::Run {
        let page = self.client.post(&format!("/syncs/{conn}/run"), &[]).await;
        assert_eq!(page.status, 303);
        settle(&self.app, self.district.id, &format!("sync:{conn}")).await
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(self.district.id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn live_classes(&self) -> i64 {
        self.scalar("SELECT count(*) FROM classes WHERE district_id = $1 AND archived_at IS NULL")
            .await
    }

    async fn enrollments(&self) -> i64 {
        self.scalar("SELECT count(*) FROM enrollments WHERE district_id = $1")
            .await
    }

    async fn given_name(&self, custom_id: &str) -> String {
        sqlx::query_scalar("SELECT first_name FROM users WHERE district_id = $1 AND custom_id = $2")
            .bind(self.district.id)
            .bind(custom_id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// A run's roster counts: classes archived, enrollments ended.
    async fn ended(&self, run: Uuid) -> (i32, i32) {
        sqlx::query_as(
            "SELECT classes_archived, enrollments_ended FROM runs WHERE district_id = $1 AND id = $2",
        )
        .bind(self.district.id)
        .bind(run)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

fn message(run: &db::runs::Run) -> String {
    run.message.clone().unwrap_or_default()
}

fn client(fake: &Fake) -> Client {
    Client::new(
        Source::OneRoster {
            base: fake.url().parse().unwrap(),
            token_url: format!("{}/token", fake.url()).parse().unwrap(),
            client_id: "rollcall".into(),
            secret: SECRET.to_string().into(),
        },
        Limits {
            allow_private: true,
            max_pages: 50,
            max_response_bytes: 1 << 20,
            pauses: Vec::new(),
        },
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn a_provider_without_roster_lists_syncs_its_schools_and_users(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    fake.with(|p| {
        for list in ["academicSessions", "courses", "classes", "enrollments"] {
            p.not_found.insert(format!("{OR}/{list}"));
        }
    });
    let conn = env.connect_oneroster(&fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(run.created, 3, "the users land");
    assert_eq!(
        env.scalar("SELECT count(*) FROM schools WHERE district_id = $1 AND external_id = 'HS'")
            .await,
        1
    );
    let m = message(&run);
    for note in [
        "the provider does not offer /academicSessions; terms were left as they are",
        "the provider does not offer /classes; classes and enrollments were left as they are",
    ] {
        assert!(m.contains(note), "{m}");
    }
    assert_eq!(env.live_classes().await, 0);
    // /classes answered 404, so /enrollments was not asked for: orgs, users, sessions,
    // courses, classes.
    assert_eq!(fake.with(|p| p.data_requests), 5);
}

#[sqlx::test(migrations = "./migrations")]
async fn classes_no_longer_offered_are_left_as_they_are_and_users_still_sync(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!((env.live_classes().await, env.enrollments().await), (2, 5));

    // The provider stops offering /classes (and /enrollments); a user is renamed.
    fake.with(|p| {
        p.not_found.insert(format!("{OR}/classes"));
        p.not_found.insert(format!("{OR}/enrollments"));
        p.users[0]["givenName"] = "Anna".into();
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert!(
        message(&run).contains(
            "the provider does not offer /classes; classes and enrollments were left as they are"
        ),
        "{:?}",
        run.message
    );
    assert_eq!(run.updated, 1, "the rename is applied");
    assert_eq!(env.given_name("ID-s1").await, "Anna");
    // Nothing archived or ended because the lists were missing.
    assert_eq!((env.live_classes().await, env.enrollments().await), (2, 5));
    assert_eq!(env.ended(run.id).await, (0, 0));
}

#[sqlx::test(migrations = "./migrations")]
async fn without_enrollments_the_classes_sync_and_enrollments_stay(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(oneroster()).await;
    let conn = env.connect_oneroster(&fake).await;
    assert_eq!(env.sync_now(conn).await.status, "completed");

    // K2 is gone from /classes; /enrollments is not offered any more.
    fake.with(|p| {
        p.classes.truncate(1);
        p.not_found.insert(format!("{OR}/enrollments"));
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert!(
        message(&run).contains(
            "the provider does not offer /enrollments; enrollments were left as they are"
        ),
        "{:?}",
        run.message
    );
    // The classes list is complete: K2 archived. The enrollments are all kept, none ended.
    assert_eq!(env.live_classes().await, 1);
    assert_eq!(env.ended(run.id).await, (1, 0));
    assert_eq!(env.enrollments().await, 5);
}

#[tokio::test]
async fn other_failures_on_a_roster_list_still_fail_the_fetch() {
    // A 404 on a list that is not optional (users) fails as before.
    let fake = Fake::start(oneroster()).await;
    fake.with(|p| {
        p.not_found.insert(format!("{OR}/users"));
    });
    let f = client(&fake).fetch_all().await.unwrap_err();
    assert!(
        f.message.contains("/users") && f.message.contains("404"),
        "{}",
        f.message
    );

    // A 500 on /classes (orgs 1, users 1, sessions 1, courses 1; the 5th request breaks).
    let fake = Fake::start(oneroster()).await;
    fake.with(|p| p.fail_from = Some(5));
    let f = client(&fake).fetch_all().await.unwrap_err();
    assert!(
        f.message.contains("/classes") && f.message.contains("500"),
        "{}",
        f.message
    );

    // A 500 on Clever's /v3.0/sections fails too (not "not offered").
    let fake = Fake::start(clever()).await;
    fake.with(|p| p.fail_from = Some(1));
    let mut c = Client::new(
        Source::Clever {
            base: fake.url().parse().unwrap(),
            token: CLEVER_TOKEN.to_string().into(),
        },
        Limits {
            allow_private: true,
            max_pages: 50,
            max_response_bytes: 1 << 20,
            pauses: Vec::new(),
        },
    );
    let f = c.fetch_all().await.unwrap_err();
    assert!(f.message.contains("500"), "{}", f.message);

    // With every list there, no note and a complete feed.
    let fake = Fake::start(oneroster()).await;
    let fetched = client(&fake).fetch_all().await.expect("the full provider");
    assert!(fetched.notes.is_empty(), "{:?}", fetched.notes);
    assert!(fetched.rosters.classes_complete && fetched.rosters.enrollments_complete);
}

#[sqlx::test(migrations = "./migrations")]
async fn clever_without_sections_or_terms_syncs_users_and_leaves_classes(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(clever()).await;
    let conn = env.connect_clever(&fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!((env.live_classes().await, env.enrollments().await), (3, 7));

    fake.with(|p| {
        p.not_found.insert("/v3.0/sections".into());
        p.not_found.insert("/v3.0/terms".into());
        p.not_found.insert("/v3.0/courses".into());
        p.clever_users[0]["name"]["first"] = "Anita".into();
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    let m = message(&run);
    for note in [
        "the provider does not offer /v3.0/terms; terms were left as they are",
        "the provider does not offer /v3.0/sections; classes and enrollments were left as they are",
    ] {
        assert!(m.contains(note), "{m}");
    }
    assert_eq!(run.updated, 1, "the users still sync");
    assert_eq!((env.live_classes().await, env.enrollments().await), (3, 7));
    assert_eq!(env.ended(run.id).await, (0, 0));
}

#[sqlx::test(migrations = "./migrations")]
async fn clever_course_numbers_become_the_classes_course_codes(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(clever()).await;
    let conn = env.connect_clever(&fake).await;
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    let codes: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, course_code FROM classes WHERE district_id = $1 ORDER BY external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        codes,
        [
            // Its course is on the courses list's second page.
            ("sec1".to_string(), "MA-101".to_string()),
            // No number: the course id, as before /courses was read.
            ("sec2".into(), "crs-sec2".into()),
            ("sec3".into(), "crs-sec3".into()),
        ]
    );
    // Without /courses the codes fall back to the course ids, with a note.
    fake.with(|p| {
        p.not_found.insert("/v3.0/courses".into());
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert!(
        message(&run).contains("the provider does not offer /v3.0/courses"),
        "{:?}",
        run.message
    );
    let code: String = sqlx::query_scalar(
        "SELECT course_code FROM classes WHERE district_id = $1 AND external_id = 'sec1'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(code, "crs-sec1");
}
