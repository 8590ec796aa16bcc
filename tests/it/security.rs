//! The security suite: every route of the router (walked from `rollcall::web::routes()`, the
//! table the router is built from) against another district's ids, a school admin's
//! limits, missing and forged CSRF tokens, and anonymous callers; then cookies, sign-in
//! throttling, API tokens, formula injection in every export, HTML escaping on every page
//! that shows users, path-like upload names, and secrets kept out of the logs.

use crate::helpers::*;
use rollcall::web::{Area, RouteInfo, Verb};
use sha2::Digest;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::io::Write;
use uuid::Uuid;

const PEOPLE: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade,status\n\
                      N-1,nora@alpha.org,Nora,Northkid,Student,N1,3,Active\n\
                      S-1,sam@alpha.org,Sam,Southkid,Student,S1,4,Active\n\
                      S-2,sid@alpha.org,Sid,Southkid,Student,S1,4,Active\n";
const BETA_PEOPLE: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade,status\n\
                           B-1,bea@beta.org,Beatrix,Betamarker,Student,B1,5,Active\n\
                           B-2,bob@beta.org,Bob,Betamarker,Student,B1,5,Active\n";
/// Text of district B's objects: none of it may reach a district A page or API answer.
const BETA_MARKERS: [&str; 4] = [
    "Betamarker",
    "bea@beta.org",
    "Betamarker High",
    "Betamarker sync",
];
/// Text of the South school's objects, which a North school admin may not see.
const SOUTH_MARKERS: [&str; 3] = ["Southkid", "sam@alpha.org", "South Elementary"];

/// The objects a route's path can name, for one district: for each state-changing route,
/// one in the state that route acts on, so that every probe is a real write attempt (the
/// positive control in `every_route_answers_404_for_another_districts_objects` proves it).
#[derive(Clone, Copy, Debug)]
struct Objects {
    school: Uuid,
    /// An active student (South's, in district A), with a kept field to release.
    user: Uuid,
    /// `users.version` of `user` (an edit must name it).
    user_version: i64,
    /// An archived student (for `/users/{guid}/restore`).
    archived_user: Uuid,
    /// An applied upload (run pages, files, undo).
    run: Uuid,
    /// A run waiting in Needs review (for `/uploads/{id}/approve`).
    review_run: Uuid,
    /// Runs waiting in Needs mapping: one to map, one to dismiss, one to cancel.
    map_run: Uuid,
    mapping_run: Uuid,
    cancel_run: Uuid,
    /// A OneRoster CSV connection (settings, pause, set upload).
    sync: Uuid,
    /// A OneRoster REST connection (test, sync now).
    rest_sync: Uuid,
    /// A connection to delete.
    doomed_sync: Uuid,
    token: Uuid,
    /// A class the district admin teaches (the teacher's pages), and a student of it with
    /// no password yet (its own, so that a teacher's reset leaves `user` to the other probes).
    taught: Uuid,
    class_student: Uuid,
    /// A class at `school`, with `user` enrolled as a student.
    class: Uuid,
    /// A saved column mapping (view, edit, delete).
    mapping: Uuid,
    /// The district's slug (its sign-in page `/login/{slug}`).
    slug: &'static str,
    /// A single sign-on provider (issuer `https://sso.invalid`: saving it again with that
    /// issuer reads no discovery document).
    sso: Uuid,
}

/// What a request body refers to besides the path's object: the version of the user being
/// edited (the target's) and a school to assign (one the caller may name, so that only the
/// check under test stands between the request and a write).
#[derive(Clone, Copy)]
struct Refs {
    version: i64,
    school: Uuid,
    /// The target's user, for the bulk actions' ticked ids (a body, not a path, names them).
    user: Uuid,
}

impl Refs {
    fn of(target: &Objects, school: Uuid) -> Refs {
        Refs {
            version: target.user_version,
            school,
            user: target.user,
        }
    }
}

