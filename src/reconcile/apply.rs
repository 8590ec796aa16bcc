//! Turn a plan into the rows the database takes by `COPY`. The SQL itself lives in
//! `db::reconcile`; this module only shapes rows, and does it lazily, a chunk at a time, so a
//! million-row plan never exists twice in memory as text and the encoding of one chunk
//! overlaps PostgreSQL's work on the previous one.
//!
//! Created users go straight into their tables (`users`, `user_schools`, `audit_log`): the
//! plan already holds every column. Updated and restored users go through a staging table,
//! because their writes are differences against what is stored.

use super::plan::{NewUser, Outcome, Plan, RowPlan};
use super::report::MASTER_HEADER;
use crate::auth;
use crate::domain::{CurrentUser, CurrentUsers};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// Who wrote a run's changes, for the audit log (the one `Actor`, from `db::audit`).
pub use crate::db::audit::Actor;

/// The tables a plan is written to, each encoded as CSV for its `COPY` statement (the column
/// lists are in `db::reconcile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `users` rows of created users.
    NewUsers,
    /// `user_schools` rows of created users.
    NewMemberships,
    /// `audit_log` rows of created users (`after` = every field as created).
    NewAudit,
    /// `stage_users` rows of updated and restored users, with their audit `before`/`after`.
    Changes,
    /// `run_rows`: one per incoming row in file order, save the plainly unchanged ones
    /// ([`Writes::unchanged`] keeps those compactly).
    Results,
}

/// A plan with everything needed to encode it. Shared (`Arc`) with the threads that encode
/// while the database writes.
pub struct Writes {
    pub plan: Plan,
    /// Write the users (false for a dry run or a run waiting for review: then only the row
    /// results are written, without temporary passwords).
    pub applied: bool,
    district: String,
    run: String,
    run_id: Uuid,
    now: String,
    actor: Actor,
    /// School external ID → school id.
    schools: HashMap<String, Uuid>,
    /// Current state of the users this plan changes (for the audit's `before`).
    before: Before,
    /// argon2id hashes of passwords the feed gave (for created users, and for existing users
    /// whose feed password changed), by line (slow: computed up front, in parallel).
    given: HashMap<u64, String>,
    /// Plan rows encoded so far, over every part (the progress bar's "applying" count).
    encoded: Option<Arc<AtomicU64>>,
}

/// The users a plan changes as they are before the run (the audit's `before`), read from the
/// district's users so that those can be let go before the plan is written. Packed as the
/// run holds the district's users (~130 bytes a user, where a `CurrentUser` and its strings
/// took ~400: 66,000 changed users of a million held ~26 MB; issue 19).
#[derive(Debug, Default)]
pub struct Before {
    users: CurrentUsers,
    at: HashMap<Uuid, u32>,
}

impl Before {
    pub fn of(plan: &Plan, current: &CurrentUsers) -> Before {
        let mut before = Before::default();
        before.add(&plan.rows, current);
        before.users.shrink_to_fit();
        before
    }

    /// The users `rows` change, as `current` holds them (a plan made window by window adds
    /// each window's rows with the window's users).
    pub fn add(&mut self, rows: &[RowPlan], current: &CurrentUsers) {
        let changed: HashSet<Uuid> = rows
            .iter()
            .filter(|r| writes_change(r))
            .filter_map(|r| r.write.as_ref().map(|w| w.user_guid))
            .collect();
        if changed.is_empty() {
            return;
        }
        for i in (0..current.len()).filter(|&i| changed.contains(&current.guid(i))) {
            let at = u32::try_from(self.users.len()).expect("fewer users than u32::MAX");
            if let std::collections::hash_map::Entry::Vacant(e) = self.at.entry(current.guid(i)) {
                e.insert(at);
                self.users.push(&current.get(i));
            }
        }
    }

    /// The user as they were before the run, when the plan changes them.
    fn get(&self, user_guid: &Uuid) -> Option<CurrentUser> {
        self.at.get(user_guid).map(|&i| self.users.get(i as usize))
    }
}

/// Rows per encoded chunk.
const CHUNK_ROWS: usize = 4096;

