//! Roster syncs (SPEC §6): a connection's provider data through the same reconcile engine
//! as uploads. A sync is an ordinary run (kind `sync`, source `sync:<connection id>`): it is
//! queued (schedule, "Sync now", a CSV set uploaded), taken by the job queue's worker, and
//! recorded with the same statuses, counts, guard and files. Everything is fetched before
//! anything is applied, so a failed fetch changes nothing.

pub mod client;
pub(crate) mod http;
pub mod pause;
pub mod policy;
pub mod schedule;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::SecretKey;
use crate::db;
use crate::db::syncs::Connection;
use crate::domain::roster::RosterFeed;
use crate::domain::{ActorKind, RunKind, RunStatus, Scope, Source};
use crate::feed::bundle::{self, Limits};
use crate::feed::oneroster::{self, FileMode};
use crate::feed::provider::{self, ProviderUser};
use crate::feed::sds;
use crate::reconcile::run::{self, RunRequest, Summary};
use anyhow::{Context, Result};
use client::{Client, Provider};
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The kinds of connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OneRosterRest,
    Clever,
    OneRosterCsv,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::OneRosterRest, Kind::Clever, Kind::OneRosterCsv];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OneRosterRest => "oneroster_rest",
            Kind::Clever => "clever",
            Kind::OneRosterCsv => "oneroster_csv",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::OneRosterRest => "OneRoster 1.1 REST",
            Kind::Clever => "Clever",
            Kind::OneRosterCsv => "OneRoster 1.1 CSV",
        }
    }

    /// Pulled on a schedule (the CSV kind arrives by upload or the command line).
    pub fn is_scheduled(self) -> bool {
        self != Kind::OneRosterCsv
    }
}

pub const DEFAULT_CLEVER_URL: &str = "https://api.clever.com";

/// The default OAuth2 token endpoint of a OneRoster base URL: `<base>/token`.
pub fn default_token_url(base: &str) -> String {
    format!("{}/token", base.trim().trim_end_matches('/'))
}

/// Check a URL's destination before it is saved: an address written in it, or the
/// addresses its host name resolves to now (a name that does not resolve yet passes; the
/// connection is checked again each time it connects).
pub async fn check_destination(config: &Config, url: &str) -> Result<(), String> {
    let Ok(url) = reqwest::Url::parse(url) else {
        return Ok(());
    };
    if config.sync_allow_private {
        return Ok(());
    }
    policy::check_url(&url, false).map_err(|e| e.to_string())?;
    let Some(host) = url.host_str() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.to_string(), port)),
    );
    if let Ok(Ok(addrs)) = lookup.await {
        for a in addrs {
            policy::check_addr(host, a.ip(), false).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The provider of a REST connection, with its secret decrypted. An address the policy
/// refuses, written in its URLs, stops it here.
pub fn provider(config: &Config, conn: &Connection) -> Result<Provider, String> {
    let kind = Kind::parse(&conn.kind).ok_or("unknown connection kind")?;
    let base = client::parse_base(conn.base_url.as_deref().unwrap_or(""))?;
    policy::check_url(&base, config.sync_allow_private).map_err(|e| format!("Base URL: {e}"))?;
    let sealed = conn
        .secret_sealed
        .as_deref()
        .ok_or("the connection has no secret; enter it on its page")?;
    let secret = SecretKey::from_config(config)
        .and_then(|k| k.open(sealed, conn.district_id, conn.id))
        .map_err(|e| e.to_string())?;
    match kind {
        Kind::OneRosterRest => {
            let token_url = match conn.token_url.as_deref().filter(|t| !t.trim().is_empty()) {
                Some(t) => client::parse_base(t)?,
                None => client::parse_base(&default_token_url(base.as_str()))?,
            };
            policy::check_url(&token_url, config.sync_allow_private)
                .map_err(|e| format!("Token URL: {e}"))?;
            Ok(Provider::OneRoster {
                base,
                token_url,
                client_id: conn.client_id.clone().unwrap_or_default(),
                secret,
            })
        }
        Kind::Clever => Ok(Provider::Clever {
            base,
            token: secret,
        }),
        Kind::OneRosterCsv => Err("a OneRoster CSV connection has no server to ask".into()),
    }
}

/// What "Test connection" found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Everything listed within the deadline.
    Complete {
        schools: usize,
        users: usize,
        skipped: usize,
    },
    /// Pages came, but listing everything takes longer than the test's deadline.
    Unfinished {
        pages: usize,
        records: usize,
        secs: u64,
    },
}

/// "30 minutes", "45 s": a configured number of seconds in words.
pub fn span(secs: u64) -> String {
    match secs {
        60.. if secs.is_multiple_of(60) => format!("{} minutes", secs / 60),
        _ => format!("{secs} s"),
    }
}

/// Check a REST connection's credentials by fetching everything once (no retries, nothing
/// applied), for at most the test's deadline (`ROLLCALL_SYNC_TEST_DEADLINE_SECS`).
pub async fn test_connection(config: &Config, conn: &Connection) -> Result<Probe, String> {
    let provider = provider(config, conn)?;
    let limits = client::Limits {
        pauses: Vec::new(),
        ..client::Limits::from_config(config)
    };
    let mut client = Client::new(provider, limits);
    let secs = config.sync_test_deadline_secs;
    let fetched = tokio::time::timeout(Duration::from_secs(secs), client.fetch_all()).await;
    let fetched = match fetched {
        Ok(fetched) => fetched.map_err(|f| f.message)?,
        Err(_) if client.pages > 0 => {
            return Ok(Probe::Unfinished {
                pages: client.pages,
                records: client.records,
                secs,
            });
        }
        Err(_) => {
            return Err(format!("the provider did not answer within {}", span(secs)));
        }
    };
    let schools = fetched
        .orgs
        .iter()
        .filter(|o| o.is_school() && !o.to_be_deleted)
        .count();
    let skipped = fetched
        .users
        .iter()
        .filter(|u| provider::role_kind(&u.role) == Some(provider::RoleKind::Skipped))
        .count();
    Ok(Probe::Complete {
        schools,
        users: fetched.users.len() - skipped,
        skipped,
    })
}

/// Why a sync was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Run(Uuid),
    Paused,
    /// A run of this connection is already queued or in progress.
    Busy(Uuid),
}

