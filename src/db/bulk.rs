//! Bulk actions on the Users list (issue 16, item 5): the selection (ticked ids, or every
//! user the list's filters select) counted and changed in one set-based statement each, with
//! one audit entry per changed user written by the same statement; never a query per user.

use crate::db::audit::Actor;
use crate::db::user_filter::UserFilter;
use crate::domain::bulk::{BulkAction, Selection, Split};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who is asking for what, over which users.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub district_id: Uuid,
    pub selection: &'a Selection,
    /// The list's search and filters (used for [`Selection::AllMatching`]).
    pub filter: &'a UserFilter,
    /// A school admin's schools (`None`: a district admin).
    pub schools: Option<&'a [Uuid]>,
    /// The admin's own account (left out of actions that would lock them out).
    pub me: Option<Uuid>,
    pub action: BulkAction,
    /// The new owner (`users.source` as stored) of a hand-over.
    pub owner: Option<&'a str>,
}

impl Target<'_> {
    /// `AND …` conditions selecting the users (alias `u`, district already filtered).
    fn push_selected(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        match self.selection {
            Selection::Ids(ids) => {
                qb.push(" AND u.id = ANY(").push_bind(ids.clone()).push(")");
                if let Some(schools) = self.schools {
                    qb.push(" AND EXISTS (SELECT 1 FROM user_schools s WHERE s.district_id = u.district_id AND s.user_id = u.id AND s.school_id = ANY(")
                        .push_bind(schools.to_vec())
                        .push("))");
                }
            }
            Selection::AllMatching => self.filter.push_conditions(qb, self.schools),
        }
    }

    /// `AND …` conditions of the selected users the action changes.
    fn push_eligible(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        if self.action.wants_archived() {
            qb.push(" AND u.archived_at IS NOT NULL");
        } else {
            qb.push(" AND u.archived_at IS NULL");
        }
        match self.action {
            BulkAction::Deactivate => {
                qb.push(" AND u.status = 'active'");
            }
            BulkAction::Activate => {
                qb.push(" AND u.status = 'inactive'");
            }
            BulkAction::HandTo => {
                qb.push(" AND u.source <> ")
                    .push_bind(self.owner.unwrap_or_default().to_string());
                // A live sync's users are changed in the sync (as on the user page).
                qb.push(" AND NOT EXISTS (SELECT 1 FROM sync_connections c WHERE c.district_id = u.district_id AND u.source = 'sync:' || c.id::text)");
            }
            _ => {}
        }
        if self.action.spares_self()
            && let Some(me) = self.me
        {
            qb.push(" AND u.id <> ").push_bind(me);
        }
        if self.schools.is_some() {
            // Admin accounts are read-only to a school admin.
            qb.push(" AND u.portal_role = 'user'");
        }
    }
}

/// How many users the selection holds, and how many of them the action changes.
pub async fn count(db: impl PgExecutor<'_>, t: &Target<'_>) -> sqlx::Result<Split> {
    let mut qb = QueryBuilder::new("SELECT count(*)::bigint, count(*) FILTER (WHERE TRUE");
    t.push_eligible(&mut qb);
    qb.push(")::bigint FROM users u WHERE u.district_id = ")
        .push_bind(t.district_id);
    t.push_selected(&mut qb);
    let (selected, eligible): (i64, i64) = qb.build_query_as().fetch_one(db).await?;
    Ok(Split { selected, eligible })
}

/// Change every eligible user of the selection (status, archive state or owner) in one
/// statement that also writes each one's audit entry (the same action and before/after as the
/// one-user buttons). Returns the changed users' ids. Not for password resets
/// ([`set_temporary_passwords`]).
pub async fn apply(
    db: &mut PgConnection,
    t: &Target<'_>,
    actor: &Actor,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<Uuid>> {
    let mut qb = QueryBuilder::new(
        "WITH t AS (SELECT u.id, u.source, u.prevent_archiving FROM users u WHERE u.district_id = ",
    );
    qb.push_bind(t.district_id);
    t.push_selected(&mut qb);
    t.push_eligible(&mut qb);
    qb.push(" FOR UPDATE OF u), up AS (UPDATE users x SET version = x.version + 1, ");
    let (before, after) = match t.action {
        BulkAction::Deactivate => {
            qb.push("status = 'inactive'");
            (
                "jsonb_build_object('status', 'Active')",
                "jsonb_build_object('status', 'Inactive')",
            )
        }
        BulkAction::Activate => {
            qb.push("status = 'active'");
            (
                "jsonb_build_object('status', 'Inactive')",
                "jsonb_build_object('status', 'Active')",
            )
        }
        BulkAction::Archive => {
            qb.push("archived_at = ").push_bind(now);
            (
                "jsonb_build_object('archived', false)",
                "jsonb_build_object('archived', true)",
            )
        }
        BulkAction::Restore => {
            qb.push("archived_at = NULL");
            (
                "jsonb_build_object('archived', true)",
                "jsonb_build_object('archived', false)",
            )
        }
        BulkAction::HandTo => {
            let to = t.owner.unwrap_or_default().to_string();
            // Manual users are protected from archiving (as the user page's hand-over).
            qb.push("source = ")
                .push_bind(to.clone())
                .push(", prevent_archiving = x.prevent_archiving OR ")
                .push_bind(to)
                .push(" = 'manual'");
            (
                "jsonb_build_object('source', up.old_source, 'prevent_archiving', up.old_prevent)",
                "jsonb_build_object('source', up.source, 'prevent_archiving', up.prevent_archiving)",
            )
        }
        BulkAction::ResetPasswords => {
            unreachable!("password resets go through set_temporary_passwords")
        }
    };
    qb.push(" FROM t WHERE x.district_id = ")
        .push_bind(t.district_id)
        .push(" AND x.id = t.id RETURNING x.id, x.source, x.prevent_archiving, t.source AS old_source, t.prevent_archiving AS old_prevent), au AS (INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, before, after) SELECT ")
        .push_bind(t.district_id)
        .push(", ")
        .push_bind(actor.kind)
        .push(", ")
        .push_bind(actor.id)
        .push(", ")
        .push_bind(actor.label.clone())
        .push(", ")
        .push_bind(t.action.audit_action())
        .push(", 'user', up.id, ")
        .push(before)
        .push(", ")
        .push(after)
        .push(" FROM up) SELECT id FROM up");
    qb.build_query_scalar().fetch_all(db).await
}

/// A user a password reset's login card is for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CardUser {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub email: Option<String>,
}