impl Writes {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Plan,
        before: Before,
        applied: bool,
        district_id: Uuid,
        run_id: Uuid,
        now: OffsetDateTime,
        actor: Actor,
        schools: HashMap<String, Uuid>,
    ) -> anyhow::Result<Writes> {
        let before = if applied { before } else { Before::default() };
        let given = if applied {
            hash_given_passwords(&plan)?
        } else {
            HashMap::new()
        };
        Ok(Writes {
            plan,
            applied,
            district: district_id.to_string(),
            run: run_id.to_string(),
            run_id,
            now: now.format(&Rfc3339).unwrap_or_default(),
            actor,
            schools,
            before,
            given,
            encoded: None,
        })
    }

    /// Count every plan row encoded, whatever the part, into `counter` (the run's progress).
    pub fn count_encoded_into(&mut self, counter: Arc<AtomicU64>) {
        self.encoded = Some(counter);
    }

    /// Rows written to `part` (0 for the user tables when nothing is applied).
    pub fn count(&self, part: Part) -> usize {
        if !self.applied && part != Part::Results {
            return 0;
        }
        // A compact plan's created rows each have a result and create a user.
        let created = match part {
            Part::Changes => 0,
            _ => self.plan.created.len(),
        };
        created
            + self
                .plan
                .rows
                .iter()
                .filter(|r| match part {
                    Part::Results => !r.is_plainly_unchanged(),
                    Part::NewUsers | Part::NewAudit | Part::NewMemberships => creates(r),
                    Part::Changes => writes_change(r),
                })
                .count()
    }

    /// The plainly unchanged rows (those [`Part::Results`] leaves out), in line order, as
    /// `run_unchanged` parts of at most [`UNCHANGED_PART`] rows each: made as they are
    /// written, so a million of them are never held twice (issue 19).
    pub fn unchanged(&self) -> impl Iterator<Item = Unchanged> + Send + '_ {
        // A compact plan keeps them apart ([`Plan::unchanged`]); any left among the rows are
        // merged in by line.
        let kept = self
            .plan
            .unchanged
            .iter()
            .map(|q| (i64::from(q.line), q.user_guid, q.matched_by.as_str()));
        let stray = self
            .plan
            .rows
            .iter()
            .filter(|r| r.is_plainly_unchanged())
            .filter_map(|row| Some((row.line as i64, row.user_guid?, row.matched_by?.as_str())));
        unchanged_parts(kept, stray, UNCHANGED_PART)
    }

    /// Encode the plan's rows in `rows` (of [`Plan::row_count`]) for `part`, appending CSV
    /// to `out`.
    pub fn encode(&self, part: Part, rows: Range<usize>, out: &mut Vec<u8>) -> csv::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::mem::take(out));
        // A compact plan's created rows change no user already there.
        let rows = match part {
            Part::Changes => {
                rows.start.min(self.plan.rows.len())..rows.end.min(self.plan.rows.len())
            }
            _ => rows,
        };
        for i in rows {
            let row = self.plan.row(i);
            let row = row.as_ref();
            match part {
                Part::Results if row.is_plainly_unchanged() => {}
                Part::Results => self.result(row, &mut w)?,
                _ if !self.applied => {}
                Part::NewUsers => self.new_user(row, &mut w)?,
                Part::NewMemberships => self.new_memberships(row, &mut w)?,
                Part::NewAudit => self.new_audit(row, &mut w)?,
                Part::Changes => self.change(row, &mut w)?,
            }
        }
        *out = w
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(())
    }

    /// The chunks of `part`, encoded lazily (each about [`CHUNK_ROWS`] plan rows).
    pub fn chunks(
        self: &Arc<Self>,
        part: Part,
    ) -> impl Iterator<Item = csv::Result<Vec<u8>>> + Send + 'static {
        let this = Arc::clone(self);
        let n = this.plan.row_count();
        (0..n.div_ceil(CHUNK_ROWS)).filter_map(move |i| {
            let mut out = Vec::new();
            let range = i * CHUNK_ROWS..((i + 1) * CHUNK_ROWS).min(n);
            if let Some(counter) = &this.encoded {
                counter.fetch_add(range.len() as u64, Ordering::Relaxed);
            }
            match this.encode(part, range, &mut out) {
                Ok(()) if out.is_empty() => None,
                Ok(()) => Some(Ok(out)),
                Err(e) => Some(Err(e)),
            }
        })
    }

    fn result(&self, row: &RowPlan, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        let (changed, error): (&[&str], Option<&str>) = match &row.outcome {
            Outcome::Updated { changed } | Outcome::Restored { changed } => (changed, None),
            Outcome::Error { message } => (&[], Some(message.as_str())),
            _ => (&[], None),
        };
        let changed_literal = format!("{{{}}}", changed.join(","));
        let kept_literal = format!("{{{}}}", row.kept().join(","));
        let guid = row.user_guid.map(|g| g.to_string()).unwrap_or_default();
        let temp = if self.applied {
            opt(&row.temp_password)
        } else {
            ""
        };
        w.write_record([
            self.district.as_str(),
            self.run.as_str(),
            row.line.to_string().as_str(),
            row.outcome.as_str(),
            &guid,
            opt(&row.username),
            temp,
            &changed_literal,
            error.unwrap_or(""),
            row.matched_by.map_or("", |m| m.as_str()),
            &row.previous_source().map(|s| s.to_db()).unwrap_or_default(),
            &kept_literal,
        ])
    }

    /// `district_id,id,custom_id,email,username,first_name,middle_name,last_name,role,grade,
    /// position,status,source,source_key,prevent_archiving,password_hash,password_temporary,
    /// password_set_at,created_at,updated_at,feed_password_mac` (an empty unquoted cell is
    /// NULL).
    fn new_user(&self, row: &RowPlan, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        let Some(new) = created(row) else {
            return Ok(());
        };
        let (hash, temporary) = match (&row.temp_password, self.given.get(&row.line)) {
            (Some(temp), _) => (auth::hash_temporary(temp), true),
            (None, Some(hash)) => (hash.clone(), false),
            (None, None) => (String::new(), false),
        };
        let set_at = if hash.is_empty() {
            ""
        } else {
            self.now.as_str()
        };
        let (id, source) = (new.user_guid.to_string(), new.source.to_db());
        let mac = self.mac_cell(row);
        w.write_record(
            [self.district.as_str()]
                .into_iter()
                .chain(user_columns(new, &id, &source))
                .chain([
                    hash.as_str(),
                    bool_cell(temporary),
                    set_at,
                    &self.now,
                    &self.now,
                    &mac,
                ]),
        )
    }

    /// `district_id,user_id,school_id`.
    fn new_memberships(&self, row: &RowPlan, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        let Some(new) = created(row) else {
            return Ok(());
        };
        let user = new.user_guid.to_string();
        for school in &new.schools {
            // Validation resolved every school against the district; one deleted since is
            // left out rather than failing the run.
            if let Some(id) = self.schools.get(school.as_str()) {
                w.write_record([self.district.as_str(), &user, &id.to_string()])?;
            }
        }
        Ok(())
    }

    /// `district_id,at,actor_kind,actor_id,actor_label,action,entity_kind,entity_id,run_id,before,after`.
    fn new_audit(&self, row: &RowPlan, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        let Some(new) = created(row) else {
            return Ok(());
        };
        let after: Map<String, Value> = audit_fields()
            .map(|f| (f.to_string(), field_value(new, f)))
            .collect();
        self.audit_record(
            w,
            "user.create",
            new.user_guid,
            "",
            &Value::Object(after).to_string(),
        )
    }

    fn audit_record(
        &self,
        w: &mut csv::Writer<Vec<u8>>,
        action: &str,
        user: Uuid,
        before: &str,
        after: &str,
    ) -> csv::Result<()> {
        let actor_id = self.actor.id.map(|i| i.to_string()).unwrap_or_default();
        w.write_record([
            self.district.as_str(),
            &self.now,
            self.actor.kind.as_str(),
            &actor_id,
            &self.actor.label,
            action,
            "user",
            &user.to_string(),
            &self.run,
            before,
            after,
        ])
    }

    /// `kind,id,custom_id,email,username,first_name,middle_name,last_name,role,grade,position,
    /// status,source,source_key,prevent_archiving,schools,before,after,password_hash,
    /// feed_password_mac` (kind `update` or `restore`; `schools` the external IDs joined by
    /// `db::reconcile::SCHOOL_SEP`; the last two empty, NULL, unless the feed's password for
    /// the user changed). A moved user's audit entry carries `source` before and after (an
    /// unchanged row that only moves its user is written here too, with nothing else in it).
    fn change(&self, row: &RowPlan, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        if !writes_change(row) {
            return Ok(());
        }
        let Some(new) = row.write.as_deref() else {
            return Ok(());
        };
        let changed: &[&str] = match &row.outcome {
            Outcome::Updated { changed } | Outcome::Restored { changed } => changed,
            _ => &[],
        };
        let moved = row.previous_source().is_some().then_some("source");
        let changed: Vec<&str> = changed.iter().copied().chain(moved).collect();
        let old = self.before.get(&new.user_guid);
        let old = old.as_ref();
        let mut before: Map<String, Value> = changed
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    old.map_or(Value::Null, |o| current_value(o, f)),
                )
            })
            .collect();
        let mut after: Map<String, Value> = changed
            .iter()
            .map(|f| (f.to_string(), field_value(new, f)))
            .collect();
        let restored = matches!(row.outcome, Outcome::Restored { .. });
        if restored {
            before.insert("archived".into(), json!(true));
            after.insert("archived".into(), json!(false));
        }
        let mut schools = String::new();
        for (i, school) in new.schools.iter().enumerate() {
            if i > 0 {
                schools.push(crate::db::reconcile::SCHOOL_SEP);
            }
            schools.push_str(school);
        }
        let (id, source) = (new.user_guid.to_string(), new.source.to_db());
        let (before, after) = (
            Value::Object(before).to_string(),
            Value::Object(after).to_string(),
        );
        let hash = self.given.get(&row.line).map_or("", String::as_str);
        let mac = if hash.is_empty() {
            String::new()
        } else {
            self.mac_cell(row)
        };
        w.write_record(
            [if restored { "restore" } else { "update" }]
                .into_iter()
                .chain(user_columns(new, &id, &source))
                .chain([schools.as_str(), &before, &after, hash, &mac]),
        )
    }

    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The row's password fingerprint as a `bytea` CSV cell (`\x` and hex), or empty (NULL).
    fn mac_cell(&self, row: &RowPlan) -> String {
        match (row.password_mac(), self.given.contains_key(&row.line)) {
            (Some(mac), true) => format!("\\x{}", hex::encode(mac.as_slice())),
            _ => String::new(),
        }
    }
}

