//! One run of a user CSV through the pipeline: read → map → validate → plan → apply, in one
//! transaction, serialised per district. Used by the command line and (later) the job queue.

use super::apply::{self, Part, Writes};
use super::plan::{self, RowFail, Rules, Secrets};
use crate::auth;
use crate::clock::Clock;
use crate::db;
use crate::db::reconcile::RunActor;
use crate::domain::{Field, IncomingUser, Source};
use crate::feed::headers::{self, Mapping, MappingError, SavedMapping};
use crate::feed::read::{self, ReadOptions};
use crate::feed::validate::{RowError, Validator};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// How far a run has got, shared with whoever shows it (the job queue writes it to the run
/// every half second).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
    /// 0 reading, 1 planning, 2 applying.
    pub phase: AtomicU64,
}

impl Progress {
    pub fn phase_name(&self) -> &'static str {
        match self.phase.load(Ordering::Relaxed) {
            0 => "reading",
            1 => "planning",
            _ => "applying",
        }
    }
}

fn chunks(writes: &Arc<Writes>, part: Part) -> db::reconcile::Chunks {
    Box::new(writes.chunks(part))
}

/// Lines in a file (a quick upper bound on its rows, for the progress bar).
fn count_lines(path: &Path) -> u64 {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    while let Ok(read) = f.read(&mut buf) {
        if read == 0 {
            break;
        }
        n += buf[..read].iter().filter(|b| **b == b'\n').count() as u64;
    }
    n.saturating_sub(1).max(1)
}

/// How a run was asked for (stored as the run's `options`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunOptions {
    /// `--map COLUMN=FIELD` (or ignore) for this run only.
    #[serde(default)]
    pub overrides: Vec<(String, Option<Field>)>,
    /// `--set FIELD=VALUE`: a fixed value for a field the file lacks.
    #[serde(default)]
    pub fixed: Vec<(Field, String)>,
    /// Save the resolved mapping for the district (the mapper page does this).
    #[serde(default)]
    pub save_mapping: bool,
}

/// What a run came to (also the JSON summary the CLI prints).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub run_id: Uuid,
    pub status: String,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub restored: usize,
    pub archived: usize,
    pub errors: usize,
    pub total_rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub ignored_columns: Vec<String>,
    pub dry_run: bool,
}

struct RandomSecrets;

impl Secrets for RandomSecrets {
    fn temp_password(&mut self) -> String {
        auth::generate_temporary()
    }
    /// Time-ordered (UUIDv7): a run's new users land at the right edge of every index keyed
    /// by user id (`users`, `user_schools`, `audit_log`), not at a million random places.
    fn new_guid(&mut self) -> Uuid {
        Uuid::now_v7()
    }
}

/// A file that cannot be used at all (nothing applied).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0}")]
    Read(#[from] read::FileError),
    #[error("{0}")]
    Mapping(#[from] MappingError),
}

/// The rows of a file, read and validated, with whatever identifiers failed rows still carry.
pub struct Prepared {
    pub headers: Vec<String>,
    pub mapping: Mapping,
    pub rows: Vec<Result<IncomingUser, RowFail>>,
}

fn read_headers(path: &Path, opts: ReadOptions) -> Result<Result<Vec<String>, FileProblem>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(read::open(file, &opts)
        .map(|r| r.headers().to_vec())
        .map_err(FileProblem::from))
}

fn raw_identifiers(
    mapping: &Mapping,
    fields: &[String],
) -> (Option<Uuid>, Option<String>, Option<String>) {
    let cell = |f: Field| {
        mapping
            .column_of(f)
            .and_then(|i| fields.get(i))
            .map(|c| c.trim().trim_start_matches('\'').to_string())
            .filter(|c| !c.is_empty())
    };
    (
        cell(Field::UserGuid).and_then(|g| Uuid::parse_str(&g).ok()),
        cell(Field::CustomId),
        cell(Field::Email).map(|e| e.to_lowercase()),
    )
}

