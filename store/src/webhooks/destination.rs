//! Where webhooks may go: the guard against server-side request forgery.
//!
//! A webhook endpoint is a URL a workspace chooses, and convo's dispatcher POSTs to it from
//! inside the operator's network. Left unguarded, any API-key holder could aim deliveries at
//! the cloud metadata service (`169.254.169.254`), the Temporal frontend, Postgres, or any
//! other internal address, and read the answer's status in the delivery log. So:
//!
//! - **At subscription** ([`Destinations::check`]): the URL must be `https` (plain `http` only
//!   where [`Destinations::allow_http`]), and its host, once resolved, must name only public
//!   addresses. A name that resolves to any refused address is refused.
//! - **At each delivery** the dispatcher connects only to addresses that pass
//!   ([`Destinations::resolver`] filters every lookup; a literal IP is checked before the
//!   request), so a name that later resolves elsewhere (DNS rebinding) reaches nothing it
//!   should not. Redirects are never followed.
//!
//! What is refused is decided by [`classify`], a pure function of the address: loopback and
//! the unspecified address (which reaches the local host), the private ranges (RFC 1918,
//! shared address space, unique local IPv6), link-local, the metadata endpoints of the big
//! clouds, and what is never a unicast destination (multicast, broadcast, documentation,
//! benchmarking and reserved ranges). IPv6 forms that embed an IPv4 address (mapped,
//! compatible, NAT64, 6to4) are judged by the address they embed.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

/// What kind of non-public address an IP is ([`classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `127.0.0.0/8`, `::1`, and the unspecified `0.0.0.0/8` and `::`, which reach this host.
    Loopback,
    /// RFC 1918, shared address space (`100.64.0.0/10`) and unique local IPv6 (`fc00::/7`).
    Private,
    /// `169.254.0.0/16` and `fe80::/10`.
    LinkLocal,
    /// A cloud's instance metadata service: `169.254.169.254`, `fd00:ec2::254`,
    /// `100.100.100.200`. Refused whatever the configuration allows.
    Metadata,
    /// Multicast, broadcast, documentation, benchmarking and reserved ranges: never a
    /// webhook receiver. Refused whatever the configuration allows.
    NotUnicast,
}

impl Range {
    /// How the refusal reads.
    pub fn describe(self) -> &'static str {
        match self {
            Range::Loopback => "a loopback address",
            Range::Private => "a private address",
            Range::LinkLocal => "a link-local address",
            Range::Metadata => "a cloud metadata address",
            Range::NotUnicast => "an address that is not a public unicast destination",
        }
    }
}

/// The range `ip` lies in, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, c, d] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some(Range::Metadata);
    }
    match (a, b, c, d) {
        (0, ..) | (127, ..) => Some(Range::Loopback),
        (10, ..) | (192, 168, ..) => Some(Range::Private),
        (172, b, ..) if (16..32).contains(&b) => Some(Range::Private),
        (100, b, ..) if (64..128).contains(&b) => Some(Range::Private),
        (169, 254, ..) => Some(Range::LinkLocal),
        // IETF protocol assignments, TEST-NET-1/2/3, benchmarking, multicast, reserved and
        // broadcast.
        (192, 0, 0, _) | (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => {
            Some(Range::NotUnicast)
        }
        (198, 18 | 19, ..) => Some(Range::NotUnicast),
        (224.., ..) => Some(Range::NotUnicast),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return Some(Range::Loopback);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(Range::Metadata);
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d).
        [0, 0, 0, 0, 0, 0xffff | 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // 6to4 (2002:a.b.c.d::/48).
        [0x2002, hi, lo, ..] => classify_v4(embedded(hi, lo)),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some(Range::Private),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some(Range::LinkLocal),
        [first, ..] if first & 0xff00 == 0xff00 => Some(Range::NotUnicast),
        // Documentation (2001:db8::/32) and Teredo (2001::/32, whose IPv4 part is obscured).
        [0x2001, 0x0db8 | 0, ..] => Some(Range::NotUnicast),
        _ => None,
    }
}

