//! Rosters from Clever and Microsoft SDS (issue 15): Clever v3 sections and terms fetched from
//! the fake provider into the sync's roster feed, SDS v1 sets (folder, zip, upload) read into
//! schools, users and rosters. The tests that need classes and enrollments in the database
//! wait for the roster engine (i15-engine) and are ignored until it is merged.

use crate::fake_providers::*;
use crate::helpers::*;
use rollcall::config::Config;
use rollcall::db;
use rollcall::domain::roster::{EnrollmentRole, UserRef};
use rollcall::reconcile::run::Summary;
use rollcall::sync::client::{self, Client};
use secrecy::SecretString;
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const CLEVER_TOKEN: &str = "clever-district-token-5e0c1a77";

struct Env {
    app: TestApp,
    district: District,
    client: WebClient,
}

type WebClient = crate::helpers::Client;

impl Env {
    async fn new(pool: PgPool) -> Env {
        let app = TestApp::spawn(pool).await;
        let district = app.district("lakeview").await;
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

    /// Send a set to a CSV connection as the browser does, and wait for its run to end.
    async fn upload_set(&self, conn: Uuid, name: &str, path: &Path) -> db::runs::Run {
        let page = self
            .client
            .post_file(
                &format!("/syncs/{conn}/upload"),
                name,
                std::fs::read(path).unwrap(),
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        settle(&self.app, self.district.id, &format!("sync:{conn}")).await
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
}

// ---- Clever ----

/// A district on Clever: two schools, a term, three sections over two pages (page size 2),
/// two teachers (one co-teaching), four students.
fn clever_district() -> Provider {
    Provider {
        max_page: 2,
        clever_token: CLEVER_TOKEN.into(),
        clever_schools: vec![
            clever_school("5f1", "Lincoln Elementary"),
            clever_school("5f3", "Lincoln High"),
        ],
        clever_users: vec![
            clever_user("c1", "student", "Ana", "Diaz", "1001", "5f3"),
            clever_user("c2", "student", "Ben", "Diaz", "1002", "5f3"),
            clever_user("c3", "student", "Cal", "Diaz", "1003", "5f1"),
            {
                // Dee teaches at both schools (sec1 at the high school, sec3 at the
                // elementary): a teacher must be at the class's school.
                let mut dee = clever_user("c4", "teacher", "Dee", "Ames", "T-4", "5f3");
                dee["roles"]["teacher"]["schools"] = serde_json::json!(["5f3", "5f1"]);
                dee
            },
            clever_user("c5", "teacher", "Fay", "Ames", "T-5", "5f3"),
            clever_user("c6", "student", "Gil", "Diaz", "1006", "5f3"),
        ],
        clever_terms: vec![clever_term("t1", "Fall 2024", "2024-08-15", "2024-12-20")],
        clever_sections: vec![
            clever_section(
                "sec1",
                "5f3",
                "Algebra - Ames - Period 2",
                "t1",
                &["c4", "c5"],
                &["c1", "c2"],
            ),
            clever_section(
                "sec2",
                "5f3",
                "Biology - Ames - Period 3",
                "t1",
                &["c5"],
                &["c1", "c6"],
            ),
            clever_section("sec3", "5f1", "Homeroom", "", &["c4"], &["c3"]),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_clever_fetch_hands_sections_terms_and_enrollments_to_the_feed() {
    let fake = Fake::start(clever_district()).await;
    let provider = client::Provider::Clever {
        base: client::parse_base(&fake.url()).unwrap(),
        token: SecretString::from(CLEVER_TOKEN.to_string()),
    };
    let limits = client::Limits {
        allow_private: true,
        max_pages: 100,
        max_response_bytes: 1 << 20,
        pauses: Vec::new(),
    };
    let mut client = Client::new(provider, limits);
    let fetched = client.fetch_all().await.expect("the fetch succeeds");
    assert_eq!(fetched.users.len(), 6);
    let r = fetched.rosters;
    assert!(r.classes_complete && r.enrollments_complete);

    let terms: Vec<_> = r.terms.iter().map(|t| t.clone().unwrap()).collect();
    assert_eq!(terms.len(), 1);
    assert_eq!(
        (terms[0].external_id.as_str(), terms[0].title.as_str()),
        ("t1", "Fall 2024")
    );
    assert_eq!(terms[0].start, Some(time::macros::date!(2024 - 08 - 15)));

    // Three sections over two pages, in order, each named by its place in the list.
    let classes: Vec<_> = r.classes.iter().map(|c| c.clone().unwrap()).collect();
    let got: Vec<_> = classes
        .iter()
        .map(|c| {
            (
                c.external_id.as_str(),
                c.title.as_str(),
                c.school_external_id.as_str(),
                c.term_external_id.as_deref(),
                c.at.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("sec1", "Algebra - Ames - Period 2", "5f3", Some("t1"), 1),
            ("sec2", "Biology - Ames - Period 3", "5f3", Some("t1"), 2),
            ("sec3", "Homeroom", "5f1", None, 3),
        ]
    );
    assert_eq!(classes[0].course_code, "crs-sec1");
    assert_eq!(
        (classes[0].subject.as_str(), classes[0].period.as_str()),
        ("math", "2")
    );

    let p = |s: &str| UserRef::Provider(s.into());
    let enrolled: Vec<_> = r
        .enrollments
        .iter()
        .map(|e| {
            let e = e.clone().unwrap();
            (e.class_external_id, e.user, e.role, e.primary)
        })
        .collect();
    use EnrollmentRole::{Student, Teacher};
    assert_eq!(
        enrolled,
        vec![
            ("sec1".into(), p("c4"), Teacher, true),
            ("sec1".into(), p("c5"), Teacher, false),
            ("sec1".into(), p("c1"), Student, false),
            ("sec1".into(), p("c2"), Student, false),
            ("sec2".into(), p("c5"), Teacher, true),
            ("sec2".into(), p("c1"), Student, false),
            ("sec2".into(), p("c6"), Student, false),
            ("sec3".into(), p("c4"), Teacher, true),
            ("sec3".into(), p("c3"), Student, false),
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_clever_sync_that_fetches_sections_still_syncs_its_schools_and_users(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(clever_district()).await;
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
    assert_eq!((run.created, run.errors), (6, 0));
    // Each user is owned by the sync and keyed by its Clever id: what enrollments name.
    let keyed = env
        .scalar(&format!(
            "SELECT count(*) FROM users WHERE district_id = $1 AND source = 'sync:{conn}'
             AND source_key IN ('c1', 'c2', 'c3', 'c4', 'c5', 'c6')"
        ))
        .await;
    assert_eq!(keyed, 6);
    let schools = env
        .scalar("SELECT count(*) FROM schools WHERE district_id = $1")
        .await;
    assert_eq!(schools, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_clever_sync_lands_its_sections_as_classes_and_enrollments(pool: PgPool) {
    let env = Env::new(pool).await;
    let fake = Fake::start(clever_district()).await;
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
    let classes: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.external_id, c.title, s.external_id, t.title
         FROM classes c JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE c.district_id = $1 AND c.archived_at IS NULL ORDER BY c.external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        classes,
        vec![
            (
                "sec1".into(),
                "Algebra - Ames - Period 2".into(),
                "5f3".into(),
                Some("Fall 2024".into())
            ),
            (
                "sec2".into(),
                "Biology - Ames - Period 3".into(),
                "5f3".into(),
                Some("Fall 2024".into())
            ),
            ("sec3".into(), "Homeroom".into(), "5f1".into(), None),
        ]
    );
    let enrollments: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT c.external_id, u.source_key, e.role, e.is_primary
         FROM enrollments e
         JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1 ORDER BY 1, 3 DESC, 2",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let e = |c: &str, u: &str, r: &str, p: bool| (c.to_string(), u.to_string(), r.to_string(), p);
    assert_eq!(
        enrollments,
        vec![
            e("sec1", "c4", "teacher", true),
            e("sec1", "c5", "teacher", false),
            e("sec1", "c1", "student", false),
            e("sec1", "c2", "student", false),
            e("sec2", "c5", "teacher", true),
            e("sec2", "c1", "student", false),
            e("sec2", "c6", "student", false),
            e("sec3", "c4", "teacher", true),
            e("sec3", "c3", "student", false),
        ]
    );

    // A student leaves a section and a section is gone: a no-longer-listed enrollment ends,
    // the section is archived.
    fake.with(|p| {
        p.clever_sections.pop();
        p.clever_sections[1] = clever_section(
            "sec2",
            "5f3",
            "Biology - Ames - Period 3",
            "t1",
            &["c5"],
            &["c1"],
        );
    });
    let run = env.sync_now(conn).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    let live = env
        .scalar("SELECT count(*) FROM classes WHERE district_id = $1 AND archived_at IS NULL")
        .await;
    assert_eq!(live, 2);
    let sec2 = env
        .scalar(
            "SELECT count(*) FROM enrollments e JOIN classes c ON c.district_id = e.district_id
             AND c.id = e.class_id WHERE e.district_id = $1 AND c.external_id = 'sec2'",
        )
        .await;
    assert_eq!(sec2, 2);
}

// ---- SDS v1 ----

fn sds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sds-v1")
}

/// The SDS test set as a zip (`folder/` prefix: SDS exports often zip a folder), with
/// `replace` swapping a file's contents and `leave_out` dropping one.
fn sds_zip(out: &Path, replace: &[(&str, &str)], leave_out: &[&str]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for entry in std::fs::read_dir(sds_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_str().unwrap().to_string();
        if !name.ends_with(".csv") || leave_out.contains(&name.as_str()) {
            continue;
        }
        let bytes = match replace.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => text.as_bytes().to_vec(),
            None => std::fs::read(entry.path()).unwrap(),
        };
        w.start_file(format!("lakeview-sds/{name}"), opts).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap();
}

async fn role_counts(env: &Env) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT role, count(*) FROM users WHERE district_id = $1 AND portal_role = 'user'
         AND archived_at IS NULL GROUP BY role ORDER BY role",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn an_sds_folder_then_the_same_set_zipped_imports_then_changes_nothing(pool: PgPool) {
    let env = Env::new(pool).await;
    // The command line takes a folder of SDS files as a set.
    assert!(rollcall::sync::is_sds_set(&sds_dir()));
    assert!(!rollcall::sync::is_oneroster_set(&sds_dir()));

    let s = env.import(&sds_dir()).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.archived, s.errors),
        (6, 0, 0, 0, 0)
    );
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
            ("SDS-HS".into(), "Lakeview High School".into()),
            ("SDS-MS".into(), "Lakeview Middle School".into())
        ]
    );
    assert_eq!(
        role_counts(&env).await,
        vec![("Student".into(), 4), ("Teacher".into(), 2)]
    );
    // SIS ID is the key and the custom ID; Username the username; Secondary Email the email.
    let avery: (String, String, String, String, String) = sqlx::query_as(
        "SELECT source_key, username, coalesce(email, ''), grade, first_name FROM users
         WHERE district_id = $1 AND custom_id = 'SDS-S1'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        avery,
        (
            "SDS-S1".into(),
            "avery.lee@lakeview.example.org".into(),
            "avery.lee@home.example.org".into(),
            "9".into(),
            "Avery".into()
        )
    );
    // A teacher on two rows (two schools) is one user at both.
    let morgan_schools = env
        .scalar(
            "SELECT count(*) FROM user_schools us JOIN users u ON u.district_id = us.district_id
             AND u.id = us.user_id WHERE us.district_id = $1 AND u.custom_id = 'SDS-T1'",
        )
        .await;
    assert_eq!(morgan_schools, 2);

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("lakeview-sds.zip");
    sds_zip(&zip, &[], &[]);
    assert!(rollcall::sync::is_sds_set(&zip));
    let s = env.import(&zip).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.archived, s.errors),
        (0, 0, 6, 0, 0)
    );
    // The run keeps what the set said about users, as a sync's snapshot.
    let runs = db::syncs::recent_runs(&env.app.pool, env.district.id, None, 1)
        .await
        .unwrap();
    assert_eq!(runs[0].file_name.as_deref(), Some("sds-users.csv"));
}

#[sqlx::test(migrations = "./migrations")]
async fn an_sds_zip_uploaded_to_the_csv_connection_goes_through_the_queue(pool: PgPool) {
    let env = Env::new(pool).await;
    let conn = env
        .connect(&[("kind", "oneroster_csv"), ("name", "Nightly SDS export")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("sds.zip");
    sds_zip(&zip, &[], &[]);
    let run = env.upload_set(conn, "sds.zip", &zip).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!((run.created, run.errors), (6, 0));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_bad_sds_set_changes_nothing_and_bad_rows_are_row_errors(pool: PgPool) {
    let env = Env::new(pool).await;
    let dir = tempfile::tempdir().unwrap();

    // A set without TeacherRoster.csv cannot be used: the run fails naming the file.
    let zip = dir.path().join("partial.zip");
    sds_zip(&zip, &[], &["TeacherRoster.csv"]);
    let s = env.import(&zip).await;
    assert_eq!(s.status, "failed");
    let message = s.message.unwrap_or_default();
    assert!(message.contains("TeacherRoster.csv"), "{message}");
    assert_eq!(role_counts(&env).await, vec![]);

    // A required column missing: the message names the file and the column.
    let zip = dir.path().join("no-username.zip");
    sds_zip(
        &zip,
        &[(
            "Teacher.csv",
            "SIS ID,School SIS ID,First Name,Last Name\nSDS-T1,SDS-HS,Morgan,Hale\n",
        )],
        &[],
    );
    let s = env.import(&zip).await;
    assert_eq!(s.status, "failed");
    assert!(
        s.message
            .unwrap_or_default()
            .contains("Teacher.csv has no column Username")
    );
    assert_eq!(role_counts(&env).await, vec![]);

    // A student row without a name is an error row naming file and line; the rest goes in.
    let zip = dir.path().join("one-bad-row.zip");
    let students = std::fs::read_to_string(sds_dir().join("Student.csv")).unwrap()
        + "SDS-S9,SDS-HS,nameless@lakeview.example.org,,,,,,1009,9,,Active,,\r\n";
    sds_zip(&zip, &[("Student.csv", &students)], &[]);
    let s = env.import(&zip).await;
    assert_eq!(s.status, "completed_with_errors", "{:?}", s.message);
    assert_eq!((s.created, s.errors), (6, 1));
    let error: String = sqlx::query_scalar(
        "SELECT error FROM run_rows WHERE district_id = $1 AND run_id = $2 AND outcome = 'error'",
    )
    .bind(env.district.id)
    .bind(s.run_id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap_or_default();
    assert!(error.contains("Student.csv line 6"), "{error}");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_sds_set_lands_its_sections_as_classes_and_enrollments(pool: PgPool) {
    let env = Env::new(pool).await;
    let s = env.import(&sds_dir()).await;
    assert_eq!(s.status, "completed", "{:?}", s.message);
    let classes: Vec<(String, String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.external_id, c.title, s.external_id, c.course_code, c.period, t.title
         FROM classes c JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE c.district_id = $1 AND c.archived_at IS NULL ORDER BY c.external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    let c = |id: &str, title: &str, school: &str, course: &str, period: &str, term: &str| {
        (
            id.to_string(),
            title.to_string(),
            school.to_string(),
            course.to_string(),
            period.to_string(),
            Some(term.to_string()),
        )
    };
    assert_eq!(
        classes,
        vec![
            c(
                "SEC-ALG1-1",
                "Algebra I - Period 1",
                "SDS-HS",
                "MATH-101",
                "1",
                "Fall 2024"
            ),
            c(
                "SEC-BIO-3",
                "Biology - Period 3",
                "SDS-HS",
                "SCI-201",
                "3",
                "Fall 2024"
            ),
            c(
                "SEC-ENG6-2",
                "English 6 - Period 2",
                "SDS-MS",
                "ELA-6",
                "2",
                "2024-2025"
            ),
        ]
    );
    let per_role: Vec<(String, i64)> = sqlx::query_as(
        "SELECT role, count(*) FROM enrollments WHERE district_id = $1 GROUP BY role ORDER BY role",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(per_role, vec![("student".into(), 6), ("teacher".into(), 3)]);
    // The same set again: nothing changes.
    let s = env.import(&sds_dir()).await;
    assert_eq!((s.created, s.updated, s.archived, s.errors), (0, 0, 0, 0));
}

/// A run's download fetched as bytes: its content type, and each file of the zip it is.
async fn zip_download(env: &Env, run: Uuid, kind: &str) -> (String, Vec<(String, String)>) {
    let r = env
        .client
        .http
        .get(format!("{}/uploads/{run}/files/{kind}", env.client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let disposition = r.headers()[reqwest::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.ends_with(&format!("-{kind}.zip\"")),
        "{disposition}"
    );
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).unwrap();
        files.push((f.name().unwrap().to_string(), text));
    }
    (content_type, files)
}

#[sqlx::test(migrations = "./migrations")]
async fn an_sds_sets_completed_and_error_files_include_its_classes_and_roster_errors(pool: PgPool) {
    let env = Env::new(pool).await;
    let conn = env
        .connect(&[("kind", "oneroster_csv"), ("name", "Nightly SDS export")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("sds.zip");
    // One enrollment names a student the set does not have: a roster error, the rest goes in.
    let enrollments = std::fs::read_to_string(sds_dir().join("StudentEnrollment.csv")).unwrap()
        + "SEC-BIO-3,SDS-S99\n";
    sds_zip(&zip, &[("StudentEnrollment.csv", &enrollments)], &[]);
    let run = env.upload_set(conn, "sds.zip", &zip).await;
    assert_eq!(run.status, "completed_with_errors", "{:?}", run.message);

    // The run page says its files are zips.
    let page = env.client.get(&format!("/uploads/{}", run.id)).await;
    assert!(
        page.body
            .contains("its completed file is a zip of users.csv"),
        "{}",
        page.body
    );

    // The completed file: the users' file as for any run, and each class with its GUID.
    let (content_type, files) = zip_download(&env, run.id, "completed").await;
    assert_eq!(content_type, "application/zip");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["users.csv", "classes.csv", "enrollments.csv"]);
    let users = &files[0].1;
    assert!(
        users.lines().next().unwrap().contains("user_guid"),
        "{users}"
    );
    assert_eq!(users.lines().count(), 1 + 6, "{users}");
    let guids: Vec<(String, Uuid, String)> = sqlx::query_as(
        "SELECT c.external_id, c.id, c.title FROM classes c WHERE c.district_id = $1
         ORDER BY c.external_id",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(guids.len(), 3);
    let mut classes: Vec<String> = files[1].1.lines().map(String::from).collect();
    assert_eq!(
        classes.remove(0),
        "class_external_id,class_guid,title,school_external_id,term,outcome,changed"
    );
    classes.sort();
    let expected: Vec<String> = guids
        .iter()
        .map(|(ext, id, title)| {
            let (school, term) = match ext.as_str() {
                "SEC-ENG6-2" => ("SDS-MS", "2024-2025"),
                _ => ("SDS-HS", "Fall 2024"),
            };
            format!("{ext},{id},{title},{school},{term},created,")
        })
        .collect();
    assert_eq!(classes, expected);
    // And each enrollment it added, by class and user, as the database has them.
    let mut written: Vec<String> = files[2].1.lines().map(String::from).collect();
    assert_eq!(
        written.remove(0),
        "class_external_id,class_guid,user_guid,custom_id,outcome"
    );
    written.sort();
    let mut in_db: Vec<String> = sqlx::query_scalar(
        "SELECT c.external_id || ',' || c.id || ',' || u.id || ',' || coalesce(u.custom_id, '') || ',added'
         FROM enrollments e JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
         JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
         WHERE e.district_id = $1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    in_db.sort();
    assert_eq!(in_db.len(), 9);
    assert_eq!(written, in_db);

    // The error file: the users' error file (no user failed: its header only) and the roster
    // error, with where it was read, its class's GUID and the reason.
    let (_, files) = zip_download(&env, run.id, "errors").await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["users.csv", "roster-errors.csv"]);
    assert_eq!(files[0].1.lines().count(), 1, "{}", files[0].1);
    let errors: Vec<&str> = files[1].1.lines().collect();
    assert_eq!(
        errors[0],
        "record,file,line,external_id,class_guid,user_guid,Error"
    );
    assert_eq!(errors.len(), 2, "{}", files[1].1);
    let bio = guids.iter().find(|g| g.0 == "SEC-BIO-3").unwrap().1;
    assert!(
        errors[1].starts_with(&format!(
            "enrollment,StudentEnrollment.csv,{},SEC-BIO-3,{bio},,",
            enrollments.lines().count()
        )),
        "{}",
        errors[1]
    );
    assert!(errors[1].contains("SDS-S99"), "{}", errors[1]);

    // The same set again changes nothing: its completed file lists no class (a sync stores
    // no row for a class it left unchanged), its users as for any run.
    let again = env.upload_set(conn, "sds.zip", &zip).await;
    assert_ne!(again.id, run.id);
    let (_, files) = zip_download(&env, again.id, "completed").await;
    assert_eq!(files[1].1.lines().count(), 1, "{}", files[1].1);
    assert_eq!(files[2].1.lines().count(), 1, "{}", files[2].1);
    assert_eq!(files[0].1.lines().count(), 1 + 6, "{}", files[0].1);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sets_uploaded_file_is_its_zip_and_an_approved_set_runs_from_it(pool: PgPool) {
    let env = Env::new(pool).await;
    sqlx::query("UPDATE districts SET guard_archive_min = 1 WHERE id = $1")
        .bind(env.district.id)
        .execute(&env.app.pool)
        .await
        .unwrap();
    let conn = env
        .connect(&[("kind", "oneroster_csv"), ("name", "Nightly SDS export")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    // A teacher's password given in the set: the uploaded file gives it back emptied.
    let secret = "Correct-Horse-Battery-9";
    let teachers = std::fs::read_to_string(sds_dir().join("Teacher.csv")).unwrap();
    let mut lines: Vec<String> = teachers.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
    cells[3] = secret.into();
    lines[1] = cells.join(",");
    let teachers = lines.join("\r\n") + "\r\n";
    let zip = dir.path().join("sds.zip");
    sds_zip(&zip, &[("Teacher.csv", &teachers)], &[]);
    let run = env.upload_set(conn, "sds.zip", &zip).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);

    let (content_type, files) = zip_download(&env, run.id, "uploaded").await;
    assert_eq!(content_type, "application/zip");
    let mut sent = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    assert_eq!(files.len(), sent.len());
    for (name, text) in &files {
        assert!(!text.contains(secret), "{name} gives the password back");
        let mut original = String::new();
        std::io::Read::read_to_string(&mut sent.by_name(name).unwrap(), &mut original).unwrap();
        if name.ends_with("Teacher.csv") {
            // Rewritten: the password column emptied, the rest as sent.
            let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
            assert_eq!(first[3], "", "{text}");
            assert_eq!(first[0], cells[0]);
            assert_eq!(text.lines().count(), original.lines().count());
        } else {
            assert_eq!(text, &original, "{name} goes back as sent");
        }
    }

    // The set again without its enrollments would end all of them: Needs Review. Approved,
    // it runs from the set as sent (its users snapshot has taken the run's file).
    let empty = dir.path().join("no-enrollments.zip");
    sds_zip(
        &empty,
        &[
            ("Teacher.csv", &teachers),
            ("StudentEnrollment.csv", "Section SIS ID,SIS ID\r\n"),
            ("TeacherRoster.csv", "Section SIS ID,SIS ID\r\n"),
        ],
        &[],
    );
    let held = env.upload_set(conn, "no-enrollments.zip", &empty).await;
    assert_eq!(held.status, "needs_review", "{:?}", held.message);
    assert_eq!(
        env.scalar("SELECT count(*) FROM enrollments WHERE district_id = $1")
            .await,
        9
    );
    let page = env
        .client
        .post(&format!("/uploads/{}/approve", held.id), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let done = settle(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(done.id, held.id);
    assert_eq!(done.status, "completed", "{:?}", done.message);
    assert_eq!(
        env.scalar("SELECT count(*) FROM enrollments WHERE district_id = $1")
            .await,
        0
    );

    // Each set sits beside its run's snapshot until the retention purge takes both.
    let files = |run: &db::runs::Run| {
        let snapshot = PathBuf::from(run.file_path.clone().unwrap());
        let set = rollcall::storage::set_path(&snapshot);
        (snapshot, set)
    };
    let (snapshot, set) = files(&run);
    assert!(snapshot.exists() && set.exists());
    let uploads = snapshot.parent().unwrap().to_path_buf();
    let mut stored: Vec<String> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    let mut expected: Vec<String> = [&run, &done]
        .iter()
        .flat_map(|r| [format!("{}.csv", r.id), format!("{}.set.zip", r.id)])
        .collect();
    expected.sort();
    assert_eq!(stored, expected, "no set left behind under another name");
    let now = env.app.clock.now();
    rollcall::jobs::retention::purge(
        &env.app.pool,
        &env.app.queue.config,
        now + time::Duration::days(400),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
}
