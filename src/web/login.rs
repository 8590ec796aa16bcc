//! Sign-in and sign-out.

use super::AppState;
use super::client::ClientIp;
use super::error::{AppError, AppResult};
use super::page::{Chrome, chrome, render};
use super::session::{Person, Who, require_mfa_enrolment, set_flash, sign_in, sign_out};
use crate::auth;
use crate::db;
use crate::db::accounts::AccountId;
use crate::db::audit::Actor;
use crate::domain::{ActorKind, UserStatus};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<String>,
    login: String,
    district: String,
    ask_district: bool,
}

pub async fn form(session: Session, person: Option<Person>) -> AppResult<Response> {
    if person.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let page = LoginPage {
        chrome: chrome(&session, None, "").await,
        error: None,
        login: String::new(),
        district: String::new(),
        ask_district: false,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    district: String,
}

/// The accounts a sign-in name may mean.
enum Accounts {
    Operator(db::accounts::OperatorAccount),
    Members(Vec<db::users::LoginCandidate>),
}

enum Outcome {
    Operator(db::accounts::OperatorAccount),
    Member(db::users::LoginCandidate),
    WrongPassword,
    Ambiguous,
}

/// Sign-in: wait for a password slot (or 503 at once; no database connection is held while
/// waiting), find the accounts the name means, count the attempt against them and the
/// address before any hashing (or 429), check the password with the same argon2 work on
/// every path, then let the one account in.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let login = form.login.trim().to_lowercase();
    let ip = client.to_string();
    let district = form.district.trim().to_lowercase();
    let now = state.clock.now();
    let again = |status: StatusCode, error: String, ask_district: bool| {
        let session = session.clone();
        let login = form.login.clone();
        let district = district.clone();
        async move {
            let page = LoginPage {
                chrome: chrome(&session, None, "").await,
                error: Some(error),
                login,
                district,
                ask_district,
            };
            Ok::<_, AppError>((status, render(&page)?).into_response())
        }
    };

    let slot = state.passwords.enter().await.inspect_err(|_| {
        tracing::warn!(ip = %ip, "sign-in refused: every password slot is taken");
    })?;
    let accounts = find_accounts(&state, &login, &district).await?;
    let limits = db::throttle::Limits {
        per_account: state.config.login_max_failures,
        per_address: state.config.login_max_failures_per_address,
    };
    let attempt = match db::throttle::begin(
        &state.pool,
        &login,
        &accounts.keys(&login),
        &ip,
        limits,
        now,
    )
    .await?
    {
        db::throttle::Attempt::Allowed(id) => id,
        db::throttle::Attempt::Throttled => {
            drop(slot);
            tracing::warn!(ip = %ip, "sign-in throttled");
            return again(StatusCode::TOO_MANY_REQUESTS, throttled_message(), false).await;
        }
    };
    // Admin accounts this name may mean: a wrong password against one is in its district's
    // audit log (an unknown name, or a plain user's, is not).
    let admins: Vec<(Uuid, Actor)> = match &accounts {
        Accounts::Members(m) => m
            .iter()
            .filter(|c| c.portal_role.is_admin())
            .map(|c| (c.district_id, candidate_actor(c)))
            .collect(),
        Accounts::Operator(_) => Vec::new(),
    };
    // The attempt counts as a failure until a branch below lets the account in (or finds
    // several accounts): an expired or used temporary password stays a failure, so those
    // paths do the same work as a wrong password.
    let outcome = check_password(&slot, accounts, &form.password).await?;
    match outcome {
        Outcome::WrongPassword => {
            for (district_id, actor) in &admins {
                record_sign_in(&state, *district_id, actor, "signin.failure", &ip).await?;
            }
            again(
                StatusCode::UNAUTHORIZED,
                "The sign-in name or password is wrong.".into(),
                !district.is_empty(),
            )
            .await
        }
        Outcome::Ambiguous => {
            db::throttle::succeeded(&state.pool, attempt).await?;
            again(
                StatusCode::OK,
                "Enter your district code to sign in.".into(),
                true,
            )
            .await
        }
        Outcome::Operator(op) => {
            // The CLI's password works once: the session it opens must choose a new one.
            if op.password_temporary
                && (op.temp_password_used_at.is_some()
                    || !db::accounts::use_operator_temporary_password(
                        &state.pool,
                        op.id,
                        &op.password_hash,
                        now,
                    )
                    .await?)
            {
                return again(
                    StatusCode::FORBIDDEN,
                    "This one-time password has already been used. Run `rollcall operator reset-password` for a new one."
                        .into(),
                    false,
                )
                .await;
            }
            db::throttle::succeeded(&state.pool, attempt).await?;
            drop(slot);
            let passed = Passed {
                who: Who::Operator(op.id),
                epoch: op.session_epoch,
                must_change: op.password_temporary,
                mfa_required: true,
                admin: None,
                ip: ip.clone(),
            };
            second_step(&state, &session, passed).await
        }
        Outcome::Member(c) => {
            if c.archived_at.is_some() || c.status != UserStatus::Active {
                db::throttle::succeeded(&state.pool, attempt).await?;
            }
            if c.archived_at.is_some() {
                return again(
                    StatusCode::FORBIDDEN,
                    "This account is archived and cannot sign in. Ask your district administrator."
                        .into(),
                    false,
                )
                .await;
            }
            if c.status != UserStatus::Active {
                return again(
                    StatusCode::FORBIDDEN,
                    "This account is inactive and cannot sign in. Ask your district administrator."
                        .into(),
                    false,
                )
                .await;
            }
            // Single sign-on (issue 17 item 1; the rule lives in `web::sso`): a district that
            // requires it refuses this account's password.
            if let Some(words) = super::sso::password_refusal(
                &state,
                c.district_id,
                c.id,
                c.portal_role,
                &candidate_actor(&c).label,
            )
            .await?
            {
                return again(StatusCode::FORBIDDEN, words, false).await;
            }
            if c.password_temporary
                && c.password_set_at
                    .is_none_or(|at| now - at > Duration::days(auth::TEMP_PASSWORD_DAYS))
            {
                return again(
                    StatusCode::FORBIDDEN,
                    format!(
                        "This temporary password has expired (unused for {} days). Ask your administrator to reset it.",
                        auth::TEMP_PASSWORD_DAYS
                    ),
                    false,
                )
                .await;
            }
            // A temporary password works once (SPEC §2): the session it opens must choose
            // the password; a second sign-in with it is refused.
            if c.password_temporary
                && (c.temp_password_used_at.is_some()
                    || !db::users::use_temporary_password(
                        &state.pool,
                        c.district_id,
                        c.id,
                        c.password_hash.as_deref().unwrap_or_default(),
                        now,
                    )
                    .await?)
            {
                return again(
                    StatusCode::FORBIDDEN,
                    "This temporary password has already been used. Ask your administrator to reset it."
                        .into(),
                    false,
                )
                .await;
            }
            db::throttle::succeeded(&state.pool, attempt).await?;
            drop(slot);
            // MFA: admins, where their district requires it (or they are its break-glass
            // admin under "Require SSO for admins") or they enrolled.
            let mfa_required = c.portal_role.is_admin()
                && db::accounts::admin_requires_mfa(&state.pool, c.district_id, c.id).await?;
            let passed = Passed {
                who: Who::Member {
                    district_id: c.district_id,
                    user_id: c.id,
                },
                epoch: c.session_epoch,
                must_change: c.password_temporary,
                mfa_required,
                admin: c.portal_role.is_admin().then(|| AdminSignIn {
                    district_id: c.district_id,
                    id: c.id,
                    label: candidate_actor(&c).label,
                }),
                ip: ip.clone(),
            };
            second_step(&state, &session, passed).await
        }
    }
}

