//! One user at a time: the user page's reads, the add/edit form's writes (with optimistic
//! concurrency on `version`), status, archive and restore.

use crate::domain::{PortalRole, UserStatus};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// Everything the user page shows about one user (never the password hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub custom_id: Option<String>,
    pub email: Option<String>,
    pub username: String,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub role: String,
    pub grade: String,
    pub position: String,
    pub status: UserStatus,
    pub archived_at: Option<OffsetDateTime>,
    pub source: String,
    pub prevent_archiving: bool,
    pub portal_role: PortalRole,
    pub password_temporary: bool,
    pub has_password: bool,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub school_ids: Vec<Uuid>,
    /// Fields an admin keeps against feeds (canonical names; SPEC §4).
    pub kept_fields: Vec<String>,
}

/// A user of the district, archived ones included; with `scope` (a school admin's schools)
/// only one who belongs to at least one of those schools.
pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    scope: Option<&[Uuid]>,
) -> sqlx::Result<Option<UserRecord>> {
    sqlx::query_as(
        "SELECT u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name, u.last_name, u.role, u.grade,
                u.position, u.status, u.archived_at, u.source, u.prevent_archiving, u.portal_role,
                u.password_temporary, u.password_hash IS NOT NULL AS has_password, u.version, u.created_at,
                u.updated_at, u.kept_fields,
                coalesce((SELECT array_agg(us.school_id) FROM user_schools us
                          WHERE us.district_id = u.district_id AND us.user_id = u.id), '{}'::uuid[]) AS school_ids
         FROM users u
         WHERE u.district_id = $1 AND u.id = $2
           AND ($3::uuid[] IS NULL OR EXISTS (SELECT 1 FROM user_schools s WHERE s.district_id = u.district_id
                                              AND s.user_id = u.id AND s.school_id = ANY($3)))",
    )
    .bind(district_id)
    .bind(id)
    .bind(scope)
    .fetch_optional(db)
    .await
}

/// The fields the add/edit form writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub custom_id: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
    pub username: String,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub role: String,
    pub grade: String,
    pub position: String,
    /// `active` or `inactive`.
    pub status: UserStatus,
    pub portal_role: PortalRole,
    pub prevent_archiving: bool,
}

/// Which of a user's unique values another user of the district already holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub custom_id: bool,
    pub email: bool,
    pub username: bool,
}

pub async fn taken(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    except: Option<Uuid>,
    custom_id: Option<&str>,
    email: Option<&str>,
    username: &str,
) -> sqlx::Result<Taken> {
    let (c, e, u): (bool, bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM users WHERE district_id = $1 AND custom_id = $3 AND id IS DISTINCT FROM $2),
                EXISTS (SELECT 1 FROM users WHERE district_id = $1 AND lower(email) = lower($4) AND id IS DISTINCT FROM $2),
                EXISTS (SELECT 1 FROM users WHERE district_id = $1 AND lower(username) = lower($5) AND id IS DISTINCT FROM $2)",
    )
    .bind(district_id)
    .bind(except)
    .bind(custom_id)
    .bind(email)
    .bind(username)
    .fetch_one(db)
    .await?;
    Ok(Taken {
        custom_id: c,
        email: e,
        username: u,
    })
}

/// Of these lower-case candidate usernames, the ones already in use in the district.
pub async fn usernames_in_use(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    candidates: &[String],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT lower(username) FROM users WHERE district_id = $1 AND lower(username) = ANY($2)",
    )
    .bind(district_id)
    .bind(candidates)
    .fetch_all(db)
    .await
}

/// A manually added user (`source = 'manual'`).
pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    f: &UserFields,
    password_hash: &str,
    temporary: bool,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (district_id, id, custom_id, email, username, first_name, middle_name, last_name, role,
                            grade, position, status, source, prevent_archiving, portal_role, password_hash,
                            password_temporary, password_set_at)
         VALUES ($1, $2, $3, lower($4), $5, $6, $7, $8, $9, $10, $11, $12, 'manual', $13, $14, $15, $16, $17)",
    )
    .bind(district_id)
    .bind(id)
    .bind(&f.custom_id)
    .bind(&f.email)
    .bind(&f.username)
    .bind(&f.first_name)
    .bind(&f.middle_name)
    .bind(&f.last_name)
    .bind(&f.role)
    .bind(&f.grade)
    .bind(&f.position)
    .bind(f.status)
    .bind(f.prevent_archiving)
    .bind(f.portal_role)
    .bind(password_hash)
    .bind(temporary)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Write the form's fields if the user is still at `version`; `None` when someone else
