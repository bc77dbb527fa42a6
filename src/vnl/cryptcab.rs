//! `cryptcab://`: an encrypted cable of vde-overlay as a locator.
//!
//! ```text
//! cryptcab://[USER@]HOST[:PORT][/OPT=VAL/...]   dial a server (ssh key exchange,
//!                                               or psk=FILE)
//! cryptcab://[:PORT][/OPT=VAL/...]              listen (no host)
//! ```
//!
//! Options (a path's value runs up to the next `KEY=VALUE`, so its slashes
//! need no quoting): `psk=FILE` (pre-shared key file instead of ssh), `port=N`
//! (dial: local UDP port, default ephemeral), `cipher=NAME` (`auto`,
//! `chacha20-poly1305`, `aes-256-gcm`), `dead=SECONDS` (declare a silent
//! cable down, default 1), `rekey=SECONDS` (default 120), `remote=CMD`
//! (dial, ssh: the program run on the server host, default
//! `vde_cryptcab`), `sshconfig=FILE` (dial, ssh: `ssh -F`),
//! `allowuser=NAME` and `allowgroup=NAME` (listen, ssh: who else may hand
//! keys over), `mtu=N` (the path MTU between the sites, default 1500: TCP
//! SYNs leaving through the cable get an MSS that fits it, as tinc's
//! ClampMSS does; 0 turns that off), `identity=FILE` (this node's
//! long-term key, made on first use; default `$VDE_IDENTITY` or
//! `~/.config/vde/identity`), `pin=SHA256:…` (dial with psk=: the
//! fingerprint the server's identity must have).
//!
//! A switch hosts it as ports ([`open_endpoint`]: a listener gives each
//! peer its own port); `vde_plug` uses it as a plug ([`open`]).

use std::path::Path;
use std::time::Duration;

use vde_overlay::cryptcab::client::ClientKeys;
use vde_overlay::cryptcab::dial::{Dial, DialOptions};
use vde_overlay::cryptcab::listen::{Listen, ListenOptions};
use vde_overlay::cryptcab::server::ServerKeys;
use vde_overlay::cryptcab::ssh::SshOptions;
use vde_overlay::cryptcab::ticket::Allow;
use vde_overlay::cryptcab::{Config, Fingerprint, Psk, Suite, Suites, DEFAULT_MTU, DEFAULT_PORT};
use vde_overlay::endpoint::FrameEndpoint;

use super::parse::{addr_style_paths, VnlError};
use super::{Locator, OpenArgs, OpenError, Plug};

const KEYS: &[&str] = &[
    "psk",
    "mtu",
    "port",
    "cipher",
    "dead",
    "rekey",
    "remote",
    "sshconfig",
    "allowuser",
    "allowgroup",
    "identity",
    "pin",
];

/// Keys whose values may hold slashes (paths, and base64 fingerprints):
/// their slashes need no quoting.
const PATHS: &[&str] = &["psk", "sshconfig", "remote", "identity", "pin"];

/// A parsed `cryptcab://` locator.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// `None`: listen.
    pub user: Option<String>,
    pub host: Option<String>,
    /// The server's UDP port (dial) or the one to listen on.
    pub port: u16,
    /// Dial: the local UDP port (0: ephemeral).
    pub local_port: u16,
    pub psk: Option<String>,
    pub config: Config,
    pub remote: Option<String>,
    pub sshconfig: Option<String>,
    pub allow_users: Vec<String>,
    pub allow_groups: Vec<String>,
    /// The WAN path MTU for TCP MSS clamping (0: off).
    pub mtu: u16,
    /// The identity file (`None`: the default one).
    pub identity: Option<String>,
    /// Dial with a PSK: the server identity's fingerprint.
    pub pin: Option<Fingerprint>,
}

impl Spec {
    pub fn listens(&self) -> bool {
        self.host.is_none()
    }
}

/// A UDP port: 1..=65535 (0 only where `zero` says it means "any"),
/// said so when it is out of range.
pub fn parse_port(s: &str, zero: bool) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("port {s:?}: not a number (1..65535)"));
    }
    match s.parse::<u32>() {
        Ok(0) if zero => Ok(0),
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("port {s}: must be 1..65535")),
    }
}

/// `[USER@]HOST[:PORT]`, with `[V6]:PORT` or a bare IPv6 literal; an
/// empty host (`:PORT` or nothing) means listen.
pub fn split_dest(s: &str) -> Result<(Option<String>, Option<String>, u16), String> {
    split_dest_or(s, DEFAULT_PORT)
}

