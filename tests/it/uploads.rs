//! Uploads over real HTTP: the browser flow (without a browser), the three files, the
//! mapper, review, the queue's recovery, the API and the drop folder.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const HEADER: &str = UPLOAD_HEADER;

type Env = UploadEnv;

impl UploadEnv {
    async fn csv(&self, id: Uuid, kind: &str) -> Vec<csv::StringRecord> {
        let r = self.c.get(&format!("/uploads/{id}/files/{kind}")).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        csv::Reader::from_reader(r.body.as_bytes())
            .records()
            .map(|r| r.unwrap())
            .collect()
    }

    async fn header(&self, id: Uuid, kind: &str) -> Vec<String> {
        let r = self.c.get(&format!("/uploads/{id}/files/{kind}")).await;
        csv::Reader::from_reader(r.body.as_bytes())
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect()
    }
}

fn students(n: usize) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

/// The error file of a run whose other rows are unchanged lists the failed rows alone, in
/// order, each with its reason (it reads failed rows only, and the file up to the last one);
/// the completed file still lists the unchanged rows.
#[sqlx::test(migrations = "./migrations")]
async fn the_error_file_of_a_mostly_unchanged_file_lists_its_failed_rows_alone(pool: PgPool) {
    let env = Env::new(pool).await;
    let id = env.upload("students.csv", &students(8)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(id).await["counts"]["created"], 8);

    // Again, rows 3 and 5 broken (lines 4 and 6), the others unchanged before and after.
    let again = students(8)
        .replace(
            "S3,s3@d.org,Ann3,Lee,Student,HS,9,",
            "S3,s3@d.org,Ann3,Lee,Student,HS,13,",
        )
        .replace(
            "S5,s5@d.org,Ann5,Lee,Student,HS,9,",
            "S5,s5@d.org,Ann5,Lee,Student,HS,14,",
        );
    let id = env.upload("students.csv", &again).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["counts"]["unchanged"], 6, "{s}");
    assert_eq!(s["counts"]["errors"], 2, "{s}");

    let errors = env.csv(id, "errors").await;
    let failed: Vec<(&str, &str)> = errors.iter().map(|r| (&r[0], &r[6])).collect();
    assert_eq!(failed, [("S3", "13"), ("S5", "14")]);
    assert!(
        errors[0]
            .iter()
            .next_back()
            .unwrap()
            .contains("line 4, column \"grade\": grade \"13\""),
        "{:?}",
        errors[0]
    );
    assert!(
        errors[1]
            .iter()
            .next_back()
            .unwrap()
            .contains("line 6, column \"grade\": grade \"14\""),
        "{:?}",
        errors[1]
    );
    let completed = env.csv(id, "completed").await;
    let listed: Vec<(&str, &str)> = completed.iter().map(|r| (&r[0], &r[11])).collect();
    assert_eq!(
        listed,
        ["S1", "S2", "S4", "S6", "S7", "S8"].map(|c| (c, "unchanged"))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn upload_runs_through_the_states_and_offers_three_files(pool: PgPool) {
    let env = Env::new(pool).await;
    let mut file = students(3);
    file += "S4,s4@d.org,Bo,Kim,Student,HS,13,Active,\n"; // bad grade
    file += "S5,s5@d.org,Cy,Ng,Student,HS,5,Active,Secret123!\n"; // a given password
    let id = env.upload("students.csv", &file).await;
    assert_eq!(env.status(id).await["status"], "queued");
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(page.body.contains("Queued"));
    let list = env.c.get("/uploads").await;
    assert!(
        list.body.contains("students.csv") && list.body.contains("data-status-url"),
        "live row in the history"
    );

    assert_eq!(env.app.queue.drain().await.unwrap(), 1);
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed_with_errors");
    assert_eq!(s["counts"]["created"], 4);
    assert_eq!(s["counts"]["errors"], 1);
    assert_eq!(s["progress"]["percent"], 100);
    assert_eq!(s["attempts"], 1);

    // Uploaded file: as sent, the password emptied.
    let uploaded = env.csv(id, "uploaded").await;
    assert_eq!(uploaded.len(), 5);
    assert_eq!(&uploaded[4][8], "", "password blanked");
    assert_eq!(&uploaded[4][2], "Cy");

    // Completed file: the good rows with guid, username, outcome, temp password (only for
    // accounts created without a password).
    let header = env.header(id, "completed").await;
    assert_eq!(
        &header[9..],
        &[
            "user_guid",
            "username",
            "outcome",
            "temporary_password",
            "matched_by",
            "previous_source",
            "kept"
        ]
    );
    let completed = env.csv(id, "completed").await;
    assert_eq!(completed.len(), 4);
    let guid: Uuid = completed[0][9].parse().unwrap();
    let db_user: (String, String) =
        sqlx::query_as("SELECT custom_id, username FROM users WHERE id = $1")
            .bind(guid)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(db_user, ("S1".into(), completed[0][10].to_string()));
    assert_eq!(&completed[0][11], "created");
    assert!(completed[0][12].len() >= 12, "a temporary password");
    assert_eq!(&completed[3][0], "S5");
    assert_eq!(
        &completed[3][12], "",
        "no temporary password for an account with its own"
    );
    // The temporary password from the file signs in.
    let u = env.app.client();
    let r = u.sign_in(&completed[0][10], &completed[0][12]).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    // And the given password works for S5.
    assert_eq!(
        env.app
            .client()
            .sign_in("s5@d.org", "Secret123!")
            .await
            .status,
        303
    );

    // Error file: the failed row as sent plus its reason; fixed and sent again, it goes in.
    let header = env.header(id, "errors").await;
    assert_eq!(header.last().unwrap(), "Error");
    let errors = env.csv(id, "errors").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(&errors[0][0], "S4");
    assert!(
        errors[0][9].contains("grade \"13\" is not one of"),
        "{:?}",
        errors[0]
    );
    let r = env.c.get(&format!("/uploads/{id}/files/errors")).await;
    let fixed = r.body.replace(",13,", ",12,");
    let id2 = env.upload("students-errors.csv", &fixed).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id2).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["created"], 1);

    // The detail page shows the summary, rows and downloads.
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(page.body.contains("Completed with Errors"));
    assert!(
        page.body
            .contains(&format!("/uploads/{id}/files/completed"))
    );
    assert!(page.body.contains("is not one of"));
}

