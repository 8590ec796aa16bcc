//! One run of a user CSV through the pipeline: read → map → validate → plan → apply, in one
//! transaction, serialised per district. Used by the command line and (later) the job queue.

use super::apply::{self, Part, Writes};
use super::plan::{self, Plan, RowFail, Rules, Secrets};
use crate::auth;
use crate::clock::Clock;
use crate::crypto::FeedPasswordKey;
use crate::db;
use crate::domain::roster::RosterFeed;
use crate::domain::{ActorKind, CurrentUsers, Field, IncomingUser, RunStatus, Scope, Source};
use crate::feed::headers::{self, Mapping, MappingError, SavedMapping};
use crate::feed::read::{self, ReadOptions};
use crate::feed::validate::{KeyColumns, KeyHashes, RowError, RowKeys, Validator};
use crate::telemetry::rss_mib;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// How far a run has got, shared with whoever shows it (the job queue writes it to the run
/// every half second). `done` of `total` counts, by phase: rows read; (planning: all of
/// them); plan rows written, once per table written (users, memberships, audit, changes,
/// run results — so applying a 30,000-row file counts up to 150,000 when every part is
/// written).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: Arc<AtomicU64>,
    pub total: AtomicU64,
    /// 0 reading, 1 planning, 2 applying, 3 waiting for the district's lock.
    pub phase: AtomicU64,
}

impl Progress {
    pub fn phase_name(&self) -> &'static str {
        match self.phase.load(Ordering::Relaxed) {
            0 => "reading",
            1 => "planning",
            3 => "waiting",
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
    /// What the file covers (SPEC §4); `None` is the default, [`Scope::Source`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// A fixed error file: the run whose error file it is (its source is that run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_file_of: Option<crate::domain::ErrorFileOf>,
    /// What the intake wants said on the run page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake_note: Option<String>,
    /// The one school the file is for (issue 16, item 6; `plan::Rules::school`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<Uuid>,
}

impl RunOptions {
    /// A run's options as stored with it. Options that cannot be read are an error, never
    /// the defaults: a run must not silently lose its mapping, scope or overrides.
    pub fn from_stored(value: &serde_json::Value) -> anyhow::Result<RunOptions> {
        serde_json::from_value(value.clone()).map_err(|e| {
            anyhow::anyhow!(
                "the run's stored options cannot be read ({e}); nothing was run with defaults in their place"
            )
        })
    }
}

/// What a run came to (also the JSON summary the CLI prints).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub run_id: Uuid,
    pub status: RunStatus,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub restored: usize,
    pub archived: usize,
    pub errors: usize,
    /// Rows whose user changed owner (also counted as updated, unchanged or restored).
    pub moved: usize,
    /// Rows not this feed's to change, and unchanged (sync-owned users in a file).
    pub skipped: usize,
    pub total_rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub ignored_columns: Vec<String>,
    pub dry_run: bool,
    /// Classes and enrollments (SPEC §6a): `classes_created`, …, `enrollments_ended`,
    /// `roster_errors` (all zero for a feed without rosters).
    #[serde(flatten)]
    pub rosters: super::roster::RosterCounts,
}

impl Summary {
    /// A run that changed nothing (failed, or back in the queue for another attempt).
    pub fn nothing_applied(
        run_id: Uuid,
        status: RunStatus,
        message: String,
        dry_run: bool,
    ) -> Summary {
        Summary {
            run_id,
            status,
            created: 0,
            updated: 0,
            unchanged: 0,
            restored: 0,
            archived: 0,
            errors: 0,
            moved: 0,
            skipped: 0,
            total_rows: 0,
            message: Some(message),
            ignored_columns: Vec::new(),
            dry_run,
            rosters: Default::default(),
        }
    }
}

struct RandomSecrets(FeedPasswordKey);

impl Secrets for RandomSecrets {
    fn temp_password(&mut self) -> String {
        auth::generate_temporary()
    }
    /// Time-ordered (UUIDv7): a run's new users land at the right edge of every index keyed
    /// by user id (`users`, `user_schools`, `audit_log`), not at a million random places.
    fn new_guid(&mut self) -> Uuid {
        Uuid::now_v7()
    }
    fn password_fingerprint(&self, user_guid: Uuid, password: &str) -> [u8; 32] {
        self.0.fingerprint(user_guid, password)
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

/// A file read and validated once.
pub struct Prepared {
    pub headers: Vec<String>,
    pub mapping: Mapping,
    pub rows: FileRows,
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

/// Files up to this size keep their validated rows from the first reading, and are planned
/// from them instead of being read a second time (a 10,000-row file is ~600 KB; its rows then
/// take ~5 MB, and reading them again took ~8 ms of a 120 ms run).
const KEEP_ROWS_MAX_BYTES: u64 = 2 << 20;
/// And at most this many rows: 2 MiB of very short lines would otherwise be half a million
/// kept rows.
const KEEP_ROWS_MAX: usize = 40_000;

/// Read and validate a whole file (blocking; call from `spawn_blocking`). Only each row's
/// identifiers are kept (to find duplicates and reserve usernames); the planner reads the
/// file a second time, one row at a time ([`FileRows::plan`]), unless it is small
/// (`KEEP_ROWS_MAX_BYTES`): then its validated rows are kept as well.
pub fn prepare(
    path: &Path,
    opts: ReadOptions,
    saved: Option<&SavedMapping>,
    options: &RunOptions,
    schools: &HashSet<String>,
    district: Option<&str>,
    progress: &Progress,
) -> Result<Result<Prepared, FileProblem>> {
    let lines = count_lines(path);
    progress.total.store(lines, Ordering::Relaxed);
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
    let validator = Validator::new(&headers, &mapping, schools).with_district(district);
    let mut keep = std::fs::metadata(path).is_ok_and(|m| m.len() <= KEEP_ROWS_MAX_BYTES);
    let mut kept: Vec<Option<IncomingUser>> = Vec::new();
    // What the second reading needs of each row (16 bytes) and, until duplicates are found,
    // the hashes of its identifiers (24 bytes; issue 19: a million rows are not kept as
    // strings); explicit usernames, which generated ones must avoid, as they are.
    // Sized by the file's line count (a few more than its rows), not doubled as they come.
    let rows_hint = usize::try_from(lines).unwrap_or(0).min(1 << 22);
    let mut first: Vec<First> = Vec::with_capacity(rows_hint);
    let mut hashes = KeyColumns::with_capacity(rows_hint);
    let mut usernames: Vec<(usize, u64)> = Vec::new();
    let refuse = |e: RowError, (user_guid, custom_id, email): Identifiers| {
        First::Refused(Box::new(RowFail {
            line: e.line,
            message: e.to_string(),
            user_guid,
            custom_id,
            email,
        }))
    };
    for item in reader {
        progress.done.fetch_add(1, Ordering::Relaxed);
        if keep && kept.len() >= KEEP_ROWS_MAX {
            // Too many rows to keep: the planner reads the file again.
            keep = false;
            kept = Vec::new();
        }
        match item {
            Err(file_error) => return Ok(Err(file_error.into())),
            Ok(Err(issue)) => {
                first.push(refuse(RowError::from(issue), Identifiers::default()));
                hashes.push(None);
                if keep {
                    kept.push(None);
                }
            }
            Ok(Ok(rec)) => match validator.validate(&rec) {
                Ok(user) => {
                    let keys = KeyHashes::of(&user);
                    if let Some(key) = keys.explicit_username_key() {
                        usernames.push((first.len(), key));
                    }
                    first.push(First::Accepted {
                        digest: keys.digest(),
                        guid: keys.user_guid.is_some(),
                    });
                    hashes.push(Some(&keys));
                    if keep {
                        kept.push(Some(user));
                    }
                }
                Err(e) => {
                    first.push(refuse(e, raw_identifiers(&mapping, &rec.fields)));
                    hashes.push(None);
                    if keep {
                        kept.push(None);
                    }
                }
            },
        }
    }
    // Rows sharing a hashed identifier are read again and compared by value.
    let candidates = hashes.candidates();
    let duplicates = if candidates.is_empty() {
        HashMap::new()
    } else {
        exact_duplicates(path, opts, &validator, &candidates)?
    };
    let reserved = usernames
        .into_iter()
        .filter(|(i, _)| !duplicates.contains_key(i))
        .map(|(_, key)| key)
        .collect();
    for (i, (e, keys)) in duplicates {
        // A duplicate still protects the user its identifiers name.
        let identifiers = (
            keys.user_guid,
            keys.custom_id.map(String::from),
            keys.email.map(String::from),
        );
        first[i] = refuse(e, identifiers);
    }
    first.shrink_to_fit();
    Ok(Ok(Prepared {
        rows: FileRows {
            path: path.to_path_buf(),
            opts,
            headers: headers.clone(),
            mapping: mapping.clone(),
            schools: schools.clone(),
            district: district.map(str::to_string),
            first,
            kept: keep.then_some(kept),
            reserved,
        },
        headers,
        mapping,
    }))
}

type Identifiers = (Option<Uuid>, Option<String>, Option<String>);

/// The duplicates among `candidates` (positions of accepted rows whose hashed identifiers
/// collide), decided on their values: the file is read again and only those rows are kept,
/// as [`RowKeys`]. Each refused position comes back with its error and its identifiers.
fn exact_duplicates(
    path: &Path,
    opts: ReadOptions,
    validator: &Validator,
    candidates: &[usize],
) -> Result<HashMap<usize, (RowError, RowKeys)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = read::open(file, &opts).map_err(|_| FileChanged)?;
    let mut wanted = candidates.iter().copied().peekable();
    let mut keys: Vec<Result<RowKeys, RowError>> = Vec::with_capacity(candidates.len());
    for (i, item) in reader.enumerate() {
        let Some(&next) = wanted.peek() else { break };
        if i < next {
            continue;
        }
        wanted.next();
        match item {
            Ok(Ok(rec)) => match validator.validate(&rec) {
                Ok(user) => keys.push(Ok(RowKeys::of(&user))),
                Err(_) => return Err(FileChanged.into()),
            },
            _ => return Err(FileChanged.into()),
        }
    }
    if keys.len() != candidates.len() {
        return Err(FileChanged.into());
    }
    let found = validator.duplicates(&keys);
    let mut keys: Vec<Option<RowKeys>> = keys.into_iter().map(Result::ok).collect();
    Ok(found
        .into_iter()
        .filter_map(|(k, e)| Some((candidates[k], (e, keys[k].take()?))))
        .collect())
}

/// The file read differently the second time: nothing is planned from two versions.
#[derive(Debug, thiserror::Error)]
#[error(
    "the file changed while it was read; nothing was applied — upload it again once it is complete"
)]
pub struct FileChanged;

