//! The audit log: writing entries (one `Actor` type for everyone) and reading them back.

use crate::domain::ActorKind;
use serde_json::Value;
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who made a change: the one actor type (audit entries, a run's writes, run submitters).
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<Uuid>,
    pub label: String,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            kind: ActorKind::Cli,
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
    pub actor_kind: ActorKind,
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

/// Who a log filter names by `user`: a user's GUID, or text in their name, username or email.
#[derive(Debug, Clone)]
pub enum UserMatch {
    Id(Uuid),
    Text(String),
}

/// The filters of the district audit log (`/audit`, `/audit.csv`).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Text in the actor's label.
    pub actor: Option<String>,
    /// A kind from `domain::audit::KINDS` (the action's first part).
    pub kind: Option<&'static str>,
    pub user: Option<UserMatch>,
    /// Entries at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Entries before this instant.
    pub to: Option<OffsetDateTime>,
    /// A school admin's schools: only entries about users now in them and about them.
    pub schools: Option<Vec<Uuid>>,
}

/// One entry of the district audit log: an `audit_log` row, or a run that ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogEntry {
    /// `a` (`audit_log`) or `r` (a run).
    pub origin: String,
    pub seq: i64,
    pub at: OffsetDateTime,
    pub actor_kind: ActorKind,
    pub actor_label: String,
    pub action: String,
    pub entity_kind: String,
    /// The user, school, run, token or connection the entry is about (for a sign-in: the
    /// account).
    pub subject_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The subject's current name (user, school, token, connection), when it still exists.
    pub subject_name: Option<String>,
    /// For a run subject: its file name and source key.
    pub run_file: Option<String>,
    pub run_source: Option<String>,
}

impl LogEntry {
    pub fn cursor(&self) -> crate::domain::audit::Cursor {
        crate::domain::audit::Cursor {
            at_micros: (self.at.unix_timestamp_nanos() / 1000) as i64,
            run: self.origin == "r",
            seq: self.seq,
        }
    }
}

const RUN_FINAL: &str =
    "('completed', 'completed_with_errors', 'needs_review', 'failed', 'cancelled')";
