//! The reconcile engine's SQL: read the district's users once (or, for a run planned window
//! by window, the users each window names, by arrays of keys), then write a whole plan with
//! `COPY` into temporary tables and set-based statements. Never a query per row.

use crate::db::audit::Actor;
use crate::domain::fold::fold_case;
use crate::domain::windows::{SweepFound, WindowKeys};
use crate::domain::{CurrentUsers, Field, Grade, Role, Scope, Source, UserParts, UserStatus};
use compact_str::CompactString;
use futures::TryStreamExt;
use sqlx::{PgConnection, Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// Serialise runs of one district: held until the transaction ends.
pub async fn lock_district(
    tx: &mut Transaction<'_, Postgres>,
    district_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('rollcall-district:' || $1::text, 0))",
    )
    .bind(district_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// [`lock_district`] without waiting: `false` when another transaction holds it.
pub async fn try_lock_district(
    tx: &mut Transaction<'_, Postgres>,
    district_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('rollcall-district:' || $1::text, 0))",
    )
    .bind(district_id)
    .fetch_one(&mut **tx)
    .await
}

/// How many users the district has, archived included: the sum migration 0023's triggers
/// keep, not a `count(*)` over every user (that pass took 4-5 ms of a 10,000-user no-op,
/// issue 19).
pub async fn user_count(conn: &mut PgConnection, district_id: Uuid) -> sqlx::Result<usize> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT coalesce(sum(n), 0)::bigint FROM user_count_deltas WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The columns [`push_user`] reads, in its order.
const USER_COLUMNS: &str = "u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name, u.last_name, u.role, u.grade,
                u.position, u.status, u.archived_at IS NOT NULL AS archived, u.source, u.source_key, u.prevent_archiving,
                u.portal_role, u.kept_fields, u.feed_password_mac";

/// One row of [`USER_COLUMNS`] packed into `out`, in `schools` (external IDs; sorted here).
/// Each value is decoded by position and borrowed from the row: no `CurrentUser` nor a
/// `String` per column built for every user (decoding by column name and copying each value
/// took most of the load's time, issue 19).
fn push_user(
    out: &mut CurrentUsers,
    r: &sqlx::postgres::PgRow,
    sources: &mut hashbrown::HashMap<String, Source>,
    schools: &mut [&str],
) -> sqlx::Result<()> {
    schools.sort_unstable();
    let id: Uuid = r.try_get_unchecked(0)?;
    let source: &str = r.try_get_unchecked(12)?;
    if !sources.contains_key(source) {
        sources.insert(source.to_string(), Source::from_db(source));
    }
    let email: Option<&str> = r.try_get_unchecked(2)?;
    let role: &str = r.try_get_unchecked(7)?;
    let grade: &str = r.try_get_unchecked(8)?;
    let status: UserStatus = r.try_get_unchecked(10)?;
    let kept: Vec<String> = r.try_get_unchecked(16)?;
    let mac: Option<&[u8]> = r.try_get_unchecked(17)?;
    out.push_parts(
        &UserParts {
            user_guid: id,
            custom_id: r.try_get_unchecked(1)?,
            // Stored lower-cased; folded again in case an older row is not.
            email: email.map(fold_case).as_deref(),
            username: r.try_get_unchecked(3)?,
            first_name: r.try_get_unchecked(4)?,
            middle_name: r.try_get_unchecked(5)?,
            last_name: r.try_get_unchecked(6)?,
            position: r.try_get_unchecked(9)?,
            source_key: r.try_get_unchecked(13)?,
            source: &sources[source],
            feed_password_mac: mac.and_then(|m| <&[u8; 32]>::try_from(m).ok()),
            // Names no longer known are ignored (nothing to keep them against).
            kept: kept
                .iter()
                .filter_map(|name| Field::from_name(name))
                .collect(),
            role: Role::parse(role).unwrap_or(Role::Staff),
            grade: Grade::parse(grade).unwrap_or(Grade::UNSPECIFIED),
            status: status.into(),
            portal_role: r.try_get_unchecked(15)?,
            archived: r.try_get_unchecked(11)?,
            prevent_archiving: r.try_get_unchecked(14)?,
        },
        schools.iter().copied(),
    );
    Ok(())
}

