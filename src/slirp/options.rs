//! What a slirp router is asked to be: addresses, services and port
//! forwards, from a `slirp://` locator (the option names and defaults of
//! vdeplug4's libvdeplug_slirp, so one locator string works with both) or
//! from `slirpvde`'s command line. Plain data and parsing: no libslirp
//! here, so it builds and is tested without the `slirp` feature.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::vnl::parse::{addr_style_paths, VnlError};
use crate::vnl::Locator;

/// The keys of `slirp://`, in libvdeplug_slirp's order (an abbreviated key
/// means the first key it starts: `tftp` is `tftp_server_name` there and
/// here).
pub const KEYS: &[&str] = &[
    "v4",
    "v6",
    "restricted",
    "host",
    "addr",
    "host6",
    "addr6",
    "hostname",
    "tftp_server_name",
    "tftp_path",
    "bootfile",
    "dhcp",
    "vnameserver",
    "vnameserver6",
    "vdnssearch",
    "vdomainname",
    "mtu",
    "mru",
    "disable_host_loopback",
    "tcpfwd",
    "udpfwd",
    "unixfwd",
    "cmdfwd",
    "verbose",
];

/// Keys whose values are paths or commands and may hold slashes.
const PATH_KEYS: &[&str] = &["tftp_path", "bootfile", "unixfwd", "cmdfwd"];

/// An IPv4 subnet of the router: its own address and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net4 {
    pub host: Ipv4Addr,
    pub len: u8,
}

impl Net4 {
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0))
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.host) & u32::from(self.mask()))
    }

    /// The address `n` of the subnet (network | n).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | n)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask()) == u32::from(self.network())
    }
}

/// An IPv6 prefix of the router: its own address and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net6 {
    pub host: Ipv6Addr,
    pub len: u8,
}

impl Net6 {
    pub fn prefix(&self) -> Ipv6Addr {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len))
            .unwrap_or(0);
        Ipv6Addr::from(u128::from(self.host) & mask)
    }

    pub fn nth(&self, n: u128) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.prefix()) | n)
    }
}

/// A host port forwarded into the virtual network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub udp: bool,
    /// Where the host listens (unspecified: every interface).
    pub host_addr: IpAddr,
    pub host_port: u16,
    pub guest_addr: IpAddr,
    pub guest_port: u16,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = |ip: &IpAddr| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        write!(
            f,
            "{} {}:{} -> {}:{}",
            if self.udp { "udp" } else { "tcp" },
            a(&self.host_addr),
            self.host_port,
            a(&self.guest_addr),
            self.guest_port
        )
    }
}

/// A TCP port of the virtual network joined to a unix socket or a command
/// on the host (a guest connecting to ADDR:PORT reaches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFwd {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub target: GuestTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestTarget {
    Unix(String),
    Cmd(String),
}

/// Everything a slirp router is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// IPv4 service (None: off).
    pub v4: Option<Net4>,
    /// IPv6 service (None: off); libslirp sends router advertisements for it.
    pub v6: Option<Net6>,
    /// Refuse every connection of the guests to the outside.
    pub restricted: bool,
    pub hostname: Option<String>,
    pub tftp_server_name: Option<String>,
    pub tftp_path: Option<String>,
    pub bootfile: Option<String>,
    /// Serve DHCP (libvdeplug_slirp: always; slirpvde: with -D).
    pub dhcp: bool,
    /// First DHCP address (default network|15).
    pub dhcp_start: Option<Ipv4Addr>,
    /// The DNS forwarder's address (default network|3).
    pub vnameserver: Option<Ipv4Addr>,
    pub vnameserver6: Option<Ipv6Addr>,
    pub dnssearch: Vec<String>,
    pub domainname: Option<String>,
    pub mtu: Option<usize>,
    pub mru: Option<usize>,
    pub disable_host_loopback: bool,
    pub forwards: Vec<Forward>,
    pub guestfwds: Vec<GuestFwd>,
    /// Print the configuration when starting.
    pub verbose: bool,
}

pub const DEFAULT_V4: Net4 = Net4 {
    host: Ipv4Addr::new(10, 0, 2, 2),
    len: 24,
};
pub const DEFAULT_V6: Net6 = Net6 {
    host: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
    len: 64,
};

impl Default for Settings {
    /// libvdeplug_slirp's defaults: both families, DHCP on.
    fn default() -> Self {
        Settings {
            v4: Some(DEFAULT_V4),
            v6: Some(DEFAULT_V6),
            restricted: false,
            hostname: Some("slirp".into()),
            tftp_server_name: None,
            tftp_path: None,
            bootfile: None,
            dhcp: true,
            dhcp_start: None,
            vnameserver: None,
            vnameserver6: None,
            dnssearch: Vec::new(),
            domainname: None,
            mtu: None,
            mru: None,
            disable_host_loopback: false,
            forwards: Vec::new(),
            guestfwds: Vec::new(),
            verbose: false,
        }
    }
}

