//! cryptcab: authenticated, encrypted UDP cables between vde switches.
//!
//! The protocol is vde-crypto's (sans-IO, in `crypto/`); this module is
//! its IO shell as two [`FrameEndpoint`](crate::endpoint::FrameEndpoint)s:
//! [`dial::Dial`] (a cable to one server) and [`listen::Listen`] (a UDP
//! port taking any number of cables, a link each), with the ssh key
//! exchange ([`ssh`]), the ticket side channel ([`ticket`]) and the
//! diagnostics of failed handshakes ([`diag`]). The owner's poll loop
//! drives them: a switch hosting cables as ports, or vde_cryptcab's relay
//! to a switch's ports.

pub mod client;
pub mod diag;
pub mod dial;
pub mod identity;
pub mod listen;
pub mod server;
pub mod ssh;
pub mod ticket;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

pub use vde_crypto::{Config, Fingerprint, Identity, Psk, PublicKey, Stats, Suite, Suites};

/// The UDP port both ends use by default (the C tool's).
pub const DEFAULT_PORT: u16 = 7667;

/// Receive buffer asked for on the cable socket.
const RCVBUF: usize = 4 << 20;

/// Largest frame a cable carries (jumbo frames fit); longer ones read from
/// a switch are dropped.
pub const MAX_FRAME: usize = 9216;

/// Room for one frame or one sealed datagram in a batch, with a margin so
/// that a longer datagram shows up as too long instead of fitting exactly.
pub const SLOT: usize = MAX_FRAME + vde_crypto::OVERHEAD + 64;
pub type Slot = [u8; SLOT];

/// Frames moved per batch.
pub const BATCH: usize = 32;

/// What the binary tells a running cable: stop, or log the counters.
#[derive(Debug, Default)]
pub struct Control {
    pub stop: AtomicBool,
    pub report: AtomicBool,
}

impl Control {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether a report was asked for since the last call.
    pub fn take_report(&self) -> bool {
        self.report.swap(false, Ordering::Relaxed)
    }
}

fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A UDP socket bound to `port` on the wildcard address of `family`
/// (IPv6 sockets also take IPv4 unless `v6only`).
fn bind_udp(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ip.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    let _ = s.set_recv_buffer_size(RCVBUF);
    let _ = s.set_send_buffer_size(RCVBUF);
    s.bind(&SocketAddr::new(ip, port).into()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot bind UDP port {port} on {ip}: {e} (another cable on that port? use -p)"
            ),
        )
    })?;
    Ok(s.into())
}

fn any_v6() -> IpAddr {
    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}

fn any_v4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// The counters of a cable end on one line, for the log.
pub fn stats_line(s: &Stats) -> String {
    format!(
        "packets in {} out {}, bytes in {} out {}, handshakes {}, rekeys {}, dropped {}{}",
        s.packets_in,
        s.packets_out,
        s.bytes_in,
        s.bytes_out,
        s.handshakes_completed,
        s.rekeys,
        s.dropped_total(),
        {
            let parts: Vec<String> = drops_of(s)
                .iter()
                .map(|(d, n)| format!("{d}: {n}"))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        }
    )
}

pub(crate) use crate::udpio::UdpIo;

/// The WAN path MTU assumed for MSS clamping unless told otherwise.
pub const DEFAULT_MTU: u16 = 1500;

/// The largest frame whose sealed datagram fits in one packet of a path
/// with this MTU to a peer of this family (`None`: clamping is off).
fn max_frame(mtu: u16, peer: SocketAddr) -> Option<usize> {
    let outer = if plain(peer).is_ipv4() { 20 } else { 40 } + 8 + vde_crypto::OVERHEAD;
    (mtu > 0).then(|| usize::from(mtu).saturating_sub(outer))
}

/// Seals `f`, first clamping the MSS of a TCP SYN to fit `max` (a copy in
/// `scratch`: the switch's frame stays as it is for its other ports).
fn clamped<'a>(f: &'a [u8], max: Option<usize>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    match max {
        Some(m) if crate::mss::is_syn(f) => {
            scratch.clear();
            scratch.extend_from_slice(f);
            crate::mss::clamp(scratch, m);
            scratch
        }
        _ => f,
    }
}

/// Frames sealed and sent per call: a GSO send's worth.
const SEAL_BATCH: usize = crate::sys::MAX_SEGMENTS;

/// The non-zero drop counters of `s`, by reason.
pub fn drops_of(s: &Stats) -> Vec<(String, u64)> {
    vde_crypto::Drop::ALL
        .iter()
        .filter(|d| s.count(**d) > 0)
        .map(|d| (d.to_string(), s.count(*d)))
        .collect()
}

/// An IPv4 peer as IPv4 (a dual-stack socket reports it v4-mapped).
pub fn plain(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// Hex of a cable id, for messages.
pub fn id_hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
