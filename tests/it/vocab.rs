//! The portal's vocabularies against real PostgreSQL: the enums of `domain::vocab` decode
//! from and bind as the TEXT columns that store them (`sqlx::Type` with `type_name = "text"`).

use rollcall::domain::{ActorKind, PortalRole, RunKind, RunStatus, UserStatus};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrations = "./migrations")]
async fn vocabularies_decode_from_and_bind_as_text_columns(pool: PgPool) {
    let district = Uuid::new_v4();
    sqlx::query("INSERT INTO districts (id, slug, name) VALUES ($1, 'vocab', 'Vocab')")
        .bind(district)
        .execute(&pool)
        .await
        .unwrap();
    let run = Uuid::new_v4();
    // Bound as enums: written as their stored words.
    sqlx::query(
        "INSERT INTO runs (district_id, id, kind, source, status, submitted_kind, submitted_by)
         VALUES ($1, $2, $3, 'file:a.csv', $4, $5, 'a@d.org')",
    )
    .bind(district)
    .bind(run)
    .bind(RunKind::Upload)
    .bind(RunStatus::CompletedWithErrors)
    .bind(ActorKind::User)
    .execute(&pool)
    .await
    .unwrap();
    let stored: (String, String, String) =
        sqlx::query_as("SELECT status, kind, submitted_kind FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            "completed_with_errors".to_string(),
            "upload".to_string(),
            "user".to_string()
        )
    );

    // Decoded from the TEXT columns.
    let (status, kind, by): (RunStatus, RunKind, ActorKind) =
        sqlx::query_as("SELECT status, kind, submitted_kind FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status, kind, by),
        (
            RunStatus::CompletedWithErrors,
            RunKind::Upload,
            ActorKind::User
        )
    );

    // Bound in a WHERE, alone and as an array.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = $1")
        .bind(RunStatus::CompletedWithErrors)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = $1")
        .bind(RunStatus::Queued)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = ANY($1)")
        .bind(vec![RunStatus::Completed, RunStatus::CompletedWithErrors])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Users' status and portal role, and a literal that is not a value fails to decode.
    let (status, role): (UserStatus, PortalRole) =
        sqlx::query_as("SELECT 'inactive'::text, 'school_admin'::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status, role),
        (UserStatus::Inactive, PortalRole::SchoolAdmin)
    );
    let bad = sqlx::query_scalar::<_, RunStatus>("SELECT 'done'::text")
        .fetch_one(&pool)
        .await;
    assert!(bad.is_err(), "an unknown word is an error, not a default");
}
