use super::*;

fn teacher() -> FormValues {
    FormValues {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        role: "Teacher".into(),
        email: "ada@school.org".into(),
        ..FormValues::blank()
    }
}

fn student() -> FormValues {
    FormValues {
        first_name: "Bo".into(),
        last_name: "Li".into(),
        role: "Student".into(),
        custom_id: "S1".into(),
        grade: "5".into(),
        ..FormValues::blank()
    }
}

fn fields(v: &FormValues) -> (Checked, FieldErrors) {
    let mut e = FieldErrors::default();
    let c = check_fields(v, PortalRole::User, &mut e);
    (c, e)
}

// Field checks (SPEC §2).

#[test]
fn a_complete_teacher_passes_trimmed_and_typed() {
    let mut v = teacher();
    v.email = "  Ada@School.ORG ".into();
    v.first_name = " Ada ".into();
    let (c, e) = fields(&v);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.first_name, "Ada");
    assert_eq!(c.email.as_deref(), Some("ada@school.org"));
    assert_eq!(c.role, Some(Role::Teacher));
    assert_eq!(c.grade, Some(Grade::UNSPECIFIED));
    assert_eq!(c.portal_role, PortalRole::User);
    assert!(c.username.is_empty());
    assert!(!c.student());
}

#[test]
fn names_are_required_and_bounded() {
    let mut v = teacher();
    v.first_name = "  ".into();
    v.middle_name = "m".repeat(MAX_NAME + 1);
    let (_, e) = fields(&v);
    assert_eq!(e.get("first_name"), Some("First name is required."));
    assert_eq!(
        e.get("middle_name"),
        Some("Middle name must be at most 100 characters.")
    );
    assert!(!e.has("last_name"));
}

#[test]
fn a_malformed_email_is_named_and_wins_over_required() {
    let mut v = teacher();
    v.email = "nope".into();
    let (c, e) = fields(&v);
    assert_eq!(
        e.get("email"),
        Some("\"nope\" is not a valid email address (like name@school.org).")
    );
    assert_eq!(c.email, None);
    assert_eq!(e.len(), 1);
}

#[test]
fn adults_need_an_email_students_an_id_or_email() {
    let mut v = teacher();
    v.email.clear();
    let (_, e) = fields(&v);
    assert_eq!(
        e.get("email"),
        Some("Email is required for teachers, staff and administrators.")
    );

    let mut s = student();
    s.custom_id.clear();
    let (_, e) = fields(&s);
    assert_eq!(
        e.get("custom_id"),
        Some("A student needs a custom ID or an email.")
    );
    assert!(!e.has("email"));
}

#[test]
fn role_grade_and_position_words() {
    let mut v = teacher();
    v.role = "wizard".into();
    let (c, e) = fields(&v);
    assert_eq!(c.role, None);
    assert!(e.get("role").unwrap().starts_with("Choose a role: "));
    // An unknown role asks for no email and no grade rule.
    assert!(!e.has("email") && !e.has("grade"));

    let mut v = teacher();
    v.grade = "5".into();
    assert_eq!(
        fields(&v).1.get("grade"),
        Some("Grade is only for students.")
    );
    v.grade = "eleventy".into();
    assert!(
        fields(&v)
            .1
            .get("grade")
            .unwrap()
            .starts_with("Choose a grade: ")
    );

    let mut s = student();
    s.position = "Coach".into();
    assert_eq!(
        fields(&s).1.get("position"),
        Some("Position is only for adults (teachers, staff, administrators).")
    );
    assert!(fields(&student()).0.student());
}

#[test]
fn a_blank_portal_role_keeps_the_current_one() {
    let mut v = teacher();
    v.portal_role.clear();
    let mut e = FieldErrors::default();
    let c = check_fields(&v, PortalRole::SchoolAdmin, &mut e);
    assert_eq!(c.portal_role, PortalRole::SchoolAdmin);
    v.portal_role = "king".into();
    let (c, e) = fields(&v);
    assert_eq!(c.portal_role, PortalRole::User);
    assert_eq!(e.get("portal_role"), Some("Choose a portal role."));
}

