//! Every SQL statement of the application lives here, one file per table group (the one
//! exception: `pg_local::LocalPg::ensure_database` creates the managed cluster's database
//! before any pool exists). The run liveness lock is `run_lock`. Functions that read or write
//! tenant data take the district id (from a `DistrictScope`), and every query filters on it;
//! the housekeeping that looks across districts (`queue`, `retention`,
//! `districts::drop_folders`) says so where it does.

pub mod account_sessions;
pub mod accounts;
pub mod alert_delivery;
pub mod alerts;
pub mod audit;
pub mod bulk;
pub mod classes;
pub mod districts;
pub mod export;
pub mod health;
pub mod home;
pub mod mappings;
pub mod password_resets;
pub mod queue;
pub mod reconcile;
pub mod retention;
pub mod rosters;
pub mod run_changes;
pub mod run_lock;
pub mod runs;
pub mod schools;
pub mod search_index;
pub mod sso;
pub mod syncs;
pub mod teaching;
pub mod throttle;
pub mod tokens;
pub mod undo;
pub mod user_edit;
pub mod user_filter;
pub mod user_list;
pub mod users;

use crate::config::Config;
use crate::pg_local::LocalPg;
use anyhow::{Context, Result};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle this long is pinged before use.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The database a process uses: the configured one, or the managed local cluster.
pub struct Database {
    pub pool: PgPool,
    pub local: Option<LocalPg>,
}

impl Database {
    pub async fn open(config: &Config) -> Result<Database> {
        let (options, local) = match &config.database_url {
            Some(url) => (
                PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?,
                None,
            ),
            None => {
                let data_dir = config.data_dir.clone();
                let local =
                    tokio::task::spawn_blocking(move || LocalPg::start(&data_dir)).await??;
                let options = local.ensure_database().await?;
                (options, Some(local))
            }
        };
        // If this process dies mid-run, PostgreSQL notices within a second even during a
        // long statement, rolls the run back and frees its locks, so it can run again.
        let options = options.options([("client_connection_check_interval", "1000")]);
        // sqlx pings a pooled connection before every use by default: a second round trip
        // per query. Only a connection idle for a while (which a restarted server or a
        // firewall may have dropped) is checked now.
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?;
        Ok(Database { pool, local })
    }

    /// Close the pool and stop the managed cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(local) = self.local {
            let _ = tokio::task::spawn_blocking(move || local.stop()).await;
        }
    }
}

/// The unique and check constraints a person can run into, each with the form field it is
/// about and the words they can act on: the one place a violation becomes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    SchoolExternalId,
    DistrictSlug,
    DistrictSlugFormat,
    UserCustomId,
    UserEmail,
    UserUsername,
    OperatorEmail,
    SyncConnectionName,
}

impl Constraint {
    pub const ALL: [Constraint; 8] = [
        Constraint::SchoolExternalId,
        Constraint::DistrictSlug,
        Constraint::DistrictSlugFormat,
        Constraint::UserCustomId,
        Constraint::UserEmail,
        Constraint::UserUsername,
        Constraint::OperatorEmail,
        Constraint::SyncConnectionName,
    ];

    /// Its name in the migrations (never renamed).
    pub fn name(self) -> &'static str {
        match self {
            Constraint::SchoolExternalId => "schools_district_external_id_key",
            Constraint::DistrictSlug => "districts_slug_key",
            Constraint::DistrictSlugFormat => "districts_slug_check",
            Constraint::UserCustomId => "users_district_custom_id_key",
            Constraint::UserEmail => "users_district_email_key",
            Constraint::UserUsername => "users_district_username_key",
            Constraint::OperatorEmail => "operators_email_key",
            Constraint::SyncConnectionName => "sync_connections_district_name_key",
        }
    }

    /// The form field it is about, where a form has one.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Constraint::UserCustomId => Some("custom_id"),
            Constraint::UserEmail => Some("email"),
            Constraint::UserUsername => Some("username"),
            Constraint::SyncConnectionName => Some("name"),
            _ => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Constraint::SchoolExternalId => {
                "a school with this external ID already exists in this district"
            }
            Constraint::DistrictSlug => "a district with this slug already exists",
            Constraint::DistrictSlugFormat => {
                "the slug must be lower-case letters, digits and dashes"
            }
            Constraint::UserCustomId => "custom ID already used by another user",
            Constraint::UserEmail => "email already used by another user",
            Constraint::UserUsername => "username already used by another user",
            Constraint::OperatorEmail => "an operator with this email already exists",
            Constraint::SyncConnectionName => "a connection with this name already exists",
        }
    }
}

/// The known constraint a database error violated, if any.
pub fn violated(err: &sqlx::Error) -> Option<Constraint> {
    let name = err.as_database_error()?.constraint()?;
    Constraint::ALL.into_iter().find(|c| c.name() == name)
}

/// A unique or check violation, turned into words a person can act on.
pub fn constraint_message(err: &sqlx::Error) -> Option<&'static str> {
    violated(err).map(Constraint::message)
}
