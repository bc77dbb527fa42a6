//! `quic://`: a QUIC cable of vde-overlay as a locator.
//!
//! ```text
//! quic://HOST[:PORT][/OPT=VAL/...]     dial (default port 443)
//! quic://[:PORT][/OPT=VAL/...]         listen (no host)
//! ```
//!
//! Options (a path's value runs up to the next `KEY=VALUE`): `pin=FP`
//! (a peer certificate's fingerprint, `SHA256:…` or hex; may be given
//! several times), `pins=FILE` (fingerprints, one a line, or PEM
//! certificates), `cert=FILE` (this node's certificate and key, made on
//! first use; default `$VDE_QUIC_CERT` or `~/.config/vde/quic.pem`),
//! `dead=SECONDS` (a silent link goes down, default 1), `port=N` (dial:
//! the local UDP port, default ephemeral), `mtu=N` (the path MTU:
//! TCP SYNs get an MSS whose frames fit one datagram, 0 turns that off;
//! default 1500). A peer whose certificate is not pinned is refused.
//!
//! A switch hosts it as ports ([`open_endpoint`]: a listener gives each
//! peer its own port); `vde_plug` uses it as a plug ([`open`]).

use std::path::Path;
use std::time::Duration;

use vde_overlay::endpoint::FrameEndpoint;
use vde_overlay::quic::tls::{self, Fingerprint, Pins};
use vde_overlay::quic::{Options, Quic, Role, DEFAULT_PORT};

use super::cryptcab::{parse_port, split_dest_or};
use super::parse::{addr_style_paths, VnlError};
use super::{Locator, OpenArgs, OpenError, Plug};

const KEYS: &[&str] = &["pin", "pins", "cert", "dead", "port", "mtu"];
/// Keys whose values may hold slashes (paths, and base64 fingerprints).
const PATHS: &[&str] = &["pins", "cert", "pin"];

/// A parsed `quic://` locator.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// `None`: listen.
    pub host: Option<String>,
    pub user: Option<String>,
    /// The server's UDP port (dial) or the one to listen on.
    pub port: u16,
    /// Dial: the local UDP port (0: ephemeral).
    pub local_port: u16,
    pub pins: Vec<Fingerprint>,
    pub pins_file: Option<String>,
    pub cert: Option<String>,
    pub dead: Duration,
    pub mtu: u16,
}

impl Spec {
    pub fn listens(&self) -> bool {
        self.host.is_none()
    }
}

/// Parses a `quic://` locator.
pub fn spec(loc: &Locator) -> Result<Spec, VnlError> {
    let (dest, opts) = addr_style_paths(&loc.rest, KEYS, PATHS, "quic", &loc.text)?;
    let bad = |key: &str, value: &str, why: &str| VnlError::BadValue {
        key: key.into(),
        value: value.into(),
        vnl: loc.text.clone(),
        why: why.into(),
    };
    let (user, host, port) =
        split_dest_or(&dest, DEFAULT_PORT).map_err(|why| VnlError::BadAddress {
            addr: dest.clone(),
            vnl: loc.text.clone(),
            why,
        })?;
    let mut pins = Vec::new();
    for (k, v) in &opts.items {
        if *k == "pin" {
            let v = v.as_deref().unwrap_or("");
            pins.push(tls::parse_pin(v).ok_or_else(|| {
                bad(
                    "pin",
                    v,
                    "not a certificate fingerprint (SHA256: and 43 base64 characters, \
                     or 64 hex digits)",
                )
            })?);
        }
    }
    let dead = match opts.value("dead") {
        None => vde_overlay::quic::DEFAULT_DEAD,
        Some(v) => match v.parse::<f64>() {
            Ok(s) if (0.1..=600.0).contains(&s) => Duration::from_secs_f64(s),
            _ => return Err(bad("dead", v, "seconds, from 0.1 to 600")),
        },
    };
    let local_port = match opts.value("port") {
        Some(v) => parse_port(v, true).map_err(|why| bad("port", v, &why))?,
        None => 0,
    };
    let mtu = match opts.value("mtu") {
        None => 1500,
        Some(v) => match v.parse::<u16>() {
            Ok(0) => 0,
            Ok(m) if m >= 1280 => m,
            _ => {
                return Err(bad(
                    "mtu",
                    v,
                    "a path MTU from 1280 (QUIC's least) to 65535, or 0 for no MSS clamping",
                ))
            }
        },
    };
    if user.is_some() {
        return Err(VnlError::BadAddress {
            addr: dest.clone(),
            vnl: loc.text.clone(),
            why: "quic:// does not exchange fingerprints over ssh (yet): drop the user and \
                  give pin= or pins="
                .into(),
        });
    }
    if host.is_none() && opts.value("port").is_some() {
        return Err(bad(
            "port",
            opts.value("port").unwrap_or(""),
            "port= is the local port of a cable that dials (a listener: quic://:PORT)",
        ));
    }
    Ok(Spec {
        host,
        user,
        port,
        local_port,
        pins,
        pins_file: opts.value("pins").map(str::to_string),
        cert: opts.value("cert").map(str::to_string),
        dead,
        mtu,
    })
}