/// What the first reading kept of one row (16 bytes).
enum First {
    Accepted {
        /// [`KeyHashes::digest`]: the row must read the same the second time.
        digest: u64,
        /// The row names its user by `user_guid`.
        guid: bool,
    },
    Refused(Box<RowFail>),
}

/// A file's rows after the first reading: identifiers of accepted rows, failures of the
/// others. [`FileRows::plan`] reads the file again and plans each row as it is read.
pub struct FileRows {
    path: PathBuf,
    opts: ReadOptions,
    headers: Vec<String>,
    mapping: Mapping,
    schools: HashSet<String>,
    /// The district's own external ID (issue 16, item 7).
    district: Option<String>,
    first: Vec<First>,
    /// A small file's validated rows, by position (`None` where the first reading refused
    /// the row): planned from, instead of reading the file again.
    kept: Option<Vec<Option<IncomingUser>>>,
    /// The keys of the usernames the file's accepted rows give (`plan::GivenNames::Keys`).
    reserved: Vec<u64>,
}

impl FileRows {
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Every row names its user by `user_guid` (the master CSV sent back).
    pub fn every_row_has_a_guid(&self) -> bool {
        !self.first.is_empty()
            && self.first.iter().all(|f| match f {
                First::Accepted { guid, .. } => *guid,
                First::Refused(fail) => fail.user_guid.is_some(),
            })
    }

    /// The identifiers the file's accepted rows list (a file waiting in the queue, for
    /// [`Rules::elsewhere`]), read from the file again: the first reading kept only hashes.
    fn identifiers(&self) -> Result<plan::Elsewhere> {
        let mut out = plan::Elsewhere::default();
        let file = std::fs::File::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let reader = read::open(file, &self.opts).map_err(|_| FileChanged)?;
        let validator = Validator::new(&self.headers, &self.mapping, &self.schools)
            .with_district(self.district.as_deref());
        for (first, item) in self.first.iter().zip(reader) {
            let (First::Accepted { .. }, Ok(Ok(rec))) = (first, item) else {
                continue;
            };
            let Ok(user) = validator.validate(&rec) else {
                continue;
            };
            if let Some(g) = user.user_guid {
                out.guids.insert(g);
            }
            if let Some(c) = user.custom_id.as_deref().filter(|c| !c.trim().is_empty()) {
                out.custom_ids.insert(c.to_string());
            }
            if let Some(e) = user.email.as_deref().filter(|e| !e.trim().is_empty()) {
                out.emails.insert(e.to_lowercase());
            }
        }
        Ok(out)
    }

    /// Plan the file against `current`, reading it a second time (a small file: from the
    /// rows the first reading kept). The file must read as it did the first time (our stored
    /// uploads never change; a file edited in between is refused rather than planned from two
    /// different versions).
    fn plan(
        self,
        current: &CurrentUsers,
        source: &Source,
        rules: &Rules,
        secrets: &mut dyn Secrets,
    ) -> Result<Plan> {
        self.with_rows(|rows, n, reserved| {
            Ok(plan::plan_feed(
                current, reserved, rows, n, source, rules, secrets,
            ))
        })
    }

    /// Give `f` the file's rows (read a second time, or a small file's kept rows), their
    /// number and the keys of the usernames they give; refuse the plan when the file reads
    /// differently the second time.
    fn with_rows<T>(
        self,
        f: impl FnOnce(
            Box<dyn Iterator<Item = Result<IncomingUser, RowFail>> + '_>,
            usize,
            Vec<u64>,
        ) -> Result<T>,
    ) -> Result<T> {
        let reserved = self.reserved;
        if let Some(kept) = self.kept {
            let n = self.first.len();
            let mut missing = kept.len() != n;
            let rows =
                self.first
                    .into_iter()
                    .zip(kept)
                    .map_while(|(first, user)| match (first, user) {
                        (First::Refused(fail), _) => Some(Err(*fail)),
                        (First::Accepted { .. }, Some(user)) => Some(Ok(user)),
                        (First::Accepted { .. }, None) => {
                            missing = true;
                            None
                        }
                    });
            let out = f(Box::new(rows), n, reserved);
            // Never so: every accepted row was kept.
            anyhow::ensure!(!missing, "a small file's rows were not all kept");
            return out;
        }
        let file = std::fs::File::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let reader = read::open(file, &self.opts).map_err(|_| FileChanged)?;
        if reader.headers() != self.headers.as_slice() {
            return Err(FileChanged.into());
        }
        let validator = Validator::new(&self.headers, &self.mapping, &self.schools)
            .with_district(self.district.as_deref());
        let n = self.first.len();
        let mut changed = false;
        let mut reader = reader;
        // What the first reading kept is given back while the plan grows.
        let rows = super::drain_shrinking(self.first).map_while(|first| {
            let item = reader.next();
            match (first, item) {
                (First::Refused(fail), Some(_)) => Some(Err(*fail)),
                (First::Accepted { digest, .. }, Some(Ok(Ok(rec)))) => {
                    match validator.validate(&rec) {
                        Ok(user) if KeyHashes::of(&user).digest() == digest => Some(Ok(user)),
                        _ => {
                            changed = true;
                            None
                        }
                    }
                }
                _ => {
                    changed = true;
                    None
                }
            }
        });
        let out = f(Box::new(rows), n, reserved);
        if changed || reader.next().is_some() {
            return Err(FileChanged.into());
        }
        out
    }
}

