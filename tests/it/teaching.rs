//! A teacher's pages (SPEC §6a, seed 003): My classes and a class's students over real HTTP,
//! resetting a student's expired temporary password (confirm step, shown once, audited, then
//! the student signs in with it and must choose their own), and 404 for everything outside
//! the teacher's own classes. Classes and enrollments are seeded with SQL.

use crate::helpers::*;
use sqlx::PgPool;
use uuid::Uuid;

/// One of a district's accounts, inserted directly.
struct Acct<'a> {
    username: &'a str,
    first: &'a str,
    last: &'a str,
    role: &'a str,
    portal_role: &'a str,
    status: &'a str,
    archived: bool,
    /// `None`: no password; `Some((hash, temporary, set days ago))`.
    password: Option<(String, bool, i64)>,
}

impl<'a> Acct<'a> {
    fn student(username: &'a str, first: &'a str, last: &'a str) -> Acct<'a> {
        Acct {
            username,
            first,
            last,
            role: "Student",
            portal_role: "user",
            status: "active",
            archived: false,
            password: None,
        }
    }
}

async fn insert(app: &TestApp, district: Uuid, school: Uuid, a: Acct<'_>) -> Uuid {
    let id = Uuid::new_v4();
    let (hash, temporary, days) = match a.password {
        Some((h, t, d)) => (Some(h), t, d),
        None => (None, false, 0),
    };
    sqlx::query(
        "INSERT INTO users (district_id, id, email, username, first_name, last_name, role, portal_role,
                            status, archived_at, source, password_hash, password_temporary, password_set_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END, 'file:people.csv',
                 $11, $12, CASE WHEN $11 IS NOT NULL THEN now() - make_interval(days => $13::int) END)",
    )
    .bind(district)
    .bind(id)
    .bind(format!("{}@school.org", a.username))
    .bind(a.username)
    .bind(a.first)
    .bind(a.last)
    .bind(a.role)
    .bind(a.portal_role)
    .bind(a.status)
    .bind(a.archived)
    .bind(hash)
    .bind(temporary)
    .bind(days as i32)
    .execute(&app.pool)
    .await
    .expect("user");
    sqlx::query("INSERT INTO user_schools (district_id, user_id, school_id) VALUES ($1, $2, $3)")
        .bind(district)
        .bind(id)
        .bind(school)
        .execute(&app.pool)
        .await
        .expect("membership");
    id
}

async fn term(app: &TestApp, district: Uuid, external_id: &str, title: &str) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO terms (district_id, id, external_id, title, start_date, end_date, source)
         VALUES ($1, $2, $3, $4, '2026-08-20', '2026-12-18', 'file:rosters.csv')",
    )
    .bind(district)
    .bind(id)
    .bind(external_id)
    .bind(title)
    .execute(&app.pool)
    .await
    .expect("term");
    id
}

/// A class with its teachers and students.
#[allow(clippy::too_many_arguments)]
async fn class(
    app: &TestApp,
    district: Uuid,
    school: Uuid,
    term: Option<Uuid>,
    (external_id, title, period): (&str, &str, &str),
    archived: bool,
    teachers: &[Uuid],
    students: &[Uuid],
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO classes (district_id, id, external_id, school_id, title, period, term_id, source, archived_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'file:rosters.csv', CASE WHEN $8 THEN now() END)",
    )
    .bind(district)
    .bind(id)
    .bind(external_id)
    .bind(school)
    .bind(title)
    .bind(period)
    .bind(term)
    .bind(archived)
    .execute(&app.pool)
    .await
    .expect("class");
    for (people, role) in [(teachers, "teacher"), (students, "student")] {
        for u in people {
            sqlx::query(
                "INSERT INTO enrollments (district_id, class_id, user_id, role, is_primary)
                 VALUES ($1, $2, $3, $4, $4 = 'teacher')",
            )
            .bind(district)
            .bind(id)
            .bind(u)
            .bind(role)
            .execute(&app.pool)
            .await
            .expect("enrollment");
        }
    }
    id
}

/// A district with a teacher (Tina) of Algebra I (period 3, Fall 2026) at North: Ana (an
/// expired temporary password), Ben (inactive), Cam (archived), Dan (his own password), Gil
/// (no password yet), plus people no teacher may touch enrolled as students: Olga (a
/// teacher), Ida (district admin), Sam (Staff). Tina's archived Art class holds Eve; Olga's
/// Science class holds Eve and Fay. District beta has its own teacher-less class.
struct World {
    app: TestApp,
    alpha: District,
    tina: Uuid,
    ana: Uuid,
    ben: Uuid,
    cam: Uuid,
    dan: Uuid,
    gil: Uuid,
    eve: Uuid,
    fay: Uuid,
    olga: Uuid,
    ida: Uuid,
    sam: Uuid,
    algebra: Uuid,
    art: Uuid,
    science: Uuid,
    beta_class: Uuid,
    beta_student: Uuid,
}

