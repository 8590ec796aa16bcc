//! Several files in one upload (issue 15): the six files of an SDS v1 set, or the files of
//! a OneRoster CSV set, sent separately through the upload form or `POST /api/v1/uploads`
//! go in as one set (one zip in storage, one run, the same result as the zip); files that
//! are not one set are refused with 422 naming them; the size limit holds for the whole
//! upload; one file goes in as before. Real HTTP, the queue and PostgreSQL.

use crate::helpers::*;
use rollcall::db;
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const SDS_FILES: [&str; 6] = [
    "School.csv",
    "Section.csv",
    "Student.csv",
    "Teacher.csv",
    "StudentEnrollment.csv",
    "TeacherRoster.csv",
];

fn sds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sds-v1")
}

fn oneroster_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oneroster-1.2")
}

/// The files of a folder, as (name, bytes).
fn files_of(dir: &Path, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

fn form_of(files: &[(String, Vec<u8>)]) -> reqwest::multipart::Form {
    files
        .iter()
        .fold(reqwest::multipart::Form::new(), |form, (name, bytes)| {
            form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
            )
        })
}

struct Env {
    up: UploadEnv,
    token: String,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let up = UploadEnv::new(pool).await;
        let token = rollcall::ops::create_token(
            &up.app.pool,
            up.district.id,
            "nightly",
            &rollcall::db::audit::Actor::cli(),
        )
        .await
        .unwrap();
        Env { up, token }
    }

    /// Through the upload form: (status, location, body).
    async fn form(&self, files: &[(String, Vec<u8>)]) -> (u16, Option<String>, String) {
        let csrf = self.up.c.csrf().await;
        let r = self
            .up
            .c
            .http
            .post(format!("{}/uploads?_csrf={csrf}", self.up.c.base))
            .multipart(form_of(files))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        (status, location, r.text().await.unwrap())
    }

    /// Through the API: (status, JSON body).
    async fn api(&self, files: &[(String, Vec<u8>)]) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(self.up.app.url("/api/v1/uploads"))
            .bearer_auth(&self.token)
            .multipart(form_of(files))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// Work the queue and read the run.
    async fn run(&self, id: Uuid) -> db::runs::Run {
        self.up.app.queue.drain().await.unwrap();
        db::runs::get(&self.up.app.pool, self.up.district.id, id)
            .await
            .unwrap()
            .expect("the run")
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(self.up.district.id)
            .fetch_one(&self.up.app.pool)
            .await
            .unwrap()
    }

    async fn runs(&self) -> i64 {
        self.scalar("SELECT count(*) FROM runs WHERE district_id = $1")
            .await
    }

    /// Files kept in the district's upload storage.
    fn stored_files(&self) -> usize {
        let dir = rollcall::storage::upload_path(
            &self.up.app.queue.config.data_dir,
            self.up.district.id,
            Uuid::nil(),
        );
        let dir = dir.parent().unwrap();
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    /// Classes and enrollments (live), users (not admins).
    async fn landed(&self) -> (i64, i64, i64) {
        (
            self.scalar(
                "SELECT count(*) FROM classes WHERE district_id = $1 AND archived_at IS NULL",
            )
            .await,
            self.scalar("SELECT count(*) FROM enrollments WHERE district_id = $1")
                .await,
            self.scalar(
                "SELECT count(*) FROM users WHERE district_id = $1 AND portal_role = 'user'",
            )
            .await,
        )
    }
}

