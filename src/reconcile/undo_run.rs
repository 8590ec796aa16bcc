//! Undo runs carried out: which runs can be undone, asking for an undo (a run of kind
//! `undo`, queued), and running it through the same path as any run (`run::apply_rows`:
//! the district's lock, one transaction, the guard, row results, counts and history).

use super::run::{self, Progress, Rows, RunOptions, RunRequest, Summary};
use super::undo::UndoRows;
use crate::clock::Clock;
use crate::db;
use crate::db::audit::{Actor, Entry};
use crate::domain::{ActorKind, RunKind, RunStatus, Source};
use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Why a run cannot be undone, or `None` when it can. `links` are the run's undo links.
pub fn refusal(run: &db::runs::Run, links: &db::undo::UndoLinks) -> Option<String> {
    if run.dry_run {
        return Some("a dry run changed nothing: there is nothing to undo".into());
    }
    if !run.status.is_applied() {
        return Some(format!(
            "only a completed run can be undone (this one is {})",
            run.status.as_str().replace('_', " ")
        ));
    }
    if links.files_purged {
        return Some(
            "this run's files were removed after the retention period: it can no longer be undone"
                .into(),
        );
    }
    if let Some(u) = links.undone_by.iter().find(|u| u.counts()) {
        return Some(if u.applied() {
            format!("this run was already undone (run {})", u.id)
        } else {
            format!("an undo of this run is already on its way (run {})", u.id)
        });
    }
    None
}

/// Who asks for an undo.
pub struct Asker<'a> {
    /// `User` (the run page) or `Cli`.
    pub kind: ActorKind,
    pub actor: &'a Actor,
}

/// Ask for the undo of `target`: a run of kind `undo`, queued (a preview when `dry_run`).
/// `Ok(Err(reason))` when the run cannot be undone.
pub async fn request(
    pool: &PgPool,
    district_id: Uuid,
    target: Uuid,
    dry_run: bool,
    approved: bool,
    asker: &Asker<'_>,
) -> Result<Result<Uuid, String>> {
    let mut tx = pool.begin().await?;
    db::undo::lock_run(&mut tx, district_id, target).await?;
    let Some(run) = db::runs::get(&mut *tx, district_id, target).await? else {
        return Ok(Err("no such run in this district".into()));
    };
    let links = db::undo::links(&mut tx, district_id, target).await?;
    if let Some(why) = refusal(&run, &links) {
        return Ok(Err(why));
    }
    // The undo covers what the undone run covered (its scope decides the guard's users).
    let undone = RunOptions::from_stored(&run.options)?;
    let options = RunOptions {
        scope: undone.scope,
        ..RunOptions::default()
    };
    let id = db::runs::insert(
        &mut *tx,
        district_id,
        &db::runs::NewRun {
            kind: RunKind::Undo,
            source: &run.source,
            file_name: None,
            file_sha256: None,
            file_path: None,
            dry_run,
            approved,
            options: serde_json::to_value(&options)?,
            submitted_kind: asker.kind,
            submitted_by: &asker.actor.label,
            status: RunStatus::Queued,
        },
    )
    .await?;
    db::undo::set_undoes(&mut *tx, district_id, id, target).await?;
    db::audit::record(
        &mut *tx,
        district_id,
        asker.actor,
        Entry {
            action: if dry_run {
                "run.undo_preview"
            } else {
                "run.undo"
            },
            entity_kind: "run",
            entity_id: Some(target),
            run_id: Some(id),
            before: None,
            after: Some(serde_json::json!({ "undo_run": id, "dry_run": dry_run })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(id))
}

/// Carry out an undo run (already marked started) and record its outcome on it; an error
/// marks it Failed and changes nothing else (one transaction).
pub async fn execute(pool: &PgPool, clock: &Clock, run: &db::runs::Run) -> Result<Summary> {
    let links = db::undo::links(&mut *pool.acquire().await?, run.district_id, run.id).await?;
    let target = links.undoes.context("an undo run names no run")?;
    let options = RunOptions::from_stored(&run.options)?;
    let req = RunRequest {
        district_id: run.district_id,
        run_id: run.id,
        path: PathBuf::new(),
        source: Source::from_db(&run.source),
        dry_run: run.dry_run,
        approved: run.approved,
        options: options.clone(),
        actor_kind: run.submitted_kind,
        actor_id: None,
        actor_label: &run.submitted_by,
        max_bytes: 0,
        progress: Arc::new(Progress::default()),
        password_key: crate::crypto::FeedPasswordKey::unused(),
    };
    let rows = Rows::Undo(UndoRows::new(target));
    let scope = options.scope.unwrap_or_default();
    match run::apply_rows(pool, clock, &req, rows, Vec::new(), scope, None).await {
        Ok(summary) => Ok(summary),
        Err(e) => {
            tracing::error!(run = %run.id, error = format!("{e:#}"), "undo failed");
            let finish = db::runs::Finish::ended(
                RunStatus::Failed,
                "the undo stopped on an internal error and changed nothing; it has been logged"
                    .into(),
            );
            db::runs::finish(pool, run.district_id, run.id, &finish, clock.now()).await?;
            Err(e)
        }
    }
}

/// What `rollcall undo` prints: the run's summary, the run it undoes, and the users, classes
/// and enrollments it left because they changed again since.
#[derive(Debug, Clone, Serialize)]
pub struct UndoSummary {
    #[serde(flatten)]
    pub summary: Summary,
    pub undoes: Uuid,
    pub left: Vec<db::undo::LeftUser>,
    /// The classes and enrollments it left because they changed again since.
    pub left_rosters: Vec<db::undo::LeftRoster>,
}

/// Undo a run from the command line: asked for, then carried out at once (not queued for a
/// server), holding the run's liveness lock like `rollcall import`.
pub async fn undo_now(
    pool: &PgPool,
    clock: &Clock,
    district_id: Uuid,
    target: Uuid,
    dry_run: bool,
    approve: bool,
) -> Result<UndoSummary> {
    let asker = Asker {
        kind: ActorKind::Cli,
        actor: &Actor::cli(),
    };
    let id = match request(pool, district_id, target, dry_run, approve, &asker).await? {
        Ok(id) => id,
        Err(why) => anyhow::bail!("run {target} cannot be undone: {why}"),
    };
    // Held while it runs, so no server takes this in-progress run for an orphan.
    let summary = db::run_lock::with_run_lock(pool, id, async {
        db::runs::mark_started(pool, district_id, id, clock.now()).await?;
        let run = db::runs::get(pool, district_id, id)
            .await?
            .context("the undo run vanished")?;
        execute(pool, clock, &run).await
    })
    .await?;
    let left = db::undo::left(pool, district_id, id, target, i64::MAX).await?;
    let left_rosters = db::undo::left_rosters(pool, district_id, id, i64::MAX).await?;
    Ok(UndoSummary {
        summary,
        undoes: target,
        left,
        left_rosters,
    })
}
