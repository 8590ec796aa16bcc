//! Single sign-on by OpenID Connect (issue 17, item 1), in plain Rust: a provider's settings
//! checked, the allowed email domains, who a signed-in identity is (an existing active user
//! of the district, by a stored subject or a verified email — never a new account), and
//! whether a district's "Require SSO" lets an account use its password. The protocol itself
//! (discovery, PKCE, the ID token's checks) is in [`client`].

pub mod client;

use crate::domain::{PortalRole, UserStatus};
use uuid::Uuid;

/// A provider's settings as the admin typed them, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub label: String,
    pub issuer_url: String,
    pub client_id: String,
    /// Empty on an update keeps the stored secret.
    pub client_secret: String,
    pub allowed_domains: Vec<String>,
    pub enabled: bool,
}

/// A provider form's fields as typed.
#[derive(Debug, Clone, Copy)]
pub struct Typed<'a> {
    pub label: &'a str,
    pub issuer_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Separated by commas, spaces or lines.
    pub domains: &'a str,
    pub enabled: bool,
}

/// Longest button label.
pub const MAX_LABEL: usize = 60;

/// Check a provider form. `new` requires a client secret; `allow_http` (installations that
/// let outbound requests reach private addresses: development and tests) accepts an
/// `http://` issuer, otherwise it must be `https://`.
pub fn check_settings(typed: &Typed<'_>, new: bool, allow_http: bool) -> Result<Settings, String> {
    let Typed {
        label,
        issuer_url,
        client_id,
        client_secret,
        domains,
        enabled,
    } = *typed;
    let label = label.trim();
    if label.is_empty() {
        return Err("Give the button a label, e.g. “Sign in with Google”.".into());
    }
    if label.chars().count() > MAX_LABEL {
        return Err(format!(
            "The button label is at most {MAX_LABEL} characters."
        ));
    }
    let issuer = issuer_url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(issuer).map_err(|_| {
        "The issuer URL is not a URL (e.g. https://accounts.google.com).".to_string()
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err("The issuer URL must start with https://.".into()),
    }
    if parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(
            "The issuer URL is the provider's base address, without query or fragment (e.g. https://login.microsoftonline.com/<tenant>/v2.0).".into(),
        );
    }
    let client_id = client_id.trim();
    if client_id.is_empty() {
        return Err("The client ID is required.".into());
    }
    let client_secret = client_secret.trim();
    if new && client_secret.is_empty() {
        return Err("The client secret is required.".into());
    }
    let allowed_domains = parse_domains(domains)?;
    if allowed_domains.is_empty() {
        return Err(
            "List at least one allowed email domain (e.g. springfield.k12.us): only those addresses may sign in.".into(),
        );
    }
    Ok(Settings {
        label: label.to_string(),
        issuer_url: issuer.to_string(),
        client_id: client_id.to_string(),
        client_secret: client_secret.to_string(),
        allowed_domains,
        enabled,
    })
}

/// Email domains separated by commas, spaces or lines; lower-cased, a leading `@` dropped,
/// duplicates removed.
pub fn parse_domains(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
        let d = part.trim().trim_start_matches('@').to_lowercase();
        if d.is_empty() {
            continue;
        }
        let valid = d.contains('.')
            && !d.starts_with(['.', '-'])
            && !d.ends_with(['.', '-'])
            && !d.contains("..")
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(format!(
                "“{d}” is not an email domain (e.g. springfield.k12.us)."
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Whether an email address is in one of the allowed domains (exactly: a subdomain is not
/// its parent).
pub fn domain_allowed(email: &str, domains: &[String]) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let domain = domain.to_lowercase();
            domains.contains(&domain)
        }
        _ => false,
    }
}

/// What the provider said about the person, from a checked ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// The `email_verified` claim; absent counts as not verified.
    pub email_verified: bool,
}

/// Microsoft Entra ID's optional claim `xms_edov` ("email domain owner verified") in an ID
/// token whose signature and claims were already checked: `true` (or Entra's string forms
/// `"true"`/`"1"`, or `1`) counts as a verified email when the token has no
/// `email_verified`. Anything else — absent, false, unreadable — does not.
pub fn entra_domain_verified(id_token: &str) -> bool {
    use base64::Engine;
    let Some(payload) = id_token.split('.').nth(1) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    match claims.get("xms_edov") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true" || s == "1",
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    }
}

/// A user of the district, as far as matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: Uuid,
    pub status: UserStatus,
    pub archived: bool,
}

/// Why a sign-in is refused, in words for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoEmail,
    EmailNotVerified,
    DomainNotAllowed,
    UnknownUser,
    Archived,
    Inactive,
}

