//! Which hosts a connector may call: link-local and cloud-metadata addresses never, private
//! and loopback ranges only where the settings allow them (the local runner, whose
//! simulators live on loopback). Applied before a credential check's first request, by the
//! shared client's DNS resolver to every name it resolves, and to every IP-literal host
//! (which no resolver sees) before a request or a redirect is sent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use url::{Host, Url};

/// Why an address is refused, and whether the settings can allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Refused whatever the settings say (link-local, metadata, unspecified, multicast).
    Never(&'static str),
    /// Refused unless private hosts are allowed (loopback, RFC 1918, CGNAT, ULA, localhost).
    Private(&'static str),
}

impl Rule {
    /// What the address is, e.g. "a loopback address (127.0.0.0/8)".
    pub fn what(self) -> &'static str {
        match self {
            Rule::Never(what) | Rule::Private(what) => what,
        }
    }
}

/// The rule an IPv4 address falls under, if any.
fn rule_v4(ip: Ipv4Addr) -> Option<Rule> {
    use Rule::{Never, Private};
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        // 169.254.169.254 is the EC2/ECS/GCP/Azure instance metadata service.
        (169, 254) => Never("a link-local / cloud metadata address (169.254.0.0/16)"),
        (0, _) => Never("a 'this network' address (0.0.0.0/8)"),
        (224..=239, _) => Never("a multicast address (224.0.0.0/4)"),
        _ if ip.is_broadcast() => Never("the broadcast address (255.255.255.255)"),
        (240..=255, _) => Never("a reserved address (240.0.0.0/4)"),
        (127, _) => Private("a loopback address (127.0.0.0/8)"),
        (10, _) => Private("a private address (10.0.0.0/8)"),
        (172, 16..=31) => Private("a private address (172.16.0.0/12)"),
        (192, 168) => Private("a private address (192.168.0.0/16)"),
        (100, 64..=127) => Private("a carrier-grade NAT address (100.64.0.0/10)"),
        _ => return None,
    })
}

/// The rule an IPv6 address falls under, if any. IPv4 addresses embedded in IPv6 (mapped
/// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) get their IPv4 rule.
fn rule_v6(ip: Ipv6Addr) -> Option<Rule> {
    use Rule::{Never, Private};
    if ip.is_unspecified() {
        return Some(Never("the unspecified address (::)"));
    }
    if ip.is_loopback() {
        return Some(Private("the loopback address (::1)"));
    }
    let s = ip.segments();
    let [_, _, _, _, _, _, hi, lo] = s;
    let embedded = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 0, 0, 0, 0, ..] => rule_v4(embedded),
        // fd00:ec2::254 is the EC2 instance metadata service over IPv6 (IMDS docs).
        [0xfd00, 0x0ec2, ..] => Some(Never("the AWS instance metadata range (fd00:ec2::/32)")),
        [x, ..] if x & 0xffc0 == 0xfe80 => Some(Never("a link-local address (fe80::/10)")),
        [x, ..] if x & 0xff00 == 0xff00 => Some(Never("a multicast address (ff00::/8)")),
        [x, ..] if x & 0xfe00 == 0xfc00 => Some(Private("a unique local address (fc00::/7)")),
        [x, ..] if x & 0xffc0 == 0xfec0 => Some(Private("a site-local address (fec0::/10)")),
        _ => None,
    }
}

/// The rule an address falls under, if any, whatever the settings.
pub fn rule_for(ip: IpAddr) -> Option<Rule> {
    match ip {
        IpAddr::V4(v4) => rule_v4(v4),
        IpAddr::V6(v6) => rule_v6(v6),
    }
}

/// The rule a host name falls under by its name alone: `localhost` and `*.localhost`
/// always mean loopback (RFC 6761 6.3).
fn rule_for_name(name: &str) -> Option<Rule> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then_some(Rule::Private("a loopback name (localhost)"))
}

/// A host the policy refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The host as given (name or address).
    pub host: String,
    /// The refused address the name resolved to, when it was a name.
    pub resolved: Option<IpAddr>,
    /// The rule that refused it.
    pub rule: Rule,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resolved {
            Some(ip) => write!(f, "{} resolves to {ip}, {}", self.host, self.rule.what())?,
            None => write!(f, "{} is {}", self.host, self.rule.what())?,
        }
        match self.rule {
            Rule::Never(_) => write!(f, "; Tandem never calls those"),
            Rule::Private(_) => write!(f, "; this deployment does not call private or loopback addresses"),
        }
    }
}

impl Refused {
    /// The connector error: `label` says what the host is ("site", "host"). UnknownAccount,
    /// so never retried and answered 422 (the credentials name a site we will not call).
    pub fn into_error(self, system: System, label: &str) -> ConnectorError {
        ConnectorError::new(system, ErrorKind::UnknownAccount, format!("{label} {self}"))
    }
}

/// Which hosts may be called (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPolicy {
    /// Whether private, loopback and CGNAT ranges and `localhost` may be called.
    pub allow_private: bool,
}

impl HostPolicy {
    /// The rule refusing `ip` under this policy, if any.
    pub fn refuses(&self, ip: IpAddr) -> Option<Rule> {
        rule_for(ip).filter(|rule| self.applies(*rule))
    }

    fn applies(&self, rule: Rule) -> bool {
        match rule {
            Rule::Never(_) => true,
            Rule::Private(_) => !self.allow_private,
        }
    }

