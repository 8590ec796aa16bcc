//! The Users screen and the account lifecycle (issue 3).

use crate::helpers::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// A user straight into the database (with school memberships).
#[allow(clippy::too_many_arguments)]
async fn insert_user(
    app: &TestApp,
    district: Uuid,
    first: &str,
    last: &str,
    role: &str,
    custom_id: Option<&str>,
    schools: &[Uuid],
) -> Uuid {
    let id = Uuid::new_v4();
    let username = format!("{}.{}.{}", first, last, &id.simple().to_string()[..6]).to_lowercase();
    sqlx::query(
        "INSERT INTO users (district_id, id, custom_id, email, username, first_name, last_name, role, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'file:users.csv')",
    )
    .bind(district)
    .bind(id)
    .bind(custom_id)
    .bind(format!("{username}@example.org"))
    .bind(&username)
    .bind(first)
    .bind(last)
    .bind(role)
    .execute(&app.pool)
    .await
    .expect("user");
    for s in schools {
        sqlx::query(
            "INSERT INTO user_schools (district_id, user_id, school_id) VALUES ($1, $2, $3)",
        )
        .bind(district)
        .bind(id)
        .bind(s)
        .execute(&app.pool)
        .await
        .expect("membership");
    }
    id
}

/// HTML entities back to text (named and numeric, as askama writes them).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The users a list page links to, in page order.
fn listed(body: &str) -> Vec<Uuid> {
    body.match_indices("<td><a href=\"/users/")
        .filter_map(|(i, m)| {
            let rest = &body[i + m.len()..];
            Uuid::parse_str(rest.get(..36)?).ok()
        })
        .collect()
}

/// The href of the link with `rel="…"` (Next / Previous).
fn rel_link(body: &str, rel: &str) -> Option<String> {
    let marker = format!("\" rel=\"{rel}\"");
    let end = body.find(&marker)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&body[start..end]))
}

/// Every page of a list from `first`, following its Next links: each page's users and body.
/// Each page must answer 200, and all together list at most `max_rows` users.
async fn follow_pages(c: &Client, first: &str, max_rows: usize) -> Vec<(Vec<Uuid>, String)> {
    let mut out: Vec<(Vec<Uuid>, String)> = Vec::new();
    let mut rows = 0;
    let mut next = Some(first.to_string());
    while let Some(path) = next {
        let page = c.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        let ids = listed(&page.body);
        rows += ids.len();
        assert!(rows <= max_rows, "{first}: more than {max_rows} rows");
        next = rel_link(&page.body, "next");
        out.push((ids, page.body));
    }
    out
}

/// Previous from the last of several pages gives the page before it again.
async fn previous_of_last_page(c: &Client, pages: &[(Vec<Uuid>, String)], what: &str) {
    if let [.., before, last] = pages {
        let prev = rel_link(&last.1, "prev").expect("Previous");
        assert_eq!(listed(&c.get(&prev).await.body), before.0, "{what}");
    }
}

/// The users of all those pages, in order.
fn all_rows(pages: &[(Vec<Uuid>, String)]) -> Vec<Uuid> {
    pages.iter().flat_map(|p| p.0.iter().copied()).collect()
}

fn secret(body: &str) -> String {
    let start = body
        .find("<code class=\"secret big\">")
        .expect("password shown")
        + "<code class=\"secret big\">".len();
    let end = body[start..].find('<').unwrap();
    body[start..start + end].to_string()
}

async fn audit(app: &TestApp, user: Uuid) -> Vec<(String, Option<Value>, Option<Value>)> {
    sqlx::query_as("SELECT action, before, after FROM audit_log WHERE entity_id = $1 ORDER BY id")
        .bind(user)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn signed_in_admin(app: &TestApp, d: &District) -> Client {
    let c = app.client();
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303
    );
    c
}

