//! Issue 16, items 1, 2 and 4: search that ignores accents and case both ways (PostgreSQL's
//! `search_fold()` and the Rust `domain::fold` agree; the database path and the in-memory
//! index find the same users), usernames generated alike by every way in, and the Users
//! screen's exact totals and "page N of M".

use crate::helpers::*;
use rollcall::domain::fold::fold;
use sqlx::PgPool;
use uuid::Uuid;

/// Names from the districts the issue speaks of, and some harder ones.
const NAMES: &[&str] = &[
    "José García",
    "Jose Garcia",
    "María Muntz",
    "Nguyễn Văn An",
    "Trần Thị Hương",
    "Đặng Ưng",
    "Müller",
    "Mueller",
    "MÜLLER",
    "Straße",
    "STRAẞE",
    "Ægir",
    "Bjørn Ødegård",
    "Þórður Guðmundsson",
    "Łukasz Żółć",
    "Œuvre",
    "Işık İlker",
    "Zoë-Ann O'Brien",
    "Jose\u{301} Garci\u{301}a",
    "Σοφία Παπαδοπούλου",
    "Йосиф Ёлкин",
    "李王",
    "s00012@Alpha.org",
    "",
];

/// Every character of the blocks names are written in: Latin (with its extensions and
/// Vietnamese), Greek, Cyrillic, and the combining marks themselves.
fn blocks() -> Vec<String> {
    [
        0x20..0x7f,
        0xa0..0x250,
        0x250..0x2b0,
        0x300..0x370,
        0x370..0x400,
        0x400..0x530,
        0x1e00..0x1f00,
        0x1f00..0x2000,
    ]
    .into_iter()
    .flatten()
    .filter_map(char::from_u32)
    .map(|c| format!("a{c}b"))
    .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn postgres_and_rust_fold_alike(pool: PgPool) {
    let texts: Vec<String> = NAMES
        .iter()
        .map(|s| s.to_string())
        .chain(blocks())
        .collect();
    let folded: Vec<String> = sqlx::query_scalar(
        "SELECT search_fold(t) FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i",
    )
    .bind(&texts)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(folded.len(), texts.len());
    let differ: Vec<String> = texts
        .iter()
        .zip(&folded)
        .filter(|(t, f)| fold(t) != **f)
        .map(|(t, f)| format!("{t:?}: rust {:?}, postgres {f:?}", fold(t)))
        .collect();
    assert!(differ.is_empty(), "{} differ: {differ:#?}", differ.len());
    // And the stored search text is that fold.
    let d = Uuid::new_v4();
    sqlx::query("INSERT INTO districts (id, slug, name) VALUES ($1, 'x', 'X')")
        .bind(d)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, custom_id)
         VALUES ($1, $2, 'JG@Alpha.org', 'jgarcia', 'José', 'GARCÍA', 'Student', 'Ñ-1')",
    )
    .bind(d)
    .bind(Uuid::new_v4())
    .execute(&pool)
    .await
    .unwrap();
    let text: String = sqlx::query_scalar("SELECT search_text FROM users WHERE district_id = $1")
        .bind(d)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(text, "jose garcia jg@alpha.org jgarcia n-1");
}

/// The users a list page links to, in page order.
fn listed(body: &str) -> Vec<Uuid> {
    body.match_indices("<td><a href=\"/users/")
        .filter_map(|(i, m)| Uuid::parse_str(body[i + m.len()..].get(..36)?).ok())
        .collect()
}

async fn add(pool: &PgPool, district: Uuid, first: &str, last: &str) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (district_id, id, username, first_name, last_name, role, source)
         VALUES ($1, $2, $3, $4, $5, 'Student', 'file:s.csv')",
    )
    .bind(district)
    .bind(id)
    .bind(format!("u{}", id.simple()))
    .bind(first)
    .bind(last)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Searches with and without accents, over HTTP, answered by PostgreSQL and then by the
