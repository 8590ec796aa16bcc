use crate::helpers::*;
use sqlx::PgPool;

async fn names(app: &TestApp, district: uuid::Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT external_id, name FROM schools WHERE district_id = $1 ORDER BY external_id",
    )
    .bind(district)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn add_edit_and_duplicate_external_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.district("alpha").await;
    let b = app.district("beta").await;
    let c = app.client();
    c.sign_in(&a.admin_email, &a.admin_password).await;

    let r = c
        .post(
            "/schools",
            &[("external_id", "101"), ("name", "Lincoln High")],
        )
        .await;
    assert_eq!(r.status, 303);
    let list = c.get("/schools").await;
    assert!(
        list.body.contains("School &#34;Lincoln High&#34; added.")
            || list.body.contains("School \"Lincoln High\" added.")
    );
    assert!(list.body.contains("Lincoln High"));

    let dup = c
        .post("/schools", &[("external_id", "101"), ("name", "Other")])
        .await;
    assert_eq!(dup.status, 422);
    assert!(
        dup.body.contains("already exists in this district"),
        "{}",
        dup.body
    );
    let blank = c
        .post("/schools", &[("external_id", " "), ("name", "")])
        .await;
    assert_eq!(blank.status, 422);
    assert!(blank.body.contains("External ID is required."));

    // The same external ID in another district is fine.
    let cb = app.client();
    cb.sign_in(&b.admin_email, &b.admin_password).await;
    assert_eq!(
        cb.post(
            "/schools",
            &[("external_id", "101"), ("name", "Beta Lincoln")]
        )
        .await
        .status,
        303
    );

    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(a.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let edit = c.get(&format!("/schools/{id}")).await;
    assert!(edit.body.contains("value=\"Lincoln High\""));
    assert_eq!(
        c.post(
            &format!("/schools/{id}"),
            &[("external_id", "102"), ("name", "Lincoln HS")]
        )
        .await
        .status,
        303
    );
    assert_eq!(
        names(&app, a.id).await,
        vec![("102".into(), "Lincoln HS".into())]
    );
    assert_eq!(
        names(&app, b.id).await,
        vec![("101".into(), "Beta Lincoln".into())]
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE district_id = $1 AND entity_kind = 'school' ORDER BY id")
        .bind(a.id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(audit, vec!["school.create", "school.update"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn schools_csv_upload(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.district("alpha").await;
    app.school(a.id, "S1", "Old Name").await;
    let c = app.client();
    c.sign_in(&a.admin_email, &a.admin_password).await;

    let csv = "external_id,name\r\nS1,New Name\r\nS2,Second School\r\nS3,\"Third, The\"\r\n";
    let r = c
        .post_file("/schools/import", "schools.csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let list = c.get("/schools").await;
    assert!(
        list.body
            .contains("2 schools added, 1 renamed, 0 unchanged"),
        "{}",
        list.body
    );
    assert_eq!(
        names(&app, a.id).await,
        vec![
            ("S1".into(), "New Name".into()),
            ("S2".into(), "Second School".into()),
            ("S3".into(), "Third, The".into())
        ]
    );

    // A bad file changes nothing and names line and column.
    let bad = "external_id,name\nS4,Fourth\n,Nameless\nS4,Again\n";
    let r = c
        .post_file("/schools/import", "bad.csv", bad.as_bytes().to_vec())
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("line 3, column &#34;external_id&#34;")
            || r.body.contains("line 3, column \"external_id\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("also appears on line 2"));
    assert_eq!(names(&app, a.id).await.len(), 3);

    // Too large for the configured limit (2 MiB in tests).
    let big = vec![b'a'; 3 * 1024 * 1024];
    let r = c.post_file("/schools/import", "big.csv", big).await;
    assert_eq!(r.status, 413);
}
