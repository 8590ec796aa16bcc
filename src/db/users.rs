//! Accounts as sign-in, sessions and the account page read and write them.

use crate::domain::{PortalRole, UserStatus};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// An account that might be signing in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginCandidate {
    pub district_id: Uuid,
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub password_temporary: bool,
    pub password_set_at: Option<OffsetDateTime>,
    pub status: UserStatus,
    pub archived_at: Option<OffsetDateTime>,
    /// Set at the first sign-in with a temporary password, which then works no more.
    pub temp_password_used_at: Option<OffsetDateTime>,
    pub session_epoch: i64,
    pub portal_role: PortalRole,
}

/// Accounts whose email or username is `login` (case-insensitive), in any district or in
/// the one given.
pub async fn login_candidates(
    db: impl PgExecutor<'_>,
    login: &str,
    district_slug: Option<&str>,
) -> sqlx::Result<Vec<LoginCandidate>> {
    sqlx::query_as(
        "SELECT u.district_id, u.id, u.username, u.email, u.password_hash, u.password_temporary, u.password_set_at,
                u.status, u.archived_at, u.temp_password_used_at, u.session_epoch, u.portal_role
         FROM users u JOIN districts d ON d.id = u.district_id
         WHERE (lower(u.email) = lower($1) OR lower(u.username) = lower($1))
           AND ($2::text IS NULL OR d.slug = $2)
         LIMIT 20",
    )
    .bind(login)
    .bind(district_slug)
    .fetch_all(db)
    .await
}

/// What a request needs to know about the signed-in member, re-read on every request so
/// that deactivating or archiving someone ends their sessions at once.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub district_id: Uuid,
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub portal_role: PortalRole,
    pub status: UserStatus,
    pub archived_at: Option<OffsetDateTime>,
    pub password_temporary: bool,
    pub district_slug: String,
    pub district_name: String,
    /// The district's time zone (IANA name): the times this person's pages show.
    pub district_time_zone: String,
    pub school_ids: Vec<Uuid>,
    /// Moves on whenever the password, status or archiving changes (a trigger): a session
    /// holding an older one is over.
    pub session_epoch: i64,
    /// Enrolled as teacher in at least one non-archived class (the teacher's pages).
    pub teaches: bool,
}

/// Every signed-in request reads its member here. `teaches` names the user by the parameters,
/// not by the outer row. Correlated, and with `users` analyzed without `id`
/// (`db::reconcile::write_plan`), the planner expected 500 rows for the key lookup and checked
/// `teaches` as a hashed subplan over every active class of the district until autovacuum
/// analyzed `classes`: 5 ms a request at 4,000 classes, and at 40,000 an admin's class page
/// served 5 requests/s (bench/rosters).
pub async fn member(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Member>> {
    sqlx::query_as(
        "SELECT u.district_id, u.id, u.username, u.email, u.first_name, u.last_name, u.role, u.portal_role, u.status,
                u.archived_at, u.password_temporary, d.slug AS district_slug, d.name AS district_name,
                d.time_zone AS district_time_zone,
                coalesce(array_agg(us.school_id) FILTER (WHERE us.school_id IS NOT NULL), '{}') AS school_ids,
                u.session_epoch,
                EXISTS (SELECT 1 FROM enrollments e
                          JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
                         WHERE e.district_id = $1 AND e.user_id = $2
                           AND e.role = 'teacher' AND c.archived_at IS NULL) AS teaches
         FROM users u JOIN districts d ON d.id = u.district_id
         LEFT JOIN user_schools us ON us.district_id = u.district_id AND us.user_id = u.id
         WHERE u.district_id = $1 AND u.id = $2
         GROUP BY u.district_id, u.id, d.slug, d.name, d.time_zone",
    )
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub struct NewAdmin<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password_hash: &'a str,
    pub temporary: bool,
}

/// A district admin account (manual source, protected from archiving).
pub async fn insert_admin(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    admin: &NewAdmin<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, portal_role,
                            prevent_archiving, source, password_hash, password_temporary, password_set_at)
         VALUES ($1, $2, lower($3), $4, $5, $6, 'Administrator', 'district_admin', true, 'manual', $7, $8, $9)",
    )
    .bind(district_id)
    .bind(id)
    .bind(admin.email)
    .bind(admin.username)
    .bind(admin.first_name)
    .bind(admin.last_name)
    .bind(admin.password_hash)
    .bind(admin.temporary)
    .bind(now)
    .execute(db)
    .await?;
    Ok(id)
}

/// A new password (or temporary password). Every session of the account ends (the
/// `users_end_sessions` trigger moves `session_epoch` on and forgets that a temporary
/// password was used); the new epoch is returned, `None` when there is no such user.
pub async fn set_password(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    hash: &str,
    temporary: bool,
    now: OffsetDateTime,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $3, password_temporary = $4, password_set_at = $5, version = version + 1
         WHERE district_id = $1 AND id = $2 RETURNING session_epoch",
    )
    .bind(district_id)
    .bind(id)
    .bind(hash)
    .bind(temporary)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Use up a temporary password at sign-in: true for the one sign-in that may use it (the
/// hash it was checked against is still the account's, and it was not used before).
pub async fn use_temporary_password(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    checked_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE users SET temp_password_used_at = $4
         WHERE district_id = $1 AND id = $2 AND password_temporary AND password_hash = $3
           AND temp_password_used_at IS NULL",
    )
    .bind(district_id)
    .bind(id)
    .bind(checked_hash)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// The stored password hash of one user (for checking their current password).
pub async fn password_hash(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT password_hash FROM users WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .flatten())
}

// ---- operators (installation-wide, not tenant data) ----

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Operator {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub session_epoch: i64,
}

pub async fn operator_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> sqlx::Result<Option<Operator>> {
    sqlx::query_as("SELECT id, email, password_hash, session_epoch FROM operators WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn operator_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Operator>> {
    sqlx::query_as("SELECT id, email, password_hash, session_epoch FROM operators WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn insert_operator(
    db: impl PgExecutor<'_>,
    email: &str,
    hash: &str,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO operators (id, email, password_hash) VALUES ($1, lower($2), $3)")
        .bind(id)
        .bind(email)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(id)
}