#[sqlx::test(migrations = "./migrations")]
async fn sis_headers_are_mapped_once_and_reused(pool: PgPool) {
    let env = Env::new(pool).await;
    let file = "Student Number,Given Name,Surname,Homeroom\n1001,Ann,Lee,4B\n1002,Bo,Kim,5A\n";
    let r = env
        .c
        .post_file("/uploads", "Student.csv", file.as_bytes().to_vec())
        .await;
    let loc = r.location.unwrap();
    assert!(loc.ends_with("/map"), "lands on the mapper: {loc}");
    let id: Uuid = loc
        .trim_start_matches("/uploads/")
        .trim_end_matches("/map")
        .parse()
        .unwrap();
    assert_eq!(env.status(id).await["status"], "needs_mapping");
    let mapper = env.c.get(&loc).await;
    assert!(
        mapper.body.contains("Student Number") && mapper.body.contains("<code>1001</code>"),
        "columns with samples"
    );
    // Given Name and Surname are proposed already.
    assert!(
        mapper
            .body
            .contains("<option value=\"first_name\" selected>")
    );

    // Not enough: role and school are still missing.
    let bad = env
        .c
        .post(
            &loc,
            &[
                ("col0", "custom_id"),
                ("col1", "first_name"),
                ("col2", "last_name"),
                ("col3", "ignore"),
            ],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(
        bad.body
            .contains("required fields not mapped: role, school_external_id"),
        "{}",
        bad.body
    );

    let ok = env
        .c
        .post(
            &loc,
            &[
                ("col0", "custom_id"),
                ("col1", "first_name"),
                ("col2", "last_name"),
                ("col3", "ignore"),
                ("fixed_role", "Student"),
                ("fixed_school", "HS"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(env.status(id).await["status"], "queued");
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(
        (s["status"].as_str(), s["counts"]["created"].as_i64()),
        (Some("completed"), Some(2))
    );

    // The same headers next time need no mapping.
    let id2 = env
        .upload("Student.csv", &format!("{file}1003,Cy,Ng,6C\n"))
        .await;
    assert_eq!(env.status(id2).await["status"], "queued");
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(id2).await["counts"]["created"], 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_truncated_file_waits_in_needs_review_then_approve_or_cancel(pool: PgPool) {
    let env = Env::new(pool).await;
    let _first = env.upload("students.csv", &students(40)).await;
    env.app.queue.drain().await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE archived_at IS NULL")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();

    let truncated = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(truncated).await;
    assert_eq!(s["status"], "needs_review");
    let page = env.c.get(&format!("/uploads/{truncated}")).await;
    assert!(
        page.body
            .contains("would archive 36 of 40 users of file students.csv (90%)")
            || page.body.contains("would archive 36 of 40"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Approve and apply") && page.body.contains("Would archive (36)"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE archived_at IS NULL")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing applied");

    // Cancel one truncated run…
    let r = env
        .c
        .post(&format!("/uploads/{truncated}/cancel"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(env.status(truncated).await["status"], "cancelled");
    // …and approve another: it applies against the current state.
    let again = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(again).await["status"], "needs_review");
    // Meanwhile an admin archives S3 by hand; the approved run plans again and does not
    // count S3 (it is no longer there to archive).
    sqlx::query("UPDATE users SET archived_at = now() WHERE custom_id = 'S40'")
        .execute(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(
        env.c
            .post(&format!("/uploads/{again}/approve"), &[])
            .await
            .status,
        303
    );
    env.app.queue.drain().await.unwrap();
    let s = env.status(again).await;
    assert_eq!(s["status"], "completed");
    assert_eq!(s["counts"]["archived"], 35);
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'run.%' ORDER BY id")
            .fetch_all(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(audit, vec!["run.cancel", "run.approve"]);
    // Approving twice is refused.
    assert_eq!(
        env.c
            .post(&format!("/uploads/{again}/approve"), &[])
            .await
            .status,
        409
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_whose_worker_died_is_picked_up_again_and_applied_once(pool: PgPool) {
    let env = Env::new(pool).await;
    let id = env.upload("students.csv", &students(25)).await;
    // A worker took it and died: in progress, but nobody holds its lock.
    sqlx::query(
        "UPDATE runs SET status = 'in_progress', attempts = 1, started_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(env.app.queue.drain().await.unwrap(), 0, "not queued");
    assert_eq!(env.app.queue.requeue_orphans().await.unwrap(), 1);
    let s = env.status(id).await;
    assert_eq!(s["status"], "queued");
    assert!(s["message"].as_str().unwrap().contains("picked up again"));
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(
        (
            s["status"].as_str(),
            s["counts"]["created"].as_i64(),
            s["attempts"].as_i64()
        ),
        (Some("completed"), Some(25), Some(2))
    );
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE source = 'file:students.csv'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(users, 25);
    let audits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.create' AND run_id = $1",
    )
    .bind(id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(audits, 25, "as if it ran once");
}

#[sqlx::test(migrations = "./migrations")]
async fn two_uploads_for_one_district_are_applied_one_after_the_other(pool: PgPool) {
    let env = Env::new(pool).await;
    let a = env.upload("students.csv", &students(60)).await;
    let mut adults = format!("{HEADER}\n");
    for i in 1..=30 {
        adults += &format!("T{i},t{i}@d.org,Tom{i},Hall,Teacher,HS,,Active,\n");
    }
    let b = env.upload("adults.csv", &adults).await;
    let q1 = env.app.queue.clone();
    let q2 = env.app.queue.clone();
    let (r1, r2) = tokio::join!(async move { q1.drain().await.unwrap() }, async move {
        q2.drain().await.unwrap()
    });
    assert_eq!(r1 + r2, 2);
    assert_eq!(env.status(a).await["counts"]["created"], 60);
    assert_eq!(env.status(b).await["counts"]["created"], 30);
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT lower(username)) FROM users")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(distinct, 91);
}

#[sqlx::test(migrations = "./migrations")]
async fn api_uploads_with_a_token(pool: PgPool) {
    let env = Env::new(pool).await;
    let other = env.app.district("shelbyville").await;
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "nightly",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let other_token = rollcall::ops::create_token(
        &env.app.pool,
        other.id,
        "x",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post = |tok: &str, name: &str, body: Vec<u8>, dry: bool| {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(body).file_name(name.to_string()),
        );
        if dry {
            form = form.text("dry_run", "true");
        }
        http.post(env.app.url("/api/v1/uploads"))
            .bearer_auth(tok)
            .multipart(form)
            .send()
    };

    let r = post("rc_wrong", "students.csv", students(2).into_bytes(), false)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().is_some());
    let r = http.get(env.app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token");

    // A dry run writes nothing.
    let r = post(&token, "students.csv", students(3).into_bytes(), true)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["status_url"], format!("/api/v1/uploads/{id}"));
    env.app.queue.drain().await.unwrap();
    let s: serde_json::Value = http
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            s["status"].as_str(),
            s["counts"]["created"].as_i64(),
            s["dry_run"].as_bool()
        ),
        (Some("completed"), Some(3), Some(true))
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE source LIKE 'file:%'")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // For real, then the completed file.
    let r = post(&token, "students.csv", students(3).into_bytes(), false)
        .await
        .unwrap();
    let id: String = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .into();
    env.app.queue.drain().await.unwrap();
    let file = http
        .get(
            env.app
                .url(&format!("/api/v1/uploads/{id}/files/completed")),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.text().await.unwrap().lines().count(), 4);
    let users: serde_json::Value = http
        .get(env.app.url("/api/v1/users?limit=2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 2);
    let next = users["next"].as_str().unwrap().to_string();
    let page2: serde_json::Value = http
        .get(env.app.url(&next))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page2["users"].as_array().unwrap().len(),
        2,
        "3 students + the admin = 4 users"
    );

    // Another district's upload id: 404, for the status and the files.
    let r = http
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .get(env.app.url(&format!("/api/v1/uploads/{id}/files/uploaded")))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Too large (the test limit is 2 MiB).
    let r = post(&token, "big.csv", vec![b'x'; 3 * 1024 * 1024], false)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Headers that need the mapper: 422 with what is missing.
    let r = post(
        &token,
        "sis.csv",
        b"Given Name,Surname\nA,B\n".to_vec(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(
        r.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("required fields not mapped")
    );

    // A revoked token stops working.
    sqlx::query("UPDATE api_tokens SET revoked_at = now()")
        .execute(&env.app.pool)
        .await
        .unwrap();
    let r = http
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&env.app.pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 32 && !String::from_utf8_lossy(h).contains(&token[3..])),
        "only hashes are stored"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn drop_folder_takes_a_slowly_written_file_once_it_is_complete_exactly_once(pool: PgPool) {
    let env = Env::new(pool).await;
    let q = &env.app.queue;
    let dir = rollcall::jobs::drop::folder(&q.config.data_dir, "springfield", None);
    rollcall::jobs::drop::scan(q).await.unwrap();
    assert!(dir.join("processed").is_dir(), "folders made");

    let content = students(30);
    let (first, rest) = content.split_at(content.len() / 2);
    let path = dir.join("students.csv");
    std::fs::write(&path, first).unwrap();
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs WHERE kind = 'drop'")
            .fetch_one(&env.app.pool)
            .await
            .unwrap()
    };
    for _ in 0..3 {
        rollcall::jobs::drop::scan(q).await.unwrap();
        // still growing: append a little each time
    }
    assert_eq!(runs().await, 0, "a file that was just written is not taken");
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(rest.as_bytes()).unwrap();
    drop(f);
    rollcall::jobs::drop::scan(q).await.unwrap();
    assert_eq!(runs().await, 0, "it grew since the last scan");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    assert_eq!(runs().await, 1, "taken exactly once");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.join("processed")).unwrap().count(), 1);
    q.drain().await.unwrap();
    let (status, created, by, source): (String, i32, String, String) = sqlx::query_as(
        "SELECT status, created, submitted_by, source FROM runs WHERE kind = 'drop'",
    )
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), created, by.as_str(), source.as_str()),
        ("completed", 30, "drop folder", "file:students.csv")
    );

    // A temporary name is left alone; a broken file ends in failed/.
    std::fs::write(dir.join("next.csv.part"), "x").unwrap();
    std::fs::write(dir.join("broken.csv"), [0u8, 159, 146, 150]).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    rollcall::jobs::drop::scan(q).await.unwrap();
    rollcall::jobs::drop::scan(q).await.unwrap();
    q.drain().await.unwrap();
    assert!(dir.join("next.csv.part").exists());
    assert_eq!(std::fs::read_dir(dir.join("failed")).unwrap().count(), 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn retention_purges_files_and_temporary_passwords(pool: PgPool) {
    let env = Env::new(pool).await;
    let id = env.upload("students.csv", &students(2)).await;
    env.app.queue.drain().await.unwrap();
    let temps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM run_rows WHERE temp_password IS NOT NULL")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(temps, 2);
    let now = env.app.clock.now();
    let purged = rollcall::jobs::retention::purge(
        &env.app.pool,
        &env.app.queue.config,
        now + time::Duration::days(31),
    )
    .await
    .unwrap();
    assert_eq!((purged.files, purged.passwords), (0, 1));
    let temps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM run_rows WHERE temp_password IS NOT NULL")
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(temps, 0);
    assert_eq!(
        env.c
            .get(&format!("/uploads/{id}/files/completed"))
            .await
            .status,
        200,
        "the file itself is still there"
    );
    let path: String = sqlx::query_scalar("SELECT file_path FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    let purged = rollcall::jobs::retention::purge(
        &env.app.pool,
        &env.app.queue.config,
        now + time::Duration::days(91),
    )
    .await
    .unwrap();
    assert_eq!(purged.files, 1);
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(
        env.c
            .get(&format!("/uploads/{id}/files/uploaded"))
            .await
            .status,
        409
    );
    let s = env.status(id).await;
    assert_eq!(s["counts"]["created"], 2, "the history row stays");

    // The search index's change notes: the upload's stays, one older than a day goes.
    let notes = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_changes")
            .fetch_one(&env.app.pool)
            .await
            .unwrap()
    };
    let recent = notes().await;
    assert!(recent >= 1, "the upload's users were noted");
    sqlx::query(
        "INSERT INTO user_changes (district_id, noted_at) VALUES ($1, now() - interval '25 hours')",
    )
    .bind(env.district.id)
    .execute(&env.app.pool)
    .await
    .unwrap();
    rollcall::jobs::retention::purge(&env.app.pool, &env.app.queue.config, now)
        .await
        .unwrap();
    assert_eq!(notes().await, recent);
}

#[sqlx::test(migrations = "./migrations")]
async fn path_like_file_names_are_stored_safely(pool: PgPool) {
    let env = Env::new(pool).await;
    let id = env.upload("../../etc/students.csv", &students(1)).await;
    let (name, source, path): (String, String, String) =
        sqlx::query_as("SELECT file_name, source, file_path FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), source.as_str()),
        ("students.csv", "file:students.csv")
    );
    assert!(path.ends_with(&format!("{id}.csv")));
    assert!(path.starts_with(env.app.queue.config.data_dir.to_str().unwrap()));
}

#[sqlx::test(migrations = "./migrations")]
async fn another_districts_upload_answers_404(pool: PgPool) {
    let env = Env::new(pool).await;
    let id = env.upload("students.csv", &students(1)).await;
    let other = env.app.district("shelbyville").await;
    let c = env.app.client();
    c.sign_in(&other.admin_email, &other.admin_password).await;
    for path in [
        format!("/uploads/{id}"),
        format!("/uploads/{id}/status.json"),
        format!("/uploads/{id}/files/uploaded"),
        format!("/uploads/{id}/map"),
    ] {
        assert_eq!(c.get(&path).await.status, 404, "{path}");
    }
    for path in [
        format!("/uploads/{id}/approve"),
        format!("/uploads/{id}/cancel"),
        format!("/uploads/{id}/map"),
    ] {
        assert_eq!(c.post(&path, &[]).await.status, 404, "{path}");
    }
    // A school admin imports for their school (issue 16, item 6; this was a 403 before):
    // the district's own runs are not theirs to see.
    let s = env.app.school(env.district.id, "MS", "Middle").await;
    env.app
        .member(env.district.id, "principal", "school_admin", &[s])
        .await;
    let p = env.app.client();
    p.sign_in("principal", PASSWORD).await;
    assert_eq!(p.get("/uploads").await.status, 200);
    assert_eq!(p.get(&format!("/uploads/{id}")).await.status, 404);
    assert_eq!(p.get(&format!("/uploads/{id}/map")).await.status, 403);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_oneroster_zip_sent_to_the_api_runs_as_a_sync(pool: PgPool) {
    let env = Env::new(pool).await;
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "nightly",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let dir = std::path::Path::new("../shared/test-data/edfi-lms-toolkit/oneroster-1.1");
    for name in ["manifest.csv", "orgs.csv", "users.csv"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(dir.join(name)).unwrap()).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("oneroster.zip"),
    );
    let r = reqwest::Client::new()
        .post(env.app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.app.queue.drain().await.unwrap();
    let s: serde_json::Value = reqwest::Client::new()
        .get(env.app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (s["status"].as_str(), s["counts"]["created"].as_i64()),
        (Some("completed"), Some(10)),
        "{s}"
    );
    let source: String = sqlx::query_scalar("SELECT source FROM runs WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(source.starts_with("sync:"), "{source}");
}

/// The `<tr>` of the upload history that links to run `id`.
fn history_row(body: &str, id: Uuid) -> &str {
    let at = body
        .find(&format!("href=\"/uploads/{id}\""))
        .expect("the run is in the history");
    let start = body[..at].rfind("<tr").unwrap();
    let end = at + body[at..].find("</tr>").unwrap();
    &body[start..end]
}

/// Every `/users/<id>` the page links to.
fn user_links(body: &str) -> Vec<Uuid> {
    body.match_indices("href=\"/users/")
        .filter_map(|(i, m)| body.get(i + m.len()..i + m.len() + 36)?.parse().ok())
        .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_cancelled_review_run_reads_would_archive_on_its_page_and_in_the_history(pool: PgPool) {
    let env = Env::new(pool).await;
    env.upload("students.csv", &students(40)).await;
    env.app.queue.drain().await.unwrap();
    let truncated = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(truncated).await["status"], "needs_review");
    let r = env
        .c
        .post(&format!("/uploads/{truncated}/cancel"), &[])
        .await;
    assert_eq!(r.status, 303);
    let s = env.status(truncated).await;
    assert_eq!(
        (s["status"].as_str(), s["applied"].as_bool()),
        (Some("cancelled"), Some(false))
    );
    let n = s["counts"]["archived"].as_i64().unwrap();
    assert!(n > 0, "the preview counted the users it would archive");

    let page = env.c.get(&format!("/uploads/{truncated}")).await;
    assert!(
        page.body.contains(&format!("Would archive ({n})")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&format!("Archived ({n})")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<th>Archived</th>"),
        "counts box: {}",
        page.body
    );
    assert!(
        page.body.contains("<th>Would archive</th>"),
        "{}",
        page.body
    );

    let list = env.c.get("/uploads").await;
    let row = history_row(&list.body, truncated);
    assert!(row.contains("not applied"), "{row}");
    assert!(
        !row.contains(&format!("<td class=\"num\">{n}</td>")),
        "{row}"
    );
    assert!(
        row.contains(&format!("title=\"Would archive\">{n}</td>")),
        "{row}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_dry_run_says_would_create_links_to_no_missing_user_and_the_api_says_applied(
    pool: PgPool,
) {
    let env = Env::new(pool).await;
    let token = rollcall::ops::create_token(
        &env.app.pool,
        env.district.id,
        "nightly",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let send = |dry: bool| {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(students(3).into_bytes()).file_name("students.csv"),
        );
        if dry {
            form = form.text("dry_run", "true");
        }
        http.post(env.app.url("/api/v1/uploads"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
    };
    let get = |id: String| {
        http.get(env.app.url(&format!("/api/v1/uploads/{id}")))
            .bearer_auth(&token)
            .send()
    };

    let r = send(true).await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let dry: String = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.app.queue.drain().await.unwrap();
    let s: serde_json::Value = get(dry.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            s["status"].as_str(),
            s["dry_run"].as_bool(),
            s["counts"]["created"].as_i64(),
            s["applied"].as_bool()
        ),
        (Some("completed"), Some(true), Some(3), Some(false))
    );

    let page = env.c.get(&format!("/uploads/{dry}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Would create"), "{}", page.body);
    assert!(!page.body.contains("<th>Created</th>"), "{}", page.body);
    for u in user_links(&page.body) {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(u)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
        assert!(
            exists,
            "the dry run's page links to /users/{u}, who does not exist"
        );
    }

    let r = send(false).await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let real: String = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.app.queue.drain().await.unwrap();
    let s: serde_json::Value = get(real.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            s["status"].as_str(),
            s["dry_run"].as_bool(),
            s["applied"].as_bool()
        ),
        (Some("completed"), Some(false), Some(true))
    );
    let page = env.c.get(&format!("/uploads/{real}")).await;
    assert!(page.body.contains("<th>Created</th>"), "{}", page.body);
    assert!(!page.body.contains("Would create"), "{}", page.body);
    assert!(
        !user_links(&page.body).is_empty(),
        "a real run links its users"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn an_approved_review_run_does_not_read_as_a_retry(pool: PgPool) {
    let env = Env::new(pool).await;
    env.upload("students.csv", &students(40)).await;
    env.app.queue.drain().await.unwrap();
    let truncated = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(truncated).await["status"], "needs_review");
    let r = env
        .c
        .post(&format!("/uploads/{truncated}/approve"), &[])
        .await;
    assert_eq!(r.status, 303);
    env.app.queue.drain().await.unwrap();
    let s = env.status(truncated).await;
    assert_eq!(
        (
            s["status"].as_str(),
            s["attempts"].as_i64(),
            s["applied"].as_bool()
        ),
        (Some("completed"), Some(1), Some(true))
    );
    let page = env.c.get(&format!("/uploads/{truncated}")).await;
    assert!(!page.body.contains("<dt>Attempts</dt>"), "{}", page.body);
    assert!(page.body.contains("Approved after review"), "{}", page.body);
    assert!(page.body.contains("<th>Archived</th>"), "{}", page.body);
}
