//! What the user page and the add-user page show: the form, the user's facts and actions,
//! the history, and the page that shows a new temporary password once.

use super::validate::{FieldErrors, FormValues};
use super::{Opt, can_manage, display_name, feed_owned, history, is_self, source_label};
use crate::db::schools::SchoolOption;
use crate::db::user_edit::UserRecord;
use crate::domain::{Field, Grade, PortalRole, Role, UserStatus};
use crate::web::page::{Chrome, chrome};
use crate::web::session::DistrictScope;
use askama::Template;
use tower_sessions::Session;
use uuid::Uuid;

/// The user page's facts and actions (edit only).
pub struct UserView {
    pub id: Uuid,
    pub state: &'static str,
    pub state_label: &'static str,
    pub source: String,
    pub created: String,
    pub updated: String,
    pub password_state: &'static str,
    pub archived: bool,
    pub active: bool,
    pub manageable: bool,
    pub is_self: bool,
    pub name: String,
    /// The feed that provides this user (a file name or a sync), `None` for manual users.
    pub owner: Option<String>,
    /// Fields an admin keeps against the feed, in column order.
    pub kept: Vec<KeptField>,
}

/// A kept field on the user page, with its Release button.
pub struct KeptField {
    pub name: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "user_form.html")]
pub(super) struct FormPage {
    chrome: Chrome,
    is_new: bool,
    action: String,
    title: String,
    v: FormValues,
    errors: FieldErrors,
    notice: Option<String>,
    role_opts: Vec<Opt>,
    grade_opts: Vec<Opt>,
    school_opts: Vec<Opt>,
    portal_opts: Vec<Opt>,
    can_grant_admin: bool,
    readonly: bool,
    user: Option<UserView>,
    history: Vec<history::Item>,
    /// Who owns the user, and the hand-over form (the user page only).
    pub(super) owner: Option<super::owner::OwnerView>,
    /// The classes the user is enrolled in (the user page only).
    pub(super) classes: Option<Vec<UserClass>>,
}

/// A class on the user page: its title (linked), the user's role in it, its school.
pub struct UserClass {
    pub id: Uuid,
    pub title: String,
    pub external_id: String,
    pub role: &'static str,
    pub primary: bool,
    pub school: String,
    pub archived: bool,
}

impl UserClass {
    pub(super) fn from_row(r: crate::db::classes::UserClassRow) -> UserClass {
        use crate::domain::roster::EnrollmentRole;
        UserClass {
            id: r.class_id,
            title: r.title,
            external_id: r.external_id,
            role: EnrollmentRole::from_text(&r.role)
                .map(EnrollmentRole::label)
                .unwrap_or(""),
            primary: r.is_primary,
            school: r.school_name,
            archived: r.archived_at.is_some(),
        }
    }
}

fn user_view(
    scope: &DistrictScope,
    u: &UserRecord,
    sync_names: &std::collections::HashMap<uuid::Uuid, String>,
) -> UserView {
    let (state, state_label) = if u.archived_at.is_some() {
        ("archived", "Archived")
    } else {
        (u.status.as_str(), u.status.label())
    };
    UserView {
        id: u.id,
        state,
        state_label,
        source: source_label(&u.source, sync_names),
        created: crate::web::when::minute(u.created_at),
        updated: crate::web::when::minute(u.updated_at),
        password_state: match (u.has_password, u.password_temporary) {
            (false, _) => "None: reset it to let them sign in",
            (true, true) => "Temporary: must be changed at first sign-in",
            (true, false) => "Set by the user",
        },
        archived: u.archived_at.is_some(),
        active: u.status == UserStatus::Active,
        manageable: can_manage(scope, u),
        is_self: is_self(scope, u),
        name: display_name(&u.first_name, &u.last_name, &u.username),
        owner: feed_owned(&u.source).then(|| source_label(&u.source, sync_names)),
        kept: Field::ALL
            .into_iter()
            .filter(|f| u.kept_fields.iter().any(|k| k == f.name()))
            .map(|f| KeptField {
                name: f.name(),
                label: history::field_label(f.name()),
            })
            .collect(),
    }
}

/// Everything a form page needs besides the values; `schools` are the ones the admin may
/// assign.
#[allow(clippy::too_many_arguments)]
pub(super) async fn form_page(
    session: &Session,
    scope: &DistrictScope,
    schools: &[SchoolOption],
    v: FormValues,
    errors: FieldErrors,
    notice: Option<String>,
    user: Option<(
        &UserRecord,
        Vec<history::Item>,
        &std::collections::HashMap<uuid::Uuid, String>,
    )>,
) -> FormPage {
    let is_new = user.is_none();
    let role_opts = std::iter::once(Opt::new("", "Choose…", &v.role))
        .chain(
            Role::ALL
                .iter()
                .map(|r| Opt::new(r.as_str(), r.as_str(), &v.role)),
        )
        .collect();
    let grade_opts = std::iter::once(Opt::new("", "— (adults, or not known)", &v.grade))
        .chain(
            Grade::all()
                .filter(|g| *g != Grade::UNSPECIFIED)
                .map(|g| Opt::new(g.as_str(), g.as_str(), &v.grade)),
        )
        .collect();
    let school_opts = schools
        .iter()
        .map(|s| Opt {
            value: s.id.to_string(),
            label: format!("{} ({})", s.name, s.external_id),
            selected: v.schools.iter().any(|x| *x == s.id.to_string()),
        })
        .collect();
    let portal_opts = [
        PortalRole::User,
        PortalRole::SchoolAdmin,
        PortalRole::DistrictAdmin,
    ]
    .iter()
    .map(|p| Opt::new(p.as_str(), p.label(), &v.portal_role))
    .collect();
    let (title, action, readonly, view, history) = match user {
        None => (
            "Add a user".to_string(),
            "/users".to_string(),
            false,
            None,
            Vec::new(),
        ),
        Some((u, history, sync_names)) => {
            let view = user_view(scope, u, sync_names);
            (
                view.name.clone(),
                format!("/users/{}", u.id),
                view.archived || !view.manageable,
                Some(view),
                history,
            )
        }
    };
    FormPage {
        chrome: chrome(session, Some(&scope.person), "/users").await,
        is_new,
        action,
        title,
        v,
        errors,
        notice,
        role_opts,
        grade_opts,
        school_opts,
        portal_opts,
        can_grant_admin: scope.is_district_admin(),
        readonly,
        user: view,
        history,
        owner: None,
        classes: None,
    }
}

#[derive(Template)]
#[template(path = "user_password.html")]
pub struct PasswordShown {
    pub chrome: Chrome,
    pub id: Uuid,
    pub name: String,
    pub login: String,
    pub password: String,
    pub created: bool,
}