/// What the 429 page says: wait, or ask an admin to unlock the account.
fn throttled_message() -> String {
    format!(
        "{} If you cannot wait, ask your district administrator to unlock your sign-in.",
        AppError::TooManyRequests
    )
}

/// An admin's sign-in, for the district's audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminSignIn {
    district_id: Uuid,
    id: Uuid,
    label: String,
}

/// A password sign-in that passed: what the session becomes once the second factor (if
/// the account has one) is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Passed {
    pub who: Who,
    epoch: i64,
    /// A temporary (one-time) password: the session must choose a new one first.
    must_change: bool,
    /// The account must have MFA (operators; admins where the district requires it).
    mfa_required: bool,
    admin: Option<AdminSignIn>,
    pub ip: String,
}

impl Passed {
    pub fn account(&self) -> AccountId {
        match self.who {
            Who::Operator(id) => AccountId::Operator(id),
            Who::Member {
                district_id,
                user_id,
            } => AccountId::User {
                district_id,
                user_id,
            },
        }
    }

    /// The actor of audit entries about this sign-in (admins only).
    pub fn admin_actor(&self) -> Option<(Uuid, Actor)> {
        self.admin.as_ref().map(|a| {
            (
                a.district_id,
                Actor {
                    kind: ActorKind::User,
                    id: Some(a.id),
                    label: a.label.clone(),
                },
            )
        })
    }
}