/// Rows in one `run_unchanged` part: a million unchanged rows are written 16 parts of ~3 MB,
/// not one array of 40 MB encoded whole beside its lists.
pub const UNCHANGED_PART: usize = 65_536;

/// An unchanged row: its line, its user, how it found them.
type QuietLine = (i64, Uuid, &'static str);

/// Two lists of unchanged rows, each in line order, merged in line order and cut in parts of
/// `size` rows.
fn unchanged_parts(
    kept: impl Iterator<Item = QuietLine> + Send,
    stray: impl Iterator<Item = QuietLine> + Send,
    size: usize,
) -> impl Iterator<Item = Unchanged> + Send {
    let (mut kept, mut stray) = (kept.peekable(), stray.peekable());
    let mut rows = std::iter::from_fn(move || match (kept.peek(), stray.peek()) {
        (Some(k), Some(s)) if s.0 < k.0 => stray.next(),
        (Some(_), _) => kept.next(),
        (None, _) => stray.next(),
    });
    std::iter::from_fn(move || {
        let mut part = Unchanged::default();
        for (line, user, how) in rows.by_ref().take(size) {
            part.lines.push(line);
            part.users.push(user);
            part.matched_by.push(how);
        }
        (!part.lines.is_empty()).then_some(part)
    })
}

/// Plainly unchanged rows of a run, as three parallel lists in line order (one
/// `run_unchanged` part).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unchanged {
    pub lines: Vec<i64>,
    pub users: Vec<Uuid>,
    pub matched_by: Vec<&'static str>,
}