impl Refusal {
    /// A short code for the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoEmail => "no_email",
            Refusal::EmailNotVerified => "email_not_verified",
            Refusal::DomainNotAllowed => "domain_not_allowed",
            Refusal::UnknownUser => "unknown_user",
            Refusal::Archived => "archived",
            Refusal::Inactive => "inactive",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Refusal::NoEmail => {
                "Your identity provider did not tell us your email address, so we cannot tell who you are. Ask your district administrator."
            }
            Refusal::EmailNotVerified => {
                "Your identity provider has not verified your email address, so it cannot be used to sign in here. Ask your district administrator."
            }
            Refusal::DomainNotAllowed => {
                "This email address is not in a domain this district signs in with. Use your district account."
            }
            Refusal::UnknownUser => {
                "There is no account for this email address in this district. Accounts come from your district's records: ask your district administrator."
            }
            Refusal::Archived => {
                "This account is archived and cannot sign in. Ask your district administrator."
            }
            Refusal::Inactive => {
                "This account is inactive and cannot sign in. Ask your district administrator."
            }
        }
    }
}

/// How a sign-in found its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The provider's subject, remembered from an earlier sign-in.
    Subject,
    /// The verified email, at the first sign-in (the subject is then remembered).
    Email,
}

/// Who a checked identity is: the user already linked to its subject, else the district's
/// user with its verified email in an allowed domain. `by_subject` and `by_email` are the
/// lookups' results. Only an active, unarchived user signs in.
pub fn decide(
    identity: &Identity,
    allowed_domains: &[String],
    by_subject: Option<&Candidate>,
    by_email: Option<&Candidate>,
) -> Result<(Uuid, Matched), Refusal> {
    let (user, how) = match by_subject {
        Some(u) => (u, Matched::Subject),
        None => {
            let email = identity.email.as_deref().ok_or(Refusal::NoEmail)?;
            if !identity.email_verified {
                return Err(Refusal::EmailNotVerified);
            }
            if !domain_allowed(email, allowed_domains) {
                return Err(Refusal::DomainNotAllowed);
            }
            (by_email.ok_or(Refusal::UnknownUser)?, Matched::Email)
        }
    };
    if user.archived {
        return Err(Refusal::Archived);
    }
    if user.status != UserStatus::Active {
        return Err(Refusal::Inactive);
    }
    Ok((user.id, how))
}

/// The district's "Require SSO" choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub for_users: bool,
    pub for_admins: bool,
    /// The one admin who keeps password (+ MFA) sign-in when admins must use SSO.
    pub break_glass: Option<Uuid>,
}

/// Whether this account may sign in with its password under the district's requirement.
pub fn password_allowed(req: &Requirement, user_id: Uuid, role: PortalRole) -> bool {
    if role.is_admin() {
        !req.for_admins || req.break_glass == Some(user_id)
    } else {
        !req.for_users
    }
}

