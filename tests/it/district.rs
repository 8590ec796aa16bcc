//! Issue 16, items 7 and 10, over real HTTP and PostgreSQL: the district's own external ID on
//! Settings makes a file row naming it a district-level user with no school (created, sent
//! again as a no-op, its error row fixed and sent back, moved from a school, written back by
//! the master CSV so that the round trip changes nothing), listed under "District office" and
//! never shown to school admins; and the district's time zone read in every time a page
//! shows, in the audit CSV (ISO 8601 with the offset) and in its file name.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

const ECHALK: &str = "custom_id,email,first_name,last_name,user_type,school_district_external_id";

/// Upload through the form with extra fields (a scope); the run id.
async fn upload_with(c: &Client, name: &str, body: &[u8], fields: &[(&str, &str)]) -> Uuid {
    let token = c.csrf().await;
    let mut form = reqwest::multipart::Form::new().text("_csrf", token.clone());
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(body.to_vec()).file_name(name.to_string()),
    );
    let r = c
        .http
        .post(format!("{}/uploads?_csrf={token}", c.base))
        .multipart(form)
        .send()
        .await
        .expect("POST /uploads");
    assert_eq!(r.status().as_u16(), 303);
    r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap()
}

/// A run's counts: (created, updated, unchanged, archived, errors) and its status.
async fn counts(env: &UploadEnv, id: Uuid) -> ((i64, i64, i64, i64, i64), String) {
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    let c = &s["counts"];
    let n = |k: &str| c[k].as_i64().unwrap_or(0);
    (
        (
            n("created"),
            n("updated"),
            n("unchanged"),
            n("archived"),
            n("errors"),
        ),
        s["status"].as_str().unwrap_or_default().to_string(),
    )
}

