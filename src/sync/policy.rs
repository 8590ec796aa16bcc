//! Where a roster sync may connect (issue 20, finding 6): a district admin types the URL,
//! the shared server makes the request, so the server must not be turned against its own
//! network. Without `ROLLCALL_SYNC_ALLOW_PRIVATE`, loopback, private, link-local (cloud
//! metadata), shared (CGNAT), unspecified, multicast, broadcast and reserved addresses are
//! refused — in IPv4, IPv6, and IPv6 forms that carry an IPv4 address. The addresses checked
//! are the ones actually connected to: a host name is checked after it resolves (DNS
//! rebinding), an address typed in the URL before anything is sent. Pure: no I/O here.

use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    UniqueLocal,
}

impl Blocked {
    pub fn label(self) -> &'static str {
        match self {
            Blocked::Loopback => "a loopback address (this machine)",
            Blocked::Private => "a private network address",
            Blocked::LinkLocal => "a link-local address (cloud metadata lives there)",
            Blocked::SharedCgnat => "a shared (carrier-grade NAT) address",
            Blocked::Unspecified => "the unspecified address",
            Blocked::Multicast => "a multicast address",
            Blocked::Broadcast => "the broadcast address",
            Blocked::Reserved => "a reserved address",
            Blocked::UniqueLocal => "a private (unique local) IPv6 address",
        }
    }
}

/// What is wrong with an address, or `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_broadcast() => Blocked::Broadcast,
        (0, _) if ip.is_unspecified() => Blocked::Unspecified,
        // 0.0.0.0/8 "this network": Linux connects 0.x to the machine itself.
        (0, _) => Blocked::Unspecified,
        (127, _) => Blocked::Loopback,
        (10, _) => Blocked::Private,
        (172, 16..=31) => Blocked::Private,
        (192, 168) => Blocked::Private,
        (169, 254) => Blocked::LinkLocal,
        (100, 64..=127) => Blocked::SharedCgnat,
        // 192.0.0.0/24: IETF protocol assignments (e.g. DS-Lite, NAT64 discovery).
        (192, 0) if c == 0 => Blocked::Reserved,
        // 198.18.0.0/15: benchmarking, used inside networks.
        (198, 18..=19) => Blocked::Reserved,
        (224..=239, _) => Blocked::Multicast,
        (240..=255, _) => Blocked::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if ip.is_unspecified() {
        return Some(Blocked::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Blocked::Loopback);
    }
    // IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 address itself.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
    // carry an IPv4 address that a gateway may reach for us.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0; 6] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => Blocked::UniqueLocal,
        x if x & 0xffc0 == 0xfe80 => Blocked::LinkLocal,
        // fec0::/10 site-local (deprecated): private in practice.
        x if x & 0xffc0 == 0xfec0 => Blocked::Private,
        x if x & 0xff00 == 0xff00 => Blocked::Multicast,
        _ => return None,
    })
}

/// A destination a sync may not reach, in words for the admin and the run's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host as written (a name or an address).
    pub host: String,
    pub addr: IpAddr,
    pub why: Blocked,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = self.addr.to_string();
        if self.host.trim_matches(['[', ']']) == addr {
            write!(f, "{addr} is {}", self.why.label())?;
        } else {
            write!(f, "{} resolves to {addr}, {}", self.host, self.why.label())?;
        }
        f.write_str("; syncs may only reach public addresses (an on-premise provider needs ROLLCALL_SYNC_ALLOW_PRIVATE on the server)")
    }
}

impl std::error::Error for Refused {}

/// Check one address `host` resolved to (or is).
pub fn check_addr(host: &str, addr: IpAddr, allow_private: bool) -> Result<(), Refused> {
    match classify(addr) {
        Some(why) if !allow_private => Err(Refused {
            host: host.to_string(),
            addr,
            why,
        }),
        _ => Ok(()),
    }
}

/// Check a URL whose host is an address (names are checked when they resolve).
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), Refused> {
    // The URL parser writes an address host in its one canonical form (`0x7f.1` is
    // `127.0.0.1`), IPv6 in brackets.
    let host = url.host_str().unwrap_or_default();
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(addr) => check_addr(host, addr, allow_private),
        Err(_) => Ok(()),
    }
}

/// A redirect the sync does not follow: to another server (scheme, host or port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffServer {
    /// `host:port` it pointed to (no path or query: they may carry anything).
    pub to: String,
}

impl std::fmt::Display for OffServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the provider redirected to another server ({}); not followed",
            self.to
        )
    }
}

impl std::error::Error for OffServer {}

