//! Sign-in state of accounts beyond the password: the operator's one-time password, the
//! TOTP second factor and recovery codes (of users and operators), and the district's MFA
//! requirement for admins.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// An account that can sign in with a password: a district's user or the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccountId {
    User { district_id: Uuid, user_id: Uuid },
    Operator(Uuid),
}

impl AccountId {
    /// The ids a sealed secret of this account is bound to (operators: the nil district).
    pub fn seal_ids(self) -> (Uuid, Uuid) {
        match self {
            AccountId::User {
                district_id,
                user_id,
            } => (district_id, user_id),
            AccountId::Operator(id) => (Uuid::nil(), id),
        }
    }

    /// The sign-in throttle's counter of this account.
    pub fn throttle_key(self) -> String {
        match self {
            AccountId::User {
                district_id,
                user_id,
            } => crate::db::throttle::user_key(district_id, user_id),
            AccountId::Operator(id) => crate::db::throttle::operator_key(id),
        }
    }
}

// ---- the operator ----

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorAccount {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub session_epoch: i64,
    pub password_temporary: bool,
    pub temp_password_used_at: Option<OffsetDateTime>,
    pub mfa_enabled: bool,
}

const OPERATOR_COLUMNS: &str = "id, email, password_hash, session_epoch, password_temporary, \
                                temp_password_used_at, mfa_enabled_at IS NOT NULL AS mfa_enabled";

pub async fn operator_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> sqlx::Result<Option<OperatorAccount>> {
    sqlx::query_as(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators WHERE lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

pub async fn operator_by_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<OperatorAccount>> {
    sqlx::query_as(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A new operator password (`temporary`: one-time, to be changed at first sign-in). Every
/// session of the operator ends (the `operators_end_sessions` trigger); the new epoch is
/// returned, `None` without such an operator.
pub async fn set_operator_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
    temporary: bool,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE operators SET password_hash = $2, password_temporary = $3
         WHERE id = $1 RETURNING session_epoch",
    )
    .bind(id)
    .bind(hash)
    .bind(temporary)
    .fetch_optional(db)
    .await
}

/// The operator with this email's id.
pub async fn operator_id(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT id FROM operators WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// Use up the operator's one-time password at sign-in: true for the one sign-in that may.
pub async fn use_operator_temporary_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    checked_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE operators SET temp_password_used_at = $3
         WHERE id = $1 AND password_temporary AND password_hash = $2
           AND temp_password_used_at IS NULL",
    )
    .bind(id)
    .bind(checked_hash)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

// ---- MFA ----

/// An account's second factor as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Mfa {
    /// The sealed TOTP secret (set at enrolment's start).
    pub mfa_secret: Option<Vec<u8>>,
    pub mfa_enabled_at: Option<OffsetDateTime>,
    pub mfa_last_step: Option<i64>,
    /// Recovery codes left (none shown here: hashes).
    pub recovery_left: i32,
}

impl Mfa {
    pub fn enabled(&self) -> bool {
        self.mfa_enabled_at.is_some() && self.mfa_secret.is_some()
    }
}

const MFA_COLUMNS: &str =
    "mfa_secret, mfa_enabled_at, mfa_last_step, cardinality(mfa_recovery) AS recovery_left";

pub async fn mfa(db: impl PgExecutor<'_>, account: AccountId) -> sqlx::Result<Option<Mfa>> {
    match account {
        AccountId::User {
            district_id,
            user_id,
        } => {
            sqlx::query_as(&format!(
                "SELECT {MFA_COLUMNS} FROM users WHERE district_id = $1 AND id = $2"
            ))
            .bind(district_id)
            .bind(user_id)
            .fetch_optional(db)
            .await
        }
        AccountId::Operator(id) => {
            sqlx::query_as(&format!(
                "SELECT {MFA_COLUMNS} FROM operators WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(db)
            .await
        }
    }
}

/// Run one UPDATE on the account's row: `set` and `cond` may use `$3` onwards.
fn update_sql(account: AccountId, set: &str, cond: &str) -> String {
    match account {
        AccountId::User { .. } => {
            format!("UPDATE users SET {set} WHERE district_id = $1 AND id = $2 AND ({cond})")
        }
        // $1 is the nil district for operators and is not used.
        AccountId::Operator(_) => {
            format!(
                "UPDATE operators SET {set} WHERE $1::uuid IS NOT NULL AND id = $2 AND ({cond})"
            )
        }
    }
}

fn ids(account: AccountId) -> (Uuid, Uuid) {
    match account {
        AccountId::User {
            district_id,
            user_id,
        } => (district_id, user_id),
        AccountId::Operator(id) => (Uuid::nil(), id),
    }
}

/// Start (or restart) an enrolment: a new sealed secret, not yet enabled. Refused (false)
/// while MFA is on.
pub async fn mfa_begin(
    db: impl PgExecutor<'_>,
    account: AccountId,
    sealed: &[u8],
) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_secret = $3, mfa_last_step = NULL, mfa_recovery = '{}'",
        "mfa_enabled_at IS NULL",
    ))
    .bind(a)
    .bind(b)
    .bind(sealed)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Finish an enrolment: MFA on, the confirming code's step used, the recovery codes' hashes.
pub async fn mfa_enable(
    db: impl PgExecutor<'_>,
    account: AccountId,
    step: i64,
    recovery: &[Vec<u8>],
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_enabled_at = $3, mfa_last_step = $4, mfa_recovery = $5",
        "mfa_enabled_at IS NULL AND mfa_secret IS NOT NULL",
    ))
    .bind(a)
    .bind(b)
    .bind(now)
    .bind(step)
    .bind(recovery)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Use a code's time step: true when no later or equal step was used before (a code works
