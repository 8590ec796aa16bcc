//! The OpenID Connect protocol with one provider, through the `openidconnect` crate:
//! discovery from the issuer URL, the authorization code flow's first leg (a random `state`,
//! `nonce` and PKCE S256 challenge), and the second (the code exchanged with the PKCE
//! verifier, the ID token's signature, issuer, audience, expiry and nonce checked). Requests
//! go through the sync's guarded HTTP client (`crate::sync::http`), so a provider's address
//! is held to the same rules as a roster sync's.

use super::Identity;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use time::OffsetDateTime;

/// One provider, as the flow needs it.
pub struct Provider<'a> {
    pub issuer_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// This portal's callback, as registered at the provider.
    pub redirect_url: &'a str,
}

/// The first leg: where to send the browser, and what the callback must find again.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Why a flow failed: a short code (the audit log's) and words for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    /// What went wrong, for the log and the audit entry (no secret, no token).
    pub detail: String,
}

impl Failure {
    fn new(code: &'static str, detail: impl Into<String>) -> Failure {
        Failure {
            code,
            detail: detail.into(),
        }
    }

    /// Words for the person signing in.
    pub fn words(&self) -> &'static str {
        match self.code {
            "unreachable" => {
                "The district's identity provider could not be reached. Try again in a moment, or ask your district administrator."
            }
            "provider_error" => "The identity provider did not sign you in. Try again.",
            _ => {
                "The identity provider's answer could not be trusted, so you are not signed in. Ask your district administrator."
            }
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// The provider's discovery document read and the client made.
async fn client(
    http: &reqwest::Client,
    p: &Provider<'_>,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    Failure,
> {
    let issuer = IssuerUrl::new(p.issuer_url.to_string())
        .map_err(|e| Failure::new("bad_settings", format!("issuer URL: {e}")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| Failure::new("unreachable", format!("discovery: {}", chain(&e))))?;
    let redirect = RedirectUrl::new(p.redirect_url.to_string())
        .map_err(|e| Failure::new("bad_settings", format!("redirect URL: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.to_string()),
        Some(ClientSecret::new(p.client_secret.to_string())),
    )
    .set_redirect_uri(redirect))
}

/// Read the issuer's discovery document (when a provider is saved).
pub async fn discover(http: &reqwest::Client, issuer_url: &str) -> Result<(), Failure> {
    let issuer = IssuerUrl::new(issuer_url.to_string())
        .map_err(|e| Failure::new("bad_settings", format!("issuer URL: {e}")))?;
    CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| Failure::new("unreachable", format!("discovery: {}", chain(&e))))?;
    Ok(())
}

/// The first leg: the provider's authorization URL with `state`, `nonce` and a PKCE S256
/// challenge; scopes `openid email`.
pub async fn start(http: &reqwest::Client, p: &Provider<'_>) -> Result<Started, Failure> {
    let client = client(http, p).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Started {
        authorize_url: url.to_string(),
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// The second leg: exchange the code (with the PKCE verifier) and check the ID token —
/// signature against the provider's published keys, issuer, audience (this client),
/// expiry against `now`, and the nonce of the first leg.
pub async fn finish(
    http: &reqwest::Client,
    p: &Provider<'_>,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
    now: OffsetDateTime,
) -> Result<Identity, Failure> {
    let client = client(http, p).await?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| Failure::new("bad_settings", format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .request_async(http)
        .await
        .map_err(|e| Failure::new("token_refused", format!("token request: {}", chain(&e))))?;
    let id_token = response
        .id_token()
        .ok_or_else(|| Failure::new("no_id_token", "the token response has no ID token"))?;
    let at =
        chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), now.nanosecond())
            .unwrap_or_default();
    let verifier = client.id_token_verifier().set_time_fn(move || at);
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_string()))
        .map_err(|e| Failure::new(claims_code(&e), e.to_string()))?;
    let email_verified = match claims.email_verified() {
        Some(verified) => verified,
        // Microsoft Entra ID sends no `email_verified`; its optional claim `xms_edov` says
        // the email's domain owner verified it (read from the token just checked).
        None => super::entra_domain_verified(&id_token.to_string()),
    };
    Ok(Identity {
        subject: claims.subject().as_str().to_string(),
        email: claims.email().map(|e| e.as_str().to_lowercase()),
        email_verified,
    })
}

/// The audit code of a failed ID token check.
fn claims_code(e: &ClaimsVerificationError) -> &'static str {
    match e {
        ClaimsVerificationError::Expired(_) => "expired",
        ClaimsVerificationError::InvalidAudience(_) => "wrong_audience",
        ClaimsVerificationError::InvalidIssuer(_) => "wrong_issuer",
        ClaimsVerificationError::InvalidNonce(_) => "wrong_nonce",
        ClaimsVerificationError::SignatureVerification(_) => "bad_signature",
        _ => "invalid_id_token",
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
