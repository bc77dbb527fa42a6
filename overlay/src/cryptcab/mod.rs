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
pub mod diag;
pub mod dial;
pub mod listen;
pub mod server;
pub mod ssh;
pub mod ticket;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

pub use vde_crypto::{Config, Psk, Stats, Suite, Suites};

/// The UDP port both ends use by default (the C tool's).
pub const DEFAULT_PORT: u16 = 7667;

/// Receive buffer asked for on the cable socket.
const RCVBUF: usize = 4 << 20;

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
    /// Sends several frames (one system call where the link can).
    fn send_batch(&self, frames: &[&[u8]]) {
        for f in frames {
            let _ = self.send(f);
        }
    }
    /// Blocks for one frame like [`Link::recv`], then takes what else is
    /// already waiting, up to `bufs.len()`; returns how many (`lens`).
    fn recv_batch(&self, bufs: &mut [Slot], lens: &mut [usize]) -> io::Result<usize> {
        match (bufs.first_mut(), lens.first_mut()) {
            (Some(b), Some(l)) => {
                *l = self.recv(b)?;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Largest frame a cable carries (jumbo frames fit); longer ones read from
/// a switch are dropped.
pub const MAX_FRAME: usize = 9216;

/// Room for one frame or one sealed datagram in a batch, with a margin so
/// that a longer datagram shows up as too long instead of fitting exactly.
pub const SLOT: usize = MAX_FRAME + vde_crypto::OVERHEAD + 64;
pub type Slot = [u8; SLOT];

/// Frames moved per batch.
pub const BATCH: usize = 32;

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

/// Buffers to move up to [`BATCH`] datagrams or frames per system call.
struct Batch {
    bufs: Vec<Slot>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    /// Sealed datagrams or opened frames, one per slot.
    outs: Vec<Vec<u8>>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: vec![[0u8; SLOT]; BATCH],
            lens: [0; BATCH],
            from: [None; BATCH],
            outs: (0..BATCH).map(|_| Vec::with_capacity(2048)).collect(),
        }
    }

    /// Receives datagrams from a UDP socket: waits (up to the socket's
    /// timeout) for the first, takes the rest that are queued.
    fn recv_udp(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        crate::sys::recv_from_batch(
            sock.as_raw_fd(),
            &mut self.bufs,
            &mut self.lens,
            &mut self.from,
            true,
        )
    }
}

/// Sends `outs[idx]` for each index, batched: to `to`, or on the connected
/// socket when `to` is None. What the kernel refuses at once (full buffer)
/// is sent one by one, blocking.
fn send_udp(sock: &UdpSocket, outs: &[Vec<u8>], idx: &[usize], to: Option<SocketAddr>) {
    let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
    let n = idx.len().min(BATCH);
    for (r, &i) in refs.iter_mut().zip(idx) {
        *r = &outs[i];
    }
    let mut rest = &refs[..n];
    while !rest.is_empty() {
        let sent = match to {
            Some(a) => crate::sys::send_to_batch(sock.as_raw_fd(), rest, a),
            None => crate::sys::send_batch(sock.as_raw_fd(), rest),
        };
        match sent {
            Ok(k) if k > 0 => rest = &rest[k..],
            _ => {
                for d in rest {
                    let _ = match to {
                        Some(a) => sock.send_to(d, a),
                        None => sock.send(d),
                    };
                }
                return;
            }
        }
    }
}

/// Hands `outs[idx]` to a switch port in one batch.
fn deliver(link: &dyn Link, outs: &[Vec<u8>], idx: &[usize]) {
    let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
    let n = idx.len().min(BATCH);
    for (r, &i) in refs.iter_mut().zip(idx) {
        *r = &outs[i];
    }
    link.send_batch(&refs[..n]);
}

/// A receive that only timed out or was interrupted.
fn idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

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