/// What planning window by window reads through and plans for: the run's transaction
/// (`tx`; planning runs on a blocking thread and `rt` runs each query), its district,
/// source, rules and secrets, and how many rows a window holds (`size`).
struct WindowRun<'a> {
    tx: &'a mut sqlx::PgConnection,
    rt: &'a tokio::runtime::Handle,
    district_id: Uuid,
    source: &'a Source,
    rules: &'a Rules,
    secrets: &'a mut dyn Secrets,
    size: usize,
}

/// Plan `rows` window by window (`plan::Windows`, issue 19): each window of `size` rows with
/// only the users it names. `reserved`: the keys of the usernames the rows give. Gives the
/// plan and what the users it changes were before.
fn plan_windows(
    rows: impl Iterator<Item = Result<IncomingUser, RowFail>>,
    reserved: Vec<u64>,
    run: WindowRun<'_>,
) -> Result<(Plan, apply::Before)> {
    let WindowRun {
        tx,
        rt,
        district_id,
        source,
        rules,
        secrets,
        size,
    } = run;
    rt.block_on(db::reconcile::begin_windows(tx))?;
    let mut windows = plan::Windows::new(reserved, source, rules);
    let mut before = apply::Before::default();
    let mut rows = rows;
    let mut took = WindowTimes::default();
    let none = CurrentUsers::default();
    let mut window: Vec<_> = rows.by_ref().take(size).collect();
    while !window.is_empty() {
        let t = std::time::Instant::now();
        let keys = plan::WindowKeys::of(&window);
        // The next window is read from the file while the database finds this one's users
        // (the query is mostly the server's work: reading rows beside it hid ~1 s of a
        // million-row re-import), and kept encoded until its turn: as values, a second
        // window of rows held ~55 MiB more at the peak.
        let (users, next) = std::thread::scope(|s| {
            let fetch = s.spawn(|| {
                rt.block_on(db::reconcile::window_users(
                    &mut *tx,
                    district_id,
                    &keys,
                    &none,
                ))
            });
            let mut next = crate::domain::encoded::Encoded::default();
            for row in rows.by_ref().take(size) {
                next.push(&row);
            }
            let users = fetch
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (users, next)
        });
        let mut users = users?;
        took.users += t.elapsed();
        // Whoever holds the values rows would take, then the names the window may generate,
        // asked until no new holder is found (each one found moves the names generated
        // past it).
        let t = std::time::Instant::now();
        let keys = plan::WindowKeys::holders(&users, &window);
        let more = rt.block_on(db::reconcile::window_users(tx, district_id, &keys, &users))?;
        users.extend(&more);
        let mut asked: HashSet<String> = HashSet::new();
        loop {
            let probes: Vec<String> = windows
                .probes(&users, &window)
                .into_iter()
                .filter(|name| asked.insert(name.clone()))
                .collect();
            if probes.is_empty() {
                break;
            }
            let keys = plan::WindowKeys {
                usernames: probes,
                ..plan::WindowKeys::default()
            };
            let more = rt.block_on(db::reconcile::window_users(tx, district_id, &keys, &users))?;
            if more.is_empty() {
                break;
            }
            users.extend(&more);
        }
        took.holders += t.elapsed();
        let t = std::time::Instant::now();
        let added = windows.plan(&users, window, secrets);
        before.add(&windows.rows()[added], &users);
        took.plan += t.elapsed();
        window = next.into_iter().collect();
    }
    let t = std::time::Instant::now();
    let school = rules.school.as_ref().map(|s| s.external_id.as_str());
    let found = rt.block_on(db::reconcile::sweep(
        tx,
        district_id,
        source,
        rules.scope,
        school,
        !rules.elsewhere.is_empty(),
        windows
            .archives_anyone()
            .then_some(&|user, may_archive, custom_id, email| {
                windows.archives(user, may_archive, custom_id, email)
            }),
    ))?;
    took.sweep = t.elapsed();
    tracing::debug!(?took, rss_mib = %rss_mib(), "windows planned");
    Ok((windows.finish(found), before))
}

/// Where the time of a plan made window by window went (the debug log).
#[derive(Debug, Default)]
struct WindowTimes {
    /// Finding each window's users, the next window read from the file meanwhile.
    users: std::time::Duration,
    holders: std::time::Duration,
    plan: std::time::Duration,
    sweep: std::time::Duration,
}

/// The rows of one run: a file read twice, rows already in memory (a sync), or what an
/// undone run wrote (read once the run holds the district's lock).
pub enum Rows {
    File(FileRows),
    /// A sync's rows, typed as its set was read and kept encoded.
    Ready(crate::feed::provider::TypedRows),
    Undo(super::undo::UndoRows),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::File(f) => f.len(),
            Rows::Ready(v) => v.len(),
            Rows::Undo(u) => u.len(),
        }
    }

    fn plan(
        self,
        current: &CurrentUsers,
        source: &Source,
        rules: &Rules,
        secrets: &mut dyn Secrets,
    ) -> Result<Plan> {
        match self {
            Rows::File(f) => f.plan(current, source, rules, secrets),
            Rows::Ready(mut v) => {
                let reserved = v.take_reserved_usernames();
                let n = v.len();
                Ok(plan::plan_feed(
                    current,
                    reserved,
                    v.into_rows(),
                    n,
                    source,
                    rules,
                    secrets,
                ))
            }
            Rows::Undo(u) => Ok(u.plan(current, source, rules)),
        }
    }

    /// Can these rows be planned window by window (`plan_windows`): a file's or a set's,
    /// in a district larger than a window (a small file there is one window, which reads
    /// only the users it names rather than the whole district).
    fn windowed(&self) -> bool {
        match self {
            Rows::File(_) | Rows::Ready(_) => true,
            Rows::Undo(_) => false,
        }
    }

    /// [`plan_windows`] over these rows (see [`Rows::windowed`]).
    fn plan_windows(self, run: WindowRun<'_>) -> Result<(Plan, apply::Before)> {
        match self {
            Rows::File(f) => f.with_rows(|rows, _, reserved| plan_windows(rows, reserved, run)),
            Rows::Ready(mut v) => {
                let reserved = v.take_reserved_usernames();
                plan_windows(v.into_rows(), reserved, run)
            }
            Rows::Undo(_) => anyhow::bail!("an undo is planned from the users it undoes"),
        }
    }
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
    pub actor_kind: ActorKind,
    pub actor_id: Option<Uuid>,
    pub actor_label: &'a str,
    pub max_bytes: u64,
    pub progress: Arc<Progress>,
    /// Fingerprints the passwords a feed gives (derived from the installation's secret key:
    /// `SecretKey::feed_password_key`).
    pub password_key: FeedPasswordKey,
}

