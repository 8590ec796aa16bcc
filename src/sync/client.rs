//! The provider clients: OneRoster 1.1 REST (OAuth2 client credentials, `limit`/`offset`
//! paging with `X-Total-Count`; orgs, users, then the rosters' academic sessions, courses,
//! classes and enrollments) and Clever Data API v3 (district bearer token, paging by the
//! `next` link). The roster lists are optional: a provider that answers 404 (or 501) on the
//! first page of one does not offer it, and the fetch goes on without it, with a note for
//! the run (what it does not offer is left as it is). A client fetches everything before
//! anything is applied; a failed request
//! (network, 401, 5xx, malformed JSON) is tried again after each configured pause, and an
//! expired OAuth token (401 mid-paging) is refreshed once.
//!
//! Secrets and tokens travel only in headers; error messages name the path, never a URL
//! that could carry credentials, and never a token.
//!
//! Requests go through [`http`](super::http), under the outbound policy of
//! [`policy`](super::policy) (issue 20): only public addresses unless the operator allows
//! private ones, redirects only on the same server. A list stops at a page cap, on a page
//! seen before, and on a response larger than the cap; records are typed page by page (the
//! page's JSON dropped), so only the typed records are held until the run applies them.

use super::{http, policy};
use crate::config::Config;
use crate::domain::roster::RosterFeed;
use crate::feed::oneroster::{self, Org};
use crate::feed::oneroster_rosters::Collected;
use crate::feed::provider::ProviderUser;
use crate::feed::{clever, oneroster::org_from_json};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;

/// OneRoster page size asked for (providers may send fewer; paging follows what came).
const ONEROSTER_PAGE: usize = 500;
const CLEVER_PAGE: usize = 1000;
/// Records of one run (all lists together) past which a provider is cut off: twice the
/// largest district planned for (1,000,000 users), so memory stays bounded.
const MAX_RECORDS: usize = 2_000_000;
/// Largest token endpoint answer.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// What a client may do: from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Reach loopback, private and other non-public addresses (`ROLLCALL_SYNC_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Pages of one list before it stops.
    pub max_pages: usize,
    /// Largest response (one page), in bytes.
    pub max_response_bytes: u64,
    /// How long to wait before each retry (their number is the number of retries).
    pub pauses: Vec<Duration>,
}

impl Limits {
    /// The configured limits, with the configured retries.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            allow_private: config.sync_allow_private,
            max_pages: config.sync_max_pages.max(1),
            max_response_bytes: config.sync_max_response_mb.clamp(1, 1 << 20) * 1024 * 1024,
            pauses: config
                .sync_retry_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        }
    }
}

/// How long a sync run waits in the queue before its next attempt, after `attempts`
/// attempts (1 after the first): the configured pause, or `None` when the last attempt was
/// made (`pauses.len()` retries, so `pauses.len() + 1` attempts in all).
pub fn retry_wait(attempts: i32, pauses: &[Duration]) -> Option<Duration> {
    let done = usize::try_from(attempts.max(1)).unwrap_or(1);
    pauses.get(done - 1).copied()
}

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

pub(super) fn fail(message: impl Into<String>, retry: bool) -> Failure {
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

/// Everything a provider sent: orgs (schools and others) and users, in order, and the
/// rosters (classes, terms, enrollments; SPEC §6a).
#[derive(Debug, Default)]
pub struct Fetched {
    pub orgs: Vec<Org>,
    pub users: Vec<ProviderUser>,
    pub rosters: RosterFeed,
    /// What the provider does not offer and what was left as it is because of it, for the
    /// run's message (e.g. "the provider does not offer /classes; …").
    pub notes: Vec<String>,
}

/// Whether a list was there: an optional list the provider does not offer is `Absent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Yes,
    Absent,
}

/// The note for a roster list the provider does not offer.
fn not_offered(path: &str, left: &str) -> String {
    format!("the provider does not offer {path}; {left}")
}

pub struct Client {
    http: reqwest::Client,
    provider: Provider,
    token: Option<SecretString>,
    limits: Limits,
    /// Requests sent, for the log.
    pub requests: usize,
    /// List pages received, all lists together.
    pub pages: usize,
    /// Records received, all lists together.
    pub records: usize,
}

