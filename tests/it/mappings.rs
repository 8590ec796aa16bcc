//! Issue 16, items 8 and 9 and the blank-row rule, through real HTTP: the template (it
//! imports as downloaded), the field reference (built from the importer's own tables), the
//! mapper's preview, saved column mappings (list, view, edit, delete: audited, district
//! admins only), and rows of only empty cells skipped with the other rows' lines intact.

use crate::helpers::*;
use rollcall::domain::Field;
use rollcall::feed::headers;
use sqlx::PgPool;
use uuid::Uuid;

async fn bytes(c: &Client, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.bytes().await.unwrap().to_vec())
}

async fn audit_count(env: &UploadEnv, action: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE district_id = $1 AND action = $2 AND entity_id = $3",
    )
    .bind(env.district.id)
    .bind(action)
    .bind(id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_template_downloads_from_the_uploads_page_and_imports_cleanly(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let page = env.c.get("/uploads").await;
    assert!(page.body.contains("href=\"/uploads/template.csv\""));
    assert!(page.body.contains("href=\"/uploads/fields\""));
    assert!(page.body.contains("href=\"/uploads/mappings\""));

    let (status, h, body) = bytes(&env.c, "/uploads/template.csv").await;
    assert_eq!(status, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment; filename=\"rollcall-users-template.csv\"")
    );
    assert_eq!(h["cache-control"], "no-store");
    let text = String::from_utf8(body).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a BOM for Excel");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "header and two example rows: {text}");
    assert_eq!(lines[0], Field::ALL.map(Field::name).join(","));
    // The examples name the district's own school, so the file goes in as it is.
    assert!(lines[1].contains(",Student,HS,") && lines[2].contains(",Teacher,HS,"));

    let id = env.upload("rollcall-users-template.csv", text).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["counts"]["created"], 2);
    assert_eq!(s["counts"]["errors"], 0);
    let names: Vec<(String, String)> = sqlx::query_as(
        "SELECT last_name, role FROM users WHERE district_id = $1 AND source LIKE 'file:%' ORDER BY last_name",
    )
    .bind(env.district.id)
    .fetch_all(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(
        names,
        [
            ("García".to_string(), "Student".to_string()),
            ("Smith".to_string(), "Teacher".to_string())
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn the_field_reference_shows_every_column_with_the_importers_own_synonyms(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let page = env.c.get("/uploads/fields").await;
    assert_eq!(page.status, 200);
    for f in Field::ALL {
        assert!(
            page.body.contains(&format!("<code>{}</code>", f.name())),
            "{}",
            f.name()
        );
        assert!(page.body.contains(f.label()), "{}", f.label());
        // Every synonym the importer maps, as the importer's table has it.
        for s in headers::synonyms(f) {
            assert!(
                page.body.contains(&format!("<code>{s}</code>")),
                "{s} for {}",
                f.name()
            );
        }
    }
    for text in [
        "Required: custom_id or email (at least one)",
        "<code>Administrator</code> — also",
        "<code>principal</code>",
        "<code>kg</code>",
        "<code>grade 3</code>",
        "<code>disabled</code>",
        "<code>HS</code> (High School)",
        "Download the template",
    ] {
        assert!(page.body.contains(text), "{text}\n{}", page.body);
    }
    let required = page.body.matches("<strong>Required</strong>").count();
    assert_eq!(required, headers::REQUIRED.len());

    // A school admin, who imports for their school, gets the reference and a template at
    // their own school; the saved mappings are the district admin's.
    let ms = env.app.school(env.district.id, "MS", "Middle School").await;
    env.app
        .member(env.district.id, "principal", "school_admin", &[ms])
        .await;
    let p = env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    let page = p.get("/uploads/fields").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<code>MS</code> (Middle School)"));
    assert!(!page.body.contains("High School"), "only their schools");
    let (status, _, body) = bytes(&p, "/uploads/template.csv").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(",Student,MS,"), "{text}");
    assert!(!p.get("/uploads").await.body.contains("/uploads/mappings"));
    assert_eq!(p.get("/uploads/mappings").await.status, 403);
}

/// Uploads a file the synonyms do not cover; the run waits in Needs mapping.
async fn unmapped(env: &UploadEnv, name: &str, body: &str) -> (Uuid, String) {
    let r = env
        .c
        .post_file("/uploads", name, body.as_bytes().to_vec())
        .await;
    let loc = r.location.expect("a redirect");
    assert!(loc.ends_with("/map"), "{loc}");
    let id = loc
        .trim_start_matches("/uploads/")
        .trim_end_matches("/map")
        .parse()
        .unwrap();
    (id, loc)
}

const ODD: &str = "Ident,Nom,Prenom,Salle\n\
                   1001,Lee,Ann,4B\n\
                   1002,,Bo,5A\n\
                   1003,Ng,Cy,6C\n\
                   1004,Ho,Di,6C\n\
                   1005,Wu,Ed,6C\n\
                   1006,Li,Fay,6C\n";

#[sqlx::test(migrations = "./migrations")]
async fn the_mapper_previews_the_first_rows_before_anything_runs(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let (id, loc) = unmapped(&env, "odd.csv", ODD).await;
    let page = env.c.get(&loc).await;
    // Fields in words, their names as the values sent.
    assert!(
        page.body
            .contains("<option value=\"first_name\">First name</option>")
    );
    assert!(page.body.contains("href=\"/uploads/fields\""));
    assert!(
        page.body
            .contains("Required: First name, Last name, Role, School external ID")
    );
    // Nothing maps yet: the preview says what is missing.
    assert!(
        page.body
            .contains("No preview yet: required fields not mapped")
    );

    let choices = [
        ("col0", "custom_id"),
        ("col1", "last_name"),
        ("col2", "first_name"),
        ("col3", "ignore"),
        ("fixed_role", "Student"),
        ("fixed_school", "HS"),
    ];
    let mut preview: Vec<(&str, &str)> = choices.to_vec();
    preview.push(("action", "preview"));
    let page = env.c.post(&loc, &preview).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let table = &page.body[page
        .body
        .find("class=\"data preview-rows\"")
        .expect("a preview")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(table.contains("<th scope=\"col\">Student or employee ID</th>"));
    assert!(table.contains("<th scope=\"col\">School external ID</th>"));
    assert!(!table.contains("Salle") && !table.contains("4B"), "ignored");
    assert_eq!(
        table.matches("<tr").count(),
        1 + 5,
        "header and the first 5 rows"
    );
    assert!(table.contains(
        "<td class=\"num\">2</td><td>1001</td><td>Ann</td><td>Lee</td><td>Student</td><td>HS</td>"
    ));
    assert!(
        table.contains("column &quot;Nom&quot;: last_name is required")
            || table.contains("column &#34;Nom&#34;: last_name is required"),
        "{table}"
    );
    assert!(!table.contains("Fay"), "only 5 rows");
    // The choices stay chosen, and nothing was saved or run.
    assert!(page.body.contains("<option value=\"Student\" selected>"));
    assert_eq!(env.status(id).await["status"], "needs_mapping");
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM header_mappings")
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert_eq!(saved, 0);

    // Then saved and run, as before.
    let r = env.c.post(&loc, &choices).await;
    assert_eq!(r.status, 303);
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(
        (
            s["counts"]["created"].as_i64(),
            s["counts"]["errors"].as_i64()
        ),
        (Some(5), Some(1))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn saved_mappings_are_listed_viewed_edited_and_deleted(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let empty = env.c.get("/uploads/mappings").await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No saved mappings yet"));

    let (_, loc) = unmapped(&env, "odd.csv", ODD).await;
    let r = env
        .c
        .post(
            &loc,
            &[
                ("col0", "custom_id"),
                ("col1", "last_name"),
                ("col2", "first_name"),
                ("col3", "ignore"),
                ("fixed_role", "Student"),
                ("fixed_school", "HS"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    env.app.queue.drain().await.unwrap();

    // Listed, in words.
    let list = env.c.get("/uploads/mappings").await;
    assert!(
        list.body.contains("Ident, Nom, Prenom, Salle"),
        "{}",
        list.body
    );
    assert!(list.body.contains("Ident → Student or employee ID; Nom → Last name; Prenom → First name; Role = Student for every row; School external ID = HS for every row"), "{}", list.body);
    let id: Uuid = sqlx::query_scalar("SELECT id FROM header_mappings WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    assert!(
        list.body
            .contains(&format!("href=\"/uploads/mappings/{id}\""))
    );

    // Viewed: each column with its field chosen.
    let path = format!("/uploads/mappings/{id}");
    let show = env.c.get(&path).await;
    assert_eq!(show.status, 200);
    assert!(show.body.contains("aria-label=\"Field for Nom\""));
    assert!(
        show.body
            .contains("<option value=\"last_name\" selected>Last name</option>")
    );
    assert!(show.body.contains("<option value=\"Student\" selected>"));

    // An edit that drops a required field is refused and changes nothing.
    let before: serde_json::Value =
        sqlx::query_scalar("SELECT mapping FROM header_mappings WHERE id = $1")
            .bind(id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let bad = env
        .c
        .post(
            &path,
            &[
                ("col0", "custom_id"),
                ("col1", "ignore"),
                ("col2", "first_name"),
                ("col3", "ignore"),
                ("fixed_role", "Student"),
                ("fixed_school", "HS"),
            ],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(
        bad.body
            .contains("Not saved: required fields not mapped: last_name"),
        "{}",
        bad.body
    );
    let same: serde_json::Value =
        sqlx::query_scalar("SELECT mapping FROM header_mappings WHERE id = $1")
            .bind(id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    assert_eq!(same, before);
    assert_eq!(audit_count(&env, "mapping.update", id).await, 0);

    // Edited: the room column now gives the position... of teachers, and the file's users
    // are teachers from now on.
    let ok = env
        .c
        .post(
            &path,
            &[
                ("col0", "custom_id"),
                ("col1", "last_name"),
                ("col2", "first_name"),
                ("col3", "position"),
                ("fixed_role", "Teacher"),
                ("fixed_school", "HS"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some(path.as_str()));
    assert_eq!(audit_count(&env, "mapping.update", id).await, 1);
    let show = env.c.get(&path).await;
    assert!(show.body.contains("Column mapping saved."));
    assert!(
        show.body
            .contains("<option value=\"position\" selected>Position (job title)</option>")
    );
    // The next file with these columns (in another order) uses the edit, with no mapper.
    let next = env
        .upload(
            "odd-staff.csv",
            "Prenom,Nom,Ident,Salle\nGus,Oh,2001,Lab 2\n",
        )
        .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(next).await["counts"]["created"], 1);
    let (role, position): (String, String) = sqlx::query_as(
        "SELECT role, position FROM users WHERE district_id = $1 AND custom_id = '2001'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!((role.as_str(), position.as_str()), ("Teacher", "Lab 2"));
    let audit = env.c.get("/audit").await;
    assert!(audit.body.contains("Edited a saved column mapping"));

    // Deleted: gone from the list, audited, and the next such file goes to the mapper.
    let r = env.c.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/uploads/mappings"));
    assert_eq!(audit_count(&env, "mapping.delete", id).await, 1);
    assert_eq!(env.c.get(&path).await.status, 404);
    assert!(
        env.c
            .get("/uploads/mappings")
            .await
            .body
            .contains("No saved mappings yet")
    );
    unmapped(&env, "odd.csv", ODD).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn rows_of_only_empty_cells_are_skipped_and_lines_stay_right(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    // Header: 9 columns. Line 3 is 9 empty cells, line 5 blank, line 6 spaces in 5 cells,
    // line 8 13 empty cells (wider than the header: still a row
    // error), line 9 a bad role.
    let file = format!(
        "{UPLOAD_HEADER}\n\
         S1,s1@d.org,Ann,Lee,Student,HS,9,Active,\n\
         ,,,,,,,,\n\
         S2,s2@d.org,Bo,Kim,Student,HS,9,Active,\n\
         \n\
         \x20, ,,, \n\
         S3,s3@d.org,Cy,Ng,Student,HS,9,Active,\n\
         ,,,,,,,,,,,,\n\
         S4,s4@d.org,Di,Ho,Wizard,HS,9,Active,\n"
    );
    let id = env.upload("blank-rows.csv", &file).await;
    env.app.queue.drain().await.unwrap();
    let s = env.status(id).await;
    assert_eq!(s["status"], "completed_with_errors", "{s}");
    assert_eq!(s["counts"]["created"], 3);
    assert_eq!(s["counts"]["errors"], 2);
    let rows: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT line, outcome, error FROM run_rows WHERE run_id = $1 ORDER BY line")
            .bind(id)
            .fetch_all(&env.app.pool)
            .await
            .unwrap();
    let lines: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(lines, [2, 4, 7, 8, 9], "{rows:?}");
    assert_eq!(
        rows[3].2.as_deref(),
        Some("line 8, column \"custom_id\": custom_id or email is required"),
        "a wider row of empty cells stays a row error (as the Adobe fixture's line 11)"
    );
    assert!(
        rows[4]
            .2
            .as_deref()
            .unwrap()
            .starts_with("line 9, column \"role\""),
        "{rows:?}"
    );
    // The error file says the same lines.
    let errors = env.c.get(&format!("/uploads/{id}/files/errors")).await;
    assert!(
        errors
            .body
            .contains(",,,,,,,,,\"line 8, column \"\"custom_id\"\""),
        "{}",
        errors.body
    );
    assert!(
        errors
            .body
            .contains("S4,s4@d.org,Di,Ho,Wizard,HS,9,Active,,\"line 9, column"),
        "{}",
        errors.body
    );
}