/// Opens the endpoint a locator names: a dialing cable or a listener.
pub fn open_endpoint(loc: &Locator) -> Result<Box<dyn FrameEndpoint>, OpenError> {
    let spec = spec(loc)?;
    // this process is about to hold a private key
    vde_overlay::sys::no_core_dumps();
    // the switch names the locator already
    let fail = |e: std::io::Error| OpenError::io("quic", e);
    let cert = tls::load_or_create(spec.cert.as_deref().map(Path::new)).map_err(fail)?;
    let mut pins = spec.pins.clone();
    if let Some(f) = &spec.pins_file {
        pins.extend(tls::read_pins(Path::new(f)).map_err(fail)?);
    }
    if pins.is_empty() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "no peer certificate pinned: give pin=SHA256:… or pins=FILE \
                 (this node's certificate is {} in {})",
                cert.fingerprint(),
                cert.path.display()
            ),
        )));
    }
    let role = match &spec.host {
        None => Role::Listen { port: spec.port },
        Some(h) => Role::Dial {
            host: h.clone(),
            port: spec.port,
            local_port: spec.local_port,
        },
    };
    let q = Quic::open(Options {
        role,
        cert,
        pins: Pins::new(pins),
        dead_after: spec.dead,
        mtu: spec.mtu,
    })
    .map_err(fail)?;
    Ok(Box::new(q))
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

    /// A fingerprint whose base64 holds slashes.
    const FP: &str = "SHA256:kUW7BtvXe4eXytFBDQiQmuGNcphGEX7/qO9UnX+xzEM";

    #[test]
    fn dial_and_listen_forms() {
        let s = spec(&loc(&format!("quic://10.0.0.2:4433/pin={FP}"))).unwrap();
        assert_eq!((s.host.as_deref(), s.port), (Some("10.0.0.2"), 4433));
        assert_eq!(s.pins.len(), 1);
        assert_eq!(s.dead, Duration::from_secs(1));
        let s = spec(&loc(&format!(
            "quic://h/pins=/etc/vde/pins/cert=/etc/vde/q.pem/dead=0.5/port=5000/mtu=9000/pin={FP}"
        )))
        .unwrap();
        assert_eq!(s.port, DEFAULT_PORT);
        assert_eq!(s.pins_file.as_deref(), Some("/etc/vde/pins"));
        assert_eq!(s.cert.as_deref(), Some("/etc/vde/q.pem"));
        assert_eq!(
            (s.dead, s.local_port, s.mtu),
            (Duration::from_millis(500), 5000, 9000)
        );
        let s = spec(&loc(&format!("quic://[::1]:9/pin={FP}/pin={FP}"))).unwrap();
        assert_eq!(
            (s.host.as_deref(), s.port, s.pins.len()),
            (Some("::1"), 9, 2)
        );
        let s = spec(&loc("quic://:4433/pins=/p")).unwrap();
        assert!(s.listens());
        assert_eq!(s.port, 4433);
        let s = spec(&loc("quic://")).unwrap();
        assert!(s.listens() && s.port == DEFAULT_PORT);
    }

    #[test]
    fn bad_locators_are_named() {
        for (vnl, part) in [
            ("quic://h:70000", "must be 1..65535"),
            ("quic://h/pin=SHA256:short", "not a certificate fingerprint"),
            ("quic://h/dead=0", "seconds"),
            ("quic://h/dead=x", "seconds"),
            ("quic://h/mtu=500", "1280"),
            ("quic://h/bogus=1", "unknown key"),
            ("quic://u@h", "ssh"),
            ("quic://:4433/port=9", "a listener"),
            ("quic://-oFoo", "begin with '-'"),
        ] {
            let e = spec(&loc(vnl))
                .err()
                .unwrap_or_else(|| panic!("{vnl} parsed"));
            assert!(e.to_string().contains(part), "{vnl}: {e}");
        }
    }

    #[test]
    fn no_pin_is_refused_naming_our_certificate() {
        let dir = std::env::temp_dir().join(format!("vnl-quic-{}", std::process::id()));
        let cert = dir.join("q.pem");
        let e = open_endpoint(&loc(&format!("quic://127.0.0.1:9/cert={}", cert.display())))
            .err()
            .unwrap();
        let fp = tls::load(&cert).unwrap().fingerprint().to_string();
        assert!(
            e.to_string().contains("no peer certificate pinned") && e.to_string().contains(&fp),
            "{e}"
        );
        let e = open_endpoint(&loc(&format!(
            "quic://127.0.0.1:9/cert={}/pins=/no/such/pins",
            cert.display()
        )))
        .err()
        .unwrap();
        assert!(e.to_string().contains("/no/such/pins"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
