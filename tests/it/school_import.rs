//! Issue 16, item 6: a school admin imports for their own school through the real upload
//! form — rows for other schools (or matching other schools' users) are row errors naming
//! row and column, archiving reaches their school's users only — and a district admin picks a
//! school on upload (a fixed school for the file, filling a missing school column).

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// Upload `body` as `name` for `school` (the form's picker), as a browser sends it.
async fn upload_for(c: &Client, name: &str, body: &str, school: Option<Uuid>) -> Page {
    let token = c.csrf().await;
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name(name.to_string()),
    );
    form = form.text("_csrf", token.clone());
    if let Some(s) = school {
        form = form.text("school", s.to_string());
    }
    let r = c
        .http
        .post(format!("{}/uploads?_csrf={token}", c.base))
        .multipart(form)
        .send()
        .await
        .expect("POST /uploads");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        location,
        body: r.text().await.unwrap_or_default(),
    }
}

fn run_id(p: &Page) -> Uuid {
    assert_eq!(p.status, 303, "{}", p.body);
    p.location
        .as_deref()
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap()
}

async fn archived(pool: &PgPool, district: Uuid, custom_id: &str) -> bool {
    sqlx::query_scalar(
        "SELECT archived_at IS NOT NULL FROM users WHERE district_id = $1 AND custom_id = $2",
    )
    .bind(district)
    .bind(custom_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn schools_of(pool: &PgPool, district: Uuid, custom_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.external_id FROM users u JOIN user_schools us ON us.district_id = u.district_id AND us.user_id = u.id
         JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
         WHERE u.district_id = $1 AND u.custom_id = $2 ORDER BY 1",
    )
    .bind(district)
    .bind(custom_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn row(id: &str, school: &str) -> String {
    format!("{id},{id}@d.org,Kid{id},Lee,Student,{school},9,Active,\n")
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_imports_for_their_school_only(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
    let ms = env.app.school(d, "MS", "Middle School").await;
    let mut all = format!("{UPLOAD_HEADER}\n");
    for (id, s) in [
        ("H1", "HS"),
        ("H2", "HS"),
        ("H3", "HS"),
        ("M1", "MS"),
        ("M2", "MS"),
        ("M3", "MS"),
    ] {
        all += &row(id, s);
    }
    let district_run = env.upload("students.csv", &all).await;
    env.app.queue.drain().await.unwrap();
    env.app.member(d, "principal", "school_admin", &[hs]).await;
    let p = env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);

    // The form offers their school only; the district's runs are not theirs to see.
    let page = p.get("/uploads").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("High School"), "{}", page.body);
    assert!(!page.body.contains("Middle School"));
    assert!(!page.body.contains(&district_run.to_string()));
    assert_eq!(p.get(&format!("/uploads/{district_run}")).await.status, 404);

    // Another school in the picker is refused, and nothing is queued.
    let runs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE district_id = $1")
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
    let refused = upload_for(&p, "students.csv", &all, Some(ms)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let runs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE district_id = $1")
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(runs_after, runs_before);

    // Their students.csv: H3 missing (archived), H4 new, a row for MS and a row matching M1
    // (another school's student) are row errors; MS's students are left alone.
    let mut mine = format!("{UPLOAD_HEADER}\n");
    for (id, s) in [
        ("H1", "HS"),
        ("H2", "HS"),
        ("H4", "HS"),
        ("M9", "MS"),
        ("M1", "HS"),
    ] {
        mine += &row(id, s);
    }
    // One school of theirs: the picker may be left as it is.
    let run = run_id(&upload_for(&p, "students.csv", &mine, None).await);
    env.app.queue.drain().await.unwrap();
    let errors: Vec<(i64, String)> = sqlx::query_as(
        "SELECT line, error FROM run_rows WHERE district_id = $1 AND run_id = $2 AND outcome = 'error' ORDER BY line",
    )
    .bind(d)
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, 5);
    assert!(
        errors[0].1.starts_with(
            "line 5, column \"school_external_id\": school \"MS\" is not High School (HS)"
        ),
        "{}",
        errors[0].1
    );
    assert_eq!(errors[1].0, 6);
    assert!(
        errors[1].1.contains("not only at High School"),
        "{}",
        errors[1].1
    );
    assert!(archived(pool, d, "H3").await);
    for m in ["M1", "M2", "M3"] {
        assert!(!archived(pool, d, m).await, "{m}");
    }
    assert_eq!(schools_of(pool, d, "M1").await, ["MS"]);
    assert_eq!(schools_of(pool, d, "H4").await, ["HS"]);
    let counts: (i32, i32, i32) =
        sqlx::query_as("SELECT created, archived, errors FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(counts, (1, 1, 2));
    // Their run is theirs to see: on the page, in the history and as files.
    let shown = p.get(&format!("/uploads/{run}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("is not High School"), "{}", shown.body);
    assert!(p.get("/uploads").await.body.contains(&run.to_string()));
    assert_eq!(
        p.get(&format!("/uploads/{run}/files/errors")).await.status,
        200
    );
    assert_eq!(
        p.get(&format!("/uploads/{run}/status.json")).await.status,
        200
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_district_admin_picks_a_school_for_a_file(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    let ms = env.app.school(d, "MS", "Middle School").await;
    // No school column: the picked school fills it.
    let file = "custom_id,email,first_name,last_name,role,grade\nM5,m5@d.org,Kim,Park,Student,7\nM6,m6@d.org,Lou,Park,Student,7\n";
    let run = run_id(&upload_for(&env.c, "ms.csv", file, Some(ms)).await);
    env.app.queue.drain().await.unwrap();
    assert_eq!(schools_of(pool, d, "M5").await, ["MS"]);
    assert_eq!(schools_of(pool, d, "M6").await, ["MS"]);
    let status = env.status(run).await;
    assert_eq!(status["counts"]["created"], 2, "{status}");
    // An unknown school is refused with a clear error, nothing queued.
    let bad = upload_for(&env.c, "ms.csv", file, Some(Uuid::now_v7())).await;
    assert_eq!(bad.status, 409, "{}", bad.body);
    assert!(
        bad.body.contains("is not one of the district"),
        "{}",
        bad.body
    );
}
