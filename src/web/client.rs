//! The address a request comes from, as sign-in limits count it, and the browser it says
//! it is (for "My sessions").

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

/// A browser as a person recognises it, from its User-Agent: "Firefox on Windows".
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        ""
    };
    let system = if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") => {
            let short: String = ua.chars().take(60).collect();
            if short.trim().is_empty() {
                "Unknown device".into()
            } else {
                short
            }
        }
        ("", s) => format!("A browser on {s}"),
        (b, "") => b.to_string(),
        (b, s) => format!("{b} on {s}"),
    }
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

    #[test]
    fn devices_in_words() {
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_label(firefox), "Firefox on Windows");
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(device_label(chrome), "Chrome on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(safari), "Safari on iOS");
        let edge =
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0";
        assert_eq!(device_label(edge), "Edge on Windows");
        assert_eq!(device_label("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(device_label(""), "Unknown device");
    }
}