/// Read and validate a whole file (blocking; call from `spawn_blocking`).
pub fn prepare(
    path: &Path,
    opts: ReadOptions,
    saved: Option<&SavedMapping>,
    options: &RunOptions,
    schools: &HashSet<String>,
    progress: &Progress,
) -> Result<Result<Prepared, FileProblem>> {
    progress.total.store(count_lines(path), Ordering::Relaxed);
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = match read::open(file, &opts) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.into())),
    };
    let headers = reader.headers().to_vec();
    let mapping = match headers::resolve(&headers, saved, &options.overrides, &options.fixed) {
        Ok(m) => m,
        Err(e) => return Ok(Err(e.into())),
    };
    let validator = Validator::new(&headers, &mapping, schools);
    let mut rows: Vec<Result<IncomingUser, RowError>> = Vec::new();
    let mut ids = Vec::new();
    for item in reader {
        progress.done.fetch_add(1, Ordering::Relaxed);
        match item {
            Err(file_error) => return Ok(Err(file_error.into())),
            Ok(Err(issue)) => {
                ids.push((None, None, None));
                rows.push(Err(RowError::from(issue)));
            }
            Ok(Ok(rec)) => {
                ids.push(raw_identifiers(&mapping, &rec.fields));
                rows.push(validator.validate(&rec));
            }
        }
    }
    validator.mark_duplicates(&mut rows);
    let rows = rows
        .into_iter()
        .zip(ids)
        .map(|(row, (user_guid, custom_id, email))| {
            row.map_err(|e| RowFail {
                line: e.line,
                message: e.to_string(),
                user_guid,
                custom_id,
                email,
            })
        })
        .collect();
    Ok(Ok(Prepared {
        headers,
        mapping,
        rows,
    }))
}

/// Everything a run needs to know.
pub struct RunRequest<'a> {
    pub district_id: Uuid,
    pub run_id: Uuid,
    pub path: PathBuf,
    pub source: Source,
    pub dry_run: bool,
    pub approved: bool,
    pub options: RunOptions,
    pub actor_kind: &'a str,
    pub actor_id: Option<Uuid>,
    pub actor_label: &'a str,
    pub max_bytes: u64,
    pub progress: Arc<Progress>,
}

/// Run a user CSV (its run already marked started) and record the outcome on its run. A
/// file error marks the run Failed and changes nothing else; a database error leaves
/// everything as before (one transaction).
pub async fn execute(pool: &PgPool, clock: &Clock, req: &RunRequest<'_>) -> Result<Summary> {
    match execute_inner(pool, clock, req).await {
        Ok(summary) => Ok(summary),
        Err(e) => {
            let finish = db::runs::Finish {
                status: "failed".into(),
                message: Some(
                    "the run stopped on an internal error and changed nothing; it has been logged"
                        .into(),
                ),
                ..Default::default()
            };
            tracing::error!(run = %req.run_id, error = format!("{e:#}"), "run failed");
            db::runs::finish(pool, req.district_id, req.run_id, &finish, clock.now()).await?;
            Err(e)
        }
    }
}

async fn execute_inner(pool: &PgPool, clock: &Clock, req: &RunRequest<'_>) -> Result<Summary> {
    let opts = ReadOptions {
        max_bytes: req.max_bytes,
    };
    let path = req.path.clone();
    let headers = tokio::task::spawn_blocking(move || read_headers(&path, opts)).await??;
    let saved = match &headers {
        Ok(h) => db::runs::saved_mapping(pool, req.district_id, &headers::signature(h))
            .await?
            .and_then(|v| serde_json::from_value::<SavedMapping>(v).ok()),
        Err(_) => None,
    };
    let schools: HashSet<String> = db::schools::external_ids(pool, req.district_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let path = req.path.clone();
    let options = req.options.clone();
    let progress = req.progress.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(&path, opts, saved.as_ref(), &options, &schools, &progress)
    })
    .await??;
    let prepared = match prepared {
        Ok(p) => p,
        Err(problem) => return fail(pool, clock, req, problem.to_string()).await,
    };
    if req.options.save_mapping {
        let saved = prepared.mapping.to_saved(&prepared.headers);
        db::runs::save_mapping(
            pool,
            req.district_id,
            &headers::signature(&prepared.headers),
            &serde_json::to_value(&saved)?,
            req.actor_label,
        )
        .await?;
    }
    let ignored = prepared.mapping.ignored_columns(&prepared.headers);
    apply_rows(pool, clock, req, prepared.rows, ignored, true).await
}

async fn fail(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    message: String,
) -> Result<Summary> {
    let finish = db::runs::Finish {
        status: "failed".into(),
        message: Some(message.clone()),
        ..Default::default()
    };
    db::runs::finish(pool, req.district_id, req.run_id, &finish, clock.now()).await?;
    Ok(Summary {
        run_id: req.run_id,
        status: "failed".into(),
        created: 0,
        updated: 0,
        unchanged: 0,
        restored: 0,
        archived: 0,
        errors: 0,
        total_rows: 0,
        message: Some(message),
        ignored_columns: Vec::new(),
        dry_run: req.dry_run,
    })
}

