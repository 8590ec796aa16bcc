//! The district home page (issue 14, item 1): the runs that need attention first, a card
//! per source with its last run, staleness and pause, users per school and role; a school
//! admin's version; tenant scoping.

use crate::helpers::*;
use sqlx::PgPool;
use time::Duration;
use uuid::Uuid;

fn students(n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

fn staff(n: usize, night: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("T{i},t{i}@d.org,Tess{i},Night{night},Teacher,HS,,Active,\n");
    }
    s
}

/// The nightly file's runs, moved back to one a night ending `last_days_ago` days ago (the
/// server stamps a run with the database's time; the history is what a real district has).
async fn spread_nightly(env: &UploadEnv, source: &str, last_days_ago: i64) {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM runs WHERE district_id = $1 AND source = $2 ORDER BY received_at DESC",
    )
    .bind(env.district.id)
    .bind(source)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert!(ids.len() >= 3, "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        sqlx::query(
            "UPDATE runs SET received_at = received_at - make_interval(days => $3),
                             started_at = started_at - make_interval(days => $3),
                             finished_at = finished_at - make_interval(days => $3)
             WHERE district_id = $1 AND id = $2",
        )
        .bind(env.district.id)
        .bind(id)
        .bind((last_days_ago + i as i64) as i32)
        .execute(&env.app.pool)
        .await
        .unwrap();
    }
}

/// The card of one source on the home page (its `<section>`).
fn card<'a>(body: &'a str, name: &str) -> &'a str {
    let marker = format!("aria-label=\"{name}\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no card for {name}: {body}"));
    let end = body[start..]
        .find("</section>")
        .map_or(body.len(), |e| start + e);
    &body[start..end]
}

#[sqlx::test(migrations = "./migrations")]
async fn home_shows_the_held_run_first_linked_a_stale_source_and_a_pause(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    // students.csv: 40, then 4 (the guard holds it in Needs Review).
    env.upload("students.csv", &students(40)).await;
    env.app.queue.drain().await.unwrap();
    let held = env.upload("students.csv", &students(4)).await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(held).await["status"], "needs_review");
    // staff.csv: a nightly file, three nights running, the last one a day ago.
    for night in 1..=3 {
        env.upload("staff.csv", &staff(3, night)).await;
        env.app.queue.drain().await.unwrap();
    }
    spread_nightly(&env, "file:staff.csv", 1).await;

    let home = env.c.get("/").await;
    assert_eq!(home.status, 200);
    let body = &home.body;
    let attention = &body[body.find("Needs attention").expect("attention first")..];
    assert!(
        body.find("Needs attention") < body.find("aria-label=\"staff.csv\""),
        "attention comes before the cards"
    );
    let link = format!("href=\"/uploads/{held}\"");
    assert!(attention.contains(&link), "the held run is linked: {body}");
    assert!(attention.contains("Needs Review"), "{body}");
    // The students.csv card shows its last run with its badge; staff.csv is not stale yet.
    let students_card = card(body, "students.csv");
    assert!(students_card.contains("badge-review"), "{students_card}");
    assert!(students_card.contains(&link), "{students_card}");
    assert!(!body.contains("No file for"), "one day is within 36 hours");
    // Users per school and role (40 students, 3 teachers at High School).
    assert!(body.contains("Users per school and role"));
    assert!(body.contains("High School"), "{body}");

    // Two days later, staff.csv has been quiet for three days.
    env.app.clock.advance(Duration::days(2));
    let body = env.c.get("/").await.body;
    let staff_card = card(&body, "staff.csv");
    assert!(
        staff_card.contains("No file for 3 days — usually every 1 day"),
        "{staff_card}"
    );
    // A never-regular source is not stale.
    assert!(!card(&body, "students.csv").contains("No file for"));

    // Paused until a date: the card says so and the warning goes.
    let until = (env.app.clock.now() + Duration::days(10))
        .date()
        .to_string();
    let r = env
        .c
        .post(
            "/sources/pause",
            &[("source", "file:staff.csv"), ("until", until.as_str())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let body = env.c.get("/").await.body;
    let staff_card = card(&body, "staff.csv");
    assert!(
        staff_card.contains(&format!("Paused until {until}")),
        "{staff_card}"
    );
    assert!(!staff_card.contains("No file for"), "{staff_card}");
    assert!(staff_card.contains("action=\"/sources/resume\""));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = 'source.pause'
           AND after->>'source' = 'file:staff.csv' AND after->>'paused_until' = $2",
    )
    .bind(env.district.id)
    .bind(&until)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Resumed by hand: stale again (nothing came).
    let r = env
        .c
        .post("/sources/resume", &[("source", "file:staff.csv")])
        .await;
    assert_eq!(r.status, 303);
    let body = env.c.get("/").await.body;
    assert!(card(&body, "staff.csv").contains("No file for"));

    // Approving the held run takes it off the list.
    env.c.post(&format!("/uploads/{held}/approve"), &[]).await;
    env.app.queue.drain().await.unwrap();
    let body = env.c.get("/").await.body;
    assert!(!attention_of(&body).contains(&link), "{body}");
}

