//! A teacher in Chromium (issue 15): signs in, opens My classes and a class, resets a
//! student's expired temporary password through the confirm step, and sees it once.

use super::*;
use uuid::Uuid;

#[sqlx::test(migrations = "./migrations")]
async fn a_teacher_opens_a_class_and_resets_a_students_temporary_password(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let school = app.school(d.id, "N1", "North Elementary").await;
    let tina = app.member(d.id, "tina", "user", &[school]).await;
    let ana = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, source,
                            password_hash, password_temporary, password_set_at)
         VALUES ($1, $2, 'ana@school.org', 'ana', 'Ana', 'Aardvark', 'Student', 'manual',
                 $3, true, now() - interval '100 days')",
    )
    .bind(d.id)
    .bind(ana)
    .bind(rollcall::auth::hash_temporary("OLDTEMP1234"))
    .execute(&app.pool)
    .await
    .unwrap();
    let class = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO classes (district_id, id, external_id, school_id, title, period, source)
         VALUES ($1, $2, 'MATH-1', $3, 'Algebra I', '3', 'manual')",
    )
    .bind(d.id)
    .bind(class)
    .bind(school)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO enrollments (district_id, class_id, user_id, role)
         VALUES ($1, $2, $3, 'teacher'), ($1, $2, $4, 'student')",
    )
    .bind(d.id)
    .bind(class)
    .bind(tina)
    .bind(ana)
    .execute(&app.pool)
    .await
    .unwrap();

    let b = Browser::start(&app).await;
    b.sign_in("tina", PASSWORD).await;
    b.wait_for_text("My classes").await;
    b.click("nav a[href='/teaching']").await;
    b.wait_for_text("Algebra I").await;
    b.click(&format!("a[href='/teaching/{class}']")).await;
    b.wait_for_text("Temporary password expired").await;
    b.screenshot("teaching_class").await;
    b.click("tr[data-student='ana'] button[type='submit']")
        .await;
    b.wait_for_text("Reset a temporary password").await;
    b.click("form button.primary").await;
    b.wait_for_text("shown only now").await;
    let secret =
        b.c.find(Locator::Css("code.secret"))
            .await
            .expect("the password")
            .text()
            .await
            .unwrap();
    assert!(secret.len() >= 8, "{secret}");
    b.click(&format!("a[href='/teaching/{class}']")).await;
    b.wait_for_text("Temporary password pending").await;
    assert!(!b.text().await.contains(&secret), "shown once");
    b.close().await;
}
