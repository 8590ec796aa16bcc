//! The provider clients: OneRoster 1.1 REST (OAuth2 client credentials, `limit`/`offset`
//! paging with `X-Total-Count`) and Clever Data API v3 (district bearer token, paging by the
//! `next` link). A client fetches everything before anything is applied; a failed request
//! (network, 401, 5xx, malformed JSON) is tried again after each configured pause, and an
//! expired OAuth token (401 mid-paging) is refreshed once.
//!
//! Secrets and tokens travel only in headers; error messages name the path, never a URL
//! that could carry credentials, and never a token.

use crate::feed::oneroster::{self, Org};
use crate::feed::provider::ProviderUser;
use crate::feed::{clever, oneroster::org_from_json};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// OneRoster page size asked for (providers may send fewer; paging follows what came).
const ONEROSTER_PAGE: usize = 500;
const CLEVER_PAGE: usize = 1000;
/// A provider that never stops paging is cut off here.
const MAX_RECORDS: usize = 5_000_000;

/// Why a fetch failed, in words for the run's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Worth trying again (network, 401, 429, 5xx, malformed JSON).
    pub retry: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(message: impl Into<String>, retry: bool) -> Failure {
    Failure {
        message: message.into(),
        retry,
    }
}

/// Where a connection's data comes from, with its credentials.
pub enum Provider {
    OneRoster {
        base: Url,
        token_url: Url,
        client_id: String,
        secret: SecretString,
    },
    Clever {
        base: Url,
        token: SecretString,
    },
}

/// Everything a provider sent: orgs (schools and others) and users, in order.
#[derive(Debug, Default)]
pub struct Fetched {
    pub orgs: Vec<Org>,
    pub users: Vec<ProviderUser>,
}

pub struct Client {
    http: reqwest::Client,
    provider: Provider,
    token: Option<SecretString>,
    pauses: Vec<Duration>,
    /// Requests sent, for the log.
    pub requests: usize,
}

/// Parse a base URL an admin typed: http(s) only, https unless the host is this machine.
pub fn parse_base(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|_| format!("\"{raw}\" is not a URL"))?;
    let local = matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err("the URL must start with https://".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in their own fields, not in the URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query (?…) or fragment (#…)".into());
    }
    Ok(url)
}

/// `base` + `path`, keeping any path the base already has.
fn under(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

fn path_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| "the provider".into())
}

