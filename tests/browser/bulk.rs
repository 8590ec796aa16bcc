//! Issue 16, items 5 and 6 in Chromium: a district admin archives 125 users in one bulk
//! action and restores them in another (the confirm step names the count), ticks a page of
//! users with "select this page", and restores a wrongly archived class in one action; a
//! school admin imports a file for their school from the Uploads page.

use super::*;
use uuid::Uuid;

/// `n` students named `Bulkkid{i} Lee` at `school`, owned by `students.csv`.
async fn seed_students(pool: &PgPool, district: Uuid, school: Uuid, n: i32) {
    sqlx::query(
        "WITH u AS (
           INSERT INTO users (district_id, id, custom_id, email, username, first_name, last_name, role, source)
           SELECT $1, gen_random_uuid(), 'B' || i, 'b' || i || '@d.org', 'bulkkid' || i, 'Bulkkid' || i, 'Lee',
                  'Student', 'file:students.csv'
           FROM generate_series(1, $3) AS i RETURNING id)
         INSERT INTO user_schools (district_id, user_id, school_id) SELECT $1, u.id, $2 FROM u",
    )
    .bind(district)
    .bind(school)
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

async fn archived(pool: &PgPool, district: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND archived_at IS NOT NULL",
    )
    .bind(district)
    .fetch_one(pool)
    .await
    .unwrap()
}

impl Browser {
    async fn pick(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_district_admin_archives_and_restores_125_users_in_bulk(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let hs = app.school(d.id, "HS", "Alpha High").await;
    seed_students(&app.pool, d.id, hs, 125).await;
    let b = Browser::start(&app).await;
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    // All 125 matching the search, archived in one action after one confirm naming the count.
    b.goto("/users?q=bulkkid").await;
    b.wait_for_text("Bulkkid").await;
    b.click("#bulk-all").await;
    b.pick("#bulk-action", "archive").await;
    b.click("#bulk-review").await;
    b.wait_for_text("Archive 125 users?").await;
    assert_eq!(
        archived(&app.pool, d.id).await,
        0,
        "the confirm step writes nothing"
    );
    b.screenshot("bulk-confirm").await;
    b.click("#bulk-confirm").await;
    b.wait_for_text("125 users archived.").await;
    assert_eq!(archived(&app.pool, d.id).await, 125);

    // From the archived view, all of them back in one action.
    b.goto("/users?status=archived").await;
    b.wait_for_text("Bulkkid").await;
    b.click("#bulk-all").await;
    b.pick("#bulk-action", "restore").await;
    b.click("#bulk-review").await;
    b.wait_for_text("Restore 125 users from the archive?").await;
    b.click("#bulk-confirm").await;
    b.wait_for_text("125 users restored.").await;
    assert_eq!(archived(&app.pool, d.id).await, 0);

    // "Select this page" ticks every row shown: that many go inactive.
    b.goto("/users?q=bulkkid").await;
    b.wait_for_text("Bulkkid").await;
    b.click("#bulk-page").await;
    let ticked =
        b.c.find_all(Locator::Css("input[name=id]:checked"))
            .await
            .unwrap()
            .len();
    assert_eq!(ticked, 50, "one page of the default size");
    b.pick("#bulk-action", "deactivate").await;
    b.click("#bulk-review").await;
    b.wait_for_text("Make 50 users inactive?").await;
    b.click("#bulk-confirm").await;
    b.wait_for_text("50 users made inactive.").await;
    let inactive: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND status = 'inactive'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(inactive, 50);

    // A wrongly archived class comes back in one action, with its archived students.
    let class = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO classes (district_id, id, external_id, school_id, title, source, archived_at)
         VALUES ($1, $2, 'ALG-1', $3, 'Algebra I', 'file:rosters.csv', now())",
    )
    .bind(d.id)
    .bind(class)
    .bind(hs)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "WITH s AS (SELECT id FROM users WHERE district_id = $1 AND custom_id IN ('B1', 'B2'))
         , e AS (INSERT INTO enrollments (district_id, class_id, user_id, role)
                 SELECT $1, $2, s.id, 'student' FROM s)
         UPDATE users SET archived_at = now() WHERE district_id = $1 AND id IN (SELECT id FROM s)",
    )
    .bind(d.id)
    .bind(class)
    .execute(&app.pool)
    .await
    .unwrap();
    b.goto(&format!("/classes/{class}")).await;
    b.wait_for_text("This class was archived").await;
    b.click("#class-restore").await;
    b.wait_for_text("Algebra I is restored. Students restored with it: 2 users.")
        .await;
    assert_eq!(archived(&app.pool, d.id).await, 0);
    let class_archived: bool =
        sqlx::query_scalar("SELECT archived_at IS NOT NULL FROM classes WHERE id = $1")
            .bind(class)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!class_archived);
    b.close().await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_imports_for_their_school(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let hs = app.school(d.id, "HS", "Alpha High").await;
    app.school(d.id, "MS", "Alpha Middle").await;
    app.member(d.id, "principal", "school_admin", &[hs]).await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&app).await;
    let work = worker(&app);
    b.sign_in("principal", PASSWORD).await;
    b.wait_for_text("Sign out").await;

    // Uploads is in their navigation; the picker offers their school only.
    b.click("nav a[href='/uploads']").await;
    b.wait_for_text("For school").await;
    assert!(!b.text().await.contains("Alpha Middle"));
    let csv = format!(
        "{UPLOAD_HEADER}\nH1,h1@d.org,Hana,Lee,Student,HS,9,Active,\nH2,h2@d.org,Hugo,Lee,Student,HS,9,Active,\nM1,m1@d.org,Mia,Lee,Student,MS,7,Active,\n"
    );
    let input = b.c.find(Locator::Css("input[type=file]")).await.unwrap();
    input
        .send_keys(&file(&files, "alpha-high.csv", &csv))
        .await
        .unwrap();
    b.pick("select[name=school]", &hs.to_string()).await;
    b.click("form.upload-form button[type=submit]").await;
    b.wait_for_status("Completed with Errors").await;
    b.wait_for_text("is not Alpha High (HS)").await;
    b.screenshot("school-admin-import").await;
    let at_hs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users u JOIN user_schools s ON s.district_id = u.district_id AND s.user_id = u.id
         WHERE u.district_id = $1 AND s.school_id = $2 AND u.role = 'Student'",
    )
    .bind(d.id)
    .bind(hs)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(at_hs, 2);
    let m1: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND custom_id = 'M1'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(m1, 0, "another school's row is an error, not a user");
    work.abort();
    b.close().await;
}