/// district's in-memory index: the same users either way.
#[sqlx::test(migrations = "./migrations")]
async fn accents_and_case_are_ignored_both_ways_on_both_search_paths(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.search_index_min_users = 5).await;
    let d = app.district("alpha").await;
    let p = &app.pool;
    let jose = add(p, d.id, "José", "García").await;
    let plain_jose = add(p, d.id, "Jose", "Garcia").await;
    let maria = add(p, d.id, "María", "Muntz").await;
    let nguyen = add(p, d.id, "An", "Nguyễn").await;
    let muller = add(p, d.id, "Hans", "Müller").await;
    let mueller = add(p, d.id, "Karl", "Mueller").await;
    let aegir = add(p, d.id, "Ægir", "Sigurðsson").await;
    let bjorn = add(p, d.id, "Bjørn", "Dæhlie").await;
    let lukasz = add(p, d.id, "Łukasz", "Nowak").await;
    for i in 0..6 {
        add(p, d.id, "Other", &format!("Person{i}")).await;
    }
    let c = app.client();
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303
    );
    let cases: Vec<(&str, Vec<Uuid>)> = vec![
        ("jose garcia", vec![plain_jose, jose]),
        ("José García", vec![plain_jose, jose]),
        ("JOSE GARCÍA", vec![plain_jose, jose]),
        ("maria muntz", vec![maria]),
        ("María", vec![maria]),
        ("nguyen", vec![nguyen]),
        ("Nguyễn", vec![nguyen]),
        ("muller", vec![muller]),
        ("müller", vec![muller]),
        // Decided (domain::fold): ü is u; "mueller" is another spelling.
        ("mueller", vec![mueller]),
        ("aegir", vec![aegir]),
        ("Ægir", vec![aegir]),
        ("sigurdsson", vec![aegir]),
        ("bjorn", vec![bjorn]),
        ("daehlie", vec![bjorn]),
        ("lukasz", vec![lukasz]),
    ];
    let search = |q: &str| format!("/users?q={}", urlencode(q));
    // PostgreSQL: no index built yet for the district.
    for (q, want) in &cases {
        let page = c.get(&search(q)).await;
        assert_eq!(page.status, 200, "{q}");
        let mut got = listed(&page.body);
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "{q} (PostgreSQL)");
    }
    // The in-memory index: every page from it, the same users.
    assert!(app.search.build(&app.pool, d.id, false).await.unwrap());
    for (q, want) in &cases {
        let served = app.search.served();
        let page = c.get(&search(q)).await;
        assert_eq!(page.status, 200, "{q}");
        assert_eq!(app.search.served(), served + 1, "{q}: from the index");
        let mut got = listed(&page.body);
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "{q} (index)");
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_string()
}

