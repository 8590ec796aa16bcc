//! The keys of the tables a run writes by the million (`users`, `user_schools`, `run_rows`),
//! checked once a statement since migration 0033: a row naming a parent that does not exist
//! still fails its statement as a foreign key did (SQLSTATE 23503), and deleting a parent
//! still deletes its rows (`audit_log`'s too, which has no insert check).
use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

fn is_key_violation(e: sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23503")
}

async fn count(pool: &PgPool, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn rows_naming_a_missing_parent_fail_and_a_deleted_parent_takes_its_rows(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let app = &env.app;
    let d = env.district.id;
    let other = app.district("other").await;
    let other_school = app.school(other.id, "OS", "Other School").await;
    let run = env
        .upload(
            "users.csv",
            &format!(
                "{UPLOAD_HEADER}\nS1,s1@example.org,Ann,One,Student,HS,5,active,\nS2,s2@example.org,Ben,Two,Student,HS,6,active,\n"
            ),
        )
        .await;
    app.queue.drain().await.unwrap();
    let user = user_by_custom_id(&app.pool, d, "S1").await;
    let school: Uuid =
        sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1 AND external_id = 'HS'")
            .bind(d)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM run_rows WHERE run_id = $1",
            run
        )
        .await,
        2,
        "the import wrote its results through the new checks"
    );

    let missing = Uuid::new_v4();
    let user_row =
        "INSERT INTO users (district_id, id, username, role) VALUES ($1, $2, $3, 'Student')";
    let e = sqlx::query(user_row)
        .bind(missing)
        .bind(Uuid::new_v4())
        .bind("ghost")
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert!(is_key_violation(e), "a user of no district");
    // A statement with one good row and one bad fails whole.
    let e = sqlx::query(
        "INSERT INTO users (district_id, id, username, role)
         VALUES ($1, $3, 'good', 'Student'), ($2, $4, 'bad', 'Student')",
    )
    .bind(d)
    .bind(missing)
    .bind(Uuid::new_v4())
    .bind(Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap_err();
    assert!(is_key_violation(e), "one user of no district");
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM users WHERE username = 'good' AND district_id = $1",
            d
        )
        .await,
        0,
        "the good row went with the bad"
    );
    let membership =
        "INSERT INTO user_schools (district_id, user_id, school_id) VALUES ($1, $2, $3)";
    for (bad, why) in [
        (missing, "a school that does not exist"),
        (other_school, "another district's school"),
    ] {
        let e = sqlx::query(membership)
            .bind(d)
            .bind(user)
            .bind(bad)
            .execute(&app.pool)
            .await
            .unwrap_err();
        assert!(is_key_violation(e), "{why}");
    }
    let e = sqlx::query(
        "INSERT INTO run_rows (district_id, run_id, line, outcome) VALUES ($1, $2, 1, 'error')",
    )
    .bind(d)
    .bind(missing)
    .execute(&app.pool)
    .await
    .unwrap_err();
    assert!(is_key_violation(e), "a result of no run");
    // Good rows still go in.
    sqlx::query(user_row)
        .bind(d)
        .bind(Uuid::new_v4())
        .bind("fine")
        .execute(&app.pool)
        .await
        .unwrap();

    // Deleting a run, a school, a district deletes their rows.
    sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(run)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM run_rows WHERE run_id = $1",
            run
        )
        .await,
        0
    );
    let members = "SELECT count(*) FROM user_schools WHERE school_id = $1";
    assert_eq!(count(&app.pool, members, school).await, 2);
    sqlx::query("DELETE FROM schools WHERE id = $1")
        .bind(school)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(count(&app.pool, members, school).await, 0);
    let users = "SELECT count(*) FROM users WHERE district_id = $1";
    let audit = "SELECT count(*) FROM audit_log WHERE district_id = $1";
    assert!(count(&app.pool, users, d).await >= 3);
    assert!(count(&app.pool, audit, d).await >= 2);
    let others = count(&app.pool, users, other.id).await;
    sqlx::query("DELETE FROM districts WHERE id = $1")
        .bind(d)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(count(&app.pool, users, d).await, 0);
    assert_eq!(count(&app.pool, audit, d).await, 0);
    assert_eq!(
        count(&app.pool, users, other.id).await,
        others,
        "another district keeps its users"
    );
}