/// Every user of the district (archived included), in one streamed read.
pub async fn load_current(
    conn: &mut PgConnection,
    district_id: Uuid,
) -> sqlx::Result<CurrentUsers> {
    // Sized once: growing a vector of a million users by doubling holds two copies at once.
    let count = user_count(conn, district_id).await?;
    load_users(conn, district_id, count).await
}

/// The district's users, `count` of them.
async fn load_users(
    conn: &mut PgConnection,
    district_id: Uuid,
    count: usize,
) -> sqlx::Result<CurrentUsers> {
    let mut out = CurrentUsers::with_capacity(count);
    // Memberships and users are read by two plain scans and joined here: a join in SQL is
    // planned from statistics, and right after a first large import (before autovacuum has
    // analysed the new rows) it was planned as a nested loop that ran for many minutes.
    let mut school_ids: Vec<CompactString> = Vec::new();
    let schools: hashbrown::HashMap<Uuid, u32> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT id, external_id FROM schools WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(id, external_id)| {
        school_ids.push(CompactString::from(external_id));
        (id, (school_ids.len() - 1) as u32)
    })
    .collect();
    // Most users have one school: sized for that, not grown by doubling. Each membership is
    // the user's id as bytes and the school's index in `school_ids`: 20 bytes, where two
    // UUIDs took 32 (~12 MB less at a million users, held while the users load; issue 19).
    let mut memberships: Vec<([u8; 16], u32)> = Vec::with_capacity(count);
    let mut rows = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT user_id, school_id FROM user_schools WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch(&mut *conn);
    while let Some((user, school)) = rows.try_next().await? {
        if let Some(&at) = schools.get(&school) {
            memberships.push((user.into_bytes(), at));
        }
    }
    drop(rows);
    memberships.sort_unstable();
    let mut sources: hashbrown::HashMap<String, Source> = hashbrown::HashMap::new();
    let mut user_schools: Vec<&str> = Vec::new();
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.district_id = $1");
    let mut rows = sqlx::query(&sql).bind(district_id).fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let id: Uuid = r.try_get_unchecked(0)?;
        let key = id.as_bytes();
        let from = memberships.partition_point(|(u, _)| u < key);
        user_schools.clear();
        user_schools.extend(
            memberships[from..]
                .iter()
                .take_while(|(u, _)| u == key)
                .map(|&(_, at)| school_ids[at as usize].as_str()),
        );
        push_user(&mut out, &r, &mut sources, &mut user_schools)?;
    }
    out.shrink_to_fit();
    Ok(out)
}

