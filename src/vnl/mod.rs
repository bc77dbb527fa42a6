//! VNL locators and the plugs they open. One scheme, one file: each module
//! below has an `open` that the registry ([`SCHEMES`]) names; adding a
//! scheme touches no other scheme.
//!
//! A [`Plug`] is a blocking frame endpoint shared between threads (the
//! tools built on it use one thread per direction).

pub mod cmd;
pub mod cryptcab;
pub mod endpoint;
pub mod hub;
pub mod node;
pub mod null;
pub mod parse;
pub mod ptp;
pub mod quic;
pub mod slirp;
pub mod switch;
pub mod tap;
pub mod udp;
pub mod vde;
pub mod vxvde;

use std::io;
use std::path::PathBuf;

pub use endpoint::open_endpoint;
pub use parse::{Locator, Options, VnlError};

/// A frame endpoint opened from a locator.
pub trait Plug: Send + Sync {
    /// Sends one frame (blocks while the other side is full).
    fn send(&self, frame: &[u8]) -> io::Result<()>;
    /// Receives one frame into `buf` and returns its length. An error of
    /// kind `UnexpectedEof` means the plug is closed for good.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Blocks until the other end hangs up. Plugs without such a signal
    /// (everything but vde://) return `false` at once.
    fn wait_hangup(&self) -> bool {
        false
    }
    /// Says goodbye where the protocol has one (vxvde) and releases what
    /// must not wait for the last reference to go. Tools call it before
    /// they exit; sends and receives after it fail.
    fn close(&self) {}
    /// The datagram socket frames travel on, when the plug is one (vde://),
    /// for callers that batch their IO with `recvmmsg`/`sendmmsg`.
    fn datagram_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// What the caller of `open` adds to the locator: libvdeplug's
/// `struct vde_open_args` and description.
#[derive(Debug, Clone, Default)]
pub struct OpenArgs {
    /// Description shown by the switch (`port/print`).
    pub descr: String,
    /// Port asked for by the caller (negative: port 0).
    pub port: Option<i64>,
    /// Group for the client's socket.
    pub group: Option<String>,
    /// Mode for the client's socket (default 0700).
    pub mode: Option<u32>,
}

/// Failure to open a locator.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Vnl(#[from] VnlError),
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
}

impl OpenError {
    pub fn io(what: impl Into<String>, err: io::Error) -> Self {
        OpenError::Io {
            what: what.into(),
            err,
        }
    }
}

type Opener = fn(&Locator, &OpenArgs) -> Result<Box<dyn Plug>, OpenError>;

/// A scheme this build knows: its name, its opener, and for `--help` one
/// example locator and what it is.
pub struct Scheme {
    pub name: &'static str,
    pub open: Opener,
    pub example: &'static str,
    pub what: &'static str,
}

/// The schemes this build knows, by name.
pub static SCHEMES: &[Scheme] = &[
    Scheme {
        name: "vde",
        open: vde::open,
        example: "vde:///tmp/vde.ctl[3]",
        what: "port 3 of a vde_switch (a bare path works too)",
    },
    Scheme {
        name: "null",
        open: null::open,
        example: "null://",
        what: "sends go nowhere, nothing arrives",
    },
    Scheme {
        name: "udp",
        open: udp::open,
        example: "udp://5000->192.0.2.7:5000",
        what: "frames in UDP datagrams, local port 5000 to a peer's 5000",
    },
    Scheme {
        name: "cmd",
        open: cmd::open,
        example: "cmd://\"ssh host vde_plug\"",
        what: "a command's stdin/stdout, stream framing",
    },
    Scheme {
        name: "vxvde",
        open: vxvde::open,
        example: "vxvde://239.1.2.3",
        what: "a distributed switch over UDP multicast",
    },
    Scheme {
        name: "tap",
        open: tap::open,
        example: "tap://tap0",
        what: "a Linux tap interface (root)",
    },
    Scheme {
        name: "hub",
        open: hub::open,
        example: "hub:///tmp/myhub",
        what: "this process becomes a hub others join with vde://",
    },
    Scheme {
        name: "switch",
        open: switch::open,
        example: "switch:///tmp/mysw",
        what: "this process becomes a switch others join with vde://",
    },
    Scheme {
        name: "ptp",
        open: ptp::open,
        example: "ptp:///tmp/link",
        what: "a point-to-point link between two processes",
    },
    Scheme {
        name: "cryptcab",
        open: cryptcab::open,
        example: "cryptcab://user@host:7667",
        what: "an encrypted cable (ssh key exchange, or /psk=KEYFILE); no host: listen",
    },
    Scheme {
        name: "quic",
        open: quic::open,
        example: "quic://host:4433/pin=SHA256:…",
        what: "a QUIC cable, peers pinned by certificate fingerprint; no host: listen",
    },
    Scheme {
        name: "slirp",
        open: slirp::open,
        example: "slirp:///tcpfwd=8080:10.0.2.15:80",
        what: "a router to the host's network: DHCP, NAT, DNS, port forwards (feature `slirp`)",
    },
];

