//! Districts and their settings (guards, drop folder, staleness).

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct District {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub guard_archive_pct: f64,
    pub guard_archive_min: i32,
    pub guard_update_pct: f64,
    pub guard_school_pct: f64,
    pub guard_school_min: i32,
    pub created_at: OffsetDateTime,
    /// The district's own external ID (its SIS district code, seed 002), if set: a user
    /// file row whose school column holds it is a district-level user with no school.
    pub external_id: Option<String>,
    /// IANA time zone name (`UTC` by default): every time shown to the district.
    pub time_zone: String,
}

const COLS: &str = "id, slug, name, guard_archive_pct, guard_archive_min, guard_update_pct,
    guard_school_pct, guard_school_min, created_at, external_id, time_zone";

pub async fn insert(db: impl PgExecutor<'_>, slug: &str, name: &str) -> sqlx::Result<District> {
    sqlx::query_as(&format!(
        "INSERT INTO districts (id, slug, name) VALUES ($1, $2, $3) RETURNING {COLS}"
    ))
    .bind(Uuid::new_v4())
    .bind(slug)
    .bind(name)
    .fetch_one(db)
    .await
}

pub async fn by_slug(db: impl PgExecutor<'_>, slug: &str) -> sqlx::Result<Option<District>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM districts WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(db)
        .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<District>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM districts WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct DistrictSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub schools: i64,
    pub users: i64,
}

/// Every district with its counts (the operator's list).
pub async fn list(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<DistrictSummary>> {
    sqlx::query_as(
        "SELECT d.id, d.slug, d.name, d.created_at,
                (SELECT count(*) FROM schools s WHERE s.district_id = d.id) AS schools,
                (SELECT count(*) FROM users u WHERE u.district_id = d.id AND u.archived_at IS NULL) AS users
         FROM districts d ORDER BY d.name",
    )
    .fetch_all(db)
    .await
}

/// The mass-change guard's settings (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    pub archive_pct: f64,
    pub archive_min: i32,
    pub update_pct: f64,
    pub school_pct: f64,
    pub school_min: i32,
}

pub async fn update_guard(db: impl PgExecutor<'_>, id: Uuid, g: &Guard) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE districts SET guard_archive_pct = $2, guard_archive_min = $3, guard_update_pct = $4,
                guard_school_pct = $5, guard_school_min = $6
         WHERE id = $1",
    )
    .bind(id)
    .bind(g.archive_pct)
    .bind(g.archive_min)
    .bind(g.update_pct)
    .bind(g.school_pct)
    .bind(g.school_min)
    .execute(db)
    .await?;
    Ok(())
}

/// Every district's id, slug and custom drop folder (the drop folder scan).
pub async fn drop_folders(
    db: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(Uuid, String, Option<String>)>> {
    sqlx::query_as("SELECT id, slug, drop_dir FROM districts")
        .fetch_all(db)
        .await
}

/// The district's identity settings (issue 16, items 7 and 10): its own external ID and
/// its time zone.
pub async fn update_identity(
    db: impl PgExecutor<'_>,
    id: Uuid,
    external_id: Option<&str>,
    time_zone: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE districts SET external_id = $2, time_zone = $3 WHERE id = $1")
        .bind(id)
        .bind(external_id)
        .bind(time_zone)
        .execute(db)
        .await?;
    Ok(())
}

/// The district's own external ID, if set (the importer and the master CSV read it).
pub async fn external_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT external_id FROM districts WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.and_then(|(e,)| e))
}

/// The district's time zone name (`UTC` when the district is gone).
pub async fn time_zone(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT time_zone FROM districts WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map_or_else(|| "UTC".to_string(), |(z,)| z))
}