/// Ready the run's transaction to plan window by window: its many short queries are
/// planned with estimates far above their cost, and compiling them (JIT) took longer than
/// running them (60-130 ms a window's query).
pub async fn begin_windows(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SET LOCAL jit = off")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The users of the district that `keys` name (by GUID, custom_id, email or username) but
/// for those among `except` (a window's users: `plan::Windows`). Each kind of key is one
/// scan over its keys (`= ANY` of an array), each user's schools one probe of the primary
/// key of `user_schools`: the work grows with the window, not with the district.
pub async fn window_users(
    conn: &mut PgConnection,
    district_id: Uuid,
    keys: &WindowKeys,
    except: &CurrentUsers,
) -> sqlx::Result<CurrentUsers> {
    let mut out = CurrentUsers::default();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut arms = Vec::new();
    for (asked, filter) in [
        (!keys.guids.is_empty(), "u.id = ANY($2)"),
        (!keys.custom_ids.is_empty(), "u.custom_id = ANY($3)"),
        (!keys.emails.is_empty(), "lower(u.email) = ANY($4)"),
        (!keys.usernames.is_empty(), "lower(u.username) = ANY($5)"),
    ] {
        if asked {
            arms.push(format!(
                "SELECT {USER_COLUMNS},
                        ARRAY(SELECT us.school_id FROM user_schools us
                              WHERE us.district_id = u.district_id AND us.user_id = u.id) AS schools
                 FROM users u WHERE u.district_id = $1 AND {filter}"
            ));
        }
    }
    // Every parameter is named (so typed), whichever arms ask for it.
    let sql = format!(
        "SELECT * FROM ({}) found
         WHERE cardinality($2::uuid[]) + cardinality($3::text[]) + cardinality($4::text[]) + cardinality($5::text[]) >= 0",
        arms.join(" UNION ALL ")
    );
    let schools: std::collections::HashMap<Uuid, String> =
        sqlx::query_as("SELECT id, external_id FROM schools WHERE district_id = $1")
            .bind(district_id)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut seen: hashbrown::HashSet<Uuid> = (0..except.len()).map(|i| except.guid(i)).collect();
    let mut sources: hashbrown::HashMap<String, Source> = hashbrown::HashMap::new();
    let mut rows = sqlx::query(&sql)
        .bind(district_id)
        .bind(&keys.guids)
        .bind(&keys.custom_ids)
        .bind(&keys.emails)
        .bind(&keys.usernames)
        .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let id: Uuid = r.try_get_unchecked(0)?;
        // A user found by two keys comes twice.
        if !seen.insert(id) {
            continue;
        }
        let ids: Vec<Uuid> = r.try_get_unchecked(18)?;
        let mut user_schools: Vec<&str> = ids
            .iter()
            .filter_map(|id| schools.get(id).map(String::as_str))
            .collect();
        push_user(&mut out, &r, &mut sources, &mut user_schools)?;
    }
    Ok(out)
}

/// How many users a feed of `source` with `scope` covers (not archived; of the source, or
/// every file and manual user for [`Scope::District`]): the guard's measure.
pub async fn scope_total(
    conn: &mut PgConnection,
    district_id: Uuid,
    source: &Source,
    scope: Scope,
) -> sqlx::Result<usize> {
    let owner = match scope {
        Scope::Source | Scope::Patch => "source = $2",
        Scope::District => "source NOT LIKE 'sync:%' AND $2::text IS NOT NULL",
    };
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM users WHERE district_id = $1 AND archived_at IS NULL AND {owner}"
    ))
    .bind(district_id)
    .bind(source.to_db())
    .fetch_one(&mut *conn)
    .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Does the run archive this user in scope: `(user, may_archive, custom_id, email)` (see
/// [`sweep`]).
pub type Archives<'a> = dyn Fn(Uuid, bool, Option<&str>, Option<&str>) -> bool + Sync + 'a;

/// What the sweep of a feed planned in windows needs (`plan::SweepFound`): the users in
/// scope, per school, and which of them the run archives. `school`: a file for one school
/// (its external ID); `identifiers`: give `archives` each user's custom_id and email (files
/// of other sources wait in the queue). `archives(user, may_archive, custom_id, email)`
/// tells, for each user in scope, whether the run archives them; `may_archive`: the user
/// is not `prevent_archiving` and not a portal admin. One streamed pass over the users in
/// scope; only the archived are kept (16 bytes each). No `archives` (the run archives
/// nobody: a patch without `to_be_deleted` rows): the users in scope are only counted.
pub async fn sweep(
    conn: &mut PgConnection,
    district_id: Uuid,
    source: &Source,
    scope: Scope,
    school: Option<&str>,
    identifiers: bool,
    archives: Option<&Archives<'_>>,
) -> sqlx::Result<SweepFound> {
    let owner = match scope {
        Scope::Source | Scope::Patch => "u.source = $2",
        Scope::District => "u.source NOT LIKE 'sync:%' AND $2::text IS NOT NULL",
    };
    // A one-school file covers the users of that school and no other (`SchoolOnly::covers`).
    let one_school = "($3::text IS NULL OR (
            EXISTS (SELECT 1 FROM user_schools us JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
                    WHERE us.district_id = u.district_id AND us.user_id = u.id AND s.external_id = $3)
        AND NOT EXISTS (SELECT 1 FROM user_schools us JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
                    WHERE us.district_id = u.district_id AND us.user_id = u.id AND s.external_id <> $3)))";
    let in_scope =
        format!("u.district_id = $1 AND u.archived_at IS NULL AND {owner} AND {one_school}");
    let source_db = source.to_db();
    let mut found = SweepFound::default();
    let Some(archives) = archives else {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users u WHERE {in_scope}"))
            .bind(district_id)
            .bind(&source_db)
            .bind(school)
            .fetch_one(&mut *conn)
            .await?;
        found.scope_total = usize::try_from(n).unwrap_or(0);
        return Ok(found);
    };
    let sql = format!(
        "SELECT u.id, NOT u.prevent_archiving AND u.portal_role = 'user',
                CASE WHEN $4 THEN u.custom_id END, CASE WHEN $4 THEN u.email END
         FROM users u WHERE {in_scope}"
    );
    let mut rows = sqlx::query_as::<_, (Uuid, bool, Option<String>, Option<String>)>(&sql)
        .bind(district_id)
        .bind(&source_db)
        .bind(school)
        .bind(identifiers)
        .fetch(&mut *conn);
    while let Some((user, may_archive, custom_id, email)) = rows.try_next().await? {
        found.scope_total += 1;
        if archives(user, may_archive, custom_id.as_deref(), email.as_deref()) {
            found.archived.push(user);
        }
    }
    drop(rows);
    // The guard weighs each school's archived users against its users in scope: counted
    // only when someone is archived (a run that archives nobody skips a join over every
    // user in scope, 0.6 s at a million users).
    if found.archived.is_empty() {
        return Ok(found);
    }
    found.school_totals = sqlx::query_as::<_, (String, i64)>(&format!(
        "SELECT s.external_id, count(*)
         FROM users u
         JOIN user_schools us ON us.district_id = u.district_id AND us.user_id = u.id
         JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
         WHERE {in_scope}
         GROUP BY s.external_id"
    ))
    .bind(district_id)
    .bind(&source_db)
    .bind(school)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(id, n)| (id, usize::try_from(n).unwrap_or(0)))
    .collect();
    found.school_archived = sqlx::query_as::<_, (String, i64)>(
        "SELECT s.external_id, count(*) FROM user_schools us
         JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
         WHERE us.district_id = $1 AND us.user_id = ANY($2)
         GROUP BY s.external_id",
    )
    .bind(district_id)
    .bind(&found.archived)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(id, n)| (id, usize::try_from(n).unwrap_or(0)))
    .collect();
    Ok(found)
}

