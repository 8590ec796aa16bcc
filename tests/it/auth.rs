use crate::helpers::*;
use sqlx::PgPool;
use time::Duration;

#[sqlx::test(migrations = "./migrations")]
async fn sign_in_and_out(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let c = app.client();

    let login = c.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("Sign in"));

    let r = c.sign_in(&d.admin_email, &d.admin_password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/"));
    let schools = c.get("/schools").await;
    assert_eq!(schools.status, 200);
    assert!(
        schools.body.contains("springfield district"),
        "district name in the header"
    );

    // Username works as well as email (case-insensitive).
    let c2 = app.client();
    assert_eq!(c2.sign_in("ADMIN", &d.admin_password).await.status, 303);

    let out = c.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    let after = c.get("/schools").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location.as_deref(), Some("/login"));
}

#[sqlx::test(migrations = "./migrations")]
async fn wrong_password_and_unknown_user_get_the_same_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let c = app.client();
    let wrong = c.sign_in(&d.admin_email, "not-the-password").await;
    let unknown = c.sign_in("nobody@nowhere.org", "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert!(
        wrong
            .body
            .contains("The sign-in name or password is wrong.")
    );
    assert!(
        unknown
            .body
            .contains("The sign-in name or password is wrong.")
    );
    assert_eq!(c.get("/schools").await.status, 303, "still signed out");
}

#[sqlx::test(migrations = "./migrations")]
async fn throttling_after_five_failures(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let c = app.client();
    for _ in 0..5 {
        assert_eq!(
            c.sign_in(&d.admin_email, "wrong-password").await.status,
            401
        );
    }
    let blocked = c.sign_in(&d.admin_email, &d.admin_password).await;
    assert_eq!(
        blocked.status, 429,
        "the right password is refused while throttled"
    );
    assert!(blocked.body.contains("too many failed sign-ins"));
    // Another account from the same address is not affected.
    app.member(d.id, "other", "district_admin", &[]).await;
    assert_eq!(app.client().sign_in("other", PASSWORD).await.status, 303);

    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303,
        "window over"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn inactive_and_archived_users_cannot_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let id = app.member(d.id, "teacher1", "user", &[]).await;

    // A live session ends as soon as the user is deactivated.
    let c = app.client();
    assert_eq!(c.sign_in("teacher1", PASSWORD).await.status, 303);
    assert_eq!(c.get("/account").await.status, 200);
    sqlx::query("UPDATE users SET status = 'inactive' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(c.get("/account").await.status, 303);

    let r = app.client().sign_in("teacher1", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("This account is inactive"), "{}", r.body);

    sqlx::query("UPDATE users SET status = 'active', archived_at = now() WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app.client().sign_in("teacher1", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("This account is archived"));
}

#[sqlx::test(migrations = "./migrations")]
async fn post_without_valid_csrf_token_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let c = app.client();
    // Even the sign-in form needs its token.
    let r = c
        .post_raw(
            "/login",
            &[("login", &d.admin_email), ("password", &d.admin_password)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303
    );

    let none = c
        .post_raw("/schools", &[("external_id", "S1"), ("name", "North")])
        .await;
    assert_eq!(none.status, 403);
    assert!(none.body.contains("the form expired"));
    let wrong = c
        .post_raw(
            "/schools",
            &[("external_id", "S1"), ("name", "North"), ("_csrf", "0000")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    // The token of another session does not work either.
    let other = app.client();
    let foreign_token = other.csrf().await;
    let r = c
        .post_raw(
            "/schools",
            &[
                ("external_id", "S1"),
                ("name", "North"),
                ("_csrf", &foreign_token),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    // A cross-site Origin is refused even with the right token.
    let token = c.csrf().await;
    let r = c
        .http
        .post(format!("{}/schools", c.base))
        .header("origin", "https://evil.example")
        .form(&[("external_id", "S1"), ("name", "North"), ("_csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM schools")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was created");
    // With the token it works.
    assert_eq!(
        c.post("/schools", &[("external_id", "S1"), ("name", "North")])
            .await
            .status,
        303
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn cookie_flags_and_security_headers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = reqwest::get(app.url("/login")).await.unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("rollcall_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "plain http in tests");
    let h = r.headers();
    assert!(
        h.get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(h.get("referrer-policy").unwrap(), "same-origin");
    assert!(h.get("x-request-id").is_some());
}

#[sqlx::test(migrations = "./migrations")]
async fn session_id_changes_at_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(app.url("/login")).send().await.unwrap();
    let before = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = extract_csrf(&r.text().await.unwrap()).unwrap();
    let r = http
        .post(app.url("/login"))
        .header("cookie", &before)
        .form(&[
            ("login", d.admin_email.as_str()),
            ("password", PASSWORD),
            ("_csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let after = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(before, after, "a new session id after sign-in");
    // The pre-sign-in id is not signed in.
    let r = http
        .get(app.url("/schools"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

#[sqlx::test(migrations = "./migrations")]
async fn temporary_password_forces_a_change_and_expires(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let actor = rollcall::db::audit::Actor::cli();
    let created = rollcall::ops::create_district(
        &app.pool,
        &app.clock,
        &actor,
        "Shelby",
        "shelby",
        "boss@shelby.org",
        None,
    )
    .await
    .unwrap();
    let temp = created.temporary_password.expect("a one-time password");

    let c = app.client();
    let r = c.sign_in("boss@shelby.org", &temp).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    // Every other page sends them back to choose a password.
    let r = c.get("/schools").await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    let form = c.get("/account/password").await;
    assert!(form.body.contains("Choose your password"));
    // The strength rule.
    // The temporary password is asked for again (a session that outlived a reset cannot
    // choose the password).
    let weak = c
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.body.contains("at least 8 characters"));
    let same = c
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "boss@shelby.org"),
                ("confirm", "boss@shelby.org"),
            ],
        )
        .await;
    assert_eq!(same.status, 422);
    let ok = c
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "a-new-secret-1"),
                ("confirm", "a-new-secret-1"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(c.get("/schools").await.status, 200);

    // The temporary password worked once only.
    assert_eq!(
        app.client().sign_in("boss@shelby.org", &temp).await.status,
        401
    );
    assert_eq!(
        app.client()
            .sign_in("boss@shelby.org", "a-new-secret-1")
            .await
            .status,
        303
    );
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'user.password_change'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit, 1);

    // Another district's unused temporary password expires after 90 days.
    let other = rollcall::ops::create_district(
        &app.pool,
        &app.clock,
        &actor,
        "Ogden",
        "ogden",
        "boss@ogden.org",
        None,
    )
    .await
    .unwrap();
    let temp2 = other.temporary_password.unwrap();
    app.clock.advance(Duration::days(91));
    let r = app.client().sign_in("boss@ogden.org", &temp2).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("temporary password has expired"),
        "{}",
        r.body
    );
}
