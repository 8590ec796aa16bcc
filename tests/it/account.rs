//! Accounts (issue 17 items 2–7): the operator's one-time password and account page, TOTP
//! MFA with recovery codes (codes computed from the enrolled secret with a moved clock),
//! the district's MFA requirement, unlocking the sign-in throttle, and equal work on every
//! failed password path.

use crate::helpers::*;
use rollcall::auth;
use sqlx::PgPool;
use std::process::Command;
use time::Duration;
use uuid::Uuid;

/// The `rollcall` binary on this test's database.
fn cli(pool: &PgPool, data_dir: &std::path::Path, args: &[&str]) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let mut url = reqwest::Url::parse(&base).unwrap();
    url.set_path(pool.connect_options().get_database().expect("a database"));
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .env("DATABASE_URL", url.as_str())
        .env("RUST_LOG", "warn")
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rollcall {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn one_time_password(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("one-time password: "))
        .expect("prints a one-time password")
        .to_string()
}

async fn audit_actions(app: &TestApp, district: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE district_id = $1 ORDER BY id")
        .bind(district)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A code that is not this one.
fn not(code: &str) -> String {
    let first = if code.starts_with('1') { '2' } else { '1' };
    format!("{first}{}", &code[1..])
}

/// Sign in with a password and then the code: the answer of the code step.
async fn sign_in_with_code(c: &Client, login: &str, password: &str, code: &str) -> Page {
    let r = c.sign_in(login, password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/login/code"), "the code step");
    c.post("/login/code", &[("code", code)]).await
}

#[sqlx::test(migrations = "./migrations")]
async fn operator_one_time_password_works_once_then_password_and_mfa(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        &pool,
        dir.path(),
        &["operator", "create", "--email", "ops@rollcall.test"],
    );
    let once = one_time_password(&out);

    // The first sign-in must choose a password; nothing else opens.
    let c = app.client();
    let r = c.sign_in("ops@rollcall.test", &once).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    assert_eq!(
        c.get("/districts").await.location.as_deref(),
        Some("/account/password")
    );
    // The one-time password works once.
    let again = app.client().sign_in("ops@rollcall.test", &once).await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("already been used"), "{}", again.body);

    let changed = c
        .post(
            "/account/password",
            &[
                ("current", &once),
                ("password", "operator-chosen-1"),
                ("confirm", "operator-chosen-1"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    // MFA is required of operators: set up before anything else.
    assert_eq!(
        c.get("/districts").await.location.as_deref(),
        Some("/account/mfa")
    );
    let enrolled = c.enrol_mfa(app.clock.now()).await;
    assert_eq!(c.get("/").await.location.as_deref(), Some("/districts"));
    let account = c.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("ops@rollcall.test"));
    assert!(account.body.contains("Two-step sign-in: on"));
    // Operators cannot turn it off.
    assert_eq!(c.post("/account/mfa/disable", &[]).await.status, 400);

    // The next sign-in asks for the code (the next step's: the enrolling one was used).
    let c2 = app.client();
    app.clock.advance(Duration::seconds(30));
    let code = auth::mfa::code_at(&enrolled.secret, app.clock.now()).unwrap();
    let r = sign_in_with_code(&c2, "ops@rollcall.test", "operator-chosen-1", &code).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(c2.get("/").await.location.as_deref(), Some("/districts"));
    // The old password is gone, the one-time one too.
    assert_eq!(
        app.client()
            .sign_in("ops@rollcall.test", &once)
            .await
            .status,
        401
    );

    // reset-password: a new one-time password, every session ends.
    let out = cli(
        &pool,
        dir.path(),
        &["operator", "reset-password", "--email", "ops@rollcall.test"],
    );
    let fresh = one_time_password(&out);
    assert_eq!(
        c2.get("/districts").await.location.as_deref(),
        Some("/login")
    );
    assert_eq!(
        c.get("/districts").await.location.as_deref(),
        Some("/login")
    );
    app.clock.advance(Duration::seconds(30));
    let code = auth::mfa::code_at(&enrolled.secret, app.clock.now()).unwrap();
    let c3 = app.client();
    let r = sign_in_with_code(&c3, "ops@rollcall.test", &fresh, &code).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/account/password"),
        "{}",
        r.body
    );

    // --mfa-off (a lost phone): set up again at the next sign-in.
    let out = cli(
        &pool,
        dir.path(),
        &[
            "operator",
            "reset-password",
            "--email",
            "ops@rollcall.test",
            "--mfa-off",
        ],
    );
    let fresh = one_time_password(&out);
    let c4 = app.client();
    let r = c4.sign_in("ops@rollcall.test", &fresh).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    let changed = c4
        .post(
            "/account/password",
            &[
                ("current", &fresh),
                ("password", "operator-chosen-2"),
                ("confirm", "operator-chosen-2"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303);
    assert_eq!(
        c4.get("/districts").await.location.as_deref(),
        Some("/account/mfa")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn admin_mfa_codes_recovery_codes_and_the_district_requirement(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let admin = app.client();
    assert_eq!(
        admin
            .sign_in(&d.admin_email, &d.admin_password)
            .await
            .location
            .as_deref(),
        Some("/"),
        "no MFA asked before the district requires it"
    );
    let school = app.school(d.id, "N1", "North").await;
    app.member(d.id, "second", "district_admin", &[]).await;
    app.member(d.id, "principal", "school_admin", &[school])
        .await;
    app.member(d.id, "teacher", "user", &[school]).await;

    let page = admin.get("/settings/mfa").await;
    assert_eq!(page.status, 200);
    let r = admin.post("/settings/mfa", &[("required", "on")]).await;
    assert_eq!(r.status, 303);
    assert!(
        audit_actions(&app, d.id)
            .await
            .contains(&"district.mfa_requirement".to_string())
    );

    // A plain user is never asked.
    assert_eq!(
        app.client()
            .sign_in("teacher", PASSWORD)
            .await
            .location
            .as_deref(),
        Some("/")
    );
    // Admins set it up at their next sign-in, before anything else.
    for login in ["second", "principal"] {
        let c = app.client();
        let r = c.sign_in(login, PASSWORD).await;
        assert_eq!(r.location.as_deref(), Some("/account/mfa"), "{login}");
        assert_eq!(
            c.get("/users").await.location.as_deref(),
            Some("/account/mfa"),
            "{login}"
        );
    }
    let c = app.client();
    c.sign_in("second", PASSWORD).await;
    // A wrong first code does not turn it on.
    assert_eq!(c.get("/account/mfa").await.status, 200);
    let wrong = c.post("/account/mfa", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    let enrolled = c.enrol_mfa(app.clock.now()).await;
    assert_eq!(c.get("/users").await.status, 200);
    assert!(
        audit_actions(&app, d.id)
            .await
            .contains(&"user.mfa_enabled".to_string())
    );
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT mfa_secret FROM users WHERE username = 'second'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(&enrolled.secret),
        "the secret is stored sealed"
    );

    // The code step: a wrong code, then the right one; the same code never twice.
    app.clock.advance(Duration::seconds(30));
    let now = app.clock.now();
    let code = auth::mfa::code_at(&enrolled.secret, now).unwrap();
    let c = app.client();
    let r = sign_in_with_code(&c, "second", PASSWORD, &not(&code)).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = c.post("/login/code", &[("code", &code)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/"));
    assert_eq!(c.get("/users").await.status, 200);
    let replay = sign_in_with_code(&app.client(), "second", PASSWORD, &code).await;
    assert_eq!(replay.status, 401, "a code works once");
    // Without the code, the password alone opens nothing.
    let half = app.client();
    assert_eq!(
        half.sign_in("second", PASSWORD).await.location.as_deref(),
        Some("/login/code")
    );
    assert_eq!(half.get("/users").await.location.as_deref(), Some("/login"));

    // A recovery code works once, instead of a code.
    let rc = &enrolled.recovery[0];
    let r = sign_in_with_code(&app.client(), "second", PASSWORD, rc).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = sign_in_with_code(&app.client(), "second", PASSWORD, rc).await;
    assert_eq!(r.status, 401, "a recovery code works once");
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT unnest(mfa_recovery) FROM users WHERE username = 'second'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 9);
    assert!(
        stored.iter().all(|h| h.len() == 32),
        "stored as SHA-256 hashes"
    );

    // Required by the district: cannot be turned off.
    assert_eq!(c.post("/account/mfa/disable", &[]).await.status, 400);
    assert!(
        audit_actions(&app, d.id)
            .await
            .contains(&"signin.mfa_failure".to_string())
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn wrong_codes_are_throttled_like_passwords_and_an_admin_unlocks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let second = app.member(d.id, "second", "district_admin", &[]).await;
    let c = app.client();
    c.sign_in("second", PASSWORD).await;
    let enrolled = c.enrol_mfa(app.clock.now()).await;
    app.clock.advance(Duration::seconds(30));

    let c = app.client();
    assert_eq!(
        c.sign_in("second", PASSWORD).await.location.as_deref(),
        Some("/login/code")
    );
    let code = auth::mfa::code_at(&enrolled.secret, app.clock.now()).unwrap();
    let wrong = &not(&code);
    for _ in 0..4 {
        assert_eq!(c.post("/login/code", &[("code", wrong)]).await.status, 401);
    }
    // The password step counted once as a success; four wrong codes and the fifth:
    assert_eq!(c.post("/login/code", &[("code", wrong)]).await.status, 401);
    let blocked = c.post("/login/code", &[("code", &code)]).await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(blocked.body.contains("ask your district administrator"));
    let pw_blocked = app.client().sign_in("second", PASSWORD).await;
    assert_eq!(pw_blocked.status, 429, "the password is throttled too");
    assert!(
        pw_blocked
            .body
            .contains("ask your district administrator to unlock")
    );

    // A school admin cannot unlock; the district admin can (audited).
    let school = app.school(d.id, "N1", "North").await;
    app.member(d.id, "principal", "school_admin", &[school])
        .await;
    let p = app.client();
    p.sign_in("principal", PASSWORD).await;
    assert_eq!(
        p.post(&format!("/users/{second}/unlock"), &[]).await.status,
        403
    );
    let admin = app.client();
    admin.sign_in(&d.admin_email, &d.admin_password).await;
    let user_page = admin.get(&format!("/users/{second}")).await;
    assert!(user_page.body.contains("Unlock sign-in"));
    let r = admin.post(&format!("/users/{second}/unlock"), &[]).await;
    assert_eq!(r.status, 303);
    let flash = admin.get(&format!("/users/{second}")).await;
    assert!(
        flash.body.contains("failed sign-ins cleared"),
        "{}",
        flash.body
    );
    assert!(
        audit_actions(&app, d.id)
            .await
            .contains(&"user.sign_in_unlocked".to_string())
    );

    let r = sign_in_with_code(&app.client(), "second", PASSWORD, &code).await;
    assert_eq!(r.status, 303, "unlocked: {}", r.body);

    // A lost phone: the district admin turns MFA off; the user signs in with the password.
    let r = admin.post(&format!("/users/{second}/mfa/reset"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        app.client()
            .sign_in("second", PASSWORD)
            .await
            .location
            .as_deref(),
        Some("/")
    );
    assert!(
        audit_actions(&app, d.id)
            .await
            .contains(&"user.mfa_reset".to_string())
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_throttled_user_is_told_to_ask_their_admin_who_unlocks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let teacher = app.member(d.id, "teacher", "user", &[]).await;
    let c = app.client();
    for _ in 0..5 {
        assert_eq!(c.sign_in("teacher", "wrong-password").await.status, 401);
    }
    let blocked = c.sign_in("teacher", PASSWORD).await;
    assert_eq!(blocked.status, 429);
    assert!(blocked.body.contains("too many failed sign-ins"));
    assert!(
        blocked
            .body
            .contains("ask your district administrator to unlock")
    );

    let admin = app.client();
    admin.sign_in(&d.admin_email, &d.admin_password).await;
    // Another district's admin cannot name this user.
    let other = app.district("shelbyville").await;
    let o = app.client();
    o.sign_in(&other.admin_email, &other.admin_password).await;
    assert_eq!(
        o.post(&format!("/users/{teacher}/unlock"), &[])
            .await
            .status,
        404
    );
    assert_eq!(
        c.sign_in("teacher", PASSWORD).await.status,
        429,
        "still locked"
    );
    let r = admin.post(&format!("/users/{teacher}/unlock"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(c.sign_in("teacher", PASSWORD).await.status, 303, "unlocked");
    let entry: serde_json::Value = sqlx::query_scalar(
        "SELECT after FROM audit_log WHERE district_id = $1 AND action = 'user.sign_in_unlocked'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(entry["failed_sign_ins_cleared"], 5);
}

/// Every failed password sign-in does the same work: one argon2 verification, one throttle
/// record that stays a failure, no other write — whether the name is unknown, the password
/// wrong, the account's password temporary (wrong, right but expired, right but used).
#[sqlx::test(migrations = "./migrations")]
async fn every_failed_password_path_costs_the_same(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.member(d.id, "chosen", "user", &[]).await;
    let temp = |login: &'static str| {
        let pool = app.pool.clone();
        async move {
            let id = sqlx::query_scalar::<_, Uuid>("SELECT id FROM users WHERE username = $1")
                .bind(login)
                .fetch_one(&pool)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE users SET password_hash = $2, password_temporary = true, password_set_at = now() WHERE id = $1",
            )
            .bind(id)
            .bind(auth::hash_temporary("temporary-pass-1"))
            .execute(&pool)
            .await
            .unwrap();
            id
        }
    };
    app.member(d.id, "temp", "user", &[]).await;
    temp("temp").await;
    app.member(d.id, "expired", "user", &[]).await;
    let expired = temp("expired").await;
    sqlx::query("UPDATE users SET password_set_at = now() - interval '91 days' WHERE id = $1")
        .bind(expired)
        .execute(&app.pool)
        .await
        .unwrap();
    app.member(d.id, "used", "user", &[]).await;
    temp("used").await;
    assert_eq!(
        app.client()
            .sign_in("used", "temporary-pass-1")
            .await
            .status,
        303,
        "the temporary password's one use"
    );

    let successes: i64 = sqlx::query_scalar("SELECT count(*) FROM login_attempts WHERE success")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut work = Vec::new();
    for (path, login, password, status) in [
        (
            "unknown name",
            "nobody@nowhere.org",
            "wrong-password-9",
            401,
        ),
        ("wrong password", "chosen", "wrong-password-9", 401),
        ("temporary, wrong", "temp", "wrong-password-9", 401),
        ("temporary, expired", "expired", "temporary-pass-1", 403),
        ("temporary, used", "used", "temporary-pass-1", 403),
    ] {
        let c = app.client();
        let argon2_before = auth::argon2_verifications();
        let attempts_before: i64 = sqlx::query_scalar("SELECT count(*) FROM login_attempts")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let version_before: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM users")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let r = c.sign_in(login, password).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        let (attempts, failures): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM login_attempts",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let version_after: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM users")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(
            attempts - attempts_before,
            1,
            "{path}: one attempt recorded"
        );
        assert_eq!(attempts, failures + successes, "{path}: it stays a failure");
        assert_eq!(version_after, version_before, "{path}: no account changed");
        work.push((path, auth::argon2_verifications() - argon2_before));
    }
    assert!(
        work.iter().all(|(_, n)| *n == 1),
        "one argon2 verification on every failed path: {work:?}"
    );
}

/// The app with a real SMTP server (aiosmtpd, as the alert tests use).
async fn app_with_mail(pool: PgPool) -> (TestApp, crate::alerts::Smtp) {
    let port = crate::alerts::free_port();
    let smtp = crate::alerts::Smtp::start(port);
    let app = TestApp::spawn_with(pool, |c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = Some(port);
        c.smtp_tls = rollcall::config::SmtpTls::None;
        c.smtp_from = "Rollcall <no-reply@rollcall.example.org>".into();
        c.public_url = Some("https://rollcall.example.org".into());
    })
    .await;
    (app, smtp)
}

fn link_in(mail: &str) -> String {
    let start = mail
        .find("https://rollcall.example.org/password/reset?token=")
        .expect("a link");
    let rest = &mail[start + "https://rollcall.example.org".len()..];
    rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn forgot_password_by_email(pool: PgPool) {
    let (app, smtp) = app_with_mail(pool).await;
    let d = app.district("springfield").await;
    let teacher = app.member(d.id, "teacher", "user", &[]).await;
    // Two sessions of the teacher, which the reset ends.
    let s1 = app.client();
    assert_eq!(s1.sign_in("teacher", PASSWORD).await.status, 303);

    let anon = app.client();
    let form = anon.get("/login").await;
    assert!(
        form.body.contains("href=\"/password/forgot\""),
        "Forgot password? on the sign-in page"
    );
    let known = anon
        .post("/password/forgot", &[("login", "teacher@example.org")])
        .await;
    let unknown = anon
        .post("/password/forgot", &[("login", "nobody@example.org")])
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(unknown.status, 200);
    let strip = |b: &str| b.replace(&extract_csrf(b).unwrap_or_default(), "");
    assert_eq!(
        strip(&known.body),
        strip(&unknown.body),
        "the same answer either way"
    );
    app.outbox.settle().await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "one mail, to the account that exists");
    assert!(
        mail[0].contains("X-Envelope-To: teacher@example.org"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("Subject: Reset your Rollcall password"));
    let link = link_in(&mail[0]);
    let token = link.split("token=").nth(1).unwrap().to_string();
    // Stored hashed only.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM password_resets")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![rollcall::auth::hash_token(&token)]);

    let c = app.client();
    let page = c.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The strength rule holds.
    let weak = c
        .post(
            "/password/reset",
            &[
                ("token", &token),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422);
    let r = c
        .post(
            "/password/reset",
            &[
                ("token", &token),
                ("password", "brand-new-pass-1"),
                ("confirm", "brand-new-pass-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/login"));
    // Every other session ended; the new password works, the old does not.
    assert_eq!(s1.get("/account").await.location.as_deref(), Some("/login"));
    assert_eq!(app.client().sign_in("teacher", PASSWORD).await.status, 401);
    assert_eq!(
        app.client()
            .sign_in("teacher", "brand-new-pass-1")
            .await
            .status,
        303
    );
    // Single use.
    assert_eq!(c.get(&link).await.status, 404);
    let again = c
        .post(
            "/password/reset",
            &[
                ("token", &token),
                ("password", "another-pass-22"),
                ("confirm", "another-pass-22"),
            ],
        )
        .await;
    assert_eq!(again.status, 404);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE district_id = $1 AND entity_id = $2",
    )
    .bind(d.id)
    .bind(teacher)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(actions.contains(&"user.password_reset_by_email".to_string()));

    // Expired after 30 minutes.
    anon.post("/password/forgot", &[("login", "teacher")]).await;
    app.outbox.settle().await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2, "a username finds the account too");
    let link = link_in(&mail[1]);
    app.clock.advance(Duration::minutes(31));
    assert_eq!(c.get(&link).await.status, 404, "expired");
}

/// A client that says which browser it is.
fn browser(app: &TestApp, user_agent: &str) -> Client {
    Client {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .unwrap(),
        base: format!("http://{}", app.addr),
    }
}

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

#[sqlx::test(migrations = "./migrations")]
async fn my_sessions_lists_devices_and_ends_the_others(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let teacher = app.member(d.id, "teacher", "user", &[]).await;
    let laptop = browser(&app, FIREFOX);
    let phone = browser(&app, SAFARI);
    assert_eq!(laptop.sign_in("teacher", PASSWORD).await.status, 303);
    assert_eq!(phone.sign_in("teacher", PASSWORD).await.status, 303);
    assert_eq!(phone.get("/account").await.status, 200);
    let out = browser(&app, SAFARI);
    out.sign_in("teacher", PASSWORD).await;
    out.get("/account").await;
    out.post("/logout", &[]).await;

    let page = laptop.get("/account/sessions").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Firefox on Windows <strong>(this session)</strong>"),
        "{}",
        page.body
    );
    assert_eq!(
        page.body.matches("Safari on iOS").count(),
        1,
        "the signed-out one is gone: {}",
        page.body
    );
    assert!(page.body.contains("127.0.0.1"));

    let r = laptop.post("/account/sessions/end-others", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        phone.get("/account").await.location.as_deref(),
        Some("/login"),
        "the other session ended"
    );
    let page = laptop.get("/account/sessions").await;
    assert_eq!(page.status, 200, "this one goes on");
    assert!(!page.body.contains("Safari on iOS"), "{}", page.body);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE district_id = $1 AND entity_id = $2",
    )
    .bind(d.id)
    .bind(teacher)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(actions.contains(&"user.sessions_ended".to_string()));

    // A password change ends the others too, and keeps this one (and its row).
    assert_eq!(phone.sign_in("teacher", PASSWORD).await.status, 303);
    phone.get("/account").await;
    let r = laptop
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "new-pass-word-1"),
                ("confirm", "new-pass-word-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        phone.get("/account").await.location.as_deref(),
        Some("/login")
    );
    let page = laptop.get("/account/sessions").await;
    assert!(page.body.contains("(this session)"));
    assert!(!page.body.contains("Safari on iOS"));

    // An admin's reset ends every session of the user.
    let admin = app.client();
    admin.sign_in(&d.admin_email, &d.admin_password).await;
    assert_eq!(
        admin
            .post(&format!("/users/{teacher}/password"), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        laptop.get("/account").await.location.as_deref(),
        Some("/login")
    );

    // Sessions unseen for 8 hours are not listed.
    let c = browser(&app, FIREFOX);
    c.sign_in(&d.admin_email, &d.admin_password).await;
    let before = c.get("/account/sessions").await;
    assert_eq!(before.body.matches("Firefox on Windows").count(), 1);
    assert!(before.body.contains("(this session)"));
    let other = browser(&app, SAFARI);
    other.sign_in(&d.admin_email, &d.admin_password).await;
    other.get("/account").await;
    app.clock.advance(Duration::hours(9));
    // (the layer's own 8-hour expiry is real time; the list follows the app's clock)
    let later = c.get("/account/sessions").await;
    assert!(!later.body.contains("Safari on iOS"), "{}", later.body);
}
