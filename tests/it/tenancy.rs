use crate::helpers::*;
use sqlx::PgPool;

#[sqlx::test(migrations = "./migrations")]
async fn another_districts_schools_answer_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.district("alpha").await;
    let b = app.district("beta").await;
    let b_school = app.school(b.id, "B1", "Beta High").await;
    let b_token =
        rollcall::ops::create_token(&app.pool, b.id, "b", &rollcall::db::audit::Actor::cli())
            .await
            .unwrap();
    let b_token_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM api_tokens WHERE district_id = $1")
            .bind(b.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!b_token.is_empty());

    let c = app.client();
    assert_eq!(
        c.sign_in(&a.admin_email, &a.admin_password).await.status,
        303
    );
    let list = c.get("/schools").await;
    assert!(
        !list.body.contains("Beta High"),
        "B's schools are not listed for A"
    );
    let page = c.get(&format!("/schools/{b_school}")).await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("Beta High"));
    let edit = c
        .post(
            &format!("/schools/{b_school}"),
            &[("external_id", "HACK"), ("name", "Hacked")],
        )
        .await;
    assert_eq!(edit.status, 404);
    let revoke = c
        .post(&format!("/settings/tokens/{b_token_id}/revoke"), &[])
        .await;
    assert_eq!(revoke.status, 404);
    let name: String = sqlx::query_scalar("SELECT name FROM schools WHERE id = $1")
        .bind(b_school)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(name, "Beta High");
    let revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = $1")
            .bind(b_token_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!revoked);
    // A random id is the same 404.
    assert_eq!(
        c.get(&format!("/schools/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        404
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn school_admin_is_held_to_their_schools(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let south = app.school(d.id, "S1", "South Elementary").await;
    app.member(d.id, "principal", "school_admin", &[north])
        .await;
    let c = app.client();
    assert_eq!(c.sign_in("principal", PASSWORD).await.status, 303);

    let list = c.get("/schools").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("North Elementary"));
    assert!(!list.body.contains("South Elementary"));
    assert!(!list.body.contains("Add a school"), "no add form");

    assert_eq!(c.get("/settings").await.status, 403, "no district settings");
    assert_eq!(
        c.post(
            "/settings/guard",
            &[
                ("archive_pct", "50"),
                ("archive_min", "1"),
                ("update_pct", "90")
            ]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        c.post("/settings/tokens", &[("name", "x")]).await.status,
        403
    );
    assert_eq!(
        c.post("/schools", &[("external_id", "X1"), ("name", "X")])
            .await
            .status,
        403
    );
    assert_eq!(c.get(&format!("/schools/{south}")).await.status, 403);
    assert_eq!(c.get("/districts").await.status, 403);
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn plain_users_see_only_their_account(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    app.member(d.id, "teacher1", "user", &[north]).await;
    let c = app.client();
    assert_eq!(c.sign_in("teacher1", PASSWORD).await.status, 303);
    assert_eq!(c.get("/").await.location.as_deref(), Some("/account"));
    let me = c.get("/account").await;
    assert_eq!(me.status, 200);
    assert!(me.body.contains("teacher1"));
    assert!(me.body.contains("North Elementary (N1)"));
    assert_eq!(c.get("/schools").await.status, 403);
    assert_eq!(c.get("/settings").await.status, 403);
    assert_eq!(c.get("/districts").await.status, 403);
}

#[sqlx::test(migrations = "./migrations")]
async fn operator_lists_and_creates_districts(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let hash = rollcall::auth::hash_password(PASSWORD);
    rollcall::db::users::insert_operator(&app.pool, "ops@rollcall.test", &hash)
        .await
        .unwrap();
    app.district("alpha").await;
    let c = app.client();
    assert_eq!(c.sign_in("ops@rollcall.test", PASSWORD).await.status, 303);
    // The operator must use two-step sign-in: set up at the first sign-in.
    c.enrol_mfa(app.clock.now()).await;
    assert_eq!(c.get("/").await.location.as_deref(), Some("/districts"));
    let list = c.get("/districts").await;
    assert!(list.body.contains("alpha district"));
    assert!(list.body.contains(">1 district<"), "one district, singular");

    let r = c
        .post(
            "/districts",
            &[
                ("name", "Gamma Schools"),
                ("slug", "gamma"),
                ("admin_email", "Boss@Gamma.org"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Gamma Schools"));
    let pw_start = r
        .body
        .find("<code class=\"secret\">")
        .expect("password shown")
        + "<code class=\"secret\">".len();
    let pw = &r.body[pw_start..pw_start + 14];
    // The new admin signs in with it and must choose a password.
    let admin = app.client();
    let s = admin.sign_in("boss@gamma.org", pw).await;
    assert_eq!(s.location.as_deref(), Some("/account/password"));

    let dup = c
        .post(
            "/districts",
            &[
                ("name", "Again"),
                ("slug", "gamma"),
                ("admin_email", "x@gamma.org"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422);
    assert!(
        dup.body
            .contains("a district with this slug already exists")
    );
    let bad = c
        .post(
            "/districts",
            &[
                ("name", "Bad"),
                ("slug", "Bad Slug!"),
                ("admin_email", "x@bad.org"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    // District admins are not operators.
    let a = app.client();
    assert_eq!(a.sign_in("admin@alpha.org", PASSWORD).await.status, 303);
    assert_eq!(a.get("/districts").await.status, 403);
}