const OLD_TEMP: &str = "OLDTEMP1234";

impl World {
    async fn new(pool: PgPool) -> World {
        let app = TestApp::spawn(pool).await;
        let alpha = app.district("alpha").await;
        let north = app.school(alpha.id, "N1", "North Elementary").await;
        let south = app.school(alpha.id, "S1", "South Elementary").await;
        let d = alpha.id;
        let own = || Some((rollcall::auth::hash_password(PASSWORD), false, 10));
        let tina = insert(
            &app,
            d,
            north,
            Acct {
                role: "Teacher",
                password: own(),
                ..Acct::student("tina", "Tina", "Teachwell")
            },
        )
        .await;
        let olga = insert(
            &app,
            d,
            south,
            Acct {
                role: "Teacher",
                password: own(),
                ..Acct::student("olga", "Olga", "Otherteacher")
            },
        )
        .await;
        let ana = insert(
            &app,
            d,
            north,
            Acct {
                password: Some((rollcall::auth::hash_temporary(OLD_TEMP), true, 100)),
                ..Acct::student("ana", "Ana", "Aardvark")
            },
        )
        .await;
        let ben = insert(
            &app,
            d,
            north,
            Acct {
                status: "inactive",
                ..Acct::student("ben", "Ben", "Benchwarmer")
            },
        )
        .await;
        let cam = insert(
            &app,
            d,
            north,
            Acct {
                archived: true,
                ..Acct::student("cam", "Cam", "Cameoarchived")
            },
        )
        .await;
        let dan = insert(
            &app,
            d,
            north,
            Acct {
                password: own(),
                ..Acct::student("dan", "Dan", "Dandelion")
            },
        )
        .await;
        let gil = insert(&app, d, north, Acct::student("gil", "Gil", "Gilded")).await;
        let eve = insert(&app, d, north, Acct::student("eve", "Eve", "Elsewhere")).await;
        let fay = insert(&app, d, south, Acct::student("fay", "Fay", "Faraway")).await;
        let ida = insert(
            &app,
            d,
            north,
            Acct {
                role: "Administrator",
                portal_role: "district_admin",
                ..Acct::student("ida", "Ida", "Idadmin")
            },
        )
        .await;
        let sam = insert(
            &app,
            d,
            north,
            Acct {
                role: "Staff",
                ..Acct::student("sam", "Sam", "Staffer")
            },
        )
        .await;
        let fall = term(&app, d, "FALL26", "Fall 2026").await;
        let algebra = class(
            &app,
            d,
            north,
            Some(fall),
            ("MATH-1", "Algebra I", "3"),
            false,
            &[tina],
            &[ana, ben, cam, dan, gil, olga, ida, sam],
        )
        .await;
        let art = class(
            &app,
            d,
            north,
            None,
            ("ART-1", "Old Art", ""),
            true,
            &[tina],
            &[eve],
        )
        .await;
        let science = class(
            &app,
            d,
            south,
            Some(fall),
            ("SCI-1", "Science", "5"),
            false,
            &[olga],
            &[eve, fay],
        )
        .await;
        let beta = app.district("beta").await;
        let b_school = app.school(beta.id, "B1", "Betamarker High").await;
        let beta_student = insert(
            &app,
            beta.id,
            b_school,
            Acct::student("bea", "Bea", "Betamarker"),
        )
        .await;
        let beta_class = class(
            &app,
            beta.id,
            b_school,
            None,
            ("B-MATH", "Betamarker Math", "1"),
            false,
            &[],
            &[beta_student],
        )
        .await;
        World {
            app,
            alpha,
            tina,
            ana,
            ben,
            cam,
            dan,
            gil,
            eve,
            fay,
            olga,
            ida,
            sam,
            algebra,
            art,
            science,
            beta_class,
            beta_student,
        }
    }

    async fn signed_in(&self, login: &str) -> Client {
        let c = self.app.client();
        let r = c.sign_in(login, PASSWORD).await;
        assert_eq!(r.status, 303, "{login}: {}", r.body);
        c
    }

