//! The roster engine's SQL (SPEC §6a): read the district's terms, classes and enrollments once,
//! then write a roster plan with `COPY` into temporary tables and set-based statements, and
//! store a run's roster counts and record results. Never a query per row.

use crate::db::audit::Actor;
use crate::db::reconcile::{Chunks, copy_chunks, copy_csv};
use crate::domain::Source;
use crate::domain::roster::EnrollmentRole;
use crate::domain::roster::{
    CurrentClass, CurrentEnrollment, CurrentEnrollments, CurrentTerm, RosterCounts,
    RosterCurrent as Current,
};
use futures::TryStreamExt;
use sqlx::{PgConnection, PgExecutor, Row};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct ClassRow {
    id: Uuid,
    external_id: String,
    school_id: Uuid,
    title: String,
    course_code: String,
    subject: String,
    period: String,
    grades: Vec<String>,
    term_id: Option<Uuid>,
    source: String,
    archived: bool,
}

/// The district's terms, classes (archived included), enrollments and schools.
pub async fn load(conn: &mut PgConnection, district_id: Uuid) -> sqlx::Result<Current> {
    let started = std::time::Instant::now();
    let terms = sqlx::query_as::<_, (Uuid, String, String, Option<Date>, Option<Date>)>(
        "SELECT id, external_id, title, start_date, end_date FROM terms WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(id, external_id, title, start, end)| CurrentTerm {
        id,
        external_id,
        title,
        start,
        end,
    })
    .collect();
    let classes = sqlx::query_as::<_, ClassRow>(
        "SELECT id, external_id, school_id, title, course_code, subject, period, grades, term_id, source,
                archived_at IS NOT NULL AS archived
         FROM classes WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| CurrentClass {
        id: r.id,
        external_id: r.external_id,
        school_id: r.school_id,
        title: r.title,
        course_code: r.course_code,
        subject: r.subject,
        period: r.period,
        grades: r.grades,
        term_id: r.term_id,
        source: Source::from_db(&r.source),
        archived: r.archived,
    })
    .collect();
    // Sized once: growing a vector of three million enrollments by doubling holds the old
    // and the new buffer at once (~330 MiB at 3M).
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM enrollments WHERE district_id = $1")
            .bind(district_id)
            .fetch_one(&mut *conn)
            .await?;
    let mut enrollments = CurrentEnrollments::with_capacity(usize::try_from(count).unwrap_or(0));
    // Decoded by position, the role borrowed from the row: by column name, with a `String`
    // per row, the decoding cost more than the read (as `db::reconcile::load_current`).
    let mut rows = sqlx::query(
        "SELECT class_id, user_id, role, is_primary, begin_date, end_date FROM enrollments WHERE district_id = $1",
    )
    .bind(district_id)
    .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let role: &str = r.try_get_unchecked(2)?;
        enrollments.push(CurrentEnrollment {
            class_id: r.try_get_unchecked(0)?,
            user_id: r.try_get_unchecked(1)?,
            role: EnrollmentRole::from_text(role).unwrap_or(EnrollmentRole::Student),
            primary: r.try_get_unchecked(3)?,
            begin: r.try_get_unchecked(4)?,
            end: r.try_get_unchecked(5)?,
        });
    }
    drop(rows);
    enrollments.seal();
    tracing::debug!(enrollments = enrollments.len(), elapsed = ?started.elapsed(), "rosters::load");
    let schools = crate::db::schools::external_ids(&mut *conn, district_id)
        .await?
        .into_iter()
        .collect();
    Ok(Current {
        terms,
        classes,
        enrollments,
        schools,
    })
}

/// A roster plan's writes, as CSV for each staging table (see `reconcile::roster::writes`
/// for the columns); `None` when there is nothing of that kind.
#[derive(Default)]
pub struct RosterWrites {
    /// `id,external_id,title,start_date,end_date`.
    pub terms: Option<Vec<u8>>,
    /// `kind,id,external_id,school_id,title,course_code,subject,period,grades,term_id,source,
    /// before,after` (grades joined by U+001F).
    pub classes: Option<Vec<u8>>,
    pub archive: Vec<Uuid>,
    /// `class_id,user_id,role,is_primary,begin_date,end_date,before` (`before`: the earlier
    /// row as JSON `role, primary, begin, end`; empty for an enrollment added), a chunk at
    /// a time.
    pub enrollments: Option<Chunks>,
    /// `class_id,user_id`.
    pub ended: Option<Vec<u8>>,
}