/// Queue a sync of `conn` (schedule, "Sync now", or a CSV set at `file`).
pub async fn enqueue(
    pool: &PgPool,
    conn: &Connection,
    submitted_kind: ActorKind,
    submitted_by: &str,
    file: Option<(&str, &Path)>,
) -> Result<Enqueued> {
    if conn.paused {
        return Ok(Enqueued::Paused);
    }
    let source = Source::Sync(conn.id).to_db();
    if let Some(busy) = db::syncs::pending_run(pool, conn.district_id, &source).await? {
        return Ok(Enqueued::Busy(busy));
    }
    let run_id = db::runs::insert(
        pool,
        conn.district_id,
        &db::runs::NewRun {
            kind: RunKind::Sync,
            source: &source,
            file_name: file.map(|f| f.0),
            file_sha256: None,
            file_path: file.and_then(|f| f.1.to_str()),
            dry_run: false,
            approved: false,
            options: serde_json::json!({}),
            submitted_kind,
            submitted_by,
            status: RunStatus::Queued,
        },
    )
    .await?;
    db::syncs::set_last_run(pool, conn.district_id, conn.id, run_id).await?;
    Ok(Enqueued::Run(run_id))
}

/// What a sync applies: schools to create or rename, the org index, the users, and whether
/// users missing from them are archived.
struct Incoming {
    schools: Vec<(String, String)>,
    orgs: provider::Orgs,
    users: Users,
    archive_missing: bool,
    snapshot_name: &'static str,
    /// Classes, terms and enrollments, when the feed carries them (SPEC §6a).
    rosters: Option<RosterFeed>,
    /// Roster lists the provider does not offer, and what was left as it is (for the run).
    notes: Vec<String>,
}

/// A sync's users: the provider's records, or (a CSV set) already typed as they were read.
enum Users {
    /// Fetched or read whole (OneRoster REST, Clever, SDS).
    Records(Vec<ProviderUser>),
    /// Typed record by record as the set was read, the snapshot written to this file
    /// beside the run's (issue 15, memory).
    Typed(Box<provider::Typed>, PathBuf),
}

