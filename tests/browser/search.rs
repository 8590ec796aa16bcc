//! Search with and without accents in Chromium (issue 16, item 1): a district admin types
//! `jose garcia` and finds "José García", types `José García` and finds "Jose Garcia" too,
//! and the Vietnamese, German and Nordic names the same way; the list's count is exact and
//! its pages say "Page N of M".

use super::*;

impl Browser {
    /// Types `q` into the Users search box, submits, and returns the names listed.
    async fn search_users(&self, q: &str) -> Vec<String> {
        self.goto("/users").await;
        self.fill("form.filters input[name=q]", q).await;
        self.click("form.filters button.primary").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.path().await.contains("q=") {
            assert!(Instant::now() < deadline, "the search never ran");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_for_text("Download filtered").await;
        let mut out = Vec::new();
        for a in self
            .c
            .find_all(Locator::Css("table.users tbody td.select + td > a"))
            .await
            .unwrap()
        {
            out.push(a.text().await.unwrap());
        }
        out.sort();
        out
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn an_admin_finds_names_with_or_without_accents_in_chromium(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    for (first, last) in [
        ("José", "García"),
        ("Jose", "Garcia"),
        ("María", "Muntz"),
        ("An", "Nguyễn"),
        ("Hans", "Müller"),
        ("Karl", "Mueller"),
        ("Ægir", "Sigurðsson"),
        ("Bjørn", "Dæhlie"),
    ] {
        sqlx::query(
            "INSERT INTO users (district_id, id, username, first_name, last_name, role, source)
             VALUES ($1, gen_random_uuid(), lower($2 || '.' || $3 || gen_random_uuid()), $2, $3, 'Student', 'file:s.csv')",
        )
        .bind(d.id)
        .bind(first)
        .bind(last)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    // Enough others for several pages of 50.
    sqlx::query(
        "INSERT INTO users (district_id, id, username, first_name, last_name, role, source)
         SELECT $1, gen_random_uuid(), 'other' || g, 'Other', 'Zz' || lpad(g::text, 4, '0'), 'Student', 'file:s.csv'
         FROM generate_series(1, 120) g",
    )
    .bind(d.id)
    .execute(&app.pool)
    .await
    .unwrap();

    let b = Browser::start(&app).await;
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    let garcias = b.search_users("jose garcia").await;
    assert_eq!(garcias.len(), 2, "{garcias:?}");
    assert!(
        garcias
            .iter()
            .any(|n| n.contains("José") && n.contains("García")),
        "{garcias:?}"
    );
    assert!(
        garcias
            .iter()
            .any(|n| n.contains("Jose") && n.contains("Garcia")),
        "{garcias:?}"
    );
    b.screenshot("users-search-accents").await;
    assert_eq!(
        b.search_users("José García").await,
        garcias,
        "and the other way"
    );
    for (q, want) in [
        ("maria muntz", "Muntz"),
        ("nguyen", "Nguyễn"),
        ("muller", "Müller"),
        ("müller", "Müller"),
        ("mueller", "Mueller"),
        ("aegir", "Ægir"),
        ("bjorn", "Bjørn"),
    ] {
        let found = b.search_users(q).await;
        assert_eq!(found.len(), 1, "{q}: {found:?}");
        assert!(found[0].contains(want), "{q}: {found:?}");
    }

    // The whole list: its exact count, and where a page sits.
    b.goto("/users").await;
    b.wait_for_text("129 users").await;
    b.wait_for_text("Page 1 of 3").await;
    b.click("a[rel=next]").await;
    b.wait_for_text("Page 2 of 3").await;
    b.click("a[rel=next]").await;
    b.wait_for_text("Page 3 of 3").await;
    b.click("a[rel=prev]").await;
    b.wait_for_text("Page 2 of 3").await;
    b.close().await;
}
