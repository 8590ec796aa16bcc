//! Issue 16, items 7 and 10 in Chromium: a district admin sets the district's external ID
//! and time zone on Settings, a file brings central-office staff in with that ID, the
//! Users screen's School filter "District office" lists them (and not a school's
//! teacher), and the upload history shows its times in the district's zone.

use super::*;

async fn choose(b: &Browser, css: &str, value: &str) {
    b.c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn settings_district_id_and_zone_then_the_district_office_filter(pool: PgPool) {
    let env = UploadEnv::new(pool).await;
    let b = Browser::start(&env.app).await;
    b.sign_in(&env.district.admin_email, PASSWORD).await;
    b.wait_for_text("Sign out").await;

    b.goto("/settings").await;
    b.wait_for_text("District external ID").await;
    b.fill("#district-settings input[name=external_id]", "D-100")
        .await;
    choose(
        &b,
        "#district-settings select[name=time_zone]",
        "America/Chicago",
    )
    .await;
    b.click("#district-settings button[type=submit]").await;
    b.wait_for_text("District settings saved.").await;
    let zone =
        b.c.find(Locator::Css("#district-settings select[name=time_zone]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
    assert_eq!(zone.as_deref(), Some("America/Chicago"));
    b.screenshot("settings-district").await;

    let id = env
        .upload(
            "staff.csv",
            "custom_id,email,first_name,last_name,user_type,school_district_external_id\n\
             C1,c1@d.org,Cam,Ortiz,Staff,D-100\nT1,t1@d.org,Tom,Hall,Teacher,HS\n",
        )
        .await;
    env.app.queue.drain().await.unwrap();
    assert_eq!(env.status(id).await["status"], "completed");

    b.goto("/users").await;
    b.wait_for_text("Hall").await;
    choose(&b, "select[name=school]", "district").await;
    b.click(".filters button[type=submit]").await;
    b.wait_for_text("Ortiz").await;
    assert!(b.path().await.contains("school=district"));
    let rows =
        b.c.find_all(Locator::Css("table.data tbody tr"))
            .await
            .unwrap();
    let mut texts = Vec::new();
    for r in rows {
        texts.push(r.text().await.unwrap());
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Ortiz") && t.contains("District office")),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("Hall")),
        "a school's teacher is not district office: {texts:?}"
    );

    // Times read in Chicago (CST or CDT, whichever holds now), not UTC.
    b.goto("/uploads").await;
    b.wait_for_text("staff.csv").await;
    let text = b.text().await;
    assert!(text.contains(" CST") || text.contains(" CDT"), "{text}");
    b.close().await;
}