/// A run of `source` that failed now (as a drop-folder file that could not be read does).
async fn failed_run(env: &UploadEnv, source: &str) -> Uuid {
    use rollcall::db::runs;
    use rollcall::domain::{ActorKind, RunKind, RunStatus};
    let id = runs::insert(
        &env.app.pool,
        env.district.id,
        &runs::NewRun {
            kind: RunKind::Drop,
            source,
            file_name: Some("staff.csv"),
            file_sha256: None,
            file_path: None,
            dry_run: false,
            approved: false,
            options: serde_json::json!({}),
            submitted_kind: ActorKind::Drop,
            submitted_by: "drop folder",
            status: RunStatus::Queued,
        },
    )
    .await
    .unwrap();
    let finish = runs::Finish::ended(RunStatus::Failed, "the file is not a CSV file".into());
    runs::finish(
        &env.app.pool,
        env.district.id,
        id,
        &finish,
        env.app.clock.now(),
    )
    .await
    .unwrap();
    id
}

fn attention_of(body: &str) -> &str {
    &body[body.find("Needs attention").expect("attention")
        ..body.find("<h2>Sources").expect("sources")]
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_run_needs_attention_until_its_source_succeeds_or_two_weeks_pass(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let failed = failed_run(&env, "file:staff.csv").await;
    let link = format!("href=\"/uploads/{failed}\"");
    let body = env.c.get("/").await.body;
    let attention = attention_of(&body);
    assert!(attention.contains(&link), "{body}");
    assert!(
        attention.contains("badge-err") && attention.contains("Failed"),
        "{attention}"
    );
    assert!(attention.contains("the file is not a CSV file"));
    // A later success of the same source clears it.
    env.upload("staff.csv", &staff(2, 1)).await;
    env.app.queue.drain().await.unwrap();
    let body = env.c.get("/").await.body;
    assert!(!attention_of(&body).contains(&link), "{body}");
    assert!(body.contains("Nothing waits for you"), "{body}");

    // Another source's failure stays for 14 days, then leaves the list.
    let other = failed_run(&env, "file:adults.csv").await;
    let link = format!("href=\"/uploads/{other}\"");
    env.app.clock.advance(Duration::days(13));
    assert!(attention_of(&env.c.get("/").await.body).contains(&link));
    env.app.clock.advance(Duration::days(2));
    assert!(!attention_of(&env.c.get("/").await.body).contains(&link));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_sees_their_schools_counts_and_no_run_links(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    let north = app.school(d.id, "N1", "North Elementary").await;
    let south = app.school(d.id, "S1", "South Elementary").await;
    for i in 0..3 {
        app.member(d.id, &format!("n{i}"), "user", &[north]).await;
    }
    app.member(d.id, "s0", "user", &[south]).await;
    app.member(d.id, "principal", "school_admin", &[north])
        .await;
    // A district run exists (the admin's upload).
    let admin = app.client();
    admin.sign_in(&d.admin_email, PASSWORD).await;
    let r = admin
        .post_file(
            "/uploads",
            "staff.csv",
            format!("{UPLOAD_HEADER}\nT1,t1@d.org,Tess,Lee,Teacher,N1,,Active,\n").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 303);
    app.queue.drain().await.unwrap();

    let p = app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    let home = p.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("North Elementary"), "{}", home.body);
    assert!(!home.body.contains("South Elementary"), "{}", home.body);
    assert!(
        !home.body.contains("/uploads/"),
        "no run links: {}",
        home.body
    );
    assert!(!home.body.contains("staff.csv"), "no district sources");
    // North: 3 users + the principal + the teacher from the file = 5 Teachers (members are
    // Teachers), all in the North row.
    let row = &home.body[home.body.find("<td>North Elementary</td>").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td class=\"num\">5</td>"), "{row}");
    // The district admin sees both schools.
    let body = admin.get("/").await.body;
    assert!(body.contains("North Elementary") && body.contains("South Elementary"));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_home_page_and_pauses_stay_within_the_district(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alpha = app.district("alpha").await;
    let beta = app.district("beta").await;
    app.school(beta.id, "B1", "Betamarker High").await;
    let b = app.client();
    b.sign_in(&beta.admin_email, PASSWORD).await;
    let r = b
        .post_file(
            "/uploads",
            "betafile.csv",
            format!("{UPLOAD_HEADER}\nB1,b1@b.org,Bea,Trix,Teacher,B1,,Active,\n").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 303);
    app.queue.drain().await.unwrap();
    let r = b
        .post(
            "/syncs",
            &[("kind", "oneroster_csv"), ("name", "Betamarker set")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Beta sees its own.
    let body = b.get("/").await.body;
    assert!(body.contains("betafile.csv") && body.contains("Betamarker set"));

    let a = app.client();
    a.sign_in(&alpha.admin_email, PASSWORD).await;
    let home = a.get("/").await;
    assert_eq!(home.status, 200);
    for marker in ["betafile.csv", "Betamarker", "Bea"] {
        assert!(!home.body.contains(marker), "{marker}: {}", home.body);
    }
    // Pausing or resuming another district's source: 404, nothing changes.
    for path in ["/sources/pause", "/sources/resume"] {
        let r = a.post(path, &[("source", "file:betafile.csv")]).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    // Not a file source at all: 404 too.
    let r = a.post("/sources/pause", &[("source", "manual")]).await;
    assert_eq!(r.status, 404);
    let pauses: i64 = sqlx::query_scalar("SELECT count(*) FROM source_pauses")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pauses, 0);
}