async fn school_ids(pool: &PgPool, district: Uuid, custom_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.external_id FROM users u JOIN user_schools us ON us.district_id = u.district_id AND us.user_id = u.id
         JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
         WHERE u.district_id = $1 AND u.custom_id = $2 ORDER BY 1",
    )
    .bind(district)
    .bind(custom_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn records(body: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_reader(body.trim_start_matches('\u{feff}').as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    (header, r.records().map(|r| r.unwrap()).collect())
}

#[sqlx::test(migrations = "./migrations")]
async fn the_districts_own_id_brings_district_level_staff_in_by_file(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let (d, pool) = (env.district.id, env.app.pool.clone());
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(&pool)
        .await
        .unwrap();
    let staff = format!(
        "{ECHALK}\nC1,c1@d.org,Cam,Ortiz,Staff,D-100\nC2,c2@d.org,Dee,Fox,Administrator,d-100\n\
         T1,t1@d.org,Tom,Hall,Teacher,HS\nC3,c3@d.org,Eve,Ng,Staff,D-100;HS\n"
    );

    // Before the district has its ID, such a row is an unknown school (as it always was).
    let id = env.upload("staff.csv", &staff).await;
    let (c, status) = counts(&env, id).await;
    assert_eq!((c.0, c.4, status.as_str()), (1, 3, "completed_with_errors"));

    // Settings: the ID must not be a school's, the zone must be a zone; then it is saved.
    for (ext, tz) in [("hs", "UTC"), ("D-100", "Mars/Base"), ("D;100", "UTC")] {
        let r = env
            .c
            .post(
                "/settings/district",
                &[("external_id", ext), ("time_zone", tz)],
            )
            .await;
        assert_eq!(r.status, 422, "{ext} {tz}: {}", r.body);
    }
    let r = env
        .c
        .post(
            "/settings/district",
            &[("external_id", " D-100 "), ("time_zone", "UTC")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = env.c.get("/settings").await;
    assert!(page.body.contains("value=\"D-100\""), "{}", page.body);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = 'district.identity'",
    )
    .bind(d)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // The same file now: C1 and C2 are district-level (no school), C3 names the district and
    // a school at once (a row error naming row and column).
    let id = env.upload("staff.csv", &staff).await;
    let (c, status) = counts(&env, id).await;
    assert_eq!(
        (c, status.as_str()),
        ((2, 0, 1, 0, 1), "completed_with_errors")
    );
    for cid in ["C1", "C2"] {
        assert!(school_ids(&pool, d, cid).await.is_empty(), "{cid}");
    }
    assert_eq!(school_ids(&pool, d, "T1").await, ["HS"]);
    let completed = env.c.get(&format!("/uploads/{id}/files/completed")).await;
    let (header, rows) = records(&completed.body);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let c1 = rows.iter().find(|r| &r[col("custom_id")] == "C1").unwrap();
    assert_eq!(&c1[col("outcome")], "created", "{c1:?}");
    let errors = env.c.get(&format!("/uploads/{id}/files/errors")).await;
    let (header, rows) = records(&errors.body);
    assert_eq!(rows.len(), 1);
    let err = &rows[0][header.iter().position(|h| h == "Error").unwrap()];
    assert!(
        err.contains("line 5")
            && err.contains("school_district_external_id")
            && err.contains("district's own ID"),
        "{err}"
    );

    // Sent again as it is: nothing changes.
    let again = env.upload("staff.csv", &staff).await;
    let (c, _) = counts(&env, again).await;
    assert_eq!(c, (0, 0, 3, 0, 1));

    // The error file, fixed (the district only) and sent back: C3 comes in, district-level.
    let fixed = errors.body.replace("D-100;HS", "D-100");
    let id = env.upload("staff-errors.csv", &fixed).await;
    let (c, status) = counts(&env, id).await;
    assert_eq!((c, status.as_str()), ((1, 0, 0, 0, 0), "completed"));
    assert!(school_ids(&pool, d, "C3").await.is_empty());

    // A teacher moving to the central office: their school is cleared.
    let moved = staff
        .replace("Teacher,HS", "Teacher,D-100")
        .replace("D-100;HS", "D-100");
    let id = env.upload("staff.csv", &moved).await;
    let (c, _) = counts(&env, id).await;
    assert_eq!(c, (0, 1, 3, 0, 0));
    assert!(school_ids(&pool, d, "T1").await.is_empty());

    // The Users screen: "District office" lists them (and the admin, who has no school).
    let list = env.c.get("/users?school=district").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body
            .contains("<option value=\"district\" selected>District office</option>"),
        "{}",
        list.body
    );
    for name in ["Ortiz", "Fox", "Ng", "Hall"] {
        assert!(list.body.contains(name), "{name}");
    }
    let mut school_list = format!("/users?school={hs}");
    let hs_users = env.c.get(&school_list).await;
    assert!(!hs_users.body.contains("Ortiz"));
    school_list.push_str("&q=Ortiz");
    assert!(!env.c.get(&school_list).await.body.contains("Cam Ortiz"));

    // The master CSV writes the district's ID for them, and sent back it changes nothing.
    let master = env.c.get("/users.csv").await;
    let (header, rows) = records(&master.body);
    let school = header
        .iter()
        .position(|h| h == "school_external_id")
        .unwrap();
    let cid = header.iter().position(|h| h == "custom_id").unwrap();
    assert_eq!(rows.len(), 5, "the admin and four staff");
    for r in &rows {
        // The admin (no custom_id) has no school either.
        assert_eq!(&r[school], "D-100", "{r:?}");
        assert!(["C1", "C2", "C3", "T1", ""].contains(&&r[cid]), "{r:?}");
    }
    let mut out = Vec::new();
    rollcall::ops::export_master(&pool, d, &mut out)
        .await
        .unwrap();
    assert!(
        String::from_utf8(out).unwrap().contains(",D-100,"),
        "rollcall export too"
    );
    let id = upload_with(
        &env.c,
        "springfield-users.csv",
        master.body.as_bytes(),
        &[("scope", "district"), ("scope_touched", "1")],
    )
    .await;
    let (c, status) = counts(&env, id).await;
    assert_eq!(
        (c, status.as_str()),
        ((0, 0, rows.len() as i64, 0, 0), "completed")
    );

    // A school admin sees none of them, and cannot bring one in.
    env.app.member(d, "principal", "school_admin", &[hs]).await;
    let p = env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    let theirs = p.get("/users").await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.body.contains("Ortiz"));
    assert!(
        !theirs.body.contains("District office"),
        "no such filter for them"
    );
    assert!(!p.get("/users?school=district").await.body.contains("Ortiz"));
    let c1: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND custom_id = 'C1'")
            .bind(d)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!([403, 404].contains(&p.get(&format!("/users/{c1}")).await.status));
    let theirs_csv = p.get("/users.csv").await;
    assert!(!theirs_csv.body.contains("Ortiz"));
    let id = upload_with(
        &p,
        "hs.csv",
        format!("{ECHALK}\nH1,h1@d.org,Hal,Ito,Teacher,HS\nC9,c9@d.org,Cy,Oh,Staff,D-100\n")
            .as_bytes(),
        &[],
    )
    .await;
    let (c, _) = counts(&env, id).await;
    assert_eq!((c.0, c.4), (1, 1));
    let errors = env.c.get(&format!("/uploads/{id}/files/errors")).await;
    assert!(
        errors.body.contains("district-level user"),
        "{}",
        errors.body
    );
}

/// A moment (UTC) at which Chicago's date is the day before UTC's: the next 03:00 UTC at
/// least an hour away. The app's clock is moved there (it only moves forward).
fn next_3am_utc(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let mut t = now.replace_time(time::macros::time!(03:00));
    while t < now + time::Duration::hours(1) {
        t += time::Duration::days(1);
    }
    t
}

#[sqlx::test(migrations = "./migrations")]
async fn the_district_time_zone_is_every_time_shown_and_downloaded(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let (d, pool) = (env.district.id, env.app.pool.clone());
    let id = env
        .upload(
            "students.csv",
            &format!("{UPLOAD_HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n"),
        )
        .await;
    env.app.queue.drain().await.unwrap();
    // A summer and a winter instant.
    sqlx::query(
        "UPDATE runs SET received_at = '2026-07-01T03:30:05Z', started_at = '2026-07-01T03:30:06Z',
                finished_at = '2026-01-15T15:00:00Z' WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();

    // UTC by default, as before.
    let page = env.c.get(&format!("/uploads/{id}")).await;
    assert!(
        page.body.contains("2026-07-01 03:30:05 UTC"),
        "{}",
        page.body
    );
    let settings = env.c.get("/settings").await;
    assert!(
        settings
            .body
            .contains("<option value=\"UTC\" selected>UTC</option>")
    );

    let r = env
        .c
        .post(
            "/settings/district",
            &[("external_id", ""), ("time_zone", "america/chicago")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let settings = env.c.get("/settings").await;
    assert!(
        settings
            .body
            .contains("<option value=\"America/Chicago\" selected>America/Chicago</option>")
    );

    // Pages: daylight saving time in July (CDT, −5), standard time in January (CST, −6).
    let page = env.c.get(&format!("/uploads/{id}")).await;
    for shown in [
        "2026-06-30 22:30:05 CDT",
        "2026-06-30 22:30:06 CDT",
        "2026-01-15 09:00:00 CST",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(!page.body.contains("03:30:05 UTC"));
    let history = env.c.get("/uploads").await;
    assert!(history.body.contains("2026-06-30 22:30:05 CDT"));

    // The audit log: the page and the CSV (ISO 8601 with the offset of that instant).
    sqlx::query("UPDATE audit_log SET at = '2026-07-01T03:30:05Z' WHERE district_id = $1 AND action = 'district.identity'")
        .bind(d)
        .execute(&pool)
        .await
        .unwrap();
    let audit = env.c.get("/audit").await;
    assert!(
        audit.body.contains("2026-06-30 22:30:05 CDT"),
        "{}",
        audit.body
    );
    let now = env.app.clock.now();
    let target = next_3am_utc(now);
    env.app.clock.advance(target - now);
    let r = env
        .c
        .http
        .get(format!("{}/audit.csv?kind=district", env.c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    let local_day = (target - time::Duration::days(1)).date();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"springfield-audit-{local_day}.csv\""),
        "named by the district's day, not UTC's ({})",
        target.date()
    );
    let (_, rows) = records(&r.text().await.unwrap());
    assert!(
        rows.iter().any(|r| &r[0] == "2026-06-30T22:30:05-05:00"),
        "{rows:?}"
    );
    for r in &rows {
        let at = time::OffsetDateTime::parse(&r[0], &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
        assert!(
            [-5, -6].contains(&at.offset().whole_hours()),
            "Chicago offsets: {}",
            &r[0]
        );
    }

    // Another district's admin still reads UTC: the zone is the district's own.
    let other = env.app.district("shelbyville").await;
    let c = env.app.client();
    assert_eq!(c.sign_in(&other.admin_email, PASSWORD).await.status, 303);
    let settings = c.get("/settings").await;
    assert!(
        settings
            .body
            .contains("<option value=\"UTC\" selected>UTC</option>")
    );
}