/// The eligible users of a password reset, by name, locked for the transaction (at most
/// `limit`).
pub async fn card_users(
    db: &mut PgConnection,
    t: &Target<'_>,
    limit: i64,
) -> sqlx::Result<Vec<CardUser>> {
    let mut qb = QueryBuilder::new(
        "SELECT u.id, u.first_name, u.last_name, u.username, u.email FROM users u WHERE u.district_id = ",
    );
    qb.push_bind(t.district_id);
    t.push_selected(&mut qb);
    t.push_eligible(&mut qb);
    qb.push(" ORDER BY lower(u.last_name), lower(u.first_name), u.username LIMIT ")
        .push_bind(limit)
        .push(" FOR UPDATE OF u");
    qb.build_query_as().fetch_all(db).await
}

/// Give each user its temporary password hash (`ids[i]` ← `hashes[i]`) in one statement, as
/// `db::users::set_password` does for one (which ends their sessions), with one
/// `user.password_reset` audit entry each. Returns the ids changed.
pub async fn set_temporary_passwords(
    db: &mut PgConnection,
    district_id: Uuid,
    ids: &[Uuid],
    hashes: &[String],
    actor: &Actor,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "WITH v AS (SELECT * FROM unnest($2::uuid[], $3::text[]) AS v(id, hash)),
         up AS (UPDATE users u SET password_hash = v.hash, password_temporary = true, password_set_at = $4,
                                   version = u.version + 1
                FROM v WHERE u.district_id = $1 AND u.id = v.id AND u.archived_at IS NULL
                RETURNING u.id),
         au AS (INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, after)
                SELECT $1, $5, $6, $7, 'user.password_reset', 'user', up.id,
                       jsonb_build_object('password', 'temporary password issued (bulk)')
                FROM up)
         SELECT id FROM up",
    )
    .bind(district_id)
    .bind(ids)
    .bind(hashes)
    .bind(now)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .fetch_all(db)
    .await
}

/// Archive (`Some(now)`) or restore (`None`) one class of the district (within a school
/// admin's `schools`), with its `class.archive`/`class.restore` audit entry in the same
/// statement; `false` when the class already was so (nothing written).
pub async fn set_class_archived(
    db: &mut PgConnection,
    district_id: Uuid,
    class_id: Uuid,
    schools: Option<&[Uuid]>,
    at: Option<OffsetDateTime>,
    actor: &Actor,
) -> sqlx::Result<bool> {
    let changed: Option<Uuid> = sqlx::query_scalar(
        "WITH up AS (UPDATE classes c SET archived_at = $4
                     WHERE c.district_id = $1 AND c.id = $2 AND ($3::uuid[] IS NULL OR c.school_id = ANY($3))
                       AND (c.archived_at IS NULL) = ($4::timestamptz IS NOT NULL)
                     RETURNING c.id),
              au AS (INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, before, after)
                     SELECT $1, $5, $6, $7,
                            CASE WHEN $4::timestamptz IS NULL THEN 'class.restore' ELSE 'class.archive' END,
                            'class', up.id,
                            jsonb_build_object('archived', $4::timestamptz IS NULL),
                            jsonb_build_object('archived', $4::timestamptz IS NOT NULL)
                     FROM up)
         SELECT id FROM up",
    )
    .bind(district_id)
    .bind(class_id)
    .bind(schools)
    .bind(at)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .fetch_optional(db)
    .await?;
    Ok(changed.is_some())
}

/// Restore the archived students of a class (those a school admin may change: plain users of
/// their schools), one `user.restore` audit entry each, in one statement. Returns how many.
pub async fn restore_class_students(
    db: &mut PgConnection,
    district_id: Uuid,
    class_id: Uuid,
    schools: Option<&[Uuid]>,
    actor: &Actor,
) -> sqlx::Result<i64> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "WITH t AS (SELECT u.id FROM users u
                    JOIN enrollments e ON e.district_id = u.district_id AND e.user_id = u.id
                    WHERE u.district_id = $1 AND e.class_id = $2 AND e.role = 'student'
                      AND u.archived_at IS NOT NULL
                      AND ($3::uuid[] IS NULL OR (u.portal_role = 'user' AND EXISTS (
                          SELECT 1 FROM user_schools s WHERE s.district_id = u.district_id
                            AND s.user_id = u.id AND s.school_id = ANY($3))))
                    FOR UPDATE OF u),
              up AS (UPDATE users x SET archived_at = NULL, version = x.version + 1 FROM t
                     WHERE x.district_id = $1 AND x.id = t.id RETURNING x.id),
              au AS (INSERT INTO audit_log (district_id, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, before, after)
                     SELECT $1, $4, $5, $6, 'user.restore', 'user', up.id,
                            '{\"archived\": true}'::jsonb, '{\"archived\": false}'::jsonb FROM up)
         SELECT id FROM up",
    )
    .bind(district_id)
    .bind(class_id)
    .bind(schools)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .fetch_all(db)
    .await?;
    Ok(ids.len() as i64)
}