/// A digest of one page's records, to notice a page sent again.
fn digest(records: &[Value]) -> [u8; 32] {
    let mut h = Sha256::new();
    for r in records {
        h.update(r.to_string().as_bytes());
        h.update([0]);
    }
    h.finalize().into()
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
    pub fn new(provider: Provider, limits: Limits) -> Client {
        let http = http::client(limits.allow_private);
        Client {
            http,
            provider,
            token: None,
            limits,
            requests: 0,
            pages: 0,
            records: 0,
        }
    }

    /// Count a page of `n` records; past the run's record cap the fetch stops.
    fn count_page(&mut self, n: usize, what: &str) -> Result<(), Failure> {
        self.pages += 1;
        self.records += n;
        if self.records > MAX_RECORDS {
            return Err(fail(
                format!("the provider listed more than {MAX_RECORDS} records ({what}); stopped"),
                false,
            ));
        }
        Ok(())
    }

    fn too_many_pages(&self, what: &str) -> Failure {
        fail(
            format!(
                "the provider listed more than {} pages of {what} without an end; stopped \
                 (the limit is ROLLCALL_SYNC_MAX_PAGES)",
                self.limits.max_pages
            ),
            false,
        )
    }

    /// Fetch every school/org and user, all pages. Each page's records are typed as it
    /// comes, and the page dropped.
    pub async fn fetch_all(&mut self) -> Result<Fetched, Failure> {
        let mut fetched = Fetched::default();
        match &self.provider {
            Provider::OneRoster { base, .. } => {
                let base = base.clone();
                let orgs = &mut fetched.orgs;
                self.oneroster_list(&base, "orgs", false, |page| {
                    orgs.extend(page.iter().filter_map(org_from_json))
                })
                .await?;
                let users = &mut fetched.users;
                self.oneroster_list(&base, "users", false, |page| {
                    for v in page {
                        let n = users.len() + 1;
                        users.push(oneroster::user_from_json(&v, n));
                    }
                })
                .await?;
                fetched.rosters = self.oneroster_rosters(&base, &mut fetched.notes).await?;
            }
            Provider::Clever { base, .. } => {
                let base = base.clone();
                let orgs = &mut fetched.orgs;
                let first = format!("/v3.0/schools?limit={CLEVER_PAGE}");
                self.clever_list(&base, &first, "schools", false, |page| {
                    orgs.extend(page.iter().filter_map(clever::school))
                })
                .await?;
                let users = &mut fetched.users;
                let mut seen = HashSet::new();
                for role in clever::ROLES {
                    let first = format!("/v3.0/users?role={role}&limit={CLEVER_PAGE}");
                    let what = format!("{role} users");
                    self.clever_list(&base, &first, &what, false, |page| {
                        for v in page {
                            let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
                            if id.is_empty() || seen.insert(id.to_string()) {
                                let n = users.len() + 1;
                                users.push(clever::user(&v, role, n));
                            }
                        }
                    })
                    .await?;
                }
                self.clever_rosters(&base, &mut fetched.rosters, &mut fetched.notes)
                    .await?;
            }
        }
        Ok(fetched)
    }

    /// The rosters of a OneRoster provider (SPEC §6a): `/academicSessions`, `/courses`,
    /// `/classes`, `/enrollments`, paged like the other lists. A full sync lists every class
    /// and enrollment, so the feed is complete for the lists the provider offers. A list it
    /// does not offer (404/501) is left out with a note: without `/classes` neither classes
    /// nor enrollments are read (enrollments name classes) and both are left as they are;
    /// without `/enrollments` the classes are synced and enrollments left as they are.
    async fn oneroster_rosters(
        &mut self,
        base: &Url,
        notes: &mut Vec<String>,
    ) -> Result<RosterFeed, Failure> {
        let mut c = Collected::default();
        let mut n = 0;
        let sessions = self
            .oneroster_list(base, "academicSessions", true, |page| {
                for v in page {
                    n += 1;
                    c.session_json(&v, n);
                }
            })
            .await?;
        if sessions == Listed::Absent {
            notes.push(not_offered(
                "/academicSessions",
                "terms were left as they are",
            ));
        }
        let courses = self
            .oneroster_list(base, "courses", true, |page| {
                page.iter().for_each(|v| c.course_json(v))
            })
            .await?;
        if courses == Listed::Absent {
            notes.push(not_offered(
                "/courses",
                "classes were read without course codes",
            ));
        }
        let mut n = 0;
        let classes = self
            .oneroster_list(base, "classes", true, |page| {
                for v in page {
                    n += 1;
                    c.class_json(&v, n);
                }
            })
            .await?;
        if classes == Listed::Absent {
            notes.push(not_offered(
                "/classes",
                "classes and enrollments were left as they are",
            ));
            return Ok(c.into_feed(false, false));
        }
        let mut n = 0;
        let enrollments = self
            .oneroster_list(base, "enrollments", true, |page| {
                for v in page {
                    n += 1;
                    c.enrollment_json(&v, n);
                }
            })
            .await?;
        if enrollments == Listed::Absent {
            notes.push(not_offered(
                "/enrollments",
                "enrollments were left as they are",
            ));
        }
        Ok(c.into_feed(true, enrollments == Listed::Yes))
    }

    /// Clever's terms, courses and sections (SPEC §6a), after its schools and users: every
    /// section with its teachers and students, its course code from its course's `number`.
    /// A full list, so classes and enrollments of the connection it no longer lists are
    /// archived and ended. A list the provider does not offer (404/501) is left out with a
    /// note: without `/v3.0/sections` classes and enrollments are left as they are.
    async fn clever_rosters(
        &mut self,
        base: &Url,
        rosters: &mut RosterFeed,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let terms = &mut rosters.terms;
        let first = format!("/v3.0/terms?limit={CLEVER_PAGE}");
        let listed = self
            .clever_list(base, &first, "terms", true, |page| {
                for v in page {
                    let n = terms.len() as u64 + 1;
                    terms.push(clever::term(&v, n));
                }
            })
            .await?;
        if listed == Listed::Absent {
            notes.push(not_offered("/v3.0/terms", "terms were left as they are"));
        }
        let mut courses = clever::Courses::default();
        let first = format!("/v3.0/courses?limit={CLEVER_PAGE}");
        let listed = self
            .clever_list(base, &first, "courses", true, |page| {
                page.iter().for_each(|v| courses.add(v))
            })
            .await?;
        if listed == Listed::Absent {
            notes.push(not_offered(
                "/v3.0/courses",
                "course codes are the sections' course ids",
            ));
        }
        let (classes, enrollments) = (&mut rosters.classes, &mut rosters.enrollments);
        let first = format!("/v3.0/sections?limit={CLEVER_PAGE}");
        let listed = self
            .clever_list(base, &first, "sections", true, |page| {
                for v in page {
                    let n = classes.len() as u64 + 1;
                    let (class, enrolled) = clever::section(&v, n, &courses);
                    classes.push(class);
                    enrollments.extend(enrolled.into_iter().map(|r| r.map_err(Box::new)));
                }
            })
            .await?;
        rosters.enrollments.seal();
        if listed == Listed::Absent {
            notes.push(not_offered(
                "/v3.0/sections",
                "classes and enrollments were left as they are",
            ));
            return Ok(());
        }
        rosters.classes_complete = true;
        rosters.enrollments_complete = true;
        Ok(())
    }

    /// Page through a OneRoster list by `offset`, handing each page's records to `each`.
    /// `optional`: a 404/501 on the first page means the provider does not offer the list
    /// (`Listed::Absent`); on a later page, or for a list that is not optional, it fails.
    async fn oneroster_list(
        &mut self,
        base: &Url,
        what: &str,
        optional: bool,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<Listed, Failure> {
        let mut count = 0;
        let mut pages = 0;
        let mut seen = HashSet::new();
        loop {
            let url = under(
                base,
                &format!("/ims/oneroster/v1p1/{what}?limit={ONEROSTER_PAGE}&offset={count}"),
            );
            let Some((mut body, headers)) =
                self.get_json(&url, what, optional && pages == 0).await?
            else {
                return Ok(Listed::Absent);
            };
            let Some(Value::Array(items)) = body.get_mut(what).map(Value::take) else {
                unreachable!("get_json checked the envelope")
            };
            drop(body);
            let total = headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            // Without a total, page until an empty page: a provider may send fewer than asked.
            if items.is_empty() {
                return Ok(Listed::Yes);
            }
            if !seen.insert(digest(&items)) {
                return Err(fail(
                    format!(
                        "the provider sent the same page of {what} again (at offset {count}); \
                         its paging does not end"
                    ),
                    false,
                ));
            }
            pages += 1;
            count += items.len();
            self.count_page(items.len(), what)?;
            each(items);
            if total.is_some_and(|t| count >= t) {
                return Ok(Listed::Yes);
            }
            if pages >= self.limits.max_pages {
                return Err(self.too_many_pages(what));
            }
        }
    }

    /// Page through a Clever list by its `next` links, handing each page's records to `each`.
    /// `optional` as for [`Client::oneroster_list`].
    async fn clever_list(
        &mut self,
        base: &Url,
        first: &str,
        what: &str,
        optional: bool,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<Listed, Failure> {
        let mut url = under(base, first);
        let mut links = HashSet::from([url.clone()]);
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let Some((body, _)) = self.get_json(&url, "data", optional && pages == 0).await? else {
                return Ok(Listed::Absent);
            };
            let (records, next) = clever::page(&body).map_err(|e| fail(e, true))?;
            drop(body);
            if !records.is_empty() && !seen.insert(digest(&records)) {
                return Err(fail(
                    format!(
                        "the provider sent the same page of {what} again ({}); its paging \
                         does not end",
                        path_of(&url)
                    ),
                    false,
                ));
            }
            pages += 1;
            self.count_page(records.len(), what)?;
            each(records);
            let Some(next) = next else {
                return Ok(Listed::Yes);
            };
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
            if !links.insert(url.clone()) {
                return Err(fail(
                    format!(
                        "the provider sent the same next-page link again ({}); its paging \
                         does not end",
                        path_of(&url)
                    ),
                    false,
                ));
            }
            if pages >= self.limits.max_pages {
                return Err(self.too_many_pages(what));
            }
        }
    }

    /// GET a JSON list page whose `envelope` member must be a list. Tried again after each
    /// pause while the failure is worth retrying. `absent_ok`: a 404 or 501 answers `None`
    /// (the provider does not offer the list) instead of failing.
    async fn get_json(
        &mut self,
        url: &str,
        envelope: &str,
        absent_ok: bool,
    ) -> Result<Option<(Value, HeaderMap)>, Failure> {
        let mut attempt = 0;
        loop {
            let result = self.get_once(url, envelope, absent_ok).await;
            match result {
                Ok(ok) => return Ok(ok),
                Err(f) if f.retry && attempt < self.limits.pauses.len() => {
                    tracing::warn!(path = %path_of(url), attempt = attempt + 1, reason = %f.message, "sync request failed; retrying");
                    tokio::time::sleep(self.limits.pauses[attempt]).await;
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

    async fn get_once(
        &mut self,
        url: &str,
        envelope: &str,
        absent_ok: bool,
    ) -> Result<Option<(Value, HeaderMap)>, Failure> {
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
        if absent_ok && matches!(status, StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED) {
            tracing::info!(path = %path, status = %status, "the provider does not offer this list");
            return Ok(None);
        }
        if !status.is_success() {
            let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            return Err(fail(
                format!("GET {path}: the provider answered HTTP {status}"),
                retry,
            ));
        }
        let headers = response.headers().clone();
        let bytes = http::read_body(
            response,
            self.limits.max_response_bytes,
            &format!("GET {path}"),
        )
        .await?;
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
        Ok(Some((body, headers)))
    }

    async fn send(&mut self, url: &str) -> Result<reqwest::Response, Failure> {
        let what = format!("GET {}", path_of(url));
        let parsed = Url::parse(url).map_err(|_| fail(format!("{what}: not a URL"), false))?;
        policy::check_url(&parsed, self.limits.allow_private)
            .map_err(|e| fail(format!("{what}: {e}"), false))?;
        let token = self.bearer().await?;
        self.requests += 1;
        self.http
            .get(parsed)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| http::request_failure(&what, e))
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
                policy::check_url(token_url, self.limits.allow_private)
                    .map_err(|e| fail(format!("token request: {e}"), false))?;
                self.requests += 1;
                let response = self
                    .http
                    .post(token_url.clone())
                    .basic_auth(client_id, Some(secret.expose_secret()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map_err(|e| http::request_failure("token request", e))?;
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
                let bytes = http::read_body(response, MAX_TOKEN_BYTES, "token request").await?;
                let body: Value = serde_json::from_slice(&bytes)
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

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn each_attempt_waits_its_pause_and_the_last_one_gives_up() {
        let pauses = [Duration::from_secs(1), Duration::from_secs(4)];
        assert_eq!(retry_wait(1, &pauses), Some(Duration::from_secs(1)));
        assert_eq!(retry_wait(2, &pauses), Some(Duration::from_secs(4)));
        assert_eq!(retry_wait(3, &pauses), None);
        assert_eq!(retry_wait(9, &pauses), None);
        // A run never marked started counts as its first attempt.
        assert_eq!(retry_wait(0, &pauses), Some(Duration::from_secs(1)));
        assert_eq!(retry_wait(1, &[]), None);
    }
}