/// A username generated by the add-user form and one generated by a file are made by the
/// same rule (`domain::username`), letters transliterated; an existing user's username is
/// kept when the file comes again.
#[sqlx::test(migrations = "./migrations")]
async fn every_way_in_generates_the_same_transliterated_usernames(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    app.school(d.id, "N1", "North Elementary").await;
    // An existing user whose username an older rule generated.
    sqlx::query(
        "INSERT INTO users (district_id, id, custom_id, username, first_name, last_name, role, source)
         VALUES ($1, $2, 'OLD1', 'thi.nguyn', 'Thị', 'Nguyễn', 'Student', 'file:students.csv')",
    )
    .bind(d.id)
    .bind(Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("students.csv");
    std::fs::write(
        &file,
        "custom_id,first_name,last_name,role,school_external_id\n\
         OLD1,Thị,Nguyễn,Student,N1\n\
         S1,Văn,Nguyễn,Student,N1\n\
         S2,Ægir,Þórsson,Student,N1\n\
         S3,Łukasz,Müller,Student,N1\n",
    )
    .unwrap();
    let config = rollcall::config::Config::for_tests(dir.path().to_path_buf());
    for _ in 0..2 {
        rollcall::ops::import_file(
            &app.pool,
            &app.clock,
            &config,
            d.id,
            &file,
            None,
            false,
            false,
            Default::default(),
        )
        .await
        .unwrap();
    }
    let username = |custom_id: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT username FROM users WHERE district_id = $1 AND custom_id = $2",
            )
            .bind(d.id)
            .bind(custom_id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(username("OLD1").await, "thi.nguyn", "never regenerated");
    assert_eq!(username("S1").await, "van.nguyen");
    assert_eq!(username("S2").await, "aegir.thorsson");
    assert_eq!(username("S3").await, "lukasz.muller");

    // The form: the same names, the same stems (numbered after the file's users).
    let c = app.client();
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303
    );
    let north: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let n = north.to_string();
    for (i, (first, last)) in [("Ægir", "Þórsson"), ("Łukasz", "Müller"), ("Nguyễn", "Bảo")]
        .into_iter()
        .enumerate()
    {
        let custom_id = format!("F{i}");
        let page = c
            .post(
                "/users",
                &[
                    ("first_name", first),
                    ("last_name", last),
                    ("role", "Student"),
                    ("grade", "5"),
                    ("custom_id", &custom_id),
                    ("schools", &n),
                ],
            )
            .await;
        assert!(
            [200, 303].contains(&page.status),
            "{first} {last}: {}",
            page.body
        );
    }
    let mut form_made: Vec<String> = sqlx::query_scalar(
        "SELECT username FROM users WHERE district_id = $1 AND source = 'manual' AND role = 'Student'
         ORDER BY username",
    )
    .bind(d.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    form_made.sort();
    assert_eq!(
        form_made,
        ["aegir.thorsson2", "lukasz.muller2", "nguyen.bao"]
    );
}

/// The Users screen's counts are exact (the district total and the common filters), kept by
/// the writes themselves, past the 10,000 where counting used to stop; keyset pages say
/// "Page N of M".
#[sqlx::test(migrations = "./migrations")]
async fn exact_totals_and_page_n_of_m(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let d = app.district("alpha").await;
    sqlx::query(
        "INSERT INTO users (district_id, id, username, first_name, last_name, role, grade, status, source, archived_at)
         SELECT $1, gen_random_uuid(), 'user' || g, 'F' || g, 'L' || lpad(g::text, 6, '0'),
                CASE WHEN g % 10 = 0 THEN 'Teacher' ELSE 'Student' END,
                CASE WHEN g % 10 = 0 THEN 'Unspecified' ELSE (g % 12 + 1)::text END,
                CASE WHEN g % 7 = 0 THEN 'inactive' ELSE 'active' END,
                CASE WHEN g % 2 = 0 THEN 'file:a.csv' ELSE 'file:b.csv' END,
                CASE WHEN g % 101 = 0 THEN now() END
         FROM generate_series(1, 12000) g",
    )
    .bind(d.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let c = app.client();
    assert_eq!(
        c.sign_in(&d.admin_email, &d.admin_password).await.status,
        303
    );
    let truth = |cond: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT count(*) FROM users u WHERE u.district_id = $1 AND {cond}"
            ))
            .bind(d.id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let count_label = |n: i64| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        format!("<span class=\"count\">{out} users</span>")
    };
    let check = |path: &'static str, cond: &'static str| {
        let c = &c;
        async move {
            let n = truth(cond).await;
            let page = c.get(path).await;
            assert_eq!(page.status, 200, "{path}");
            assert!(
                page.body.contains(&count_label(n)),
                "{path}: {n} exactly\n{}",
                &page.body[..page.body.len().min(3000)]
            );
            n
        }
    };
    let live = check("/users", "u.archived_at IS NULL").await;
    assert!(live > 10_000, "past the old cap");
    check(
        "/users?status=active",
        "u.archived_at IS NULL AND u.status = 'active'",
    )
    .await;
    check(
        "/users?status=inactive",
        "u.archived_at IS NULL AND u.status = 'inactive'",
    )
    .await;
    check("/users?status=archived", "u.archived_at IS NOT NULL").await;
    check(
        "/users?role=Teacher",
        "u.archived_at IS NULL AND u.role = 'Teacher'",
    )
    .await;
    check(
        "/users?grade=5&source=file%3Ab.csv",
        "u.archived_at IS NULL AND u.role = 'Student' AND u.grade = '5' AND u.source = 'file:b.csv'",
    )
    .await;
    let page = c.get("/users").await;
    let all = truth("true").await;
    assert!(
        page.body.contains(&format!(
            "District total {}:",
            count_label(all)
                .trim_start_matches("<span class=\"count\">")
                .trim_end_matches(" users</span>")
        )),
        "the district's total"
    );

    // Page N of M, following Next and Previous.
    let m = (live + 49) / 50;
    let position = |n: i64| {
        format!(
            "Page {} of {}",
            n,
            count_label(m)
                .trim_start_matches("<span class=\"count\">")
                .trim_end_matches(" users</span>")
        )
    };
    assert!(page.body.contains(&position(1)), "first page");
    let next = rel_link(&page.body, "next").expect("Next");
    let two = c.get(&next).await;
    assert!(
        two.body.contains(&position(2)),
        "second page: {next} {}",
        &two.body[two.body.find("class=\"pager\"").unwrap_or(0)..]
    );
    let three = c.get(&rel_link(&two.body, "next").expect("Next")).await;
    assert!(three.body.contains(&position(3)), "third page");
    let back = c
        .get(&rel_link(&three.body, "prev").expect("Previous"))
        .await;
    assert!(back.body.contains(&position(2)), "back to the second page");
    let last = c.get("/users?dir=desc").await;
    assert!(last.body.contains(&position(1)), "a new order starts at 1");

    // Writes of every kind keep the counts: statuses, archiving, deletes, a new user.
    sqlx::query("UPDATE users SET status = 'inactive' WHERE district_id = $1 AND role = 'Teacher' AND status = 'active'")
        .bind(d.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET archived_at = now() WHERE district_id = $1 AND grade = '3'")
        .bind(d.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE district_id = $1 AND grade = '4'")
        .bind(d.id)
        .execute(&app.pool)
        .await
        .unwrap();
    // Many small statements, as the user form makes: the deltas are folded by a reader.
    for i in 0..250 {
        sqlx::query("UPDATE users SET status = CASE status WHEN 'active' THEN 'inactive' ELSE 'active' END WHERE district_id = $1 AND username = $2")
            .bind(d.id)
            .bind(format!("user{}", i * 3 + 1))
            .execute(&app.pool)
            .await
            .unwrap();
    }
    // A change of nothing counted writes no delta.
    let deltas = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_count_deltas")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = deltas(app.pool.clone()).await;
    sqlx::query("UPDATE users SET first_name = first_name || 'x' WHERE district_id = $1")
        .bind(d.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        deltas(app.pool.clone()).await,
        before,
        "no counted change, no row"
    );
    assert!(before > 250);
    check("/users", "u.archived_at IS NULL").await;
    assert!(deltas(app.pool.clone()).await < 200, "folded by the reader");
    check(
        "/users?status=inactive",
        "u.archived_at IS NULL AND u.status = 'inactive'",
    )
    .await;
    check("/users?status=archived", "u.archived_at IS NOT NULL").await;
    check(
        "/users?role=Teacher&status=active",
        "u.archived_at IS NULL AND u.role = 'Teacher' AND u.status = 'active'",
    )
    .await;
    // The other district's counts are its own.
    let other = app.district("beta").await;
    let oc = app.client();
    assert_eq!(
        oc.sign_in(&other.admin_email, &other.admin_password)
            .await
            .status,
        303
    );
    assert!(
        oc.get("/users")
            .await
            .body
            .contains("<span class=\"count\">1 user</span>")
    );
}

/// The href of the link with `rel="…"` (Next / Previous).
fn rel_link(body: &str, rel: &str) -> Option<String> {
    let marker = format!("\" rel=\"{rel}\"");
    let end = body.find(&marker)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(body[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}