/// The user `row` creates (a compact plan's created rows carry theirs when decoded).
fn created(row: &RowPlan) -> Option<&NewUser> {
    match row.outcome {
        Outcome::Created => row.write.as_deref(),
        _ => None,
    }
}

/// Does `row` create a user?
fn creates(row: &RowPlan) -> bool {
    created(row).is_some()
}

/// Does `row` write an existing user (updated, restored, or unchanged but moved to this
/// feed)? A truly unchanged row writes nothing.
fn writes_change(row: &RowPlan) -> bool {
    row.write.is_some()
        && match row.outcome {
            Outcome::Updated { .. } | Outcome::Restored { .. } => true,
            Outcome::Unchanged => row.previous_source().is_some(),
            _ => false,
        }
}

/// `id,custom_id,email,username,first_name,middle_name,last_name,role,grade,position,status,
/// source,source_key,prevent_archiving`: the user columns both `users` and `stage_users` take.
fn user_columns<'a>(new: &'a NewUser, id: &'a str, source: &'a str) -> [&'a str; 14] {
    [
        id,
        opt(&new.custom_id),
        opt(&new.email),
        &new.username,
        &new.first_name,
        &new.middle_name,
        &new.last_name,
        new.role.as_str(),
        new.grade.as_str(),
        &new.position,
        new.status.to_db(),
        source,
        opt(&new.source_key),
        bool_cell(new.prevent_archiving),
    ]
}