/// Stream CSV text into `COPY … FROM STDIN`, in chunks.
pub async fn copy_csv(conn: &mut PgConnection, statement: &str, csv: &[u8]) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in csv.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await
}

/// CSV for a `COPY`, produced a chunk at a time.
pub type Chunks = Box<dyn Iterator<Item = csv::Result<Vec<u8>>> + Send>;

/// Feed `COPY … FROM STDIN` from `chunks`, encoded on a blocking thread while PostgreSQL
/// takes the previous chunk (a small bounded queue between them keeps memory flat).
pub async fn copy_chunks(
    conn: &mut PgConnection,
    statement: &str,
    chunks: Chunks,
) -> anyhow::Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let producer = tokio::task::spawn_blocking(move || -> csv::Result<()> {
        for chunk in chunks {
            if tx.blocking_send(chunk?).is_err() {
                break; // the COPY ended early (a database error): stop encoding
            }
        }
        Ok(())
    });
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut sent: anyhow::Result<()> = Ok(());
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = copy.send(chunk).await {
            sent = Err(e.into());
            break;
        }
    }
    drop(rx);
    let produced = producer.await;
    match (sent, produced) {
        (Ok(()), Ok(Ok(()))) => Ok(copy.finish().await?),
        (Err(e), _) => {
            let _ = copy.abort("rollcall: sending failed").await;
            Err(e)
        }
        (Ok(()), Ok(Err(e))) => {
            let _ = copy.abort("rollcall: encoding failed").await;
            Err(e.into())
        }
        (Ok(()), Err(join)) => {
            let _ = copy.abort("rollcall: encoder panicked").await;
            Err(join.into())
        }
    }
}

/// Separates school external IDs in a staged row (a character no ID contains).
pub const SCHOOL_SEP: char = '\u{1f}';