#[sqlx::test(migrations = "./migrations")]
async fn admins_land_on_users_and_the_list_marks_inactive_users(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let t = app.member(d.id, "teacher1", "user", &[north]).await;
    sqlx::query("UPDATE users SET status = 'inactive' WHERE id = $1")
        .bind(t)
        .execute(&app.pool)
        .await
        .unwrap();
    let c = signed_in_admin(&app, &d).await;
    // The landing page is the district's home page (issue 14).
    let home = c.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Needs attention"), "{}", home.body);
    let page = c.get("/users").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("2 users"), "{}", page.body);
    assert!(page.body.contains("class=\"user-inactive\""));
    assert!(page.body.contains("North Elementary"));
    assert!(
        page.body
            .contains("data-confirm=\"Make Test teacher1 active again?")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn toggle_archive_restore_are_audited_and_end_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let t = app.member(d.id, "teacher1", "user", &[north]).await;
    let admin = signed_in_admin(&app, &d).await;
    let teacher = app.client();
    assert_eq!(teacher.sign_in("teacher1", PASSWORD).await.status, 303);
    assert_eq!(teacher.get("/account").await.status, 200);

    // Inactive: the open session ends and sign-in is refused.
    let r = admin
        .post(
            &format!("/users/{t}/status"),
            &[("status", "inactive"), ("back", "/users?role=Teacher")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/users?role=Teacher"));
    assert_eq!(
        teacher.get("/account").await.location.as_deref(),
        Some("/login")
    );
    let refused = app.client().sign_in("teacher1", PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("inactive"));
    // Clicking again changes nothing and writes nothing.
    admin
        .post(&format!("/users/{t}/status"), &[("status", "inactive")])
        .await;
    // An open redirect is not possible through `back`.
    let evil = admin
        .post(
            &format!("/users/{t}/status"),
            &[("status", "active"), ("back", "https://evil.example/")],
        )
        .await;
    assert_eq!(evil.location, Some(format!("/users/{t}")));
    assert_eq!(app.client().sign_in("teacher1", PASSWORD).await.status, 303);

    // Archive: gone from the lists, refused at sign-in, GUID and history kept.
    assert_eq!(
        admin.post(&format!("/users/{t}/archive"), &[]).await.status,
        303
    );
    assert!(!listed(&admin.get("/users").await.body).contains(&t));
    assert!(!listed(&admin.get("/users?q=teacher1").await.body).contains(&t));
    assert!(listed(&admin.get("/users?status=archived").await.body).contains(&t));
    let refused = app.client().sign_in("teacher1", PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("archived"));
    let page = admin.get(&format!("/users/{t}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("This user is archived"));
    assert!(page.body.contains(">Restore</button>"));

    assert_eq!(
        admin.post(&format!("/users/{t}/restore"), &[]).await.status,
        303
    );
    assert!(listed(&admin.get("/users").await.body).contains(&t));
    assert_eq!(app.client().sign_in("teacher1", PASSWORD).await.status, 303);

    let entries = audit(&app, t).await;
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.deactivate",
            "user.activate",
            "user.archive",
            "user.restore"
        ]
    );
    assert_eq!(entries[0].1, Some(json!({"status": "Active"})));
    assert_eq!(entries[0].2, Some(json!({"status": "Inactive"})));
    assert_eq!(entries[2].2, Some(json!({"archived": true})));
    assert_eq!(entries[3].2, Some(json!({"archived": false})));
    let page = admin.get(&format!("/users/{t}")).await;
    for what in [
        "Made inactive",
        "Made active",
        "Archived",
        "Restored",
        "Manual edit",
    ] {
        assert!(page.body.contains(what), "history shows {what}");
    }
    // An admin cannot lock themselves out.
    let me: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&d.admin_email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        admin
            .post(&format!("/users/{me}/status"), &[("status", "inactive")])
            .await
            .status,
        409
    );
    assert_eq!(
        admin
            .post(&format!("/users/{me}/archive"), &[])
            .await
            .status,
        409
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn temporary_passwords_work_once_expire_and_reset(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let north_s = north.to_string();
    let admin = signed_in_admin(&app, &d).await;
    let add = |first: &'static str, email: &'static str| {
        let admin = &admin;
        let north_s = north_s.clone();
        async move {
            admin
                .post(
                    "/users",
                    &[
                        ("first_name", first),
                        ("last_name", "Doe"),
                        ("role", "Teacher"),
                        ("email", email),
                        ("schools", &north_s),
                        ("active", "1"),
                        ("prevent_archiving", "1"),
                    ],
                )
                .await
        }
    };
    let created = add("Jane", "jane@alpha.org").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let temp = secret(&created.body);
    assert_eq!(temp.len(), 14);
    let (source, prevent, temporary, username): (String, bool, bool, String) = sqlx::query_as(
        "SELECT source, prevent_archiving, password_temporary, username FROM users WHERE email = 'jane@alpha.org'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (source.as_str(), prevent, temporary),
        ("manual", true, true)
    );
    assert_eq!(username, "jane.doe", "generated from the name");

    // First sign-in forces a change; the temporary password then stops working.
    let jane = app.client();
    let s = jane.sign_in("jane@alpha.org", &temp).await;
    assert_eq!(s.location.as_deref(), Some("/account/password"));
    assert_eq!(
        jane.get("/account").await.location.as_deref(),
        Some("/account/password")
    );
    let changed = jane
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "my-own-secret-9"),
                ("confirm", "my-own-secret-9"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        app.client().sign_in("jane@alpha.org", &temp).await.status,
        401
    );
    assert_eq!(
        app.client()
            .sign_in("jane@alpha.org", "my-own-secret-9")
            .await
            .status,
        303
    );

    // Unused for more than 90 days, a temporary password expires.
    let created = add("John", "john@alpha.org").await;
    let old_temp = secret(&created.body);
    app.clock.advance(time::Duration::days(91));
    let expired = app.client().sign_in("john@alpha.org", &old_temp).await;
    assert_eq!(expired.status, 403);
    assert!(expired.body.contains("expired"));

    // An admin reset gives a new one (shown once) that works, and the old one does not.
    let john: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'john@alpha.org'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let admin2 = signed_in_admin(&app, &d).await; // the first session idled out
    let reset = admin2.post(&format!("/users/{john}/password"), &[]).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let new_temp = secret(&reset.body);
    assert_ne!(new_temp, old_temp);
    assert_eq!(
        app.client()
            .sign_in("john@alpha.org", &old_temp)
            .await
            .status,
        401
    );
    let s = app.client().sign_in("john@alpha.org", &new_temp).await;
    assert_eq!(s.location.as_deref(), Some("/account/password"));

    let entries = audit(&app, john).await;
    assert_eq!(entries.last().unwrap().0, "user.password_reset");
    let all = serde_json::to_string(&entries).unwrap();
    assert!(
        !all.contains("tmp-sha256") && !all.contains("argon2"),
        "no hashes in the audit log"
    );
    assert!(
        !all.contains(&new_temp) && !all.contains(&old_temp),
        "no passwords either"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn school_admin_sees_and_changes_only_their_schools(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let south = app.school(d.id, "S1", "South Elementary").await;
    app.member(d.id, "principal", "school_admin", &[north])
        .await;
    let a = insert_user(&app, d.id, "Ann", "North", "Student", Some("A1"), &[north]).await;
    let b = insert_user(&app, d.id, "Bob", "South", "Student", Some("B1"), &[south]).await;
    let both = insert_user(
        &app,
        d.id,
        "Cy",
        "Both",
        "Teacher",
        Some("C1"),
        &[north, south],
    )
    .await;
    let boss = app.member(d.id, "boss", "district_admin", &[north]).await;
    let c = app.client();
    assert_eq!(
        c.sign_in("principal", PASSWORD).await.location.as_deref(),
        Some("/")
    );
    // A school admin lands on their schools' home page (issue 14).
    let home = c.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("Users per school and role"),
        "{}",
        home.body
    );

    let ids = listed(&c.get("/users").await.body);
    assert!(ids.contains(&a) && ids.contains(&both) && !ids.contains(&b));
    assert!(
        !c.get("/users").await.body.contains("South Elementary"),
        "only their schools' names"
    );

    // Outside their schools: 404 on every route.
    let bs = b.to_string();
    assert_eq!(c.get(&format!("/users/{b}")).await.status, 404);
    assert_eq!(
        c.post(
            &format!("/users/{b}"),
            &[("first_name", "X"), ("version", "1")]
        )
        .await
        .status,
        404
    );
    for action in ["status", "archive", "restore", "password"] {
        let r = c
            .post(&format!("/users/{b}/{action}"), &[("status", "inactive")])
            .await;
        assert_eq!(r.status, 404, "{action}");
    }
    assert_eq!(c.get(&format!("/users?school={south}")).await.status, 200);
    assert!(listed(&c.get(&format!("/users?q=Bob&school={south}")).await.body).is_empty());

    // Their own users: editable, but only with their own schools.
    let version: i64 = sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
        .bind(a)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let v = version.to_string();
    let (n, s) = (north.to_string(), south.to_string());
    let bad = c
        .post(
            &format!("/users/{a}"),
            &[
                ("first_name", "Ann"),
                ("last_name", "North"),
                ("role", "Student"),
                ("custom_id", "A1"),
                ("schools", &n),
                ("schools", &s),
                ("active", "1"),
                ("version", &v),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("You can only assign your own schools."));
    let grant = c
        .post(
            &format!("/users/{a}"),
            &[
                ("first_name", "Ann"),
                ("last_name", "North"),
                ("role", "Student"),
                ("custom_id", "A1"),
                ("schools", &n),
                ("portal_role", "district_admin"),
                ("active", "1"),
                ("version", &v),
            ],
        )
        .await;
    assert_eq!(grant.status, 422);
    assert!(
        grant
            .body
            .contains("Only district admins can give or remove admin rights.")
    );
    let ok = c
        .post(
            &format!("/users/{a}"),
            &[
                ("first_name", "Annie"),
                ("last_name", "North"),
                ("role", "Student"),
                ("custom_id", "A1"),
                ("schools", &n),
                ("grade", "5"),
                ("active", "1"),
                ("version", &v),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // Editing a two-school user keeps the school they cannot see.
    let vb: i64 = sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
        .bind(both)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let vb = vb.to_string();
    let ok = c
        .post(
            &format!("/users/{both}"),
            &[
                ("first_name", "Cy"),
                ("last_name", "Both"),
                ("role", "Teacher"),
                ("custom_id", "C1"),
                ("email", "cy@alpha.org"),
                ("schools", &n),
                ("active", "1"),
                ("version", &vb),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let schools: i64 = sqlx::query_scalar("SELECT count(*) FROM user_schools WHERE user_id = $1")
        .bind(both)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(schools, 2);

    // Creating: only their schools.
    let r = c
        .post(
            "/users",
            &[
                ("first_name", "New"),
                ("last_name", "Kid"),
                ("role", "Student"),
                ("custom_id", "N9"),
                ("schools", &s),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    let r = c
        .post(
            "/users",
            &[
                ("first_name", "New"),
                ("last_name", "Kid"),
                ("role", "Student"),
                ("custom_id", "N9"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Admin accounts in their school are visible but not theirs to change.
    assert_eq!(c.get(&format!("/users/{boss}")).await.status, 200);
    assert_eq!(
        c.post(&format!("/users/{boss}/status"), &[("status", "inactive")])
            .await
            .status,
        403
    );
    assert_eq!(
        c.post(&format!("/users/{boss}/password"), &[]).await.status,
        403
    );

    // Their CSV holds their schools' users only.
    let csv = c.get("/users.csv").await.body;
    assert!(csv.contains(&a.to_string()) && csv.contains(&both.to_string()));
    assert!(!csv.contains(&bs));
    let status: String = sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
        .bind(b)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "active", "nothing changed outside their schools");
}

#[sqlx::test(migrations = "./migrations")]
async fn another_districts_user_answers_404_on_every_route(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.district("alpha").await;
    let b = app.district("beta").await;
    let b_school = app.school(b.id, "B1", "Beta High").await;
    let victim = insert_user(
        &app,
        b.id,
        "Vic",
        "Beta",
        "Teacher",
        Some("V1"),
        &[b_school],
    )
    .await;
    let c = signed_in_admin(&app, &a).await;
    assert_eq!(c.get(&format!("/users/{victim}")).await.status, 404);
    let edit = c
        .post(
            &format!("/users/{victim}"),
            &[
                ("first_name", "Hacked"),
                ("last_name", "X"),
                ("role", "Teacher"),
                ("email", "h@x.org"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(edit.status, 404);
    for action in ["status", "archive", "restore", "password"] {
        let r = c
            .post(
                &format!("/users/{victim}/{action}"),
                &[("status", "inactive")],
            )
            .await;
        assert_eq!(r.status, 404, "{action}");
        assert!(!r.body.contains("Vic"));
    }
    assert_eq!(c.get("/users/not-a-guid").await.status, 404);
    assert_eq!(
        c.get(&format!("/users/{}", Uuid::new_v4())).await.status,
        404
    );
    assert!(!c.get("/users.csv").await.body.contains(&victim.to_string()));
    assert!(listed(&c.get("/users?q=Vic").await.body).is_empty());
    let (name, status, archived, n): (String, String, bool, i64) = sqlx::query_as(
        "SELECT first_name, status, archived_at IS NOT NULL, (SELECT count(*) FROM audit_log WHERE entity_id = $1) FROM users WHERE id = $1",
    )
    .bind(victim)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), status.as_str(), archived, n),
        ("Vic", "active", false, 0)
    );
}

/// The master CSV reads its users in batches and looks each batch's schools up while the next
/// batch is read: across several batches every row keeps its place in name order and its
/// own schools, in their external IDs' order (checked against one SQL query that does both).
#[sqlx::test(migrations = "./migrations")]
async fn master_csv_of_several_batches_keeps_each_users_schools_and_the_name_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    // External IDs whose order is not the order they were added in.
    for (external_id, name) in [("S10", "Ten"), ("S2", "Two"), ("A9", "Nine")] {
        app.school(d.id, external_id, name).await;
    }
    // 4,500 users (more than two batches), with repeated names so the id breaks ties; a
    // user has none, one, two or three schools.
    sqlx::query(
        "INSERT INTO users (district_id, id, username, first_name, last_name, role, source)
         SELECT $1, gen_random_uuid(), 'u' || g, 'F' || (g % 7), 'L' || (g % 13), 'Student', 'file:users.csv'
         FROM generate_series(1, 4500) g",
    )
    .bind(d.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO user_schools (district_id, user_id, school_id)
         SELECT u.district_id, u.id, s.id
         FROM users u JOIN schools s ON s.district_id = u.district_id
         WHERE u.district_id = $1 AND u.username LIKE 'u%'
           AND (substr(u.username, 2)::int % 4) > (CASE s.external_id WHEN 'S2' THEN 0 WHEN 'A9' THEN 1 ELSE 2 END)",
    )
    .bind(d.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let expected: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.id::text,
                coalesce((SELECT string_agg(s.external_id, ';' ORDER BY s.external_id)
                            FROM user_schools us JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
                           WHERE us.district_id = u.district_id AND us.user_id = u.id), '')
         FROM users u WHERE u.district_id = $1 AND u.archived_at IS NULL
         ORDER BY u.last_name, u.first_name, u.id",
    )
    .bind(d.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(expected.len(), 4501, "the admin and 4,500 users");
    assert!(expected.iter().any(|(_, s)| s.split(';').count() == 3));
    let c = signed_in_admin(&app, &d).await;
    let body = c.get("/users.csv").await.body;
    let got: Vec<(String, String)> =
        csv::Reader::from_reader(body.trim_start_matches('\u{feff}').as_bytes())
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[8].to_string())
            })
            .collect();
    let district_ext: Option<String> =
        sqlx::query_scalar("SELECT external_id FROM districts WHERE id = $1")
            .bind(d.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(id, s)| match (s.is_empty(), &district_ext) {
            // A user with no school carries the district's own ID.
            (true, Some(ext)) => (id, ext.clone()),
            _ => (id, s),
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "rows or schools differ from the SQL's listing"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn master_csv_is_every_live_user_neutralised_and_filterable(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let south = app.school(d.id, "S1", "South Elementary").await;
    let formula = insert_user(
        &app,
        d.id,
        "=HYPERLINK(\"x\")",
        "Evil",
        "Student",
        Some("+1"),
        &[north],
    )
    .await;
    let two = insert_user(
        &app,
        d.id,
        "Two",
        "Schools",
        "Teacher",
        Some("T2"),
        &[north, south],
    )
    .await;
    let gone = insert_user(&app, d.id, "Gone", "Away", "Student", Some("G1"), &[north]).await;
    let off = insert_user(&app, d.id, "Off", "Line", "Staff", Some("O1"), &[south]).await;
    sqlx::query("UPDATE users SET archived_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET status = 'inactive' WHERE id = $1")
        .bind(off)
        .execute(&app.pool)
        .await
        .unwrap();
    let c = signed_in_admin(&app, &d).await;

    let r = c
        .http
        .get(format!("{}/users.csv", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition, "attachment; filename=\"alpha-users.csv\"",
        "a stable name: the master file keeps one source key"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = r.bytes().await.unwrap();
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("UTF-8 with a BOM, for Excel");
    let mut reader = csv::Reader::from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, rollcall::reconcile::report::MASTER_HEADER);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let guids: HashSet<Uuid> = records
        .iter()
        .map(|r| Uuid::parse_str(&r[0]).unwrap())
        .collect();
    let expected: HashSet<Uuid> =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND archived_at IS NULL")
            .bind(d.id)
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(guids, expected);
    assert_eq!(records.len(), 4, "admin, formula, two, off");
    assert!(!guids.contains(&gone));
    let evil = records
        .iter()
        .find(|r| r[0] == formula.to_string())
        .unwrap();
    assert_eq!(&evil[4], "'=HYPERLINK(\"x\")");
    assert_eq!(&evil[1], "'+1");
    let t = records.iter().find(|r| r[0] == two.to_string()).unwrap();
    assert_eq!(&t[8], "N1;S1");
    let o = records.iter().find(|r| r[0] == off.to_string()).unwrap();
    assert_eq!(&o[11], "Inactive");

    // Filtered: the same URL with the list's filters.
    let page = c.get("/users?status=inactive").await;
    assert!(page.body.contains("href=\"/users.csv?status=inactive\""));
    let filtered = c.get("/users.csv?status=inactive").await.body;
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(filtered.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], off.to_string());
    let by_school = c
        .get(&format!("/users.csv?school={south}&role=Teacher"))
        .await
        .body;
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(by_school.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], two.to_string());
}

#[sqlx::test(migrations = "./migrations")]
async fn search_filters_and_keyset_pages(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let south = app.school(d.id, "S1", "South Elementary").await;
    // 120 users, many with the same last name (the sort key needs its id tie-break).
    sqlx::query(
        "INSERT INTO users (district_id, id, custom_id, email, username, first_name, last_name, role, grade, status, source)
         SELECT $1, gen_random_uuid(), 'ID' || lpad(g::text, 4, '0'), 'user' || g || '@alpha.org', 'user' || g,
                (ARRAY['Ann', 'Bob', 'Cat', 'Dan'])[1 + g % 4], (ARRAY['Smith', 'Jones', 'Blacksmith'])[1 + g % 3],
                CASE WHEN g % 10 = 0 THEN 'Teacher' ELSE 'Student' END,
                CASE WHEN g % 10 = 0 THEN 'Unspecified' ELSE (1 + g % 12)::text END,
                CASE WHEN g % 7 = 0 THEN 'inactive' ELSE 'active' END,
                CASE WHEN g % 2 = 0 THEN 'file:even.csv' ELSE 'file:odd.csv' END
         FROM generate_series(1, 120) g",
    )
    .bind(d.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO user_schools (district_id, user_id, school_id)
         SELECT district_id, id, CASE WHEN substr(username, 5)::int % 3 = 0 THEN $2 ELSE $3 END
         FROM users WHERE district_id = $1 AND username LIKE 'user%'",
    )
    .bind(d.id)
    .bind(south)
    .bind(north)
    .execute(&app.pool)
    .await
    .unwrap();
    let c = signed_in_admin(&app, &d).await;
    let all: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE district_id = $1 AND archived_at IS NULL ORDER BY last_name, first_name, id",
    )
    .bind(d.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(all.len(), 121, "120 and the admin");

    // Keyset pages: 50 + 50 + 21, in order, no duplicates, no gaps; Previous goes back.
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut next = Some("/users".to_string());
    while let Some(path) = next {
        let page = c.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("121 users"));
        let ids = listed(&page.body);
        seen.extend(ids.clone());
        pages.push((path, ids, page.body.clone()));
        next = rel_link(&page.body, "next");
        assert!(pages.len() < 10);
    }
    assert_eq!(
        pages.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
        [50, 50, 21]
    );
    assert_eq!(seen, all, "every user once, in name order");
    assert!(
        pages[1].0.contains("after="),
        "keyset cursor, not an offset"
    );
    let prev = rel_link(&pages[2].2, "prev").expect("Previous on page 3");
    assert_eq!(listed(&c.get(&prev).await.body), pages[1].1);
    let prev = rel_link(&pages[1].2, "prev").expect("Previous on page 2");
    let first = c.get(&prev).await;
    assert_eq!(listed(&first.body), pages[0].1);
    assert!(
        rel_link(&first.body, "prev").is_none(),
        "nothing before the first page"
    );
    assert_eq!(c.get("/users?after=garbage").await.status, 400);

    // Other sort orders page the same way.
    for (sort, order_by) in [
        ("username&dir=desc", "lower(username) DESC"),
        ("custom_id", "coalesce(custom_id, ''), id"),
        ("grade", "grade_rank(grade), last_name, first_name, id"),
        (
            "role&dir=desc",
            "role DESC, last_name DESC, first_name DESC, id DESC",
        ),
        ("updated", "updated_at DESC, id DESC"),
    ] {
        let expected: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE district_id = $1 AND archived_at IS NULL ORDER BY {order_by}"
        ))
        .bind(d.id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let got = all_rows(
            &follow_pages(&c, &format!("/users?sort={sort}&per=40"), expected.len()).await,
        );
        assert_eq!(got, expected, "sort {sort}");
    }

    // Search and filters return exactly the right users.
    let check = |query: &'static str, condition: &'static str| {
        let (c, app) = (&c, &app);
        async move {
            let mut expected: Vec<Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM users u WHERE district_id = $1 AND {condition}"
            ))
            .bind(d.id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
            let mut got = all_rows(&follow_pages(c, &format!("/users?{query}"), usize::MAX).await);
            let unique: HashSet<Uuid> = got.iter().copied().collect();
            assert_eq!(unique.len(), got.len(), "{query}: no duplicates");
            got.sort();
            expected.sort();
            assert!(
                !expected.is_empty() || condition == "false",
                "{query} selects someone"
            );
            assert_eq!(got, expected, "{query}");
        }
    };
    check("q=SMI", "archived_at IS NULL AND last_name ILIKE '%smi%'").await;
    check(
        "q=ann+black",
        "archived_at IS NULL AND first_name = 'Ann' AND last_name = 'Blacksmith'",
    )
    .await;
    check("q=ID001", "archived_at IS NULL AND custom_id LIKE 'ID001%'").await;
    check(
        "q=user7%40alpha",
        "archived_at IS NULL AND email = 'user7@alpha.org'",
    )
    .await;
    check("q=100%25", "false").await; // a literal %, not a wildcard: matches nobody
    check(
        "status=inactive",
        "archived_at IS NULL AND status = 'inactive'",
    )
    .await;
    check(
        "status=active&role=Teacher",
        "archived_at IS NULL AND status = 'active' AND role = 'Teacher'",
    )
    .await;
    check(
        "grade=5",
        "archived_at IS NULL AND role = 'Student' AND grade = '5'",
    )
    .await;
    check(
        "source=file%3Aeven.csv",
        "archived_at IS NULL AND source = 'file:even.csv'",
    )
    .await;
    let school_q: &'static str = Box::leak(format!("school={south}&role=Student").into_boxed_str());
    check(
        school_q,
        "archived_at IS NULL AND role = 'Student' AND EXISTS (SELECT 1 FROM user_schools s WHERE s.user_id = u.id AND s.school_id IN (SELECT id FROM schools WHERE external_id = 'S1'))",
    )
    .await;
    let page = c.get("/users?status=inactive&role=Student").await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND status = 'inactive' AND role = 'Student'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(page.body.contains(&format!("{n} users")));
    assert!(page.body.contains("<option value=\"inactive\" selected>"));
}

/// Districts alpha and beta, each given the users `insert` makes (`$1`: the district).
async fn alpha_and_beta(app: &TestApp, insert: &str) -> (District, District) {
    let d = app.district("alpha").await;
    let other = app.district("beta").await;
    for district in [d.id, other.id] {
        sqlx::query(insert)
            .bind(district)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    (d, other)
}

/// What a search in `q` should list, in order: asked of PostgreSQL directly.
async fn expected_matches(
    app: &TestApp,
    district: Uuid,
    term: &str,
    status: &str,
    desc: bool,
) -> Vec<Uuid> {
    let dir = if desc { " DESC" } else { "" };
    sqlx::query_scalar(&format!(
        "SELECT id FROM users WHERE district_id = $1 AND {status}
           AND strpos(search_text, search_fold($2)) > 0
         ORDER BY last_name{dir}, first_name{dir}, id{dir}"
    ))
    .bind(district)
    .bind(term)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// A large district's searches are answered from its in-memory index (src/search) — the same
/// pages, in the same order, as PostgreSQL gives — and a change to its users, made any way at
/// all (here: plain SQL), is never hidden by an index read before it.
#[sqlx::test(migrations = "./migrations")]
async fn a_large_districts_search_comes_from_its_index_and_is_never_stale(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.search_index_min_users = 1_000).await;
    let (d, other) = alpha_and_beta(
        &app,
        "INSERT INTO users (district_id, id, custom_id, email, username, first_name, last_name, role, status, source, archived_at)
             SELECT $1, gen_random_uuid(), 'S' || lpad(g::text, 6, '0'),
                    'u' || g || '@alpha.org', 'user' || g,
                    (ARRAY['Alexander', 'Ana', 'William', 'Liam', 'Zoë', 'Søren', 'Mia'])[1 + g % 7],
                    (ARRAY['Anderson', 'Williams', 'Adams', 'Núñez', 'Li', 'Sanders'])[1 + (g / 7) % 6] || (g % 13),
                    'Student', CASE WHEN g % 5 = 0 THEN 'inactive' ELSE 'active' END, 'file:s.csv',
                    CASE WHEN g % 97 = 0 THEN now() END
             FROM generate_series(1, 3000) g",
    )
    .await;
    let c = signed_in_admin(&app, &d).await;
    assert!(
        app.search.build(&app.pool, d.id, false).await.unwrap(),
        "3,000 users: indexed"
    );

    let live = "archived_at IS NULL";
    for (query, term, status, desc) in [
        ("q=ander&per=100", "ander", live, false),
        ("q=WILLIAMS&dir=desc&per=100", "williams", live, true),
        (
            "q=zoë&status=inactive",
            "zoë",
            "archived_at IS NULL AND status = 'inactive'",
            false,
        ),
        (
            "q=ams&status=active&per=200",
            "ams",
            "archived_at IS NULL AND status = 'active'",
            false,
        ),
        ("q=an&per=500", "an", live, false),
        ("q=S00012&per=3", "s00012", live, false),
        ("q=ez3+", "ez3 ", live, false),
        ("q=%25", "%", live, false),
    ] {
        let expected = expected_matches(&app, d.id, term, status, desc).await;
        let served = app.search.served();
        let pages = follow_pages(&c, &format!("/users?{query}"), expected.len()).await;
        assert_eq!(
            all_rows(&pages),
            expected,
            "{query}: every match once, in order"
        );
        // (A search known to match nobody runs no page query at all.)
        let from_index = if expected.is_empty() { 0 } else { pages.len() };
        assert_eq!(
            app.search.served() - served,
            from_index as u64,
            "{query}: every page from the index"
        );
        // The count comes from the index too (capped at 1,000 like PostgreSQL's).
        let count = match expected.len() {
            n if n > 1000 => "1,000+ users".to_string(),
            1 => "1 user".to_string(),
            n if n >= 1000 => format!("1,{:03} users", n - 1000),
            n => format!("{n} users"),
        };
        assert!(
            pages[0]
                .1
                .contains(&format!("<span class=\"count\">{count}</span>")),
            "{query}: {count}"
        );
        previous_of_last_page(&c, &pages, query).await;
        if term != "%" {
            assert!(!expected.is_empty(), "{query} finds someone");
        }
    }

    // Another district's change leaves alpha's index current.
    let sql = |q: &'static str, district: Uuid| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(q).bind(district).execute(&pool).await.unwrap();
        }
    };
    // A page, and whether the index answered it.
    let get = |path: &'static str| {
        let (c, search) = (&c, app.search.clone());
        async move {
            let before = search.served();
            let page = c.get(path).await;
            (page, search.served() > before)
        }
    };
    sql(
        "UPDATE users SET last_name = 'Aander' WHERE district_id = $1 AND username = 'user10'",
        other.id,
    )
    .await;
    assert!(
        get("/users?q=ander").await.1,
        "beta's change: alpha still from its index"
    );

    // Alpha's own changes, by plain SQL: a rename to the front of the order, a user archived,
    // a new user. The next search shows them at once (from PostgreSQL: the index is stale).
    sql(
        "UPDATE users SET last_name = 'Aander' WHERE district_id = $1 AND username = 'user2999'",
        d.id,
    )
    .await;
    sql(
        "UPDATE users SET archived_at = now() WHERE district_id = $1 AND username = 'user1'",
        d.id,
    )
    .await;
    sql(
        "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, source)
         VALUES ($1, gen_random_uuid(), 'new@alpha.org', 'newcomer', 'Xander', 'Aa', 'Student', 'manual')",
        d.id,
    )
    .await;
    let expected = expected_matches(&app, d.id, "ander", live, false).await;
    let (first_page, from_index) = get("/users?q=ander&per=100").await;
    assert!(!from_index, "a stale index answers nothing");
    assert_eq!(
        listed(&first_page.body),
        expected[..100],
        "after the changes"
    );
    // (Later pages may come from the index rebuilt meanwhile: the same either way.)
    let pages = follow_pages(&c, "/users?q=ander&per=100", expected.len()).await;
    assert_eq!(all_rows(&pages), expected, "after the changes");
    let first: Vec<String> = sqlx::query_scalar(
        "SELECT username FROM users WHERE id = ANY($1) ORDER BY last_name, first_name, id LIMIT 2",
    )
    .bind(&pages[0].0)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        first,
        ["newcomer", "user2999"],
        "the changed users lead the list"
    );

    // That search asked for a new index in the background; once it is in, searches come from
    // it again, with the changes.
    let mut rebuilt = false;
    for _ in 0..200 {
        let (page, from_index) = get("/users?q=ander&per=100").await;
        if from_index {
            assert_eq!(
                listed(&page.body),
                expected[..100],
                "rebuilt index: with the changes"
            );
            rebuilt = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(rebuilt, "the index was rebuilt in the background");
    // Status changes make it stale as well; other column changes (a password) do not.
    sql(
        "UPDATE users SET password_set_at = now() WHERE district_id = $1",
        d.id,
    )
    .await;
    assert!(get("/users?q=ander").await.1, "no search field changed");
    sql(
        "UPDATE users SET status = 'inactive' WHERE district_id = $1 AND username = 'newcomer'",
        d.id,
    )
    .await;
    let (active, from_index) = get("/users?q=ander&status=active&per=100").await;
    assert!(!from_index, "status changed: stale");
    let expected = expected_matches(
        &app,
        d.id,
        "ander",
        "archived_at IS NULL AND status = 'active'",
        false,
    )
    .await;
    assert_eq!(
        listed(&active.body),
        expected[..100],
        "the newly inactive user is not among the active"
    );
}

/// A search that matches many users reads a stretch of its sort order and, when that holds
/// no full page, looks the rest up through the trigram index; one that matches few is looked
/// up at once (src/db/user_list.rs, `SEARCH_WALK_*`, `SEARCH_LOOKUP_MAX`). With matches near
/// the start, in the middle and at the far end of 45,000 users, every order and direction
/// still pages through exactly the matching users, once each, in order.
#[sqlx::test(migrations = "./migrations")]
async fn a_search_finds_matches_beyond_the_stretch_it_walks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (d, _beta) = alpha_and_beta(
        &app,
        "INSERT INTO users (district_id, id, custom_id, email, username, first_name, last_name, role, status, source, archived_at)
             SELECT $1, gen_random_uuid(), 'C' || lpad(g::text, 5, '0'),
                    CASE WHEN g > 44990 THEN 'qqzk' ELSE 'u' END || g || '@alpha.org', 'u' || lpad(g::text, 5, '0'),
                    CASE WHEN g IN (3, 17) OR g BETWEEN 12000 AND 13100 OR g > 44900 THEN 'Wxqa' ELSE 'Fay' END,
                    'L' || lpad(g::text, 5, '0'), 'Student',
                    CASE WHEN g % 9 = 0 THEN 'inactive' ELSE 'active' END, 'file:s.csv',
                    CASE WHEN g IN (12005, 44950, 44995) THEN now() END
             FROM generate_series(1, 45000) g",
    )
    .await;
    sqlx::query("ANALYZE users")
        .execute(&app.pool)
        .await
        .unwrap();
    let c = signed_in_admin(&app, &d).await;
    for (query, term, order_by) in [
        ("q=WXQ&per=200", "wxq", "last_name, first_name, id"),
        (
            "q=wxq&dir=desc&per=200",
            "wxq",
            "last_name DESC, first_name DESC, id DESC",
        ),
        ("q=wxqa&sort=username&per=200", "wxq", "lower(username)"),
        (
            "q=Wxq&sort=username&dir=desc&per=200",
            "wxq",
            "lower(username) DESC",
        ),
        (
            "q=wxq&status=active&per=200",
            "wxq",
            "last_name, first_name, id",
        ),
        ("q=wxq&status=archived", "wxq", "last_name, first_name, id"),
        (
            "q=wxq&sort=updated&per=200",
            "wxq",
            "updated_at DESC, id DESC",
        ),
        ("q=QQZK&per=3", "qqzk", "last_name, first_name, id"),
        (
            "q=qqzk&sort=username&dir=desc&per=3",
            "qqzk",
            "lower(username) DESC",
        ),
    ] {
        let status = if query.contains("archived") {
            "archived_at IS NOT NULL"
        } else if query.contains("active") {
            "archived_at IS NULL AND status = 'active'"
        } else {
            "archived_at IS NULL"
        };
        let expected: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE district_id = $1 AND {status}
             AND strpos(lower(first_name || ' ' || email), $2) > 0 ORDER BY {order_by}"
        ))
        .bind(d.id)
        .bind(term)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert!(expected.len() >= 3, "{query} selects several users");
        let pages = follow_pages(&c, &format!("/users?{query}"), expected.len()).await;
        let got = all_rows(&pages);
        assert_eq!(got, expected, "{query}: every match once, in order");
        previous_of_last_page(&c, &pages, query).await;
    }
    // With a school filter every entry of the walk probes user_schools: a shorter walk, then
    // the lookup, still in order (users whose number ends in 0 are not in the school; over
    // 1,000 matches, so the page walks first).
    let school = app.school(d.id, "S1", "South").await;
    sqlx::query(
        "INSERT INTO user_schools (district_id, user_id, school_id)
         SELECT district_id, id, $2 FROM users WHERE district_id = $1 AND username LIKE 'u%' AND right(username, 1) <> '0'",
    )
    .bind(d.id)
    .bind(school)
    .execute(&app.pool)
    .await
    .unwrap();
    let expected: Vec<Uuid> = sqlx::query_scalar(
        "SELECT u.id FROM users u JOIN user_schools s ON s.user_id = u.id AND s.school_id = $2
         WHERE u.district_id = $1 AND u.archived_at IS NULL AND strpos(u.search_text, 'wxq') > 0
         ORDER BY u.last_name, u.first_name, u.id",
    )
    .bind(d.id)
    .bind(school)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        expected.len() > 1000,
        "more than SEARCH_LOOKUP_MAX: walked first"
    );
    let got = all_rows(
        &follow_pages(
            &c,
            &format!("/users?q=wxq&school={school}&per=200"),
            expected.len(),
        )
        .await,
    );
    assert_eq!(got, expected, "school filter: every match once, in order");

    // A term too short for the trigram index is walked, and still finds the far matches.
    let short: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE district_id = $1 AND archived_at IS NULL AND strpos(search_text, 'qz') > 0
         ORDER BY last_name, first_name, id",
    )
    .bind(d.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(short.len(), 9, "qqzk's users but the archived one");
    assert_eq!(
        listed(&c.get("/users?q=qz").await.body),
        short,
        "q=qz (no trigram)"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn add_user_validation_and_optimistic_concurrency(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let n = north.to_string();
    let t = app.member(d.id, "teacher1", "user", &[north]).await;
    let c = signed_in_admin(&app, &d).await;
    assert_eq!(c.get("/users/new").await.status, 200);

    let dup = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Teacher"),
                ("email", "TEACHER1@example.org"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(dup.status, 422);
    assert!(dup.body.contains(
        "<p class=\"field-error\">This email is already used by another user in the district.</p>"
    ));
    let bad = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Teacher"),
                ("email", "not-an-email"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("is not a valid email address"));
    assert!(
        bad.body.contains("value=\"not-an-email\""),
        "what was typed is kept"
    );
    let grade = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Teacher"),
                ("email", "ab@alpha.org"),
                ("grade", "5"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(grade.status, 422);
    assert!(grade.body.contains("Grade is only for students."));
    let position = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Student"),
                ("custom_id", "S1"),
                ("position", "Boss"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(position.status, 422);
    assert!(position.body.contains("Position is only for adults"));
    let missing = c.post("/users", &[("role", "Student")]).await;
    assert_eq!(missing.status, 422);
    for msg in [
        "First name is required.",
        "Last name is required.",
        "Choose at least one school.",
        "A student needs a custom ID or an email.",
    ] {
        assert!(missing.body.contains(msg), "{msg}");
    }
    let dup_id = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Student"),
                ("custom_id", "S1"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(dup_id.status, 200);
    let again = c
        .post(
            "/users",
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("role", "Student"),
                ("custom_id", "S1"),
                ("username", "a.b"),
                ("schools", &n),
            ],
        )
        .await;
    assert_eq!(again.status, 422);
    assert!(again.body.contains("This custom ID is already used"));
    assert!(again.body.contains("This username is already used"));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 3, "admin, teacher1, a.b");

    // Optimistic concurrency: the form's version is checked on save.
    let form = c.get(&format!("/users/{t}")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"version\" value=\"1\""));
    let other = app.client();
    assert_eq!(
        other
            .sign_in(&d.admin_email, &d.admin_password)
            .await
            .status,
        303
    );
    assert_eq!(
        other
            .post(&format!("/users/{t}/status"), &[("status", "inactive")])
            .await
            .status,
        303
    );
    let fields = |last: &'static str, version: &'static str| {
        vec![
            ("first_name", "Test"),
            ("last_name", last),
            ("role", "Teacher"),
            ("email", "teacher1@example.org"),
            ("username", "teacher1"),
            ("position", "Math"),
            ("active", "1"),
            ("version", version),
        ]
    };
    let mut stale = fields("Renamed", "1");
    stale.push(("schools", &n));
    let conflict = c.post(&format!("/users/{t}"), &stale).await;
    assert_eq!(conflict.status, 409);
    assert!(
        conflict
            .body
            .contains("changed by someone else since you opened the page")
    );
    let (last, status, version): (String, String, i64) =
        sqlx::query_as("SELECT last_name, status, version FROM users WHERE id = $1")
            .bind(t)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (last.as_str(), status.as_str(), version),
        ("teacher1", "inactive", 2),
        "nothing lost"
    );
    assert!(conflict.body.contains("name=\"version\" value=\"2\""));

    let mut fresh = fields("Renamed", "2");
    fresh.push(("schools", &n));
    let saved = c.post(&format!("/users/{t}"), &fresh).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let entries = audit(&app, t).await;
    let (action, before, after) = entries.last().unwrap();
    assert_eq!(action, "user.update");
    assert_eq!(
        before,
        &Some(json!({"last_name": "teacher1", "position": "", "status": "Inactive"}))
    );
    assert_eq!(
        after,
        &Some(json!({"last_name": "Renamed", "position": "Math", "status": "Active"}))
    );
    let page = c.get(&format!("/users/{t}")).await;
    assert!(
        page.body
            .contains("<del>teacher1</del> → <ins>Renamed</ins>")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn names_are_escaped(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let north = app.school(d.id, "N1", "<b>North</b>").await;
    let x = insert_user(
        &app,
        d.id,
        "<script>alert(1)</script>",
        "\"Quote'",
        "Student",
        Some("X1"),
        &[north],
    )
    .await;
    let c = signed_in_admin(&app, &d).await;
    for path in [
        "/users".to_string(),
        format!("/users/{x}"),
        "/users?q=%3Cscript".to_string(),
    ] {
        let page = c.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<script>alert(1)</script>"), "{path}");
        assert!(
            unescape(&page.body).contains("<script>alert(1)</script>"),
            "{path}"
        );
        assert!(!page.body.contains("<b>North</b>"), "{path}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn remembered_counts_follow_a_finished_run(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    app.school(d.id, "N1", "North Elementary").await;
    let c = signed_in_admin(&app, &d).await;
    assert!(c.get("/users").await.body.contains(">1 user<"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("students.csv");
    std::fs::write(
        &file,
        "custom_id,first_name,last_name,role,school_external_id\nS1,Ann,Aa,Student,N1\nS2,Bob,Bb,Student,N1\n",
    )
    .unwrap();
    let config = rollcall::config::Config::for_tests(dir.path().to_path_buf());
    rollcall::ops::import_file(
        &app.pool,
        &app.clock,
        &config,
        d.id,
        &file,
        None,
        false,
        false,
        Default::default(),
    )
    .await
    .unwrap();
    let page = c.get("/users").await;
    assert!(
        page.body.contains(">3 users<"),
        "the run's users are counted at once"
    );
    assert!(
        page.body.contains("students.csv"),
        "and its source is a filter choice"
    );
}

/// A NUL byte cannot be in PostgreSQL text: in a filter value it is taken out, not sent on to
/// fail the query (it used to answer 500).
#[sqlx::test(migrations = "./migrations")]
async fn a_filter_value_with_a_nul_byte_is_not_an_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    let c = signed_in_admin(&app, &d).await;
    for path in [
        "/users?q=adm%00in",
        "/users?q=%00",
        "/users?source=manual%00",
        "/users?role=Student%00",
        "/users.csv?q=adm%00in",
    ] {
        let page = c.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
    }
    let admin: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&d.admin_email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        listed(&c.get("/users?q=adm%00in").await.body),
        [admin],
        "the term without the NUL byte finds the admin"
    );
    // A page link whose key holds one: "not valid", not a failed query.
    use base64::Engine;
    let key = json!(["a\u{0}", "b", Uuid::nil().to_string()]).to_string();
    let link = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
    let page = c.get(&format!("/users?after={link}")).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("start from the first page"),
        "{}",
        page.body
    );
}