/// The smallest and largest MTU libslirp accepts.
pub const MTU_RANGE: (usize, usize) = (68, 65521);

impl Settings {
    /// The effective IPv4 addresses: (subnet, DHCP start, DNS).
    pub fn v4_addrs(&self) -> Option<(Net4, Ipv4Addr, Ipv4Addr)> {
        let n = self.v4?;
        Some((
            n,
            self.dhcp_start.unwrap_or_else(|| n.nth(15)),
            self.vnameserver.unwrap_or_else(|| n.nth(3)),
        ))
    }

    /// The effective IPv6 addresses: (prefix, DNS).
    pub fn v6_addrs(&self) -> Option<(Net6, Ipv6Addr)> {
        let n = self.v6?;
        Some((n, self.vnameserver6.unwrap_or_else(|| n.nth(3))))
    }

    /// Checks what libslirp would refuse or silently misuse, naming the
    /// option (`what` gives the name for each: a locator key or a flag).
    pub fn check(&self, what: impl Fn(&str) -> String) -> Result<(), String> {
        if self.v4.is_none() && self.v6.is_none() {
            return Err("neither IPv4 nor IPv6 is enabled".into());
        }
        if let Some((n, start, dns)) = self.v4_addrs() {
            if !n.contains(start) {
                return Err(format!(
                    "{}: {start} is outside {}/{}",
                    what("dhcp"),
                    n.network(),
                    n.len
                ));
            }
            if !n.contains(dns) {
                return Err(format!(
                    "{}: {dns} is outside {}/{}",
                    what("vnameserver"),
                    n.network(),
                    n.len
                ));
            }
        }
        for (k, v) in [("mtu", self.mtu), ("mru", self.mru)] {
            if let Some(v) = v {
                if v < MTU_RANGE.0 || v > MTU_RANGE.1 {
                    return Err(format!(
                        "{}: {v} is not in {}..={}",
                        what(k),
                        MTU_RANGE.0,
                        MTU_RANGE.1
                    ));
                }
            }
        }
        for f in &self.forwards {
            let key = what(if f.udp { "udpfwd" } else { "tcpfwd" });
            match f.guest_addr {
                IpAddr::V4(_) if self.v4.is_none() => {
                    return Err(format!("{key}: {f}: IPv4 is not enabled"))
                }
                IpAddr::V6(_) if self.v6.is_none() => {
                    return Err(format!("{key}: {f}: IPv6 is not enabled"))
                }
                _ => {}
            }
        }
        if !self.guestfwds.is_empty() && self.v4.is_none() {
            return Err(format!("{}: needs IPv4", what("unixfwd")));
        }
        Ok(())
    }

    /// The configuration table printed by `verbose` (and slirpvde -v).
    pub fn table(&self) -> String {
        let mut t = String::from("SLIRP configuration\n");
        let mut row = |k: &str, v: String| t.push_str(&format!("{k:<14}{v}\n"));
        match self.v4_addrs() {
            Some((n, start, dns)) => {
                row("ipv4-network", format!("{}/{}", n.network(), n.len));
                row("ipv4-host", n.host.to_string());
                row(
                    "dhcp-start",
                    if self.dhcp {
                        start.to_string()
                    } else {
                        "off".into()
                    },
                );
                row("ipv4-vDNS", dns.to_string());
            }
            None => row("ipv4", "off".into()),
        }
        match self.v6_addrs() {
            Some((n, dns)) => {
                row("ipv6-prefix", format!("{}/{}", n.prefix(), n.len));
                row("ipv6-host", n.host.to_string());
                row("ipv6-vDNS", dns.to_string());
            }
            None => row("ipv6", "off".into()),
        }
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        row("hostname", opt(&self.hostname));
        row("tftp-servname", opt(&self.tftp_server_name));
        row("tftp-path", opt(&self.tftp_path));
        row("bootfile", opt(&self.bootfile));
        row("vDNS-search", self.dnssearch.join(","));
        row("vdomainname", opt(&self.domainname));
        row("MTU(0=def)", self.mtu.unwrap_or(0).to_string());
        row("MRU(0=def)", self.mru.unwrap_or(0).to_string());
        row("restricted", u8::from(self.restricted).to_string());
        row(
            "disable-lback",
            u8::from(self.disable_host_loopback).to_string(),
        );
        for f in &self.forwards {
            row("fwd", f.to_string());
        }
        for g in &self.guestfwds {
            let target = match &g.target {
                GuestTarget::Unix(p) => format!("unix {p}"),
                GuestTarget::Cmd(c) => format!("cmd '{c}'"),
            };
            row("guestfwd", format!("{}:{} -> {target}", g.addr, g.port));
        }
        t
    }
}

