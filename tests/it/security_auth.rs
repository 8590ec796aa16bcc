//! Sign-in and sessions under attack (issue 20, findings 1–5): resets and password changes
//! end sessions, temporary passwords work once, guesses are counted before any hashing, a
//! storm of sign-ins cannot take the shared connection pool, and every failed sign-in costs
//! the same argon2 work (counted, not timed).

use crate::helpers::*;
use rollcall::auth;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// The temporary password shown once on an admin's reset page.
fn secret(body: &str) -> String {
    let start = body
        .find("<code class=\"secret big\">")
        .expect("password shown")
        + "<code class=\"secret big\">".len();
    let end = body[start..].find('<').unwrap();
    body[start..start + end].to_string()
}

async fn signed_in(app: &TestApp, login: &str, password: &str) -> Client {
    let c = app.client();
    let r = c.sign_in(login, password).await;
    assert_eq!(r.status, 303, "{login} signs in: {}", r.body);
    c
}

/// A user whose password hash (or none) and state are set directly.
async fn user_with(
    app: &TestApp,
    district: Uuid,
    username: &str,
    hash: Option<String>,
    temporary: bool,
    status: &str,
    archived: bool,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (district_id, id, email, username, role, password_hash, password_temporary,
                            password_set_at, status, archived_at)
         VALUES ($1, $2, $3, $4, 'Student', $5, $6, now(), $7, CASE WHEN $8 THEN now() END)",
    )
    .bind(district)
    .bind(id)
    .bind(format!("{username}@example.org"))
    .bind(username)
    .bind(hash)
    .bind(temporary)
    .bind(status)
    .bind(archived)
    .execute(&app.pool)
    .await
    .expect("user");
    id
}

/// A client with its own session and that session's CSRF token, ready to post `/login`.
async fn prepared(app: &TestApp) -> (Client, String) {
    let c = app.client();
    let token = c.csrf().await;
    (c, token)
}

async fn post_login(c: &Client, token: &str, login: &str, password: &str) -> (u16, bool) {
    let r = c
        .http
        .post(format!("{}/login", c.base))
        .form(&[("login", login), ("password", password), ("_csrf", token)])
        .send()
        .await
        .expect("POST /login");
    let retry_after = r.headers().contains_key("retry-after");
    (r.status().as_u16(), retry_after)
}

// ---- finding 1: a reset evicts ----