#[test]
fn username_shape() {
    let mut v = teacher();
    v.username = " ada.l-1_x@y ".into();
    let (c, e) = fields(&v);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.username, "ada.l-1_x@y");
    for bad in ["ada lovelace".to_string(), "a/b".into(), "a".repeat(101)] {
        v.username = bad;
        assert_eq!(
            fields(&v).1.get("username"),
            Some("Use letters, digits, dots, dashes, underscores or @ only (at most 100).")
        );
    }
}

#[test]
fn a_field_keeps_its_first_message() {
    let mut e = FieldErrors::default();
    e.add("email", "first");
    e.add("email", "second");
    assert_eq!(e.get("email"), Some("first"));
    assert_eq!(e.len(), 1);
}

#[test]
fn parse_reads_repeated_schools_and_the_password() {
    let (v, pw) = FormValues::parse(
        b"first_name=Ada&schools=a&schools=b&active=on&version=3&password=pw&other=x",
    );
    assert_eq!(v.first_name, "Ada");
    assert_eq!(v.schools, ["a", "b"]);
    assert!(v.active && !v.prevent_archiving);
    assert_eq!(v.version, 3);
    assert_eq!(pw, "pw");
    assert_eq!(FormValues::parse(b"version=x").0.version, -1);
    let blank = FormValues::blank();
    assert!(blank.active && blank.prevent_archiving);
    assert_eq!(blank.portal_role, "user");
}

// Rights.

const A: Uuid = Uuid::from_u128(1);
const B: Uuid = Uuid::from_u128(2);
const C: Uuid = Uuid::from_u128(3);

fn district_admin() -> Editor<'static> {
    Editor {
        district_admin: true,
        schools: None,
    }
}

fn rights(
    editor: Editor<'_>,
    edited: Option<Edited<'_>>,
    portal_role: PortalRole,
    active: bool,
    wanted: &[Uuid],
) -> (Vec<Uuid>, FieldErrors) {
    let wanted: Vec<String> = wanted.iter().map(Uuid::to_string).collect();
    let mut e = FieldErrors::default();
    let chosen = check_rights(
        editor,
        edited,
        portal_role,
        active,
        &wanted,
        &[A, B, C],
        &mut e,
    );
    (chosen, e)
}

