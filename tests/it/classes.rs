//! The Classes screens (issue 15): the list (search by title, class ID and teacher;
//! filters; keyset pages), the class page (inactive users marked, archived ones hidden), the
//! user page's classes, school admins held to their schools, the classes and enrollments
//! downloads and the classes API. Rosters are seeded with SQL (`seed_rosters`) until the
//! roster engine fills them.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// A district with two schools (HS, MS), two terms, teachers and students, and classes:
/// HS: Algebra I (Nguyen + Ng, Ann, Ben inactive, Cal archived), Biology (Ng, Ann),
/// Chemistry (archived class), Drama (no one), Economics (Fall term);
/// MS: Art 7 (Okafor, Dee).
struct Env {
    env: UploadEnv,
    d: Uuid,
    hs: Uuid,
    ms: Uuid,
    fall: Uuid,
    spring: Uuid,
    algebra: Uuid,
    biology: Uuid,
    chemistry: Uuid,
    art: Uuid,
    ann: Uuid,
    ben: Uuid,
    cal: Uuid,
    nguyen: Uuid,
}

impl Env {
    async fn new(pool: PgPool) -> Env {
        let env = UploadEnv::new(pool).await;
        let c = seed_classes(&env).await;
        Env {
            d: env.district.id,
            env,
            hs: c.hs,
            ms: c.ms,
            fall: c.fall,
            spring: c.spring,
            algebra: c.algebra,
            biology: c.biology,
            chemistry: c.chemistry,
            art: c.art,
            ann: c.ann,
            ben: c.ben,
            cal: c.cal,
            nguyen: c.nguyen,
        }
    }

    async fn titles(&self, c: &Client, path: &str) -> Vec<String> {
        let page = c.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        titles(&page.body)
    }
}

/// The class titles a Classes page lists, in order.
fn titles(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("<td><a href=\"/classes/") {
        rest = &rest[i..];
        let start = rest.find('>').unwrap() + 1;
        let start = start + rest[start..].find('>').unwrap() + 1;
        let end = start + rest[start..].find('<').unwrap();
        out.push(rest[start..end].to_string());
        rest = &rest[end..];
    }
    out
}

