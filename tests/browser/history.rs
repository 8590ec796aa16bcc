//! The upload history at 1366 px: 60 runs with the widest contents fit without horizontal
//! scrolling, and "Next" pages on (issue 14, item 6).

use super::*;

/// 60 runs straight into `runs`, each as wide as a run gets: a long unbroken file name, a
/// long submitter, counts in the millions, a dry-run tag, and a Dismiss button.
async fn wide_runs(app: &TestApp, district: uuid::Uuid) {
    sqlx::query(
        "INSERT INTO runs (district_id, id, kind, source, file_name, status, submitted_kind, submitted_by,
                           received_at, dry_run, created, updated, unchanged, restored, archived, moved, skipped, errors)
         SELECT $1, gen_random_uuid(), 'drop', 'file:' || repeat('x', 150) || i || '.csv', repeat('y', 150) || i || '.csv',
                CASE WHEN i % 3 = 0 THEN 'needs_mapping' ELSE 'completed_with_errors' END, 'user',
                'a.very.long.address.of.somebody.in.the.district' || i || '@district-with-a-long-domain.example.org',
                timestamptz '2026-04-01 08:00:00+00' + i * interval '1 minute', i % 2 = 0,
                9999999, 9999999, 9999999, 9999999, 9999999, 9999999, 9999999, 9999999
         FROM generate_series(1, 60) AS i",
    )
    .bind(district)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn widths(b: &Browser) -> (i64, i64, i64) {
    let v = b
        .c
        .execute(
            "const s = document.scrollingElement; return [s.scrollWidth, s.clientWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let n = |i: usize| v[i].as_i64().unwrap();
    (n(0), n(1), n(2))
}

async fn rows(b: &Browser) -> usize {
    b.c.find_all(Locator::Css("table#history tbody tr[data-run]"))
        .await
        .unwrap()
        .len()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_history_fits_1366_px_and_pages_on(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("wide").await;
    wide_runs(&app, d.id).await;
    let b = Browser::start(&app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.goto("/uploads").await;
    b.wait_for_text("Upload history").await;
    let (scroll, client, inner) = widths(&b).await;
    assert!(
        (1300..=1366).contains(&inner),
        "the window is 1366 px wide: {inner}"
    );
    assert!(
        scroll <= client,
        "no horizontal scrolling at 1366 px: {scroll} > {client}"
    );
    // The table itself stays inside the page too.
    let table_w =
        b.c.execute(
            "return document.querySelector('table#history').getBoundingClientRect().right;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(table_w <= client as f64, "{table_w} > {client}");
    b.screenshot("uploads-history-1366").await;
    assert_eq!(rows(&b).await, 50);
    // A long name is cut, and its whole text is in the title.
    let title =
        b.c.find(Locator::Css("table#history td.file-cell a"))
            .await
            .unwrap()
            .attr("title")
            .await
            .unwrap()
            .unwrap();
    assert!(title.starts_with(&"y".repeat(150)));

    b.click("a#next").await;
    b.wait_for_text("Newest").await;
    assert!(b.path().await.contains("after="), "{}", b.path().await);
    assert_eq!(rows(&b).await, 10, "the last ten");
    let (scroll, client, _) = widths(&b).await;
    assert!(scroll <= client, "page 2: {scroll} > {client}");
    assert!(b.c.find(Locator::Css("a#next")).await.is_err(), "no page 3");
    b.close().await;
}