#[sqlx::test(migrations = "./migrations")]
async fn reset_ends_the_users_sessions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let teacher = app.member(d.id, "teacher1", "user", &[]).await;
    let stolen = signed_in(&app, "teacher1", PASSWORD).await;
    assert_eq!(stolen.get("/account").await.status, 200);

    let admin = signed_in(&app, &d.admin_email, PASSWORD).await;
    let reset = admin.post(&format!("/users/{teacher}/password"), &[]).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let temp = secret(&reset.body);

    // The stolen session is signed out: sent to sign in, not to the forced change form.
    for path in ["/account", "/account/password"] {
        let r = stolen.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location.as_deref(), Some("/login"), "{path}");
    }
    let login = stolen.get("/login").await;
    assert!(
        login.body.contains("You were signed out"),
        "the sign-in page says why"
    );
    let r = stolen
        .post(
            "/account/password",
            &[
                ("password", "stolen-secret-1"),
                ("confirm", "stolen-secret-1"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    // The admin's own session is untouched, and the real user's temporary password works.
    assert_eq!(admin.get("/users").await.status, 200);
    let real = app.client();
    let r = real.sign_in("teacher1", &temp).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
}

#[sqlx::test(migrations = "./migrations")]
async fn forced_change_asks_for_the_temporary_password_and_refuses_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let created = rollcall::ops::create_district(
        &app.pool,
        &app.clock,
        &rollcall::db::audit::Actor::cli(),
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
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    let form = c.get("/account/password").await;
    assert!(
        form.body.contains("name=\"current\""),
        "the form asks for the temporary password"
    );

    let new = "a-new-secret-1";
    let without = c
        .post("/account/password", &[("password", new), ("confirm", new)])
        .await;
    assert_eq!(without.status, 422, "no temporary password given");
    let wrong = c
        .post(
            "/account/password",
            &[
                ("current", "not-it-at-all"),
                ("password", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "a wrong temporary password");
    assert!(
        wrong.body.contains("temporary password is wrong"),
        "{}",
        wrong.body
    );
    let same = c
        .post(
            "/account/password",
            &[("current", &temp), ("password", &temp), ("confirm", &temp)],
        )
        .await;
    assert_eq!(same.status, 422, "the temporary password as the new one");
    assert!(same.body.contains("must differ"), "{}", same.body);
    let ok = c
        .post(
            "/account/password",
            &[("current", &temp), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(c.get("/schools").await.status, 200);
}

#[sqlx::test(migrations = "./migrations")]
async fn deactivation_ends_sessions_for_good(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let teacher = app.member(d.id, "teacher1", "user", &[]).await;
    let old = signed_in(&app, "teacher1", PASSWORD).await;
    let admin = signed_in(&app, &d.admin_email, PASSWORD).await;
    for status in ["inactive", "active"] {
        let r = admin
            .post(&format!("/users/{teacher}/status"), &[("status", status)])
            .await;
        assert_eq!(r.status, 303, "{status}");
    }
    // The session was idle while the account was inactive: it does not come back with it.
    let r = old.get("/account").await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert_eq!(
        signed_in(&app, "teacher1", PASSWORD)
            .await
            .get("/account")
            .await
            .status,
        200
    );
}

// ---- finding 2: a sign-in storm cannot take the pool ----

#[sqlx::test(migrations = "./migrations")]
async fn login_storm_on_a_small_pool_leaves_other_districts_up(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let pool = pool_options
        .max_connections(3)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_with(connect_options)
        .await
        .expect("a small pool");
    let app = TestApp::spawn(pool).await;
    let beta = app.district("beta").await;
    let reader = signed_in(&app, &beta.admin_email, PASSWORD).await;
    assert_eq!(reader.get("/users").await.status, 200);

    const STORM: usize = 300;
    let mut clients = Vec::new();
    for _ in 0..STORM {
        clients.push(prepared(&app).await);
    }
    let storm: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (c, token))| {
            tokio::spawn(async move {
                post_login(&c, &token, &format!("nobody{i}@nowhere.org"), "guess-guess").await
            })
        })
        .collect();
    // Meanwhile, another district's signed-in page, again and again until the storm is over.
    let mut pages = Vec::new();
    loop {
        pages.push(reader.get("/users").await.status);
        if storm.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    let mut answers = Vec::new();
    for t in storm {
        answers.push(t.await.expect("storm task"));
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    let mut tally = std::collections::BTreeMap::new();
    for s in &statuses {
        *tally.entry(*s).or_insert(0) += 1;
    }
    println!("storm answers {tally:?}; pages {pages:?}");
    assert!(
        pages.iter().all(|s| *s == 200),
        "another district's page during the storm: {pages:?}"
    );
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "sign-ins answer 401, 429 or 503, never 500: {statuses:?}"
    );
    assert!(
        answers.iter().filter(|a| a.0 == 503).all(|a| a.1),
        "a 503 says when to retry"
    );
}

// ---- finding 3: throttles count right ----

#[sqlx::test(migrations = "./migrations")]
async fn parallel_guesses_for_one_account_evaluate_at_most_the_limit(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    const GUESSES: usize = 20;
    let limit = 5; // Config::for_tests: login_max_failures
    let mut clients = Vec::new();
    for _ in 0..GUESSES {
        clients.push(prepared(&app).await);
    }
    let before = auth::argon2_verifications();
    let guesses: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (c, token))| {
            let email = d.admin_email.clone();
            tokio::spawn(async move { post_login(&c, &token, &email, &format!("guess-{i}")).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap().0);
    }
    let evaluated = auth::argon2_verifications() - before;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(
        refused <= limit,
        "at most {limit} guesses evaluated, {refused} were: {statuses:?}"
    );
    assert!(
        evaluated <= limit as u64,
        "at most {limit} argon2 verifications, {evaluated} ran"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn email_and_username_share_one_counter(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let c = app.client();
    for login in [
        d.admin_email.as_str(),
        "ADMIN",
        d.admin_email.as_str(),
        "admin",
        "Admin",
    ] {
        assert_eq!(
            c.sign_in(login, "wrong-password").await.status,
            401,
            "{login}"
        );
    }
    for login in [d.admin_email.as_str(), "admin"] {
        let r = c.sign_in(login, PASSWORD).await;
        assert_eq!(r.status, 429, "five failures of one account, by {login}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn one_address_guessing_many_accounts_is_throttled(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    // The probe: 15 accounts, a few guesses each (below the per-account limit of 5).
    let hash = auth::hash_password(PASSWORD);
    for i in 0..15 {
        user_with(
            &app,
            d.id,
            &format!("pupil{i}"),
            Some(hash.clone()),
            false,
            "active",
            false,
        )
        .await;
    }
    let c = app.client();
    let mut statuses = Vec::new();
    for i in 0..15 {
        for g in 0..4 {
            let r = c.sign_in(&format!("pupil{i}"), &format!("guess-{g}")).await;
            statuses.push(r.status);
        }
    }
    let first_429 = statuses.iter().position(|s| *s == 429);
    assert!(first_429.is_some(), "no 429 in {statuses:?}");
    let first_429 = first_429.unwrap();
    let limit = rollcall::config::Config::for_tests(".".into()).login_max_failures_per_address;
    assert_eq!(
        first_429 as i64, limit,
        "the address's limit, across accounts"
    );
    assert!(statuses[..first_429].iter().all(|s| *s == 401));
    assert!(statuses[first_429..].iter().all(|s| *s == 429));
    // The address is throttled for every account, the right password included.
    let r = c.sign_in(&d.admin_email, PASSWORD).await;
    assert_eq!(r.status, 429);
    // Another address is not: `a_trusted_proxys_client_address_is_the_one_counted`.
}

async fn post_login_via_proxy(
    c: &Client,
    token: &str,
    forwarded_for: &str,
    login: &str,
    password: &str,
) -> u16 {
    c.http
        .post(format!("{}/login", c.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("login", login), ("password", password), ("_csrf", token)])
        .send()
        .await
        .expect("POST /login")
        .status()
        .as_u16()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_trusted_proxys_client_address_is_the_one_counted(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.trust_proxy = true;
        c.login_max_failures_per_address = 3;
    })
    .await;
    let d = app.district("alpha").await;
    let (c, token) = prepared(&app).await;
    let guesser = "10.0.0.1, 198.51.100.1";
    for i in 0..3 {
        let login = format!("nobody{i}@nowhere.org");
        assert_eq!(
            post_login_via_proxy(&c, &token, guesser, &login, "x").await,
            401
        );
    }
    assert_eq!(
        post_login_via_proxy(&c, &token, guesser, &d.admin_email, PASSWORD).await,
        429,
        "the guessing address is throttled"
    );
    // Everyone else behind the same proxy signs in.
    let (other, token) = prepared(&app).await;
    let r = post_login_via_proxy(&other, &token, "198.51.100.2", &d.admin_email, PASSWORD).await;
    assert_eq!(r, 303, "another client behind the proxy");
}

#[sqlx::test(migrations = "./migrations")]
async fn x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.login_max_failures_per_address = 3).await;
    let d = app.district("alpha").await;
    let (c, token) = prepared(&app).await;
    for i in 0..3 {
        let login = format!("nobody{i}@nowhere.org");
        let forged = format!("198.51.100.{i}");
        assert_eq!(
            post_login_via_proxy(&c, &token, &forged, &login, "x").await,
            401
        );
    }
    let r = post_login_via_proxy(&c, &token, "198.51.100.99", &d.admin_email, PASSWORD).await;
    assert_eq!(
        r, 429,
        "a made-up X-Forwarded-For does not escape the limit"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn current_password_guesses_are_throttled(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    app.member(d.id, "teacher1", "user", &[]).await;
    let c = signed_in(&app, "teacher1", PASSWORD).await;
    for g in 0..5 {
        let guess = format!("guess-guess-{g}");
        let r = c
            .post(
                "/account/password",
                &[
                    ("current", guess.as_str()),
                    ("password", "a-new-secret-1"),
                    ("confirm", "a-new-secret-1"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "guess {g}");
    }
    let r = c
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "a-new-secret-1"),
                ("confirm", "a-new-secret-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 429, "the sixth try is refused before checking");
    // Sign-in counts the same account's failures.
    assert_eq!(app.client().sign_in("teacher1", PASSWORD).await.status, 429);
}

// ---- finding 4: sessions and temporary passwords ----

#[sqlx::test(migrations = "./migrations")]
async fn password_change_ends_the_other_sessions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    app.member(d.id, "teacher1", "user", &[]).await;
    let here = signed_in(&app, "teacher1", PASSWORD).await;
    let elsewhere = signed_in(&app, "teacher1", PASSWORD).await;
    let r = here
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "a-new-secret-1"),
                ("confirm", "a-new-secret-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = elsewhere.get("/account").await;
    assert_eq!(
        r.location.as_deref(),
        Some("/login"),
        "the other session ended"
    );
    assert_eq!(
        here.get("/account").await.status,
        200,
        "the changer's own stays"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn temporary_password_works_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let created = rollcall::ops::create_district(
        &app.pool,
        &app.clock,
        &rollcall::db::audit::Actor::cli(),
        "Shelby",
        "shelby",
        "boss@shelby.org",
        None,
    )
    .await
    .unwrap();
    let temp = created.temporary_password.expect("a one-time password");
    let first = app.client();
    let r = first.sign_in("boss@shelby.org", &temp).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    let second = app.client().sign_in("boss@shelby.org", &temp).await;
    assert_eq!(second.status, 403, "a second sign-in with it fails");
    assert!(second.body.contains("already been used"), "{}", second.body);
    // The session that used it sets the password.
    let r = first
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "a-new-secret-1"),
                ("confirm", "a-new-secret-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

// ---- finding 5: equal work on every failed path ----

#[sqlx::test(migrations = "./migrations")]
async fn every_failed_sign_in_costs_the_same_argon2_work(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    app.member(d.id, "teacher1", "user", &[]).await;
    let argon = auth::hash_password(PASSWORD);
    user_with(
        &app,
        d.id,
        "temp1",
        Some(auth::hash_temporary("Temp-password-1")),
        true,
        "active",
        false,
    )
    .await;
    user_with(&app, d.id, "nopw1", None, false, "active", false).await;
    user_with(
        &app,
        d.id,
        "gone1",
        Some(argon.clone()),
        false,
        "inactive",
        false,
    )
    .await;
    user_with(
        &app,
        d.id,
        "old1",
        Some(argon.clone()),
        false,
        "active",
        true,
    )
    .await;
    rollcall::db::users::insert_operator(&app.pool, "op@rollcall.test", &argon)
        .await
        .unwrap();

    let c = app.client();
    let mut work = Vec::new();
    for (path, login) in [
        ("unknown name", "nobody@nowhere.org"),
        ("argon2 account", "teacher1"),
        ("temporary password", "temp1"),
        ("no password", "nopw1"),
        ("inactive", "gone1"),
        ("archived", "old1"),
        ("operator", "op@rollcall.test"),
    ] {
        let before = auth::argon2_verifications();
        let r = c.sign_in(login, "wrong-password-9").await;
        assert_eq!(r.status, 401, "{path}");
        work.push((path, auth::argon2_verifications() - before));
    }
    assert!(
        work.iter().all(|(_, n)| *n == 1),
        "one argon2 verification on every failed path: {work:?}"
    );
}