/// Carry out a sync run the job queue took (already marked started). An internal error
/// marks the run Failed (it changed nothing: the apply is one transaction).
pub async fn execute_run(
    pool: &PgPool,
    clock: &Clock,
    config: &Config,
    run: &db::runs::Run,
) -> Result<Summary> {
    let result = execute_inner(pool, clock, config, run).await;
    if let Err(e) = &result {
        tracing::error!(run = %run.id, error = format!("{e:#}"), "sync run failed");
        finish_without_changes(
            pool,
            clock,
            run.district_id,
            run.id,
            RunStatus::Failed,
            "the sync stopped on an internal error and changed nothing; it has been logged".into(),
        )
        .await?;
    }
    result
}

async fn execute_inner(
    pool: &PgPool,
    clock: &Clock,
    config: &Config,
    run: &db::runs::Run,
) -> Result<Summary> {
    let Source::Sync(conn_id) = Source::from_db(&run.source) else {
        anyhow::bail!("run {} is not a sync", run.id);
    };
    let finish = |status: RunStatus, message: String| async move {
        finish_without_changes(pool, clock, run.district_id, run.id, status, message).await
    };
    let Some(conn) = db::syncs::get(pool, run.district_id, conn_id).await? else {
        return finish(
            RunStatus::Failed,
            "the connection was deleted; nothing ran".into(),
        )
        .await;
    };
    if conn.paused {
        return finish(
            RunStatus::Cancelled,
            "the connection is paused; nothing ran".into(),
        )
        .await;
    }
    let incoming = match Kind::parse(&conn.kind) {
        Some(Kind::OneRosterCsv) => {
            let path = run
                .file_path
                .clone()
                .map(PathBuf::from)
                .context("the run has no stored set")?;
            // A run approved, or picked up again after a crash, once its set moved beside
            // its snapshot reads the set (not the snapshot its file now names).
            let set = crate::storage::set_path(&crate::storage::upload_path(
                &config.data_dir,
                run.district_id,
                run.id,
            ));
            let path = if set.exists() { set } else { path };
            if is_sds_set(&path) {
                read_sds_set(pool, run.district_id, &path, config.max_upload_bytes()).await?
            } else {
                let snapshot =
                    crate::storage::upload_path(&config.data_dir, run.district_id, run.id)
                        .with_extension("typing.csv");
                read_set(
                    pool,
                    run.district_id,
                    &path,
                    config.max_upload_bytes(),
                    snapshot,
                )
                .await?
            }
        }
        _ => match fetch(pool, config, &conn).await? {
            Ok(i) => Ok(i),
            Err(f) => {
                // One attempt is one fetch. A retryable failure goes back to the queue with
                // a time before which it is not taken, so the district's slot is free while
                // it waits; after the last attempt the run fails.
                let pauses = &client::Limits::from_config(config).pauses;
                if f.retry
                    && let Some(wait) = client::retry_wait(run.attempts, pauses)
                {
                    let at = clock.now() + wait;
                    let message = format!(
                        "attempt {} failed: {}; trying again at {}",
                        run.attempts.max(1),
                        f.message,
                        format_args!("{:02}:{:02}:{:02} UTC", at.hour(), at.minute(), at.second())
                    );
                    db::runs::requeue_later(pool, run.district_id, run.id, at, &message).await?;
                    tracing::warn!(run = %run.id, connection = %conn.id, attempt = run.attempts,
                        reason = %f.message, "sync attempt failed; queued again");
                    return Ok(retry_summary(run.id, message));
                }
                let attempts = if run.attempts > 1 {
                    format!(" (after {} attempts)", run.attempts)
                } else {
                    String::new()
                };
                Err(format!(
                    "the sync failed: {}{attempts}; nothing was changed",
                    f.message
                ))
            }
        },
    };
    let incoming = match incoming {
        Ok(i) => i,
        Err(message) => return finish(RunStatus::Failed, message).await,
    };
    apply(pool, clock, config, run, &conn, incoming).await
}