/// A plan's writes, as CSV chunks for each table (see `reconcile::apply` for the columns).
pub struct PlanWrites {
    /// `users` rows of created users.
    pub new_users: Chunks,
    /// `user_schools` rows of created users.
    pub new_memberships: Chunks,
    /// `audit_log` rows of created users.
    pub new_audit: Chunks,
    /// `stage_users` rows of updated and restored users, and how many; `None` when there are
    /// none.
    pub changes: Option<(Chunks, usize)>,
    /// The run creates many users compared with the district's count: refresh the planner's
    /// statistics of `users` and `user_schools` before the commit, so the next statements
    /// (the next run's read, the Users screen) are not planned for an empty district.
    pub analyze: bool,
}

/// Write a plan in the run's transaction. Created users are `COPY`ed straight into `users`,
/// `user_schools` and `audit_log`. Updated and restored users are `COPY`ed into a staging
/// table (`kind,id,custom_id,email,username,first_name,middle_name,last_name,role,grade,
/// position,status,source,source_key,prevent_archiving,schools,before,after,password_hash,
/// feed_password_mac`, empty text =
/// NULL for optional columns, `schools` joined by [`SCHOOL_SEP`]) and applied with set-based
/// `UPDATE … FROM` / `DELETE … USING` / `INSERT … SELECT`. Then `archive` is archived.
pub async fn write_plan(
    tx: &mut Transaction<'_, Postgres>,
    district_id: Uuid,
    writes: PlanWrites,
    archive: &[Uuid],
    actor: &Actor,
    run_id: Uuid,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let conn: &mut PgConnection = tx;
    // Let the search index queue a large run's entries and merge them in bulk.
    sqlx::query("SET LOCAL gin_pending_list_limit = '256MB'")
        .execute(&mut *conn)
        .await?;
    let started = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, elapsed = ?started.elapsed(), rss_mib = %crate::telemetry::rss_mib(), "write_plan");

    copy_chunks(
        conn,
        "COPY users (district_id, id, custom_id, email, username, first_name, middle_name, last_name, role, grade,
                     position, status, source, source_key, prevent_archiving, password_hash, password_temporary,
                     password_set_at, created_at, updated_at, feed_password_mac)
         FROM STDIN (FORMAT csv, FORCE_NOT_NULL (username, first_name, middle_name, last_name, grade, position))",
        writes.new_users,
    )
    .await?;
    step("insert users");

    if let Some((changes, n)) = writes.changes {
        write_changes(conn, district_id, changes, n, actor, run_id, now).await?;
        step("changes");
    }

    copy_chunks(
        conn,
        "COPY user_schools (district_id, user_id, school_id) FROM STDIN (FORMAT csv)",
        writes.new_memberships,
    )
    .await?;
    step("memberships");

    copy_chunks(
        conn,
        "COPY audit_log (district_id, at, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
         FROM STDIN (FORMAT csv)",
        writes.new_audit,
    )
    .await?;
    step("audit");

    if writes.analyze {
        // Counts this transaction's own new rows (ANALYZE samples them as live); the
        // statistics become visible to others at commit, with the rows. Only the columns the
        // district's statements filter on: the table's and indexes' sizes are refreshed all
        // the same, and skipping the text columns and index expressions (names, emails, the
        // search text) makes it 4-6x cheaper (~85 vs ~450 ms at 30,000 users); autovacuum
        // analyzes the rest after the commit. `id` is among them: without its statistics a
        // lookup of one user by `(district_id, id)` was estimated at 0.5% of the district
        // (500 rows at 100,000), and a correlated subquery on `u.id` was planned as a hash
        // over every class (`db::users::member`, issue 15).
        sqlx::query(
            "ANALYZE users (id, district_id, role, status, archived_at, source, grade), user_schools",
        )
        .execute(&mut *conn)
        .await?;
        step("analyze");
    }

    if !archive.is_empty() {
        sqlx::query(
            "WITH archived AS (
                UPDATE users SET archived_at = $2, version = version + 1
                WHERE district_id = $1 AND id = ANY($3) AND archived_at IS NULL RETURNING id)
             INSERT INTO audit_log (district_id, at, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
             SELECT $1, $2, $4, $5, $6, 'user.archive', 'user', a.id, $7, '{\"archived\": false}', '{\"archived\": true}' FROM archived a",
        )
        .bind(district_id)
        .bind(now)
        .bind(archive)
        .bind(actor.kind)
        .bind(actor.id)
        .bind(&actor.label)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        step("archive");
    }
    Ok(())
}

