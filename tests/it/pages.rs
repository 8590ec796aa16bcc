//! Issue 16, item 11 through real HTTP: multipart forms carry their CSRF token as their
//! first field (not in the URL); the "Uploaded file" download is the file as sent, byte for
//! byte; a 403 keeps the layout; one banner after Pause
//! and after Archive.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// A multipart upload of `body` with `fields` before (or, `token_last`, after) the file.
async fn multipart(
    env: &UploadEnv,
    fields: &[(&str, String)],
    body: &[u8],
    token_last: bool,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    let file = || reqwest::multipart::Part::bytes(body.to_vec()).file_name("students.csv");
    if token_last {
        form = form.part("file", file());
    }
    for (k, v) in fields {
        form = form.text(k.to_string(), v.clone());
    }
    if !token_last {
        form = form.part("file", file());
    }
    env.c
        .http
        .post(format!("{}/uploads", env.c.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn students(n: usize) -> String {
    let mut s = format!("{UPLOAD_HEADER}\n");
    for i in 1..=n {
        s += &format!("S{i},s{i}@d.org,Ann{i},Lee,Student,HS,9,Active,\n");
    }
    s
}

#[sqlx::test(migrations = "./migrations")]
async fn multipart_forms_carry_the_token_in_the_body(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    // The pages' upload forms: the token is a hidden first field, never in the action.
    for page in ["/uploads", "/schools"] {
        let body = env.c.get(page).await.body;
        assert!(!body.contains("_csrf="), "{page}: no token in a URL");
        let form = &body[body.find("enctype=\"multipart/form-data\"").expect(page)..];
        let token_at = form.find("name=\"_csrf\"").unwrap();
        let file_at = form.find("type=\"file\"").unwrap();
        assert!(
            token_at < file_at,
            "{page}: the token comes before the file"
        );
    }
    let token = env.c.csrf().await;
    let bytes = students(2).into_bytes();
    let r = multipart(&env, &[("_csrf", token.clone())], &bytes, false).await;
    assert_eq!(
        r.status().as_u16(),
        303,
        "the token as the body's first field"
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(!loc.contains("_csrf"), "{loc}");
    env.app.queue.drain().await.unwrap();
    let id: Uuid = loc.trim_start_matches("/uploads/").parse().unwrap();
    assert_eq!(
        env.status(id).await["counts"]["created"],
        2,
        "the file arrived whole"
    );
    // Other fields may follow the token (dry run).
    let r = multipart(
        &env,
        &[("_csrf", token.clone()), ("dry_run", "on".into())],
        &bytes,
        false,
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);

    // No token, a wrong one, or the token only after the file: refused, nothing stored.
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs")
            .fetch_one(&env.app.pool)
            .await
            .unwrap()
    };
    let before = runs().await;
    for (fields, last) in [
        (vec![], false),
        (vec![("_csrf", "wrong".to_string())], false),
        (vec![("_csrf", token.clone())], true),
    ] {
        let r = multipart(&env, &fields, &bytes, last).await;
        assert_eq!(r.status().as_u16(), 403, "{fields:?} last={last}");
    }
    assert_eq!(runs().await, before);
    // Scripts that send the token in the query string or a header still work.
    let r = env
        .c
        .post_file("/uploads", "students.csv", bytes.clone())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = env
        .c
        .http
        .post(format!("{}/uploads", env.c.base))
        .header("x-csrf-token", &token)
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("students.csv"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_uploaded_file_comes_back_byte_for_byte(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    // CRLF line ends, a BOM, quoted cells, a wholly blank row: all kept as sent.
    let sent = format!(
        "\u{feff}{UPLOAD_HEADER}\r\nS1,s1@d.org,\"Ann\",\"Lee, Jr.\",Student,HS,9,Active,\r\n,,,,,,,,\r\nS2,s2@d.org,Ben,Ng,Student,HS,9,Active,\r\n"
    )
    .into_bytes();
    let id = env
        .upload("crlf.csv", std::str::from_utf8(&sent).unwrap())
        .await;
    env.app.queue.drain().await.unwrap();
    let back = env
        .c
        .http
        .get(format!("{}/uploads/{id}/files/uploaded", env.c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status().as_u16(), 200);
    assert_eq!(back.bytes().await.unwrap().to_vec(), sent, "byte for byte");

    // A file with passwords is still sent back with them emptied, in its own line ends.
    let with_password =
        format!("{UPLOAD_HEADER}\r\nS3,s3@d.org,Cy,Ho,Student,HS,9,Active,Secret-pass-1\r\n");
    let id = env.upload("pw.csv", &with_password).await;
    env.app.queue.drain().await.unwrap();
    let back = env.c.get(&format!("/uploads/{id}/files/uploaded")).await;
    assert_eq!(back.status, 200);
    assert!(!back.body.contains("Secret-pass-1"), "{}", back.body);
    assert_eq!(
        back.body,
        format!("{UPLOAD_HEADER}\r\nS3,s3@d.org,Cy,Ho,Student,HS,9,Active,\r\n")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_403_keeps_the_layout_and_each_page_shows_one_banner(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(env.district.id)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    env.app
        .member(env.district.id, "teacher", "user", &[hs])
        .await;
    let member = env.app.client();
    assert_eq!(member.sign_in("teacher", PASSWORD).await.status, 303);
    let r = member.get("/uploads").await;
    assert_eq!(r.status, 403);
    for part in [
        "403 · Forbidden",
        "href=\"/account\"",
        "Sign out",
        "action=\"/logout\"",
    ] {
        assert!(r.body.contains(part), "the 403 has {part}:\n{}", r.body);
    }
    // Signed out, an error page has no navigation (and still renders).
    let anon = env.app.client().get("/nowhere").await;
    assert_eq!(anon.status, 404);
    assert!(anon.body.contains("404 · Not Found"), "{}", anon.body);
    assert!(!anon.body.contains("Sign out"));

    // Archive: the page's standing notice, and no flash repeating it.
    env.upload("one.csv", &students(1)).await;
    env.app.queue.drain().await.unwrap();
    let ann = user_by_custom_id(&env.app.pool, env.district.id, "S1").await;
    let r = env.c.post(&format!("/users/{ann}/archive"), &[]).await;
    assert_eq!(r.status, 303);
    let page = env.c.get(&format!("/users/{ann}")).await.body;
    assert!(page.contains("This user is archived"));
    assert_eq!(page.matches("role=\"status\"").count(), 0, "{page}");
    let r = env.c.post(&format!("/users/{ann}/restore"), &[]).await;
    assert_eq!(r.status, 303);
    let page = env.c.get(&format!("/users/{ann}")).await.body;
    assert_eq!(page.matches("role=\"status\"").count(), 1, "{page}");
    assert!(page.contains("is restored"));

    // Pause: the connection's standing "Paused" notice, once.
    let r = env
        .c
        .post("/syncs", &[("kind", "oneroster_csv"), ("name", "SIS set")])
        .await;
    let conn = r.location.unwrap();
    let r = env
        .c
        .post(&format!("{conn}/pause"), &[("paused", "true")])
        .await;
    assert_eq!(r.status, 303);
    let page = env.c.get(&conn).await.body;
    assert_eq!(page.matches("role=\"status\"").count(), 1, "{page}");
    assert!(page.contains("Paused"));
    let r = env
        .c
        .post(&format!("{conn}/pause"), &[("paused", "false")])
        .await;
    assert_eq!(r.status, 303);
    let page = env.c.get(&conn).await.body;
    assert_eq!(page.matches("role=\"status\"").count(), 1, "{page}");
    assert!(page.contains("Resumed"));
}

#[sqlx::test(migrations = "./migrations")]
async fn schools_are_ticked_not_ctrl_clicked(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let ms = env.app.school(env.district.id, "MS", "Middle School").await;
    let hs: Uuid =
        sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1 AND external_id = 'HS'")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let form = env.c.get("/users/new").await.body;
    assert!(!form.contains("multiple"), "no multi-select");
    for s in [hs, ms] {
        assert!(
            form.contains(&format!("type=\"checkbox\" name=\"schools\" value=\"{s}\"")),
            "{form}"
        );
    }
    let (hs_s, ms_s) = (hs.to_string(), ms.to_string());
    let r = env
        .c
        .post(
            "/users",
            &[
                ("first_name", "Two"),
                ("last_name", "Schools"),
                ("role", "Teacher"),
                ("email", "two@d.org"),
                ("schools", &hs_s),
                ("schools", &ms_s),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("User added"), "{}", r.body);
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_schools us JOIN users u ON u.id = us.user_id AND u.district_id = us.district_id
         WHERE u.district_id = $1 AND u.email = 'two@d.org'",
    )
    .bind(env.district.id)
    .fetch_one(&env.app.pool)
    .await
    .unwrap();
    assert_eq!(n, 2);
    let id: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE district_id = $1 AND email = 'two@d.org'")
            .bind(env.district.id)
            .fetch_one(&env.app.pool)
            .await
            .unwrap();
    let page = env.c.get(&format!("/users/{id}")).await.body;
    for s in [&hs_s, &ms_s] {
        assert!(
            page.contains(&format!("name=\"schools\" value=\"{s}\" checked>")),
            "ticked on the user's page: {s}"
        );
    }
}