/// changed them in between (or they do not exist).
pub async fn update(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    version: i64,
    f: &UserFields,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE users SET custom_id = $4, email = lower($5), username = $6, first_name = $7, middle_name = $8,
                last_name = $9, role = $10, grade = $11, position = $12, status = $13, portal_role = $14,
                prevent_archiving = $15, version = version + 1
         WHERE district_id = $1 AND id = $2 AND version = $3
         RETURNING version",
    )
    .bind(district_id)
    .bind(id)
    .bind(version)
    .bind(&f.custom_id)
    .bind(&f.email)
    .bind(&f.username)
    .bind(&f.first_name)
    .bind(&f.middle_name)
    .bind(&f.last_name)
    .bind(&f.role)
    .bind(&f.grade)
    .bind(&f.position)
    .bind(f.status)
    .bind(f.portal_role)
    .bind(f.prevent_archiving)
    .fetch_optional(db)
    .await
}

/// Add `fields` (canonical names) to the fields an admin keeps against feeds; returns the
/// kept fields before and after, sorted (SPEC §4, "Fields an admin edited").
pub async fn keep_fields(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    fields: &[&str],
) -> sqlx::Result<(Vec<String>, Vec<String>)> {
    sqlx::query_as(
        "WITH old AS (SELECT kept_fields FROM users WHERE district_id = $1 AND id = $2 FOR UPDATE)
         UPDATE users u SET kept_fields = ARRAY(SELECT DISTINCT f FROM unnest(u.kept_fields || $3::text[]) f ORDER BY f)
         FROM old
         WHERE u.district_id = $1 AND u.id = $2
         RETURNING ARRAY(SELECT f FROM unnest(old.kept_fields) f ORDER BY f), u.kept_fields",
    )
    .bind(district_id)
    .bind(id)
    .bind(fields)
    .fetch_one(db)
    .await
}

/// Release kept fields (`None`: all of them), so feeds write them again; returns the kept
/// fields before and after, or `None` when none of them was kept.
pub async fn release_fields(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    fields: Option<&[String]>,
) -> sqlx::Result<Option<(Vec<String>, Vec<String>)>> {
    sqlx::query_as(
        "WITH old AS (SELECT kept_fields FROM users WHERE district_id = $1 AND id = $2 FOR UPDATE)
         UPDATE users u SET kept_fields = CASE WHEN $3::text[] IS NULL THEN '{}'
                                          ELSE ARRAY(SELECT f FROM unnest(u.kept_fields) f WHERE NOT (f = ANY($3)) ORDER BY f) END
         FROM old
         WHERE u.district_id = $1 AND u.id = $2
           AND (CASE WHEN $3::text[] IS NULL THEN cardinality(u.kept_fields) > 0 ELSE u.kept_fields && $3 END)
         RETURNING ARRAY(SELECT f FROM unnest(old.kept_fields) f ORDER BY f), u.kept_fields",
    )
    .bind(district_id)
    .bind(id)
    .bind(fields)
    .fetch_optional(db)
    .await
}

/// Make a user's schools exactly `schools` (ids of the district's schools).
pub async fn set_schools(
    conn: &mut sqlx::PgConnection,
    district_id: Uuid,
    id: Uuid,
    schools: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM user_schools WHERE district_id = $1 AND user_id = $2 AND NOT (school_id = ANY($3))",
    )
    .bind(district_id)
    .bind(id)
    .bind(schools)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO user_schools (district_id, user_id, school_id)
         SELECT $1, $2, s.id FROM schools s WHERE s.district_id = $1 AND s.id = ANY($3)
         ON CONFLICT DO NOTHING",
    )
    .bind(district_id)
    .bind(id)
    .bind(schools)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Set Active/Inactive on a live (not archived) user; `false` when nothing changed.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    status: UserStatus,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE users SET status = $3, version = version + 1
         WHERE district_id = $1 AND id = $2 AND status <> $3 AND archived_at IS NULL",
    )
    .bind(district_id)
    .bind(id)
    .bind(status)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Hand a user from owner `from` to owner `to` (both as `users.source` stores them), with
/// `prevent_archiving`; `false` when the user's owner was not `from` any more.
pub async fn set_owner(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    from: &str,
    to: &str,
    prevent_archiving: bool,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE users SET source = $4, prevent_archiving = $5, version = version + 1
         WHERE district_id = $1 AND id = $2 AND source = $3",
    )
    .bind(district_id)
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(prevent_archiving)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Archive (`Some(now)`) or restore (`None`); `false` when the user already was so.
pub async fn set_archived(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    at: Option<OffsetDateTime>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE users SET archived_at = $3, version = version + 1
         WHERE district_id = $1 AND id = $2 AND (archived_at IS NULL) = ($3::timestamptz IS NOT NULL)",
    )
    .bind(district_id)
    .bind(id)
    .bind(at)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