/// [`split_dest`] with another default port (`quic://`'s).
pub fn split_dest_or(
    s: &str,
    default_port: u16,
) -> Result<(Option<String>, Option<String>, u16), String> {
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return Err(format!("empty user name in {s:?}")),
        None => (None, s),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or(format!("missing ] in {s:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p, false)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("unexpected {after:?} after ] in {s:?}")),
        };
        (h.to_string(), port)
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
        (h.to_string(), parse_port(p, false)?)
    } else {
        (rest.to_string(), default_port)
    };
    if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
        return Err(format!("{s:?}: a host or user may not begin with '-'"));
    }
    if host.is_empty() && user.is_some() {
        return Err(format!("{s:?}: a user but no host"));
    }
    Ok((user, (!host.is_empty()).then_some(host), port))
}

/// The protocol's settings from the cipher name and the two timers, as
/// vde_cryptcab's `--cipher`, `--dead-after` and `--rekey-after` give them.
pub fn config(cipher: Option<&str>, dead_after: f64, rekey_after: f64) -> Result<Config, String> {
    let name = cipher.map(str::to_ascii_lowercase);
    let (suite, accept) = match name.as_deref().unwrap_or("") {
        "" => (Suite::ChaCha20Poly1305, Suites::ALL),
        "auto" => (Suite::preferred(), Suites::ALL),
        "chacha20-poly1305" | "chacha20poly1305" | "chacha" => (
            Suite::ChaCha20Poly1305,
            Suites::only(Suite::ChaCha20Poly1305),
        ),
        "aes-256-gcm" | "aes256gcm" | "aes" => (Suite::Aes256Gcm, Suites::only(Suite::Aes256Gcm)),
        other => {
            return Err(format!(
                "unknown cipher {other:?} (auto, chacha20-poly1305 or aes-256-gcm)"
            ))
        }
    };
    if !(0.05..=3600.0).contains(&dead_after) {
        return Err("the dead-after time must be between 0.05 and 3600 seconds".into());
    }
    if !(1.0..=86400.0).contains(&rekey_after) {
        return Err("the rekey time must be between 1 and 86400 seconds".into());
    }
    let dead = Duration::from_secs_f64(dead_after);
    Ok(Config {
        suite,
        accept,
        dead_after: dead,
        keepalive_interval: dead / 4,
        rekey_after_time: Duration::from_secs_f64(rekey_after),
        // a keypair that could not be replaced is dropped after this
        reject_after_time: Duration::from_secs_f64(rekey_after * 3.0),
        ..Config::default()
    })
}

/// Reads a pre-shared key file; its bytes are wiped after use. The error
/// keeps the kind of the failed read (a missing file is `NotFound`).
pub fn read_psk(path: &Path) -> std::io::Result<Psk> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot read key file {}: {e}", path.display()),
            )
        })?
        .permissions()
        .mode();
    // like ssh with private keys: a key others may read (or replace) is
    // not a secret
    if mode & 0o026 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "key file {} is {} by others (mode {:04o}): chmod 600 {}",
                path.display(),
                if mode & 0o004 != 0 {
                    "readable"
                } else {
                    "writable"
                },
                mode & 0o7777,
                path.display()
            ),
        ));
    }
    if mode & 0o040 != 0 {
        tracing::warn!(
            "key file {} is readable by its group (mode {:04o}); chmod 600 keeps it yours",
            path.display(),
            mode & 0o7777
        );
    }
    let mut bytes = std::fs::read(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot read key file {}: {e}", path.display()),
        )
    })?;
    let psk = Psk::from_file_contents(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("key file {}: {e}", path.display()),
        )
    });
    zeroize::Zeroize::zeroize(&mut bytes);
    psk
}