impl Client {
    /// `pauses`: how long to wait before each retry (their number is the number of retries).
    pub fn new(provider: Provider, pauses: Vec<Duration>) -> Client {
        let http = reqwest::Client::builder()
            .user_agent(concat!("Rollcall/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client with rustls builds");
        Client {
            http,
            provider,
            token: None,
            pauses,
            requests: 0,
        }
    }

    /// Fetch every school/org and user, all pages.
    pub async fn fetch_all(&mut self) -> Result<Fetched, Failure> {
        match &self.provider {
            Provider::OneRoster { base, .. } => {
                let base = base.clone();
                let orgs = self.oneroster_list(&base, "orgs").await?;
                let users = self.oneroster_list(&base, "users").await?;
                Ok(Fetched {
                    orgs: orgs.iter().filter_map(org_from_json).collect(),
                    users: users
                        .iter()
                        .enumerate()
                        .map(|(i, v)| oneroster::user_from_json(v, i + 1))
                        .collect(),
                })
            }
            Provider::Clever { base, .. } => {
                let base = base.clone();
                let schools = self
                    .clever_list(&base, &format!("/v3.0/schools?limit={CLEVER_PAGE}"))
                    .await?;
                let mut users = Vec::new();
                let mut seen = HashSet::new();
                for role in clever::ROLES {
                    let path = format!("/v3.0/users?role={role}&limit={CLEVER_PAGE}");
                    for v in self.clever_list(&base, &path).await? {
                        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
                        if id.is_empty() || seen.insert(id.to_string()) {
                            users.push(clever::user(&v, role, users.len() + 1));
                        }
                    }
                }
                Ok(Fetched {
                    orgs: schools.iter().filter_map(clever::school).collect(),
                    users,
                })
            }
        }
    }

    async fn oneroster_list(&mut self, base: &Url, what: &str) -> Result<Vec<Value>, Failure> {
        let mut out = Vec::new();
        loop {
            let url = under(
                base,
                &format!(
                    "/ims/oneroster/v1p1/{what}?limit={ONEROSTER_PAGE}&offset={}",
                    out.len()
                ),
            );
            let (body, headers) = self.get_json(&url, what).await?;
            let Some(Value::Array(items)) = body.get(what).cloned() else {
                unreachable!("get_json checked the envelope")
            };
            let total = headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            let n = items.len();
            out.extend(items);
            // Without a total, page until an empty page: a provider may send fewer than asked.
            let done = n == 0 || total.is_some_and(|t| out.len() >= t);
            if done {
                return Ok(out);
            }
            if out.len() > MAX_RECORDS {
                return Err(fail(
                    format!("the provider listed more than {MAX_RECORDS} {what}"),
                    false,
                ));
            }
        }
    }

    async fn clever_list(&mut self, base: &Url, first: &str) -> Result<Vec<Value>, Failure> {
        let mut out = Vec::new();
        let mut url = under(base, first);
        let mut seen = HashSet::new();
        loop {
            let (body, _) = self.get_json(&url, "data").await?;
            let (records, next) = clever::page(&body).map_err(|e| fail(e, true))?;
            out.extend(records);
            let Some(next) = next else { return Ok(out) };
            // Follow the link only on the same server: the token must not go anywhere else.
            let next_url = base
                .join(&next)
                .map_err(|_| fail(format!("the next-page link \"{next}\" is not a URL"), false))?;
            if next_url.origin() != base.origin() {
                return Err(fail(
                    "the next-page link points to another server; not followed",
                    false,
                ));
            }
            url = next_url.to_string();
            if !seen.insert(url.clone()) || out.len() > MAX_RECORDS {
                return Err(fail("the provider's paging does not end", false));
            }
        }
    }

    /// GET a JSON list page whose `envelope` member must be a list. Tried again after each
    /// pause while the failure is worth retrying.
    async fn get_json(&mut self, url: &str, envelope: &str) -> Result<(Value, HeaderMap), Failure> {
        let mut attempt = 0;
        loop {
            let result = self.get_once(url, envelope).await;
            match result {
                Ok(ok) => return Ok(ok),
                Err(f) if f.retry && attempt < self.pauses.len() => {
                    tracing::warn!(path = %path_of(url), attempt = attempt + 1, reason = %f.message, "sync request failed; retrying");
                    tokio::time::sleep(self.pauses[attempt]).await;
                    attempt += 1;
                }
                Err(f) if attempt > 0 => {
                    return Err(fail(
                        format!("{} (after {} attempts)", f.message, attempt + 1),
                        f.retry,
                    ));
                }
                Err(f) => return Err(f),
            }
        }
    }

    async fn get_once(&mut self, url: &str, envelope: &str) -> Result<(Value, HeaderMap), Failure> {
        let path = path_of(url);
        let had_token = self.token.is_some();
        let mut response = self.send(url).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && had_token
            && matches!(self.provider, Provider::OneRoster { .. })
        {
            // The token expired mid-paging: get a new one, once.
            tracing::info!(path = %path, "access token refused; requesting a new one");
            self.token = None;
            response = self.send(url).await?;
        }
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            self.token = None;
            return Err(fail(
                format!("GET {path}: the provider answered 401 Unauthorized (credentials refused)"),
                true,
            ));
        }
        if !status.is_success() {
            let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            return Err(fail(
                format!("GET {path}: the provider answered HTTP {status}"),
                retry,
            ));
        }
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(format!("GET {path}: {}", e.without_url()), true))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                format!("GET {path}: the response is not valid JSON ({e})"),
                true,
            )
        })?;
        if !body.get(envelope).is_some_and(Value::is_array) {
            return Err(fail(
                format!("GET {path}: the response has no \"{envelope}\" list"),
                true,
            ));
        }
        Ok((body, headers))
    }

    async fn send(&mut self, url: &str) -> Result<reqwest::Response, Failure> {
        let token = self.bearer().await?;
        self.requests += 1;
        self.http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(format!("GET {}: {}", path_of(url), e.without_url()), true))
    }

    /// The bearer token: Clever's district token, or an OAuth2 client-credentials token.
    async fn bearer(&mut self) -> Result<SecretString, Failure> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let token = match &self.provider {
            Provider::Clever { token, .. } => token.clone(),
            Provider::OneRoster {
                token_url,
                client_id,
                secret,
                ..
            } => {
                self.requests += 1;
                let response = self
                    .http
                    .post(token_url.clone())
                    .basic_auth(client_id, Some(secret.expose_secret()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map_err(|e| fail(format!("token request: {}", e.without_url()), true))?;
                let status = response.status();
                if matches!(status, StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED) {
                    return Err(fail(
                        format!(
                            "the token endpoint refused the client id or secret (HTTP {status})"
                        ),
                        true,
                    ));
                }
                if !status.is_success() {
                    let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    return Err(fail(
                        format!("the token endpoint answered HTTP {status}"),
                        retry,
                    ));
                }
                let body: Value = response
                    .json()
                    .await
                    .map_err(|_| fail("the token endpoint's answer is not valid JSON", true))?;
                match body.get("access_token").and_then(Value::as_str) {
                    Some(t) if !t.is_empty() => SecretString::from(t.to_string()),
                    _ => return Err(fail("the token endpoint sent no access_token", true)),
                }
            }
        };
        self.token = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(parse_base("https://sis.example.org/oneroster").is_ok());
        assert!(parse_base("http://127.0.0.1:9000").is_ok());
        assert!(parse_base("http://sis.example.org").is_err());
        assert!(parse_base("https://u:p@sis.example.org").is_err());
        assert!(parse_base("ftp://sis.example.org").is_err());
        assert!(parse_base("sis.example.org").is_err());
        let b = parse_base("https://sis.example.org/or/").unwrap();
        assert_eq!(under(&b, "/ims/x"), "https://sis.example.org/or/ims/x");
    }
}