/// Refresh the planner's statistics of classes and enrollments, in the run's transaction
/// (its own new rows count): after a first roster sync the tables were otherwise unanalyzed
/// until autovacuum came, and the teacher's and class pages were planned for empty tables.
pub async fn analyze(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("ANALYZE classes, enrollments")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Write a roster plan in the run's transaction (after its users). Unchanged records write
/// nothing; classes are audited (`class.create`, `class.update`, `class.restore`,
/// `class.archive`), enrollments are counted on the run, not audited one by one. Every class
/// and enrollment changed is recorded with its earlier values in `run_roster_changes` (set-
/// based, from the staging tables), for the run's undo.
pub async fn write_plan(
    conn: &mut PgConnection,
    district_id: Uuid,
    w: RosterWrites,
    source: &Source,
    actor: &Actor,
    run_id: Uuid,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, elapsed = ?started.elapsed(), "rosters::write_plan");
    let source_db = source.to_db();
    if let Some(terms) = &w.terms {
        sqlx::query(
            "CREATE TEMP TABLE stage_terms (id uuid, external_id text, title text, start_date date, end_date date)
             ON COMMIT DROP",
        )
        .execute(&mut *conn)
        .await?;
        copy_csv(
            conn,
            "COPY stage_terms FROM STDIN (FORMAT csv, FORCE_NOT_NULL (title))",
            terms,
        )
        .await?;
        sqlx::query(
            "INSERT INTO terms (district_id, id, external_id, title, start_date, end_date, source)
             SELECT $1, s.id, s.external_id, s.title, s.start_date, s.end_date, $2 FROM stage_terms s
             ON CONFLICT (district_id, external_id) DO UPDATE
                SET title = EXCLUDED.title, start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date",
        )
        .bind(district_id)
        .bind(&source_db)
        .execute(&mut *conn)
        .await?;
    }

    step("terms");
    if let Some(classes) = &w.classes {
        sqlx::query(
            "CREATE TEMP TABLE stage_classes (kind text, id uuid, external_id text, school_id uuid, title text,
                course_code text, subject text, period text, grades text, term_id uuid, source text,
                before jsonb, after jsonb) ON COMMIT DROP",
        )
        .execute(&mut *conn)
        .await?;
        copy_csv(
            conn,
            "COPY stage_classes FROM STDIN (FORMAT csv, FORCE_NOT_NULL (title, course_code, subject, period, grades))",
            classes,
        )
        .await?;
        // What the run changes, with the earlier values, for its undo (before the writes).
        sqlx::query(
            "INSERT INTO run_roster_changes (district_id, run_id, kind, class_id, before)
             SELECT $1, $2, CASE s.kind WHEN 'create' THEN 'class_created' WHEN 'update' THEN 'class_updated'
                                        ELSE 'class_restored' END,
                    s.id, CASE WHEN s.kind = 'create' THEN NULL ELSE s.before END
             FROM stage_classes s",
        )
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO classes (district_id, id, external_id, school_id, title, course_code, subject, period, grades,
                                  term_id, source, created_at, updated_at)
             SELECT $1, s.id, s.external_id, s.school_id, s.title, s.course_code, s.subject, s.period,
                    coalesce(string_to_array(nullif(s.grades, ''), E'\\x1f'), '{}'), s.term_id, s.source, $2, $2
             FROM stage_classes s WHERE s.kind = 'create'",
        )
        .bind(district_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE classes c SET external_id = s.external_id, school_id = s.school_id, title = s.title,
                    course_code = s.course_code, subject = s.subject, period = s.period,
                    grades = coalesce(string_to_array(nullif(s.grades, ''), E'\\x1f'), '{}'),
                    term_id = s.term_id, source = s.source,
                    archived_at = CASE WHEN s.kind = 'restore' THEN NULL ELSE c.archived_at END
             FROM stage_classes s
             WHERE c.district_id = $1 AND c.id = s.id AND s.kind IN ('update', 'restore')",
        )
        .bind(district_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (district_id, at, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
             SELECT $1, $2, $3, $4, $5, 'class.' || s.kind, 'class', s.id, $6, s.before, s.after
             FROM stage_classes s",
        )
        .bind(district_id)
        .bind(now)
        .bind(actor.kind)
        .bind(actor.id)
        .bind(&actor.label)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    }

    step("classes");
    if !w.archive.is_empty() {
        sqlx::query(
            "WITH archived AS (
                UPDATE classes SET archived_at = $2
                WHERE district_id = $1 AND id = ANY($3) AND archived_at IS NULL RETURNING id, external_id),
             changes AS (
                INSERT INTO run_roster_changes (district_id, run_id, kind, class_id, before)
                SELECT $1, $7, 'class_archived', a.id, '{\"archived\": false}'::jsonb FROM archived a)
             INSERT INTO audit_log (district_id, at, actor_kind, actor_id, actor_label, action, entity_kind, entity_id, run_id, before, after)
             SELECT $1, $2, $4, $5, $6, 'class.archive', 'class', a.id, $7,
                    jsonb_build_object('external_id', a.external_id, 'archived', false),
                    jsonb_build_object('external_id', a.external_id, 'archived', true)
             FROM archived a",
        )
        .bind(district_id)
        .bind(now)
        .bind(&w.archive)
        .bind(actor.kind)
        .bind(actor.id)
        .bind(&actor.label)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    }

    step("archive");
    if let Some(enrollments) = w.enrollments {
        sqlx::query(
            "CREATE TEMP TABLE stage_enrollments (class_id uuid, user_id uuid, role text, is_primary boolean,
                begin_date date, end_date date, before jsonb) ON COMMIT DROP",
        )
        .execute(&mut *conn)
        .await?;
        copy_chunks(
            conn,
            "COPY stage_enrollments FROM STDIN (FORMAT csv)",
            enrollments,
        )
        .await?;
        step("enrollments staged");
        // Changed ones one row each (with the row before); added ones one row per class,
        // its users in `user_ids` (a first sync adds millions: migration 0035).
        sqlx::query(
            "INSERT INTO run_roster_changes (district_id, run_id, kind, class_id, user_id, before)
             SELECT $1, $2, 'enrollment_changed', s.class_id, s.user_id, s.before
             FROM stage_enrollments s WHERE s.before IS NOT NULL",
        )
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO run_roster_changes (district_id, run_id, kind, class_id, user_ids)
             SELECT $1, $2, 'enrollment_added', s.class_id, array_agg(s.user_id ORDER BY s.user_id)
             FROM stage_enrollments s WHERE s.before IS NULL
             GROUP BY s.class_id ORDER BY s.class_id",
        )
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        step("enrollment changes");
        // Added ones (the plan read the district's enrollments under the run's lock: none of
        // them is there) inserted plainly, changed ones updated.
        sqlx::query(
            "INSERT INTO enrollments (district_id, class_id, user_id, role, is_primary, begin_date, end_date, created_at)
             SELECT $1, s.class_id, s.user_id, s.role, s.is_primary, s.begin_date, s.end_date, $2
             FROM stage_enrollments s WHERE s.before IS NULL",
        )
        .bind(district_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE enrollments e SET role = s.role, is_primary = s.is_primary,
                    begin_date = s.begin_date, end_date = s.end_date
             FROM stage_enrollments s
             WHERE s.before IS NOT NULL AND e.district_id = $1 AND e.class_id = s.class_id AND e.user_id = s.user_id",
        )
        .bind(district_id)
        .execute(&mut *conn)
        .await?;
    }

    step("enrollments");
    if let Some(ended) = &w.ended {
        sqlx::query("CREATE TEMP TABLE stage_ended (class_id uuid, user_id uuid) ON COMMIT DROP")
            .execute(&mut *conn)
            .await?;
        copy_csv(conn, "COPY stage_ended FROM STDIN (FORMAT csv)", ended).await?;
        sqlx::query(
            "WITH gone AS (
                DELETE FROM enrollments e USING stage_ended s
                WHERE e.district_id = $1 AND e.class_id = s.class_id AND e.user_id = s.user_id
                RETURNING e.class_id, e.user_id, e.role, e.is_primary, e.begin_date, e.end_date)
             INSERT INTO run_roster_changes (district_id, run_id, kind, class_id, user_id, before)
             SELECT $1, $2, 'enrollment_ended', g.class_id, g.user_id,
                    jsonb_build_object('role', g.role, 'primary', g.is_primary, 'begin', g.begin_date, 'end', g.end_date)
             FROM gone g",
        )
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    }
    step("ended");
    Ok(())
}

