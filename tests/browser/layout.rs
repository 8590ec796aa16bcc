//! The layout at a district admin's 1366 px (issue 16, items 3 and 11): the Users list
//! with the widest contents fits without horizontal scrolling (each email on one line, cut,
//! its whole value on hover and on focus); a 403 keeps the header (navigation, Sign out);
//! archiving a user shows one banner, not two.

use super::*;

/// Fifty users as wide as users get: long unbroken emails, long names and custom IDs.
fn wide_users() -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=50 {
        s += &format!(
            "STUDENT-NUMBER-0000000{i},maximiliana.josefina.de.la.cruz-hernandez{i}@students.district-with-a-long-domain.example.org,\
             Maximiliana-Josefina{i},de la Cruz-Hernández-Castellanos,Student,HS,12,Active,\n"
        );
    }
    s
}

/// The page's scroll width and client width, and the right edge of `table`.
async fn fit(b: &Browser, table: &str) -> (i64, i64, f64) {
    let v = b
        .c
        .execute(
            "const s = document.scrollingElement;
             const t = document.querySelector(arguments[0]);
             return [s.scrollWidth, s.clientWidth, t.getBoundingClientRect().right, t.parentElement.scrollWidth - t.parentElement.clientWidth];",
            vec![serde_json::json!(table)],
        )
        .await
        .unwrap();
    assert_eq!(
        v[3].as_f64().unwrap(),
        0.0,
        "the table's own box does not scroll sideways"
    );
    (
        v[0].as_i64().unwrap(),
        v[1].as_i64().unwrap(),
        v[2].as_f64().unwrap(),
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn the_users_list_fits_1366_px_with_emails_on_one_line(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.upload("wide.csv", &wide_users()).await;
    env.app.queue.drain().await.unwrap();
    let b = Browser::start(&env.app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.goto("/users?sort=name&per=100").await;
    b.wait_for_text("Maximiliana-Josefina1").await;
    let (scroll, client, right) = fit(&b, "table.users").await;
    assert!(
        (1300..=1366).contains(&client),
        "the window is 1366 px wide: {client}"
    );
    assert!(
        scroll <= client,
        "no horizontal scrolling: {scroll} > {client}"
    );
    assert!(
        right <= client as f64,
        "the table ends inside the viewport: {right} > {client}"
    );
    b.screenshot("users-1366").await;

    // Each email is one line (its box is one line high), cut, with the whole in its title.
    let cells = b
        .c
        .execute(
            "return [...document.querySelectorAll('table.users td.email a')].map(a => {
                 const lh = parseFloat(getComputedStyle(a).lineHeight);
                 return [a.getBoundingClientRect().height <= lh * 1.5, a.scrollWidth > a.clientWidth, a.title, a.textContent];
             });",
            vec![],
        )
        .await
        .unwrap();
    let cells = cells.as_array().unwrap();
    let long: Vec<_> = cells
        .iter()
        .filter(|c| c[2].as_str().unwrap().ends_with("example.org"))
        .collect();
    assert_eq!(long.len(), 50, "the fifty long addresses are on the page");
    for c in cells {
        assert_eq!(c[0], true, "one line: {c}");
        assert_eq!(c[2], c[3], "the whole address in the title: {c}");
    }
    for c in long {
        assert_eq!(c[1], true, "cut (it is longer than its column): {c}");
    }
    // Focused (keyboard), the whole address shows.
    let shown =
        b.c.execute(
            "const a = document.querySelector('table.users td.email a'); a.focus();
             return a.scrollWidth <= a.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, true, "a focused email shows whole");

    // The status buttons say what they do, not only the state.
    let label =
        b.c.find(Locator::Css("table.users button.status"))
            .await
            .unwrap()
            .attr("aria-label")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(label, "Active: make inactive");
    b.close().await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_403_keeps_the_layout_and_archiving_shows_one_banner(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    env.upload(
        "one.csv",
        &format!("{UPLOAD_HEADER}\nS1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n"),
    )
    .await;
    env.app.queue.drain().await.unwrap();
    let ann = user_by_custom_id(&env.app.pool, env.district.id, "S1").await;
    let hs: uuid::Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    env.app
        .member(env.district.id, "teacher", "user", &[hs])
        .await;

    let b = Browser::start(&env.app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.goto(&format!("/users/{ann}")).await;
    b.wait_for_text("Archive").await;
    b.click_and_accept(&format!("form[action='/users/{ann}/archive'] button"))
        .await;
    b.wait_for_text("This user is archived").await;
    let banners =
        b.c.find_all(Locator::Css("main .flash, main .notice"))
            .await
            .unwrap();
    assert_eq!(
        banners.len(),
        1,
        "one banner after Archive:\n{}",
        b.text().await
    );
    b.click("form.signout button").await;
    b.wait_for_text("Sign in").await;

    // A member who is no admin opens an admin page: a 403 inside the layout.
    b.sign_in("teacher", PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.goto("/uploads").await;
    b.wait_for_text("403").await;
    let text = b.text().await;
    assert!(text.contains("Forbidden"), "{text}");
    assert!(text.contains("My account"), "the navigation stays: {text}");
    assert!(text.contains("Sign out"), "Sign out stays: {text}");
    b.screenshot("forbidden").await;
    b.click("form.signout button").await;
    b.wait_for_text("Sign in").await;
    b.close().await;
}

/// Whether the add-connection form's field named `name` is shown (and so sent).
async fn shown(b: &Browser, name: &str) -> bool {
    b.c.execute(
        "const i = document.querySelector('form[action=\"/syncs\"] [name=\"' + arguments[0] + '\"]');
         return !i.disabled && i.offsetParent !== null;",
        vec![serde_json::json!(name)],
    )
    .await
    .unwrap()
    .as_bool()
    .unwrap()
}

async fn select_kind(b: &Browser, value: &str) {
    b.c.find(Locator::Css("#conn-kind"))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn the_connection_form_shows_fields_by_kind_and_its_page_follows_a_run(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("conn").await;
    let b = Browser::start(&app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.goto("/syncs").await;
    b.wait_for_text("Add a connection").await;
    select_kind(&b, "oneroster_rest").await;
    for f in [
        "base_url",
        "token_url",
        "client_id",
        "secret",
        "interval_hours",
    ] {
        assert!(shown(&b, f).await, "OneRoster REST shows {f}");
    }
    select_kind(&b, "clever").await;
    for f in ["base_url", "secret", "interval_hours"] {
        assert!(shown(&b, f).await, "Clever shows {f}");
    }
    for f in ["token_url", "client_id"] {
        assert!(!shown(&b, f).await, "Clever hides {f}");
    }
    select_kind(&b, "oneroster_csv").await;
    for f in [
        "base_url",
        "token_url",
        "client_id",
        "secret",
        "interval_hours",
    ] {
        assert!(!shown(&b, f).await, "a CSV set hides {f}");
    }
    assert!(shown(&b, "name").await);
    b.fill("form[action='/syncs'] input[name=name]", "SIS set")
        .await;
    b.click("form[action='/syncs'] button[type=submit]").await;
    b.wait_for_text("Upload and sync").await;
    let conn = b.path().await;
    let conn_id: uuid::Uuid = conn.trim_start_matches("/syncs/").parse().unwrap();

    // A run of the connection, queued: its page follows it and reloads when it ends.
    let run: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO runs (district_id, id, kind, source, status, submitted_kind, submitted_by, received_at)
         VALUES ($1, gen_random_uuid(), 'sync', $2, 'queued', 'user', 'admin@conn.org', now()) RETURNING id",
    )
    .bind(d.id)
    .bind(format!("sync:{conn_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    b.goto(&conn).await;
    b.wait_for_text("Queued").await;
    assert!(
        b.c.find(Locator::Css(&format!(
            "tr[data-status-url='/uploads/{run}/status.json']"
        )))
        .await
        .is_ok(),
        "the queued run's row follows its status"
    );
    sqlx::query(
        "UPDATE runs SET status = 'completed', created = 7, finished_at = now() WHERE district_id = $1 AND id = $2",
    )
    .bind(d.id)
    .bind(run)
    .execute(&app.pool)
    .await
    .unwrap();
    b.wait_for_text("7 created").await;
    assert_eq!(b.path().await, conn, "the page reloaded itself");
    b.close().await;
}