/// A class's id by its external ID.
async fn class_id(pool: &PgPool, d: Uuid, external_id: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM classes WHERE district_id = $1 AND external_id = $2")
        .bind(d)
        .bind(external_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn link(body: &str, rel: &str) -> Option<String> {
    let i = body.find(&format!("rel=\"{rel}\""))?;
    let before = &body[..i];
    let start = before.rfind("href=\"")? + 6;
    let end = start + before[start..].find('"')?;
    Some(
        before[start..end]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn the_list_searches_titles_ids_and_teachers_and_filters(pool: PgPool) {
    let e = Env::new(pool).await;
    let c = &e.env.c;
    let all = c.get("/classes").await;
    assert!(all.body.contains("href=\"/classes\""), "nav link");
    assert!(all.body.contains("5 classes"), "{}", all.body);
    assert_eq!(
        titles(&all.body),
        ["Algebra I", "Art 7", "Biology", "Drama", "Economics"]
    );
    // Algebra I: both teachers (the primary first, marked), two students (Cal is archived).
    let row = &all.body[all.body.find("Algebra I").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("HS-ALG-1") && row.contains("High School") && row.contains("Spring 2026"));
    let (linh, wei) = (
        row.find("Linh Nguyen").unwrap(),
        row.find("Wei Ng").unwrap(),
    );
    assert!(linh < wei, "primary teacher first: {row}");
    assert!(row.contains("Primary"), "{row}");
    assert!(row.contains(&format!("/users/{}", e.nguyen)));
    assert!(row.contains("<td class=\"num\">2</td>"), "{row}");

    for (q, want) in [
        ("/classes?q=algebra", vec!["Algebra I"]),
        ("/classes?q=bio-1", vec!["Biology"]), // part of a class ID
        ("/classes?q=NGUYEN", vec!["Algebra I"]), // a teacher's name
        ("/classes?q=Ng", vec!["Algebra I", "Biology"]), // two letters: Wei Ng, Linh Nguyen
        ("/classes?q=wei+ng", vec!["Algebra I", "Biology"]),
        ("/classes?q=okafor", vec!["Art 7"]),
        ("/classes?q=tran%40d.org", vec![]), // an email is not a teacher's name
        ("/classes?q=zzz", vec![]),
    ] {
        assert_eq!(e.titles(c, q).await, want, "{q}");
    }
    let ms = format!("/classes?school={}", e.ms);
    assert_eq!(e.titles(c, &ms).await, ["Art 7"]);
    let fall = format!("/classes?term={}", e.fall);
    assert_eq!(e.titles(c, &fall).await, ["Economics"]);
    let spring_hs = format!("/classes?term={}&school={}&q=a", e.spring, e.hs);
    assert_eq!(e.titles(c, &spring_hs).await, ["Algebra I"]);
    assert_eq!(e.titles(c, "/classes?status=archived").await, ["Chemistry"]);
    assert_eq!(
        e.titles(c, "/classes?status=ARCHIVED&q=chem").await,
        ["Chemistry"]
    );
    // Nonsense filters are dropped, not errors.
    assert_eq!(
        e.titles(c, "/classes?school=nope&status=gone").await.len(),
        5
    );
    let none = c.get("/classes?q=zzz").await;
    assert!(none.body.contains("No classes match these filters"));
    // The downloads carry the filters.
    assert!(
        none.body.contains("href=\"/classes.csv?q=zzz\""),
        "{}",
        none.body
    );
    assert!(none.body.contains("href=\"/enrollments.csv?q=zzz\""));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_list_pages_forward_and_back_in_title_order(pool: PgPool) {
    let e = Env::new(pool).await;
    let c = &e.env.c;
    let mut seen = Vec::new();
    let mut path = "/classes?per=2".to_string();
    let mut pages = Vec::new();
    loop {
        let page = c.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        let t = titles(&page.body);
        assert!(t.len() <= 2);
        seen.extend(t.clone());
        pages.push(t);
        match link(&page.body, "next") {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["Algebra I", "Art 7", "Biology", "Drama", "Economics"]
    );
    assert_eq!(pages.len(), 3);
    // Back from the last page.
    let last = c.get(&path).await;
    assert!(last.body.contains("« First"));
    let prev = link(&last.body, "prev").expect("a previous page");
    let back = c.get(&prev).await;
    assert_eq!(titles(&back.body), pages[1]);
    let prev = link(&back.body, "prev").expect("the first page");
    let first = c.get(&prev).await;
    assert_eq!(titles(&first.body), pages[0]);
    assert!(link(&first.body, "prev").is_none());
    // A forged cursor is a clear 400, not a 500.
    let bad = c.get("/classes?after=bm90LWpzb24").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("start from the first page"));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_class_page_marks_inactive_users_and_hides_archived_ones(pool: PgPool) {
    let e = Env::new(pool).await;
    let c = &e.env.c;
    let page = c.get(&format!("/classes/{}", e.algebra)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    for fact in [
        "Algebra I",
        "HS-ALG-1",
        "High School (HS)",
        "Spring 2026",
        "CHS-ALG-1",
        "Math",
        "9, 10",
        "roster.csv",
    ] {
        assert!(b.contains(fact), "{fact} missing:\n{b}");
    }
    let teachers = &b[b.find("id=\"teachers\"").unwrap()..b.find("id=\"students\"").unwrap()];
    let students = &b[b.find("id=\"students\"").unwrap()..];
    assert!(teachers.contains("Linh Nguyen") && teachers.contains("Wei Ng"));
    assert!(teachers.find("Linh Nguyen").unwrap() < teachers.find("Wei Ng").unwrap());
    assert_eq!(teachers.matches(">Primary<").count(), 1, "{teachers}");
    assert!(students.contains(&format!("<a href=\"/users/{}\">Ann Avery</a>", e.ann)));
    assert!(students.contains(&format!("<a href=\"/users/{}\">Ben Brook</a>", e.ben)));
    let ben = &students[students.find("Ben Brook").unwrap()..];
    let ben = &ben[..ben.find("</tr>").unwrap()];
    assert!(ben.contains("Inactive"), "{ben}");
    let ann = &students[students.find("Ann Avery").unwrap()..];
    assert!(!ann[..ann.find("</tr>").unwrap()].contains("Inactive"));
    // (The flash of Cal's archiving may name him above the class; the lists do not.)
    assert!(
        !teachers.contains("Cal Archer") && !students.contains("Cal Archer"),
        "archived users are not listed"
    );
    assert!(!students.contains(&e.cal.to_string()));

    // The fall term shows its dates; an archived class says so.
    let eco: Uuid = sqlx::query_scalar("SELECT id FROM classes WHERE external_id = 'HS-ECO-1'")
        .fetch_one(&e.env.app.pool)
        .await
        .unwrap();
    let page = c.get(&format!("/classes/{eco}")).await;
    assert!(
        page.body.contains("Fall 2025 (2025-08-20 – 2025-12-19)"),
        "{}",
        page.body
    );
    let page = c.get(&format!("/classes/{}", e.chemistry)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("status-archived"));

    // Another district's class, a malformed id and an unknown one: 404.
    let other = e.env.app.district("shelbyville").await;
    let other_school = e.env.app.school(other.id, "HS", "Shelbyville High").await;
    let theirs = seed_rosters(
        &e.env.app.pool,
        other.id,
        &[RosterSeed {
            class: "SH-1",
            title: "Shelbyville Secret",
            school: other_school,
            term: None,
            teachers: &[],
            students: &[],
        }],
    )
    .await;
    for path in [
        format!("/classes/{}", theirs[0]),
        "/classes/not-a-guid".to_string(),
        format!("/classes/{}", Uuid::new_v4()),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("Shelbyville Secret"));
    }
    assert!(
        !c.get("/classes?q=secret")
            .await
            .body
            .contains("Shelbyville")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn the_user_page_lists_the_users_classes(pool: PgPool) {
    let e = Env::new(pool).await;
    let c = &e.env.c;
    let page = c.get(&format!("/users/{}", e.ann)).await;
    assert_eq!(page.status, 200);
    let b = &page.body[page.body.find("id=\"classes\"").expect("a Classes section")..];
    let b = &b[..b.find("</section>").unwrap()];
    for (id, title) in [(e.algebra, "Algebra I"), (e.biology, "Biology")] {
        assert!(
            b.contains(&format!("<a href=\"/classes/{id}\">{title}</a>")),
            "{b}"
        );
    }
    assert!(b.contains("Economics") && b.contains("Student") && b.contains("High School"));
    let teacher = c.get(&format!("/users/{}", e.nguyen)).await;
    assert!(
        teacher
            .body
            .contains("Teacher <span class=\"badge\">Primary</span>")
    );
    let dee = user_by_custom_id(&e.env.app.pool, e.d, "S-4").await;
    let page = c.get(&format!("/users/{dee}")).await;
    assert!(page.body.contains("Art 7"));
    let t3 = user_by_custom_id(&e.env.app.pool, e.d, "T-3").await;
    sqlx::query("DELETE FROM enrollments WHERE user_id = $1")
        .bind(t3)
        .execute(&e.env.app.pool)
        .await
        .unwrap();
    let page = c.get(&format!("/users/{t3}")).await;
    assert!(page.body.contains("Not enrolled in any class."));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_school_admin_sees_only_their_schools_classes(pool: PgPool) {
    let e = Env::new(pool).await;
    e.env
        .app
        .member(e.d, "principal", "school_admin", &[e.ms])
        .await;
    let p = e.env.app.client();
    assert_eq!(p.sign_in("principal", PASSWORD).await.status, 303);
    let list = p.get("/classes").await;
    assert!(list.body.contains("href=\"/classes\""), "nav link");
    assert_eq!(titles(&list.body), ["Art 7"]);
    assert!(list.body.contains("1 class"));
    assert!(
        !list.body.contains("High School"),
        "only their schools in the filter"
    );
    // A search or a filter naming another school does not reach across.
    assert_eq!(
        e.titles(&p, "/classes?q=algebra").await,
        Vec::<String>::new()
    );
    assert_eq!(
        e.titles(&p, &format!("/classes?school={}", e.hs)).await,
        Vec::<String>::new()
    );
    assert_eq!(p.get(&format!("/classes/{}", e.art)).await.status, 200);
    assert_eq!(p.get(&format!("/classes/{}", e.algebra)).await.status, 404);
    for path in ["/classes.csv", "/enrollments.csv"] {
        let csv = p.get(path).await;
        assert_eq!(csv.status, 200);
        assert!(csv.body.contains("MS-ART-7"), "{path}");
        assert!(!csv.body.contains("HS-"), "{path}: {}", csv.body);
    }
    // Dee's page lists her class (her school is theirs).
    let dee = user_by_custom_id(&e.env.app.pool, e.d, "S-4").await;
    assert!(p.get(&format!("/users/{dee}")).await.body.contains("Art 7"));
}

/// The downloads' exact bytes: BOM, the roster header, one row per class (classes) or per
/// enrollment (enrollments; a class with none keeps a row of its own), archived users'
/// enrollments included (the file must re-import as the same rosters).
#[sqlx::test(migrations = "./migrations")]
async fn the_downloads_are_roster_csvs(pool: PgPool) {
    let e = Env::new(pool).await;
    // A formula in a cell is neutralised.
    sqlx::query("UPDATE classes SET period = '=1+2' WHERE external_id = 'HS-DRA-1'")
        .execute(&e.env.app.pool)
        .await
        .unwrap();
    let get = |path: &'static str| {
        let http = e.env.c.http.clone();
        let url = format!("{}{path}", e.env.c.base);
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let h = r.headers().clone();
            (h, r.bytes().await.unwrap().to_vec())
        }
    };
    let header = "class_external_id,class_title,school_external_id,role,user,primary,course_code,subject,period,grades,term,term_start,term_end,class_guid\n";
    let (alg, art, bio) = (e.algebra, e.art, e.biology);
    let dra = class_id(&e.env.app.pool, e.d, "HS-DRA-1").await;
    let eco = class_id(&e.env.app.pool, e.d, "HS-ECO-1").await;
    let (h, body) = get("/classes.csv").await;
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"springfield-classes.csv\""
    );
    assert_eq!(h["cache-control"], "no-store");
    let want = format!(
        "\u{feff}{header}\
         HS-ALG-1,Algebra I,HS,,,,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         MS-ART-7,Art 7,MS,,,,CMS-ART-7,Math,2,9;10,SPR26,,,{art}\n\
         HS-BIO-1,Biology,HS,,,,CHS-BIO-1,Math,2,9;10,SPR26,,,{bio}\n\
         HS-DRA-1,Drama,HS,,,,CHS-DRA-1,Math,'=1+2,9;10,,,,{dra}\n\
         HS-ECO-1,Economics,HS,,,,CHS-ECO-1,Math,2,9;10,FALL25,2025-08-20,2025-12-19,{eco}\n"
    );
    assert_eq!(String::from_utf8(body).unwrap(), want);

    let (h, body) = get("/enrollments.csv").await;
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"springfield-enrollments.csv\""
    );
    let want = format!(
        "\u{feff}{header}\
         HS-ALG-1,Algebra I,HS,teacher,T-1,true,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         HS-ALG-1,Algebra I,HS,teacher,T-2,false,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         HS-ALG-1,Algebra I,HS,student,S-1,false,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         HS-ALG-1,Algebra I,HS,student,S-2,false,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         HS-ALG-1,Algebra I,HS,student,S-3,false,CHS-ALG-1,Math,2,9;10,SPR26,,,{alg}\n\
         MS-ART-7,Art 7,MS,teacher,T-3,true,CMS-ART-7,Math,2,9;10,SPR26,,,{art}\n\
         MS-ART-7,Art 7,MS,student,S-4,false,CMS-ART-7,Math,2,9;10,SPR26,,,{art}\n\
         HS-BIO-1,Biology,HS,teacher,T-2,true,CHS-BIO-1,Math,2,9;10,SPR26,,,{bio}\n\
         HS-BIO-1,Biology,HS,student,S-1,false,CHS-BIO-1,Math,2,9;10,SPR26,,,{bio}\n\
         HS-DRA-1,Drama,HS,,,,CHS-DRA-1,Math,'=1+2,9;10,,,,{dra}\n\
         HS-ECO-1,Economics,HS,student,S-1,false,CHS-ECO-1,Math,2,9;10,FALL25,2025-08-20,2025-12-19,{eco}\n"
    );
    assert_eq!(String::from_utf8(body).unwrap(), want);

    // The user key: custom_id, else email, else the GUID.
    let dee = user_by_custom_id(&e.env.app.pool, e.d, "S-4").await;
    sqlx::query("UPDATE users SET custom_id = NULL, email = 'dee@d.org' WHERE id = $1")
        .bind(dee)
        .execute(&e.env.app.pool)
        .await
        .unwrap();
    let t3 = user_by_custom_id(&e.env.app.pool, e.d, "T-3").await;
    sqlx::query("UPDATE users SET custom_id = NULL, email = NULL WHERE id = $1")
        .bind(t3)
        .execute(&e.env.app.pool)
        .await
        .unwrap();
    let filtered = e
        .env
        .c
        .get(&format!("/enrollments.csv?school={}", e.ms))
        .await;
    assert_eq!(
        filtered.body,
        format!(
            "\u{feff}{header}\
             MS-ART-7,Art 7,MS,teacher,{t3},true,CMS-ART-7,Math,2,9;10,SPR26,,,{art}\n\
             MS-ART-7,Art 7,MS,student,dee@d.org,false,CMS-ART-7,Math,2,9;10,SPR26,,,{art}\n"
        )
    );
    let r = e
        .env
        .c
        .http
        .get(format!("{}/classes.csv?status=archived", e.env.c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"springfield-classes-filtered.csv\""
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("HS-CHEM-1") && !text.contains("HS-ALG-1"),
        "{text}"
    );
}

/// More classes than one download batch: every class once, in title order.
#[sqlx::test(migrations = "./migrations")]
async fn a_download_streams_past_its_batches(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let d = env.district.id;
    let hs: Uuid = sqlx::query_scalar("SELECT id FROM schools WHERE district_id = $1")
        .bind(d)
        .fetch_one(&env.app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO classes (district_id, id, external_id, school_id, title, source)
         SELECT $1, gen_random_uuid(), 'C' || n, $2, 'Class ' || lpad(n::text, 4, '0'), 'manual'
         FROM generate_series(1, 1203) n",
    )
    .bind(d)
    .bind(hs)
    .execute(&env.app.pool)
    .await
    .unwrap();
    let body = env.c.get("/classes.csv").await.body;
    let lines: Vec<&str> = body.lines().skip(1).collect();
    assert_eq!(lines.len(), 1203);
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("C{},Class {:04},", i + 1, i + 1)),
            "{l}"
        );
    }
    let list = env.c.get("/classes").await;
    assert!(list.body.contains("1,203 classes"));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_api_pages_classes_and_their_enrollments(pool: PgPool) {
    let e = Env::new(pool).await;
    let token = rollcall::ops::create_token(
        &e.env.app.pool,
        e.d,
        "t",
        &rollcall::db::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let api = reqwest::Client::new();
    let get = |path: String| {
        let r = api.get(e.env.app.url(&path)).bearer_auth(&token).send();
        async move {
            let r = r.await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Pages of two, in id order, until `next` is null.
    let mut seen = Vec::new();
    let mut path = "/api/v1/classes?limit=2".to_string();
    loop {
        let (status, body) = get(path.clone()).await;
        assert_eq!(status, 200, "{body}");
        let page = body["classes"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().cloned());
        match body["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    let mut ids: Vec<String> = seen
        .iter()
        .map(|c| c["class_guid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 5, "the five active classes");
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted);
    ids.dedup();
    assert_eq!(ids.len(), 5);
    let eco = seen
        .iter()
        .find(|c| c["external_id"] == "HS-ECO-1")
        .unwrap();
    assert_eq!(eco["title"], "Economics");
    assert_eq!(eco["school_external_id"], "HS");
    assert_eq!(eco["grades"], serde_json::json!(["9", "10"]));
    assert_eq!(eco["term"]["external_id"], "FALL25");
    assert_eq!(eco["term"]["start"], "2025-08-20");
    assert_eq!(eco["status"], "active");
    let (_, archived) = get("/api/v1/classes?status=archived".into()).await;
    assert_eq!(archived["classes"][0]["external_id"], "HS-CHEM-1");
    assert_eq!(archived["classes"].as_array().unwrap().len(), 1);

    // Algebra I's enrollments: Cal is archived and left out.
    let mut people = Vec::new();
    let mut path = format!("/api/v1/classes/{}/enrollments?limit=3", e.algebra);
    loop {
        let (status, body) = get(path.clone()).await;
        assert_eq!(status, 200, "{body}");
        people.extend(body["enrollments"].as_array().unwrap().iter().cloned());
        match body["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    assert_eq!(people.len(), 4);
    let by = |cid: &str| {
        people
            .iter()
            .find(|p| p["custom_id"] == cid)
            .cloned()
            .unwrap()
    };
    assert_eq!(by("T-1")["role"], "teacher");
    assert_eq!(by("T-1")["primary"], true);
    assert_eq!(by("S-2")["status"], "Inactive");
    assert_eq!(by("S-1")["user_guid"], e.ann.to_string());
    assert!(people.iter().all(|p| p["custom_id"] != "S-3"));

    // Another district's class, an unknown one, a malformed id: 404; no token: 401.
    let other = e.env.app.district("shelbyville").await;
    let school = e.env.app.school(other.id, "X", "X").await;
    let theirs = seed_rosters(
        &e.env.app.pool,
        other.id,
        &[RosterSeed {
            class: "SH-1",
            title: "Shelbyville Secret",
            school,
            term: None,
            teachers: &[],
            students: &[],
        }],
    )
    .await;
    for id in [
        theirs[0].to_string(),
        Uuid::new_v4().to_string(),
        "nope".into(),
    ] {
        let (status, body) = get(format!("/api/v1/classes/{id}/enrollments")).await;
        assert_eq!(status, 404, "{id}: {body}");
    }
    let (_, all) = get("/api/v1/classes?limit=100".into()).await;
    assert!(!all.to_string().contains("Shelbyville"));
    let anon = api
        .get(e.env.app.url("/api/v1/classes"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
}

/// The district's classes (owner included), terms and enrollments, as text, in key order:
/// every column a run could write, `updated_at` included.
async fn roster_snapshot(pool: &PgPool) -> [Vec<String>; 3] {
    let rows = |sql: &'static str| async move {
        sqlx::query_scalar::<_, String>(sql)
            .fetch_all(pool)
            .await
            .unwrap()
    };
    [
        rows(
            "SELECT (c.id, c.external_id, c.title, c.school_id, c.course_code, c.subject, c.period,
                      c.grades, c.term_id, c.archived_at, c.updated_at, c.source)::text
              FROM classes c ORDER BY c.id",
        )
        .await,
        rows(
            "SELECT (t.id, t.external_id, t.title, t.start_date, t.end_date)::text
              FROM terms t ORDER BY t.id",
        )
        .await,
        rows(
            "SELECT (e.class_id, e.user_id, e.role, e.is_primary, e.begin_date, e.end_date,
                      e.created_at)::text
              FROM enrollments e ORDER BY e.class_id, e.user_id",
        )
        .await,
    ]
}

/// A run's roster records: (kind, outcome, changed columns, error), in feed order.
async fn roster_results(
    pool: &PgPool,
    run: Uuid,
) -> Vec<(String, String, Vec<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT kind, outcome, changed, error FROM run_roster_rows WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Upload a file through the form with a scope chosen by hand; the run id.
async fn upload_with_scope(env: &UploadEnv, name: &str, body: &str, scope: &str) -> Uuid {
    let token = env.c.csrf().await;
    let form = reqwest::multipart::Form::new()
        .text("scope", scope.to_string())
        .text("scope_touched", "1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name(name.to_string()),
        );
    let r = env
        .c
        .http
        .post(format!("{}/uploads?_csrf={token}", env.c.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/uploads/")
        .parse()
        .unwrap()
}

/// The classes and enrollments downloads, uploaded again as roster CSVs, change nothing.
///
/// Each download comes back under its own file name (a file source of its own); its rows
/// name their classes by `class_guid`, so the classes are edited in place, not moved to that
/// source (roster planner, rule 3), and with scope `source` the file ends only enrollments of
/// its own source's classes: none.
#[sqlx::test(migrations = "./migrations")]
async fn the_downloads_round_trip_as_a_no_op(pool: PgPool) {
    let e = Env::new(pool).await;
    let snapshot = |pool: PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT concat_ws('#',
                (SELECT string_agg((c.id, c.external_id, c.title, c.school_id, c.course_code, c.subject,
                                    c.period, c.grades, c.term_id, c.archived_at, c.updated_at)::text, '|' ORDER BY c.id)
                 FROM classes c),
                (SELECT string_agg((t.id, t.external_id, t.title, t.start_date, t.end_date)::text, '|' ORDER BY t.id)
                 FROM terms t),
                (SELECT string_agg((e.class_id, e.user_id, e.role, e.is_primary, e.created_at)::text, '|'
                                   ORDER BY e.class_id, e.user_id) FROM enrollments e))",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = snapshot(e.env.app.pool.clone()).await;
    let owners = roster_snapshot(&e.env.app.pool).await;
    for (path, name) in [
        ("/classes.csv", "springfield-classes.csv"),
        ("/enrollments.csv", "springfield-enrollments.csv"),
    ] {
        let file = e.env.c.get(path).await.body;
        let run = e.env.upload(name, &file).await;
        e.env.app.queue.drain().await.unwrap();
        let status = e.env.status(run).await;
        assert_eq!(status["status"], "completed", "{name}: {status}");
        assert_eq!(
            snapshot(e.env.app.pool.clone()).await,
            before,
            "{name} changed the rosters"
        );
        // Nobody moved: the owners stay (the snapshot above leaves `source` out).
        assert_eq!(roster_snapshot(&e.env.app.pool).await, owners, "{name}");
    }
}

/// The downloads of a roster a sync owns (OneRoster REST), sent back as they are: every
/// class and enrollment is skipped, none is an error, nothing is written — enrollment dates
/// (which the roster CSV does not carry) included.
#[sqlx::test(migrations = "./migrations")]
async fn a_sync_owned_rosters_downloads_round_trip_as_skipped(pool: PgPool) {
    use crate::fake_providers::*;
    let env = UploadEnv::new(pool).await;
    let secret = "classes-sync-secret-71d2";
    let fake = Fake::start(Provider {
        client_id: "rollcall".into(),
        client_secret: secret.into(),
        max_page: 10,
        orgs: vec![
            or_org("D1", "Springfield USD", "district"),
            or_org("HS", "High School", "school"),
        ],
        users: vec![
            or_user("t1", "teacher", "Di", "Kim", "", "HS"),
            or_user("s1", "student", "Ann", "Lee", "09", "HS"),
            or_user("s2", "student", "Bo", "Ray", "10", "HS"),
        ],
        academic_sessions: vec![or_session(
            "F24",
            "Fall 2024",
            "semester",
            "2024-08-19",
            "2025-01-18",
            None,
        )],
        courses: vec![or_course("C1", "Algebra I", "ALG1", "Mathematics")],
        classes: vec![
            or_class("K1", "Algebra I", "C1", "HS", &["F24"], "2"),
            or_class("K2", "Algebra I", "C1", "HS", &["F24"], "5"),
        ],
        enrollments: vec![
            or_enrollment("E1", "K1", "t1", "teacher", true, "HS"),
            or_enrollment("E2", "K1", "s1", "student", false, "HS"),
            or_enrollment("E3", "K2", "s2", "student", false, "HS"),
        ],
        ..Default::default()
    })
    .await;
    let page = env
        .c
        .post(
            "/syncs",
            &[
                ("kind", "oneroster_rest"),
                ("name", "ClassLink"),
                ("base_url", &fake.url()),
                ("client_id", "rollcall"),
                ("secret", secret),
                ("interval_hours", "6"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let conn = page
        .location
        .unwrap()
        .trim_start_matches("/syncs/")
        .to_string();
    assert_eq!(
        env.c.post(&format!("/syncs/{conn}/run"), &[]).await.status,
        303
    );
    let run = settle(&env.app, env.district.id, &format!("sync:{conn}")).await;
    assert_eq!(run.status, "completed", "{:?}", run.message);
    let before = roster_snapshot(&env.app.pool).await;
    assert_eq!((before[0].len(), before[2].len()), (2, 3), "{before:?}");
    assert!(
        before[0]
            .iter()
            .all(|c| c.contains(&format!("sync:{conn}"))),
        "{before:?}"
    );
    for (path, name, records) in [
        ("/classes.csv", "springfield-classes.csv", 2),
        ("/enrollments.csv", "springfield-enrollments.csv", 2 + 3),
    ] {
        let file = env.c.get(path).await.body;
        let run = env.upload(name, &file).await;
        env.app.queue.drain().await.unwrap();
        let status = env.status(run).await;
        assert_eq!(status["status"], "completed", "{name}: {status}");
        let results = roster_results(&env.app.pool, run).await;
        assert_eq!(results.len(), records, "{name}: {results:?}");
        for (kind, outcome, _, error) in &results {
            if kind != "term" {
                assert_eq!(
                    (outcome.as_str(), error),
                    ("skipped", &None),
                    "{name}: {results:?}"
                );
            }
        }
        assert_eq!(roster_snapshot(&env.app.pool).await, before, "{name} wrote");
    }
}

/// The enrollments download edited — one class renamed, one enrollment row removed — and
/// sent back: with scope `source` only the title changes (the class keeps its owner; the
/// file ends no enrollment of a class not its own); with scope `district` the removed row's
/// enrollment ends too. Nothing else is written.
#[sqlx::test(migrations = "./migrations")]
async fn an_edited_download_changes_exactly_what_was_edited(pool: PgPool) {
    let e = Env::new(pool).await;
    let pool = e.env.app.pool.clone();
    let file = e.env.c.get("/enrollments.csv").await.body;
    let edited: String = file
        .lines()
        .filter(|l| !(l.starts_with("HS-ALG-1,") && l.contains(",student,S-2,")))
        .map(|l| {
            format!(
                "{}\n",
                l.replacen("HS-ALG-1,Algebra I,", "HS-ALG-1,Algebra One,", 1)
            )
        })
        .collect();
    assert_eq!(edited.lines().count() + 1, file.lines().count());
    let [classes, terms, enrollments] = roster_snapshot(&pool).await;
    let algebra = e.algebra.to_string();
    let others = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| !r.starts_with(&format!("({algebra},")))
            .cloned()
            .collect()
    };

    let run = e.env.upload("springfield-enrollments.csv", &edited).await;
    e.env.app.queue.drain().await.unwrap();
    let status = e.env.status(run).await;
    assert_eq!(status["status"], "completed", "{status}");
    let [classes2, terms2, enrollments2] = roster_snapshot(&pool).await;
    assert_eq!(others(&classes2), others(&classes));
    let (title, source): (String, String) =
        sqlx::query_as("SELECT title, source FROM classes WHERE id = $1")
            .bind(e.algebra)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (title.as_str(), source.as_str()),
        ("Algebra One", "file:roster.csv")
    );
    assert_eq!(
        (terms2.clone(), enrollments2.clone()),
        (terms.clone(), enrollments.clone())
    );
    let updated: Vec<_> = roster_results(&pool, run)
        .await
        .into_iter()
        .filter(|r| r.1 != "unchanged")
        .collect();
    assert_eq!(
        updated,
        [(
            "class".to_string(),
            "updated".to_string(),
            vec!["title".to_string()],
            None
        )]
    );

    let run = upload_with_scope(&e.env, "springfield-enrollments.csv", &edited, "district").await;
    e.env.app.queue.drain().await.unwrap();
    let status = e.env.status(run).await;
    assert_eq!(status["status"], "completed", "{status}");
    let [classes3, terms3, enrollments3] = roster_snapshot(&pool).await;
    assert_eq!((classes3, terms3), (classes2, terms2));
    let ben = format!("({algebra},{},", e.ben);
    let want: Vec<String> = enrollments
        .iter()
        .filter(|r| !r.starts_with(&ben))
        .cloned()
        .collect();
    assert_eq!(want.len() + 1, enrollments.len());
    assert_eq!(enrollments3, want);
    let ended: i32 = sqlx::query_scalar("SELECT enrollments_ended FROM runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ended, 1);
}
