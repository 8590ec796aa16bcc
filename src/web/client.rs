//! The address a request comes from, as sign-in limits count it.

use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the connection's peer, or — when the server is configured to sit
/// behind one reverse proxy (`ROLLCALL_TRUST_PROXY`) — the address that proxy appended last
/// to `X-Forwarded-For`. Without that setting the header is ignored, so a client cannot
/// choose the address it is counted under.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if !state.config.trust_proxy {
            return Ok(ClientIp(peer));
        }
        Ok(ClientIp(forwarded_for(&parts.headers).unwrap_or(peer)))
    }
}

/// The last address in the last `X-Forwarded-For` header (the one our proxy added).
fn forwarded_for(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn the_proxys_own_entry_is_the_last() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_for(&h), None);
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.7"),
        );
        assert_eq!(forwarded_for(&h), Some(IpAddr::from([10, 0, 0, 7])));
        h.append("x-forwarded-for", HeaderValue::from_static(" 2001:db8::1 "));
        assert_eq!(forwarded_for(&h), "2001:db8::1".parse().ok());
        h.append("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(forwarded_for(&h), None);
    }
}
