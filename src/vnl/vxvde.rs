//! `vxvde://[GROUP][/OPTION...]`: a distributed switch over UDP multicast,
//! compatible with libvdeplug4's vxvde plugin (protocol spec §3, §6). The
//! transport lives in vde-overlay; this parses the locator and adapts the
//! endpoint to a plug.

use std::io;
use std::time::Duration;

use vde_overlay::vxvde::{
    Family, Vxvde, VxvdeConfig, DEFAULT_GROUP_V4, DEFAULT_GROUP_V6, MAX_HASHSIZE, MAX_VNI,
};

use super::parse::{addr_style, parse_size, VnlError};
use super::{Locator, OpenArgs, OpenError, Plug};
use crate::users;

/// The keys in libvdeplug's table order: an abbreviation means the first
/// key it is a prefix of (`v=7` is `vni=7`).
pub const KEYS: &[&str] = &[
    "port",
    "vni",
    "grp",
    "ttl",
    "rcvbuf",
    "v6",
    "v4",
    "hashsize",
    "expiretime",
    "if",
    "bind",
];

impl Plug for Vxvde {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        match Vxvde::send(self, frame) {
            // the network lost the datagram: UDP gives no other guarantee,
            // and libvdeplug's callers ignore send errors too
            Err(e) if transient(&e) => {
                tracing::debug!("vxvde {}: frame dropped: {e}", self.group());
                Ok(())
            }
            r => r,
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Vxvde::recv(self, buf)
    }

    fn close(&self) {
        Vxvde::close(self)
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOBUFS
                | libc::EAGAIN
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENETDOWN
                | libc::EHOSTDOWN
                | libc::ECONNREFUSED
                | libc::EPERM
                | libc::EADDRNOTAVAIL
        )
    )
}

/// The effective gid: what an empty `vni=`/`grp=` means.
fn egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// Parses a locator into the endpoint's settings. `group_gid` resolves a
/// group name; `egid` is used for an empty `vni=` or `grp=`.
pub fn config(
    loc: &Locator,
    group_gid: &dyn Fn(&str) -> Option<u32>,
    egid: u32,
) -> Result<VxvdeConfig, VnlError> {
    let (addr, opts) = addr_style(&loc.rest, KEYS, "vxvde", &loc.text)?;
    let bad = |key: &str, value: &str, why: &str| VnlError::BadValue {
        key: key.into(),
        value: value.into(),
        vnl: loc.text.clone(),
        why: why.into(),
    };
    // a bare key has the empty value, as in libvdeplug
    let val = |key: &str| opts.get(key).map(|v| v.unwrap_or(""));
    let number = |key: &str, v: &str| -> Result<u64, VnlError> {
        v.parse::<u64>()
            .map_err(|_| bad(key, v, "not a decimal number"))
    };
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit());
    // libvdeplug's vde_grnam2gid: "" = egid, digits = the number, else a name
    let gid = |key: &str, v: &str| -> Result<u32, VnlError> {
        if v.is_empty() {
            Ok(egid)
        } else if digits(v) {
            u32::try_from(number(key, v)?).map_err(|_| bad(key, v, "not a gid"))
        } else {
            group_gid(v).ok_or_else(|| bad(key, v, "no such group"))
        }
    };
    let mut cfg = VxvdeConfig {
        group: addr,
        ..VxvdeConfig::default()
    };
    if let Some(v) = val("port") {
        cfg.port = match v.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("port", v, "not a UDP port from 1 to 65535")),
        };
    }
    if let Some(v) = val("grp") {
        cfg.grp = Some(gid("grp", v)?);
    }
    cfg.vni = match val("vni") {
        Some(v) if digits(v) => match number("vni", v)? {
            n if n <= u64::from(MAX_VNI) => n as u32,
            _ => return Err(bad("vni", v, "a VNI is at most 16777215")),
        },
        Some(v) => gid("vni", v)? & MAX_VNI,
        None => cfg.grp.map_or(cfg.vni, |g| g & MAX_VNI),
    };
    if let Some(v) = val("ttl") {
        cfg.ttl = match number("ttl", v)? {
            n @ 0..=255 => n as u32,
            _ => return Err(bad("ttl", v, "a TTL is at most 255")),
        };
    }
    if let Some(v) = val("rcvbuf") {
        cfg.rcvbuf = match parse_size(v) {
            Some(n) if n <= i32::MAX as u64 => Some(n as usize),
            Some(_) => return Err(bad("rcvbuf", v, "larger than 2g")),
            None => return Err(bad("rcvbuf", v, "not a size (a number, k/m/g suffix)")),
        };
    }
    cfg.family = match (opts.has("v4"), opts.has("v6")) {
        (true, false) => Family::V4,
        (false, true) => Family::V6,
        _ => Family::Any,
    };
    if let Some(v) = val("hashsize") {
        cfg.hashsize = match number("hashsize", v)? {
            n if n <= MAX_HASHSIZE as u64 => n as usize,
            _ => return Err(bad("hashsize", v, "at most 1048576 entries")),
        };
    }
    if let Some(v) = val("expiretime") {
        // libvdeplug: zero (or less) means the default
        let secs = v
            .parse::<i64>()
            .map_err(|_| bad("expiretime", v, "not a number of seconds"))?;
        if secs > 0 {
            cfg.expire = Duration::from_secs(secs as u64);
        }
    }
    cfg.interface = val("if").filter(|v| !v.is_empty()).map(str::to_string);
    if let Some(v) = val("bind") {
        if v.is_empty() {
            return Err(bad("bind", v, "needs a local address"));
        }
        cfg.bind = Some(v.to_string());
    }
    if cfg.group.is_empty() {
        // `v6` picks the IPv6 default group even together with `v4`
        cfg.group = match opts.has("v6") {
            true => DEFAULT_GROUP_V6.to_string(),
            false => DEFAULT_GROUP_V4.to_string(),
        };
    }
    Ok(cfg)
}

pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let cfg = config(loc, &users::gid_of, egid())?;
    let plug =
        Vxvde::open(&cfg).map_err(|e| OpenError::io(format!("cannot open {}", loc.text), e))?;
    Ok(Box::new(plug))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(name: &str) -> Option<u32> {
        match name {
            "staff" => Some(1000),
            "big" => Some(0x0123_4567),
            _ => None,
        }
    }

    fn cfg(vnl: &str) -> Result<VxvdeConfig, VnlError> {
        config(&Locator::split(vnl), &groups, 4242)
    }

    fn bad_key(vnl: &str) -> String {
        match cfg(vnl) {
            Err(VnlError::BadValue { key, value, .. }) => format!("{key}={value}"),
            other => panic!("{vnl}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = cfg("vxvde://").unwrap();
        assert_eq!(
            c,
            VxvdeConfig {
                group: "239.0.0.1".into(),
                ..VxvdeConfig::default()
            }
        );
        assert_eq!(cfg("vxvde:///v6").unwrap().group, "ff05:56de::1");
        assert_eq!(cfg("vxvde:///v6").unwrap().family, Family::V6);
        // both families: any, but the IPv6 default group (as libvdeplug)
        let c = cfg("vxvde:///v4/v6").unwrap();
        assert_eq!((c.family, c.group.as_str()), (Family::Any, "ff05:56de::1"));
        assert_eq!(cfg("vxvde:///v4").unwrap().family, Family::V4);
    }

    #[test]
    fn every_option() {
        let c = cfg(
            "vxvde://239.1.2.3/port=5000/vni=77/ttl=4/rcvbuf=2m/if=eth0/bind=10.0.0.1\
             /hashsize=100/expiretime=30",
        )
        .unwrap();
        assert_eq!(c.group, "239.1.2.3");
        assert_eq!((c.port, c.vni, c.ttl), (5000, 77, 4));
        assert_eq!(c.rcvbuf, Some(2 << 20));
        assert_eq!(c.interface.as_deref(), Some("eth0"));
        assert_eq!(c.bind.as_deref(), Some("10.0.0.1"));
        assert_eq!((c.hashsize, c.expire), (100, Duration::from_secs(30)));
        assert_eq!(c.grp, None);
    }

    #[test]
    fn abbreviations_follow_the_table_order() {
        let c = cfg("vxvde://239.0.0.1/v=7/p=99/t=3/r=1k/h=8/e=9/i=lo/b=::1").unwrap();
        assert_eq!((c.vni, c.port, c.ttl), (7, 99, 3));
        assert_eq!((c.rcvbuf, c.hashsize), (Some(1024), 8));
        assert_eq!(c.expire, Duration::from_secs(9));
        assert_eq!(c.interface.as_deref(), Some("lo"));
        assert_eq!(c.bind.as_deref(), Some("::1"));
        assert_eq!(cfg("vxvde://239.0.0.1/g=staff").unwrap().grp, Some(1000));
        let e = cfg("vxvde://239.0.0.1/x=1").unwrap_err();
        assert!(e.to_string().starts_with("unknown key: x"), "{e}");
        // a key longer than the table's is not a prefix of it
        assert!(cfg("vxvde://239.0.0.1/portx=1").is_err());
    }

    #[test]
    fn groups_set_the_vni() {
        // grp: VNI = gid (the group address is rewritten when opening)
        let c = cfg("vxvde:///grp=staff").unwrap();
        assert_eq!((c.vni, c.grp), (1000, Some(1000)));
        let c = cfg("vxvde:///grp=1000/vni=5").unwrap();
        assert_eq!((c.vni, c.grp), (5, Some(1000)));
        // vni by group name, empty = egid, 24 bits of a gid
        assert_eq!(cfg("vxvde:///vni=staff").unwrap().vni, 1000);
        assert_eq!(cfg("vxvde:///vni=").unwrap().vni, 4242);
        assert_eq!(cfg("vxvde:///vni").unwrap().vni, 4242);
        assert_eq!(cfg("vxvde:///grp").unwrap().grp, Some(4242));
        assert_eq!(cfg("vxvde:///vni=big").unwrap().vni, 0x23_4567);
        assert_eq!(cfg("vxvde:///vni=0").unwrap().vni, 0);
        assert_eq!(cfg("vxvde:///vni=16777215").unwrap().vni, MAX_VNI);
    }

    #[test]
    fn libvdeplug_quirks_kept() {
        // expiretime <= 0 means the default; hashsize 0 turns learning off
        assert_eq!(
            cfg("vxvde:///expiretime=0").unwrap().expire,
            Duration::from_secs(128)
        );
        assert_eq!(
            cfg("vxvde:///expiretime=-5").unwrap().expire,
            Duration::from_secs(128)
        );
        assert_eq!(cfg("vxvde:///hashsize=0").unwrap().hashsize, 0);
        // an empty if= is no interface; quoting and %HH in the address
        assert_eq!(cfg("vxvde:///if=").unwrap().interface, None);
        assert_eq!(cfg("vxvde://'ff05::1'/v6").unwrap().group, "ff05::1");
        assert_eq!(cfg("vxvde://239.0.0.%32").unwrap().group, "239.0.0.2");
        // the last of repeated options wins
        assert_eq!(cfg("vxvde:///vni=3/vni=4").unwrap().vni, 4);
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (vnl, want) in [
            ("vxvde:///port=x", "port=x"),
            ("vxvde:///port=0", "port=0"),
            ("vxvde:///port=70000", "port=70000"),
            ("vxvde:///port", "port="),
            ("vxvde:///vni=16777216", "vni=16777216"),
            ("vxvde:///vni=nosuchgroup", "vni=nosuchgroup"),
            ("vxvde:///grp=nosuchgroup", "grp=nosuchgroup"),
            ("vxvde:///ttl=256", "ttl=256"),
            ("vxvde:///ttl=-1", "ttl=-1"),
            ("vxvde:///rcvbuf=lots", "rcvbuf=lots"),
            ("vxvde:///rcvbuf=4g", "rcvbuf=4g"),
            ("vxvde:///hashsize=x", "hashsize=x"),
            ("vxvde:///hashsize=99999999", "hashsize=99999999"),
            ("vxvde:///expiretime=soon", "expiretime=soon"),
            ("vxvde:///bind", "bind="),
        ] {
            assert_eq!(bad_key(vnl), want, "{vnl}");
        }
        let e = cfg("vxvde:///ttl=999").unwrap_err().to_string();
        assert!(
            e.contains("ttl") && e.contains("999") && e.contains("vxvde:///ttl=999"),
            "{e}"
        );
    }

    #[test]
    fn registered_and_open_errors_name_the_locator() {
        // not a multicast group: the open fails, naming the locator
        let e = super::super::open("vxvde://10.1.2.3", &OpenArgs::default())
            .err()
            .expect("a unicast group cannot be opened");
        let m = e.to_string();
        assert!(
            m.contains("vxvde://10.1.2.3") && m.contains("multicast"),
            "{m}"
        );
        let e = super::super::open("vxvde:///if=no-such-if0", &OpenArgs::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("no-such-if0"), "{e}");
    }
}
