//! A district's schools.

use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct School {
    pub id: Uuid,
    pub external_id: String,
    pub name: String,
    pub users: i64,
}

/// Schools of a district, optionally only the given ones (a school admin's).
pub async fn list(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    only: Option<&[Uuid]>,
) -> sqlx::Result<Vec<School>> {
    sqlx::query_as(
        "SELECT s.id, s.external_id, s.name,
                (SELECT count(*) FROM user_schools us JOIN users u ON u.district_id = us.district_id AND u.id = us.user_id
                 WHERE us.district_id = s.district_id AND us.school_id = s.id AND u.archived_at IS NULL) AS users
         FROM schools s WHERE s.district_id = $1 AND ($2::uuid[] IS NULL OR s.id = ANY($2))
         ORDER BY s.name, s.external_id",
    )
    .bind(district_id)
    .bind(only)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<School>> {
    sqlx::query_as(
        "SELECT id, external_id, name, 0::bigint AS users FROM schools WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    external_id: &str,
    name: &str,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO schools (district_id, id, external_id, name) VALUES ($1, $2, $3, $4)")
        .bind(district_id)
        .bind(id)
        .bind(external_id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(id)
}

pub async fn update(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    external_id: &str,
    name: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE schools SET external_id = $3, name = $4 WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(external_id)
    .bind(name)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Outcome counts of a bulk upsert.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpsertCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Create or rename schools by external ID in one statement per batch.
pub async fn upsert_many(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    rows: &[(String, String)],
) -> sqlx::Result<UpsertCounts> {
    if rows.is_empty() {
        return Ok(UpsertCounts::default());
    }
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("WITH incoming (external_id, name) AS (SELECT * FROM UNNEST(");
    let ext: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    qb.push_bind(ext)
        .push("::text[], ")
        .push_bind(names)
        .push("::text[])), ");
    qb.push(
        "existing AS (SELECT s.external_id, s.name FROM schools s JOIN incoming i USING (external_id) WHERE s.district_id = ",
    )
    .push_bind(district_id)
    .push("), upserted AS (INSERT INTO schools (district_id, id, external_id, name) SELECT ")
    .push_bind(district_id)
    .push(
        ", gen_random_uuid(), external_id, name FROM incoming
         ON CONFLICT (district_id, external_id) DO UPDATE SET name = EXCLUDED.name
         WHERE schools.name IS DISTINCT FROM EXCLUDED.name RETURNING external_id)
         SELECT
           (SELECT count(*) FROM incoming WHERE external_id NOT IN (SELECT external_id FROM existing))::bigint,
           (SELECT count(*) FROM upserted WHERE external_id IN (SELECT external_id FROM existing))::bigint,
           (SELECT count(*) FROM existing e JOIN incoming i USING (external_id) WHERE e.name = i.name)::bigint",
    );
    let (created, updated, unchanged): (i64, i64, i64) = qb.build_query_as().fetch_one(db).await?;
    Ok(UpsertCounts {
        created: created as u64,
        updated: updated as u64,
        unchanged: unchanged as u64,
    })
}

/// External ID → id of every school of a district.
pub async fn external_ids(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<Vec<(String, Uuid)>> {
    sqlx::query_as("SELECT external_id, id FROM schools WHERE district_id = $1")
        .bind(district_id)
        .fetch_all(db)
        .await
}

/// A school as a choice in a form or filter (no counts: cheap on a large district).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SchoolOption {
    pub id: Uuid,
    pub external_id: String,
    pub name: String,
}

/// The district's schools by name, optionally only the given ones (a school admin's).
pub async fn options(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    only: Option<&[Uuid]>,
) -> sqlx::Result<Vec<SchoolOption>> {
    sqlx::query_as(
        "SELECT id, external_id, name FROM schools
         WHERE district_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2))
         ORDER BY name, external_id",
    )
    .bind(district_id)
    .bind(only)
    .fetch_all(db)
    .await
}