/// The fields of a created user's audit entry: the master CSV's columns (but the password),
/// then where the user comes from.
fn audit_fields() -> impl Iterator<Item = &'static str> {
    MASTER_HEADER
        .into_iter()
        .filter(|f| *f != "password")
        .chain(["source", "source_key"])
}

fn field_value(u: &NewUser, name: &str) -> Value {
    match name {
        "user_guid" => json!(u.user_guid),
        "custom_id" => json!(u.custom_id),
        "email" => json!(u.email),
        "username" => json!(u.username),
        "first_name" => json!(u.first_name),
        "middle_name" => json!(u.middle_name),
        "last_name" => json!(u.last_name),
        "role" => json!(u.role.as_str()),
        "school_external_id" => json!(u.schools),
        "grade" => json!(u.grade.as_str()),
        "position" => json!(u.position),
        "status" => json!(u.status.as_str()),
        "source" => json!(u.source.to_db()),
        "source_key" => json!(u.source_key),
        // Never the value, nor its hash: only that the feed set it.
        "password" => json!("set by the feed"),
        _ => Value::Null,
    }
}

fn current_value(u: &CurrentUser, name: &str) -> Value {
    match name {
        "custom_id" => json!(u.custom_id),
        "email" => json!(u.email),
        "username" => json!(u.username),
        "first_name" => json!(u.first_name),
        "middle_name" => json!(u.middle_name),
        "last_name" => json!(u.last_name),
        "role" => json!(u.role.as_str()),
        "school_external_id" => json!(u.schools),
        "grade" => json!(u.grade.as_str()),
        "position" => json!(u.position),
        "status" => json!(u.status.as_str()),
        "source" => json!(u.source.to_db()),
        "source_key" => json!(u.source_key),
        _ => Value::Null,
    }
}

/// argon2id hashes of the passwords a feed gave, for users it creates and for existing users
/// whose feed password changed, spread over the machine's cores (this runs on a blocking
/// thread, off the async runtime). A hashing thread that panics fails the run: a password
/// silently left unset would look applied. (Generated temporary passwords get a fast salted
/// hash while encoding.)
fn hash_given_passwords(plan: &Plan) -> anyhow::Result<HashMap<u64, String>> {
    let mut given = given_passwords(&plan.rows);
    given.extend(plan.created.passwords());
    hash_in_parallel(given, auth::hash_password)
}

/// The (line, password) pairs to hash: rows that write a user with a feed password (a
/// compact plan's created rows give theirs through [`super::plan::CreatedUsers::passwords`]).
fn given_passwords(rows: &[RowPlan]) -> Vec<(u64, &str)> {
    rows.iter()
        .filter(|r| r.write.is_some())
        .filter(|r| r.temp_password.is_none())
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Created | Outcome::Updated { .. } | Outcome::Restored { .. }
            )
        })
        .filter_map(|r| r.password().map(|p| (r.line, p)))
        .collect()
}

