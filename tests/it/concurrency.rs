//! Two people at once. Two admins saving the same user at the same moment: one save lands,
//! the other is told the record changed (409) and nothing is lost silently. (Two uploads
//! at once are applied one after the other: `uploads::two_uploads_for_one_district_are_
//! applied_one_after_the_other`; a run killed mid-way: `crash`.)

use crate::helpers::*;
use sqlx::PgPool;

#[sqlx::test(migrations = "./migrations")]
async fn two_admins_saving_one_user_at_once_do_not_lose_an_update_silently(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let school = app.school(d.id, "HS", "High School").await;
    let user = app.member(d.id, "teacher1", "user", &[school]).await;
    app.member(d.id, "second", "district_admin", &[]).await;
    let first = app.client();
    assert_eq!(first.sign_in(&d.admin_email, PASSWORD).await.status, 303);
    let second = app.client();
    assert_eq!(second.sign_in("second", PASSWORD).await.status, 303);
    let (t1, t2) = (first.csrf().await, second.csrf().await);
    let school = school.to_string();
    let path = format!("/users/{user}");

    const ROUNDS: usize = 8;
    for round in 0..ROUNDS {
        // Both open the form on the same version…
        let version: i64 = sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let form = first.get(&path).await;
        assert!(
            form.body
                .contains(&format!("name=\"version\" value=\"{version}\"")),
            "the form carries the version"
        );
        let v = version.to_string();
        let fields = |last: String, token: String| {
            vec![
                ("first_name", "Test".to_string()),
                ("last_name", last),
                ("role", "Teacher".to_string()),
                ("email", "teacher1@example.org".to_string()),
                ("username", "teacher1".to_string()),
                ("position", String::new()),
                ("active", "1".to_string()),
                ("schools", school.clone()),
                ("version", v.clone()),
                ("_csrf", token),
            ]
        };
        let a = fields(format!("First{round}"), t1.clone());
        let b = fields(format!("Second{round}"), t2.clone());
        let a: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let b: Vec<(&str, &str)> = b.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let audits_before = audits(&app, user).await;
        // …and press Save at the same moment.
        let (ra, rb) = tokio::join!(first.post_raw(&path, &a), second.post_raw(&path, &b));
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [303, 409],
            "round {round}: one save lands, one is refused"
        );
        let (winner, loser) = if ra.status == 303 {
            (format!("First{round}"), &rb)
        } else {
            (format!("Second{round}"), &ra)
        };
        assert!(
            loser
                .body
                .contains("changed by someone else since you opened the page"),
            "the refused admin is told why"
        );
        // The refused admin keeps their typed values and gets the new version to save on
        // purpose.
        assert!(
            loser
                .body
                .contains(&format!("name=\"version\" value=\"{}\"", version + 1))
        );
        let (last, now): (String, i64) =
            sqlx::query_as("SELECT last_name, version FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(last, winner, "the landed save is the one stored");
        assert_eq!(now, version + 1, "one write");
        assert_eq!(
            audits(&app, user).await,
            audits_before + 1,
            "one audit entry"
        );
    }
}

async fn audits(app: &TestApp, user: uuid::Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action = 'user.update'",
    )
    .bind(user)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}