/// Store a run's roster record results (CSV `district_id,run_id,seq,kind,file,line,outcome,
/// class_id,user_id,key,changed,error`, replacing earlier ones) and counts.
pub async fn store_results(
    conn: &mut PgConnection,
    district_id: Uuid,
    run_id: Uuid,
    rows: Option<Chunks>,
    counts: &RosterCounts,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM run_roster_rows WHERE district_id = $1 AND run_id = $2")
        .bind(district_id)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    if let Some(rows) = rows {
        copy_chunks(
            conn,
            "COPY run_roster_rows (district_id, run_id, seq, kind, file, line, outcome, class_id, user_id, key, changed, error)
             FROM STDIN (FORMAT csv, FORCE_NOT_NULL (file, key))",
            rows,
        )
        .await?;
    }
    store_counts(&mut *conn, district_id, run_id, counts).await?;
    Ok(())
}

/// A run's roster counts.
pub async fn store_counts(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
    c: &RosterCounts,
) -> sqlx::Result<()> {
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    sqlx::query(
        "UPDATE runs SET classes_created = $3, classes_updated = $4, classes_unchanged = $5, classes_restored = $6,
                classes_archived = $7, enrollments_added = $8, enrollments_changed = $9,
                enrollments_unchanged = $10, enrollments_ended = $11, roster_errors = $12
         WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(n(c.classes_created))
    .bind(n(c.classes_updated))
    .bind(n(c.classes_unchanged))
    .bind(n(c.classes_restored))
    .bind(n(c.classes_archived))
    .bind(n(c.enrollments_added))
    .bind(n(c.enrollments_changed))
    .bind(n(c.enrollments_unchanged))
    .bind(n(c.enrollments_ended))
    .bind(n(c.roster_errors))
    .execute(db)
    .await?;
    Ok(())
}

/// A run's roster counts as stored.
/// A run's ten roster counts, in the order of `counts`' SELECT.
type CountsRow = (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32);

pub async fn counts(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<RosterCounts> {
    let row: Option<CountsRow> = sqlx::query_as(
        "SELECT classes_created, classes_updated, classes_unchanged, classes_restored, classes_archived,
                enrollments_added, enrollments_changed, enrollments_unchanged, enrollments_ended, roster_errors
         FROM runs WHERE district_id = $1 AND id = $2",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch_optional(db)
    .await?;
    let u = |v: i32| usize::try_from(v).unwrap_or(0);
    Ok(row.map_or_else(RosterCounts::default, |r| RosterCounts {
        classes_created: u(r.0),
        classes_updated: u(r.1),
        classes_unchanged: u(r.2),
        classes_restored: u(r.3),
        classes_archived: u(r.4),
        enrollments_added: u(r.5),
        enrollments_changed: u(r.6),
        enrollments_unchanged: u(r.7),
        enrollments_ended: u(r.8),
        roster_errors: u(r.9),
    }))
}

/// One stored roster record result.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RosterRow {
    pub kind: String,
    pub file: String,
    pub line: i64,
    pub outcome: String,
    pub class_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub key: String,
    pub changed: Vec<String>,
    pub error: Option<String>,
}

/// A run's roster record results in line order (a record's lines in feed order), errors
/// only when `errors_only`, streamed (a roster CSV's files merge them with its lines).
pub fn rows_by_line<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
    errors_only: bool,
) -> futures::stream::BoxStream<'a, sqlx::Result<RosterRow>> {
    sqlx::query_as(
        "SELECT kind, file, line, outcome, class_id, user_id, key, changed, error FROM run_roster_rows
         WHERE district_id = $1 AND run_id = $2 AND (NOT $3 OR outcome = 'error')
         ORDER BY line, seq",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(errors_only)
    .fetch(db)
}

/// One class in a run's completed file (SPEC §6a): the class's result as the run stored it,
/// with what the class is called now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassResultRow {
    pub external_id: String,
    pub class_id: Option<Uuid>,
    pub title: String,
    pub school_external_id: String,
    pub term: String,
    pub outcome: String,
    pub changed: Vec<String>,
}