/// A sign-in waiting for its code, in the (not yet signed-in) session.
const PENDING: &str = "mfa_pending";
/// How long the code step waits after the password.
const PENDING_FOR: Duration = Duration::minutes(10);

/// Park a sign-in whose password was right until its code comes.
pub async fn await_code(session: &Session, passed: &Passed, now: OffsetDateTime) -> AppResult<()> {
    session
        .insert(PENDING, (passed, now.unix_timestamp()))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))
}

pub async fn pending(session: &Session, now: OffsetDateTime) -> Option<Passed> {
    let (passed, at): (Passed, i64) = session.get(PENDING).await.ok().flatten()?;
    (now.unix_timestamp() - at <= PENDING_FOR.whole_seconds()).then_some(passed)
}

/// The code came (or the sign-in was given up): nothing waits any more.
pub async fn forget_pending(session: &Session) {
    let _ = session.remove::<(Passed, i64)>(PENDING).await;
}

/// After the password: an account with MFA gives its code first (`/login/code`); any other
/// is signed in at once.
async fn second_step(state: &AppState, session: &Session, passed: Passed) -> AppResult<Response> {
    let mfa = db::accounts::mfa(&state.pool, passed.account())
        .await?
        .unwrap_or_default();
    if mfa.enabled() {
        await_code(session, &passed, state.clock.now()).await?;
        return Ok(Redirect::to("/login/code").into_response());
    }
    complete(state, session, passed, false).await
}

/// Sign the session in (the password, and the code when there is one, were right), record
/// an admin's sign-in, and send the person on: to choose a password, to enrol MFA, or home.
pub async fn complete(
    state: &AppState,
    session: &Session,
    passed: Passed,
    mfa_enabled: bool,
) -> AppResult<Response> {
    sign_in(session, passed.who.clone(), passed.epoch).await?;
    match &passed.who {
        Who::Operator(id) => tracing::info!(operator = %id, "operator signed in"),
        Who::Member {
            district_id,
            user_id,
        } => tracing::info!(district = %district_id, user = %user_id, "signed in"),
    }
    if let Some((district_id, actor)) = passed.admin_actor() {
        record_sign_in(state, district_id, &actor, "signin.success", &passed.ip).await?;
    }
    let enrol = passed.mfa_required && !mfa_enabled;
    if enrol {
        require_mfa_enrolment(session).await?;
    }
    if passed.must_change {
        set_flash(
            session,
            "info",
            "Welcome! Choose your own password to continue.",
        )
        .await;
        return Ok(Redirect::to("/account/password").into_response());
    }
    if enrol {
        set_flash(
            session,
            "info",
            "Your account needs a second sign-in step: set up an authenticator app to continue.",
        )
        .await;
        return Ok(Redirect::to("/account/mfa").into_response());
    }
    Ok(Redirect::to("/").into_response())
}

