//! The upload history (`/uploads`): keyset pages of 50 past the old cap of 100, its filters
//! (status, kind, source, dates), sources named for people, and dismissing a file that
//! waits for its columns to be mapped.

use crate::helpers::*;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// The runs a history page lists, in order.
fn run_ids(body: &str) -> Vec<Uuid> {
    body.split("data-run=\"")
        .skip(1)
        .map(|c| c[..36].parse().unwrap())
        .collect()
}

fn next_link(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\" id=\"next\"")?;
    let before = &body[..at];
    let href = before.rfind("href=\"")? + "href=\"".len();
    let end = before[href..].find('"')? + href;
    Some(
        before[href..end]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

async fn walk(c: &Client, first: &str) -> (Vec<Uuid>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut path = Some(first.to_string());
    while let Some(p) = path {
        let page = c.get(&p).await;
        assert_eq!(page.status, 200, "{p}: {}", page.body);
        let ids = run_ids(&page.body);
        assert!(ids.len() <= 50, "50 a page at most");
        all.extend(ids);
        pages += 1;
        path = next_link(&page.body);
    }
    (all, pages)
}

/// `n` runs straight into `runs`: received two a second (ties on received_at), cycling
/// through statuses, kinds and sources, on the days from 2026-05-01.
async fn seed(app: &TestApp, district: Uuid, sync: Uuid, n: i64) {
    sqlx::query(
        "INSERT INTO runs (district_id, id, kind, source, file_name, status, submitted_kind, submitted_by, received_at)
         SELECT $1, gen_random_uuid(),
                (ARRAY['upload', 'api', 'drop', 'sync'])[i % 4 + 1],
                CASE WHEN i % 4 = 3 THEN 'sync:' || $2::text ELSE 'file:f' || (i % 3) || '.csv' END,
                CASE WHEN i % 4 = 3 THEN NULL ELSE 'f' || (i % 3) || '.csv' END,
                (ARRAY['completed', 'failed', 'needs_review', 'completed_with_errors', 'cancelled'])[i % 5 + 1],
                'user', 'seed@d.org',
                timestamptz '2026-05-01 08:00:00+00' + (i / 2) * interval '1 hour'
         FROM generate_series(0, $3 - 1) AS i",
    )
    .bind(district)
    .bind(sync)
    .bind(n)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn env_with_runs(pool: PgPool, n: i64) -> (UploadEnv, Uuid) {
    let env = UploadEnv::new(pool).await;
    let r = env
        .c
        .post(
            "/syncs",
            &[("kind", "oneroster_csv"), ("name", "District SIS")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let sync: Uuid = r.location.unwrap()["/syncs/".len()..].parse().unwrap();
    seed(&env.app, env.district.id, sync, n).await;
    (env, sync)
}

async fn count(app: &TestApp, district: Uuid, cond: &str) -> usize {
    sqlx::query_scalar::<_, i64>(&format!(
        "SELECT count(*) FROM runs WHERE district_id = $1 AND {cond}"
    ))
    .bind(district)
    .fetch_one(&app.pool)
    .await
    .unwrap() as usize
}

#[sqlx::test(migrations = "./migrations")]
async fn the_history_pages_past_a_hundred_runs_without_duplicates_or_gaps(pool: PgPool) {
    let (env, _) = env_with_runs(pool, 163).await;
    let (ids, pages) = walk(&env.c, "/uploads").await;
    assert_eq!(ids.len(), 163, "every run, not the last 100");
    assert_eq!(pages, 4);
    let distinct: HashSet<&Uuid> = ids.iter().collect();
    assert_eq!(distinct.len(), 163, "no run twice");
    // Newest first, ties by id: the order the database gives for the same key.
    let expected: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM runs WHERE district_id = $1 ORDER BY received_at DESC, id DESC",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(ids, expected);
    assert_eq!(env.c.get("/uploads?after=nonsense").await.status, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn each_filter_narrows_the_history(pool: PgPool) {
    let (env, sync) = env_with_runs(pool, 120).await;
    let (c, d, app) = (&env.c, env.district.id, &env.app);
    let (failed, _) = walk(c, "/uploads?status=failed").await;
    assert_eq!(failed.len(), count(app, d, "status = 'failed'").await);
    assert!(!failed.is_empty());
    let (drops, _) = walk(c, "/uploads?kind=drop").await;
    assert_eq!(drops.len(), count(app, d, "kind = 'drop'").await);
    let (f1, _) = walk(c, "/uploads?source=file%3Af1.csv").await;
    assert_eq!(f1.len(), count(app, d, "source = 'file:f1.csv'").await);
    let (synced, _) = walk(c, &format!("/uploads?source=sync%3A{sync}")).await;
    assert_eq!(synced.len(), 30);
    let (day, _) = walk(c, "/uploads?from=2026-05-02&to=2026-05-02").await;
    assert_eq!(
        day.len(),
        count(
            app,
            d,
            "received_at >= '2026-05-02T00:00:00Z' AND received_at < '2026-05-03T00:00:00Z'"
        )
        .await
    );
    assert_eq!(day.len(), 48, "two a hour, one day");
    let (both, _) = walk(c, "/uploads?status=completed&kind=upload&from=2026-05-01").await;
    assert_eq!(
        both.len(),
        count(app, d, "status = 'completed' AND kind = 'upload'").await
    );
    // The Source filter and column name a connection by its name, never "Sync 4cf7…".
    let page = c.get(&format!("/uploads?source=sync%3A{sync}")).await;
    assert!(page.body.contains("District SIS"));
    assert!(!page.body.contains(&format!(">sync:{sync}<")));
    assert!(page.body.contains(&format!(
        "<option value=\"sync:{sync}\" selected>District SIS</option>"
    )));
    assert_eq!(c.get("/uploads?status=done").await.status, 400);
    assert_eq!(c.get("/uploads?kind=fax").await.status, 400);
    assert_eq!(c.get("/uploads?from=yesterday").await.status, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_needs_mapping_run_can_be_dismissed_and_nothing_else(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let (c, app) = (&env.c, &env.app);
    let odd = env.upload("odd.csv", "Nom,Prenom\nA,B\n").await;
    assert_eq!(env.status(odd).await["status"], "needs_mapping");
    let list = c.get("/uploads").await;
    assert!(
        list.body
            .contains(&format!("action=\"/uploads/{odd}/dismiss\""))
    );
    let run_page = c.get(&format!("/uploads/{odd}")).await;
    assert!(
        run_page
            .body
            .contains(&format!("action=\"/uploads/{odd}/dismiss\""))
    );

    let r = c.post(&format!("/uploads/{odd}/dismiss"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (status, reviewed_by, reviewed): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT status, reviewed_by, reviewed_at IS NOT NULL FROM runs WHERE id = $1",
    )
    .bind(odd)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "cancelled");
    assert_eq!(
        reviewed_by.as_deref(),
        Some(env.district.admin_email.as_str())
    );
    assert!(reviewed);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'run.dismiss' AND entity_id = $1 AND actor_label = $2",
    )
    .bind(odd)
    .bind(&env.district.admin_email)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // Twice, or any other state: a conflict that changes nothing.
    assert_eq!(
        c.post(&format!("/uploads/{odd}/dismiss"), &[]).await.status,
        409
    );
    let done = env
        .upload(
            "ok.csv",
            &format!("{UPLOAD_HEADER}\nS1,s1@d.org,Al,Bo,Student,HS,9,Active,\n"),
        )
        .await;
    assert_eq!(
        c.post(&format!("/uploads/{done}/dismiss"), &[])
            .await
            .status,
        409
    );
    app.queue.drain().await.unwrap();
    assert_eq!(env.status(done).await["status"], "completed");
    assert_eq!(
        c.post(&format!("/uploads/{done}/dismiss"), &[])
            .await
            .status,
        409
    );
    let dismissals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'run.dismiss'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(dismissals, 1);
    // Without the form token, nothing happens.
    let again = env.upload("odd2.csv", "Nom,Prenom\nC,D\n").await;
    let r = c.post_raw(&format!("/uploads/{again}/dismiss"), &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(env.status(again).await["status"], "needs_mapping");
}