/// Parses `ADDR[/LEN]` of either family; LEN defaults to 24 (IPv4) or 64
/// (IPv6). A host part of 0 becomes network|2, as slirpvde does.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| format!("{a:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => {
            if addr.is_ipv4() {
                24
            } else {
                64
            }
        }
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|n| (1..max).contains(n))
            .ok_or_else(|| format!("prefix length {l:?} is not in 1..{max}"))?,
    };
    Ok(match addr {
        IpAddr::V4(host) => {
            let mut n = Net4 { host, len };
            if n.host == n.network() {
                n.host = n.nth(2);
            }
            IpNet::V4(n)
        }
        IpAddr::V6(host) => {
            let mut n = Net6 { host, len };
            if n.host == n.prefix() {
                n.host = n.nth(2);
            }
            IpNet::V6(n)
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpNet {
    V4(Net4),
    V6(Net6),
}

/// Splits `a:b:[c::d]:e` at the colons outside brackets.
fn colon_fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
    match bare {
        Some(b) => b.parse::<Ipv6Addr>().map(IpAddr::V6),
        None => s.parse::<Ipv4Addr>().map(IpAddr::V4),
    }
    .map_err(|_| format!("{s:?} is not an address (IPv6 goes in brackets)"))
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{s:?} is not a port (1..65535)"))
}

/// Parses one forward, `[HOSTADDR:]HOSTPORT:GUESTADDR:GUESTPORT` (IPv6
/// addresses in brackets).
pub fn parse_forward(s: &str, udp: bool) -> Result<Forward, String> {
    let f = colon_fields(s.trim());
    let (host, hp, ga, gp) = match f.as_slice() {
        [hp, ga, gp] => (None, *hp, *ga, *gp),
        [h, hp, ga, gp] => (Some(*h), *hp, *ga, *gp),
        _ => {
            return Err(format!(
                "{s:?} is not [HOSTADDR:]HOSTPORT:GUESTADDR:GUESTPORT"
            ))
        }
    };
    let guest_addr = parse_ip(ga)?;
    let host_addr = match host {
        Some(h) if !h.is_empty() => parse_ip(h)?,
        _ if guest_addr.is_ipv6() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    if host_addr.is_ipv4() != guest_addr.is_ipv4() {
        return Err(format!(
            "{s:?}: host and guest addresses of different families"
        ));
    }
    Ok(Forward {
        udp,
        host_addr,
        host_port: parse_port(hp)?,
        guest_addr,
        guest_port: parse_port(gp)?,
    })
}

/// Parses one guest forward, `[ADDR:]PORT:TARGET` (ADDR defaults to the
/// router's own IPv4 address).
pub fn parse_guestfwd(s: &str, default: Ipv4Addr, cmd: bool) -> Result<GuestFwd, String> {
    let bad = || format!("{s:?} is not [ADDR:]PORT:TARGET");
    let (first, rest) = s.split_once(':').ok_or_else(bad)?;
    let (addr, port, target) = match first.parse::<Ipv4Addr>() {
        Ok(a) => {
            let (p, t) = rest.split_once(':').ok_or_else(bad)?;
            (a, p, t)
        }
        Err(_) => (default, first, rest),
    };
    if target.is_empty() {
        return Err(bad());
    }
    Ok(GuestFwd {
        addr,
        port: parse_port(port)?,
        target: if cmd {
            GuestTarget::Cmd(target.to_string())
        } else {
            GuestTarget::Unix(target.to_string())
        },
    })
}

/// Parses a `slirp://` locator: `slirp://[/OPTION][/OPTION=VALUE]…`.
pub fn from_locator(loc: &Locator) -> Result<Settings, VnlError> {
    let (addr, opts) = addr_style_paths(&loc.rest, KEYS, PATH_KEYS, "slirp", &loc.text)?;
    let bad = |key: &str, value: &str, why: String| VnlError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        vnl: loc.text.clone(),
        why,
    };
    if !addr.is_empty() {
        return Err(VnlError::BadAddress {
            addr,
            vnl: loc.text.clone(),
            why: "slirp:// takes options only: slirp:///OPTION/OPTION=VALUE".into(),
        });
    }
    let mut s = Settings::default();
    let (want4, want6) = (opts.has("v4"), opts.has("v6"));
    if want4 != want6 {
        if !want4 {
            s.v4 = None;
        }
        if !want6 {
            s.v6 = None;
        }
    }
    // values in the order given: the last of a key wins, forwards add up
    for (key, value) in &opts.items {
        let flag_only = ["v4", "v6", "restricted", "disable_host_loopback", "verbose"];
        if flag_only.contains(key) {
            if let Some(v) = value {
                return Err(bad(key, v, "takes no value".into()));
            }
            match *key {
                "restricted" => s.restricted = true,
                "disable_host_loopback" => s.disable_host_loopback = true,
                "verbose" => s.verbose = true,
                _ => {}
            }
            continue;
        }
        let Some(v) = value.as_deref() else {
            return Err(bad(key, "", "needs a value (KEY=VALUE)".into()));
        };
        let bad = |why: String| bad(key, v, why);
        match *key {
            "host" | "addr" => match parse_net(v).map_err(bad)? {
                IpNet::V4(n) => {
                    if s.v4.is_some() {
                        s.v4 = Some(n);
                    }
                }
                IpNet::V6(_) => return Err(bad("an IPv4 address/len is expected".into())),
            },
            "host6" | "addr6" => match parse_net(v).map_err(bad)? {
                IpNet::V6(n) => {
                    if s.v6.is_some() {
                        s.v6 = Some(n);
                    }
                }
                IpNet::V4(_) => return Err(bad("an IPv6 address/len is expected".into())),
            },
            "hostname" => s.hostname = Some(v.to_string()),
            "tftp_server_name" => s.tftp_server_name = Some(v.to_string()),
            "tftp_path" => s.tftp_path = Some(v.to_string()),
            "bootfile" => s.bootfile = Some(v.to_string()),
            "dhcp" => {
                s.dhcp_start = Some(
                    v.parse()
                        .map_err(|_| bad("an IPv4 address is expected".into()))?,
                )
            }
            "vnameserver" => {
                s.vnameserver = Some(
                    v.parse()
                        .map_err(|_| bad("an IPv4 address is expected".into()))?,
                )
            }
            "vnameserver6" => {
                s.vnameserver6 = Some(
                    v.parse()
                        .map_err(|_| bad("an IPv6 address is expected".into()))?,
                )
            }
            "vdnssearch" => {
                s.dnssearch = v
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "vdomainname" => s.domainname = Some(v.to_string()),
            "mtu" | "mru" => {
                let n = v
                    .parse::<usize>()
                    .map_err(|_| bad("a number is expected".into()))?;
                if *key == "mtu" {
                    s.mtu = Some(n)
                } else {
                    s.mru = Some(n)
                }
            }
            "tcpfwd" | "udpfwd" => {
                for one in v.split(',').filter(|x| !x.is_empty()) {
                    s.forwards
                        .push(parse_forward(one, *key == "udpfwd").map_err(bad)?);
                }
            }
            "unixfwd" | "cmdfwd" => {
                // libslirp refuses the router's and the DNS's own addresses: network|4
                let host = s.v4.unwrap_or(DEFAULT_V4).nth(4);
                // a command may hold commas: cmdfwd takes one forward
                let list: Vec<&str> = if *key == "unixfwd" {
                    v.split(',').filter(|x| !x.is_empty()).collect()
                } else {
                    vec![v]
                };
                for one in list {
                    s.guestfwds
                        .push(parse_guestfwd(one, host, *key == "cmdfwd").map_err(bad)?);
                }
            }
            _ => {}
        }
    }
    s.check(|k| k.to_string()).map_err(|e| {
        // "KEY: VALUE why…"
        let (key, why) = e.split_once(": ").unwrap_or(("", &e));
        VnlError::BadValue {
            key: key.to_string(),
            value: why.split(' ').next().unwrap_or("").to_string(),
            vnl: loc.text.clone(),
            why: why.to_string(),
        }
    })?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Result<Settings, VnlError> {
        from_locator(&Locator::split(s))
    }

    #[test]
    fn defaults_are_the_plugins() {
        let s = loc("slirp://").unwrap();
        let (n, start, dns) = s.v4_addrs().unwrap();
        assert_eq!(n.network(), Ipv4Addr::new(10, 0, 2, 0));
        assert_eq!(n.host, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(start, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(dns, Ipv4Addr::new(10, 0, 2, 3));
        let (n6, dns6) = s.v6_addrs().unwrap();
        assert_eq!(n6.prefix(), "fd00::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(dns6, "fd00::3".parse::<Ipv6Addr>().unwrap());
        assert!(s.dhcp && !s.restricted);
    }

    #[test]
    fn options_as_the_plugin_reads_them() {
        let s = loc("slirp:///v4/addr=192.168.7.1%2F16/dhcp=192.168.9.1/tcpfwd=8080:192.168.9.1:80,127.0.0.1:2222:192.168.9.1:22/udpfwd=5353:192.168.9.1:53/vdnssearch=a.org,b.net/restricted/mtu=1400/verbose").unwrap();
        assert!(s.v6.is_none());
        let (n, start, dns) = s.v4_addrs().unwrap();
        assert_eq!((n.host, n.len), (Ipv4Addr::new(192, 168, 7, 1), 16));
        assert_eq!(start, Ipv4Addr::new(192, 168, 9, 1));
        assert_eq!(dns, Ipv4Addr::new(192, 168, 0, 3));
        assert_eq!(s.forwards.len(), 3);
        assert_eq!(s.forwards[1].host_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(s.forwards[2].udp);
        assert_eq!(s.dnssearch, vec!["a.org", "b.net"]);
        assert!(s.restricted && s.verbose);
        assert_eq!(s.mtu, Some(1400));
        // v6 only; abbreviated key (tftp = tftp_server_name, as in the plugin)
        let s = loc("slirp:///v6/addr6='fd12::1/48'/tftp=boot/tftp_path=/srv/tftp/x").unwrap();
        assert!(s.v4.is_none());
        assert_eq!(s.v6.unwrap().len, 48);
        assert_eq!(s.tftp_server_name.as_deref(), Some("boot"));
        assert_eq!(s.tftp_path.as_deref(), Some("/srv/tftp/x"));
        let s = loc("slirp:///cmdfwd=10.0.2.5:6000:socat STDIO UNIX:/tmp/x").unwrap();
        assert_eq!(
            s.guestfwds[0],
            GuestFwd {
                addr: Ipv4Addr::new(10, 0, 2, 5),
                port: 6000,
                target: GuestTarget::Cmd("socat STDIO UNIX:/tmp/x".into())
            }
        );
    }

    #[test]
    fn bad_options_name_the_option() {
        for (l, key) in [
            ("slirp:///bogus=1", "bogus"),
            ("slirp:///addr=10.0.2.300", "addr"),
            ("slirp:///tcpfwd=80:10.0.2.15", "tcpfwd"),
            ("slirp:///tcpfwd=0:10.0.2.15:80", "tcpfwd"),
            ("slirp:///udpfwd=1:[fd00::1]:1/v4", "udpfwd"),
            ("slirp:///mtu=20", "mtu"),
            ("slirp:///mtu=x", "mtu"),
            ("slirp:///dhcp=192.168.0.15", "dhcp"),
            ("slirp:///verbose=3", "verbose"),
            ("slirp:///addr6=10.0.0.1", "addr6"),
            ("slirp:///hostname", "hostname"),
            ("slirp://x/v4", "slirp://"),
            // as in the plugin, a slash in a value needs %2F or quotes
            ("slirp:///addr=10.1.0.1/16", "unknown key: 16"),
        ] {
            let e = loc(l).unwrap_err().to_string();
            assert!(e.contains(key), "{l}: {e}");
        }
    }

    #[test]
    fn nets_and_forwards() {
        assert_eq!(
            parse_net("10.1.0.0/16").unwrap(),
            IpNet::V4(Net4 {
                host: Ipv4Addr::new(10, 1, 0, 2),
                len: 16
            })
        );
        assert!(parse_net("10.1.0.1/33").is_err());
        assert!(parse_net("fd00::1/129").is_err());
        let f = parse_forward("8080:[fd00::15]:80", false).unwrap();
        assert_eq!(f.host_addr, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert!(parse_forward("1.2.3.4:1:[fd00::1]:2", false).is_err());
        assert!(parse_forward("a:b:c:d:e", true).is_err());
        let g =
            parse_guestfwd("6000:/tmp/.X11-unix/X0", Ipv4Addr::new(10, 0, 2, 2), false).unwrap();
        assert_eq!(g.port, 6000);
        assert!(parse_guestfwd("6000", Ipv4Addr::LOCALHOST, false).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = [
            "/", "=", ":", ",", "[", "]", "v4", "addr", "tcpfwd", "1", "::", ".",
        ];
        let mut x = 99u64;
        for _ in 0..3000 {
            let mut s = String::from("slirp://");
            for _ in 0..(x % 10) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            let _ = loc(&s);
            let _ = parse_net(&s[8..]);
            let _ = parse_forward(&s[8..], false);
        }
    }
}