/// Run a user CSV (its run already marked started) and record the outcome on its run. A
/// file error marks the run Failed and changes nothing else; a database error leaves
/// everything as before (one transaction).
pub async fn execute(pool: &PgPool, clock: &Clock, req: &RunRequest<'_>) -> Result<Summary> {
    match execute_inner(pool, clock, req).await {
        Ok(summary) => Ok(summary),
        Err(e) => {
            // A file problem found late is the person's to fix; anything else is ours.
            let message = match e.downcast_ref::<FileChanged>() {
                Some(changed) => changed.to_string(),
                None => {
                    "the run stopped on an internal error and changed nothing; it has been logged"
                        .into()
                }
            };
            let finish = db::runs::Finish::ended(RunStatus::Failed, message);
            tracing::error!(run = %req.run_id, error = format!("{e:#}"), "run failed");
            db::runs::finish(pool, req.district_id, req.run_id, &finish, clock.now()).await?;
            Err(e)
        }
    }
}

async fn execute_inner(pool: &PgPool, clock: &Clock, req: &RunRequest<'_>) -> Result<Summary> {
    let opts = ReadOptions::with_max_bytes(req.max_bytes);
    let path = req.path.clone();
    let headers = tokio::task::spawn_blocking(move || read_headers(&path, opts)).await??;
    if let Ok(h) = &headers
        && crate::feed::roster_csv::is_roster_header(h)
    {
        return execute_roster_csv(pool, clock, req, opts).await;
    }
    let saved = match &headers {
        Ok(h) => super::mapping::saved_mapping(pool, req.district_id, h).await?,
        Err(_) => None,
    };
    let schools: HashSet<String> = db::schools::external_ids(pool, req.district_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let district = db::districts::external_id(pool, req.district_id).await?;
    let path = req.path.clone();
    let options = req.options.clone();
    let progress = req.progress.clone();
    let scope = req.options.scope.unwrap_or_default();
    let master = std::sync::atomic::AtomicBool::new(false);
    // Read while the district's users load (`apply_read`).
    let read = async {
        let prepared = tokio::task::spawn_blocking(move || {
            prepare(
                &path,
                opts,
                saved.as_ref(),
                &options,
                &schools,
                district.as_deref(),
                &progress,
            )
        })
        .await??;
        let prepared = match prepared {
            Ok(p) => p,
            Err(problem) => return Ok(Err(problem.to_string())),
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
        tracing::debug!(run = %req.run_id, rss_mib = %rss_mib(), rows = prepared.rows.len(), "file read");
        master.store(prepared.rows.every_row_has_a_guid(), Ordering::Relaxed);
        Ok(Ok(Input {
            ignored_columns: prepared.mapping.ignored_columns(&prepared.headers),
            rows: Rows::File(prepared.rows),
            scope,
            rosters: None,
        }))
    };
    let summary = apply_read(pool, clock, req, read).await?;
    let master = master.load(Ordering::Relaxed);
    if master && scope == Scope::Source && summary.message.is_none() {
        db::runs::add_note(pool, req.district_id, req.run_id, MASTER_WITH_SOURCE_SCOPE).await?;
    }
    Ok(summary)
}

/// Run a roster CSV (SPEC §6a): its classes, terms and enrollments through the roster engine,
/// with no users (the users part is an empty patch). With scope `patch` (asked for, or a
/// fixed error file) it archives no class and ends no enrollment.
async fn execute_roster_csv(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    opts: ReadOptions,
) -> Result<Summary> {
    let path = req.path.clone();
    // Errors name the file as it was sent (the stored copy has another name).
    let name = match db::runs::get(pool, req.district_id, req.run_id)
        .await?
        .and_then(|r| r.file_name)
    {
        Some(name) => name,
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("roster.csv")
            .to_string(),
    };
    let feed = tokio::task::spawn_blocking(move || {
        crate::feed::roster_csv::read_path(&path, &opts, &name)
    })
    .await??;
    let mut feed = match feed {
        Ok(f) => f,
        Err(problem) => return fail(pool, clock, req, problem.to_string()).await,
    };
    if req.options.school.is_some() {
        let message = "a file for one school takes users; classes and enrollments (a roster CSV) go in for the whole district".to_string();
        return fail(pool, clock, req, message).await;
    }
    if req.options.scope == Some(Scope::Patch) {
        feed.classes_complete = false;
        feed.enrollments_complete = false;
    }
    feed.district_scope = req.options.scope == Some(Scope::District);
    // Its completed file lists every row with its outcome.
    feed.every_result = true;
    apply_rows(
        pool,
        clock,
        req,
        Rows::Ready(Default::default()),
        Vec::new(),
        Scope::Patch,
        Some(feed),
    )
    .await
}

/// Said on the page of a run of the master CSV (user_guid on every row) with scope source.
pub const MASTER_WITH_SOURCE_SCOPE: &str = "Every row of this file names its user by user_guid, like the master CSV: with scope source it archives only users of its own source, so removing rows from it archives nobody. To archive the users whose rows you removed, upload it with scope district (The whole district).";

/// A `district`-scope run that would archive anyone stops in Needs Review first, unless
/// approved: the master CSV sent back archives every user missing from it, so the admin
/// sees the list before anything happens (SPEC §5: "says what it would archive before
/// anything happens"). Other scopes are left to the mass-change guard.
pub fn review_district_scope(plan: &mut Plan, rules: &Rules) {
    if rules.scope != Scope::District || rules.approved || plan.archive.is_empty() {
        return;
    }
    let n = plan.archive.len();
    let reason = format!(
        "would archive {n} user{} missing from the file (district scope: archiving is always reviewed first)",
        if n == 1 { "" } else { "s" }
    );
    match &mut plan.review {
        Some(review) => review.reason = format!("{reason}; {}", review.reason),
        None => {
            plan.review = Some(plan::Review {
                reason,
                would_archive: n,
                would_update: plan.counts.updated,
                source_total: plan.source_total,
                schools: Vec::new(),
            })
        }
    }
}

async fn fail(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    message: String,
) -> Result<Summary> {
    let finish = db::runs::Finish::ended(RunStatus::Failed, message.clone());
    db::runs::finish(pool, req.district_id, req.run_id, &finish, clock.now()).await?;
    Ok(Summary::nothing_applied(
        req.run_id,
        RunStatus::Failed,
        message,
        req.dry_run,
    ))
}

/// The users that files of other sources, queued behind this run, list (SPEC §4: a student
/// moving into the adults file is not archived by the students file uploaded just before it).
/// A file that cannot be read lists nobody.
async fn queued_elsewhere(pool: &PgPool, req: &RunRequest<'_>) -> Result<plan::Elsewhere> {
    let mut out = plan::Elsewhere::default();
    let queued = db::runs::queued_files(pool, req.district_id, &req.source.to_db()).await?;
    if queued.is_empty() {
        return Ok(out);
    }
    let schools: HashSet<String> = db::schools::external_ids(pool, req.district_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let district = db::districts::external_id(pool, req.district_id).await?;
    let opts = ReadOptions::with_max_bytes(req.max_bytes);
    for run in queued {
        let Some(path) = run.file_path.as_deref().map(PathBuf::from) else {
            continue;
        };
        let p = path.clone();
        let Ok(Ok(headers)) = tokio::task::spawn_blocking(move || read_headers(&p, opts)).await?
        else {
            continue;
        };
        let saved = db::runs::saved_mapping(pool, req.district_id, &headers::signature(&headers))
            .await?
            .and_then(|v| serde_json::from_value::<SavedMapping>(v).ok());
        // A queued run whose options cannot be read fails when it runs; it protects no one.
        let Ok(options) = RunOptions::from_stored(&run.options) else {
            continue;
        };
        let (schools, district) = (schools.clone(), district.clone());
        let listed = tokio::task::spawn_blocking(move || {
            match prepare(
                &path,
                opts,
                saved.as_ref(),
                &options,
                &schools,
                district.as_deref(),
                &Progress::default(),
            ) {
                Ok(Ok(prepared)) => prepared.rows.identifiers().ok(),
                _ => None,
            }
        })
        .await?;
        let Some(listed) = listed else {
            continue;
        };
        out.guids.extend(listed.guids);
        out.custom_ids.extend(listed.custom_ids);
        out.emails.extend(listed.emails);
    }
    Ok(out)
}

/// What a run applies once it has been read: typed rows, and the classes, terms and
/// enrollments the same feed carries (SPEC §6a).
pub struct Input {
    pub rows: Rows,
    pub ignored_columns: Vec<String>,
    pub scope: Scope,
    pub rosters: Option<RosterFeed>,
}

/// Plan typed rows against the district and apply them (shared by syncs and undo; a file
/// goes through `apply_read`). `rosters`: the classes, terms and enrollments the same feed
/// carries (SPEC §6a), planned against the district after its users and applied in the same
/// transaction.
pub async fn apply_rows(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    rows: Rows,
    ignored_columns: Vec<String>,
    scope: Scope,
    rosters: Option<RosterFeed>,
) -> Result<Summary> {
    // An undo never loads every user either (`plan_and_apply`).
    let windowed = rosters.is_none() && (rows.windowed() || matches!(rows, Rows::Undo(_)));
    let input = Input {
        rows,
        ignored_columns,
        scope,
        rosters,
    };
    let few = input.rows.len() <= plan_window();
    let read = std::future::ready(Ok(Ok(input)));
    plan_and_apply(pool, clock, req, read, Some(windowed), few).await
}

/// Lines a run plans at a time when its file has more (issue 19, `plan::Windows`): 196,608,
/// or `ROLLCALL_PLAN_WINDOW` (tests plan in windows of a few rows with it). Each window
/// costs the database a scan of the district; a window of this size holds ~100-130 MiB at
/// the peak (its rows, the next window's encoded, its users): at a million users 6 windows
/// re-imported in ~0.4 s less than 8 windows of 131,072, for ~35 MiB more.
fn plan_window() -> usize {
    static WINDOW: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WINDOW.get_or_init(|| {
        std::env::var("ROLLCALL_PLAN_WINDOW")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(196_608)
    })
}

/// Users a district may have and still be loaded whole for a run of more than a window of
/// rows: four windows (786,432), or `ROLLCALL_PLAN_WHOLE_MAX` (the test script's second pass
/// sets 0, so that every run it can plans in windows). Loaded whole, a district of that size
/// holds about what a window does (700,000 users: a re-import peaked at ~120-130 MiB), and
/// its re-import is faster.
fn plan_whole_max() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("ROLLCALL_PLAN_WHOLE_MAX")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(4 * plan_window())
    })
}