    /// Every password hash of both districts, to prove that refusals changed none.
    async fn hashes(&self) -> Vec<(Uuid, Option<String>, bool)> {
        sqlx::query_as("SELECT id, password_hash, password_temporary FROM users ORDER BY id")
            .fetch_all(&self.app.pool)
            .await
            .unwrap()
    }
}

fn reset_path(class: Uuid, student: Uuid) -> String {
    format!("/teaching/{class}/students/{student}/password")
}

fn shown_password(body: &str) -> String {
    let start = body
        .find("<code class=\"secret big\">")
        .expect("password shown")
        + "<code class=\"secret big\">".len();
    body[start..start + body[start..].find('<').unwrap()].to_string()
}

/// The table row of a student on the class page.
fn student_row<'b>(body: &'b str, username: &str) -> Option<&'b str> {
    let start = body.find(&format!("data-student=\"{username}\""))?;
    Some(&body[start..start + body[start..].find("</tr>").unwrap()])
}

#[sqlx::test(migrations = "./migrations")]
async fn a_teacher_sees_their_class_and_resets_an_expired_temporary_password(pool: PgPool) {
    let w = World::new(pool).await;
    // Ana's temporary password expired: she cannot sign in.
    let ana = w.app.client();
    let r = ana.sign_in("ana", OLD_TEMP).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);

    let tina = w.signed_in("tina").await;
    let account = tina.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(
        account.body.contains("href=\"/teaching\""),
        "{}",
        account.body
    );
    assert!(account.body.contains("My classes"));

    let list = tina.get("/teaching").await;
    assert_eq!(list.status, 200, "{}", list.body);
    for shown in [
        "Algebra I",
        "MATH-1",
        "North Elementary",
        "Fall 2026",
        ">3<",
    ] {
        assert!(list.body.contains(shown), "{shown}: {}", list.body);
    }
    assert!(!list.body.contains("Old Art"), "archived class hidden");
    assert!(
        !list.body.contains("Science"),
        "another teacher's class hidden"
    );
    assert!(list.body.contains(&format!("/teaching/{}", w.algebra)));

    let page = tina.get(&format!("/teaching/{}", w.algebra)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = |u: &str| student_row(&page.body, u).unwrap_or_else(|| panic!("{u} listed"));
    assert!(row("ana").contains("Ana Aardvark"));
    assert!(row("ana").contains("Temporary password expired"));
    assert!(row("ana").contains("Active"));
    assert!(row("ana").contains(&reset_path(w.algebra, w.ana)));
    assert!(row("ben").contains("Inactive"), "inactive marked");
    assert!(
        !row("ben").contains("/password"),
        "no reset for an inactive student"
    );
    assert!(row("dan").contains("Own password"));
    assert!(
        !row("dan").contains("/password"),
        "no reset of an own password"
    );
    assert!(row("gil").contains("No password yet"));
    assert!(row("gil").contains(&reset_path(w.algebra, w.gil)));
    assert!(
        student_row(&page.body, "cam").is_none(),
        "archived student hidden"
    );
    assert!(!page.body.contains("Cameoarchived"));
    for other in ["olga", "ida", "sam"] {
        assert!(!row(other).contains("/password"), "no reset for {other}");
    }

    // The confirm step writes nothing.
    let before = w.hashes().await;
    let confirm = tina.post(&reset_path(w.algebra, w.ana), &[]).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(!confirm.body.contains("secret big"));
    assert_eq!(w.hashes().await, before, "the confirm step changed nothing");

    // Confirmed: a new temporary password, shown once.
    let done = tina
        .post(&reset_path(w.algebra, w.ana), &[("confirm", "yes")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let temp = shown_password(&done.body);
    assert!(temp.len() >= 8, "{temp}");
    assert!(done.body.contains("ana@school.org"));
    let again = tina.get(&format!("/teaching/{}", w.algebra)).await;
    assert!(!again.body.contains(&temp), "shown once only");
    assert!(
        student_row(&again.body, "ana")
            .unwrap()
            .contains("Temporary password pending")
    );

    // Audited, with the teacher as actor.
    let (actor_id, actor_kind, action, after): (Option<Uuid>, String, String, serde_json::Value) =
        sqlx::query_as(
            "SELECT actor_id, actor_kind, action, after FROM audit_log
             WHERE district_id = $1 AND entity_id = $2",
        )
        .bind(w.alpha.id)
        .bind(w.ana)
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(actor_id, Some(w.tina));
    assert_eq!(actor_kind, "user");
    assert_eq!(action, "user.password_reset");
    assert_eq!(after["by"], "teacher");
    assert_eq!(after["class"], "MATH-1");
    assert!(
        !after.to_string().contains(&temp),
        "the password is not in the log"
    );

    // Ana signs in with it and must choose her own password first.
    assert_eq!(ana.sign_in("ana", OLD_TEMP).await.status, 401);
    let r = ana.sign_in("ana", &temp).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    let home = ana.get("/account").await;
    assert_eq!(home.location.as_deref(), Some("/account/password"));
    let changed = ana
        .post(
            "/account/password",
            &[
                ("current", &temp),
                ("password", "Crimson-otter-sings-42"),
                ("confirm", "Crimson-otter-sings-42"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    // A student has no My classes.
    let account = ana.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(!account.body.contains("My classes"), "{}", account.body);
    assert_eq!(ana.get("/teaching").await.status, 404);
    // And now her password is her own: her teacher can no longer reset it.
    let r = tina
        .post(&reset_path(w.algebra, w.ana), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

#[sqlx::test(migrations = "./migrations")]
async fn everything_outside_a_teachers_classes_answers_404(pool: PgPool) {
    let w = World::new(pool).await;
    let tina = w.signed_in("tina").await;
    let before = w.hashes().await;
    let audit_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();

    // Classes that are not hers (another teacher's, archived, another district's, none).
    for path in [
        format!("/teaching/{}", w.science),
        format!("/teaching/{}", w.art),
        format!("/teaching/{}", w.beta_class),
        format!("/teaching/{}", Uuid::new_v4()),
        "/teaching/not-a-class".to_string(),
    ] {
        let r = tina.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(!r.body.contains("Faraway") && !r.body.contains("Betamarker"));
    }
    // Students who are not hers to help, with and without the confirmation.
    let refused = [
        ("a student of another teacher's class", w.science, w.fay),
        ("a student in none of her classes", w.algebra, w.fay),
        (
            "her student, named through a class she does not teach",
            w.science,
            w.eve,
        ),
        ("a student of her archived class", w.art, w.eve),
        ("an archived student", w.algebra, w.cam),
        ("another teacher", w.algebra, w.olga),
        ("a district admin", w.algebra, w.ida),
        ("staff", w.algebra, w.sam),
        ("herself", w.algebra, w.tina),
        ("another district's student", w.beta_class, w.beta_student),
        (
            "another district's student in her class",
            w.algebra,
            w.beta_student,
        ),
    ];
    for (who, class, user) in refused {
        for fields in [vec![], vec![("confirm", "yes")]] {
            let r = tina.post(&reset_path(class, user), &fields).await;
            assert_eq!(r.status, 404, "{who}: {}", r.body);
        }
    }
    let r = tina
        .post(
            &format!("/teaching/{}/students/nope/password", w.algebra),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    // Hers, but not to reset: inactive, or a password of their own.
    for (who, user, says) in [
        ("inactive", w.ben, "inactive"),
        ("own password", w.dan, "own password"),
    ] {
        let r = tina
            .post(&reset_path(w.algebra, user), &[("confirm", "yes")])
            .await;
        assert_eq!(r.status, 409, "{who}: {}", r.body);
        assert!(r.body.contains(says), "{who}: {}", r.body);
    }
    // Without the CSRF token nothing happens either.
    let r = tina
        .post_raw(&reset_path(w.algebra, w.gil), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(w.hashes().await, before, "no password changed");
    let audit_after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(audit_after, audit_before, "nothing audited");

    // Olga teaches Science only: Tina's Algebra I is not hers even though Olga is in it.
    let olga = w.signed_in("olga").await;
    assert_eq!(
        olga.get(&format!("/teaching/{}", w.algebra)).await.status,
        404
    );
    let mine = olga.get("/teaching").await;
    assert!(mine.body.contains("Science") && !mine.body.contains("Algebra I"));
    assert_eq!(
        olga.post(&reset_path(w.algebra, w.gil), &[]).await.status,
        404
    );

    // A teacher whose only class is archived, and a staff member, have no My classes.
    sqlx::query("UPDATE classes SET archived_at = now() WHERE id = $1")
        .bind(w.algebra)
        .execute(&w.app.pool)
        .await
        .unwrap();
    let r = tina.get("/teaching").await;
    assert_eq!(r.status, 404);
    let account = tina.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(!account.body.contains("My classes"), "{}", account.body);
    let admin = w.signed_in(&w.alpha.admin_email).await;
    assert_eq!(admin.get("/teaching").await.status, 404);
    assert_eq!(w.hashes().await, before);
}
