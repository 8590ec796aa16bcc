//! Owners and moves (SPEC §4, issue 13): files share their users, sync-owned rows are skipped
//! or refused, moved rows carry matched_by and previous_source, the per-school guard, and an
//! admin handing a user to another owner — end to end through real uploads.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// A student row: custom_id `S{n}`, school HS.
fn student(n: u32) -> String {
    format!("S{n},s{n}@d.org,Ann{n},Lee,Student,HS,9,Active,")
}

/// A student row in another school.
fn student_at(n: u32, school: &str) -> String {
    format!("S{n},s{n}@d.org,Ann{n},Lee,Student,{school},9,Active,")
}

/// A teacher row: custom_id `T{n}`.
fn teacher(n: u32) -> String {
    format!("T{n},t{n}@d.org,Tim{n},Roe,Teacher,HS,,Active,")
}

/// Student `S{n}` as staff (they moved into the adults file).
fn student_as_staff(n: u32) -> String {
    format!("S{n},s{n}@d.org,Ann{n},Lee,Staff,HS,,Active,")
}

fn file(rows: &[String]) -> String {
    let mut out = format!("{UPLOAD_HEADER}\n");
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

fn students(ns: impl IntoIterator<Item = u32>) -> Vec<String> {
    ns.into_iter().map(student).collect()
}

fn teachers(ns: impl IntoIterator<Item = u32>) -> Vec<String> {
    ns.into_iter().map(teacher).collect()
}

impl UploadEnv {
    /// Upload and run it; the run's status JSON.
    async fn run_sources(&self, name: &str, rows: &[String]) -> serde_json::Value {
        let id = self.upload(name, &file(rows)).await;
        self.app.queue.drain().await.unwrap();
        self.status(id).await
    }

    /// `(source, archived)` of the user with this custom_id.
    async fn owner(&self, custom_id: &str) -> (String, bool) {
        sqlx::query_as(
            "SELECT source, archived_at IS NOT NULL FROM users WHERE district_id = $1 AND custom_id = $2",
        )
        .bind(self.district.id)
        .bind(custom_id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    async fn guid_sources(&self, custom_id: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = $2")
            .bind(self.district.id)
            .bind(custom_id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn archived_users(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE district_id = $1 AND archived_at IS NOT NULL",
        )
        .bind(self.district.id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    /// Audit entries written by one run.
    async fn audit_of_run(&self, run: &serde_json::Value) -> i64 {
        let id: Uuid = run["id"].as_str().unwrap().parse().unwrap();
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE district_id = $1 AND run_id = $2")
            .bind(self.district.id)
            .bind(id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Every user's id, source and version, in id order.
    async fn versions(&self) -> Vec<(Uuid, String, i64)> {
        sqlx::query_as("SELECT id, source, version FROM users WHERE district_id = $1 ORDER BY id")
            .bind(self.district.id)
            .fetch_all(&self.app.pool)
            .await
            .unwrap()
    }

    /// A sync connection of this district; its id.
    async fn sync_connection(&self, name: &str) -> Uuid {
        let id = Uuid::new_v4();
        rollcall::db::syncs::insert(
            &self.app.pool,
            self.district.id,
            &rollcall::db::syncs::NewConnection {
                id,
                kind: "oneroster_csv",
                name,
                base_url: None,
                token_url: None,
                client_id: None,
                secret_sealed: None,
                interval_minutes: 1440,
                next_run_at: None,
                created_by: "test",
            },
        )
        .await
        .unwrap();
        id
    }

    /// A downloaded file as records.
    async fn records(&self, run: &serde_json::Value, kind: &str) -> Vec<Vec<String>> {
        let id = run["id"].as_str().unwrap();
        let r = self.c.get(&format!("/uploads/{id}/files/{kind}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(r.body.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }
}

fn counts(s: &serde_json::Value) -> (i64, i64, i64, i64, i64) {
    let c = &s["counts"];
    let n = |k: &str| c[k].as_i64().unwrap();
    (
        n("created"),
        n("unchanged") + n("updated") + n("restored"),
        n("moved"),
        n("archived"),
        n("errors"),
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn two_files_to_one_and_back_moves_everyone_and_archives_nobody(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=6)).await;
    env.run_sources("adults.csv", &teachers(1..=4)).await;
    let everyone: Vec<String> = students(1..=6).into_iter().chain(teachers(1..=4)).collect();

    // One file with everyone (seed 004): every row moves, nothing refused, nobody archived.
    let s = env.run_sources("all.csv", &everyone).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(counts(&s), (0, 10, 10, 0, 0));
    for id in ["S1", "S6", "T1", "T4"] {
        assert_eq!(env.owner(id).await, ("file:all.csv".into(), false));
    }
    // The two old files own nobody now: sending them again takes their users back.
    let s = env.run_sources("students.csv", &students(1..=6)).await;
    assert_eq!(counts(&s), (0, 6, 6, 0, 0));
    let s = env.run_sources("adults.csv", &teachers(1..=4)).await;
    assert_eq!(counts(&s), (0, 4, 4, 0, 0));
    for n in 1..=6 {
        assert_eq!(
            env.owner(&format!("S{n}")).await,
            ("file:students.csv".into(), false)
        );
    }
    for n in 1..=4 {
        assert_eq!(
            env.owner(&format!("T{n}")).await,
            ("file:adults.csv".into(), false)
        );
    }
    assert_eq!(env.archived_users().await, 0);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND source = 'file:all.csv'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_student_moves_to_the_adults_file_in_either_order(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=3)).await;
    env.run_sources("adults.csv", &teachers(1..=2)).await;
    let (s1, s2) = (env.guid_sources("S1").await, env.guid_sources("S2").await);

    // Order A — the adults file first: S1 moves, and the students file without them no
    // longer covers them. Nobody is archived on the way.
    let mut adults = teachers(1..=2);
    adults.push(student_as_staff(1));
    let s = env.run_sources("adults.csv", &adults).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(counts(&s), (0, 3, 1, 0, 0));
    assert_eq!(env.owner("S1").await, ("file:adults.csv".into(), false));
    let s = env.run_sources("students.csv", &students([2, 3])).await;
    assert_eq!(counts(&s), (0, 2, 0, 0, 0));
    assert_eq!(env.archived_users().await, 0);
    assert_eq!(env.guid_sources("S1").await, s1);

    // Order B — the students file first, the adults file waiting behind it (sent together,
    // as a script or the drop folder does): the students file leaves S2 to the adults file,
    // which moves them. Nobody is archived on the way.
    let (students_run, adults_run) = {
        let mut adults = adults.clone();
        adults.push(student_as_staff(2));
        (
            env.upload("students.csv", &file(&students([3]))).await,
            env.upload("adults.csv", &file(&adults)).await,
        )
    };
    assert_eq!(env.app.queue.drain().await.unwrap(), 2);
    let s = env.status(students_run).await;
    assert_eq!(
        counts(&s),
        (0, 1, 0, 0, 0),
        "S2 left to the adults file: {s}"
    );
    let s = env.status(adults_run).await;
    assert_eq!(counts(&s), (0, 4, 1, 0, 0), "{s}");
    assert_eq!(env.owner("S2").await, ("file:adults.csv".into(), false));
    assert_eq!(env.guid_sources("S2").await, s2);
    assert_eq!(env.archived_users().await, 0);

    // Order B, one upload finished before the next is sent: the students file cannot know
    // that the adults file will list S3, so S3 is archived as missing from their owner; the
    // adults file then restores them with the same GUID, memberships and history, marked
    // moved (a known limit, in the notes).
    let s3 = env.guid_sources("S3").await;
    let s = env.run_sources("students.csv", &students([4])).await;
    assert_eq!(counts(&s), (1, 0, 0, 1, 0));
    adults.push(student_as_staff(2));
    adults.push(student_as_staff(3));
    let s = env.run_sources("adults.csv", &adults).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["restored"], 1);
    assert_eq!(s["counts"]["moved"], 1);
    assert_eq!(env.owner("S3").await, ("file:adults.csv".into(), false));
    assert_eq!(env.guid_sources("S3").await, s3, "same GUID");
    let memberships: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_schools WHERE district_id = $1 AND user_id = $2",
    )
    .bind(env.district.id)
    .bind(s3)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(memberships, 1);
    let history: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE district_id = $1 AND entity_id = $2 ORDER BY at, id",
    )
    .bind(env.district.id)
    .bind(s3)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(history, ["user.create", "user.archive", "user.restore"]);
    assert_eq!(env.archived_users().await, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn sync_owned_rows_in_a_file_are_skipped_when_unchanged_and_refused_when_changed(
    pool: PgPool,
) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=3)).await;
    let sync = env.sync_connection("Clever nightly").await;
    sqlx::query(
        "UPDATE users SET source = $2 WHERE district_id = $1 AND custom_id IN ('S1', 'S2')",
    )
    .bind(env.district.id)
    .bind(format!("sync:{sync}"))
    .execute(&env.app.pool)
    .await
    .unwrap();
    let before = env.versions().await;

    let mut rows = students(1..=3);
    rows[1] = rows[1].replace("Ann2", "Changed");
    let s = env.run_sources("students.csv", &rows).await;
    assert_eq!(s["status"], "completed_with_errors", "{s}");
    assert_eq!(s["counts"]["skipped"], 1);
    assert_eq!(s["counts"]["errors"], 1);
    assert_eq!(s["counts"]["unchanged"], 1);
    assert_eq!(s["counts"]["archived"], 0);
    assert_eq!(env.versions().await, before, "nothing written");
    assert_eq!(env.audit_of_run(&s).await, 0);

    let errors = env.records(&s, "errors").await;
    assert_eq!(errors.len(), 2);
    let reason = errors[1].last().unwrap();
    assert!(
        reason.contains("provisioned by roster sync \"Clever nightly\""),
        "{reason}"
    );
    let completed = env.records(&s, "completed").await;
    let outcome = completed[0].iter().position(|h| h == "outcome").unwrap();
    let outcomes: Vec<&str> = completed[1..].iter().map(|r| r[outcome].as_str()).collect();
    assert_eq!(outcomes, ["skipped", "unchanged"]);

    // The run page shows the skipped count and rows.
    let page = env
        .c
        .get(&format!("/uploads/{}", s["id"].as_str().unwrap()))
        .await;
    assert!(
        page.body.contains("<th>Skipped</th><td>1</td>"),
        "{}",
        page.body
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn moved_rows_carry_matched_by_and_previous_source_in_the_completed_file(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=2)).await;
    let mut adults = vec![student_as_staff(1)];
    adults.extend(teachers([1]));
    let s = env.run_sources("adults.csv", &adults).await;
    assert_eq!(s["counts"]["moved"], 1, "{s}");
    assert_eq!(s["counts"]["updated"], 1);
    assert_eq!(s["counts"]["created"], 1);

    let completed = env.records(&s, "completed").await;
    let col = |name: &str| completed[0].iter().position(|h| h == name).unwrap();
    let (m, p, o) = (col("matched_by"), col("previous_source"), col("outcome"));
    assert_eq!(
        (&*completed[1][o], &*completed[1][m], &*completed[1][p]),
        ("updated", "custom_id", "students.csv")
    );
    assert_eq!(
        (&*completed[2][o], &*completed[2][m], &*completed[2][p]),
        ("created", "new", "")
    );
    let stored: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT matched_by, previous_source FROM run_rows WHERE district_id = $1 AND run_id = $2 AND line = 2",
    )
    .bind(env.district.id)
    .bind(s["id"].as_str().unwrap().parse::<Uuid>().unwrap())
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (Some("custom_id".into()), Some("file:students.csv".into()))
    );
    // The moved user's audit entry says from which owner.
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT before, after FROM audit_log WHERE district_id = $1 AND entity_id = $2 AND action = 'user.update'",
    )
    .bind(env.district.id)
    .bind(env.guid_sources("S1").await)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(before["source"], "file:students.csv");
    assert_eq!(after["source"], "file:adults.csv");
    assert_eq!(after["role"], "Staff");

    // The run page lists the moved row from its old owner; the history shows the count.
    let page = env
        .c
        .get(&format!("/uploads/{}", s["id"].as_str().unwrap()))
        .await;
    assert!(
        page.body.contains("<th>Moved</th><td>1</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("from students.csv"), "{}", page.body);
    let history = env.c.get("/uploads").await;
    assert!(
        history.body.contains("title=\"Moved\">1</td>"),
        "{}",
        history.body
    );
    // A dry run says "would move".
    let id = env.upload("students.csv", &file(&students(1..=2))).await;
    sqlx::query("UPDATE runs SET dry_run = true WHERE id = $1")
        .bind(id)
        .execute(&env.app.pool)
        .await
        .unwrap();
    env.app.queue.drain().await.unwrap();
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(
        page.body.contains("<th>Would move</th><td>1</td>"),
        "{}",
        page.body
    );
    assert_eq!(env.owner("S1").await, ("file:adults.csv".into(), false));
}

#[sqlx::test(migrations = "./migrations")]
async fn per_school_guard_trips_on_one_emptied_school_inside_a_full_file(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.app
        .school(env.district.id, "E1", "Lincoln Elementary")
        .await;
    let full: Vec<String> = (1..=400)
        .map(student)
        .chain((401..=425).map(|n| student_at(n, "E1")))
        .collect();
    assert_eq!(
        env.run_sources("students.csv", &full).await["status"],
        "completed"
    );

    // 20 of Lincoln's 25 students missing: 5% of the file, 80% of the school.
    let emptied: Vec<String> = full[..405].to_vec();
    let s = env.run_sources("students.csv", &emptied).await;
    assert_eq!(s["status"], "needs_review", "{s}");
    let message = s["message"].as_str().unwrap();
    assert!(
        message.contains("would archive 20 of 25 users of school Lincoln Elementary (80%)"),
        "{message}"
    );
    assert_eq!(env.archived_users().await, 0, "nothing applied");

    // The settings page shows the school guard and takes a new threshold (validated).
    let settings = env.c.get("/settings").await;
    assert!(
        settings.body.contains("name=\"school_pct\""),
        "{}",
        settings.body
    );
    assert!(settings.body.contains("name=\"school_min\""));
    let guard = |pct: &'static str| {
        [
            ("archive_pct", "10"),
            ("archive_min", "10"),
            ("update_pct", "75"),
            ("school_pct", pct),
            ("school_min", "20"),
        ]
    };
    assert_eq!(
        env.c.post("/settings/guard", &guard("150")).await.status,
        422
    );
    assert_eq!(
        env.c.post("/settings/guard", &guard("85")).await.status,
        303
    );
    let s = env.run_sources("students.csv", &emptied).await;
    assert_eq!(s["status"], "completed", "80% is under 85%: {s}");
    assert_eq!(s["counts"]["archived"], 20);
}

#[sqlx::test(migrations = "./migrations")]
async fn an_admin_hands_a_user_to_another_owner(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=2)).await;
    env.run_sources("adults.csv", &teachers([1])).await;
    let s1 = env.guid_sources("S1").await;
    let page = env.c.get(&format!("/users/{s1}")).await;
    assert!(
        page.body
            .contains("Belongs to <strong>students.csv</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<option value=\"file:adults.csv\">File adults.csv</option>")
    );

    // To manual: protected from archiving, audited.
    let r = env
        .c
        .post(&format!("/users/{s1}/owner"), &[("owner", "manual")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (source, prevent): (String, bool) =
        sqlx::query_as("SELECT source, prevent_archiving FROM users WHERE id = $1")
            .bind(s1)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!((source.as_str(), prevent), ("manual", true));
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT before, after FROM audit_log WHERE district_id = $1 AND entity_id = $2 AND action = 'user.owner'",
    )
    .bind(env.district.id)
    .bind(s1)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(before["source"], "file:students.csv");
    assert_eq!(after["source"], "manual");
    assert_eq!(after["prevent_archiving"], true);
    // students.csv without S1 does not archive them now.
    let s = env.run_sources("students.csv", &students([2])).await;
    assert_eq!(s["counts"]["archived"], 0);

    // To another file source.
    let r = env
        .c
        .post(
            &format!("/users/{s1}/owner"),
            &[("owner", "file:adults.csv")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(env.owner("S1").await.0, "file:adults.csv");
    // Only the district's own file sources.
    let r = env
        .c
        .post(&format!("/users/{s1}/owner"), &[("owner", "file:nope.csv")])
        .await;
    assert_eq!(r.status, 400);
    // Without the CSRF token: refused.
    let r = env
        .c
        .post_raw(&format!("/users/{s1}/owner"), &[("owner", "manual")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(env.owner("S1").await.0, "file:adults.csv");

    // A user of a live sync cannot be handed away.
    let sync = env.sync_connection("Clever nightly").await;
    let s2 = env.guid_sources("S2").await;
    sqlx::query("UPDATE users SET source = $2 WHERE id = $1")
        .bind(s2)
        .bind(format!("sync:{sync}"))
        .execute(&env.app.pool)
        .await
        .unwrap();
    let page = env.c.get(&format!("/users/{s2}")).await;
    assert!(
        page.body
            .contains("Provisioned by roster sync Clever nightly"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!("action=\"/users/{s2}/owner\"")));
    let r = env
        .c
        .post(&format!("/users/{s2}/owner"), &[("owner", "manual")])
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(env.owner("S2").await.0, format!("sync:{sync}"));
}

#[sqlx::test(migrations = "./migrations")]
async fn reupload_after_moves_is_a_no_op(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.run_sources("students.csv", &students(1..=4)).await;
    env.run_sources("adults.csv", &teachers(1..=2)).await;
    let everyone: Vec<String> = students(1..=4).into_iter().chain(teachers(1..=2)).collect();
    let moved = env.run_sources("all.csv", &everyone).await;
    assert_eq!(moved["counts"]["moved"], 6);
    assert_eq!(env.audit_of_run(&moved).await, 6, "each move is audited");

    let before = env.versions().await;
    let s = env.run_sources("all.csv", &everyone).await;
    assert_eq!(s["status"], "completed");
    assert_eq!(counts(&s), (0, 6, 0, 0, 0));
    assert_eq!(s["counts"]["unchanged"], 6);
    assert_eq!(env.audit_of_run(&s).await, 0, "no audit rows");
    assert_eq!(env.versions().await, before, "no user written");
}
