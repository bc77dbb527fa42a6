//! A slirp router for a virtual network: DHCP, NAT of the guests' TCP and
//! UDP to the host's sockets (user privileges), a DNS forwarder, port
//! forwards from the host, IPv6 with router advertisements. Built on
//! libslirp (QEMU's user-mode network stack) with the `slirp` cargo
//! feature; `slirpvde` and `slirp://` use it.
//!
//! Layers, one file each: [`options`] (settings, the `slirp://` option
//! names; plain Rust), `ffi` (libslirp's C API made safe; the only unsafe
//! code), `engine` (the router's thread and poll loop). The router talks
//! to its guests through one packet socket ([`Port`]): frames in, frames
//! out, one per datagram.

pub mod options;

#[cfg(feature = "slirp")]
mod engine;
#[cfg(feature = "slirp")]
mod ffi;

use std::any::Any;
use std::fmt;
use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use options::Settings;

/// What a build without the `slirp` feature says when asked for slirp.
pub const FEATURE_MISSING: &str = "this build has no slirp support: rebuild with the cargo feature `slirp` (cargo build --release --features slirp; needs Debian's libslirp-dev and libglib2.0-dev)";

/// True when this build has the router.
pub const AVAILABLE: bool = cfg!(feature = "slirp");

/// Counters of a router, shared with its thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames and bytes from the guests.
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Frames and bytes to the guests.
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Frames from the guests dropped as malformed: runts, oversized
    /// frames, ARP/IPv4/IPv6 frames too short for their headers.
    pub garbage: AtomicU64,
    /// Frames of other protocols (STP, LLDP, …), ignored.
    pub ignored: AtomicU64,
    /// Frames to the guests dropped (their socket stayed full).
    pub dropped_out: AtomicU64,
    /// Guest misbehaviour libslirp reported.
    pub guest_errors: AtomicU64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "in {} frames ({} bytes), out {} frames ({} bytes), garbage dropped {}, other protocols ignored {}, out dropped {}, guest errors {}",
            g(&self.frames_in),
            g(&self.bytes_in),
            g(&self.frames_out),
            g(&self.bytes_out),
            g(&self.garbage),
            g(&self.ignored),
            g(&self.dropped_out),
            g(&self.guest_errors)
        )
    }
}

/// What a frame from a guest is, before libslirp sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// ARP, IPv4 or IPv6 with a plausible header: for libslirp.
    Ip,
    /// Malformed: dropped and counted.
    Garbage,
    /// Another protocol: ignored.
    Other,
}

/// Sorts a guest's frame: libslirp gets only ARP, IPv4 and IPv6 frames
/// whose headers fit in the frame and carry the right version.
pub fn classify(f: &[u8]) -> Class {
    if f.len() < 14 {
        return Class::Garbage;
    }
    let p = &f[14..];
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0806 => {
            if p.len() < 28 {
                Class::Garbage
            } else {
                Class::Ip
            }
        }
        0x0800 => {
            if p.len() < 20 || p[0] >> 4 != 4 {
                return Class::Garbage;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || ihl > p.len() || total < ihl || total > p.len() {
                Class::Garbage
            } else {
                Class::Ip
            }
        }
        0x86dd => {
            if p.len() < 40 || p[0] >> 4 != 6 {
                return Class::Garbage;
            }
            let payload = usize::from(u16::from_be_bytes([p[4], p[5]]));
            if 40 + payload > p.len() {
                Class::Garbage
            } else {
                Class::Ip
            }
        }
        _ => Class::Other,
    }
}

/// The packet socket a router reads the guests' frames from and writes
/// theirs to (a connected datagram socket, or one end of a seqpacket
/// pair), with whatever keeps it open.
pub struct Port {
    pub fd: RawFd,
    /// A seqpacket end: a read of 0 bytes means the other end closed.
    pub seqpacket: bool,
    /// Owns `fd` (an `OwnedFd`, the plug it belongs to…); dropped when the
    /// router's thread ends.
    pub keep: Box<dyn Any + Send>,
}

/// A running router: its thread, and the counters.
pub struct Router {
    #[cfg_attr(not(feature = "slirp"), allow(dead_code))]
    stop: UnixDatagram,
    #[cfg_attr(not(feature = "slirp"), allow(dead_code))]
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<Stats>,
}

#[cfg(not(feature = "slirp"))]
impl Router {
    pub fn stop(&mut self) {}
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a router on its own thread; returns once libslirp is set up
/// (port forwards bound), or why it could not be.
pub fn start(settings: &Settings, port: Port) -> Result<Router, String> {
    #[cfg(feature = "slirp")]
    {
        engine::start(settings, port)
    }
    #[cfg(not(feature = "slirp"))]
    {
        let _ = (settings, port);
        Err(FEATURE_MISSING.into())
    }
}

/// libslirp's version, when this build has it.
pub fn libslirp_version() -> Option<String> {
    #[cfg(feature = "slirp")]
    {
        Some(ffi::version())
    }
    #[cfg(not(feature = "slirp"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(t: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_are_sorted() {
        assert_eq!(classify(&[0u8; 13]), Class::Garbage);
        assert_eq!(classify(&eth(0x0806, &[0; 28])), Class::Ip);
        assert_eq!(classify(&eth(0x0806, &[0; 27])), Class::Garbage);
        let mut ip = vec![0x45, 0, 0, 20];
        ip.resize(20, 0);
        assert_eq!(classify(&eth(0x0800, &ip)), Class::Ip);
        // padding after the packet is fine; a length past the frame is not
        let mut padded = ip.clone();
        padded.resize(46, 0);
        assert_eq!(classify(&eth(0x0800, &padded)), Class::Ip);
        ip[3] = 40;
        assert_eq!(classify(&eth(0x0800, &ip)), Class::Garbage);
        ip[3] = 20;
        ip[0] = 0x65;
        assert_eq!(classify(&eth(0x0800, &ip)), Class::Garbage);
        ip[0] = 0x4f; // header longer than the packet
        assert_eq!(classify(&eth(0x0800, &ip)), Class::Garbage);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8];
        v6.resize(48, 0);
        assert_eq!(classify(&eth(0x86dd, &v6)), Class::Ip);
        v6[5] = 9;
        assert_eq!(classify(&eth(0x86dd, &v6)), Class::Garbage);
        assert_eq!(classify(&eth(0x88cc, &[1, 2, 3])), Class::Other);
    }

    #[cfg(not(feature = "slirp"))]
    #[test]
    fn without_the_feature_start_names_it() {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
        let e = start(
            &Settings::default(),
            Port {
                fd,
                seqpacket: false,
                keep: Box::new(a),
            },
        )
        .err()
        .unwrap();
        assert!(e.contains("feature `slirp`"), "{e}");
    }
}