/// From this many staged rows on, `stage_users` is analyzed before it is joined.
const STAGE_ANALYZE_MIN: usize = 2_000;

/// Updated and restored users: staged, then set-based statements. Memberships are rewritten
/// only for users whose schools changed (`after` names `school_external_id`).
async fn write_changes(
    conn: &mut PgConnection,
    district_id: Uuid,
    changes: Chunks,
    n: usize,
    actor: &Actor,
    run_id: Uuid,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TEMP TABLE stage_users (kind text, id uuid, custom_id text, email text, username text, first_name text,
            middle_name text, last_name text, role text, grade text, position text, status text, source text,
            source_key text, prevent_archiving boolean, schools text, before jsonb, after jsonb,
            password_hash text, feed_password_mac bytea) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    copy_chunks(conn, "COPY stage_users FROM STDIN (FORMAT csv)", changes).await?;
    // Fresh statistics, so the planner joins many staged rows by hash, not row by row. A
    // few hundred are best joined row by row through the keys, which the planner picks from
    // the table's size alone (ANALYZE took 2.7 ms of a 500-row update).
    if n >= STAGE_ANALYZE_MIN {
        sqlx::query("ANALYZE stage_users")
            .execute(&mut *conn)
            .await?;
    }

    sqlx::query(
        "UPDATE users u SET custom_id = nullif(s.custom_id, ''), email = nullif(s.email, ''), username = s.username,
                first_name = coalesce(s.first_name, ''), middle_name = coalesce(s.middle_name, ''),
                last_name = coalesce(s.last_name, ''), role = s.role, grade = coalesce(s.grade, 'Unspecified'),
                position = coalesce(s.position, ''), status = s.status, source = s.source,
                source_key = nullif(s.source_key, ''), prevent_archiving = s.prevent_archiving,
                archived_at = CASE WHEN s.kind = 'restore' THEN NULL ELSE u.archived_at END,
                password_hash = coalesce(s.password_hash, u.password_hash),
                password_temporary = CASE WHEN s.password_hash IS NULL THEN u.password_temporary ELSE false END,
                password_set_at = CASE WHEN s.password_hash IS NULL THEN u.password_set_at ELSE $2 END,
                feed_password_mac = coalesce(s.feed_password_mac, u.feed_password_mac),
                version = u.version + 1
         FROM stage_users s
         WHERE u.district_id = $1 AND u.id = s.id",
    )
    .bind(district_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "DELETE FROM user_schools us USING stage_users s, schools sc
         WHERE us.district_id = $1 AND us.user_id = s.id AND s.after ? 'school_external_id'
           AND sc.district_id = $1 AND sc.id = us.school_id
           AND NOT (sc.external_id = ANY (string_to_array(coalesce(s.schools, ''), E'\\x1f')))",
    )
    .bind(district_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO user_schools (district_id, user_id, school_id)
         SELECT $1, s.id, sc.id
         FROM stage_users s
         CROSS JOIN LATERAL unnest(string_to_array(nullif(s.schools, ''), E'\\x1f')) AS e(external_id)
         JOIN schools sc ON sc.district_id = $1 AND sc.external_id = e.external_id
         WHERE s.after ? 'school_external_id'
         ON CONFLICT DO NOTHING",
    )
    .bind(district_id)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "INSERT INTO audit_log (district_id, at, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
         SELECT $1, $2, $3, $4, $5, CASE s.kind WHEN 'restore' THEN 'user.restore' ELSE 'user.update' END,
                'user', s.id, $6, s.before, s.after
         FROM stage_users s",
    )
    .bind(district_id)
    .bind(now)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .bind(run_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