/// A refused destination: why, in words a workspace can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Which destinations this process's webhooks may have. The default refuses every address
/// that is not public, and plain `http`: production's policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Loopback (and the unspecified address): `convo serve`'s receivers on this machine.
    pub allow_loopback: bool,
    /// Private and link-local ranges: receivers inside the operator's own network.
    pub allow_private: bool,
    /// Plain `http://` URLs.
    pub allow_http: bool,
}

impl Destinations {
    /// Public `https` destinations only.
    pub const PUBLIC: Self =
        Self { allow_loopback: false, allow_private: false, allow_http: false };
    /// `convo serve`'s: also loopback, over plain `http`, for receivers on the developer's
    /// machine.
    pub const DEVELOPMENT: Self =
        Self { allow_loopback: true, allow_private: false, allow_http: true };

    /// Refuses `ip` unless this policy allows its range. Metadata and non-unicast addresses
    /// are always refused.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        let allowed = match range {
            Range::Loopback => self.allow_loopback,
            Range::Private | Range::LinkLocal => self.allow_private,
            Range::Metadata | Range::NotUnicast => false,
        };
        if allowed {
            return Ok(());
        }
        Err(Refused(format!("{ip} is {}, which webhooks may not reach", range.describe())))
    }

    /// Checks what can be checked without the network: the scheme, that there is a host, and
    /// a literal IP host. Returns the host name and port left to resolve, or `None` for a
    /// literal IP, which is checked already.
    pub fn check_url(&self, url: &str) -> Result<Option<(String, u16)>, Refused> {
        let parsed =
            url::Url::parse(url).map_err(|e| Refused(format!("{url:?} is not a URL: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Refused(
                    "must be https (plain http is allowed only where the operator enables it)"
                        .into(),
                ));
            }
            other => return Err(Refused(format!("must be https, not {other}"))),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refused("must not carry credentials".into()));
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| None),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| None),
            Some(url::Host::Domain(name)) if !name.is_empty() => {
                let lower = name.trim_end_matches('.').to_ascii_lowercase();
                if (lower == "localhost" || lower.ends_with(".localhost")) && !self.allow_loopback {
                    return Err(Refused(format!("{name} is the local host")));
                }
                Ok(Some((name.to_owned(), port)))
            }
            _ => Err(Refused("must have a host".into())),
        }
    }

    /// [`Destinations::check_url`], then resolves the host and refuses it if any address it
    /// resolves to is refused (or if it resolves to none).
    pub async fn check(&self, url: &str) -> Result<(), Refused> {
        let Some((host, port)) = self.check_url(url)? else {
            return Ok(());
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refused(format!("{host} does not resolve: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused(format!("{host} resolves to no address")));
        }
        for addr in &addrs {
            self.check_ip(addr.ip()).map_err(|Refused(why)| Refused(format!("{host}: {why}")))?;
        }
        Ok(())
    }

    /// A DNS resolver for the dispatcher's HTTP client that hands the connector only the
    /// addresses this policy allows, so a name cannot be re-pointed at a refused address
    /// after it was subscribed.
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { policy: self })
    }
}