#[test]
fn a_district_admin_sets_rights_and_any_school() {
    let (chosen, e) = rights(
        district_admin(),
        None,
        PortalRole::SchoolAdmin,
        true,
        &[B, A, B],
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(chosen, [B, A]);
    // A district admin needs no school.
    let (chosen, e) = rights(district_admin(), None, PortalRole::DistrictAdmin, true, &[]);
    assert!(e.is_empty() && chosen.is_empty());
    let (_, e) = rights(district_admin(), None, PortalRole::User, true, &[]);
    assert_eq!(e.get("schools"), Some("Choose at least one school."));
}

#[test]
fn a_district_level_user_keeps_no_school_when_edited() {
    // Issue 16, item 7: central-office staff came in with the district's own ID.
    let office = Edited {
        portal_role: PortalRole::User,
        schools: &[],
        is_self: false,
    };
    let (chosen, e) = rights(district_admin(), Some(office), PortalRole::User, true, &[]);
    assert!(e.is_empty() && chosen.is_empty(), "{e:?}");
    let at_school = Edited {
        schools: &[A],
        ..office
    };
    let (_, e) = rights(
        district_admin(),
        Some(at_school),
        PortalRole::User,
        true,
        &[],
    );
    assert_eq!(e.get("schools"), Some("Choose at least one school."));
}

#[test]
fn unknown_schools_are_refused() {
    let mut e = FieldErrors::default();
    check_rights(
        district_admin(),
        None,
        PortalRole::User,
        true,
        &["not-a-school".into()],
        &[A],
        &mut e,
    );
    assert_eq!(e.get("schools"), Some("Choose schools from the list."));
}

#[test]
fn a_school_admin_grants_no_rights_and_only_their_schools() {
    let mine = [A];
    let sa = Editor {
        district_admin: false,
        schools: Some(&mine),
    };
    let (_, e) = rights(sa, None, PortalRole::SchoolAdmin, true, &[A]);
    assert_eq!(
        e.get("portal_role"),
        Some("Only district admins can give or remove admin rights.")
    );
    let (_, e) = rights(sa, None, PortalRole::User, true, &[B]);
    assert_eq!(
        e.get("schools"),
        Some("You can only assign your own schools.")
    );
    let (_, e) = rights(sa, None, PortalRole::User, true, &[]);
    assert_eq!(
        e.get("schools"),
        Some("Choose at least one of your schools.")
    );

    // The user's other schools stay as they are.
    let theirs = [B, A];
    let edited = Edited {
        portal_role: PortalRole::User,
        schools: &theirs,
        is_self: false,
    };
    let (chosen, e) = rights(sa, Some(edited), PortalRole::User, true, &[A]);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(chosen, [A, B]);
    // Removing their own school from a user is "at least one of your schools".
    let (chosen, e) = rights(sa, Some(edited), PortalRole::User, true, &[]);
    assert_eq!(chosen, [B]);
    assert_eq!(
        e.get("schools"),
        Some("Choose at least one of your schools.")
    );
}

#[test]
fn nobody_changes_their_own_rights_or_status() {
    let mine = [A];
    let me = Edited {
        portal_role: PortalRole::DistrictAdmin,
        schools: &mine,
        is_self: true,
    };
    let (_, e) = rights(district_admin(), Some(me), PortalRole::User, false, &[A]);
    assert_eq!(
        e.get("portal_role"),
        Some("You cannot change your own admin rights.")
    );
    assert_eq!(
        e.get("status"),
        Some("You cannot make your own account inactive.")
    );
    let (_, e) = rights(
        district_admin(),
        Some(me),
        PortalRole::DistrictAdmin,
        true,
        &[A],
    );
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn the_rights_message_wins_over_the_self_message() {
    let mine = [A];
    let sa = Editor {
        district_admin: false,
        schools: Some(&mine),
    };
    let me = Edited {
        portal_role: PortalRole::SchoolAdmin,
        schools: &mine,
        is_self: true,
    };
    let (_, e) = rights(sa, Some(me), PortalRole::User, true, &[A]);
    assert_eq!(
        e.get("portal_role"),
        Some("Only district admins can give or remove admin rights.")
    );
}

// Uniqueness messages.

#[test]
fn taken_values_are_named_next_to_their_fields() {
    let mut e = FieldErrors::default();
    add_taken(&mut e, true, false, true);
    assert_eq!(
        e.get("custom_id"),
        Some("This custom ID is already used by another user in the district.")
    );
    assert!(!e.has("email"));
    assert_eq!(
        e.get("username"),
        Some("This username is already used by another user in the district.")
    );
    let mut e = FieldErrors::default();
    e.add("email", "shape first");
    add_taken(&mut e, false, true, false);
    assert_eq!(e.get("email"), Some("shape first"));
}

// Generated usernames.

#[test]
fn username_material_is_folded_ascii() {
    assert_eq!(username_part("Zoë-Ann O'Brien"), "zoeannobrien");
    assert_eq!(username_part("Straße"), "strasse");
    assert_eq!(username_part("Łukasz"), "lukasz");
    assert_eq!(username_part("李"), "");
    assert_eq!(username_base("Ada", "Lovelace"), "ada.lovelace");
    assert_eq!(username_base("Ada", "李"), "ada");
    assert_eq!(username_base("", "Li"), "li");
    assert_eq!(username_base("李", "王"), "user");
}

#[test]
fn candidates_count_from_the_bare_base() {
    let c = username_candidates("ada", 1);
    assert_eq!(c.len(), USERNAME_BATCH);
    assert_eq!(c[0], "ada");
    assert_eq!(c[1], "ada2");
    assert_eq!(username_candidates("ada", 51)[0], "ada51");
}

#[test]
fn the_first_free_candidate_and_ones_own_counts_as_free() {
    let c = username_candidates("ada", 1);
    let used = vec!["ada".to_string(), "ada2".to_string()];
    assert_eq!(first_free(c.clone(), &used, None).as_deref(), Some("ada3"));
    assert_eq!(
        first_free(c.clone(), &used, Some("ADA")).as_deref(),
        Some("ada")
    );
    assert_eq!(first_free(c.clone(), &c, None), None);
}
