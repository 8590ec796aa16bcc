//! A run's undo on its page (SPEC §4 "Undo": "Undo this run" queues a preview, the preview's
//! "Apply undo" queues the real undo) and its changes, old → new (on the page, and all of
//! them as a CSV download).

use super::AppState;
use super::error::{AppError, AppResult};
use super::session::{DistrictAdmin, set_flash};
use crate::db;
use crate::db::runs::{Run, RunRow};
use crate::domain::{ActorKind, RunStatus, Source};
use crate::reconcile::report::neutralise;
use crate::reconcile::undo_run::{self, Asker};
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct UndoForm {
    /// Set by the preview's "Apply undo": queue the real undo, not a preview.
    apply: Option<String>,
}

/// "Undo this run" (a preview) and "Apply undo" (the real run), both for run `id`.
pub async fn undo(
    State(state): State<AppState>,
    session: Session,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
    Form(form): Form<UndoForm>,
) -> AppResult<Response> {
    db::runs::get(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let apply = form.apply.is_some_and(|v| v == "true" || v == "on");
    let actor = scope.actor();
    let asker = Asker {
        kind: ActorKind::User,
        actor: &actor,
    };
    let undo_id = undo_run::request(&state.pool, scope.district_id, id, !apply, false, &asker)
        .await?
        .map_err(|why| AppError::Conflict(format!("This run cannot be undone: {why}.")))?;
    state.queue.notify.notify_waiters();
    let msg = if apply {
        "Undo queued: it applies against the current users, through the same guard as any run."
    } else {
        "Undo preview queued: it shows what the undo would do, and changes nothing."
    };
    set_flash(&session, "success", msg).await;
    Ok(Redirect::to(&format!("/uploads/{undo_id}")).into_response())
}

/// What the run page shows of undos.
#[derive(Default)]
pub struct RunUndo {
    /// The run this one undoes (an undo run).
    pub undoes: Option<Uuid>,
    /// An applied undo of this run.
    pub undone_by: Option<Uuid>,
    /// An undo of this run on its way (queued, in progress, in review).
    pub pending: Option<Uuid>,
    /// "Undo this run" is offered.
    pub can_undo: bool,
    /// A finished preview whose run can still be undone: "Apply undo" is offered.
    pub can_apply: bool,
    /// Why a preview cannot be applied (any more).
    pub apply_refusal: Option<String>,
    /// Users an undo left (changed again since), the first of them, and how many.
    pub left: Vec<db::undo::LeftUser>,
    pub left_total: i64,
    /// Classes and enrollments an undo left (changed again since), the first 100.
    pub left_rosters: Vec<db::undo::LeftRoster>,
}

impl RunUndo {
    pub async fn of(state: &AppState, run: &Run) -> AppResult<RunUndo> {
        let mut conn = state.pool.acquire().await?;
        let links = db::undo::links(&mut conn, run.district_id, run.id).await?;
        let mut out = RunUndo {
            undoes: links.undoes,
            undone_by: links.undone_by.iter().find(|u| u.applied()).map(|u| u.id),
            pending: links
                .undone_by
                .iter()
                .find(|u| u.counts() && !u.applied())
                .map(|u| u.id),
            can_undo: undo_run::refusal(run, &links).is_none(),
            ..RunUndo::default()
        };
        let Some(target) = links.undoes else {
            return Ok(out);
        };
        let finished = !matches!(
            run.status,
            RunStatus::Queued | RunStatus::InProgress | RunStatus::Failed | RunStatus::Cancelled
        );
        if run.dry_run && finished {
            let refusal = match db::runs::get(&mut *conn, run.district_id, target).await? {
                Some(t) => {
                    let target_links = db::undo::links(&mut conn, run.district_id, target).await?;
                    undo_run::refusal(&t, &target_links)
                }
                None => Some("the run is gone".into()),
            };
            out.can_apply = refusal.is_none();
            out.apply_refusal = refusal;
        }
        out.left = db::undo::left(&mut *conn, run.district_id, run.id, target, 100).await?;
        out.left_total = db::undo::left_count(&mut *conn, run.district_id, run.id).await?;
        out.left_rosters = db::undo::left_rosters(&mut *conn, run.district_id, run.id, 100).await?;
        Ok(out)
    }
}

/// One changed field of a user, as shown: old → new.
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// Old → new of the sample rows of the run page, by line (empty for a run not applied: it
/// wrote no audit entries, and field names are all it has).
#[derive(Default)]
pub struct RowChanges(HashMap<i64, Vec<FieldChange>>);

impl RowChanges {
    pub async fn of(
        state: &AppState,
        run: &Run,
        applied: bool,
        rows: &[&RunRow],
    ) -> AppResult<RowChanges> {
        let users: Vec<Uuid> = rows.iter().filter_map(|r| r.user_id).collect();
        if !applied || users.is_empty() {
            return Ok(RowChanges::default());
        }
        let audit =
            db::run_changes::for_users(&state.pool, run.district_id, run.id, &users).await?;
        let mut out = HashMap::new();
        for r in rows {
            let Some((before, after)) = r.user_id.and_then(|u| audit.get(&u)) else {
                continue;
            };
            out.insert(r.line, field_changes(&r.changed, before, after));
        }
        Ok(RowChanges(out))
    }

    pub fn of_line(&self, line: &i64) -> &[FieldChange] {
        self.0.get(line).map_or(&[], Vec::as_slice)
    }
}

/// Each field of `changed` with its value before and after (never a password).
fn field_changes(
    changed: &[String],
    before: &Option<Value>,
    after: &Option<Value>,
) -> Vec<FieldChange> {
    let get = |v: &Option<Value>, f: &str| v.as_ref().and_then(|v| v.get(f)).cloned();
    changed
        .iter()
        .filter(|f| !f.contains("password"))
        .map(|f| FieldChange {
            field: f.clone(),
            old: shown(f, get(before, f)),
            new: shown(f, get(after, f)),
        })
        .collect()
}

/// A value of an audit entry as a person reads it.
fn shown(field: &str, value: Option<Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if field == "source" => Source::from_db(&s).to_string(),
        Some(Value::String(s)) => s,
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(";"),
        Some(other) => other.to_string(),
    }
}