/// One attempt: fetch everything once (no retries inside; the queue retries the run).
async fn fetch(
    pool: &PgPool,
    config: &Config,
    conn: &Connection,
) -> Result<Result<Incoming, client::Failure>> {
    let provider = match provider(config, conn) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Err(client::fail(
                format!("the sync could not start: {e}"),
                false,
            )));
        }
    };
    let limits = client::Limits {
        pauses: Vec::new(),
        ..client::Limits::from_config(config)
    };
    let mut client = Client::new(provider, limits);
    // The whole fetch, retries and their pauses included, within the run's deadline.
    let secs = config.sync_deadline_secs;
    let fetched = tokio::time::timeout(Duration::from_secs(secs), client.fetch_all()).await;
    let fetched = match fetched {
        Ok(Ok(f)) => f,
        Ok(Err(f)) => {
            tracing::warn!(connection = %conn.id, reason = %f.message, "sync fetch failed");
            return Ok(Err(f));
        }
        Err(_) => {
            tracing::warn!(connection = %conn.id, pages = client.pages, records = client.records,
                deadline_secs = secs, "sync fetch stopped at its deadline");
            return Ok(Err(client::fail(
                format!(
                    "the provider did not finish within {} ({} pages, {} records \
                     read; the limit is ROLLCALL_SYNC_DEADLINE_SECS)",
                    span(secs),
                    client.pages,
                    client.records
                ),
                false,
            )));
        }
    };
    tracing::info!(connection = %conn.id, requests = client.requests, orgs = fetched.orgs.len(),
        users = fetched.users.len(), "sync fetched");
    let existing = existing_schools(pool, conn.district_id).await?;
    let (schools, orgs) = oneroster::index_orgs(&fetched.orgs, &existing);
    Ok(Ok(Incoming {
        schools,
        orgs,
        users: Users::Records(fetched.users),
        rosters: Some(fetched.rosters).filter(|r| !r.is_empty()),
        notes: fetched.notes,
        archive_missing: true,
        snapshot_name: if conn.kind == Kind::Clever.as_str() {
            "clever-users.csv"
        } else {
            "oneroster-users.csv"
        },
    }))
}