const RUN_AT: &str = "coalesce(r.finished_at, r.reviewed_at, r.received_at)";

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of the district's audit log, newest first, after `cursor` (keyset on
/// (at, origin, id); never OFFSET). Runs are read from `runs` (those that reached a final
/// status, never dry runs), not copied into `audit_log`.
pub async fn page(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    filter: &LogFilter,
    cursor: Option<crate::domain::audit::Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<LogEntry>> {
    let cursor_at = cursor.and_then(|c| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.at_micros) * 1000).ok()
    });
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT e.origin, e.seq, e.at, e.actor_kind, e.actor_label, e.action, e.entity_kind, e.subject_id,
                e.run_id, e.before, e.after,
                CASE e.entity_kind
                    WHEN 'user' THEN coalesce(nullif(trim(concat_ws(' ', u.first_name, u.last_name)), ''), u.username)
                    WHEN 'school' THEN s.name
                    WHEN 'sync_connection' THEN c.name
                    WHEN 'token' THEN t.name
                END AS subject_name,
                r.file_name AS run_file, r.source AS run_source
         FROM ((SELECT 'a'::text AS origin, a.id AS seq, a.at, a.actor_kind, a.actor_label, a.action, a.entity_kind,
                       CASE WHEN a.action LIKE 'signin.%' THEN a.actor_id ELSE a.entity_id END AS subject_id,
                       a.run_id, a.before, a.after
                FROM audit_log a WHERE a.district_id = ",
    );
    qb.push_bind(district_id);
    if let Some(actor) = &filter.actor {
        qb.push(" AND a.actor_label ILIKE ")
            .push_bind(like_pattern(actor));
    }
    if let Some(kind) = filter.kind {
        qb.push(" AND a.action LIKE ")
            .push_bind(format!("{kind}.%"));
    }
    let user_ids = |qb: &mut QueryBuilder<Postgres>, m: &UserMatch| match m {
        UserMatch::Id(id) => {
            qb.push("(").push_bind(*id).push(")");
        }
        UserMatch::Text(text) => {
            let p = like_pattern(text);
            qb.push("(SELECT x.id FROM users x WHERE x.district_id = ")
                .push_bind(district_id)
                .push(" AND (concat_ws(' ', x.first_name, x.last_name) ILIKE ")
                .push_bind(p.clone())
                .push(" OR x.username ILIKE ")
                .push_bind(p.clone())
                .push(" OR x.email ILIKE ")
                .push_bind(p)
                .push("))");
        }
    };
    if let Some(m) = &filter.user {
        qb.push(" AND ((a.entity_kind = 'user' AND a.entity_id IN ");
        user_ids(&mut qb, m);
        qb.push(") OR (a.action LIKE 'signin.%' AND a.actor_id IN ");
        user_ids(&mut qb, m);
        qb.push("))");
    }
    if let Some(schools) = &filter.schools {
        let in_schools = |qb: &mut QueryBuilder<Postgres>| {
            qb.push("(SELECT us.user_id FROM user_schools us WHERE us.district_id = ")
                .push_bind(district_id)
                .push(" AND us.school_id = ANY(")
                .push_bind(schools.clone())
                .push("))");
        };
        qb.push(" AND ((a.entity_kind = 'user' AND a.entity_id IN ");
        in_schools(&mut qb);
        qb.push(") OR (a.action LIKE 'signin.%' AND a.actor_id IN ");
        in_schools(&mut qb);
        qb.push(") OR (a.entity_kind = 'school' AND a.entity_id = ANY(")
            .push_bind(schools.clone())
            .push(")))");
    }
    if let Some(from) = filter.from {
        qb.push(" AND a.at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        qb.push(" AND a.at < ").push_bind(to);
    }
    if let (Some(c), Some(at)) = (cursor, cursor_at) {
        if c.run {
            // Runs sort before audit rows of the same instant.
            qb.push(" AND a.at <= ").push_bind(at);
        } else {
            qb.push(" AND (a.at, a.id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(c.seq)
                .push(")");
        }
    }
    qb.push(" ORDER BY a.at DESC, a.id DESC LIMIT ")
        .push_bind(limit)
        .push(")");
    // Runs: none when the filter names a user, a school admin asks, or another kind.
    let runs =
        filter.user.is_none() && filter.schools.is_none() && filter.kind.is_none_or(|k| k == "run");
    if runs {
        qb.push(format!(
            " UNION ALL (SELECT 'r'::text, r.log_seq, {RUN_AT}, r.submitted_kind, r.submitted_by,
                       'run.' || r.status, 'run', r.id, r.id, NULL::jsonb,
                       jsonb_build_object('kind', r.kind, 'created', r.created, 'updated', r.updated,
                           'unchanged', r.unchanged, 'restored', r.restored, 'archived', r.archived,
                           'moved', r.moved, 'skipped', r.skipped, 'errors', r.errors, 'message', r.message)
                FROM runs r WHERE NOT r.dry_run AND r.status IN {RUN_FINAL} AND r.district_id = "
        ))
        .push_bind(district_id);
        if let Some(actor) = &filter.actor {
            qb.push(" AND r.submitted_by ILIKE ")
                .push_bind(like_pattern(actor));
        }
        if let Some(from) = filter.from {
            qb.push(format!(" AND {RUN_AT} >= ")).push_bind(from);
        }
        if let Some(to) = filter.to {
            qb.push(format!(" AND {RUN_AT} < ")).push_bind(to);
        }
        if let (Some(c), Some(at)) = (cursor, cursor_at) {
            if c.run {
                qb.push(format!(" AND ({RUN_AT}, r.log_seq) < ("))
                    .push_bind(at)
                    .push(", ")
                    .push_bind(c.seq)
                    .push(")");
            } else {
                qb.push(format!(" AND {RUN_AT} < ")).push_bind(at);
            }
        }
        qb.push(format!(" ORDER BY {RUN_AT} DESC, r.log_seq DESC LIMIT "))
            .push_bind(limit)
            .push(")");
    }
    qb.push(
        ") e
         LEFT JOIN users u ON e.entity_kind = 'user' AND u.district_id = ",
    )
    .push_bind(district_id)
    .push(" AND u.id = e.subject_id LEFT JOIN schools s ON e.entity_kind = 'school' AND s.district_id = ")
    .push_bind(district_id)
    .push(" AND s.id = e.subject_id LEFT JOIN sync_connections c ON e.entity_kind = 'sync_connection' AND c.district_id = ")
    .push_bind(district_id)
    .push(" AND c.id = e.subject_id LEFT JOIN api_tokens t ON e.entity_kind = 'token' AND t.district_id = ")
    .push_bind(district_id)
    .push(" AND t.id = e.subject_id LEFT JOIN runs r ON e.entity_kind = 'run' AND r.district_id = ")
    .push_bind(district_id)
    .push(" AND r.id = e.subject_id ORDER BY e.at DESC, e.origin DESC, e.seq DESC LIMIT ")
    .push_bind(limit);
    qb.build_query_as::<LogEntry>().fetch_all(db).await
}