/// Plan typed rows against the district and apply them (shared by files and syncs).
pub async fn apply_rows(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    rows: Vec<Result<IncomingUser, RowFail>>,
    ignored_columns: Vec<String>,
    archive_missing: bool,
) -> Result<Summary> {
    let district = db::districts::by_id(pool, req.district_id)
        .await?
        .context("district vanished")?;
    let rules = Rules {
        archive_pct: district.guard_archive_pct,
        archive_min: district.guard_archive_min.max(0) as usize,
        update_pct: district.guard_update_pct,
        archive_missing,
        approved: req.approved,
    };
    let total_rows = rows.len();
    req.progress
        .total
        .store(total_rows as u64, Ordering::Relaxed);
    req.progress
        .done
        .store(total_rows as u64, Ordering::Relaxed);
    req.progress.phase.store(1, Ordering::Relaxed);
    let mut tx = pool.begin().await?;
    db::reconcile::lock_district(&mut tx, req.district_id).await?;
    let t0 = std::time::Instant::now();
    let current = db::reconcile::load_current(&mut tx, req.district_id).await?;
    let t_load = t0.elapsed();
    let source = req.source.clone();
    let apply_now = !req.dry_run;
    let (district_id, run_id, now) = (req.district_id, req.run_id, clock.now());
    let actor = apply::Actor {
        kind: req.actor_kind.to_string(),
        id: req.actor_id,
        label: req.actor_label.to_string(),
    };
    let schools: std::collections::HashMap<String, Uuid> =
        db::schools::external_ids(&mut *tx, req.district_id)
            .await?
            .into_iter()
            .collect();
    let t1 = std::time::Instant::now();
    let writes = tokio::task::spawn_blocking(move || {
        let plan = plan::plan(&current, rows, &source, &rules, &mut RandomSecrets);
        let applied = apply_now && plan.review.is_none();
        apply::Writes::new(
            plan,
            current,
            applied,
            district_id,
            run_id,
            now,
            actor,
            schools,
        )
    })
    .await?;
    let writes = Arc::new(writes);
    let plan = &writes.plan;

    let c = plan.counts;
    let status = if let Some(review) = &plan.review {
        ("needs_review", Some(review.reason.clone()))
    } else if c.errors > 0 {
        ("completed_with_errors", None)
    } else {
        ("completed", None)
    };
    req.progress.phase.store(2, Ordering::Relaxed);
    if writes.applied {
        let actor = RunActor {
            kind: req.actor_kind,
            id: req.actor_id,
            label: req.actor_label,
            run_id: req.run_id,
        };
        tracing::debug!(run = %req.run_id, load = ?t_load, plan = ?t1.elapsed(), "planned");
        let changes = (writes.count(Part::Changes) > 0).then(|| chunks(&writes, Part::Changes));
        db::reconcile::write_plan(
            &mut tx,
            req.district_id,
            db::reconcile::PlanWrites {
                new_users: chunks(&writes, Part::NewUsers),
                new_memberships: chunks(&writes, Part::NewMemberships),
                new_audit: chunks(&writes, Part::NewAudit),
                changes,
            },
            &plan.archive,
            &actor,
            now,
        )
        .await?;
    }
    let t2 = std::time::Instant::now();
    db::runs::store_results(
        &mut tx,
        req.district_id,
        req.run_id,
        chunks(&writes, Part::Results),
        &plan.archive,
    )
    .await?;
    let finish = db::runs::Finish {
        status: status.0.into(),
        total_rows: total_rows as i32,
        created: c.created as i32,
        updated: c.updated as i32,
        unchanged: c.unchanged as i32,
        restored: c.restored as i32,
        archived: c.archived as i32,
        errors: c.errors as i32,
        message: status.1.clone(),
        ignored_columns: ignored_columns.clone(),
    };
    db::runs::finish(&mut *tx, req.district_id, req.run_id, &finish, clock.now()).await?;
    tx.commit().await?;
    tracing::debug!(run = %req.run_id, load = ?t_load, plan_and_write = ?t1.elapsed(), results_and_commit = ?t2.elapsed(), "applied");
    tracing::info!(
        run = %req.run_id, status = status.0, created = c.created, updated = c.updated, unchanged = c.unchanged,
        restored = c.restored, archived = c.archived, errors = c.errors, dry_run = req.dry_run, "run finished"
    );
    Ok(Summary {
        run_id: req.run_id,
        status: status.0.into(),
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
        restored: c.restored,
        archived: c.archived,
        errors: c.errors,
        total_rows,
        message: status.1,
        ignored_columns,
        dry_run: req.dry_run,
    })
}
