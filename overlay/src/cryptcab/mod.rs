//! cryptcab: authenticated, encrypted UDP cables between vde switches.
//!
//! The protocol is vde-crypto's (sans-IO, in `crypto/`); this module is
//! its IO shell: a UDP socket, the ssh key exchange ([`ssh`]), the ticket
//! side channel ([`ticket`]), timers, and one local switch port per peer.
//! The local side is abstract ([`LocalSide`], [`Link`]) so this crate does
//! not depend on the switch client; the `vde` crate supplies it.
//!
//! Threads: one runs the UDP socket, the timers and the protocol's
//! receive side; each cable has one more that reads its switch port and
//! seals frames. The protocol state sits behind one mutex.

pub mod client;
pub mod server;
pub mod ssh;
pub mod ticket;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

pub use vde_crypto::{Config, Psk, Stats, Suite};

/// The UDP port both ends use by default (the C tool's).
pub const DEFAULT_PORT: u16 = 7667;

/// Receive buffer asked for on the cable socket.
const RCVBUF: usize = 4 << 20;

/// Largest frame read from a switch port.
pub const MAX_FRAME: usize = 16384;

/// One switch port carrying one cable's frames.
pub trait Link: Send + Sync {
    /// Sends a frame into the switch.
    fn send(&self, frame: &[u8]) -> io::Result<()>;
    /// Blocks for the next frame from the switch; an error ends the port
    /// (and must follow [`Link::close`] promptly).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Leaves the switch: the port goes away at once, so the spanning
    /// tree sees the cable as down.
    fn close(&self);
}

/// Where cables are plugged in: a switch, in practice.
pub trait LocalSide: Send + Sync {
    /// Opens a new port for a cable.
    fn attach(&self) -> io::Result<Box<dyn Link>>;
    /// Names the switch, for messages.
    fn name(&self) -> String;
}

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

    fn take_report(&self) -> bool {
        self.report.swap(false, Ordering::Relaxed)
    }
}

/// Monotonic time since the cable started, as the protocol wants it.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }

    fn now(&self) -> Duration {
        self.0.elapsed()
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
            let parts: Vec<String> = vde_crypto::Drop::ALL
                .iter()
                .filter(|d| s.count(**d) > 0)
                .map(|d| format!("{d}: {}", s.count(*d)))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        }
    )
}

/// A receive that only timed out or was interrupted.
fn idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Hex of a cable id, for messages.
pub fn id_hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
