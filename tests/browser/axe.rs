//! axe-core over every main page (issue 16, item 11): each page a district admin, a teacher
//! and a signed-out visitor reach is checked in Chromium with axe-core's WCAG 2 A/AA rules,
//! and any critical or serious violation fails the test with its rule, impact and nodes.
//!
//! `axe.min.js` comes from npm (`scripts/test` installs it into `$HOME/.cache/rollcall-axe`;
//! `ROLLCALL_AXE_JS` may point at another copy) and is injected over WebDriver, so the app
//! serves no test script and its Content-Security-Policy stays as it is.

use super::*;

fn axe_source() -> String {
    let path = std::env::var("ROLLCALL_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/rollcall-axe/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing at {} ({e}): scripts/test installs it \
             (npm install --prefix $HOME/.cache/rollcall-axe axe-core)",
            path.display()
        )
    })
}

impl Browser {
    /// Runs axe-core on the page as it is and returns its critical and serious violations,
    /// one line each: rule, impact, help, and the first few offending elements.
    async fn axe_violations(&self, axe: &str) -> Vec<String> {
        self.c
            .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
            .await
            .expect("axe-core loads");
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.axe.run(document, {
                     runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
                     resultTypes: ['violations'],
                 }).then(r => done(r.violations
                     .filter(v => v.impact === 'critical' || v.impact === 'serious')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — '
                          + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + n.failureSummary.replace(/\\s+/g, ' ')).join(' | '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        found
            .as_array()
            .expect("a list of violations")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Opens `path`, waits for `text` on it, and adds its violations to `report`.
    async fn audit(&self, axe: &str, path: &str, text: &str, report: &mut Vec<String>) {
        self.goto(path).await;
        self.wait_for_text(text).await;
        for v in self.axe_violations(axe).await {
            report.push(format!("{path}: {v}"));
        }
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn every_main_page_passes_axe_core(pool: PgPool) {
    let axe = axe_source();
    let env = UploadEnv::new(pool).await;
    let seeded = seed_classes(&env).await;
    let d = env.district.id;
    // A run that waits for its columns to be mapped, and a roster connection.
    let unmapped = env
        .upload(
            "export.csv",
            "Student Number,Mail,Given,Family\n1,a@d.org,Ann,Lee\n",
        )
        .await;
    env.app.queue.drain().await.unwrap();
    let r = env
        .c
        .post("/syncs", &[("kind", "oneroster_csv"), ("name", "SIS set")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let conn = r.location.unwrap();
    let run: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM runs WHERE district_id = $1 AND file_name = 'people.csv'",
    )
    .bind(d)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    env.app.member(d, "teacher", "user", &[seeded.hs]).await;
    // A saved column mapping (issue 16, item 9), for its page.
    let mapping: uuid::Uuid = sqlx::query_scalar(
        r#"INSERT INTO header_mappings (district_id, signature, mapping, updated_by)
           VALUES ($1, 'code|given|surname',
                   '{"columns": [["Code", "CustomId"], ["Surname", "LastName"], ["Given", "FirstName"], ["Room", null]],
                     "fixed": [["Role", "Student"], ["SchoolExternalId", "HS"]]}', 'test')
           RETURNING id"#,
    )
    .bind(d)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    // A single sign-on provider (its button on the district's sign-in page).
    let sso = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sso_providers (district_id, id, label, issuer_url, client_id, client_secret_sealed, allowed_domains)
         VALUES ($1, $2, 'Sign in with Google', 'https://accounts.google.com', 'rollcall', '\\x00', '{example.org}')",
    )
    .bind(d)
    .bind(sso)
    .execute(&env.app.pool)
    .await
    .unwrap();

    let b = Browser::start(&env.app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    let mut report = Vec::new();
    b.audit(&axe, "/login", "Sign in", &mut report).await;
    let district_login = format!("/login/{}", env.district.slug);
    b.audit(&axe, &district_login, "Sign in with Google", &mut report)
        .await;
    b.audit(&axe, "/password/forgot", "Forgot password", &mut report)
        .await;
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    let pages: Vec<(String, &str)> = vec![
        ("/".into(), "Sign out"),
        ("/users".into(), "Sign out"),
        ("/users?status=archived".into(), "Sign out"),
        ("/users/new".into(), "Sign out"),
        (format!("/users/{}", seeded.ann), "Sign out"),
        (format!("/users/{}", seeded.cal), "Sign out"),
        ("/classes".into(), "Sign out"),
        (format!("/classes/{}", seeded.algebra), "Sign out"),
        ("/schools".into(), "Sign out"),
        (format!("/schools/{}", seeded.ms), "Sign out"),
        ("/uploads".into(), "Sign out"),
        (format!("/uploads/{run}"), "Sign out"),
        (format!("/uploads/{unmapped}/map"), "Sign out"),
        ("/uploads/fields".into(), "Sign out"),
        ("/uploads/mappings".into(), "Sign out"),
        (format!("/uploads/mappings/{mapping}"), "Sign out"),
        ("/syncs".into(), "Sign out"),
        (conn.clone(), "Sign out"),
        ("/audit".into(), "Sign out"),
        ("/settings".into(), "Sign out"),
        ("/settings/alerts".into(), "Sign out"),
        ("/settings/sso".into(), "Sign out"),
        (format!("/settings/sso/{sso}"), "Sign out"),
        ("/account".into(), "Sign out"),
        ("/account/password".into(), "Sign out"),
        ("/account/mfa".into(), "Sign out"),
        ("/account/sessions".into(), "Sign out"),
        ("/settings/mfa".into(), "Sign out"),
        ("/nowhere".into(), "Not Found"),
    ];
    for (path, text) in &pages {
        b.audit(&axe, path, text, &mut report).await;
    }
    b.goto("/account").await;
    b.wait_for_text("Sign out").await;
    b.click("form.signout button").await;
    b.wait_for_text("Sign in").await;
    // A member who is no admin: their own pages and a 403.
    b.sign_in("teacher", PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.audit(&axe, "/account", "My account", &mut report).await;
    b.audit(&axe, "/uploads", "Forbidden", &mut report).await;
    b.close().await;
    assert!(
        report.is_empty(),
        "axe-core found {} critical/serious violation(s):\n{}",
        report.len(),
        report.join("\n")
    );
}