/// The SDS test set as one zip (what an admin would otherwise send).
fn sds_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files_of(&sds_dir(), &SDS_FILES) {
        w.start_file(name, opts).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_six_sds_files_sent_through_the_form_go_in_as_one_set(pool: PgPool) {
    let env = Env::new(pool).await;
    let (status, location, body) = env.form(&files_of(&sds_dir(), &SDS_FILES)).await;
    assert_eq!(status, 303, "{body}");
    let id: Uuid = location
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    assert_eq!(env.runs().await, 1, "one run for the six files");
    // One file in storage for the set (one zip), not six.
    assert_eq!(env.stored_files(), 1);
    let run = env.run(id).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(
        run.kind,
        rollcall::domain::RunKind::Sync,
        "a set runs as a sync of the CSV connection"
    );
    assert_eq!((run.created, run.errors), (6, 0));
    // Classes and enrollments land: 3 sections, 6 students and 3 teachers enrolled.
    assert_eq!(env.landed().await, (3, 9, 6));

    // The same set as a zip, through the same form: the same result, so nothing changes.
    let (status, location, body) = env.form(&[("lakeview-sds.zip".into(), sds_zip())]).await;
    assert_eq!(status, 303, "{body}");
    let id: Uuid = location
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    let run = env.run(id).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(
        (run.created, run.updated, run.unchanged, run.archived),
        (0, 0, 6, 0)
    );
    assert_eq!(env.landed().await, (3, 9, 6));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_six_sds_files_sent_to_the_api_go_in_as_one_set(pool: PgPool) {
    let env = Env::new(pool).await;
    // Any order, any case.
    let mut files = files_of(&sds_dir(), &SDS_FILES);
    files.reverse();
    files[0].0 = files[0].0.to_lowercase();
    let (status, body) = env.api(&files).await;
    assert_eq!(status, 202, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let run = env.run(id).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!((run.created, run.errors), (6, 0));
    assert_eq!(env.landed().await, (3, 9, 6));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_files_of_a_oneroster_set_sent_separately_go_in_as_one_set(pool: PgPool) {
    let env = Env::new(pool).await;
    let names = [
        "manifest.csv",
        "orgs.csv",
        "users.csv",
        "roles.csv",
        "academicSessions.csv",
        "courses.csv",
        "classes.csv",
        "enrollments.csv",
    ];
    let (status, body) = env.api(&files_of(&oneroster_dir(), &names)).await;
    assert_eq!(status, 202, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let run = env.run(id).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!((run.created, run.errors), (6, 0), "{:?}", run.message);
    let (classes, enrollments, _) = env.landed().await;
    assert!(classes > 0 && enrollments > 0, "{classes} {enrollments}");
}

#[sqlx::test(migrations = "./migrations")]
async fn files_that_are_not_one_set_are_refused_naming_them(pool: PgPool) {
    let env = Env::new(pool).await;
    let students = format!("{UPLOAD_HEADER}\nS1,s1@x.org,Ann,Lee,student,HS,9,active,\n");
    let mut bag = files_of(&sds_dir(), &["School.csv", "Student.csv"]);
    bag.push(("students.csv".into(), students.clone().into_bytes()));

    let (status, _, body) = env.form(&bag).await;
    assert_eq!(status, 422, "{body}");
    for name in ["School.csv", "Student.csv", "students.csv", "send one CSV"] {
        assert!(body.contains(name), "the form names {name}: {body}");
    }
    let (status, body) = env.api(&bag).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("students.csv") && text.contains("SDS / OneRoster set"),
        "{text}"
    );
    // Nothing queued, nothing kept.
    assert_eq!(env.runs().await, 0);
    assert_eq!(env.stored_files(), 0);

    // Two plain user files are not a set either.
    let two = vec![
        ("a.csv".to_string(), students.clone().into_bytes()),
        ("b.csv".to_string(), students.into_bytes()),
    ];
    assert_eq!(env.api(&two).await.0, 422);
    assert_eq!(env.runs().await, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_size_limit_is_the_whole_uploads(pool: PgPool) {
    let env = Env::new(pool).await;
    // Two files of 1.2 MiB: each under the 2 MiB limit, together over it.
    let big = |name: &str| {
        let mut text = String::from("SIS ID,Name\n");
        while text.len() < 1_200_000 {
            text.push_str("S-0000001,Lakeview High School\n");
        }
        (name.to_string(), text.into_bytes())
    };
    let files = vec![big("School.csv"), big("Student.csv")];
    let (status, _, body) = env.form(&files).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("2 MiB"), "the whole limit is named: {body}");
    assert_eq!(env.api(&files).await.0, 413);
    assert_eq!(env.runs().await, 0);
    assert_eq!(env.stored_files(), 0, "nothing of a refused upload is kept");
}

#[sqlx::test(migrations = "./migrations")]
async fn one_file_goes_in_as_before(pool: PgPool) {
    let env = Env::new(pool).await;
    let students = format!("{UPLOAD_HEADER}\nS1,s1@x.org,Ann,Lee,student,HS,9,active,\n");
    let (status, location, body) = env
        .form(&[("students.csv".into(), students.into_bytes())])
        .await;
    assert_eq!(status, 303, "{body}");
    let id: Uuid = location
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap();
    let run = env.run(id).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    assert_eq!(
        (run.kind, run.source.as_str(), run.file_name.as_deref()),
        (
            rollcall::domain::RunKind::Upload,
            "file:students.csv",
            Some("students.csv")
        )
    );
    assert_eq!(run.created, 1);
}
