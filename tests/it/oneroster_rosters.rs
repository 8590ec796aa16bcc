//! OneRoster rosters (issue 15): classes, terms and enrollments from a OneRoster 1.1 REST
//! provider (the fake, over HTTP) and from OneRoster CSV sets (the shared 1.1 sample, and the
//! 1.2 set of `tests/data/oneroster-1.2`) through the real client, the queue and PostgreSQL.
//! Both what reaches the roster feed and the classes and enrollments in the database.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::config::Config;
use rollcall::domain::roster::{EnrollmentRole, UserRef};
use rollcall::reconcile::run::Summary;
use rollcall::sync::client::{Client, Limits, Provider as Source};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const SECRET: &str = "or-roster-secret-3c9e";

fn provider() -> Provider {
    Provider {
        client_id: "rollcall".into(),
        client_secret: SECRET.into(),
        max_page: 2,
        orgs: vec![
            or_org("D1", "Springfield USD", "district"),
            or_org("HS", "Springfield High", "school"),
        ],
        users: vec![
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
        ],
        academic_sessions: vec![
            or_session(
                "Y25",
                "2024-2025",
                "schoolYear",
                "2024-08-19",
                "2025-06-14",
                None,
            ),
            or_session(
                "F24",
                "Fall 2024",
                "semester",
                "2024-08-19",
                "2025-01-18",
                Some("Y25"),
            ),
            or_session(
                "S25",
                "Spring 2025",
                "semester",
                "2025-01-21",
                "2025-06-14",
                Some("Y25"),
            ),
        ],
        courses: vec![or_course("C1", "Algebra I", "ALG1", "Mathematics")],
        classes: vec![
            or_class("K1", "Algebra I", "C1", "HS", &["F24", "S25"], "2"),
            or_class("K2", "Algebra I", "C1", "HS", &["S25"], "5"),
        ],
        enrollments: vec![
            or_enrollment("E1", "K1", "t1", "teacher", true, "HS"),
            or_enrollment("E2", "K1", "s1", "student", false, "HS"),
            or_enrollment("E3", "K1", "s2", "student", false, "HS"),
            or_enrollment("E4", "K2", "s2", "student", false, "HS"),
            or_enrollment("E5", "K2", "t1", "teacher", true, "HS"),
        ],
        ..Default::default()
    }
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

#[tokio::test]
async fn the_rest_client_pages_through_the_roster_lists_into_the_feed() {
    let fake = Fake::start(provider()).await;
    let mut c = client(&fake);
    let fetched = c.fetch_all().await.expect("the fetch succeeds");
    assert_eq!(fetched.users.len(), 3);
    let r = fetched.rosters;
    assert!(r.classes_complete && r.enrollments_complete, "a full sync");
    let terms: Vec<_> = r.terms.iter().map(|t| t.as_ref().unwrap()).collect();
    assert_eq!(
        terms
            .iter()
            .map(|t| t.external_id.as_str())
            .collect::<Vec<_>>(),
        ["Y25", "F24", "S25"],
        "two pages of sessions"
    );
    let classes: Vec<_> = r.classes.iter().map(|c| c.as_ref().unwrap()).collect();
    assert_eq!(classes.len(), 2);
    assert_eq!(
        (
            classes[0].course_code.as_str(),
            classes[0].subject.as_str(),
            classes[0].period.as_str(),
            classes[0].term_external_id.as_deref(),
            classes[0].school_external_id.as_str(),
        ),
        ("ALG1", "Mathematics", "2", Some("Y25"), "HS")
    );
    assert_eq!(classes[0].grades, ["9", "10"]);
    let enrollments: Vec<_> = r.enrollments.iter().map(|e| e.unwrap()).collect();
    assert_eq!(enrollments.len(), 5, "three pages of enrollments");
    assert_eq!(enrollments[0].user, UserRef::Provider("t1".into()));
    assert!(enrollments[0].primary && enrollments[0].role == EnrollmentRole::Teacher);
    assert_eq!(enrollments[0].begin.unwrap().to_string(), "2024-08-20");
    // orgs 1 page, users 2, sessions 2, courses 1, classes 1, enrollments 3.
    assert_eq!(fake.with(|p| p.data_requests), 1 + 2 + 2 + 1 + 1 + 3);
}

#[tokio::test]
async fn a_provider_error_on_a_roster_list_fails_the_fetch() {
    let fake = Fake::start(provider()).await;
    // orgs (1) and users (2) answer; the sessions list breaks.
    fake.with(|p| p.fail_from = Some(4));
    let failure = client(&fake).fetch_all().await.unwrap_err();
    assert!(
        failure.message.contains("academicSessions"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("500"), "{}", failure.message);
}

struct Env {
    app: TestApp,
    district: District,
    client: crate::helpers::Client,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let app = TestApp::spawn(pool).await;
        let district = app.district("lakeside").await;
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

    async fn import(&self, path: &Path) -> Summary {
        let config = Config::for_tests(self.app.queue.config.data_dir.clone());
        rollcall::sync::import_set(
            &self.app.pool,
            &self.app.clock,
            &config,
            self.district.id,
            path,
            false,
        )
        .await
        .expect("the import runs")
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE district_id = $1"
        ))
        .bind(self.district.id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

fn set_1p2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oneroster-1.2")
}

fn sample_1p1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/test-data/edfi-lms-toolkit/oneroster-1.1")
}

#[sqlx::test(migrations = "./migrations")]
async fn a_oneroster_1p2_set_goes_in_with_roles_from_roles_csv(pool: PgPool) {
    let env = Env::new(pool).await;
    let s = env.import(&set_1p2()).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!(
        (s.created, s.updated, s.errors),
        (6, 0, 0),
        "{:?}",
        s.message
    );
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("1 guardian, parent or relative records skipped"),
        "{:?}",
        s.message
    );
    let users: Vec<(String, String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT u.custom_id, u.role, u.grade, u.status,
                array(SELECT s.external_id FROM user_schools us JOIN schools s
                        ON s.district_id = us.district_id AND s.id = us.school_id
                       WHERE us.district_id = u.district_id AND us.user_id = u.id
                       ORDER BY s.external_id)
           FROM users u WHERE u.district_id = $1 AND u.portal_role = 'user' ORDER BY u.custom_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let row = |c: &str, r: &str, g: &str, st: &str, s: &[&str]| {
        (
            c.to_string(),
            r.to_string(),
            g.to_string(),
            st.to_string(),
            s.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        users,
        vec![
            row("100201", "Student", "9", "active", &["S1"]),
            row("100202", "Student", "10", "active", &["S1"]),
            row("100301", "Student", "7", "inactive", &["S2"]),
            row("A-601", "Administrator", "Unspecified", "active", &["S1"]),
            row("T-501", "Teacher", "Unspecified", "active", &["S1", "S2"]),
            row("T-502", "Teacher", "Unspecified", "active", &["S2"]),
        ]
    );
    // The same set again: nothing changes.
    let s = env.import(&set_1p2()).await;
    assert_eq!((s.created, s.updated, s.unchanged, s.errors), (0, 0, 6, 0));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_oneroster_sample_set_lands_with_its_classes_and_enrollments(pool: PgPool) {
    let env = Env::new(pool).await;
    let s = env.import(&sample_1p1()).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!((s.created, s.errors), (10, 0));
    assert_eq!(env.count("terms").await, 3);
    assert_eq!(env.count("classes").await, 2);
    // 24 records, each user in each class once per semester: 12 enrollments.
    assert_eq!(env.count("enrollments").await, 12);
    let eng: (String, String, String) = sqlx::query_as(
        "SELECT c.title, c.course_code, t.external_id FROM classes c JOIN terms t
            ON t.district_id = c.district_id AND t.id = c.term_id
          WHERE c.district_id = $1 AND c.external_id = '25590100101Trad120ENG112011'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        eng,
        (
            "ENG-1".into(),
            "ENG-1".into(),
            "255901001_2021_2020-2021_SchoolYear".into()
        )
    );
    let teachers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enrollments WHERE district_id = $1 AND role = 'teacher' AND is_primary",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(teachers, 2);
    // The same set again as a zip-less folder: a no-op.
    let s = env.import(&sample_1p1()).await;
    assert_eq!((s.created, s.updated, s.unchanged), (0, 0, 10));
    assert_eq!(env.count("enrollments").await, 12);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_rest_sync_lands_with_its_classes_and_enrollments(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(provider()).await;
    let page = env
        .client
        .post(
            "/syncs",
            &[
                ("kind", "oneroster_rest"),
                ("name", "ClassLink"),
                ("base_url", &fake.url()),
                ("client_id", "rollcall"),
                ("secret", SECRET),
                ("interval_hours", "6"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let conn: Uuid = page
        .location
        .unwrap()
        .trim_start_matches("/syncs/")
        .parse()
        .unwrap();
    assert_eq!(
        env.client
            .post(&format!("/syncs/{conn}/run"), &[])
            .await
            .status,
        303
    );
    let run = settle(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(env.count("classes").await, 2);
    assert_eq!(env.count("enrollments").await, 5);
    let owner: String = sqlx::query_scalar(
        "SELECT source FROM classes WHERE district_id = $1 AND external_id = 'K1'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(owner, format!("sync:{conn}"));
    // K2 gone at the provider: archived, its enrollments ended, on the next full sync.
    fake.with(|p| {
        p.classes.truncate(1);
        p.enrollments.truncate(3);
    });
    assert_eq!(
        env.client
            .post(&format!("/syncs/{conn}/run"), &[])
            .await
            .status,
        303
    );
    let run = settle(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    // An archived class keeps its enrollments (restoring it brings them back); the live
    // classes hold the 3 the provider still lists.
    assert_eq!(env.count("enrollments").await, 5);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enrollments e JOIN classes c
           ON c.district_id = e.district_id AND c.id = e.class_id
         WHERE e.district_id = $1 AND c.archived_at IS NULL",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(live, 3);
    let archived: bool = sqlx::query_scalar(
        "SELECT archived_at IS NOT NULL FROM classes WHERE district_id = $1 AND external_id = 'K2'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert!(archived);
}