/// The schemes of [`SCHEMES`] with their examples, for a tool's
/// `--help`.
pub fn schemes_help() -> String {
    let width = SCHEMES.iter().map(|s| s.example.len()).max().unwrap_or(0);
    let mut h = String::from("Locators (VNL) this build knows:\n");
    for s in SCHEMES {
        h.push_str(&format!("  {:width$}  {}\n", s.example, s.what));
    }
    h
}

/// Opens a locator. An empty locator is the default network
/// (`~/.vdeplug/default`, `~/.vde2/default.switch`, then the default switch).
pub fn open(vnl: &str, args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let vnl = resolve_default(vnl);
    let loc = Locator::split(&vnl);
    let Some(scheme) = SCHEMES.iter().find(|s| s.name == loc.scheme) else {
        return Err(VnlError::UnknownScheme {
            scheme: loc.scheme.clone(),
            vnl: loc.text.clone(),
            known: SCHEMES
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    };
    (scheme.open)(&loc, args)
}

/// Where an empty locator leads (for help texts): [`resolve_default`], then
/// the default switches of `vde://`.
pub const DEFAULT_NETWORK: &str =
    "~/.vdeplug/default, ~/.vde2/default.switch, else the switch at /var/run/vde.ctl or /tmp/vde.ctl";

/// libvdeplug's rule 2: an empty locator names the user's default network;
/// a locator that is a regular file holds the real one on its first line.
fn resolve_default(vnl: &str) -> String {
    let mut vnl = vnl.to_string();
    if vnl.is_empty() {
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            for cand in [
                home.join(".vdeplug/default"),
                home.join(".vde2/default.switch"),
            ] {
                if std::fs::symlink_metadata(&cand).is_ok() {
                    vnl = cand.display().to_string();
                    break;
                }
            }
        }
    }
    if !vnl.contains("://") && !vnl.is_empty() {
        let path = vnl.split('[').next().unwrap_or("");
        if std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Some(first) = text.lines().next() {
                    return first.trim_end().to_string();
                }
            }
        }
    }
    vnl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scheme_is_named() {
        let e = open("bogus://x", &OpenArgs::default()).err().unwrap();
        let m = e.to_string();
        assert!(m.contains("\"bogus\"") && m.contains("vde, null"), "{m}");
    }

    #[test]
    fn every_scheme_has_an_example_of_itself() {
        for s in SCHEMES {
            let loc = Locator::split(s.example);
            assert_eq!(loc.scheme, s.name, "{}", s.example);
            assert!(schemes_help().contains(s.example));
        }
    }

    #[test]
    fn locator_in_a_file() {
        let dir = std::env::temp_dir().join(format!("vnl-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("net");
        std::fs::write(&f, "null://\n").unwrap();
        assert_eq!(resolve_default(f.to_str().unwrap()), "null://");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(resolve_default("/no/such/dir[3]"), "/no/such/dir[3]");
    }
}