async fn existing_schools(pool: &PgPool, district_id: Uuid) -> Result<HashSet<String>> {
    Ok(db::schools::external_ids(pool, district_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect())
}

/// Read a OneRoster CSV set (zip or folder; 1.1, or 1.2 with `roles.csv`), honouring its
/// manifest: schools, users, and the rosters of its roster files (SPEC §6a). The users are
/// typed as they are read and their snapshot written to `snapshot`. `Err` inside: why the
/// set cannot be used (nothing applied, no snapshot left).
async fn read_set(
    pool: &PgPool,
    district_id: Uuid,
    path: &Path,
    max_bytes: u64,
    snapshot: PathBuf,
) -> Result<Result<Incoming, String>> {
    let existing = existing_schools(pool, district_id).await?;
    let path = path.to_path_buf();
    let written = snapshot.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Result<Incoming, String>> {
        let mut set = match bundle::open(&path, &Limits::for_upload(max_bytes)) {
            Ok(set) => set,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let bundle::SetHead {
            manifest,
            orgs,
            roles,
        } = match set.read_head(max_bytes) {
            Ok(head) => head,
            Err(e) => return Ok(Err(e)),
        };
        let (schools, orgs) = oneroster::index_orgs(&orgs, &existing);
        if let Some(dir) = snapshot.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut typing = provider::Typing::new(&orgs, std::fs::File::create(&snapshot)?);
        // The users and the roster files at once, on two threads: neither needs the other
        // until planning, and a million users and three million enrollments take seconds each.
        // Both on threads of their own that end here: what they allocated is then no
        // thread's, and the planner, on another thread, gives each block back to the system
        // as it frees it. Memory made on this pool thread would wait, freed but held, until
        // the thread next allocated (a first sync at 1M peaked 1147 to 1414 MiB, depending on
        // which pool thread planned).
        let (users, rosters) = std::thread::scope(|s| {
            let users =
                s.spawn(|| set.read_users(&manifest, roles.as_ref(), max_bytes, &mut typing));
            let rosters = s.spawn(|| set.read_rosters(&manifest, max_bytes));
            (users.join(), rosters.join())
        });
        drop(roles);
        set.forget_users();
        match users {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Ok(Err(e)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        let rosters = match rosters {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Ok(Err(e)),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let (typed, _) = typing.finish()?;
        tracing::debug!(rss_mib = %crate::telemetry::rss_mib(), "set read");
        Ok(Ok(Incoming {
            schools,
            orgs,
            users: Users::Typed(Box::new(typed), snapshot),
            // A delta lists only what changed; an absent users file says nothing about users.
            archive_missing: manifest.users == FileMode::Bulk,
            rosters,
            notes: Vec::new(),
            snapshot_name: "users.csv",
        }))
    })
    .await?;
    if !matches!(read, Ok(Ok(_))) {
        let _ = std::fs::remove_file(&written);
    }
    read
}

/// Read a Microsoft SDS v1 CSV set (zip or folder: `School.csv`, `Section.csv`,
/// `Student.csv`, `Teacher.csv`, `StudentEnrollment.csv`, `TeacherRoster.csv`). It lists
/// everything of its source, users and rosters. `Err` inside: why the set cannot be used
/// (nothing applied).
async fn read_sds_set(
    pool: &PgPool,
    district_id: Uuid,
    path: &Path,
    max_bytes: u64,
) -> Result<Result<Incoming, String>> {
    let existing = existing_schools(pool, district_id).await?;
    let path = path.to_path_buf();
    Ok(
        tokio::task::spawn_blocking(move || -> Result<Incoming, String> {
            let limits = Limits::for_upload(max_bytes);
            let files =
                bundle::open_files(&path, &limits, &sds::FILES_LOWER).map_err(|e| e.to_string())?;
            let set = sds::read_set(|name| files.get(name), max_bytes)?;
            let (schools, orgs) = oneroster::index_orgs(&set.schools, &existing);
            Ok(Incoming {
                schools,
                orgs,
                users: Users::Records(set.users),
                archive_missing: true,
                rosters: Some(set.rosters),
                notes: Vec::new(),
                snapshot_name: "sds-users.csv",
            })
        })
        .await?,
    )
}

/// Is the file at `path` a zip (a set as sent, not a folder or a CSV)?
fn is_zip(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"PK\x03\x04")
}

/// Does `path` look like a Microsoft SDS v1 CSV set (a zip or folder with its files)?
pub fn is_sds_set(path: &Path) -> bool {
    sds::is_sds(&bundle::file_names(path))
}

/// Keep the snapshot as the run's file (typing the users when they are records), create or
/// rename the schools, and run the users through the reconcile engine as `sync:<connection>`.
async fn apply(
    pool: &PgPool,
    clock: &Clock,
    config: &Config,
    run: &db::runs::Run,
    conn: &Connection,
    incoming: Incoming,
) -> Result<Summary> {
    let path = crate::storage::upload_path(&config.data_dir, run.district_id, run.id);
    // The set as sent (a zip the intake stored) moves beside the run's snapshot: its
    // uploaded file, what an approved or crashed run reads again, purged with it. A set the
    // command line named stays where it is.
    if let Some(sent) = run.file_path.as_deref().map(Path::new)
        && sent.parent() == path.parent()
        && is_zip(sent)
    {
        tokio::fs::rename(sent, crate::storage::set_path(&path)).await?;
    }
    // The snapshot first: whatever fails after, it is the run's file, never a stray
    // `<run>.typing.csv` beside it.
    let typed = match incoming.users {
        Users::Typed(typed, written) => {
            tokio::fs::rename(&written, &path).await?;
            *typed
        }
        Users::Records(users) => {
            let (orgs, path) = (incoming.orgs, path.clone());
            tokio::task::spawn_blocking(move || -> Result<provider::Typed> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut typing = provider::Typing::new(&orgs, std::fs::File::create(&path)?);
                typing.push_all(&users);
                // Only the snapshot needs the provider's records (issue 15, memory).
                drop(users);
                Ok(typing.finish()?.0)
            })
            .await??
        }
    };
    let provider::Typed { rows, skipped } = typed;
    tracing::debug!(
        rss_mib = %crate::telemetry::rss_mib(),
        rows = rows.len(),
        "sync users typed, snapshot written"
    );
    // The run names its snapshot before anything else can fail.
    db::syncs::set_run_file(pool, run.district_id, run.id, incoming.snapshot_name, &path).await?;
    let counts = db::schools::upsert_many(pool, run.district_id, &incoming.schools).await?;
    if counts.created + counts.updated > 0 {
        tracing::info!(connection = %conn.id, created = counts.created, renamed = counts.updated, "sync schools");
    }
    let label = format!("sync: {}", conn.name);
    let req = RunRequest {
        district_id: run.district_id,
        run_id: run.id,
        path: path.clone(),
        source: Source::Sync(conn.id),
        dry_run: false,
        approved: run.approved,
        options: Default::default(),
        actor_kind: ActorKind::Sync,
        actor_id: Some(conn.id),
        actor_label: &label,
        max_bytes: config.max_upload_bytes(),
        progress: Default::default(),
        password_key: SecretKey::from_config(config)?.feed_password_key(),
    };
    let mut summary = run::apply_rows(
        pool,
        clock,
        &req,
        run::Rows::Ready(rows),
        Vec::new(),
        if incoming.archive_missing {
            Scope::Source
        } else {
            Scope::Patch
        },
        incoming.rosters,
    )
    .await?;
    let mut notes: Vec<String> = summary.message.take().into_iter().collect();
    if skipped > 0 {
        notes.push(format!(
            "{skipped} guardian, parent or relative records skipped"
        ));
    }
    if !incoming.archive_missing {
        notes.push("delta set: users missing from it were kept".into());
    }
    if counts.created > 0 {
        notes.push(format!("{} schools created", counts.created));
    }
    notes.extend(incoming.notes);
    let message = (!notes.is_empty()).then(|| notes.join("; "));
    db::syncs::set_run_message(pool, run.district_id, run.id, message.as_deref()).await?;
    summary.message = message;
    Ok(summary)
}

/// What a run that went back to the queue for another attempt reports (no final status).
fn retry_summary(run_id: Uuid, message: String) -> Summary {
    Summary::nothing_applied(run_id, RunStatus::Queued, message, false)
}

async fn finish_without_changes(
    pool: &PgPool,
    clock: &Clock,
    district_id: Uuid,
    run_id: Uuid,
    status: RunStatus,
    message: String,
) -> Result<Summary> {
    let finish = db::runs::Finish::ended(status, message.clone());
    db::runs::finish(pool, district_id, run_id, &finish, clock.now()).await?;
    Ok(Summary::nothing_applied(run_id, status, message, false))
}

/// Run a OneRoster CSV set or a Microsoft SDS v1 set (zip or folder) now, for the command
/// line: through the district's CSV connection (one is added when there is none), as a run
/// of kind `sync`.
pub async fn import_set(
    pool: &PgPool,
    clock: &Clock,
    config: &Config,
    district_id: Uuid,
    path: &Path,
    approve: bool,
) -> Result<Summary> {
    let path = path
        .canonicalize()
        .with_context(|| format!("reading {}", path.display()))?;
    let conn = csv_connection(pool, district_id, "command line").await?;
    if conn.paused {
        anyhow::bail!(
            "the connection \"{}\" is paused; resume it on the Syncs page first",
            conn.name
        );
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("oneroster");
    let run_id = Uuid::new_v4();
    // The run's liveness lock (the job queue's protocol) is taken before the run exists and
    // held until it ends, on every path, so no worker takes it as orphaned.
    db::run_lock::with_run_lock(pool, run_id, async {
        db::runs::insert_with_id(
            pool,
            district_id,
            run_id,
            &db::runs::NewRun {
                kind: RunKind::Sync,
                source: &Source::Sync(conn.id).to_db(),
                file_name: Some(name),
                file_sha256: None,
                file_path: path.to_str(),
                dry_run: false,
                approved: approve,
                options: serde_json::json!({}),
                submitted_kind: ActorKind::Cli,
                submitted_by: "command line",
                status: RunStatus::InProgress,
            },
        )
        .await?;
        db::syncs::set_last_run(pool, district_id, conn.id, run_id).await?;
        db::runs::mark_started(pool, district_id, run_id, clock.now()).await?;
        let run = db::runs::get(pool, district_id, run_id)
            .await?
            .context("run vanished")?;
        execute_run(pool, clock, config, &run).await
    })
    .await
}

/// The district's OneRoster CSV connection; one is added when there is none.
pub async fn csv_connection(
    pool: &PgPool,
    district_id: Uuid,
    created_by: &str,
) -> Result<Connection> {
    if let Some(c) = db::syncs::first_csv(pool, district_id).await? {
        return Ok(c);
    }
    let id = Uuid::new_v4();
    db::syncs::insert(
        pool,
        district_id,
        &db::syncs::NewConnection {
            id,
            kind: Kind::OneRosterCsv.as_str(),
            name: "OneRoster CSV",
            base_url: None,
            token_url: None,
            client_id: None,
            secret_sealed: None,
            interval_minutes: 360,
            next_run_at: None,
            created_by,
        },
    )
    .await?;
    db::syncs::get(pool, district_id, id)
        .await?
        .context("connection vanished")
}

/// Does `path` look like a OneRoster CSV set (a zip, or a folder with its files)?
pub fn is_oneroster_set(path: &Path) -> bool {
    bundle::looks_like_set(path)
}
