//! Alert events (SPEC §5): the things a district is told about. A run's final status raises
//! its event by a trigger (migration 0013); the app raises the others here. Delivery
//! (fan-out to email and webhook) reads them after they commit.

use crate::domain::health::EventKind;
use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// An event to raise once: a second `raise` with the same `dedupe_key` in the same district
/// does nothing.
pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub dedupe_key: &'a str,
    pub run_id: Option<Uuid>,
    pub source: Option<&'a str>,
    pub at: OffsetDateTime,
    pub detail: Value,
}

/// Raise an event; true when it is new, false when that key was raised before.
pub async fn raise(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    event: &NewEvent<'_>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO alert_events (district_id, kind, dedupe_key, run_id, source, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT alert_events_dedupe_key DO NOTHING",
    )
    .bind(district_id)
    .bind(event.kind.as_str())
    .bind(event.dedupe_key)
    .bind(event.run_id)
    .bind(event.source)
    .bind(event.at)
    .bind(&event.detail)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// An event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub district_id: Uuid,
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub run_id: Option<Uuid>,
    pub source: Option<String>,
    pub at: OffsetDateTime,
    pub detail: Value,
    pub fanned_out_at: Option<OffsetDateTime>,
}

/// A district's events, newest first (tests and the Settings page).
pub async fn recent(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT district_id, id, kind, dedupe_key, run_id, source, at, detail, fanned_out_at
         FROM alert_events WHERE district_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(district_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