    /// Checks a host without resolving it: an address by its rule, a name by its name only.
    pub fn check_host<S: AsRef<str>>(&self, host: &Host<S>) -> Result<(), Refused> {
        let refused = |rule| Refused { host: host_text(host), resolved: None, rule };
        match host {
            Host::Ipv4(ip) => self.refuses(IpAddr::V4(*ip)).map_or(Ok(()), |rule| Err(refused(rule))),
            Host::Ipv6(ip) => self.refuses(IpAddr::V6(*ip)).map_or(Ok(()), |rule| Err(refused(rule))),
            Host::Domain(name) => {
                rule_for_name(name.as_ref()).filter(|r| self.applies(*r)).map_or(Ok(()), |rule| Err(refused(rule)))
            }
        }
    }

    /// Checks the host of a URL without resolving it (the check before each request and
    /// redirect: IP-literal hosts never reach the resolver).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        url.host().map_or(Ok(()), |host| self.check_host(&host))
    }

    /// Checks that no address among `addrs` (what `name` resolved to) is refused.
    pub fn check_resolved(&self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Result<(), Refused> {
        match addrs.into_iter().find_map(|ip| self.refuses(ip).map(|rule| (ip, rule))) {
            Some((ip, rule)) => Err(Refused { host: name.to_string(), resolved: Some(ip), rule }),
            None => Ok(()),
        }
    }

    /// Checks a host and, when it is a name, every address it resolves to. A name that
    /// does not resolve passes: the request itself then fails, naming the host.
    pub async fn check_host_resolving<S: AsRef<str>>(&self, host: &Host<S>) -> Result<(), Refused> {
        self.check_host(host)?;
        let Host::Domain(name) = host else { return Ok(()) };
        match tokio::net::lookup_host((name.as_ref(), 0)).await {
            Ok(addrs) => self.check_resolved(name.as_ref(), addrs.map(|a| a.ip())),
            Err(e) => {
                tracing::debug!(host = name.as_ref(), error = %e, "host does not resolve; the request will say so");
                Ok(())
            }
        }
    }
}

/// A host as text: names as given, IPv6 addresses in brackets (as in a URL).
fn host_text<S: AsRef<str>>(host: &Host<S>) -> String {
    match host {
        Host::Domain(name) => name.as_ref().to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    }
}

/// The shared client's DNS resolver: the system resolver (`getaddrinfo`, as reqwest's
/// default), refusing a name when any address it resolves to is refused by the policy.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub policy: HostPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let name = name.as_str().to_string();
        Box::pin(async move {
            policy.check_host(&Host::Domain(name.as_str()))?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            policy.check_resolved(&name, addrs.iter().map(SocketAddr::ip))?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal somewhere in an error's chain (e.g. from the resolver or a redirect), if any.
pub fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: HostPolicy = HostPolicy { allow_private: true };
    const CLOUD: HostPolicy = HostPolicy { allow_private: false };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn link_local_metadata_and_unroutable_addresses_are_refused_everywhere() {
        for addr in [
            "169.254.169.254",
            "169.254.170.2",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(matches!(LOCAL.refuses(ip(addr)), Some(Rule::Never(_))), "{addr}");
            assert!(CLOUD.refuses(ip(addr)).is_some(), "{addr}");
        }
    }

    #[test]
    fn private_and_loopback_addresses_are_refused_only_when_private_hosts_are_not_allowed() {
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert_eq!(LOCAL.refuses(ip(addr)), None, "{addr}");
            assert!(matches!(CLOUD.refuses(ip(addr)), Some(Rule::Private(_))), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "169.255.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(CLOUD.refuses(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn localhost_is_refused_by_name_when_private_hosts_are_not_allowed() {
        for name in ["localhost", "LOCALHOST.", "api.localhost"] {
            assert!(CLOUD.check_host(&Host::Domain(name)).is_err(), "{name}");
            assert!(LOCAL.check_host(&Host::Domain(name)).is_ok(), "{name}");
        }
        assert!(CLOUD.check_host(&Host::Domain("notlocalhost.example.com")).is_ok());
    }

    #[test]
    fn the_refusal_names_the_host_and_the_rule() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        let refused = LOCAL.check_url(&url).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "169.254.169.254 is a link-local / cloud metadata address (169.254.0.0/16); Tandem never calls those"
        );
        let url = Url::parse("https://[fd00:ec2::254]/").unwrap();
        assert!(LOCAL.check_url(&url).unwrap_err().to_string().starts_with("[fd00:ec2::254] is the AWS instance"));
        let resolved = CLOUD.check_resolved("intranet.example", [ip("8.8.8.8"), ip("10.1.2.3")]).unwrap_err();
        assert_eq!(
            resolved.to_string(),
            "intranet.example resolves to 10.1.2.3, a private address (10.0.0.0/8); \
             this deployment does not call private or loopback addresses"
        );
        let err = resolved.into_error(System::Syncro, "site");
        assert_eq!((err.kind, err.retryable), (ErrorKind::UnknownAccount, false));
        assert!(err.message.starts_with("site intranet.example resolves to"), "{}", err.message);
    }

    #[test]
    fn a_numeric_host_is_read_as_the_address_it_means() {
        // WHATWG URL parsing (which reqwest shares) reads 2852039166 as 169.254.169.254.
        let url = Url::parse("http://2852039166/").unwrap();
        assert!(LOCAL.check_url(&url).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost_before_looking_it_up() {
        let resolver = GuardedResolver { policy: CLOUD };
        let err = resolver.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(refusal_in(err.as_ref()).is_some(), "{err}");
        let addrs: Vec<_> =
            GuardedResolver { policy: LOCAL }.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty(), "{addrs:?}");
    }
}