/// A request body as a route expects it.
enum Body {
    Form(Vec<(&'static str, String)>),
    File(&'static str, Vec<u8>),
}

/// Fills a route's path pattern with one district's objects. Panics on a placeholder it
/// does not know: a new kind of route must be taught here.
fn fill(route: &RouteInfo, o: &Objects) -> String {
    let p = route.path;
    let id = if p.starts_with("/classes/{id}") || p.starts_with("/api/v1/classes/{id}") {
        Some(o.class)
    } else if p.starts_with("/uploads/mappings/{id}") {
        Some(o.mapping)
    } else if p == "/uploads/{id}/dismiss" {
        Some(o.mapping_run)
    } else if p == "/uploads/{id}/map" {
        Some(o.map_run)
    } else if p == "/uploads/{id}/cancel" {
        Some(o.cancel_run)
    } else if p == "/uploads/{id}/approve" {
        Some(o.review_run)
    } else if p.starts_with("/schools/{id}") {
        Some(o.school)
    } else if p.starts_with("/uploads/{id}") || p.starts_with("/api/v1/uploads/{id}") {
        Some(o.run)
    } else if p == "/syncs/{id}/test" || p == "/syncs/{id}/run" {
        Some(o.rest_sync)
    } else if p == "/syncs/{id}/delete" {
        Some(o.doomed_sync)
    } else if p.starts_with("/syncs/{id}") {
        Some(o.sync)
    } else if p.starts_with("/settings/tokens/{id}") {
        Some(o.token)
    } else if p.starts_with("/teaching/{id}") {
        Some(o.taught)
    } else if p.starts_with("/settings/sso/{id}") || p.starts_with("/login/{slug}/sso/{id}") {
        Some(o.sso)
    } else {
        None
    };
    let user = if p == "/users/{guid}/restore" {
        o.archived_user
    } else if p.starts_with("/teaching/") {
        o.class_student
    } else {
        o.user
    };
    let mut out = p
        .replace("{guid}", &user.to_string())
        .replace("{kind}", "uploaded")
        .replace("{slug}", o.slug)
        .replace("{*rest}", "nothing/here");
    if out.contains("{id}") {
        let id = id.unwrap_or_else(|| {
            panic!("security suite: no object for {{id}} in {p}: add it to fill()")
        });
        out = out.replace("{id}", &id.to_string());
    }
    assert!(
        !out.contains('{'),
        "security suite: unknown placeholder in {p}: add it to fill()"
    );
    out
}

/// The body each state-changing route takes, with the field names its handler reads: sent by
/// the object's own district, each one changes something (checked by the positive control).
/// Every POST route must be listed: a new one fails here until the suite knows how to call it.
fn body(route: &RouteInfo, refs: Refs) -> Body {
    let school = refs.school.to_string();
    let version = refs.version.to_string();
    let user = refs.user.to_string();
    let form = |fields: &[(&'static str, &str)]| {
        Body::Form(fields.iter().map(|(k, v)| (*k, v.to_string())).collect())
    };
    match route.path {
        "/login" => form(&[("login", "admin@alpha.org"), ("password", PASSWORD)]),
        "/logout" => form(&[]),
        // Account (issue 17): the code step (nothing waits for one here), one's own MFA,
        // the district's MFA requirement (off: the suite signs in again without MFA), and
        // an admin's unlock / MFA reset of a user (audited: B's own admin changes B).
        "/login/code" | "/account/mfa" => form(&[("code", "000000")]),
        "/account/mfa/recovery" | "/account/mfa/disable" | "/settings/mfa" => form(&[]),
        "/account/sessions/end-others" => form(&[]),
        "/users/{guid}/unlock" | "/users/{guid}/mfa/reset" => form(&[]),
        // Forgot password: open to anyone (a name no account has; a token nobody was sent).
        "/password/forgot" => form(&[("login", "nobody@nowhere.org")]),
        "/password/reset" => form(&[
            ("token", "0000"),
            ("password", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ]),
        "/account/password" => form(&[
            ("current", "not-the-password"),
            ("password", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ]),
        "/districts" => form(&[
            ("name", "Hacked"),
            ("slug", "hacked"),
            ("admin_email", "x@hacked.org"),
        ]),
        "/schools" | "/schools/{id}" => form(&[("external_id", "HACK"), ("name", "Hacked")]),
        "/schools/import" => Body::File("schools.csv", b"external_id,name\nHACK,Hacked\n".to_vec()),
        "/uploads" | "/api/v1/uploads" => Body::File("hack.csv", PEOPLE.as_bytes().to_vec()),
        // The mapping runs' file is `Ident,Nom,Prenom` (see `World::mapping_run`).
        "/uploads/{id}/map" => form(&[
            ("col0", "custom_id"),
            ("col1", "last_name"),
            ("col2", "first_name"),
            ("fixed_role", "Student"),
            ("fixed_school", "HACK"),
        ]),
        // The saved mapping is `Code,Surname,Given` (see `World::saved_mapping`).
        "/uploads/mappings/{id}" => form(&[
            ("col0", "custom_id"),
            ("col1", "last_name"),
            ("col2", "first_name"),
            ("fixed_role", "Teacher"),
            ("fixed_school", "HACK"),
        ]),
        "/uploads/mappings/{id}/delete" => form(&[]),
        "/uploads/{id}/approve"
        | "/uploads/{id}/cancel"
        | "/uploads/{id}/undo"
        | "/uploads/{id}/dismiss" => form(&[]),
        "/users" => form(&[
            ("first_name", "Hacked"),
            ("last_name", "Hacked"),
            ("role", "Teacher"),
            ("email", "hacked@alpha.org"),
            ("schools", &school),
        ]),
        "/users/{guid}" => form(&[
            ("custom_id", "HACK-1"),
            ("first_name", "Hacked"),
            ("last_name", "Hacked"),
            ("role", "Student"),
            ("active", "on"),
            ("schools", &school),
            ("version", &version),
        ]),
        "/users/{guid}/status" => form(&[("status", "inactive")]),
        // The ticked user is the target's (A's admin naming B's user changes nothing).
        "/users/bulk" | "/users/bulk/apply" => form(&[("action", "deactivate"), ("id", &user)]),
        "/users/{guid}/owner" => form(&[("owner", "manual")]),
        "/users/{guid}/kept/release" => form(&[("field", "all")]),
        "/users/{guid}/archive" | "/users/{guid}/restore" | "/users/{guid}/password" => form(&[]),
        "/syncs" | "/syncs/{id}" => form(&[("kind", "oneroster_csv"), ("name", "Hacked")]),
        "/syncs/{id}/test" | "/syncs/{id}/run" | "/syncs/{id}/delete" => form(&[]),
        "/syncs/{id}/pause" => form(&[("paused", "true")]),
        "/syncs/{id}/upload" => Body::File("set.zip", b"PK\x05\x06not a real zip".to_vec()),
        "/settings/guard" => form(&[
            ("archive_pct", "99"),
            ("archive_min", "1"),
            ("update_pct", "99"),
        ]),
        "/settings/district" => {
            form(&[("external_id", "HACK-D"), ("time_zone", "America/Chicago")])
        }
        "/settings/tokens" => form(&[("name", "hacked")]),
        // Both districts have a people.csv source: the caller's own is the one paused.
        "/sources/pause" => form(&[("source", "file:people.csv"), ("until", "")]),
        "/sources/resume" => form(&[("source", "file:people.csv")]),
        "/settings/tokens/{id}/revoke" => form(&[]),
        "/settings/alerts/rules" => form(&[("run_errors", "on"), ("errors_above", "1")]),
        "/settings/alerts/recipients" => form(&[("email", "hacker@alpha.org")]),
        "/settings/alerts/recipients/remove" => form(&[("email", "bea@beta.org")]),
        "/settings/alerts/webhook" => {
            form(&[("url", "https://hooks.example.org/x"), ("enabled", "on")])
        }
        "/settings/alerts/webhook/secret"
        | "/settings/alerts/test-email"
        | "/settings/alerts/test-webhook" => form(&[]),
        "/teaching/{id}/students/{guid}/password" => form(&[("confirm", "yes")]),
        // Starting a single sign-on writes only the session (see the positive control).
        "/login/{slug}/sso/{id}" => form(&[]),
        "/settings/sso" | "/settings/sso/{id}" => form(&[
            ("label", "Hacked"),
            ("issuer_url", "https://sso.invalid"),
            ("client_id", "hacked"),
            ("client_secret", ""),
            ("domains", "hacked.org"),
            ("enabled", "on"),
        ]),
        "/settings/sso/{id}/delete" => form(&[]),
        "/settings/sso/policy" => form(&[("require_for_users", "on")]),
        "/classes/{id}/state" => form(&[("archived", "yes")]),
        "/api/v1/{*rest}" => form(&[]),
        other => panic!(
            "security suite: POST {other} has no body in tests/it/security.rs::body(): add it"
        ),
    }
}

/// How to call a route.
#[derive(Default, Clone, Copy)]
struct Auth<'a> {
    csrf: Option<&'a str>,
    bearer: Option<&'a str>,
    origin: Option<&'a str>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    route: &RouteInfo,
    path: &str,
    refs: Refs,
    auth: Auth<'_>,
) -> Answer {
    let mut url = format!("{base}{path}");
    let mut req = match route.verb {
        Verb::Get => http.get(&url),
        Verb::Post => {
            let b = body(route, refs);
            if let (Body::File(..), Some(t)) = (&b, auth.csrf) {
                url = format!("{url}?_csrf={t}");
            }
            let req = http.post(&url);
            match b {
                Body::Form(mut fields) => {
                    if let Some(t) = auth.csrf {
                        fields.push(("_csrf", t.to_string()));
                    }
                    req.form(&fields)
                }
                Body::File(name, bytes) => {
                    let mut form = reqwest::multipart::Form::new().part(
                        "file",
                        reqwest::multipart::Part::bytes(bytes).file_name(name),
                    );
                    if route.path == "/uploads" {
                        // The school the file is for (issue 16, item 6): the refs' school.
                        form = form.text("school", refs.school.to_string());
                    }
                    req.multipart(form)
                }
            }
        }
    };
    if let Some(t) = auth.bearer {
        req = req.bearer_auth(t);
    }
    if let Some(o) = auth.origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cache_control = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Answer {
        status,
        location,
        cache_control,
        body: r.text().await.unwrap_or_default(),
    }
}

/// A fingerprint of everything a request could change for one district (sessions and
/// sign-in attempts aside; a token's `last_used_at` aside).
async fn fingerprint(pool: &PgPool, district: Uuid) -> String {
    sqlx::query_scalar(
        "SELECT md5(concat_ws('#',
            (SELECT string_agg(d::text, '|') FROM districts d WHERE d.id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM schools t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM users t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM user_schools t WHERE district_id = $1),
            (SELECT string_agg((t.id, t.name, t.token_hash, t.revoked_at)::text, '|' ORDER BY t.id) FROM api_tokens t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM audit_log t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM runs t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM header_mappings t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM sync_connections t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM alert_settings t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM alert_recipients t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM alert_events t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM sso_providers t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM sso_policies t WHERE district_id = $1),
            (SELECT string_agg(t::text, '|' ORDER BY t::text) FROM sso_identities t WHERE district_id = $1)))",
    )
    .bind(district)
    .fetch_one(pool)
    .await
    .expect("fingerprint")
}

/// Two districts with one of everything a route can name, and signed-in clients.
struct World {
    app: TestApp,
    alpha: District,
    beta: District,
    /// District A's own objects (the South student, the South school).
    a: Objects,
    /// A's North school (the school admin's own).
    north: Uuid,
    /// A's objects as the North school admin would try them (the South ones).
    north_user: Uuid,
    /// District B's objects.
    b: Objects,
    a_token: String,
    admin: Client,
    /// District B's admin, signed in (the positive control's caller).
    b_admin: Client,
}

impl World {
    async fn new(pool: PgPool) -> World {
        let app = TestApp::spawn(pool).await;
        let alpha = app.district("alpha").await;
        let north = app.school(alpha.id, "N1", "North Elementary").await;
        let south = app.school(alpha.id, "S1", "South Elementary").await;
        app.member(alpha.id, "principal", "school_admin", &[north])
            .await;
        let admin = app.client();
        assert_eq!(
            admin.sign_in(&alpha.admin_email, PASSWORD).await.status,
            303
        );
        let a = Self::populate(&app, &admin, alpha.id, south, PEOPLE, "Alpha CSV set", "S").await;
        let a = Objects {
            class: Self::class(&app, alpha.id, south, a.user, "Southkid Algebra").await,
            slug: "alpha",
            ..a
        };
        let a_token = rollcall::ops::create_token(
            &app.pool,
            alpha.id,
            "alpha",
            &rollcall::db::audit::Actor::cli(),
        )
        .await
        .unwrap();

        let beta = app.district("beta").await;
        let b_school = app.school(beta.id, "B1", "Betamarker High").await;
        let bc = app.client();
        assert_eq!(bc.sign_in(&beta.admin_email, PASSWORD).await.status, 303);
        let b = Self::populate(
            &app,
            &bc,
            beta.id,
            b_school,
            BETA_PEOPLE,
            "Betamarker sync",
            "B",
        )
        .await;
        let b = Objects {
            class: Self::class(&app, beta.id, b_school, b.user, "Betamarker Algebra").await,
            slug: "beta",
            ..b
        };
        rollcall::ops::create_token(
            &app.pool,
            beta.id,
            "beta",
            &rollcall::db::audit::Actor::cli(),
        )
        .await
        .unwrap();
        let token_sql = "SELECT id FROM api_tokens WHERE district_id = $1";
        let token = |d: Uuid| {
            let pool = app.pool.clone();
            async move {
                sqlx::query_scalar::<_, Uuid>(token_sql)
                    .bind(d)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let a = Objects {
            token: token(alpha.id).await,
            ..a
        };
        let b = Objects {
            token: token(beta.id).await,
            ..b
        };
        let north_user = user_id(&app, alpha.id, "N-1").await;
        World {
            app,
            alpha,
            beta,
            a,
            north,
            north_user,
            b,
            a_token,
            admin,
            b_admin: bc,
        }
    }

    /// One of everything, made by the district's admin through the pages: an applied upload
    /// of `people` (prefix `p`: users `{p}-1` active with a kept field, `{p}-2` archived),
    /// a run held in Needs review, three runs in Needs mapping, and three connections. The
    /// token is filled in by the caller.
    async fn populate(
        app: &TestApp,
        c: &Client,
        district: Uuid,
        school: Uuid,
        people: &str,
        sync_name: &str,
        p: &str,
    ) -> Objects {
        let r = c
            .post_file("/uploads", "people.csv", people.as_bytes().to_vec())
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let run: Uuid = r.location.unwrap()["/uploads/".len()..].parse().unwrap();
        app.queue.drain().await.unwrap();
        let user = user_id(app, district, &format!("{p}-1")).await;
        let archived_user = user_id(app, district, &format!("{p}-2")).await;
        let r = c
            .post(&format!("/users/{archived_user}/archive"), &[])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        // A field an admin edited, kept against the feeds (for `/users/{guid}/kept/release`).
        sqlx::query("UPDATE users SET kept_fields = '{grade}' WHERE district_id = $1 AND id = $2")
            .bind(district)
            .bind(user)
            .execute(&app.pool)
            .await
            .unwrap();
        let user_version: i64 =
            sqlx::query_scalar("SELECT version FROM users WHERE district_id = $1 AND id = $2")
                .bind(district)
                .bind(user)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        // A file that would archive the source's every active user stops in Needs review
        // (the guard's minimum lowered to 1 for these small districts).
        sqlx::query("UPDATE districts SET guard_archive_min = 1 WHERE id = $1")
            .bind(district)
            .execute(&app.pool)
            .await
            .unwrap();
        let held = people.lines().next().unwrap().to_string()
            + &format!("\n{p}-9,{p}9@example.org,Nine,Held,Student,{p}1,5,Active\n");
        let r = c
            .post_file("/uploads", "people.csv", held.into_bytes())
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let review_run: Uuid = r.location.unwrap()["/uploads/".len()..].parse().unwrap();
        app.queue.drain().await.unwrap();
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
            .bind(review_run)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(status, "needs_review");

        let mut syncs = Vec::new();
        for form in [
            vec![("kind", "oneroster_csv"), ("name", sync_name)],
            vec![
                ("kind", "oneroster_rest"),
                ("name", &format!("{sync_name} rest")),
                ("base_url", "http://127.0.0.1:9"),
                ("client_id", "rollcall"),
                ("secret", "not-a-real-secret"),
                ("interval_hours", "6"),
            ],
            vec![
                ("kind", "oneroster_csv"),
                ("name", &format!("{sync_name} spare")),
            ],
        ] {
            let r = c.post("/syncs", &form).await;
            assert_eq!(r.status, 303, "{}", r.body);
            syncs.push(r.location.unwrap()["/syncs/".len()..].parse().unwrap());
        }
        let (taught, class_student) = Self::taught_class(app, district, school).await;
        Objects {
            school,
            user,
            user_version,
            archived_user,
            run,
            review_run,
            map_run: Self::mapping_run(c, 1).await,
            mapping_run: Self::mapping_run(c, 2).await,
            cancel_run: Self::mapping_run(c, 3).await,
            sync: syncs[0],
            rest_sync: syncs[1],
            doomed_sync: syncs[2],
            token: Uuid::nil(),
            taught,
            class_student,
            class: Uuid::nil(),
            mapping: Self::saved_mapping(app, district).await,
            slug: "",
            sso: Self::sso_provider(app, district).await,
        }
    }

    /// A saved column mapping for `Code,Surname,Given` files (columns no other probe's
    /// file has).
    async fn saved_mapping(app: &TestApp, district: Uuid) -> Uuid {
        sqlx::query_scalar(
            r#"INSERT INTO header_mappings (district_id, signature, mapping, updated_by)
               VALUES ($1, 'code|given|surname',
                       '{"columns": [["Code", "CustomId"], ["Surname", "LastName"], ["Given", "FirstName"]],
                         "fixed": [["Role", "Student"], ["SchoolExternalId", "X1"]]}', 'test')
               RETURNING id"#,
        )
        .bind(district)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    }

    /// A single sign-on provider of the district (stored directly: its issuer has no
    /// discovery document to read).
    async fn sso_provider(app: &TestApp, district: Uuid) -> Uuid {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sso_providers (district_id, id, label, issuer_url, client_id, client_secret_sealed, allowed_domains)
             VALUES ($1, $2, 'District SSO', 'https://sso.invalid', 'rollcall', '\\x00', '{example.org}')",
        )
        .bind(district)
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
        id
    }

    /// A class at `school` taught by the district's admin, and a student of it (no password
    /// yet, in no other probe's way).
    async fn taught_class(app: &TestApp, district: Uuid, school: Uuid) -> (Uuid, Uuid) {
        let class = Uuid::new_v4();
        let student = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO classes (district_id, id, external_id, school_id, title, source)
             VALUES ($1, $2, 'CLASS-1', $3, 'Homeroom', 'manual')",
        )
        .bind(district)
        .bind(class)
        .bind(school)
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO users (district_id, id, username, first_name, last_name, role, source)
             VALUES ($1, $2, 'homeroom.kid', 'Homeroom', 'Kid', 'Student', 'manual')",
        )
        .bind(district)
        .bind(student)
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO enrollments (district_id, class_id, user_id, role)
             SELECT $1, $2, id, 'teacher' FROM users WHERE district_id = $1 AND portal_role = 'district_admin'
             UNION ALL SELECT $1, $2, $3, 'student'",
        )
        .bind(district)
        .bind(class)
        .bind(student)
        .execute(&app.pool)
        .await
        .unwrap();
        (class, student)
    }

    /// A class at `school` (seeded with SQL) with `student` enrolled.
    async fn class(
        app: &TestApp,
        district: Uuid,
        school: Uuid,
        student: Uuid,
        title: &str,
    ) -> Uuid {
        seed_rosters(
            &app.pool,
            district,
            &[RosterSeed {
                class: &format!("{title} 1"),
                title,
                school,
                term: None,
                teachers: &[],
                students: &[student],
            }],
        )
        .await[0]
    }

    /// A file whose columns are not known: its run waits in Needs mapping.
    async fn mapping_run(c: &Client, n: u32) -> Uuid {
        let r = c
            .post_file(
                "/uploads",
                &format!("odd{n}.csv"),
                format!("Ident,Nom,Prenom\nX{n},A,B\n").into_bytes(),
            )
            .await;
        let map = r.location.clone().unwrap_or_default();
        assert!(map.ends_with("/map"), "{:?} {}", r.location, r.body);
        map.trim_start_matches("/uploads/")
            .trim_end_matches("/map")
            .parse()
            .unwrap()
    }

    fn http(&self, c: &Client) -> (reqwest::Client, String) {
        (c.http.clone(), c.base.clone())
    }
}

/// The sign-in routes under `/login/` (a district's page, its single sign-on buttons):
/// public by district code, not district data.
fn public_sign_in(path: &str) -> bool {
    path.starts_with("/login/")
}

async fn user_id(app: &TestApp, district: Uuid, custom_id: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
        .bind(district)
        .bind(custom_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn routes() -> Vec<RouteInfo> {
    let routes = rollcall::web::routes();
    let distinct: BTreeSet<(&str, &str)> =
        routes.iter().map(|r| (r.verb.as_str(), r.path)).collect();
    assert_eq!(distinct.len(), routes.len(), "no route twice in the table");
    assert!(routes.len() >= 50, "the whole table: {}", routes.len());
    routes
}

fn assert_no_markers(markers: &[&str], body: &str, what: &str) {
    for m in markers {
        assert!(!body.contains(m), "{what}: the answer shows {m:?}:\n{body}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn every_route_answers_404_for_another_districts_objects(pool: PgPool) {
    let w = World::new(pool).await;
    let (http, base) = w.http(&w.admin);
    let mut csrf = w.admin.csrf().await;
    let before_b = fingerprint(&w.app.pool, w.beta.id).await;
    // A's own requests name A's school; an edit of B's user names B's user's version.
    let own = Refs::of(&w.a, w.a.school);
    let across = Refs::of(&w.b, w.a.school);
    let mut covered = 0;
    for route in routes() {
        let auth = match route.area {
            Area::Page => Auth {
                csrf: Some(&csrf),
                ..Default::default()
            },
            Area::Api => Auth {
                bearer: Some(&w.a_token),
                ..Default::default()
            },
            Area::Open => Auth::default(),
        };
        let what = format!("{} {}", route.verb.as_str(), route.path);
        if public_sign_in(route.path) {
            // A district's sign-in page and its buttons are public by district code (no
            // district data): another district's answers, but nothing of its users.
            let theirs = call(&http, &base, &route, &fill(&route, &w.b), across, auth).await;
            assert_no_markers(&BETA_MARKERS, &theirs.body, &what);
        } else if route.path.contains('{') {
            // Positive control: the same route with district A's own objects is found.
            if route.verb == Verb::Get && !route.path.contains("{*rest}") {
                let mine = call(&http, &base, &route, &fill(&route, &w.a), own, auth).await;
                assert_ne!(mine.status, 404, "{what} with A's own ids: {}", mine.body);
                assert_eq!(mine.cache_control.as_deref(), Some("no-store"), "{what}");
            }
            let theirs = call(&http, &base, &route, &fill(&route, &w.b), across, auth).await;
            assert_eq!(theirs.status, 404, "{what} with B's ids: {}", theirs.body);
            assert_no_markers(&BETA_MARKERS, &theirs.body, &what);
        } else if route.verb == Verb::Get {
            let page = call(&http, &base, &route, route.path, own, auth).await;
            assert_no_markers(&BETA_MARKERS, &page.body, &what);
            // Nothing a signed-in person sees may be kept by a browser or proxy.
            assert_eq!(page.cache_control.as_deref(), Some("no-store"), "{what}");
        } else {
            // A POST without ids acts on the caller's own district only; B must not
            // change (checked below). Logging out would end this session: left out.
            if route.path != "/logout" {
                // The bulk actions name their users in the body: B's user, here.
                let refs = if route.path.starts_with("/users/bulk") {
                    across
                } else {
                    own
                };
                call(&http, &base, &route, route.path, refs, auth).await;
                csrf = w.admin.csrf().await; // signing in again makes a new token
            }
        }
        assert_eq!(
            fingerprint(&w.app.pool, w.beta.id).await,
            before_b,
            "{what} changed district B"
        );
        covered += 1;
    }
    // Searching and filtering never reach across either.
    for q in [
        "/users?q=Beatrix",
        "/users.csv?q=bea",
        "/users?status=archived",
        "/classes?q=Algebra",
        "/classes?status=archived",
        "/classes.csv?q=beta",
        "/enrollments.csv",
    ] {
        let page = w.admin.get(q).await;
        assert_no_markers(&BETA_MARKERS, &page.body, q);
    }
    println!("security: {covered} routes checked against another district's ids");
    assert_eq!(covered, rollcall::web::routes().len());

    // Positive control: each state-changing probe above was a real write attempt. The same
    // route and body, sent by district B's own admin on B's own objects, changes B. (Only
    // the tenancy check stood between A's request and that write.)
    let (b_http, _) = w.http(&w.b_admin);
    let b_csrf = w.b_admin.csrf().await;
    let mut probes: Vec<RouteInfo> = routes()
        .into_iter()
        .filter(|r| r.verb == Verb::Post && r.path.contains('{') && !r.path.contains("{*rest}"))
        .collect();
    // Pausing, deleting and archiving last: the other actions need their objects in place
    // (a paused connection takes no set; a deleted one, nothing at all).
    probes.sort_by_key(|r| {
        r.path.ends_with("/pause") || r.path.ends_with("/delete") || r.path.ends_with("/archive")
    });
    let mut wrote = 0;
    for route in &probes {
        let what = format!("POST {}", route.path);
        let before = fingerprint(&w.app.pool, w.beta.id).await;
        let auth = Auth {
            csrf: Some(&b_csrf),
            ..Default::default()
        };
        let mine = Refs::of(&w.b, w.b.school);
        let r = call(&b_http, &base, route, &fill(route, &w.b), mine, auth).await;
        let after = fingerprint(&w.app.pool, w.beta.id).await;
        if route.path == "/syncs/{id}/test" || public_sign_in(route.path) {
            // Testing a connection writes nothing (the answer is a flash message): the
            // probe above can only show it finds nothing of B's (404).
            assert_eq!(after, before, "{what}");
            continue;
        }
        assert_ne!(
            after, before,
            "{what} by B's own admin on B's own object changed nothing ({}): the probe with \
             B's ids above was no write attempt\n{}",
            r.status, r.body
        );
        wrote += 1;
    }
    assert_eq!(wrote, probes.len() - 2);
    println!("security: {wrote} state-changing probes proven to write for their own district");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_is_held_to_their_schools_on_every_route(pool: PgPool) {
    let w = World::new(pool).await;
    let p = w.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    let (http, base) = w.http(&p);
    let csrf = p.csrf().await;
    // Their own school in a body (so only the check under test refuses an edit of a South
    // user); South's for adding a user (adding one to North is theirs to do).
    let theirs = Refs::of(&w.a, w.north);
    let south = Refs::of(&w.a, w.a.school);
    let before = fingerprint(&w.app.pool, w.alpha.id).await;
    // Routes a school admin may use; their answers must still show nothing of South.
    let allowed: BTreeSet<(&str, &str)> = [
        ("GET", "/"),
        ("GET", "/login"),
        ("GET", "/account"),
        ("GET", "/account/password"),
        ("POST", "/account/password"),
        // The code step only looks at the session.
        ("GET", "/login/code"),
        ("POST", "/login/code"),
        // Forgot password is open to anyone (signed in, the form sends to the password page).
        ("GET", "/password/forgot"),
        ("POST", "/password/forgot"),
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users.csv"),
        ("GET", "/users/new"),
        // Bulk actions: a school admin's reach only (South's user named: nothing changes).
        ("POST", "/users/bulk"),
        ("POST", "/users/bulk/apply"),
        // Imports for their own school (issue 16, item 6): South's school in the body is
        // refused; the history lists their school's files only.
        ("GET", "/uploads"),
        ("POST", "/uploads"),
        // The template and the field reference (issue 16, item 8) show their schools only.
        ("GET", "/uploads/template.csv"),
        ("GET", "/uploads/fields"),
        ("GET", "/classes"),
        ("GET", "/classes.csv"),
        ("GET", "/enrollments.csv"),
        ("GET", "/schools"),
        ("GET", "/audit"),
        ("GET", "/audit.csv"),
    ]
    .into_iter()
    .collect();
    let mut covered = 0;
    for route in routes() {
        let what = format!("{} {}", route.verb.as_str(), route.path);
        if route.area != Area::Page
            || (matches!(route.path, "/login" | "/logout") && route.verb == Verb::Post)
            || public_sign_in(route.path)
        {
            continue; // no token for school admins; signing in and out are not district data
        }
        if route.path.starts_with("/account/mfa") || route.path.starts_with("/account/sessions") {
            continue; // one's own second factor and sessions: the caller's own account only
        }
        let auth = Auth {
            csrf: Some(&csrf),
            ..Default::default()
        };
        // Adding a user, or uploading a file, for South: refused.
        let refs = if route.path == "/users" || route.path == "/uploads" {
            south
        } else {
            theirs
        };
        let answer = call(&http, &base, &route, &fill(&route, &w.a), refs, auth).await;
        assert_no_markers(&SOUTH_MARKERS, &answer.body, &what);
        if !allowed.contains(&(route.verb.as_str(), route.path)) {
            assert!(
                matches!(answer.status, 403 | 404),
                "{what}: {} {}",
                answer.status,
                answer.body
            );
        }
        covered += 1;
    }
    assert_eq!(
        fingerprint(&w.app.pool, w.alpha.id).await,
        before,
        "a school admin changed nothing outside their schools"
    );
    // Their own school's student is theirs.
    let own = p.get(&format!("/users/{}", w.north_user)).await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("Northkid"));
    let list = p.get("/users").await;
    assert!(list.body.contains("Northkid"));
    println!("security: {covered} page routes checked for a school admin");
}

#[sqlx::test(migrations = "./migrations")]
async fn every_state_changing_page_refuses_a_missing_or_forged_csrf_token(pool: PgPool) {
    let w = World::new(pool).await;
    let (http, base) = w.http(&w.admin);
    let right = w.admin.csrf().await;
    let other_session = w.app.client().csrf().await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let before = fingerprint(&w.app.pool, w.alpha.id).await;
    let own = Refs::of(&w.a, w.a.school);
    let mut covered = 0;
    for route in routes() {
        if route.verb != Verb::Post || route.area != Area::Page {
            continue;
        }
        let what = format!("POST {}", route.path);
        let path = fill(&route, &w.a);
        let forged = "0".repeat(64);
        let attempts = [
            ("no token", Auth::default()),
            (
                "a forged token",
                Auth {
                    csrf: Some(&forged),
                    ..Default::default()
                },
            ),
            (
                "another session's token",
                Auth {
                    csrf: Some(&other_session),
                    ..Default::default()
                },
            ),
            (
                "the right token from another site",
                Auth {
                    csrf: Some(&right),
                    origin: Some("https://evil.example"),
                    ..Default::default()
                },
            ),
        ];
        for (how, auth) in attempts {
            let r = call(&http, &base, &route, &path, own, auth).await;
            assert_eq!(r.status, 403, "{what} with {how}: {}", r.body);
        }
        let r = call(&anonymous, &base, &route, &path, own, Auth::default()).await;
        assert_eq!(r.status, 403, "{what} signed out, no token");
        assert_eq!(
            fingerprint(&w.app.pool, w.alpha.id).await,
            before,
            "{what} changed something without a valid token"
        );
        covered += 1;
    }
    // Still signed in: the refusals did not end the session, and the right token works.
    let r = w
        .admin
        .post("/schools", &[("external_id", "OK1"), ("name", "Fine")])
        .await;
    assert_eq!(r.status, 303);
    println!(
        "security: {covered} state-changing routes refuse requests without a valid CSRF token"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn anonymous_callers_are_sent_to_sign_in_or_refused(pool: PgPool) {
    let w = World::new(pool).await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = w.admin.base.clone();
    let revoked = w.a_token.clone();
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE district_id = $1")
        .bind(w.alpha.id)
        .execute(&w.app.pool)
        .await
        .unwrap();
    let own = Refs::of(&w.a, w.a.school);
    let mut covered = 0;
    for route in routes() {
        let what = format!("{} {}", route.verb.as_str(), route.path);
        let path = fill(&route, &w.a);
        match (route.area, route.verb) {
            (Area::Page, Verb::Get) => {
                let r = call(&anonymous, &base, &route, &path, own, Auth::default()).await;
                if route.path == "/login"
                    || route.path == "/login/{slug}"
                    || route.path == "/password/forgot"
                {
                    assert_eq!(r.status, 200, "{what}");
                } else if route.path == "/password/reset" {
                    // Open to anyone with a link: without a valid token, nothing is there.
                    assert_eq!(r.status, 404, "{what}");
                } else {
                    assert_eq!(r.status, 303, "{what}");
                    assert_eq!(r.location.as_deref(), Some("/login"), "{what}");
                }
                assert_no_markers(&SOUTH_MARKERS, &r.body, &what);
            }
            (Area::Page, Verb::Post) => {} // the CSRF test covers these
            (Area::Api, _) => {
                for bearer in [None, Some("rc_0000"), Some(revoked.as_str())] {
                    let auth = Auth {
                        bearer,
                        ..Default::default()
                    };
                    let r = call(&anonymous, &base, &route, &path, own, auth).await;
                    // An unknown API path is a 404 for everyone.
                    let want = if route.path.contains("{*rest}") {
                        404
                    } else {
                        401
                    };
                    assert_eq!(r.status, want, "{what} with {bearer:?}: {}", r.body);
                    assert_no_markers(&SOUTH_MARKERS, &r.body, &what);
                }
            }
            (Area::Open, _) => {
                let r = call(&anonymous, &base, &route, &path, own, Auth::default()).await;
                assert_eq!(r.status, 200, "{what}");
            }
        }
        covered += 1;
    }
    println!("security: {covered} routes checked for anonymous callers");
}

#[sqlx::test(migrations = "./migrations")]
async fn session_cookie_is_secure_behind_https(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.public_url = Some("https://rollcall.example.org".into())
    })
    .await;
    let r = reqwest::get(app.url("/login")).await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("rollcall_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    let plain = TestApp::spawn(app.pool.clone()).await;
    let r = reqwest::get(plain.url("/login")).await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
}

#[sqlx::test(migrations = "./migrations")]
async fn sign_in_throttling_does_not_tell_accounts_apart(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    for login in [d.admin_email.as_str(), "nobody@springfield.org"] {
        let c = app.client();
        for _ in 0..5 {
            assert_eq!(c.sign_in(login, "wrong-password").await.status, 401);
        }
        let r = c.sign_in(login, PASSWORD).await;
        assert_eq!(r.status, 429, "{login}: throttled whether or not it exists");
        assert!(r.body.contains("too many failed sign-ins"));
    }
    // Throttled sign-ins do not count as successes later either.
    let r = app.client().sign_in(&d.admin_email, PASSWORD).await;
    assert_eq!(r.status, 429);
}

#[sqlx::test(migrations = "./migrations")]
async fn api_tokens_are_stored_as_sha256_only_and_can_be_revoked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let c = app.client();
    c.sign_in(&d.admin_email, PASSWORD).await;
    // A name is required; a blank one mints nothing.
    let blank = c.post("/settings/tokens", &[("name", "  ")]).await;
    assert_eq!(blank.status, 303);
    let refused = c.get("/settings").await;
    assert!(refused.body.contains("Name the token"), "{}", refused.body);
    assert!(!refused.body.contains("rc_"));
    // Post/redirect/get: the token is shown by the page the POST redirects to, once.
    let created = c.post("/settings/tokens", &[("name", "sis nightly")]).await;
    assert_eq!(created.status, 303);
    assert_eq!(created.location.as_deref(), Some("/settings"));
    // The secret waits for its one page view sealed: no session holds a token in clear.
    let waiting: String = sqlx::query_scalar(
        // bytea as text: printable bytes as they are, so a token in clear would show.
        "SELECT coalesce(string_agg(encode(data, 'escape'), '|'), '') FROM sessions",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!waiting.contains("rc_"), "{waiting}");
    let page = c.get("/settings").await;
    assert_eq!(page.status, 200);
    let start = page.body.find("rc_").expect("the token is shown once");
    let token: String = page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(token.len(), 67);
    let again = c.get("/settings").await;
    assert!(
        !again.body.contains(&token),
        "a refresh shows the token again"
    );
    let (id, hash, prefix, row): (Uuid, Vec<u8>, String, String) = sqlx::query_as(
        "SELECT id, token_hash, prefix, row_to_json(t)::text FROM api_tokens t WHERE district_id = $1",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(hash, sha2::Sha256::digest(token.as_bytes()).to_vec());
    assert!(token.starts_with(&prefix) && prefix.len() <= 10);
    assert!(
        !row.contains(&token[prefix.len()..]),
        "no part past the prefix stored"
    );
    // Nowhere else in the database either.
    let everywhere: String = sqlx::query_scalar(
        "SELECT concat_ws('|', (SELECT string_agg(a::text, '|') FROM audit_log a),
                               (SELECT string_agg(s::text, '|') FROM sessions s))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!everywhere.contains(&token));
    // Shown once: the settings page lists it by prefix only.
    let settings = c.get("/settings").await;
    assert!(settings.body.contains(&prefix) && !settings.body.contains(&token));

    let api = reqwest::Client::new();
    let get = || api.get(app.url("/api/v1/users")).bearer_auth(&token).send();
    assert_eq!(get().await.unwrap().status().as_u16(), 200);
    let r = c.post(&format!("/settings/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status, 303);
    let revoked = get().await.unwrap();
    assert_eq!(revoked.status().as_u16(), 401);
    assert_eq!(
        revoked
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    let said: serde_json::Value = revoked.json().await.unwrap();
    assert_eq!(said["error"], rollcall::web::api::BAD_TOKEN, "{said}");
    let none = api.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let said: serde_json::Value = none.json().await.unwrap();
    assert_eq!(said["error"], rollcall::web::api::NO_TOKEN, "{said}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'token.revoke' AND entity_id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

const FORMULAS: [&str; 5] = [
    "=HYPERLINK(\"http://x.example\",\"x\")",
    "+1",
    "-1",
    "@SUM(A1:A2)",
    "=cmd|' /C calc'!A0",
];

/// Every cell of a CSV export that holds one of our formulas starts with `'`.
fn assert_neutralised(csv_text: &str, what: &str) -> usize {
    let mut seen = 0;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    for rec in r.records() {
        for cell in rec.unwrap().iter() {
            for f in FORMULAS {
                if cell.contains(f.trim_start_matches(['=', '+', '-', '@'])) && cell.ends_with(f) {
                    assert_eq!(cell, format!("'{f}"), "{what}: a live formula {cell:?}");
                    seen += 1;
                }
            }
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{what}: {cell:?} would run as a formula"
            );
        }
    }
    seen
}

#[sqlx::test(migrations = "./migrations")]
async fn formulas_are_neutralised_in_every_export(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "High School").await;
    let c = app.client();
    c.sign_in(&d.admin_email, PASSWORD).await;
    let mut file = String::from(
        "custom_id,email,first_name,last_name,role,school_external_id,grade,password\n",
    );
    for (i, f) in FORMULAS.iter().enumerate() {
        // Good rows (created, with temporary passwords) and one bad row (unknown school).
        let q = f.replace('"', "\"\"");
        file += &format!("F{i},f{i}@d.org,\"{q}\",\"{q}\",Student,HS,9,\n");
        file += &format!("E{i},e{i}@d.org,\"{q}\",\"{q}\",Student,NOPE,9,\"{q}\"\n");
    }
    let r = c
        .post_file("/uploads", "formulas.csv", file.into_bytes())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run = r.location.unwrap()["/uploads/".len()..].to_string();
    app.queue.drain().await.unwrap();
    let token =
        rollcall::ops::create_token(&app.pool, d.id, "t", &rollcall::db::audit::Actor::cli())
            .await
            .unwrap();

    let mut exports = Vec::new();
    exports.push(("/users.csv".to_string(), c.get("/users.csv").await.body));
    for kind in ["uploaded", "completed", "errors"] {
        let page = c.get(&format!("/uploads/{run}/files/{kind}")).await;
        assert_eq!(page.status, 200, "{kind}");
        exports.push((format!("/uploads/{run}/files/{kind}"), page.body));
        let api = reqwest::Client::new()
            .get(app.url(&format!("/api/v1/uploads/{run}/files/{kind}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status().as_u16(), 200);
        exports.push((format!("api {kind}"), api.text().await.unwrap()));
    }
    // `rollcall export`, the real binary against this test's database.
    let db = app
        .pool
        .connect_options()
        .get_database()
        .unwrap()
        .to_string();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (head, tail) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let url = format!("{}/{db}?{tail}", &head[..head.rfind('/').unwrap()]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .env("DATABASE_URL", url)
        .args(["export", "--district", "springfield"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exports.push((
        "rollcall export".into(),
        String::from_utf8(out.stdout).unwrap(),
    ));

    for (what, text) in &exports {
        let seen = assert_neutralised(text, what);
        // Each export holds the formula names: the master CSV and completed file the five
        // created users (first and last name), the error file the five failed rows, the
        // uploaded file all ten rows.
        assert!(
            seen >= 10,
            "{what}: only {seen} formula cells found:\n{text}"
        );
    }
    println!(
        "security: formulas neutralised in {} exports",
        exports.len()
    );
}

const SCRIPT: &str = "<script>alert(1)</script>";
/// The name shown as text: escaped, in any of the spellings of `<`, `>` and `/`.
fn escaped_forms(body: &str) -> bool {
    ["&lt;", "&#60;", "&#x3c;", "&#x3C;"].iter().any(|lt| {
        ["&gt;", "&#62;", "&#x3e;", "&#x3E;"].iter().any(|gt| {
            ["/", "&#47;", "&#x2f;", "&#x2F;"]
                .iter()
                .any(|slash| body.contains(&format!("{lt}script{gt}alert(1){lt}{slash}script{gt}")))
        })
    })
}

#[sqlx::test(migrations = "./migrations")]
async fn html_is_escaped_on_every_page_that_shows_users(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let school = app.school(d.id, "HS", SCRIPT).await;
    let c = app.client();
    c.sign_in(&d.admin_email, PASSWORD).await;
    let body = format!(
        "custom_id,email,first_name,last_name,role,school_external_id,grade,position\n\
         X1,x1@d.org,\"{SCRIPT}\",\"{SCRIPT}\",Teacher,HS,,\"{SCRIPT}\"\n\
         X2,x2@d.org,\"{SCRIPT}\",\"{SCRIPT}\",\"{SCRIPT}\",HS,,\n"
    );
    let r = c
        .post_file("/uploads", "people.csv", body.into_bytes())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run = r.location.unwrap()["/uploads/".len()..].to_string();
    app.queue.drain().await.unwrap();
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE custom_id = 'X1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // An admin's edit puts the name into the history too.
    let version: i64 = sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = c
        .post(
            &format!("/users/{user}"),
            &[
                ("custom_id", "X1"),
                ("email", "x1@d.org"),
                ("first_name", SCRIPT),
                ("last_name", &format!("{SCRIPT}!")),
                ("role", "Teacher"),
                ("active", "on"),
                ("schools", &school.to_string()),
                ("version", &version.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // A mapper page shows a file's headers and sample values.
    let r = c
        .post_file(
            "/uploads",
            "odd.csv",
            format!("Nom,{SCRIPT}\nA,\"{SCRIPT}\"\n").into_bytes(),
        )
        .await;
    let map = r.location.clone().unwrap_or_default();
    assert!(map.ends_with("/map"), "{:?} {}", r.location, r.body);
    // A connection and a token named like a script.
    c.post("/syncs", &[("kind", "oneroster_csv"), ("name", SCRIPT)])
        .await;
    c.post("/settings/tokens", &[("name", SCRIPT)]).await;

    let q = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    // (page, shows the name): every page must keep the script inert; those that show
    // people's names or the school's must show them, escaped.
    let pages = [
        ("/users".to_string(), true),
        (format!("/users?q={q}"), true),
        (format!("/users/{user}"), true),
        (map.clone(), true),
        ("/schools".to_string(), true),
        (format!("/schools/{school}"), true),
        ("/syncs".to_string(), true),
        ("/audit".to_string(), false),
        ("/settings".to_string(), true),
        ("/users/new".to_string(), true),
        // The run's page lists each error's reason, which quotes the bad role.
        (format!("/uploads/{run}"), true),
        ("/uploads".to_string(), false),
    ];
    for (path, shows) in &pages {
        let page = c.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains(SCRIPT),
            "{path} shows the raw script:\n{}",
            page.body
        );
        if *shows {
            assert!(
                escaped_forms(&page.body),
                "{path} shows no name:\n{}",
                page.body
            );
        }
    }
    // Reflected input: a search term, an unknown path.
    for path in [
        format!("/users?q={q}"),
        format!("/users/{q}"),
        format!("/nothing/{q}"),
    ] {
        let page = c.get(&path).await;
        assert!(
            !page.body.contains(SCRIPT),
            "{path} reflects the raw script"
        );
    }
    // The person themself, on their own account page.
    let id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE custom_id = 'X1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET portal_role = 'user', password_hash = $2, password_temporary = false WHERE id = $1")
        .bind(id)
        .bind(rollcall::auth::hash_password(PASSWORD))
        .execute(&app.pool)
        .await
        .unwrap();
    let me = app.client();
    assert_eq!(me.sign_in("x1@d.org", PASSWORD).await.status, 303);
    let account = me.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(!account.body.contains(SCRIPT));
    assert!(escaped_forms(&account.body), "{}", account.body);
}

#[sqlx::test(migrations = "./migrations")]
async fn path_like_upload_names_stay_inside_the_data_directory(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "High School").await;
    let c = app.client();
    c.sign_in(&d.admin_email, PASSWORD).await;
    let data = app.queue.config.data_dir.clone();
    let csv =
        b"custom_id,email,first_name,last_name,role,school_external_id\n1,a@d.org,A,B,Student,HS\n";
    let names = [
        "../../x.csv",
        "..\\..\\x.csv",
        "/etc/passwd",
        "....//x.csv",
        "x.csv\0.sh", // control characters: refused by the multipart parser (400)
        "..",
        "\n\r.csv",
    ];
    let mut taken = 0;
    for name in names {
        let r = c.post_file("/uploads", name, csv.to_vec()).await;
        assert!(matches!(r.status, 303 | 400), "{name:?}: {}", r.body);
        taken += usize::from(r.status == 303);
    }
    assert!(taken >= 4, "{taken} of the names were taken");
    let token =
        rollcall::ops::create_token(&app.pool, d.id, "t", &rollcall::db::audit::Actor::cli())
            .await
            .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.to_vec()).file_name("../../../api.csv"),
    );
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let sync = c
        .post("/syncs", &[("kind", "oneroster_csv"), ("name", "set")])
        .await
        .location
        .unwrap();
    let r = c
        .post_file(&format!("{sync}/upload"), "../../set.zip", b"PK".to_vec())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    let runs: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT file_name, file_path, source FROM runs WHERE district_id = $1")
            .bind(d.id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), taken + 2);
    let root = data.canonicalize().unwrap();
    for (name, path, source) in &runs {
        assert!(
            !name.contains('/') && !name.contains('\\') && !name.starts_with('.'),
            "{name:?}"
        );
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(
            !source.contains('/') && !source.contains(".."),
            "{source:?}"
        );
        let path = std::path::Path::new(path.as_deref().unwrap());
        let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        assert!(
            real.starts_with(&root),
            "{} outside {}",
            real.display(),
            root.display()
        );
    }
    for escaped in [
        data.join("../../x.csv"),
        data.join("../x.csv"),
        data.join("../../../api.csv"),
    ] {
        assert!(!escaped.exists(), "{} written", escaped.display());
    }
}

/// Every log line of the process, kept in memory (nextest runs each test in its own
/// process, so this is this test's).
fn capture_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static BUF: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    BUF.get_or_init(|| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        #[derive(Clone)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=debug,hyper_util=debug,h2=debug,rustls=debug")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other log subscriber in this process (run with nextest)");
        buf
    })
    .clone()
}

#[sqlx::test(migrations = "./migrations")]
async fn no_password_token_or_secret_reaches_the_logs(pool: PgPool) {
    let logs = capture_logs();
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "High School").await;
    let mut secrets: Vec<String> = vec![PASSWORD.into()];
    let c = app.client();
    // Wrong, then right passwords; a password change.
    assert_eq!(
        c.sign_in(&d.admin_email, "Wrong-Horse-Battery-9")
            .await
            .status,
        401
    );
    secrets.push("Wrong-Horse-Battery-9".into());
    assert_eq!(c.sign_in(&d.admin_email, PASSWORD).await.status, 303);
    let new_password = "Tr0ub4dor&3-but-longer";
    let r = c
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", new_password),
                ("confirm", new_password),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    secrets.push(new_password.into());
    secrets.push(c.csrf().await);

    // An upload with passwords and temporary passwords.
    let file = "custom_id,email,first_name,last_name,role,school_external_id,password\n\
                P1,p1@d.org,Pat,One,Teacher,HS,Given-Passw0rd-Alpha\n\
                P2,p2@d.org,Pat,Two,Teacher,HS,\n";
    secrets.push("Given-Passw0rd-Alpha".into());
    let r = c
        .post_file("/uploads", "staff.csv", file.as_bytes().to_vec())
        .await;
    let run = r.location.unwrap();
    app.queue.drain().await.unwrap();
    let completed = c.get(&format!("{run}/files/completed")).await.body;
    let temps: Vec<String> = csv::Reader::from_reader(completed.as_bytes())
        .deserialize::<std::collections::HashMap<String, String>>()
        .filter_map(|r| r.ok()?.get("temporary_password").cloned())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(temps.len(), 1, "{completed}");
    secrets.extend(temps.iter().cloned());
    // The user with a temporary password signs in and sets their own.
    let p2 = app.client();
    assert_eq!(p2.sign_in("p2@d.org", &temps[0]).await.status, 303);
    let own = "P2s-very-own-passphrase";
    let r = p2
        .post(
            "/account/password",
            &[("current", &temps[0]), ("password", own), ("confirm", own)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    secrets.push(own.into());
    // An admin resets a password (the new temporary one is shown once).
    let p1: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE custom_id = 'P1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let reset = c.post(&format!("/users/{p1}/password"), &[]).await;
    let shown = if reset.status == 303 {
        c.get(reset.location.as_deref().unwrap()).await.body
    } else {
        reset.body
    };
    let i = shown
        .find("<code class=\"secret")
        .expect("the temporary password is shown");
    let rest = &shown[i..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    secrets.push(rest[..rest.find('<').unwrap()].to_string());

    // API tokens: used, revoked, used again.
    c.post("/settings/tokens", &[("name", "sis")]).await;
    let page = c.get("/settings").await;
    let start = page.body.find("rc_").unwrap();
    let token: String = page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let api = reqwest::Client::new();
    assert_eq!(
        api.get(app.url("/api/v1/users"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let id: Uuid = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    c.post(&format!("/settings/tokens/{id}/revoke"), &[]).await;
    api.get(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    secrets.push(token);
    // A sync connection's secret, tried against a provider that is not there.
    let sync_secret = "oneroster-client-secret-7f3a9";
    let r = c
        .post(
            "/syncs",
            &[
                ("kind", "oneroster_rest"),
                ("name", "ClassLink"),
                ("base_url", "http://127.0.0.1:9"),
                ("client_id", "rollcall"),
                ("secret", sync_secret),
                ("interval_hours", "6"),
            ],
        )
        .await;
    let conn = r.location.unwrap();
    c.post(&format!("{conn}/test"), &[]).await;
    c.post(&format!("{conn}/run"), &[]).await;
    app.queue.drain().await.unwrap();
    secrets.push(sync_secret.into());
    // The session cookie's value is a secret too.
    let session: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    secrets.extend(session);

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("request"), "the capture works");
    assert!(text.lines().count() > 100, "the capture sees the whole run");
    for s in &secrets {
        assert!(s.len() >= 8, "{s:?}");
        if let Some(line) = text.lines().find(|l| l.contains(s.as_str())) {
            panic!("a secret reached the logs: {s:?} in\n{line}");
        }
    }
    println!(
        "security: {} secrets checked against {} log lines",
        secrets.len(),
        text.lines().count()
    );
}