/// The district as a run finds it before planning, read in its transaction.
struct Setup<'c> {
    district: db::districts::District,
    names: plan::Names,
    /// `Some(None)`: the run is for one school that is no longer the district's.
    school: Option<Option<plan::SchoolOnly>>,
    tx: sqlx::Transaction<'c, sqlx::Postgres>,
    /// The district's lock was free and is held.
    locked: bool,
    /// The district's users are read by the keys the rows name, not loaded whole: it has
    /// more users than a window (`plan_window`), and the rows are few or it has more than
    /// [`plan_whole_max`].
    big: bool,
    /// `None` when another run held the district's lock (loaded once this run holds it), or
    /// when the district's users are read by keys (`big`).
    loaded: Option<Loaded>,
}

struct Loaded {
    current: CurrentUsers,
    schools: HashMap<String, Uuid>,
    took: std::time::Duration,
}

/// The district's users and schools, read under its lock.
async fn load_locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    district_id: Uuid,
) -> Result<Loaded> {
    let t0 = std::time::Instant::now();
    let current = db::reconcile::load_current(tx, district_id).await?;
    let schools = db::schools::external_ids(&mut **tx, district_id)
        .await?
        .into_iter()
        .collect();
    Ok(Loaded {
        current,
        schools,
        took: t0.elapsed(),
    })
}

/// Plan what `read` gives against the district and apply it. The district's settings and,
/// when its lock is free, its users are read while `read` runs (a 10,000-row file reads in
/// about as long as its district loads); a run that must wait for the lock reads first and
/// waits after, so a file that cannot be read fails without waiting. `read` gives `Err`
/// inside when the file cannot be used: the run fails with that message, nothing applied.
pub async fn apply_read(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    read: impl std::future::Future<Output = Result<Result<Input, String>>>,
) -> Result<Summary> {
    // Whether the file holds at most a window of rows is known once it is read, but the
    // district's users are loaded (or not) while it is read: its size tells.
    let bytes = std::fs::metadata(&req.path).map_or(u64::MAX, |m| m.len());
    let few = bytes <= (plan_window() * FEW_ROWS_BYTES) as u64;
    plan_and_apply(pool, clock, req, read, None, few).await
}

/// Bytes a row of a file is taken to have at least, when whether the file holds more than a
/// window of rows is guessed from its size ([`apply_read`]; 48 is a short row: a file of
/// IDs and names has ~60). A wrong guess costs time, never correctness: either way of
/// planning gives the same plan.
const FEW_ROWS_BYTES: usize = 48;