/// The resolver [`Destinations::resolver`] gives.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Destinations,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refusal = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refusal.map_or_else(
                    || format!("{host} resolves to no address"),
                    |Refused(why)| format!("destination refused: {host}: {why}"),
                );
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_classified() {
        for (text, range) in [
            ("127.0.0.1", Some(Range::Loopback)),
            ("0.0.0.0", Some(Range::Loopback)),
            ("::1", Some(Range::Loopback)),
            ("::", Some(Range::Loopback)),
            ("10.1.2.3", Some(Range::Private)),
            ("172.16.0.1", Some(Range::Private)),
            ("172.31.255.255", Some(Range::Private)),
            ("192.168.1.1", Some(Range::Private)),
            ("100.64.0.1", Some(Range::Private)),
            ("fd12::1", Some(Range::Private)),
            ("169.254.1.1", Some(Range::LinkLocal)),
            ("fe80::1", Some(Range::LinkLocal)),
            ("169.254.169.254", Some(Range::Metadata)),
            ("fd00:ec2::254", Some(Range::Metadata)),
            ("100.100.100.200", Some(Range::Metadata)),
            ("224.0.0.1", Some(Range::NotUnicast)),
            ("255.255.255.255", Some(Range::NotUnicast)),
            ("192.0.2.7", Some(Range::NotUnicast)),
            ("2001:db8::1", Some(Range::NotUnicast)),
            ("ff02::1", Some(Range::NotUnicast)),
            ("::ffff:127.0.0.1", Some(Range::Loopback)),
            ("::ffff:169.254.169.254", Some(Range::Metadata)),
            ("64:ff9b::a00:1", Some(Range::Private)),
            ("2002:c0a8:101::1", Some(Range::Private)),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
            ("::ffff:1.1.1.1", None),
        ] {
            assert_eq!(classify(ip(text)), range, "{text}");
        }
    }

    #[test]
    fn production_refuses_what_development_allows() {
        let prod = Destinations::PUBLIC;
        let dev = Destinations::DEVELOPMENT;
        assert!(prod.check_url("http://example.com/hook").unwrap_err().0.contains("https"));
        assert!(dev.check_url("http://example.com/hook").is_ok());
        assert!(prod.check_url("https://127.0.0.1:9/hook").is_err());
        assert!(dev.check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(prod.check_url("https://localhost/hook").is_err());
        assert!(prod.check_url("https://[::1]/hook").is_err());
        assert!(dev.check_url("https://10.0.0.1/hook").is_err(), "serve allows loopback only");
        assert!(dev.check_url("http://169.254.169.254/latest").is_err());
        let any = Destinations { allow_loopback: true, allow_private: true, allow_http: true };
        assert!(any.check_url("http://169.254.169.254/latest").is_err(), "metadata, always");
        assert!(any.check_url("https://10.0.0.1/hook").is_ok());
        assert!(prod.check_url("https://1.1.1.1/hook").is_ok());
        assert!(prod.check_url("ftp://example.com/").is_err());
        assert!(prod.check_url("https://user:pw@example.com/").is_err());
        assert_eq!(
            prod.check_url("https://example.com/x").unwrap(),
            Some(("example.com".into(), 443))
        );
        assert_eq!(prod.check_url("https://1.1.1.1:8443/x").unwrap(), None, "checked already");
    }

    #[tokio::test]
    async fn a_name_is_judged_by_what_it_resolves_to() {
        let why = Destinations::PUBLIC.check("https://localhost./hook").await.unwrap_err();
        assert!(why.0.contains("local host") || why.0.contains("loopback"), "{why}");
        assert!(Destinations::DEVELOPMENT.check("http://localhost:9/hook").await.is_ok());
    }

    proptest! {
        /// Whatever the policy, the metadata service and multicast stay out of reach, and an
        /// IPv4 address reads the same in its IPv4-mapped IPv6 form.
        #[test]
        fn policies_never_open_metadata_and_mapped_forms_agree(
            octets in any::<[u8; 4]>(),
            loopback in any::<bool>(),
            private in any::<bool>(),
        ) {
            let policy = Destinations { allow_loopback: loopback, allow_private: private, allow_http: true };
            let ip = Ipv4Addr::from(octets);
            prop_assert_eq!(classify(IpAddr::V4(ip)), classify(IpAddr::V6(ip.to_ipv6_mapped())));
            prop_assert_eq!(
                policy.check_ip(IpAddr::V4(ip)).is_ok(),
                policy.check_ip(IpAddr::V6(ip.to_ipv6_mapped())).is_ok()
            );
            if matches!(classify(IpAddr::V4(ip)), Some(Range::Metadata | Range::NotUnicast)) {
                prop_assert!(policy.check_ip(IpAddr::V4(ip)).is_err());
            }
            if classify(IpAddr::V4(ip)).is_none() {
                prop_assert!(Destinations::PUBLIC.check_ip(IpAddr::V4(ip)).is_ok());
            }
        }
    }
}
