//! Single sign-on (issue 17, item 1) through a real OpenID Connect provider: npm's certified
//! `oidc-provider` (`tests/oidc/provider.mjs`, on Debian's `nodejs`; `scripts/test` installs
//! it into `$HOME/.cache/rollcall-oidc`) on 127.0.0.1 and a random port, one per test. The
//! person's browser is a cookie-keeping reqwest client that follows the redirects: the
//! district's sign-in page, its button, the provider, the callback, the portal. Three of the
//! provider's clients misbehave (wrong audience, expired token, a second signing key).

use crate::helpers::*;
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

fn oidc_modules() -> PathBuf {
    let dir = std::env::var("ROLLCALL_OIDC_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/rollcall-oidc/node_modules")
        });
    assert!(
        dir.join("oidc-provider/package.json").exists(),
        "oidc-provider is missing in {}: scripts/test installs it \
         (apt-get install nodejs npm; npm install --prefix $HOME/.cache/rollcall-oidc oidc-provider@8)",
        dir.display()
    );
    dir
}

/// The identity provider, running until dropped.
struct Idp {
    issuer: String,
    _child: tokio::process::Child,
}

impl Idp {
    async fn start(app: &TestApp) -> Idp {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .env("ROLLCALL_OIDC_MODULES", oidc_modules())
            .env("ROLLCALL_OIDC_REDIRECT", app.url("/login/sso/callback"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/test installs Debian's nodejs)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let issuer = loop {
            match lines.next_line().await.expect("the provider's output") {
                Some(l) if l.starts_with("READY ") => break l["READY ".len()..].to_string(),
                Some(_) => continue,
                None => panic!("the OpenID Connect provider exited before it was ready"),
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Idp {
            issuer,
            _child: child,
        }
    }

    /// The account the provider signs in next, as Microsoft Entra ID sends it: no
    /// `email_verified`, and `xms_edov` when `edov` is given.
    async fn next_entra(&self, sub: &str, email: &str, edov: Option<bool>) {
        let mut q = vec![("sub", sub), ("email", email), ("verified", "absent")];
        if let Some(e) = edov {
            q.push(("edov", if e { "true" } else { "false" }));
        }
        let r = reqwest::Client::new()
            .get(format!("{}/test/next", self.issuer))
            .query(&q)
            .send()
            .await
            .expect("provider answers");
        assert_eq!(r.status(), 200);
    }

    /// The account the provider signs in next.
    async fn next(&self, sub: &str, email: Option<&str>, verified: bool) {
        let mut q = vec![
            ("sub", sub),
            ("verified", if verified { "true" } else { "false" }),
        ];
        if let Some(e) = email {
            q.push(("email", e));
        }
        let r = reqwest::Client::new()
            .get(format!("{}/test/next", self.issuer))
            .query(&q)
            .send()
            .await
            .expect("provider answers");
        assert_eq!(r.status(), 200);
    }
}

/// A person's browser: keeps cookies and follows redirects (stopping before the portal's
/// callback when `stop_at_callback`, so a test can hold on to it).
fn browser(stop_at_callback: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(move |a| {
            if stop_at_callback && a.url().path() == "/login/sso/callback" {
                a.stop()
            } else if a.previous().len() > 10 {
                a.error("too many redirects")
            } else {
                a.follow()
            }
        }))
        .build()
        .expect("client")
}

struct World {
    app: TestApp,
    district: District,
    idp: Idp,
    admin: Client,
}

impl World {
    async fn new(pool: PgPool) -> World {
        let app = TestApp::spawn(pool).await;
        let district = app.district("springfield").await;
        let idp = Idp::start(&app).await;
        let admin = app.client();
        assert_eq!(
            admin
                .sign_in(&district.admin_email, &district.admin_password)
                .await
                .status,
            303
        );
        World {
            app,
            district,
            idp,
            admin,
        }
    }

    /// Add a provider through Settings → Single sign-on; its id.
    async fn provider(&self, label: &str, client_id: &str, domains: &str) -> Uuid {
        let secret = format!("secret-{client_id}");
        let r = self
            .admin
            .post(
                "/settings/sso",
                &[
                    ("label", label),
                    ("issuer_url", &self.idp.issuer),
                    ("client_id", client_id),
                    ("client_secret", &secret),
                    ("domains", domains),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        sqlx::query_scalar("SELECT id FROM sso_providers WHERE district_id = $1 AND label = $2")
            .bind(self.district.id)
            .bind(label)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Press the button labelled `label` on `/login/springfield`; the last answer.
    async fn press(&self, http: &reqwest::Client, label: &str) -> reqwest::Response {
        let page = http
            .get(self.app.url("/login/springfield"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let body = page.text().await.unwrap();
        let csrf = extract_csrf(&body).expect("a CSRF token");
        let button = format!(">{label}</button>");
        let at = body
            .find(&button)
            .unwrap_or_else(|| panic!("no button {label}:\n{body}"));
        let form_start = body[..at].rfind("<form method=\"post\" action=\"").unwrap();
        let action_at = form_start + "<form method=\"post\" action=\"".len();
        let action = &body[action_at..action_at + body[action_at..].find('"').unwrap()];
        http.post(self.app.url(action))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// Where the browser lands when it asks for its account page: `/account` when signed in.
    async fn landing(&self, http: &reqwest::Client) -> String {
        let r = http.get(self.app.url("/account")).send().await.unwrap();
        r.url().path().to_string()
    }

    async fn audits(&self, action: &str) -> Vec<(Option<Uuid>, String, serde_json::Value)> {
        sqlx::query_as(
            "SELECT actor_id, actor_label, COALESCE(after, 'null'::jsonb) FROM audit_log
             WHERE district_id = $1 AND action = $2 ORDER BY id",
        )
        .bind(self.district.id)
        .bind(action)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }

    async fn refusal_reasons(&self) -> Vec<String> {
        self.audits("signin.sso_refused")
            .await
            .into_iter()
            .map(|(_, _, after)| after["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn identities(&self) -> Vec<(String, Uuid)> {
        sqlx::query_as(
            "SELECT subject, user_id FROM sso_identities WHERE district_id = $1 ORDER BY subject",
        )
        .bind(self.district.id)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_user_signs_in_by_verified_email_then_by_the_stored_subject(pool: PgPool) {
    let w = World::new(pool).await;
    let ann = w.app.member(w.district.id, "ann", "user", &[]).await;
    w.provider("Sign in with Test IdP", "rollcall", "example.org")
        .await;
    // `/login` still works, and `/login/springfield` shows the district's button.
    let plain = reqwest::get(w.app.url("/login")).await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(
        !plain
            .text()
            .await
            .unwrap()
            .contains("Sign in with Test IdP")
    );

    w.idp.next("sub-ann", Some("Ann@Example.org"), true).await;
    let http = browser(false);
    let r = w.press(&http, "Sign in with Test IdP").await;
    assert_eq!(r.status(), 200);
    // A plain user lands on their account page.
    assert_eq!(r.url().path(), "/account");
    assert_eq!(r.url().host_str(), Some("127.0.0.1"));
    assert_eq!(w.landing(&http).await, "/account");
    assert_eq!(w.identities().await, vec![("sub-ann".to_string(), ann)]);
    let signed = w.audits("signin.sso").await;
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].0, Some(ann));
    assert_eq!(signed[0].1, "ann@example.org");
    assert_eq!(signed[0].2["matched_by"], "email");

    // Later the provider reports another address: the stored subject still finds Ann.
    w.idp
        .next("sub-ann", Some("ann.new@example.org"), true)
        .await;
    let again = browser(false);
    let r = w.press(&again, "Sign in with Test IdP").await;
    assert_eq!(r.url().path(), "/account");
    let signed = w.audits("signin.sso").await;
    assert_eq!(signed.len(), 2);
    assert_eq!(signed[1].0, Some(ann));
    assert_eq!(signed[1].2["matched_by"], "subject");

    // An admin lands on the home page the same way.
    w.idp
        .next("sub-admin", Some(&w.district.admin_email), true)
        .await;
    sqlx::query("UPDATE sso_providers SET allowed_domains = '{example.org,springfield.org}'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    let admin = browser(false);
    let r = w.press(&admin, "Sign in with Test IdP").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/");
    // Nobody was created by any of this.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE district_id = $1")
        .bind(w.district.id)
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(users, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn id_tokens_with_a_wrong_audience_an_expiry_past_or_a_bad_signature_are_refused(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    w.app.member(w.district.id, "ann", "user", &[]).await;
    // Several providers in one district: one button each.
    w.provider("Wrong audience", "rollcall-wrong-aud", "example.org")
        .await;
    w.provider("Expired", "rollcall-expired", "example.org")
        .await;
    w.provider("Bad signature", "rollcall-bad-sig", "example.org")
        .await;
    w.idp.next("sub-ann", Some("ann@example.org"), true).await;
    for (label, reason) in [
        ("Wrong audience", "wrong_audience"),
        ("Expired", "expired"),
        ("Bad signature", "bad_signature"),
    ] {
        let http = browser(false);
        let r = w.press(&http, label).await;
        assert_eq!(r.status(), 403, "{label}");
        assert_eq!(r.url().path(), "/login/sso/callback", "{label}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("answer could not be trusted"),
            "{label}: {body}"
        );
        assert_eq!(
            w.landing(&http).await,
            "/login",
            "{label} signed someone in"
        );
        assert_eq!(
            w.refusal_reasons().await.last().map(String::as_str),
            Some(reason)
        );
    }
    assert!(w.audits("signin.sso").await.is_empty());
    assert!(w.identities().await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_unverified_and_other_domain_identities_are_refused(pool: PgPool) {
    let w = World::new(pool).await;
    let ann = w.app.member(w.district.id, "ann", "user", &[]).await;
    let bob = w.app.member(w.district.id, "bob", "user", &[]).await;
    sqlx::query("UPDATE users SET email = 'bob@elsewhere.org' WHERE id = $1")
        .bind(bob)
        .execute(&w.app.pool)
        .await
        .unwrap();
    w.provider("Sign in with Test IdP", "rollcall", "example.org")
        .await;
    let cases = [
        (
            "sub-nobody",
            "nobody@example.org",
            true,
            "unknown_user",
            "There is no account for this email address",
        ),
        (
            "sub-ann",
            "ann@example.org",
            false,
            "email_not_verified",
            "has not verified your email address",
        ),
        (
            "sub-bob",
            "bob@elsewhere.org",
            true,
            "domain_not_allowed",
            "not in a domain this district signs in with",
        ),
    ];
    for (sub, email, verified, reason, words) in cases {
        w.idp.next(sub, Some(email), verified).await;
        let http = browser(false);
        let r = w.press(&http, "Sign in with Test IdP").await;
        assert_eq!(r.status(), 403, "{reason}");
        let body = r.text().await.unwrap();
        assert!(body.contains(words), "{reason}: {body}");
        // The district's sign-in page again, with its button.
        assert!(body.contains("Sign in with Test IdP"), "{reason}");
        assert_eq!(w.landing(&http).await, "/login", "{reason}");
        assert_eq!(
            w.refusal_reasons().await.last().map(String::as_str),
            Some(reason)
        );
    }
    let refused = w.audits("signin.sso_refused").await;
    assert_eq!(refused[0].1, "nobody@example.org");
    assert_eq!(refused[1].0, Some(ann));
    assert!(w.identities().await.is_empty());
    assert!(w.audits("signin.sso").await.is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn a_microsoft_entra_identity_is_verified_by_xms_edov(pool: PgPool) {
    let w = World::new(pool).await;
    let ann = w.app.member(w.district.id, "ann", "user", &[]).await;
    w.provider("Sign in with Microsoft", "rollcall", "example.org")
        .await;
    // No `email_verified` and no (or a false) `xms_edov`: not verified, refused.
    for edov in [None, Some(false)] {
        w.idp.next_entra("entra-ann", "ann@example.org", edov).await;
        let http = browser(false);
        let r = w.press(&http, "Sign in with Microsoft").await;
        assert_eq!(r.status(), 403, "{edov:?}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("has not verified your email address")
        );
        assert_eq!(
            w.refusal_reasons().await.last().map(String::as_str),
            Some("email_not_verified")
        );
    }
    // An explicit `email_verified: false` is not overruled by `xms_edov`.
    w.idp
        .next("entra-ann", Some("ann@example.org"), false)
        .await;
    assert_eq!(
        w.press(&browser(false), "Sign in with Microsoft")
            .await
            .status(),
        403
    );
    assert!(w.identities().await.is_empty());
    // Entra with `xms_edov: true`: the first sign-in matches by email and links the subject.
    w.idp
        .next_entra("entra-ann", "ann@example.org", Some(true))
        .await;
    let http = browser(false);
    let r = w.press(&http, "Sign in with Microsoft").await;
    assert_eq!(r.url().path(), "/account", "signed in: a user's own page");
    assert_eq!(w.identities().await, vec![("entra-ann".to_string(), ann)]);
    assert_eq!(w.audits("signin.sso").await[0].0, Some(ann));
    // Then by the stored subject, whatever the claims say; an unused temporary password
    // (for a first password sign-in) does not send a single sign-on to choose a password.
    sqlx::query("UPDATE users SET password_temporary = true WHERE id = $1")
        .bind(ann)
        .execute(&w.app.pool)
        .await
        .unwrap();
    w.idp.next_entra("entra-ann", "ann@example.org", None).await;
    let r = w.press(&browser(false), "Sign in with Microsoft").await;
    assert_eq!(r.url().path(), "/account", "signed in: a user's own page");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_state_works_once(pool: PgPool) {
    let w = World::new(pool).await;
    let ann = w.app.member(w.district.id, "ann", "user", &[]).await;
    w.provider("Sign in with Test IdP", "rollcall", "example.org")
        .await;
    w.idp.next("sub-ann", Some("ann@example.org"), true).await;

    let http = browser(true);
    let r = w.press(&http, "Sign in with Test IdP").await;
    assert_eq!(r.status(), 303);
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.contains("state="), "{callback}");
    // (The browser stops only before the callback: it follows the portal's own redirects.)
    let first = http.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.url().path(), "/account");

    // The same callback again, from the same browser and from another: refused.
    let replay = http.get(&callback).send().await.unwrap();
    assert_ne!(replay.url().path(), "/login/sso/callback");
    let other = browser(true);
    let replay = other.get(&callback).send().await.unwrap();
    assert_eq!(replay.url().path(), "/login");
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    assert_eq!(w.landing(&other).await, "/login");
    assert_eq!(w.audits("signin.sso").await.len(), 1);

    // A started sign-in that comes back with another state is refused and spent.
    let third = browser(true);
    let r = w.press(&third, "Sign in with Test IdP").await;
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    let forged = callback.replace("state=", "state=x");
    let r = third.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    let r = third.get(&callback).send().await.unwrap();
    assert_eq!(r.url().path(), "/login");
    assert_eq!(w.landing(&third).await, "/login");
    assert_eq!(w.refusal_reasons().await, vec!["state_mismatch"]);
    assert_eq!(w.audits("signin.sso").await.len(), 1);
    assert_eq!(w.audits("signin.sso").await[0].0, Some(ann));
}

#[sqlx::test(migrations = "./migrations")]
async fn require_sso_refuses_passwords_but_keeps_one_break_glass_admin(pool: PgPool) {
    let w = World::new(pool).await;
    w.app.member(w.district.id, "ann", "user", &[]).await;
    let dora = w
        .app
        .member(w.district.id, "dora", "district_admin", &[])
        .await;
    let admin_id: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND email = $2")
            .bind(w.district.id)
            .bind(&w.district.admin_email)
            .fetch_one(&w.app.pool)
            .await
            .unwrap();

    // No provider yet: nothing can be required.
    let r = w
        .admin
        .post("/settings/sso/policy", &[("require_for_users", "on")])
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("before requiring single sign-on"));
    w.provider("Sign in with Test IdP", "rollcall", "example.org")
        .await;

    let r = w
        .admin
        .post("/settings/sso/policy", &[("require_for_users", "on")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ann = w.app.client();
    let r = ann.sign_in("ann", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("signs in with single sign-on"),
        "{}",
        r.body
    );
    assert!(r.body.contains("/login/springfield"));
    assert_eq!(
        ann.get("/account").await.location.as_deref(),
        Some("/login")
    );
    // Admins still sign in with their password (this district does not require MFA).
    let r = w.app.client().sign_in("dora", PASSWORD).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"));

    // Admins too: only with a break-glass admin chosen.
    let r = w
        .admin
        .post(
            "/settings/sso/policy",
            &[("require_for_users", "on"), ("require_for_admins", "on")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("break-glass"));
    let r = w
        .admin
        .post(
            "/settings/sso/policy",
            &[
                ("require_for_users", "on"),
                ("require_for_admins", "on"),
                ("break_glass", &admin_id.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = w.app.client().sign_in("dora", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("signs in with single sign-on"));
    let r = w
        .app
        .client()
        .sign_in(&w.district.admin_email, PASSWORD)
        .await;
    assert_eq!(r.status, 303, "the break-glass admin keeps the password");
    // …never a password alone: not enrolled, they are sent to set up MFA and held there.
    assert_eq!(r.location.as_deref(), Some("/account/mfa"));
    let glass = w.app.client();
    glass.sign_in(&w.district.admin_email, PASSWORD).await;
    assert_eq!(
        glass.get("/users").await.location.as_deref(),
        Some("/account/mfa")
    );
    let page = glass.get("/account/mfa").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Your account requires two-step sign-in. Set it up to continue."),
        "{}",
        page.body
    );
    // The page shows the choice.
    let page = w.admin.get("/settings/sso").await;
    assert!(
        page.body
            .contains(&format!("value=\"{admin_id}\" selected"))
    );

    // Single sign-on itself still works for everyone.
    w.idp.next("sub-dora", Some("dora@example.org"), true).await;
    let http = browser(false);
    let r = w.press(&http, "Sign in with Test IdP").await;
    assert_eq!(r.url().path(), "/");
    assert_eq!(w.audits("signin.sso").await[0].0, Some(dora));

    // The last provider cannot be removed while single sign-on is required.
    let id: Uuid = sqlx::query_scalar("SELECT id FROM sso_providers")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    let r = w
        .admin
        .post(&format!("/settings/sso/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, 409);

    let required = w.audits("signin.sso_required").await;
    assert_eq!(required.len(), 2);
    assert_eq!(required[1].0, Some(dora));
    let policies = w.audits("district.sso_policy").await;
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[1].2["require_for_admins"], true);
    assert_eq!(policies[1].2["break_glass_user"], admin_id.to_string());
}

#[sqlx::test(migrations = "./migrations")]
async fn provider_settings_are_checked_sealed_and_audited(pool: PgPool) {
    let w = World::new(pool).await;
    // An issuer with no discovery document is refused at once.
    let r = w
        .admin
        .post(
            "/settings/sso",
            &[
                ("label", "Nowhere"),
                ("issuer_url", "http://127.0.0.1:9"),
                ("client_id", "x"),
                ("client_secret", "s3cret-value"),
                ("domains", "example.org"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("discovery document could not be read"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("s3cret-value"));

    let id = w
        .provider(
            "Sign in with Test IdP",
            "rollcall",
            "Example.org, @staff.example.org",
        )
        .await;
    let (sealed, domains): (Vec<u8>, Vec<String>) = sqlx::query_as(
        "SELECT client_secret_sealed, allowed_domains FROM sso_providers WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(domains, vec!["example.org", "staff.example.org"]);
    assert!(
        !sealed
            .windows(b"secret-rollcall".len())
            .any(|s| s == b"secret-rollcall"),
        "the client secret is stored sealed"
    );
    let page = w.admin.get(&format!("/settings/sso/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("secret-rollcall"));
    assert!(page.body.contains("/login/sso/callback"));

    // An empty secret keeps the stored one (a sign-in still works afterwards).
    let r = w
        .admin
        .post(
            &format!("/settings/sso/{id}"),
            &[
                ("label", "Sign in with District"),
                ("issuer_url", &w.idp.issuer),
                ("client_id", "rollcall"),
                ("client_secret", ""),
                ("domains", "example.org"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    w.app.member(w.district.id, "ann", "user", &[]).await;
    w.idp.next("sub-ann", Some("ann@example.org"), true).await;
    let http = browser(false);
    assert_eq!(
        w.press(&http, "Sign in with District").await.url().path(),
        "/account"
    );

    // A plain user may not reach the settings.
    let ann = w.app.client();
    assert_eq!(ann.sign_in("ann", PASSWORD).await.status, 303);
    assert_eq!(ann.get("/settings/sso").await.status, 403);

    let r = w
        .admin
        .post(&format!("/settings/sso/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    let page = reqwest::get(w.app.url("/login/springfield")).await.unwrap();
    assert!(!page.text().await.unwrap().contains("Sign in with District"));

    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action || ' ' || COALESCE(before::text, '') || ' ' || COALESCE(after::text, '')
         FROM audit_log WHERE district_id = $1 AND action LIKE 'district.sso%' ORDER BY id",
    )
    .bind(w.district.id)
    .fetch_all(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit[0].starts_with("district.sso_add"));
    assert!(audit[1].starts_with("district.sso_update"));
    assert!(audit[1].contains("Sign in with District"));
    assert!(audit[2].starts_with("district.sso_delete"));
    assert!(audit.iter().all(|a| !a.contains("secret-rollcall")));
    // The audit page has words for them.
    let log = w.admin.get("/audit").await;
    assert!(
        log.body.contains("Added a sign-in provider"),
        "{}",
        log.body
    );
}