/// [`apply_read`], told whether the rows can be planned window by window when that is known
/// before they are read (`None`: a user file, which can unless it carries rosters), and
/// whether they are `few` (at most a window).
async fn plan_and_apply(
    pool: &PgPool,
    clock: &Clock,
    req: &RunRequest<'_>,
    read: impl std::future::Future<Output = Result<Result<Input, String>>>,
    windowed: Option<bool>,
    few: bool,
) -> Result<Summary> {
    let setup = async {
        let district = db::districts::by_id(pool, req.district_id)
            .await?
            .context("district vanished")?;
        let names = plan::Names {
            syncs: db::syncs::names(pool, req.district_id).await?,
            schools: db::schools::options(pool, req.district_id, None)
                .await?
                .into_iter()
                .map(|s| (s.external_id, s.name))
                .collect(),
        };
        // A file for one school (issue 16, item 6): `plan::SchoolOnly`.
        let school =
            match req.options.school {
                Some(id) => Some(db::schools::get(pool, req.district_id, id).await?.map(|s| {
                    plan::SchoolOnly {
                        external_id: s.external_id,
                        name: s.name,
                    }
                })),
                None => None,
            };
        let mut tx = pool.begin().await?;
        let locked = db::reconcile::try_lock_district(&mut tx, req.district_id).await?;
        // A file planned window by window does not load the district's users. A district of
        // fewer users than a window is loaded whole: that costs no more than a window, and
        // is faster (a first import above all). So is one of a few windows' users for many
        // rows: at 300,000 users a re-import loaded whole peaked at ~65 MiB in ~1.1 s, in
        // windows at ~150 MiB in ~1.9 s (`bench/reconcile 300000`). A few rows there are
        // planned by the users they name (a 10-line file reads 10 users).
        let users = db::reconcile::user_count(&mut tx, req.district_id).await?;
        let big = users > plan_window() && (few || users > plan_whole_max());
        let windowed = big && windowed.unwrap_or(true);
        let loaded = if locked && !windowed {
            Some(load_locked(&mut tx, req.district_id).await?)
        } else {
            None
        };
        anyhow::Ok(Setup {
            district,
            names,
            school,
            tx,
            locked,
            big,
            loaded,
        })
    };
    let (setup, input) = tokio::join!(setup, read);
    let Input {
        mut rows,
        ignored_columns,
        scope,
        rosters,
    } = match input? {
        Ok(input) => input,
        Err(problem) => {
            drop(setup);
            return fail(pool, clock, req, problem).await;
        }
    };
    let Setup {
        district,
        names,
        school,
        mut tx,
        locked,
        big,
        loaded,
    } = setup?;
    let school = match school {
        Some(Some(s)) => Some(s),
        Some(None) => {
            drop(tx);
            let message = "the school this file was for is no longer one of the district's schools; nothing was applied".to_string();
            return fail(pool, clock, req, message).await;
        }
        None => None,
    };
    let elsewhere = match (&req.source, scope) {
        (Source::File(_), Scope::Source) => queued_elsewhere(pool, req).await?,
        _ => plan::Elsewhere::default(),
    };
    let rules = Rules {
        school,
        elsewhere,
        archive_pct: district.guard_archive_pct,
        archive_min: district.guard_archive_min.max(0) as usize,
        update_pct: district.guard_update_pct,
        scope,
        approved: req.approved,
        school_pct: district.guard_school_pct,
        school_min: district.guard_school_min.max(0) as usize,
        names,
    };
    let total_rows = rows.len();
    req.progress
        .total
        .store(total_rows as u64, Ordering::Relaxed);
    req.progress
        .done
        .store(total_rows as u64, Ordering::Relaxed);
    req.progress.phase.store(1, Ordering::Relaxed);
    if !locked {
        // Another run of this district (or a connection being deleted) holds the lock:
        // show this run as waiting, and start its clock when it gets the lock.
        req.progress.phase.store(3, Ordering::Relaxed);
        db::runs::mark_waiting(pool, req.district_id, req.run_id).await?;
        db::reconcile::lock_district(&mut tx, req.district_id).await?;
        req.progress.phase.store(1, Ordering::Relaxed);
        db::runs::mark_lock_held(pool, req.district_id, req.run_id, clock.now()).await?;
    }
    // A district read by keys (`big`, decided by the setup) is not loaded whole for a feed
    // without rosters, nor for an undo, which reads only the users it undoes and the
    // holders of what it takes back.
    let windowed = loaded.is_none() && big && rosters.is_none() && rows.windowed();
    let by_keys = windowed || (loaded.is_none() && big && matches!(rows, Rows::Undo(_)));
    let loaded = match loaded {
        Some(loaded) => loaded,
        None if by_keys => {
            let t0 = std::time::Instant::now();
            Loaded {
                current: CurrentUsers::default(),
                schools: db::schools::external_ids(&mut *tx, req.district_id)
                    .await?
                    .into_iter()
                    .collect(),
                took: t0.elapsed(),
            }
        }
        None => load_locked(&mut tx, req.district_id).await?,
    };
    let Loaded {
        mut current,
        schools,
        took,
    } = loaded;
    let t0 = std::time::Instant::now();
    // An undo: also the classes and enrollments the undone run changed.
    let roster_undo = match &mut rows {
        Rows::Undo(u) => {
            u.load(&mut tx, req.district_id).await?;
            if by_keys {
                current = db::reconcile::window_users(
                    &mut tx,
                    req.district_id,
                    &u.keys(),
                    &CurrentUsers::default(),
                )
                .await?;
                u.source_total = Some(
                    db::reconcile::scope_total(&mut tx, req.district_id, &req.source, scope)
                        .await?,
                );
            }
            u.take_rosters()
        }
        _ => None,
    };
    let total_rows = rows.len();
    let roster_rules = super::roster::RosterRules {
        archive_pct: district.guard_archive_pct,
        archive_min: district.guard_archive_min.max(0) as usize,
        approved: req.approved,
        syncs: rules.names.syncs.clone(),
    };
    let mut t_load = took + t0.elapsed();
    let existing_users = if windowed {
        db::reconcile::user_count(&mut tx, req.district_id).await?
    } else {
        current.len()
    };
    tracing::debug!(run = %req.run_id, rss_mib = %rss_mib(), users = current.len(), "current users loaded");
    let source = req.source.clone();
    let apply_now = !req.dry_run;
    let (district_id, run_id, now) = (req.district_id, req.run_id, clock.now());
    let actor = apply::Actor {
        kind: req.actor_kind,
        id: req.actor_id,
        label: req.actor_label.to_string(),
    };
    let t1 = std::time::Instant::now();
    let mut secrets = RandomSecrets(req.password_key.clone());
    let encoded = req.progress.done.clone();
    let (plan, before, people, rosters, source, mut secrets, mut tx) = match rows {
        rows if windowed => {
            let rt = tokio::runtime::Handle::current();
            let mut tx = tx;
            tokio::task::spawn_blocking(move || {
                let (mut plan, before) = rows.plan_windows(WindowRun {
                    tx: &mut tx,
                    rt: &rt,
                    district_id,
                    source: &source,
                    rules: &rules,
                    secrets: &mut secrets,
                    size: plan_window(),
                })?;
                review_district_scope(&mut plan, &rules);
                tracing::debug!(rss_mib = %rss_mib(), "rows planned");
                anyhow::Ok((plan, before, None, rosters, source, secrets, tx))
            })
            .await??
        }
        rows => {
            let (plan, before, people, rosters, source, secrets) =
                tokio::task::spawn_blocking(move || {
                    let mut plan = rows.plan(&current, &source, &rules, &mut secrets)?;
                    review_district_scope(&mut plan, &rules);
                    tracing::debug!(rss_mib = %rss_mib(), "rows planned");
                    // What the users this run changes were, and the users the feed's
                    // enrollments name: read from the district's users, which then go,
                    // before its rosters are read (issue 19, memory).
                    let before = apply::Before::of(&plan, &current);
                    let people = rosters.as_ref().map(|feed| {
                        super::roster::FeedPeople::of(feed, &current, Some(&plan), &source)
                    });
                    drop(current);
                    anyhow::Ok((plan, before, people, rosters, source, secrets))
                })
                .await??;
            (plan, before, people, rosters, source, secrets, tx)
        }
    };
    tracing::debug!(elapsed = ?t1.elapsed(), rss_mib = %rss_mib(), "users planned");
    // The district's rosters, when the feed carries any (SPEC §6a) or the undone run changed
    // any: read once the users are planned and let go, so that the two (~130 MB each at a
    // million users and three million enrollments) are never held at once (issue 19, memory).
    let t_rosters = std::time::Instant::now();
    let roster_current = if rosters.is_some() || roster_undo.is_some() {
        Some(db::rosters::load(&mut tx, req.district_id).await?)
    } else {
        None
    };
    t_load += t_rosters.elapsed();
    // Classes and enrollments before the run: a run adding many refreshes their statistics.
    let rosters_before = roster_current
        .as_ref()
        .map_or(0, |rc| rc.classes.len() + rc.enrollments.len());
    let (writes, roster_plan) = tokio::task::spawn_blocking(move || {
        let mut plan = plan;
        // Rosters after users: users this run creates or restores can be enrolled.
        let roster_plan = match (rosters.zip(people), roster_undo, roster_current) {
            (Some((feed, people)), _, Some(rc)) => Some(super::roster::plan_for(
                &rc,
                people,
                feed,
                &source,
                &roster_rules,
                &mut secrets,
            )),
            (None, Some(written), Some(rc)) => Some(super::undo::roster::plan(
                &rc,
                written,
                &source,
                &roster_rules,
            )),
            _ => None,
        };
        tracing::debug!(elapsed = ?t1.elapsed(), rss_mib = %rss_mib(), "rosters planned");
        if let Some(r) = roster_plan.as_ref().and_then(|rp| rp.review.as_ref()) {
            hold_for_rosters(&mut plan, &r.reason);
        }
        let applied = apply_now && plan.review.is_none();
        let mut writes = apply::Writes::new(
            plan,
            before,
            applied,
            district_id,
            run_id,
            now,
            actor,
            schools,
        )?;
        writes.count_encoded_into(encoded);
        anyhow::Ok((writes, roster_plan.map(Arc::new)))
    })
    .await??;
    // Applying: every part written passes over every plan row once.
    let parts = if writes.applied {
        4 + u64::from(writes.count(Part::Changes) > 0)
    } else {
        1
    };
    req.progress.done.store(0, Ordering::Relaxed);
    req.progress
        .total
        .store(parts * writes.plan.row_count() as u64, Ordering::Relaxed);
    let writes = Arc::new(writes);
    let plan = &writes.plan;

    let c = plan.counts;
    let roster_counts = roster_plan.as_ref().map(|p| p.counts).unwrap_or_default();
    // A roster-only run (a roster CSV) counts the file's rows it read.
    let total_rows = match &roster_plan {
        Some(rp) if total_rows == 0 => rp.records.unwrap_or_else(|| {
            let lines: HashSet<(u16, u32)> = rp.results().map(|r| (r.file, r.line)).collect();
            lines.len()
        }),
        _ => total_rows,
    };
    let status = if let Some(review) = &plan.review {
        (RunStatus::NeedsReview, Some(review.reason.clone()))
    } else if c.errors > 0 || roster_counts.roster_errors > 0 {
        (RunStatus::CompletedWithErrors, None)
    } else {
        (RunStatus::Completed, None)
    };
    req.progress.phase.store(2, Ordering::Relaxed);
    if writes.applied {
        let actor = apply::Actor {
            kind: req.actor_kind,
            id: req.actor_id,
            label: req.actor_label.to_string(),
        };
        tracing::debug!(run = %req.run_id, load = ?t_load, plan = ?t1.elapsed(), rss_mib = %rss_mib(), "planned");
        let n_changes = writes.count(Part::Changes);
        let changes = (n_changes > 0).then(|| (chunks(&writes, Part::Changes), n_changes));
        db::reconcile::write_plan(
            &mut tx,
            req.district_id,
            db::reconcile::PlanWrites {
                new_users: chunks(&writes, Part::NewUsers),
                new_memberships: chunks(&writes, Part::NewMemberships),
                new_audit: chunks(&writes, Part::NewAudit),
                changes,
                analyze: should_analyze(writes.count(Part::NewUsers), existing_users),
            },
            &plan.archive,
            &actor,
            req.run_id,
            now,
        )
        .await?;
        if let Some(rp) = &roster_plan {
            tracing::debug!(run = %req.run_id, elapsed = ?t1.elapsed(), "users written");
            let w = super::roster::writes::encode(rp)?;
            tracing::debug!(run = %req.run_id, elapsed = ?t1.elapsed(), rss_mib = %rss_mib(), "rosters encoded");
            db::rosters::write_plan(
                &mut tx,
                req.district_id,
                w,
                &req.source,
                &actor,
                req.run_id,
                now,
            )
            .await?;
            let added = rp.counts.classes_created + rp.counts.enrollments_added;
            if should_analyze(added, rosters_before) {
                db::rosters::analyze(&mut tx).await?;
            }
        }
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
    for (part, unchanged) in (0..).zip(writes.unchanged()) {
        db::runs::add_unchanged(
            &mut tx,
            req.district_id,
            req.run_id,
            part,
            db::runs::UnchangedRows {
                lines: &unchanged.lines,
                users: &unchanged.users,
                matched_by: &unchanged.matched_by,
            },
        )
        .await?;
    }
    if let Some(rp) = &roster_plan {
        let rows = super::roster::writes::results(rp, req.district_id, req.run_id);
        db::rosters::store_results(&mut tx, req.district_id, req.run_id, rows, &rp.counts).await?;
        tracing::debug!(run = %req.run_id, elapsed = ?t2.elapsed(), rss_mib = %rss_mib(), "roster results stored");
    }
    let finish = db::runs::Finish {
        status: status.0,
        total_rows: total_rows as i32,
        created: c.created as i32,
        updated: c.updated as i32,
        unchanged: c.unchanged as i32,
        restored: c.restored as i32,
        archived: c.archived as i32,
        errors: c.errors as i32,
        moved: c.moved as i32,
        skipped: c.skipped as i32,
        message: status.1.clone(),
        ignored_columns: ignored_columns.clone(),
    };
    db::runs::finish(&mut *tx, req.district_id, req.run_id, &finish, clock.now()).await?;
    tx.commit().await?;
    tracing::debug!(run = %req.run_id, load = ?t_load, plan_and_write = ?t1.elapsed(), results_and_commit = ?t2.elapsed(), rss_mib = %rss_mib(), "applied");
    tracing::info!(
        run = %req.run_id, status = status.0.as_str(), created = c.created, updated = c.updated, unchanged = c.unchanged,
        restored = c.restored, archived = c.archived, errors = c.errors, moved = c.moved,
        skipped = c.skipped, dry_run = req.dry_run, "run finished"
    );
    Ok(Summary {
        run_id: req.run_id,
        status: status.0,
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
        restored: c.restored,
        archived: c.archived,
        errors: c.errors,
        moved: c.moved,
        skipped: c.skipped,
        total_rows,
        message: status.1,
        ignored_columns,
        dry_run: req.dry_run,
        rosters: roster_counts,
    })
}

/// Whether a run creating `created` users in a district of `existing` refreshes the table
/// statistics: when it adds at least 1,000 users and a quarter of what was there, the
/// estimates PostgreSQL holds for the district are far off (a first import most of all).
fn should_analyze(created: usize, existing: usize) -> bool {
    created >= 1_000 && created.saturating_mul(4) >= existing
}

/// The rosters' guard tripped: the whole run (users too) stops in Needs Review.
fn hold_for_rosters(plan: &mut Plan, reason: &str) {
    match &mut plan.review {
        Some(review) => review.reason = format!("{}; {reason}", review.reason),
        None => {
            plan.review = Some(plan::Review {
                reason: reason.to_string(),
                would_archive: 0,
                would_update: 0,
                source_total: plan.source_total,
                schools: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::Outcome;

    #[test]
    fn a_row_s_first_reading_keeps_16_bytes() {
        assert_eq!(std::mem::size_of::<First>(), 16);
    }

    #[test]
    fn statistics_are_refreshed_after_a_large_creation_only() {
        assert!(should_analyze(100_000, 1), "a first import");
        assert!(should_analyze(1_000, 4_000), "a quarter more users");
        assert!(!should_analyze(999, 0), "a small district's first file");
        assert!(
            !should_analyze(20_000, 100_000),
            "a large district's new year"
        );
    }

    struct Fixed(u64);
    impl Secrets for Fixed {
        fn temp_password(&mut self) -> String {
            "temporary-pw".into()
        }
        fn new_guid(&mut self) -> Uuid {
            self.0 += 1;
            Uuid::from_u128(self.0 as u128)
        }
        fn password_fingerprint(&self, user_guid: Uuid, password: &str) -> [u8; 32] {
            let mut out = [0u8; 32];
            out[..16].copy_from_slice(user_guid.as_bytes());
            out[16] = password.len() as u8;
            out
        }
    }

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rollcall-run-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn prepared(path: &Path) -> Prepared {
        let schools: HashSet<String> = ["N1".to_string(), "S1".to_string()].into();
        prepare(
            path,
            ReadOptions::default(),
            None,
            &RunOptions::default(),
            &schools,
            None,
            &Progress::default(),
        )
        .unwrap()
        .unwrap()
    }

    const MESSY: &str = "custom_id,email,first_name,last_name,role,school_external_id,grade,username\n\
        1,a@d.org,Ann,Lee,Student,N1,5,\n\
        2,b@d.org,Bo,Kim,Student,N1,13,\n\
        3,c@d.org,Cy,Ito,Teacher,S1,,ann.lee\n\
        3,dup@d.org,Di,Ono,Student,N1,4,\n\
        4,A@D.ORG,Ed,Roe,Student,X9,4,\n\
        5,e@d.org,Ann,Lee,Student,S1,K,\n\
        6,f@d.org,Fa,Ng,Staff,S1,,\n";

    /// Reading the file twice plans exactly what reading it once into memory plans.
    #[test]
    fn two_readings_plan_what_one_reading_plans() {
        let dir = scratch("same");
        let path = file(&dir, "messy.csv", MESSY);
        let source = Source::File("messy.csv".into());
        let rules = Rules::default();
        let p = prepared(&path);
        let n = p.rows.len();
        let two = Rows::File(p.rows)
            .plan(&CurrentUsers::default(), &source, &rules, &mut Fixed(0))
            .unwrap()
            .with_writes();

        // One reading: every row validated into memory, duplicates marked, then planned.
        let p = prepared(&path);
        let schools: HashSet<String> = ["N1".to_string(), "S1".to_string()].into();
        let validator = Validator::new(&p.headers, &p.mapping, &schools);
        let reader =
            read::open(std::fs::File::open(&path).unwrap(), &ReadOptions::default()).unwrap();
        let mut rows: Vec<Result<IncomingUser, RowError>> = reader
            .map(|item| match item.unwrap() {
                Ok(rec) => validator.validate(&rec),
                Err(issue) => Err(RowError::from(issue)),
            })
            .collect();
        validator.mark_duplicates(&mut rows);
        let rows = rows
            .into_iter()
            .map(|r| {
                r.map_err(|e| RowFail {
                    line: e.line,
                    message: e.to_string(),
                    user_guid: None,
                    custom_id: None,
                    email: None,
                })
            })
            .collect();
        let one = plan::plan(
            &CurrentUsers::default(),
            rows,
            &source,
            &rules,
            &mut Fixed(0),
        );

        assert_eq!(n, 7);
        assert_eq!(two.rows, one.rows);
        assert_eq!(two.counts, one.counts);
        // The file's mess is in the plan: a bad grade, a duplicate custom_id on both lines, an
        // email duplicated case-insensitively, an unknown school, and the generated username
        // for line 7 avoids the `ann.lee` that line 4 asks for.
        let outcome = |line: u64| two.rows.iter().find(|r| r.line == line).unwrap();
        assert!(matches!(outcome(3).outcome, Outcome::Error { .. }));
        assert!(matches!(outcome(4).outcome, Outcome::Error { .. }));
        assert!(matches!(outcome(5).outcome, Outcome::Error { .. }));
        assert!(matches!(outcome(6).outcome, Outcome::Error { .. }));
        assert_eq!(outcome(7).username.as_deref(), Some("ann.lee2"));
        std::fs::remove_dir_all(dir).ok();
    }

    /// District scope never archives without a review first; approved, or with nobody to
    /// archive, or in another scope, it goes ahead (other scopes keep the guard's rules).
    #[test]
    fn a_district_scope_run_that_would_archive_stops_for_review() {
        let plan_with = |archive: usize| Plan {
            rows: Vec::new(),
            unchanged: Vec::new(),
            created: Default::default(),
            archive: (0..archive as u128).map(Uuid::from_u128).collect(),
            counts: plan::Counts {
                archived: archive,
                ..Default::default()
            },
            review: None,
            source_total: 100,
        };
        let rules = |scope, approved| Rules {
            scope,
            approved,
            ..Rules::default()
        };
        let mut p = plan_with(2);
        review_district_scope(&mut p, &rules(Scope::District, false));
        let review = p.review.expect("stops for review");
        assert_eq!(review.would_archive, 2);
        assert!(
            review
                .reason
                .starts_with("would archive 2 users missing from the file"),
            "{}",
            review.reason
        );
        for (scope, approved, archive) in [
            (Scope::District, true, 2),
            (Scope::District, false, 0),
            (Scope::Source, false, 2),
            (Scope::Patch, false, 2),
        ] {
            let mut p = plan_with(archive);
            review_district_scope(&mut p, &rules(scope, approved));
            assert!(
                p.review.is_none(),
                "{scope} approved={approved} archive={archive}"
            );
        }
    }

    /// A small file is planned from the rows its first reading kept, into the plan a second
    /// reading gives.
    #[test]
    fn a_small_file_is_planned_from_its_first_reading() {
        let dir = scratch("kept");
        let path = file(&dir, "users.csv", MESSY);
        let plan = |p: Prepared| {
            Rows::File(p.rows)
                .plan(
                    &CurrentUsers::default(),
                    &Source::File("users.csv".into()),
                    &Rules::default(),
                    &mut Fixed(0),
                )
                .unwrap()
        };
        let kept = prepared(&path);
        assert!(kept.rows.kept.is_some(), "a small file keeps its rows");
        let mut read_again = prepared(&path);
        read_again.rows.kept = None;
        let (a, b) = (plan(kept), plan(read_again));
        assert_eq!(a.counts, b.counts);
        assert!(
            a.counts.created > 0 && a.counts.errors > 0,
            "{:?}",
            a.counts
        );
        let outcomes = |p: &Plan| -> Vec<(
            u64,
            Outcome,
            Option<compact_str::CompactString>,
            Option<compact_str::CompactString>,
        )> {
            p.rows
                .iter()
                .map(|r| {
                    (
                        r.line,
                        r.outcome.clone(),
                        r.username.clone(),
                        r.temp_password.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(outcomes(&a), outcomes(&b));

        // Under 2 MiB but more rows than are kept: read twice, planned as before.
        let mut many =
            String::from("custom_id,email,first_name,last_name,role,school_external_id,grade\n");
        for i in 0..=KEEP_ROWS_MAX {
            many += &format!("{i},u{i}@d.org,A,B,Student,S1,5\n");
        }
        assert!((many.len() as u64) < KEEP_ROWS_MAX_BYTES);
        let path = file(&dir, "many.csv", &many);
        let p = prepared(&path);
        assert!(p.rows.kept.is_none(), "too many rows to keep");
        let plan = plan(p);
        assert_eq!(plan.counts.created, KEEP_ROWS_MAX + 1);
        std::fs::remove_dir_all(dir).ok();
    }

    /// A file edited between the two readings is refused, never planned from two versions
    /// (a file too large to keep its rows is read twice).
    #[test]
    fn a_file_that_changes_between_readings_is_refused() {
        let dir = scratch("changed");
        let path = file(&dir, "users.csv", MESSY);
        let replan = |mut p: Prepared| {
            p.rows.kept = None;
            Rows::File(p.rows).plan(
                &CurrentUsers::default(),
                &Source::File("users.csv".into()),
                &Rules::default(),
                &mut Fixed(0),
            )
        };
        let p = prepared(&path);
        let edited = MESSY
            .replace("Bo,Kim", "Bob,Kim")
            .replace("1,a@d.org", "9,a@d.org");
        file(&dir, "users.csv", &edited);
        let err = replan(p).unwrap_err();
        assert!(err.downcast_ref::<FileChanged>().is_some(), "{err}");
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );

        file(&dir, "users.csv", MESSY);
        let p = prepared(&path);
        file(
            &dir,
            "users.csv",
            &format!("{MESSY}7,g@d.org,Gi,Wu,Staff,S1,,\n"),
        );
        let err = replan(p).unwrap_err();
        assert!(err.downcast_ref::<FileChanged>().is_some(), "{err}");
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