/// Parses a `cryptcab://` locator.
pub fn spec(loc: &Locator) -> Result<Spec, VnlError> {
    let (dest, opts) = addr_style_paths(&loc.rest, KEYS, PATHS, "cryptcab", &loc.text)?;
    let bad = |key: &str, value: &str, why: String| VnlError::BadValue {
        key: key.into(),
        value: value.into(),
        vnl: loc.text.clone(),
        why,
    };
    let (user, host, port) = split_dest(&dest).map_err(|why| VnlError::BadAddress {
        addr: dest.clone(),
        vnl: loc.text.clone(),
        why,
    })?;
    let secs = |key: &str, default: f64| -> Result<f64, VnlError> {
        match opts.value(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| bad(key, v, "not a number of seconds".into())),
        }
    };
    let dead = secs("dead", 1.0)?;
    let rekey = secs("rekey", 120.0)?;
    let cipher = opts.value("cipher");
    let config = config(cipher, dead, rekey).map_err(|why| {
        let (k, v) = match why.as_str() {
            w if w.starts_with("unknown cipher") => ("cipher", cipher.unwrap_or("")),
            w if w.contains("dead") => ("dead", opts.value("dead").unwrap_or("")),
            _ => ("rekey", opts.value("rekey").unwrap_or("")),
        };
        bad(k, v, why)
    })?;
    let local_port = match opts.value("port") {
        Some(v) => parse_port(v, true).map_err(|why| bad("port", v, why))?,
        None => 0,
    };
    let many = |key: &str| -> Vec<String> {
        opts.items
            .iter()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, v)| v.clone())
            .collect()
    };
    let mtu = match opts.value("mtu") {
        None => DEFAULT_MTU,
        Some(v) => match v.parse::<u16>() {
            Ok(0) => 0,
            Ok(m) if m >= 576 => m,
            _ => {
                return Err(bad(
                    "mtu",
                    v,
                    "a path MTU from 576 to 65535, or 0 for no MSS clamping".into(),
                ))
            }
        },
    };
    let pin = match opts.value("pin") {
        None => None,
        Some(v) => Some(Fingerprint::parse(v).ok_or_else(|| {
            bad(
                "pin",
                v,
                "not a fingerprint (SHA256: and 43 base64 characters, as the logs show)".into(),
            )
        })?),
    };
    let spec = Spec {
        identity: opts.value("identity").map(str::to_string),
        pin,
        mtu,
        user,
        host,
        port,
        local_port,
        psk: opts.value("psk").map(str::to_string),
        config,
        remote: opts.value("remote").map(str::to_string),
        sshconfig: opts.value("sshconfig").map(str::to_string),
        allow_users: many("allowuser"),
        allow_groups: many("allowgroup"),
    };
    if spec.listens() && (spec.remote.is_some() || spec.sshconfig.is_some()) {
        return Err(bad(
            "remote",
            spec.remote.as_deref().unwrap_or(""),
            "remote= and sshconfig= are for a cable that dials".into(),
        ));
    }
    if spec.pin.is_some() && (spec.listens() || spec.psk.is_none()) {
        return Err(bad(
            "pin",
            opts.value("pin").unwrap_or(""),
            "pin= is for a cable that dials with psk= (ssh pins the server's identity itself)"
                .into(),
        ));
    }
    if let Some(r) = &spec.remote {
        if r.starts_with('-') {
            return Err(bad("remote", r, "may not begin with '-'".into()));
        }
    }
    Ok(spec)
}

/// Opens the endpoint a locator names: a dialing cable or a listener.
pub fn open_endpoint(loc: &Locator) -> Result<Box<dyn FrameEndpoint>, OpenError> {
    let spec = spec(loc)?;
    // this process is about to hold cable keys
    vde_overlay::sys::no_core_dumps();
    let psk = match &spec.psk {
        Some(p) => Some(read_psk(Path::new(p)).map_err(|e| OpenError::io(loc.text.clone(), e))?),
        None => None,
    };
    let fail = |e: String| {
        OpenError::io(
            format!("cannot open {}", loc.text),
            std::io::Error::other(e),
        )
    };
    let identity =
        vde_overlay::cryptcab::identity::load_or_create(spec.identity.as_deref().map(Path::new))
            .map_err(|e| fail(format!("identity: {e}")))?;
    match &spec.host {
        None => {
            let keys = match psk {
                Some(p) => ServerKeys::Psk(p),
                None => {
                    let mut allow = Allow::default();
                    for u in &spec.allow_users {
                        allow.uids.push(
                            crate::users::parse_user(u)
                                .ok_or_else(|| fail(format!("no such user {u:?}")))?,
                        );
                    }
                    for g in &spec.allow_groups {
                        allow.gids.push(
                            crate::users::parse_group(g)
                                .ok_or_else(|| fail(format!("no such group {g:?}")))?,
                        );
                    }
                    ServerKeys::Ssh {
                        allow,
                        // supplementary groups; the primary one comes from
                        // the helper's credentials
                        groups_of: Box::new(|uid| {
                            let mut g = crate::users::groups_of(uid, u32::MAX);
                            g.retain(|&x| x != u32::MAX);
                            g
                        }),
                    }
                }
            };
            let l = Listen::open(ListenOptions {
                port: spec.port,
                keys,
                identity,
                config: spec.config,
                mtu: spec.mtu,
            })
            .map_err(|e| fail(e.to_string()))?;
            Ok(Box::new(l))
        }
        Some(host) => {
            let keys = match psk {
                Some(psk) => ClientKeys::Psk { psk, pin: spec.pin },
                None => {
                    let dest = match &spec.user {
                        Some(u) => format!("{u}@{host}"),
                        None => host.clone(),
                    };
                    let mut o = SshOptions::new(&dest);
                    if let Some(r) = &spec.remote {
                        o.remote_cmd = r.clone();
                    }
                    o.config_file = spec.sshconfig.as_ref().map(Into::into);
                    ClientKeys::Ssh(o)
                }
            };
            let d = Dial::open(DialOptions {
                host: host.clone(),
                port: spec.port,
                local_port: spec.local_port,
                keys,
                identity,
                config: spec.config,
                mtu: spec.mtu,
            })
            .map_err(|e| fail(e.to_string()))?;
            Ok(Box::new(d))
        }
    }
}