/// The classes a run stored a result for, without errors, in feed order, streamed (a
/// sync stores no row for a class it left unchanged).
pub fn class_results<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
) -> futures::stream::BoxStream<'a, sqlx::Result<ClassResultRow>> {
    sqlx::query_as(
        "SELECT coalesce(c.external_id, r.key) AS external_id, r.class_id,
                coalesce(c.title, '') AS title, coalesce(s.external_id, '') AS school_external_id,
                coalesce(t.title, '') AS term, r.outcome, r.changed
         FROM run_roster_rows r
         LEFT JOIN classes c ON c.district_id = r.district_id AND c.id = r.class_id
         LEFT JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
         LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
         WHERE r.district_id = $1 AND r.run_id = $2 AND r.kind = 'class' AND r.outcome <> 'error'
         ORDER BY r.seq",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch(db)
}

/// A run's roster errors in feed order, the first `limit` (all with `None`), streamed (a
/// set's error file lists them all; the run page the first hundred).
pub fn error_rows<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
    limit: Option<i64>,
) -> futures::stream::BoxStream<'a, sqlx::Result<RosterRow>> {
    sqlx::query_as(
        "SELECT kind, file, line, outcome, class_id, user_id, key, changed, error FROM run_roster_rows
         WHERE district_id = $1 AND run_id = $2 AND outcome = 'error' ORDER BY seq LIMIT $3",
    )
    .bind(district_id)
    .bind(run_id)
    .bind(limit)
    .fetch(db)
}