/// May a request to `from` follow a redirect to `to`? Only on the same server.
pub fn check_redirect(from: &Url, to: &Url) -> Result<(), OffServer> {
    if from.origin() == to.origin() {
        Ok(())
    } else {
        Err(OffServer {
            to: format!(
                "{}:{}",
                to.host_str().unwrap_or("?"),
                to.port_or_known_default().unwrap_or(0)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<Blocked> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        for (ip, want) in [
            ("127.0.0.1", Some(Blocked::Loopback)),
            ("127.255.255.254", Some(Blocked::Loopback)),
            ("10.0.0.1", Some(Blocked::Private)),
            ("10.255.255.255", Some(Blocked::Private)),
            ("172.16.0.1", Some(Blocked::Private)),
            ("172.31.255.255", Some(Blocked::Private)),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.168.1.1", Some(Blocked::Private)),
            ("192.169.0.1", None),
            ("169.254.169.254", Some(Blocked::LinkLocal)),
            ("169.253.0.1", None),
            ("100.64.0.1", Some(Blocked::SharedCgnat)),
            ("100.127.255.255", Some(Blocked::SharedCgnat)),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("0.0.0.0", Some(Blocked::Unspecified)),
            ("0.1.2.3", Some(Blocked::Unspecified)),
            ("224.0.0.1", Some(Blocked::Multicast)),
            ("239.255.255.255", Some(Blocked::Multicast)),
            ("255.255.255.255", Some(Blocked::Broadcast)),
            ("240.0.0.1", Some(Blocked::Reserved)),
            ("192.0.0.8", Some(Blocked::Reserved)),
            ("198.18.0.1", Some(Blocked::Reserved)),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
            ("1.1.1.1", None),
            ("203.0.113.10", None),
        ] {
            assert_eq!(v4(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges_and_ipv4_inside_ipv6() {
        for (ip, want) in [
            ("::1", Some(Blocked::Loopback)),
            ("::", Some(Blocked::Unspecified)),
            ("fc00::1", Some(Blocked::UniqueLocal)),
            ("fd12:3456::1", Some(Blocked::UniqueLocal)),
            ("fe80::1", Some(Blocked::LinkLocal)),
            ("febf::1", Some(Blocked::LinkLocal)),
            ("fec0::1", Some(Blocked::Private)),
            ("ff02::1", Some(Blocked::Multicast)),
            ("::ffff:127.0.0.1", Some(Blocked::Loopback)),
            ("::ffff:10.1.2.3", Some(Blocked::Private)),
            ("::ffff:169.254.169.254", Some(Blocked::LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Blocked::Loopback)),
            ("::192.168.0.1", Some(Blocked::Private)),
            ("64:ff9b::a9fe:a9fe", Some(Blocked::LinkLocal)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::", Some(Blocked::Loopback)),
            ("2002:c0a8:101::1", Some(Blocked::Private)),
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
        ] {
            assert_eq!(v4(ip), want, "{ip}");
        }
    }

    #[test]
    fn allow_private_lets_everything_through() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_addr("localhost", lo, true).is_ok());
        let e = check_addr("localhost", lo, false).unwrap_err();
        assert_eq!(e.why, Blocked::Loopback);
        assert!(
            e.to_string()
                .starts_with("localhost resolves to 127.0.0.1, a loopback address"),
            "{e}"
        );
    }

    #[test]
    fn urls_with_addresses_are_checked_in_every_spelling() {
        for url in [
            "http://127.0.0.1:9000/",
            "http://[::1]:9000/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://0/",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/",
        ] {
            let u = Url::parse(url).unwrap();
            assert!(check_url(&u, false).is_err(), "{url}");
            assert!(check_url(&u, true).is_ok(), "{url}");
        }
        let e = check_url(&Url::parse("http://[::1]:9/").unwrap(), false).unwrap_err();
        assert!(
            e.to_string().starts_with("::1 is a loopback address"),
            "{e}"
        );
        // Names wait for their resolution.
        for url in [
            "https://sis.example.org/",
            "http://localhost:9000/",
            "https://8.8.8.8/",
        ] {
            assert!(check_url(&Url::parse(url).unwrap(), false).is_ok(), "{url}");
        }
    }

    #[test]
    fn redirects_stay_on_the_same_server() {
        let from = Url::parse("https://sis.example.org/ims/oneroster/v1p1/users?offset=0").unwrap();
        let ok = Url::parse("https://sis.example.org:443/other/path?x=1").unwrap();
        assert!(check_redirect(&from, &ok).is_ok());
        for to in [
            "https://evil.example.org/ims",
            "http://sis.example.org/ims",
            "https://sis.example.org:8443/ims",
            "http://127.0.0.1/",
            "https://sis.example.org.evil.net/",
        ] {
            let e = check_redirect(&from, &Url::parse(to).unwrap()).unwrap_err();
            assert!(
                e.to_string().contains("redirected to another server"),
                "{to}: {e}"
            );
        }
    }
}
