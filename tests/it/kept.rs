//! Issue 13, items 3 and 4 (SPEC §4): fields an admin edits on a feed-owned user are kept
//! against the feed until released, and passwords in files set existing users' passwords —
//! through real uploads, the real user form and real sign-ins.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const HEADER: &str = UPLOAD_HEADER;

/// `students.csv` with S1…Sn, grade 9, and the given password for every row ("" = blank).
fn students(n: usize, password: &str) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,{password}\n");
    }
    s
}

impl UploadEnv {
    /// Upload and run a file; the run id.
    async fn run(&self, name: &str, body: &str) -> Uuid {
        let id = self.upload(name, body).await;
        self.app.queue.drain().await.unwrap();
        id
    }

    async fn user_id(&self, custom_id: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
            .bind(self.district.id)
            .bind(custom_id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn grade(&self, id: Uuid) -> String {
        sqlx::query_scalar("SELECT grade FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn kept(&self, id: Uuid) -> Vec<String> {
        sqlx::query_scalar("SELECT kept_fields FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Save the edit form with the user's current values, `changes` applied (as a browser
    /// submits it: every field, the version, the schools).
    async fn edit(&self, id: Uuid, changes: &[(&str, &str)]) -> Page {
        type Row = (
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
        );
        let r: Row = sqlx::query_as(
            "SELECT custom_id, email, username, first_name, middle_name, last_name, role, grade, position,
                    status, portal_role, version FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap();
        let schools: Vec<Uuid> =
            sqlx::query_scalar("SELECT school_id FROM user_schools WHERE user_id = $1")
                .bind(id)
                .fetch_all(&self.app.pool)
                .await
                .unwrap();
        let version = r.11.to_string();
        let grade = if r.7 == "Unspecified" {
            String::new()
        } else {
            r.7.clone()
        };
        let mut fields: Vec<(String, String)> = vec![
            ("custom_id".into(), r.0.unwrap_or_default()),
            ("email".into(), r.1.unwrap_or_default()),
            ("username".into(), r.2),
            ("first_name".into(), r.3),
            ("middle_name".into(), r.4),
            ("last_name".into(), r.5),
            ("role".into(), r.6),
            ("grade".into(), grade),
            ("position".into(), r.8),
            ("portal_role".into(), r.10),
            ("version".into(), version),
        ];
        if r.9 == "active" {
            fields.push(("active".into(), "1".into()));
        }
        for s in schools {
            fields.push(("schools".into(), s.to_string()));
        }
        for (k, v) in changes {
            match fields.iter_mut().find(|(name, _)| name == k) {
                Some(f) => f.1 = v.to_string(),
                None => fields.push((k.to_string(), v.to_string())),
            }
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.c.post(&format!("/users/{id}"), &borrowed).await
    }

    /// A run's download, parsed: header and records.
    async fn download(&self, id: Uuid, kind: &str) -> (Vec<String>, Vec<Vec<String>>, String) {
        let r = self.c.get(&format!("/uploads/{id}/files/{kind}")).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        let mut reader = csv::Reader::from_reader(r.body.as_bytes());
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        (header, rows, r.body)
    }

    async fn password_hash(&self, id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Rows in the audit log and the users' versions: what "writes nothing" means.
    async fn writes_fingerprint(&self) -> (i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM audit_log WHERE district_id = $1),
                    (SELECT coalesce(sum(version), 0)::bigint FROM users WHERE district_id = $1)",
        )
        .bind(self.district.id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
}

#[sqlx::test(migrations = "./migrations")]
async fn an_admins_edit_survives_the_next_upload(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(3, "")).await;
    let s1 = env.user_id("S1").await;

    let saved = env.edit(s1, &[("grade", "10")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(env.grade(s1).await, "10");
    assert_eq!(
        env.kept(s1).await,
        vec!["grade"],
        "the changed field is kept"
    );

    // The next students.csv still says grade 9.
    let run = env.run("students.csv", &students(3, "")).await;
    let s = env.status(run).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["unchanged"], 3, "{s}");
    assert_eq!(s["counts"]["updated"], 0, "{s}");
    assert_eq!(env.grade(s1).await, "10", "the admin's edit survives");

    let (header, rows, _) = env.download(run, "completed").await;
    let (kept, custom) = (column(&header, "kept"), column(&header, "custom_id"));
    let row = |id: &str| rows.iter().find(|r| r[custom] == id).unwrap().clone();
    assert_eq!(
        row("S1")[kept],
        "grade",
        "the completed file marks the kept field"
    );
    assert_eq!(row("S2")[kept], "");

    // A change to another field still follows the file.
    let file = students(3, "").replace("S1,s1@d.org,Ann1", "S1,s1@d.org,Annie");
    env.run("students.csv", &file).await;
    let (first, grade): (String, String) =
        sqlx::query_as("SELECT first_name, grade FROM users WHERE id = $1")
            .bind(s1)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!((first.as_str(), grade.as_str()), ("Annie", "10"));

    // The keep is audited.
    let kept_audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action = 'user.keep_fields'",
    )
    .bind(s1)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(kept_audit, 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn releasing_a_kept_field_hands_it_back_to_the_feed(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(2, "")).await;
    let s1 = env.user_id("S1").await;
    assert_eq!(
        env.edit(s1, &[("grade", "10"), ("last_name", "Lee-Park")])
            .await
            .status,
        303
    );
    assert_eq!(env.kept(s1).await, vec!["grade", "last_name"]);

    let page = env.c.get(&format!("/users/{s1}")).await;
    assert!(
        page.body.contains("Kept against students.csv"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("action=\"/users/{s1}/kept/release\""))
    );

    // Without the CSRF token: refused, nothing released.
    let forged = env
        .c
        .post_raw(&format!("/users/{s1}/kept/release"), &[("field", "grade")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(env.kept(s1).await, vec!["grade", "last_name"]);

    let r = env
        .c
        .post(&format!("/users/{s1}/kept/release"), &[("field", "grade")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        env.kept(s1).await,
        vec!["last_name"],
        "only grade is released"
    );
    let released: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action = 'user.release_fields'",
    )
    .bind(s1)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(released, 1, "audited");

    // The next run overwrites the released field, and still keeps the other.
    let run = env.run("students.csv", &students(2, "")).await;
    assert_eq!(env.grade(s1).await, "9", "the feed's value again");
    let last: String = sqlx::query_scalar("SELECT last_name FROM users WHERE id = $1")
        .bind(s1)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(last, "Lee-Park");
    let (header, rows, _) = env.download(run, "completed").await;
    let (outcome, kept) = (column(&header, "outcome"), column(&header, "kept"));
    assert_eq!(rows[0][outcome], "updated");
    assert_eq!(rows[0][kept], "last_name");

    // Release all: the file's last name comes back too.
    let r = env
        .c
        .post(&format!("/users/{s1}/kept/release"), &[("field", "all")])
        .await;
    assert_eq!(r.status, 303);
    assert!(env.kept(s1).await.is_empty());
    env.run("students.csv", &students(2, "")).await;
    let last: String = sqlx::query_scalar("SELECT last_name FROM users WHERE id = $1")
        .bind(s1)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(last, "Lee");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_edit_form_names_the_owner_and_warns(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(1, "")).await;
    let s1 = env.user_id("S1").await;
    let page = env.c.get(&format!("/users/{s1}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("students.csv provides this user"),
        "{}",
        page.body
    );
    assert!(page.body.contains(
        "Fields you change here are kept: students.csv will no longer update them until you release them"
    ));
    assert!(page.body.contains("No fields kept"));

    // A manual user: no feed, nothing kept, no warning.
    let school: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    let school = school.to_string();
    let saved = env
        .c
        .post(
            "/users",
            &[
                ("first_name", "Mo"),
                ("last_name", "Hand"),
                ("role", "Teacher"),
                ("email", "mo@d.org"),
                ("password", "long-enough-1"),
                ("active", "1"),
                ("portal_role", "user"),
                ("schools", &school),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let manual = saved.location.unwrap();
    let page = env.c.get(&manual).await;
    assert!(!page.body.contains("provides this user"));
    let id: Uuid = manual.trim_start_matches("/users/").parse().unwrap();
    assert_eq!(env.edit(id, &[("last_name", "Hands")]).await.status, 303);
    assert!(env.kept(id).await.is_empty(), "manual users keep nothing");

    // Status is not kept (SPEC §2: the admin and the file's status both toggle it).
    let r = env.edit(s1, &[("grade", "10"), ("active", "")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(env.kept(s1).await, vec!["grade"]);
    let page = env.c.get(&format!("/users/{s1}")).await;
    assert!(page.body.contains("kept now: Grade"), "{}", page.body);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_password_in_a_file_sets_an_existing_users_password(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(2, "")).await;
    let s1 = env.user_id("S1").await;
    let before = env.password_hash(s1).await;

    let mut file = students(2, "");
    file = file.replace("9,Active,\nS2", "9,Active,Summer-2026!\nS2");
    let run = env.run("students.csv", &file).await;
    let s = env.status(run).await;
    assert_eq!(s["counts"]["updated"], 1, "{s}");
    assert_eq!(s["counts"]["unchanged"], 1, "{s}");
    let after = env.password_hash(s1).await.unwrap();
    assert_ne!(Some(after.clone()), before);
    assert!(after.starts_with("$argon2id$"), "argon2id");
    let temporary: bool = sqlx::query_scalar("SELECT password_temporary FROM users WHERE id = $1")
        .bind(s1)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(!temporary);

    // The run page and completed file say "password" changed, never the value.
    let (header, rows, body) = env.download(run, "completed").await;
    assert_eq!(rows[0][column(&header, "outcome")], "updated");
    assert!(!body.contains("Summer-2026!"));
    let page = env.c.get(&format!("/uploads/{run}")).await;
    assert!(!page.body.contains("Summer-2026!"));

    // Sign in with it over HTTP.
    let c = env.app.client();
    let r = c.sign_in("s1@d.org", "Summer-2026!").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        env.app
            .client()
            .sign_in("s2@d.org", "Summer-2026!")
            .await
            .status,
        401,
        "a blank password leaves the other user alone"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn the_same_file_again_does_not_rehash_or_update(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let file = students(3, "Summer-2026!");
    let first = env.run("students.csv", &file).await;
    assert_eq!(env.status(first).await["counts"]["created"], 3);
    let s1 = env.user_id("S1").await;
    let hash = env.password_hash(s1).await;
    let writes = env.writes_fingerprint().await;

    let again = env.run("students.csv", &file).await;
    let s = env.status(again).await;
    assert_eq!(s["counts"]["unchanged"], 3, "{s}");
    assert_eq!(s["counts"]["updated"], 0, "{s}");
    assert_eq!(env.password_hash(s1).await, hash, "not re-hashed");
    assert_eq!(env.writes_fingerprint().await, writes, "zero writes");

    // An admin's reset is not undone by the same file again…
    let r = env.c.post(&format!("/users/{s1}/password"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reset = env.password_hash(s1).await;
    let third = env.run("students.csv", &file).await;
    assert_eq!(env.status(third).await["counts"]["unchanged"], 3);
    assert_eq!(env.password_hash(s1).await, reset);

    // …but a new value in the file is applied.
    let changed = file.replacen("Summer-2026!", "Autumn-2026!", 1);
    let fourth = env.run("students.csv", &changed).await;
    assert_eq!(env.status(fourth).await["counts"]["updated"], 1);
    assert_eq!(
        env.app
            .client()
            .sign_in("s1@d.org", "Autumn-2026!")
            .await
            .status,
        303
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_short_file_password_for_an_existing_user_is_a_row_error(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(2, "")).await;
    let s1 = env.user_id("S1").await;
    let hash = env.password_hash(s1).await;
    let file = students(2, "").replace("9,Active,\nS2", "9,Active,abc12\nS2");
    let run = env.run("students.csv", &file).await;
    let s = env.status(run).await;
    assert_eq!(s["status"], "completed_with_errors", "{s}");
    assert_eq!(s["counts"]["errors"], 1, "{s}");
    assert_eq!(env.password_hash(s1).await, hash, "left as it was");
    let (header, rows, body) = env.download(run, "errors").await;
    let error = &rows[0][column(&header, "Error")];
    assert!(error.contains("column \"password\""), "{error}");
    assert!(error.contains("shorter than 8 characters"), "{error}");
    assert!(
        !body.contains("abc12"),
        "never echoed, and the column is emptied"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_file_cannot_set_an_admins_password(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let admin: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND email = $2")
            .bind(env.district.id)
            .bind(&env.district.admin_email)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let hash = env.password_hash(admin).await;
    let (first, last, role): (String, String, String) =
        sqlx::query_as("SELECT first_name, last_name, role FROM users WHERE id = $1")
            .bind(admin)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let file = format!(
        "user_guid,email,first_name,last_name,role,school_external_id,password\n{admin},{},{first},{last},{role},,Taken-Over-1\n",
        env.district.admin_email
    );
    let run = env.run("staff.csv", &file).await;
    let s = env.status(run).await;
    assert_eq!(s["counts"]["errors"], 1, "{s}");
    assert_eq!(env.password_hash(admin).await, hash, "unchanged");
    let (header, rows, _) = env.download(run, "errors").await;
    let error = &rows[0][column(&header, "Error")];
    assert!(
        error.contains("administrators are managed in the portal"),
        "{error}"
    );
    assert!(error.contains("column \"password\""), "{error}");
    assert_eq!(
        env.app
            .client()
            .sign_in(&env.district.admin_email, "Taken-Over-1")
            .await
            .status,
        401
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn given_passwords_never_appear_in_any_download(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run("students.csv", &students(2, "")).await;
    // Existing users given passwords, a new user with one, a short one (an error row).
    let mut file = format!("{HEADER}\n");
    file += "S1,s1@d.org,Ann1,Lee,Student,HS,9,Active,Existing-Secret-1\n";
    file += "S2,s2@d.org,Ann2,Lee,Student,HS,9,Active,shorty\n";
    file += "S3,s3@d.org,Ann3,Lee,Student,HS,9,Active,Created-Secret-3\n";
    let run = env.run("students.csv", &file).await;
    let s = env.status(run).await;
    assert_eq!(s["counts"]["updated"], 1, "{s}");
    assert_eq!(s["counts"]["created"], 1, "{s}");
    assert_eq!(s["counts"]["errors"], 1, "{s}");
    for kind in ["uploaded", "completed", "errors"] {
        let (_, _, body) = env.download(run, kind).await;
        for secret in ["Existing-Secret-1", "shorty", "Created-Secret-3"] {
            assert!(!body.contains(secret), "{kind} file shows {secret}");
        }
    }
    let page = env.c.get(&format!("/uploads/{run}")).await;
    let master = env.c.get("/users.csv").await;
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(after::text, '') FROM audit_log WHERE district_id = $1",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    for secret in ["Existing-Secret-1", "shorty", "Created-Secret-3"] {
        assert!(!page.body.contains(secret));
        assert!(!master.body.contains(secret));
        assert!(
            audit.iter().all(|a| !a.contains(secret)),
            "audit shows {secret}"
        );
    }
}
