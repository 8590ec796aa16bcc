//! The Classes screens in Chromium (issue 15): an admin signs in, opens Classes, searches by
//! title and by teacher, filters by school, term and status, opens a class (teachers and
//! students listed, inactive marked, archived users left out), goes on to a student's page
//! and its classes, and finds the two downloads; the Classes table fits a 1366 px viewport.

use super::*;

impl Browser {
    /// The class titles the Classes table lists, in order.
    async fn class_titles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self
            .c
            .find_all(Locator::Css("table.classes tbody td:first-child > a"))
            .await
            .unwrap()
        {
            out.push(a.text().await.unwrap());
        }
        out
    }

    /// Submits the Classes filters and waits for the page they lead to (its URL says
    /// `expect_in_url`), then returns the titles listed.
    async fn apply_class_filters(&self, expect_in_url: &str) -> Vec<String> {
        self.click("form.filters button.primary").await;
        self.wait_for_path(expect_in_url).await;
        self.wait_for_text("Download classes CSV").await;
        self.class_titles().await
    }

    /// Waits (up to 30 s) until the browser's path and query contain `part`.
    async fn wait_for_path(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.path().await.contains(part) {
            assert!(
                Instant::now() < deadline,
                "never reached {part:?}: {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn choose(&self, select: &str, value: &str) {
        self.c
            .find(Locator::Css(&format!("select[name={select}]")))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// The rows' texts of one roster table of the class page (`#teachers`, `#students`),
    /// each with its `class` attribute.
    async fn roster_rows(&self, table: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for tr in self
            .c
            .find_all(Locator::Css(&format!("table{table} tbody tr")))
            .await
            .unwrap()
        {
            let class = tr.attr("class").await.unwrap().unwrap_or_default();
            out.push((tr.text().await.unwrap(), class));
        }
        out
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn an_admin_finds_classes_and_their_rosters_in_chromium(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let Classes {
        ms,
        fall,
        algebra,
        ann,
        ..
    } = seed_classes(&env).await;

    let b = Browser::start(&env.app).await;
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;
    b.click("header nav a[href='/classes']").await;
    b.wait_for_text("Download classes CSV").await;
    assert_eq!(
        b.class_titles().await,
        ["Algebra I", "Art 7", "Biology", "Drama", "Economics"],
        "active classes in title order"
    );
    b.screenshot("classes").await;

    // The table fits a 1366 px wide viewport: no sideways scrolling, in the table's box or
    // the page's.
    b.c.set_window_size(1366, 900).await.unwrap();
    let fit =
        b.c.execute(
            "const t = document.querySelector('table.classes');
             const wrap = t.closest('.table-wrap');
             return [window.innerWidth, document.documentElement.clientWidth,
                     document.documentElement.scrollWidth, t.scrollWidth, wrap.clientWidth,
                     Math.ceil(t.getBoundingClientRect().right)];",
            vec![],
        )
        .await
        .unwrap();
    let n: Vec<i64> = serde_json::from_value(fit).unwrap();
    let [inner, viewport, page, table, wrap, right] = n[..] else {
        panic!("{n:?}")
    };
    assert_eq!(inner, 1366, "the window is 1366 px wide: {n:?}");
    assert!(
        table <= wrap,
        "the table scrolls sideways in its box: {n:?}"
    );
    assert!(right <= viewport, "the table runs past the viewport: {n:?}");
    assert!(page <= viewport, "the page scrolls sideways: {n:?}");

    // Search by title, by teacher.
    b.fill("input[name=q]", "bio").await;
    assert_eq!(b.apply_class_filters("q=bio").await, ["Biology"]);
    b.fill("input[name=q]", "Okafor").await;
    assert_eq!(b.apply_class_filters("q=Okafor").await, ["Art 7"]);
    // The downloads carry the filters the page shows.
    let href = |css: &'static str| {
        let b = &b;
        async move {
            b.c.find(Locator::Css(css))
                .await
                .unwrap()
                .attr("href")
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(href("#classes-csv").await, "/classes.csv?q=Okafor");
    assert_eq!(href("#enrollments-csv").await, "/enrollments.csv?q=Okafor");
    // Filters: school, term, status (the search cleared).
    b.fill("input[name=q]", "").await;
    b.choose("school", &ms.to_string()).await;
    assert_eq!(
        b.apply_class_filters(&format!("school={ms}")).await,
        ["Art 7"]
    );
    b.choose("school", "").await;
    b.choose("term", &fall.to_string()).await;
    assert_eq!(
        b.apply_class_filters(&format!("term={fall}")).await,
        ["Economics"]
    );
    b.choose("term", "").await;
    b.choose("status", "archived").await;
    assert_eq!(
        b.apply_class_filters("status=archived").await,
        ["Chemistry"]
    );
    let row =
        b.c.find(Locator::Css("table.classes tbody tr"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(row.contains("Archived"), "{row}");

    // The class page: teachers (the primary marked), students (inactive marked, archived
    // left out).
    b.click("form.filters a[href='/classes']").await;
    b.wait_for_text("Algebra I").await;
    b.click(&format!("table.classes a[href='/classes/{algebra}']"))
        .await;
    b.wait_for_text("Archived users are not listed.").await;
    assert_eq!(b.path().await, format!("/classes/{algebra}"));
    b.screenshot("class").await;
    let teachers = b.roster_rows("#teachers").await;
    assert_eq!(teachers.len(), 2, "{teachers:?}");
    assert!(
        teachers[0].0.contains("Nguyen") && teachers[0].0.contains("Primary"),
        "{teachers:?}"
    );
    assert!(teachers[1].0.contains("Ng") && !teachers[1].0.contains("Primary"));
    let students = b.roster_rows("#students").await;
    assert_eq!(students.len(), 2, "{students:?}");
    let find = |name: &str| {
        students
            .iter()
            .find(|s| s.0.contains(name))
            .unwrap_or_else(|| panic!("{name} is not listed: {students:?}"))
    };
    let (avery, brook) = (find("Avery"), find("Brook"));
    assert!(
        avery.0.contains("Avery") && avery.0.contains("Active"),
        "{students:?}"
    );
    assert!(!avery.1.contains("user-inactive"), "{students:?}");
    assert!(
        brook.0.contains("Brook") && brook.0.contains("Inactive"),
        "{students:?}"
    );
    assert!(brook.1.contains("user-inactive"), "{students:?}");
    assert!(
        !b.text().await.contains("Archer"),
        "an archived user is listed"
    );

    // On to the student's page: its classes.
    b.click(&format!("table#students a[href='/users/{ann}']"))
        .await;
    b.wait_for_path(&format!("/users/{ann}")).await;
    b.wait_for_text("Avery").await;
    let classes =
        b.c.find(Locator::Css("section#classes"))
            .await
            .expect("the user page's Classes section")
            .text()
            .await
            .unwrap();
    for title in ["Algebra I", "Biology", "Economics"] {
        assert!(classes.contains(title), "{classes}");
    }
    assert!(!classes.contains("Art 7"), "{classes}");
    b.click(&format!("section#classes a[href='/classes/{algebra}']"))
        .await;
    b.wait_for_path(&format!("/classes/{algebra}")).await;

    // The downloads the Classes page offers.
    b.goto("/classes").await;
    b.wait_for_text("Download enrollments CSV").await;
    assert_eq!(href("#classes-csv").await, "/classes.csv");
    assert_eq!(href("#enrollments-csv").await, "/enrollments.csv");
    let (status, ctype, body) = b.fetch_link("#classes-csv").await;
    assert_eq!((status, ctype.as_str()), (200, "text/csv; charset=utf-8"));
    let header = strip_bom(body.lines().next().unwrap());
    assert!(header.ends_with(",term_end,class_guid"), "{header}");
    assert!(body.contains("HS-ALG-1,Algebra I,HS,"), "{body}");
    assert!(body.contains(&algebra.to_string()), "{body}");
    let (status, _, body) = b.fetch_link("#enrollments-csv").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("HS-ALG-1,Algebra I,HS,student,S-1,"),
        "{body}"
    );
    b.close().await;
}