/// Check a requirement before saving it: admins may be required only with a break-glass
/// district admin chosen among `admins`, and any requirement needs an enabled provider.
pub fn check_requirement(
    req: &Requirement,
    admins: &[Uuid],
    enabled_providers: usize,
) -> Result<(), String> {
    if (req.for_users || req.for_admins) && enabled_providers == 0 {
        return Err("Add (and enable) a sign-in provider before requiring single sign-on.".into());
    }
    if req.for_admins {
        match req.break_glass {
            None => {
                return Err(
                    "Choose a break-glass administrator: one district admin keeps password sign-in (with MFA) in case the provider is down.".into(),
                );
            }
            Some(id) if !admins.contains(&id) => {
                return Err(
                    "The break-glass administrator must be an active district admin.".into(),
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(status: UserStatus, archived: bool) -> Candidate {
        Candidate {
            id: Uuid::from_u128(7),
            status,
            archived,
        }
    }

    fn ident(email: Option<&str>, verified: bool) -> Identity {
        Identity {
            subject: "sub-1".into(),
            email: email.map(str::to_string),
            email_verified: verified,
        }
    }

    #[test]
    fn domains_are_parsed_and_checked() {
        let d = parse_domains("Springfield.org, @staff.springfield.org\nspringfield.org").unwrap();
        assert_eq!(d, vec!["springfield.org", "staff.springfield.org"]);
        assert!(parse_domains("not a domain!").is_err());
        assert!(parse_domains("localhost").is_err());
        assert!(domain_allowed("Ann@SPRINGFIELD.org", &d));
        assert!(!domain_allowed("ann@evil-springfield.org", &d));
        assert!(!domain_allowed("ann@sub.springfield.org", &d));
        assert!(!domain_allowed("@springfield.org", &d));
        assert!(!domain_allowed("springfield.org", &d));
    }

    #[test]
    fn settings_need_https_unless_private_addresses_are_allowed() {
        let t = |label, issuer, secret, domains| Typed {
            label,
            issuer_url: issuer,
            client_id: "id",
            client_secret: secret,
            domains,
            enabled: true,
        };
        let ok = check_settings(
            &t("Google", "https://accounts.google.com/", "s", "a.org"),
            true,
            false,
        )
        .unwrap();
        assert_eq!(ok.issuer_url, "https://accounts.google.com");
        let http =
            |allow| check_settings(&t("G", "http://127.0.0.1:9/", "s", "a.org"), true, allow);
        assert!(http(false).is_err());
        assert!(http(true).is_ok());
        assert!(check_settings(&t("G", "https://x.org", "", "a.org"), true, false).is_err());
        assert!(check_settings(&t("G", "https://x.org", "", "a.org"), false, false).is_ok());
        assert!(check_settings(&t("G", "https://x.org", "s", ""), true, false).is_err());
        assert!(check_settings(&t("", "https://x.org", "s", "a.org"), true, false).is_err());
        assert!(check_settings(&t("G", "https://x.org?a=1", "s", "a.org"), true, false).is_err());
        assert!(check_settings(&t("G", "ftp://x.org", "s", "a.org"), true, true).is_err());
    }

    #[test]
    fn a_stored_subject_wins_and_email_needs_verification_and_domain() {
        let domains = vec!["a.org".to_string()];
        let user = cand(UserStatus::Active, false);
        // Linked subject: no email needed.
        assert_eq!(
            decide(&ident(None, false), &domains, Some(&user), None),
            Ok((user.id, Matched::Subject))
        );
        assert_eq!(
            decide(&ident(Some("x@a.org"), true), &domains, None, Some(&user)),
            Ok((user.id, Matched::Email))
        );
        assert_eq!(
            decide(&ident(None, true), &domains, None, Some(&user)),
            Err(Refusal::NoEmail)
        );
        assert_eq!(
            decide(&ident(Some("x@a.org"), false), &domains, None, Some(&user)),
            Err(Refusal::EmailNotVerified)
        );
        assert_eq!(
            decide(&ident(Some("x@b.org"), true), &domains, None, Some(&user)),
            Err(Refusal::DomainNotAllowed)
        );
        assert_eq!(
            decide(&ident(Some("x@a.org"), true), &domains, None, None),
            Err(Refusal::UnknownUser)
        );
        let archived = cand(UserStatus::Active, true);
        assert_eq!(
            decide(
                &ident(Some("x@a.org"), true),
                &domains,
                Some(&archived),
                None
            ),
            Err(Refusal::Archived)
        );
        let inactive = cand(UserStatus::Inactive, false);
        assert_eq!(
            decide(
                &ident(Some("x@a.org"), true),
                &domains,
                None,
                Some(&inactive)
            ),
            Err(Refusal::Inactive)
        );
    }

    #[test]
    fn entra_domain_verified_reads_xms_edov_only_when_true() {
        use base64::Engine;
        let token = |claims: &str| {
            let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.sig", enc(r#"{"alg":"RS256"}"#), enc(claims))
        };
        for (claims, verified) in [
            (r#"{"sub":"a","xms_edov":true}"#, true),
            (r#"{"sub":"a","xms_edov":"true"}"#, true),
            (r#"{"sub":"a","xms_edov":"1"}"#, true),
            (r#"{"sub":"a","xms_edov":1}"#, true),
            (r#"{"sub":"a","xms_edov":false}"#, false),
            (r#"{"sub":"a","xms_edov":"false"}"#, false),
            (r#"{"sub":"a"}"#, false),
        ] {
            assert_eq!(entra_domain_verified(&token(claims)), verified, "{claims}");
        }
        assert!(!entra_domain_verified("not a token"));
        assert!(!entra_domain_verified("a.!!!.c"));
    }

    #[test]
    fn require_sso_keeps_one_break_glass_admin() {
        let admin = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let none = Requirement::default();
        assert!(password_allowed(&none, other, PortalRole::User));
        assert!(password_allowed(&none, admin, PortalRole::DistrictAdmin));
        let users = Requirement {
            for_users: true,
            ..Requirement::default()
        };
        assert!(!password_allowed(&users, other, PortalRole::User));
        assert!(password_allowed(&users, admin, PortalRole::DistrictAdmin));
        assert!(password_allowed(&users, other, PortalRole::SchoolAdmin));
        let all = Requirement {
            for_users: true,
            for_admins: true,
            break_glass: Some(admin),
        };
        assert!(password_allowed(&all, admin, PortalRole::DistrictAdmin));
        assert!(!password_allowed(&all, other, PortalRole::DistrictAdmin));
        assert!(!password_allowed(&all, other, PortalRole::SchoolAdmin));
        assert!(!password_allowed(&all, other, PortalRole::User));
    }

    #[test]
    fn a_requirement_needs_a_provider_and_a_break_glass_admin() {
        let admin = Uuid::from_u128(1);
        let users = Requirement {
            for_users: true,
            ..Requirement::default()
        };
        assert!(check_requirement(&users, &[admin], 0).is_err());
        assert!(check_requirement(&users, &[admin], 1).is_ok());
        let mut all = Requirement {
            for_users: true,
            for_admins: true,
            break_glass: None,
        };
        assert!(check_requirement(&all, &[admin], 1).is_err());
        all.break_glass = Some(Uuid::from_u128(9));
        assert!(check_requirement(&all, &[admin], 1).is_err());
        all.break_glass = Some(admin);
        assert!(check_requirement(&all, &[admin], 1).is_ok());
        assert!(check_requirement(&Requirement::default(), &[], 0).is_ok());
    }
}
