//! A district's saved column mappings as rows, for the pages that list, show, edit and
//! delete them (the lookup by header signature is `runs::saved_mapping`).

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MappingRow {
    pub id: Uuid,
    pub signature: String,
    pub mapping: serde_json::Value,
    pub updated_by: String,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, signature, mapping, updated_by, updated_at";

/// The district's saved mappings, the most recently changed first.
pub async fn list(db: impl PgExecutor<'_>, district_id: Uuid) -> sqlx::Result<Vec<MappingRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM header_mappings WHERE district_id = $1
         ORDER BY updated_at DESC, signature"
    ))
    .bind(district_id)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<MappingRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM header_mappings WHERE district_id = $1 AND id = $2"
    ))
    .bind(district_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Replaces a saved mapping's content; false when there is no such mapping.
pub async fn update(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    id: Uuid,
    mapping: &serde_json::Value,
    by: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE header_mappings SET mapping = $3, updated_by = $4, updated_at = now()
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(id)
    .bind(mapping)
    .bind(by)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes a saved mapping; false when there is no such mapping.
pub async fn delete(db: impl PgExecutor<'_>, district_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM header_mappings WHERE district_id = $1 AND id = $2")
        .bind(district_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}
