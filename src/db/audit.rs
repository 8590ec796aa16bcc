use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who made a change.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<Uuid>,
    pub label: String,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            kind: "cli",
            id: None,
            label: "command line".into(),
        }
    }
}

pub struct Entry<'a> {
    pub action: &'a str,
    pub entity_kind: &'a str,
    pub entity_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn record(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    actor: &Actor,
    entry: Entry<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(district_id)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .bind(entry.action)
    .bind(entry.entity_kind)
    .bind(entry.entity_id)
    .bind(entry.run_id)
    .bind(entry.before)
    .bind(entry.after)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub at: OffsetDateTime,
    pub actor_kind: String,
    pub actor_label: String,
    pub action: String,
    pub run_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The history of one entity, newest first.
pub async fn for_entity(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    entity_id: Uuid,
) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "SELECT at, actor_kind, actor_label, action, run_id, before, after FROM audit_log
         WHERE district_id = $1 AND entity_id = $2 ORDER BY at DESC, id DESC LIMIT 500",
    )
    .bind(district_id)
    .bind(entity_id)
    .fetch_all(db)
    .await
}