fn candidate_actor(c: &db::users::LoginCandidate) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: Some(c.id),
        label: c.email.clone().unwrap_or_else(|| c.username.clone()),
    }
}

/// An admin's sign-in (or wrong password) in the district's audit log: the account is the
/// actor (`entity_id` stays empty, so the user's own change history is not filled with
/// sign-ins).
pub async fn record_sign_in(
    state: &AppState,
    district_id: Uuid,
    actor: &Actor,
    action: &str,
    ip: &str,
) -> AppResult<()> {
    db::audit::record(
        &state.pool,
        district_id,
        actor,
        db::audit::Entry {
            action,
            entity_kind: "user",
            entity_id: None,
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "ip": ip })),
        },
    )
    .await?;
    Ok(())
}

/// The operator with this email (when no district is given), else the members whose email
/// or username it is.
async fn find_accounts(state: &AppState, login: &str, district: &str) -> AppResult<Accounts> {
    if district.is_empty()
        && let Some(op) = db::accounts::operator_by_email(&state.pool, login).await?
    {
        return Ok(Accounts::Operator(op));
    }
    Ok(Accounts::Members(
        db::users::login_candidates(
            &state.pool,
            login,
            (!district.is_empty()).then_some(district),
        )
        .await?,
    ))
}

impl Accounts {
    /// The throttle counters this attempt counts against: one per account, or the name.
    fn keys(&self, login: &str) -> Vec<String> {
        match self {
            Accounts::Operator(op) => vec![db::throttle::operator_key(op.id)],
            Accounts::Members(m) if m.is_empty() => vec![db::throttle::name_key(login)],
            Accounts::Members(m) => m
                .iter()
                .map(|c| db::throttle::user_key(c.district_id, c.id))
                .collect(),
        }
    }
}

/// Check the password in the slot; the argon2 work is the same on every failed path
/// (`auth::verify_candidates`).
async fn check_password(
    slot: &auth::Slot,
    accounts: Accounts,
    password: &str,
) -> AppResult<Outcome> {
    let pw = password.to_string();
    let hashes: Vec<Option<String>> = match &accounts {
        Accounts::Operator(op) => vec![Some(op.password_hash.clone())],
        Accounts::Members(m) => m.iter().map(|c| c.password_hash.clone()).collect(),
    };
    let matched = slot
        .run(move || {
            let refs: Vec<Option<&str>> = hashes.iter().map(Option::as_deref).collect();
            auth::verify_candidates(&pw, &refs)
        })
        .await?;
    Ok(match accounts {
        Accounts::Operator(op) if matched.first() == Some(&true) => Outcome::Operator(op),
        Accounts::Operator(_) => Outcome::WrongPassword,
        Accounts::Members(m) => {
            let mut right: Vec<_> = m
                .into_iter()
                .zip(matched)
                .filter_map(|(c, ok)| ok.then_some(c))
                .collect();
            match right.len() {
                0 => Outcome::WrongPassword,
                1 => Outcome::Member(right.pop().expect("one")),
                _ => Outcome::Ambiguous,
            }
        }
    })
}

pub async fn logout(State(state): State<AppState>, session: Session) -> Redirect {
    if let Some(id) = super::session::tracked_id(&session).await
        && let Err(e) = db::account_sessions::end(&state.pool, id, state.clock.now()).await
    {
        tracing::warn!(error = %e, "the session list could not be updated");
    }
    sign_out(&session).await;
    set_flash(&session, "info", "You are signed out.").await;
    Redirect::to("/login")
}