/// Every changed field of a run's updated and restored rows, streamed as CSV: `line,
/// user_guid, username, field, old, new` (old and new empty for a run not applied), cells
/// neutralised against formulas like every download.
pub async fn changes_csv(
    State(state): State<AppState>,
    DistrictAdmin(scope): DistrictAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let run = db::runs::get(&state.pool, scope.district_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let applied = run.applied();
    let header = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(
            b"line,user_guid,username,field,old,new\r\n",
        ))
    });
    let rows =
        db::run_changes::stream(state.pool.clone(), scope.district_id, id, applied).map(|row| {
            let row = row.map_err(std::io::Error::other)?;
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            let guid = row.user_id.map(|u| u.to_string()).unwrap_or_default();
            let username = row.username.clone().unwrap_or_default();
            for c in field_changes(&row.changed, &row.before, &row.after) {
                let cells = [
                    row.line.to_string(),
                    guid.clone(),
                    username.clone(),
                    c.field,
                    c.old,
                    c.new,
                ];
                w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
                    .map_err(std::io::Error::other)?;
            }
            Ok(Bytes::from(w.into_inner().map_err(std::io::Error::other)?))
        });
    let base: String = run
        .file_name
        .as_deref()
        .unwrap_or("run")
        .trim_end_matches(".csv")
        .trim_end_matches(".CSV")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut resp = Body::from_stream(header.chain(rows)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{base}-changes.csv\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_and_new_values_read_as_a_person_reads_them() {
        let before = Some(json!({ "grade": "9", "school_external_id": ["HS", "MS"],
                                  "source": "manual", "email": null, "password": "x" }));
        let after = Some(json!({ "grade": "10", "school_external_id": ["HS"],
                                 "source": "file:students.csv", "email": "a@d.org", "password": "y" }));
        let changed: Vec<String> = ["grade", "school_external_id", "email", "source", "password"]
            .map(String::from)
            .into();
        let c = field_changes(&changed, &before, &after);
        let shown: Vec<(&str, &str, &str)> = c
            .iter()
            .map(|c| (c.field.as_str(), c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("grade", "9", "10"),
                ("school_external_id", "HS;MS", "HS"),
                ("email", "", "a@d.org"),
                ("source", "manual", "file students.csv"),
            ],
            "never a password"
        );
    }
}
