//! The home page in Chromium (issue 14): an admin signs in, lands on the home page, and
//! clicks through from "Needs attention" to the run held in Needs Review.

use super::*;

fn students(n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

#[sqlx::test(migrations = "./migrations")]
async fn sign_in_lands_on_home_and_clicks_through_to_the_held_run(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.upload("students.csv", &students(40)).await;
    env.app.queue.drain().await.unwrap();
    // Ten of forty left: the guard holds the run in Needs Review.
    let held = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(held).await["status"], "needs_review");

    let b = Browser::start(&env.app).await;
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    assert_eq!(b.path().await, "/", "admins land on the home page");
    b.wait_for_text("Needs attention").await;
    b.wait_for_text("Users per school and role").await;
    b.screenshot("home").await;
    // The held run is listed first, with its badge's words (not colour alone).
    let first =
        b.c.find(Locator::Css(".home-attention tbody tr"))
            .await
            .expect("an attention row")
            .text()
            .await
            .unwrap();
    assert!(first.contains("Needs Review"), "{first}");
    assert!(first.contains("students.csv"), "{first}");
    b.click(&format!(".home-attention a[href='/uploads/{held}']"))
        .await;
    b.wait_for_text("Approve and apply").await;
    assert_eq!(b.path().await, format!("/uploads/{held}"));
    b.close().await;
}
