//! Outbound HTTP for syncs, under the policy of [`policy`](super::policy) (issue 20): the
//! one way a sync's reqwest client is built. Host names resolve through a resolver that
//! drops the addresses the policy refuses, so the addresses actually connected to are the
//! ones checked (DNS rebinding), whatever a name resolved to when the connection was saved;
//! addresses written in a URL skip the resolver and are checked on the URL (by the client
//! before each request) and on every redirect target. Redirects stay on the same server,
//! at most [`MAX_REDIRECTS`]. No proxy from the environment: it would resolve names out of
//! our sight.

use super::client::{Failure, fail};
use super::policy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed for one request (on the same server only).
pub const MAX_REDIRECTS: usize = 5;

/// The HTTP client of one sync or connection test.
pub fn client(allow_private: bool) -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        if let Err(e) = policy::check_redirect(first, attempt.url()) {
            return attempt.error(e);
        }
        if let Err(e) = policy::check_url(attempt.url(), allow_private) {
            return attempt.error(e);
        }
        attempt.follow()
    });
    reqwest::Client::builder()
        .user_agent(concat!("Rollcall/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(redirects)
        .build()
        .expect("an HTTP client with rustls builds")
}

/// Resolves host names with the system resolver and drops the addresses the policy
/// refuses; when none is left, the connection fails with the reason.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy::check_addr(&host, a.ip(), allow_private) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match refused {
                Some(e) if allowed.is_empty() => Err(Box::new(e) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// Too many redirects for one request.
#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the provider redirected more than {MAX_REDIRECTS} times")
    }
}

impl std::error::Error for TooManyRedirects {}

/// Words for a failed request: the policy's reason when it refused (not worth retrying),
/// else reqwest's without the URL.
pub fn request_failure(what: &str, e: reqwest::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        let refusal = s
            .downcast_ref::<policy::Refused>()
            .map(ToString::to_string)
            .or_else(|| {
                s.downcast_ref::<policy::OffServer>()
                    .map(ToString::to_string)
            })
            .or_else(|| {
                s.downcast_ref::<TooManyRedirects>()
                    .map(ToString::to_string)
            });
        if let Some(reason) = refusal {
            return fail(format!("{what}: {reason}"), false);
        }
        source = s.source();
    }
    fail(format!("{what}: {}", e.without_url()), true)
}

/// Read a response body, refusing one larger than `max` bytes (before reading, when it says
/// its length).
pub async fn read_body(
    mut response: reqwest::Response,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        fail(
            format!(
                "{what}: the response is larger than {}",
                if max >= 1024 * 1024 {
                    format!("{} MiB", max / (1024 * 1024))
                } else {
                    format!("{} KiB", max / 1024)
                }
            ),
            false,
        )
    };
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(format!("{what}: {}", e.without_url()), true))?
    {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
