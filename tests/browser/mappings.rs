//! Issue 16, items 8 and 9 in Chromium: the template downloaded from the Uploads page goes
//! back in as it is; the field reference opens from it; an SIS file is mapped with a
//! preview of its first rows before it runs; its saved mapping is then edited on its own
//! page, and the next file with those columns uses the edit.

use super::*;

impl Browser {
    /// For each field select on the page: its width and the width its longest option's text
    /// needs (measured in the select's own font, paddings added).
    async fn select_fits(&self) -> Vec<(String, f64, f64)> {
        let v = self
            .c
            .execute(
                "const ctx = document.createElement('canvas').getContext('2d');
                 return Array.from(document.querySelectorAll('select.field-select')).map(s => {
                     const cs = getComputedStyle(s);
                     ctx.font = cs.font;
                     const text = Math.max(...Array.from(s.options).map(o => ctx.measureText(o.text).width));
                     const need = text + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
                     return [s.getAttribute('aria-label'), s.getBoundingClientRect().width, need];
                 });",
                vec![],
            )
            .await
            .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x[0].as_str().unwrap().to_string(),
                    x[1].as_f64().unwrap(),
                    x[2].as_f64().unwrap(),
                )
            })
            .collect()
    }

    async fn select(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_template_downloads_and_goes_back_in_as_it_is_in_chromium(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "Springfield High").await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&app).await;
    let work = worker(&app);
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    b.goto("/uploads").await;
    b.wait_for_text("Download the template").await;
    let (status, headers, bytes) = b.download("#template-download").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("rollcall-users-template.csv")
    );
    let template = String::from_utf8(bytes).unwrap();
    assert!(strip_bom(&template).starts_with("user_guid,custom_id,email,"));
    // Sent back through the upload form, as downloaded.
    b.upload(
        &files,
        "rollcall-users-template.csv",
        &template,
        "Completed",
    )
    .await;
    b.assert_counts(&[("Created", 2), ("Errors", 0)]).await;
    let garcia: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE district_id = $1 AND last_name = 'García'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(garcia, 1, "the example's accents survive the round trip");

    // The field reference is one click away.
    b.goto("/uploads").await;
    b.click("#field-reference").await;
    b.wait_for_text("User file fields").await;
    assert_eq!(b.path().await, "/uploads/fields");
    let text = b.text().await;
    assert!(text.contains("school_external_id") && text.contains("Springfield High"));
    work.abort();
    b.close().await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_mapping_is_previewed_saved_and_edited_in_chromium(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("springfield").await;
    app.school(d.id, "HS", "Springfield High").await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&app).await;
    b.c.set_window_size(1366, 900).await.unwrap();
    let work = worker(&app);
    b.sign_in(&d.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    let sis = "Ident,Nom,Prenom,Salle\n1001,Lee,Ann,4B\n1002,Kim,Bo,5A\n";
    b.choose_file(&file(&files, "sis.csv", sis)).await;
    b.click("form.upload-form button[type=submit]").await;
    b.wait_for_text("Save mapping and run").await;
    assert!(b.path().await.ends_with("/map"));
    assert!(
        b.text().await.contains("No preview yet"),
        "role and school missing"
    );
    // Field names in words, each select wide enough for the longest of them.
    let fits = b.select_fits().await;
    assert_eq!(fits.len(), 4);
    for (label, width, need) in &fits {
        assert!(width >= need, "{label}: {width}px for {need}px of text");
    }
    for (column, field) in [
        ("Ident", "custom_id"),
        ("Nom", "last_name"),
        ("Prenom", "first_name"),
        ("Salle", "ignore"),
    ] {
        b.select(&format!("select[aria-label='Field for {column}']"), field)
            .await;
    }
    b.select("select[name=fixed_role]", "Student").await;
    b.select("select[name=fixed_school]", "HS").await;
    // The page says its preview no longer matches the choices...
    let stale = b.c.find(Locator::Css("#preview-stale")).await.unwrap();
    assert!(
        stale.is_displayed().await.unwrap(),
        "changed choices are flagged"
    );
    // ...so preview: the rows as mapped, and nothing runs.
    b.click("#preview-button").await;
    b.wait_for_text("As the choices above read them").await;
    let stale = b.c.find(Locator::Css("#preview-stale")).await.unwrap();
    assert!(!stale.is_displayed().await.unwrap(), "fresh preview");
    let preview =
        b.c.find(Locator::Css("table.preview-rows"))
            .await
            .expect("the preview table")
            .text()
            .await
            .unwrap();
    assert!(preview.contains("1001") && preview.contains("Ann") && preview.contains("Lee"));
    assert!(preview.contains("OK"), "{preview}");
    assert!(!preview.contains("4B"), "an ignored column is not shown");
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE district_id = $1 AND status <> 'needs_mapping'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(runs, 0, "a preview runs nothing");
    b.click("form[action$='/map'] button.primary").await;
    b.wait_for_status("Completed").await;
    b.assert_counts(&[("Created", 2)]).await;

    // The saved mapping, listed from the Uploads page; edit it: the room becomes the
    // position, and the file's people teachers.
    b.goto("/uploads").await;
    b.click("#saved-mappings").await;
    b.wait_for_text("Saved column mappings").await;
    assert!(b.text().await.contains("Nom → Last name"));
    b.click("table.mappings a[href^='/uploads/mappings/']")
        .await;
    b.wait_for_text("Column mapping").await;
    for (_, width, need) in b.select_fits().await {
        assert!(width >= need);
    }
    b.select("select[aria-label='Field for Salle']", "position")
        .await;
    b.select("select[name=fixed_role]", "Teacher").await;
    b.click("#mapping-form button.primary").await;
    b.wait_for_text("Column mapping saved.").await;
    let saved: serde_json::Value =
        sqlx::query_scalar("SELECT mapping FROM header_mappings WHERE district_id = $1")
            .bind(d.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        saved["columns"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["Salle", "Position"])),
        "{saved}"
    );

    // The next file with those columns needs no mapper and uses the edit.
    b.upload(
        &files,
        "sis-staff.csv",
        "Salle,Prenom,Nom,Ident\nLab 2,Gus,Oh,2001\n",
        "Completed",
    )
    .await;
    let (role, position): (String, String) = sqlx::query_as(
        "SELECT role, position FROM users WHERE district_id = $1 AND custom_id = '2001'",
    )
    .bind(d.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((role.as_str(), position.as_str()), ("Teacher", "Lab 2"));
    work.abort();
    b.close().await;
}