fn hash_in_parallel(
    given: Vec<(u64, &str)>,
    hash: fn(&str) -> String,
) -> anyhow::Result<HashMap<u64, String>> {
    if given.is_empty() {
        return Ok(HashMap::new());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let chunk = given.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = given
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || part.iter().map(|(l, p)| (*l, hash(p))).collect::<Vec<_>>())
            })
            .collect();
        // Every thread is joined before any failure is reported (a scope would otherwise
        // re-raise the panic of a thread left unjoined).
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let mut out = HashMap::with_capacity(given.len());
        for hashed in joined {
            out.extend(hashed.map_err(|_| anyhow::anyhow!("a password hashing thread panicked"))?);
        }
        anyhow::ensure!(
            out.len() == given.len(),
            "hashed {} of {} given passwords",
            out.len(),
            given.len()
        );
        Ok(out)
    })
}

fn opt<S: AsRef<str>>(s: &Option<S>) -> &str {
    s.as_ref().map_or("", AsRef::as_ref)
}

fn bool_cell(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_hash(p: &str) -> String {
        format!("h:{p}")
    }

    fn panicking_hash(p: &str) -> String {
        if p == "boom" {
            panic!("hashing failed");
        }
        fake_hash(p)
    }

    #[test]
    fn unchanged_rows_merge_in_line_order_and_are_cut_in_parts() {
        let row = |line: i64| (line, Uuid::from_u128(line as u128), "custom_id");
        let kept = [2, 3, 5, 8, 10].map(row);
        let stray = [4, 9, 11].map(row);
        let parts: Vec<Unchanged> =
            unchanged_parts(kept.into_iter(), stray.into_iter(), 3).collect();
        let lines: Vec<&[i64]> = parts.iter().map(|p| p.lines.as_slice()).collect();
        assert_eq!(lines, [&[2, 3, 4][..], &[5, 8, 9], &[10, 11]]);
        for p in &parts {
            let users: Vec<Uuid> = p
                .lines
                .iter()
                .map(|&l| Uuid::from_u128(l as u128))
                .collect();
            assert_eq!(p.users, users);
            assert_eq!(p.matched_by.len(), p.lines.len());
        }
        // Nothing unchanged: no part at all (no `run_unchanged` row is written).
        assert_eq!(
            unchanged_parts(std::iter::empty(), std::iter::empty(), 3).count(),
            0
        );
    }

    #[test]
    fn every_given_password_is_hashed() {
        let given: Vec<(u64, &str)> = (2..40).map(|l| (l, "pw-long-enough")).collect();
        let out = hash_in_parallel(given, fake_hash).unwrap();
        assert_eq!(out.len(), 38);
        assert_eq!(out[&2], "h:pw-long-enough");
    }

    /// What given passwords cost (not a check; prints a figure): hash `N` passwords with the
    /// production argon2id parameters the way a run does, and extrapolate to 100,000.
    /// `ROLLCALL_HASH_N=500 scripts/test --lib measure_given_password_hashing --run-ignored only --no-capture`
    #[test]
    #[ignore = "a measurement, run by hand"]
    fn measure_given_password_hashing() {
        let n: usize = std::env::var("ROLLCALL_HASH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        let passwords: Vec<String> = (0..n).map(|i| format!("Given-Password-{i}")).collect();
        let given: Vec<(u64, &str)> = passwords
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 2, p.as_str()))
            .collect();
        // CPU time as well as wall time: on a shared machine the wall clock also measures
        // the neighbours; CPU seconds per hash are the cost itself.
        let cpu = || {
            let u =
                nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        };
        let (started, cpu0) = (std::time::Instant::now(), cpu());
        let out = hash_in_parallel(given, auth::hash_password).unwrap();
        let (took, cpu_s) = (started.elapsed(), cpu() - cpu0);
        assert_eq!(out.len(), n);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_ms = cpu_s * 1000.0 / n as f64;
        println!(
            "hashed {n} given passwords in {took:.2?} wall on {threads} threads ({:.0} s per 100,000 \
             at this wall rate); {cpu_ms:.1} ms CPU each, so 100,000 cost {:.0} CPU-seconds: about \
             {:.1} min on {threads} idle cores",
            took.as_secs_f64() * 100_000.0 / n as f64,
            cpu_ms * 100.0,
            cpu_ms * 100.0 / threads as f64 / 60.0
        );
    }

    #[test]
    fn a_panicking_hashing_thread_fails_the_run() {
        let given = vec![(2, "boom"), (3, "fine-password"), (4, "boom"), (5, "other")];
        let err = hash_in_parallel(given, panicking_hash).unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
    }
}
