//! Alerts (SPEC §5): events (raised by the runs trigger, the staleness check, the Settings
//! page) become deliveries by the district's rules (fan-out), and deliveries are sent by
//! email and webhook with retries. Everything is in PostgreSQL: a run only writes its event
//! row, in its own transaction, and never waits for a mail server.
//!
//! One-pass functions ([`fan_out_once`], [`send::send_due_once`], [`check_stale_once`]) do
//! the work; [`spawn`] runs them in the background of `rollcall serve`. Tests call the
//! passes directly.

pub mod message;
pub mod send;

pub use send::send_due_once;

use crate::clock::Clock;
use crate::config::Config;
use crate::db;
use crate::domain::alerts::{Destinations, Rules, targets};
use crate::domain::health::{EventKind, humanize, stale};
use anyhow::Result;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 100;

/// Turn every event not yet fanned out into its deliveries, by its district's rules and
/// destinations as they are now; each event is marked fanned out in the same transaction as
/// its deliveries, so a restart never fans one out twice. Returns the events handled.
pub async fn fan_out_once(pool: &PgPool, now: OffsetDateTime) -> Result<usize> {
    let mut handled = 0;
    loop {
        let mut tx = pool.begin().await?;
        let events = db::alert_delivery::lock_unfanned(&mut tx, FAN_OUT_BATCH).await?;
        if events.is_empty() {
            tx.commit().await?;
            return Ok(handled);
        }
        let mut districts: HashMap<Uuid, (Rules, Destinations)> = HashMap::new();
        for e in &events {
            if let Entry::Vacant(slot) = districts.entry(e.district_id) {
                slot.insert(destinations(&mut tx, e.district_id).await?);
            }
            let (rules, to) = &districts[&e.district_id];
            if let Some(kind) = EventKind::parse(&e.kind) {
                for t in targets(rules, to, kind, &e.detail) {
                    db::alert_delivery::insert_delivery(
                        &mut *tx,
                        e.district_id,
                        e.id,
                        t.channel.as_str(),
                        &t.target,
                        now,
                    )
                    .await?;
                }
            }
            db::alert_delivery::mark_fanned_out(&mut *tx, e.district_id, e.id, now).await?;
        }
        handled += events.len();
        tx.commit().await?;
    }
}

async fn destinations(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    district_id: Uuid,
) -> Result<(Rules, Destinations)> {
    let settings = db::alert_delivery::settings(&mut **tx, district_id).await?;
    let recipients = db::alert_delivery::recipients(&mut **tx, district_id).await?;
    let webhook = settings
        .webhook_url
        .filter(|u| settings.webhook_enabled && !u.is_empty())
        .filter(|_| settings.webhook_secret_sealed.is_some());
    Ok((
        settings.rules,
        Destinations {
            recipients,
            webhook,
        },
    ))
}

/// Raise `source_stale` for every source, in every district, that usually runs and has been
/// quiet for longer than the district's "stale after" at `now` (paused sources and deleted
/// connections left out). One quiet spell raises one event: the key holds the time of the
/// source's last run. Returns the events newly raised.
pub async fn check_stale_once(pool: &PgPool, now: OffsetDateTime) -> Result<usize> {
    let mut raised = 0;
    for (district_id, hours) in db::alert_delivery::districts_for_stale_check(pool).await? {
        let paused: Vec<String> = db::health::paused_sources(pool, district_id)
            .await?
            .into_iter()
            .map(|p| p.source)
            .collect();
        let names = db::syncs::names(pool, district_id).await?;
        for s in db::health::source_runs(pool, district_id).await? {
            if paused.contains(&s.source) {
                continue;
            }
            if let crate::domain::Source::Sync(id) = crate::domain::Source::from_db(&s.source)
                && !names.contains_key(&id)
            {
                continue; // a deleted connection never runs again
            }
            let Some(st) = stale(&s.received, now, time::Duration::hours(hours as i64)) else {
                continue;
            };
            let last = st
                .last_run
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let key = format!("source_stale:{}:{last}", s.source);
            let event = db::alerts::NewEvent {
                kind: EventKind::SourceStale,
                dedupe_key: &key,
                run_id: None,
                source: Some(&s.source),
                at: now,
                detail: json!({
                    "source_name": crate::reconcile::report::source_name(&s.source, &names),
                    "last_run": last,
                    "quiet_for_secs": st.quiet_for.whole_seconds(),
                    "usual_gap_secs": st.usual_gap.whole_seconds(),
                    "quiet_for": humanize(st.quiet_for),
                    "usual_gap": humanize(st.usual_gap),
                    "stale_after_hours": hours,
                }),
            };
            if db::alerts::raise(pool, district_id, &event).await? {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

/// How often the background loop fans out and sends.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(15);
/// How often it checks for stale sources.
pub const STALE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The alert loop of `rollcall serve`: every [`TICK`] fan out and send, every
/// [`STALE_EVERY`] check for stale sources. Errors are logged and the loop goes on.
pub fn spawn(pool: PgPool, config: Arc<Config>, clock: Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_stale: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if last_stale.is_none_or(|t| t.elapsed() >= STALE_EVERY) {
                last_stale = Some(tokio::time::Instant::now());
                if let Err(e) = check_stale_once(&pool, clock.now()).await {
                    tracing::warn!(error = %e, "alerts: the staleness check failed");
                }
            }
            if let Err(e) = fan_out_once(&pool, clock.now()).await {
                tracing::warn!(error = %e, "alerts: fanning out events failed");
                continue;
            }
            if let Err(e) = send_due_once(&pool, &config, clock.now()).await {
                tracing::warn!(error = %e, "alerts: sending failed");
            }
        }
    });
}
