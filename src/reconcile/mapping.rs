//! A district's saved header mappings, found for a file's header (the run, the mapper and
//! the intake's needs-mapping check all ask here).

use crate::db;
use crate::feed::headers::{self, SavedMapping};
use anyhow::Result;
use uuid::Uuid;

/// The district's saved mapping for these headers. A fixed error file may carry a
/// `user_guid` column its original did not (added for the rows that matched a user): it
/// finds its original's mapping too.
pub async fn saved_mapping(
    pool: &sqlx::PgPool,
    district_id: Uuid,
    headers: &[String],
) -> Result<Option<SavedMapping>> {
    let mut signatures = vec![headers::signature(headers)];
    if headers::has_error_column(headers) {
        let without: Vec<String> = headers
            .iter()
            .filter(|h| headers::fold(h) != "userguid")
            .cloned()
            .collect();
        if without.len() < headers.len() {
            signatures.push(headers::signature(&without));
        }
    }
    for signature in signatures {
        if let Some(saved) = db::runs::saved_mapping(pool, district_id, &signature)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
        {
            return Ok(Some(saved));
        }
    }
    Ok(None)
}