/// `vde_plug`'s use: the endpoint behind a blocking plug.
pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let ep = open_endpoint(loc)?;
    Ok(Box::new(super::endpoint::EndpointPlug::new(ep)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Locator {
        Locator::split(s)
    }

    #[test]
    fn dial_and_listen_forms() {
        let s = spec(&loc("cryptcab://alice@10.0.0.2:7000/psk=/k")).unwrap();
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.host.as_deref(), Some("10.0.0.2"));
        assert_eq!((s.port, s.local_port), (7000, 0));
        assert_eq!(s.psk.as_deref(), Some("/k"));
        let s = spec(&loc("cryptcab://h/psk=/etc/vde/key/dead=2")).unwrap();
        assert_eq!(s.psk.as_deref(), Some("/etc/vde/key"));
        assert_eq!(s.config.dead_after, Duration::from_secs(2));
        // path parts that look like abbreviated keys stay in the path
        let s = spec(&loc("cryptcab://h/sshconfig=/home/ssh/ssh_config/dead=2")).unwrap();
        assert_eq!(s.sshconfig.as_deref(), Some("/home/ssh/ssh_config"));
        assert_eq!(s.config.dead_after, Duration::from_secs(2));
        let s = spec(&loc("cryptcab://h")).unwrap();
        assert_eq!((s.host.as_deref(), s.port), (Some("h"), DEFAULT_PORT));
        let s = spec(&loc(
            "cryptcab://[::1]:9/port=5/cipher=aes/dead=0.5/rekey=30",
        ))
        .unwrap();
        assert_eq!(
            (s.host.as_deref(), s.port, s.local_port),
            (Some("::1"), 9, 5)
        );
        assert_eq!(s.config.dead_after, Duration::from_millis(500));
        assert_eq!(s.config.suite, Suite::Aes256Gcm);
        let s = spec(&loc("cryptcab://:7667/psk=/k")).unwrap();
        assert!(s.listens());
        assert_eq!(s.port, 7667);
        let s = spec(&loc("cryptcab://")).unwrap();
        assert!(s.listens());
        assert_eq!(s.port, DEFAULT_PORT);
    }

    #[test]
    fn identity_and_pin_options() {
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        let s = spec(&loc(&format!(
            "cryptcab://h/psk=/etc/vde/k/identity=/etc/vde/my id/pin={fp}"
        )))
        .unwrap();
        assert_eq!(s.identity.as_deref(), Some("/etc/vde/my id"));
        assert_eq!(s.pin.map(|p| p.to_string()).as_deref(), Some(fp));
        assert_eq!(s.psk.as_deref(), Some("/etc/vde/k"));
        // base64 may hold "//": the value keeps it
        let fp2 = "SHA256:FaUKyKe4V4MstyH9N+O9Ohy0OzBTtFt//G0C4+g2S9A";
        let s = spec(&loc(&format!("cryptcab://h/pin={fp2}/psk=/k"))).unwrap();
        assert_eq!(s.pin.map(|p| p.to_string()).as_deref(), Some(fp2));
        assert_eq!(s.psk.as_deref(), Some("/k"));
        let s = spec(&loc("cryptcab://:7667/identity=/x")).unwrap();
        assert_eq!((s.identity.as_deref(), s.pin), (Some("/x"), None));
    }

    #[test]
    fn bad_locators_are_named() {
        for (vnl, part) in [
            ("cryptcab://h:70000", "port 70000: must be 1..65535"),
            ("cryptcab://h/cipher=rot13", "unknown cipher"),
            ("cryptcab://h/dead=x", "seconds"),
            ("cryptcab://h/dead=0", "dead-after"),
            ("cryptcab://h/bogus=1", "unknown key"),
            ("cryptcab://h/mtu=100", "576 to 65535"),
            ("cryptcab://-oProxyCommand=x", "begin with '-'"),
            ("cryptcab://h/remote=-x", "begin with '-'"),
            ("cryptcab://:7667/remote=x", "dials"),
            ("cryptcab://u@", "no host"),
            ("cryptcab://h/psk=/k/pin=SHA256:short", "not a fingerprint"),
            (
                "cryptcab://h/pin=SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
                "psk=",
            ),
            (
                "cryptcab://:7667/psk=/k/pin=SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
                "dials",
            ),
        ] {
            let e = spec(&loc(vnl))
                .err()
                .unwrap_or_else(|| panic!("{vnl} parsed"));
            assert!(e.to_string().contains(part), "{vnl}: {e}");
        }
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let e = open_endpoint(&loc("cryptcab://127.0.0.1:9/psk=/no/such/file"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/no/such/file"), "{e}");
    }
}