/// once, even against two requests at the same moment).
pub async fn mfa_use_step(
    db: impl PgExecutor<'_>,
    account: AccountId,
    step: i64,
) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_last_step = $3",
        "mfa_enabled_at IS NOT NULL AND (mfa_last_step IS NULL OR mfa_last_step < $3)",
    ))
    .bind(a)
    .bind(b)
    .bind(step)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Use a recovery code (by hash): true when it was one of the account's, now removed.
pub async fn mfa_use_recovery(
    db: impl PgExecutor<'_>,
    account: AccountId,
    hash: &[u8],
) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_recovery = array_remove(mfa_recovery, $3)",
        "mfa_enabled_at IS NOT NULL AND $3 = ANY(mfa_recovery)",
    ))
    .bind(a)
    .bind(b)
    .bind(hash)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// New recovery codes (the old ones stop working).
pub async fn mfa_replace_recovery(
    db: impl PgExecutor<'_>,
    account: AccountId,
    recovery: &[Vec<u8>],
) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_recovery = $3",
        "mfa_enabled_at IS NOT NULL",
    ))
    .bind(a)
    .bind(b)
    .bind(recovery)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Turn MFA off and forget the secret and codes.
pub async fn mfa_disable(db: impl PgExecutor<'_>, account: AccountId) -> sqlx::Result<bool> {
    let (a, b) = ids(account);
    Ok(sqlx::query(&update_sql(
        account,
        "mfa_secret = NULL, mfa_enabled_at = NULL, mfa_last_step = NULL, mfa_recovery = '{}'",
        "true",
    ))
    .bind(a)
    .bind(b)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Whether the district requires MFA of its district and school admins.
pub async fn district_requires_mfa(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar::<_, bool>(
            "SELECT mfa_required_for_admins FROM districts WHERE id = $1",
        )
        .bind(district_id)
        .fetch_optional(db)
        .await?
        .unwrap_or(false),
    )
}

/// Whether this admin must use MFA on a password sign-in: their district requires it of its
/// admins, or they are the break-glass admin of a district that requires single sign-on of
/// admins (the one password left to an admin is never a password alone; issue 17).
pub async fn admin_requires_mfa(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT d.mfa_required_for_admins
                OR coalesce((SELECT p.require_for_admins AND p.break_glass_user_id = $2
                             FROM sso_policies p WHERE p.district_id = d.id), false)
         FROM districts d WHERE d.id = $1",
    )
    .bind(district_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .unwrap_or(false))
}

pub async fn set_district_requires_mfa(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    required: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE districts SET mfa_required_for_admins = $2 WHERE id = $1")
        .bind(district_id)
        .bind(required)
        .execute(db)
        .await?;
    Ok(())
}