/// One enrollment a run wrote, for its completed file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrollmentChangeRow {
    pub class_external_id: String,
    pub class_id: Uuid,
    pub user_id: Uuid,
    pub custom_id: String,
    pub kind: String,
}

/// The enrollments a run added, changed or ended (its recorded changes: a preview or a
/// run held for review wrote none), in the order written, streamed; added enrollments
/// recorded one row per class are read one per user.
pub fn enrollment_changes<'a>(
    db: impl PgExecutor<'a> + 'a,
    district_id: Uuid,
    run_id: Uuid,
) -> futures::stream::BoxStream<'a, sqlx::Result<EnrollmentChangeRow>> {
    sqlx::query_as(
        "SELECT coalesce(c.external_id, '') AS class_external_id, ch.class_id, e.user_id,
                coalesce(u.custom_id, '') AS custom_id, ch.kind
         FROM run_roster_changes ch
         CROSS JOIN LATERAL unnest(coalesce(ch.user_ids, ARRAY[ch.user_id])) WITH ORDINALITY
              AS e(user_id, n)
         LEFT JOIN classes c ON c.district_id = ch.district_id AND c.id = ch.class_id
         LEFT JOIN users u ON u.district_id = ch.district_id AND u.id = e.user_id
         WHERE ch.district_id = $1 AND ch.run_id = $2
           AND ch.kind IN ('enrollment_added', 'enrollment_changed', 'enrollment_ended')
           AND e.user_id IS NOT NULL
         ORDER BY ch.id, e.n",
    )
    .bind(district_id)
    .bind(run_id)
    .fetch(db)
}
