//! Issue 16, item 5: bulk actions on the Users list over real HTTP — the confirm step names
//! the count and writes nothing, "all matching" follows the list's filters, each action is
//! one job (an audit entry per changed user plus one for the job), login cards are shown once
//! and work, school admins stay within their schools.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// `n` students `Bulkkid{i}` at school `school` (custom IDs `{prefix}{i}`).
fn students(prefix: &str, school: &str, n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!(
            "{prefix}{i},{prefix}{i}@d.org,Bulkkid{i},{prefix}Lee,Student,{school},9,Active,\n"
        );
    }
    s
}

async fn count(pool: &PgPool, district: Uuid, sql_where: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM users WHERE district_id = $1 AND {sql_where}"
    ))
    .bind(district)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn audits(pool: &PgPool, district: Uuid, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = $2")
        .bind(district)
        .bind(action)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn id_of(pool: &PgPool, district: Uuid, custom_id: &str) -> Uuid {
    user_by_custom_id(pool, district, custom_id).await
}

/// The temporary passwords shown on a login-cards page, by username.
fn cards(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for card in body.split("<li class=\"login-card\">").skip(1) {
        let code = |after: &str| {
            let start = card.find(after)? + after.len();
            let rest = &card[start..];
            let open = rest.find('>')? + 1;
            let end = rest[open..].find("</code>")?;
            Some(rest[open..open + end].to_string())
        };
        out.push((
            code("<dt>Username</dt><dd><code").unwrap(),
            code("<dt>Temporary password</dt><dd><code").unwrap(),
        ));
    }
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn a_district_admin_archives_and_restores_all_matching_in_one_job(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    env.upload("students.csv", &students("B", "HS", 125)).await;
    env.upload(
        "others.csv",
        &students("O", "HS", 5).replace("Bulkkid", "Other"),
    )
    .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(count(pool, d, "first_name LIKE 'Bulkkid%'").await, 125);

    // The confirm step names the count and writes nothing.
    let all = [
        ("action", "archive"),
        ("all", "1"),
        ("q", "bulkkid"),
        ("back", "/users?q=bulkkid"),
    ];
    let confirm = env.c.post("/users/bulk", &all).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("Archive 125 users?"),
        "{}",
        confirm.body
    );
    assert_eq!(count(pool, d, "archived_at IS NOT NULL").await, 0);

    // Applied: exactly the 125 matching, one audit entry each and one for the job.
    let done = env.c.post("/users/bulk/apply", &all).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/users?q=bulkkid"));
    assert_eq!(count(pool, d, "archived_at IS NOT NULL").await, 125);
    assert_eq!(
        count(
            pool,
            d,
            "archived_at IS NOT NULL AND first_name LIKE 'Bulkkid%'"
        )
        .await,
        125
    );
    assert_eq!(audits(pool, d, "user.archive").await, 125);
    assert_eq!(audits(pool, d, "user.bulk").await, 1);
    let list = env.c.get("/users?q=bulkkid").await;
    assert!(list.body.contains("125 users archived."), "{}", list.body);

    // Restore them all from the archived view, in one action.
    let restore = [("action", "restore"), ("all", "1"), ("status", "archived")];
    let confirm = env.c.post("/users/bulk", &restore).await;
    assert!(
        confirm.body.contains("Restore 125 users from the archive?"),
        "{}",
        confirm.body
    );
    assert_eq!(env.c.post("/users/bulk/apply", &restore).await.status, 303);
    assert_eq!(count(pool, d, "archived_at IS NOT NULL").await, 0);
    assert_eq!(audits(pool, d, "user.restore").await, 125);
    assert_eq!(audits(pool, d, "user.bulk").await, 2);

    // Again: nothing to change, nothing written.
    let confirm = env.c.post("/users/bulk", &restore).await;
    assert!(
        confirm
            .body
            .contains("None of the selected users would change"),
        "{}",
        confirm.body
    );
    assert_eq!(env.c.post("/users/bulk/apply", &restore).await.status, 303);
    assert_eq!(audits(pool, d, "user.bulk").await, 2);
    assert_eq!(audits(pool, d, "user.restore").await, 125);

    // The Users screen carries the bar: checkboxes for the rows and the confirm form.
    let list = env.c.get("/users").await;
    assert!(list.body.contains("id=\"bulk-form\""));
    assert!(list.body.contains("name=\"id\""));
}

#[sqlx::test(migrations = "./migrations")]
async fn ticked_users_go_inactive_get_login_cards_and_change_owner(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    env.upload("students.csv", &students("T", "HS", 4)).await;
    env.app.queue.drain().await.unwrap();
    let (t1, t2) = (id_of(pool, d, "T1").await, id_of(pool, d, "T2").await);
    let admin: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND email = $2")
            .bind(d)
            .bind(&env.district.admin_email)
            .fetch_one(pool)
            .await
            .unwrap();
    let (t1s, t2s, me) = (t1.to_string(), t2.to_string(), admin.to_string());

    // Make inactive: the two ticked students; the admin's own account is left out and said so.
    let form = [
        ("action", "deactivate"),
        ("id", t1s.as_str()),
        ("id", t2s.as_str()),
        ("id", me.as_str()),
    ];
    let confirm = env.c.post("/users/bulk", &form).await;
    assert!(
        confirm.body.contains("Make 2 users inactive?"),
        "{}",
        confirm.body
    );
    assert!(
        confirm
            .body
            .contains("1 of the 3 selected is left as they are")
    );
    assert_eq!(env.c.post("/users/bulk/apply", &form).await.status, 303);
    assert_eq!(count(pool, d, "status = 'inactive'").await, 2);
    assert_eq!(audits(pool, d, "user.deactivate").await, 2);

    // Login cards: shown once, on a no-store page; each password signs its user in once.
    let form = [
        ("action", "reset_passwords"),
        ("id", t1s.as_str()),
        ("id", t2s.as_str()),
    ];
    let confirm = env.c.post("/users/bulk", &form).await;
    assert!(
        confirm
            .body
            .contains("Issue 2 users a new temporary password?")
    );
    let token = env.c.csrf().await;
    let mut with_token = form.to_vec();
    with_token.push(("_csrf", &token));
    let r = env
        .c
        .http
        .post(format!("{}/users/bulk/apply", env.c.base))
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    let body = r.text().await.unwrap();
    let shown = cards(&body);
    assert_eq!(shown.len(), 2, "{body}");
    assert!(body.contains("Bulkkid1") && body.contains("Bulkkid2"));
    assert_eq!(audits(pool, d, "user.password_reset").await, 2);
    // Inactive users cannot sign in; made active again, the card's password works.
    let activate = [("action", "activate"), ("id", t1s.as_str())];
    assert_eq!(env.c.post("/users/bulk/apply", &activate).await.status, 303);
    let (username, password) = shown
        .iter()
        .find(|(u, _)| u.starts_with("bulkkid1"))
        .cloned()
        .expect("T1's card");
    let student = env.app.client();
    let signed = student.sign_in(&username, &password).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.location.as_deref(), Some("/account/password"));

    // Hand to an owner (SPEC §4): manual, which protects from archiving; audited per user.
    let form = [
        ("action", "hand_to"),
        ("owner", "manual"),
        ("id", t1s.as_str()),
        ("id", t2s.as_str()),
    ];
    let confirm = env.c.post("/users/bulk", &form).await;
    assert!(
        confirm.body.contains("Hand 2 users to manual?"),
        "{}",
        confirm.body
    );
    assert_eq!(env.c.post("/users/bulk/apply", &form).await.status, 303);
    assert_eq!(
        count(
            pool,
            d,
            "source = 'manual' AND prevent_archiving AND role = 'Student'"
        )
        .await,
        2
    );
    assert_eq!(audits(pool, d, "user.owner").await, 2);
    // An owner that is not the district's is refused.
    let bad = [
        ("action", "hand_to"),
        ("owner", "file:nope.csv"),
        ("id", t1s.as_str()),
    ];
    assert_eq!(env.c.post("/users/bulk", &bad).await.status, 400);
    // Nothing ticked, or an unknown action: a clear 400.
    assert_eq!(
        env.c
            .post("/users/bulk", &[("action", "archive")])
            .await
            .status,
        400
    );
    assert_eq!(
        env.c
            .post("/users/bulk", &[("action", "delete"), ("id", t1s.as_str())])
            .await
            .status,
        400
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_acts_only_within_their_schools(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
    env.app.school(d, "MS", "Middle School").await;
    let mut file = students("H", "HS", 3);
    file += &students("M", "MS", 3)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    env.upload("students.csv", &file).await;
    env.app.queue.drain().await.unwrap();
    env.app.member(d, "principal", "school_admin", &[hs]).await;
    let colleague = env.app.member(d, "colleague", "school_admin", &[hs]).await;
    let p = env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);

    // All matching: their school's students only, never an admin account.
    let all = [("action", "archive"), ("all", "1")];
    let confirm = p.post("/users/bulk", &all).await;
    assert!(
        confirm.body.contains("Archive 3 users?"),
        "{}",
        confirm.body
    );
    assert_eq!(p.post("/users/bulk/apply", &all).await.status, 303);
    assert_eq!(count(pool, d, "archived_at IS NOT NULL").await, 3);
    assert_eq!(
        count(
            pool,
            d,
            "archived_at IS NOT NULL AND custom_id IN ('H1','H2','H3')"
        )
        .await,
        3
    );

    // Another school's student or an admin, ticked: nothing changes.
    let m1 = id_of(pool, d, "M1").await.to_string();
    let col = colleague.to_string();
    let form = [
        ("action", "deactivate"),
        ("id", m1.as_str()),
        ("id", col.as_str()),
    ];
    let confirm = p.post("/users/bulk", &form).await;
    assert!(
        confirm
            .body
            .contains("None of the selected users would change"),
        "{}",
        confirm.body
    );
    assert_eq!(p.post("/users/bulk/apply", &form).await.status, 303);
    assert_eq!(count(pool, d, "status = 'inactive'").await, 0);
    // Handing to an owner is the district admin's.
    let hand = [
        ("action", "hand_to"),
        ("owner", "manual"),
        ("id", m1.as_str()),
    ];
    assert_eq!(p.post("/users/bulk", &hand).await.status, 403);
    assert_eq!(p.post("/users/bulk/apply", &hand).await.status, 403);
    assert_eq!(
        count(pool, d, "source = 'manual' AND role = 'Student'").await,
        0
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_class_is_archived_and_restored_with_its_students_in_one_action(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let pool = &env.app.pool;
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
    env.upload("students.csv", &students("C", "HS", 3)).await;
    env.app.queue.drain().await.unwrap();
    let class = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO classes (district_id, id, external_id, school_id, title, source)
         VALUES ($1, $2, 'ALG-1', $3, 'Algebra I', 'file:rosters.csv')",
    )
    .bind(d)
    .bind(class)
    .bind(hs)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO enrollments (district_id, class_id, user_id, role)
         SELECT $1, $2, id, 'student' FROM users WHERE district_id = $1 AND custom_id IN ('C1', 'C2')",
    )
    .bind(d)
    .bind(class)
    .execute(pool)
    .await
    .unwrap();
    let path = format!("/classes/{class}/state");
    let class_archived = || async {
        sqlx::query_scalar::<_, bool>("SELECT archived_at IS NOT NULL FROM classes WHERE id = $1")
            .bind(class)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert!(
        env.c
            .get(&format!("/classes/{class}"))
            .await
            .body
            .contains("Archive class")
    );
    assert_eq!(env.c.post(&path, &[("archived", "yes")]).await.status, 303);
    assert!(class_archived().await);
    assert_eq!(audits(pool, d, "class.archive").await, 1);
    // Its students were archived by mistake too; one action brings back the class and them.
    sqlx::query(
        "UPDATE users SET archived_at = now() WHERE district_id = $1 AND custom_id IN ('C1', 'C2', 'C3')",
    )
    .bind(d)
    .execute(pool)
    .await
    .unwrap();
    let page = env.c.get(&format!("/classes/{class}")).await;
    assert!(page.body.contains("Restore class"), "{}", page.body);
    let r = env
        .c
        .post(&path, &[("archived", "no"), ("students", "1")])
        .await;
    assert_eq!(r.status, 303);
    assert!(!class_archived().await);
    assert_eq!(audits(pool, d, "class.restore").await, 1);
    // Its two students are back; C3, not in the class, stays archived.
    assert_eq!(count(pool, d, "archived_at IS NOT NULL").await, 1);
    assert_eq!(audits(pool, d, "user.restore").await, 2);
    // Again: nothing changes, nothing is written.
    env.c
        .post(&path, &[("archived", "no"), ("students", "1")])
        .await;
    assert_eq!(audits(pool, d, "class.restore").await, 1);
    // A school admin of another school does not find the class.
    let ms = env.app.school(d, "MS", "Middle School").await;
    env.app.member(d, "principal", "school_admin", &[ms]).await;
    let p = env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    assert_eq!(p.post(&path, &[("archived", "yes")]).await.status, 404);
    assert!(!class_archived().await);
}
