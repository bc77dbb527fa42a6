//! The plain UDP cable of libvdeplug4 (`udp://`): each datagram is one raw
//! Ethernet frame, no header. The socket accepts any sender until the
//! first send, which connects it to the destination (then the kernel
//! filters other senders), as the C plugin does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::endpoint::{EndpointEvent, EndpointStatus, FrameEndpoint, LinkId, LinkStatus, RxBatch};

/// Receive buffer asked for on a cable's socket.
pub const RCVBUF: usize = 4 << 20;

/// `[SRCADDR:]SRCPORT->DSTADDR:DSTPORT`, hosts unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSpec {
    pub src_host: Option<String>,
    pub src_port: u16,
    pub dst_host: String,
    pub dst_port: u16,
}

/// Splits `HOST:PORT` at the last `:` (IPv6 literals need no brackets).
fn host_port(s: &str, what: &str) -> Result<(Option<String>, u16), String> {
    let (host, port) = match s.rfind(':') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{what} port {port:?} is not a number from 0 to 65535"))?;
    let host = host.map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
    Ok((host.filter(|h| !h.is_empty()), port))
}

impl FromStr for UdpSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (src, dst) = s
            .split_once("->")
            .ok_or_else(|| "expected [SRCADDR:]SRCPORT->DSTADDR:DSTPORT".to_string())?;
        let (src_host, src_port) = host_port(src, "source")?;
        let (dst_host, dst_port) = host_port(dst, "destination")?;
        let dst_host = dst_host.ok_or_else(|| "the destination needs an address".to_string())?;
        Ok(UdpSpec {
            src_host,
            src_port,
            dst_host,
            dst_port,
        })
    }
}

/// An open UDP cable end.
pub struct UdpCable {
    sock: UdpSocket,
    dst: SocketAddr,
    connected: AtomicBool,
    /// Datagrams received that were not frames (empty).
    pub dropped: AtomicU64,
}

fn resolve(host: &str, port: u16, want: Option<bool>) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .find(|a| want.is_none_or(|v6| a.is_ipv6() == v6))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {host}")))
}

impl UdpCable {
    pub fn open(spec: &UdpSpec) -> io::Result<UdpCable> {
        let dst = resolve(&spec.dst_host, spec.dst_port, None)?;
        let src = match &spec.src_host {
            Some(h) => resolve(h, spec.src_port, Some(dst.is_ipv6()))?,
            None if dst.is_ipv6() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), spec.src_port)
            }
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), spec.src_port),
        };
        let sock = UdpSocket::bind(src)?;
        // Loopback and LAN UDP cannot push back on a sender: a receive
        // buffer that absorbs bursts is all that stands between a burst and
        // a kernel drop (the kernel caps the request at net.core.rmem_max).
        let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(RCVBUF);
        Ok(UdpCable {
            sock,
            dst,
            connected: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if !self.connected.load(Ordering::Acquire) {
            self.sock.connect(self.dst)?;
            self.connected.store(true, Ordering::Release);
        }
        self.sock.send(frame).map(|_| ())
    }

    /// Next frame; empty datagrams are counted and skipped.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = match self.sock.recv(buf) {
                Ok(n) => n,
                // a connected UDP socket reports the peer's ICMP errors
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Ok(n);
        }
    }
}

/// A `udp://` cable as a [`FrameEndpoint`]: one link (0), up from the
/// start, its socket connected to the destination (the kernel filters
/// other senders), runs of equal frames sent with UDP GSO and received
/// with GRO where the kernel has them.
pub struct UdpEndpoint {
    sock: UdpSocket,
    io: crate::udpio::UdpIo,
    up_told: bool,
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    dropped_in: u64,
    dropped_out: u64,
}

impl UdpEndpoint {
    pub fn open(spec: &UdpSpec) -> io::Result<UdpEndpoint> {
        let cable = UdpCable::open(spec)?;
        cable.sock.connect(cable.dst)?;
        cable.sock.set_nonblocking(true)?;
        let _ = socket2::SockRef::from(&cable.sock).set_send_buffer_size(RCVBUF);
        let io = crate::udpio::UdpIo::new(&cable.sock);
        Ok(UdpEndpoint {
            sock: cable.sock,
            io,
            up_told: false,
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            dropped_in: 0,
            dropped_out: 0,
        })
    }
}

impl FrameEndpoint for UdpEndpoint {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, _now: Instant) -> io::Result<usize> {
        let cap = rx.capacity();
        let mut n = 0;
        while n < cap {
            let d = match self.io.next() {
                Ok(Some(d)) => d,
                Ok(None) if n == 0 => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(None) => break,
                // the peer's ICMP errors: reported once each, nothing lost
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(e),
            };
            let bytes = self.io.bytes(d);
            if bytes.is_empty() || !rx.put(n, 0, bytes) {
                self.dropped_in += 1;
                continue;
            }
            self.frames_in += 1;
            self.bytes_in += bytes.len() as u64;
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, _link: LinkId, frames: &[&[u8]], _now: Instant) -> usize {
        let sent = self.io.send(frames, None);
        self.frames_out += sent as u64;
        self.bytes_out += frames[..sent].iter().map(|f| f.len() as u64).sum::<u64>();
        self.dropped_out += (frames.len() - sent) as u64;
        frames.len()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_event(&mut self) -> Option<EndpointEvent> {
        if self.up_told {
            return None;
        }
        self.up_told = true;
        Some(EndpointEvent::Up {
            link: 0,
            peer: self
                .sock
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        })
    }

    fn close_link(&mut self, _link: LinkId, _now: Instant) {}

    fn close(&mut self, _now: Instant) {}

    fn status(&self, _now: Instant) -> EndpointStatus {
        let mut drops = Vec::new();
        if self.dropped_in > 0 {
            drops.push(("empty or too long".to_string(), self.dropped_in));
        }
        if self.dropped_out > 0 {
            drops.push(("not sent".to_string(), self.dropped_out));
        }
        EndpointStatus {
            role: "dial",
            local: self.sock.local_addr().ok(),
            state: "up".into(),
            links: vec![LinkStatus {
                link: 0,
                up: true,
                peer: self.sock.peer_addr().ok(),
                frames_in: self.frames_in,
                frames_out: self.frames_out,
                bytes_in: self.bytes_in,
                bytes_out: self.bytes_out,
                drops,
                ..LinkStatus::default()
            }],
            drops: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_forms() {
        let s: UdpSpec = "5000->127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            (s.src_host, s.src_port, s.dst_host.as_str(), s.dst_port),
            (None, 5000, "127.0.0.1", 6000)
        );
        let s: UdpSpec = "127.0.0.1:5000->localhost:6000".parse().unwrap();
        assert_eq!(s.src_host.as_deref(), Some("127.0.0.1"));
        let s: UdpSpec = "::1:5000->::1:6000".parse().unwrap();
        assert_eq!(
            (s.src_host.as_deref(), s.dst_host.as_str()),
            (Some("::1"), "::1")
        );
        for bad in [
            "5000",
            "5000->6000",
            "x->127.0.0.1:1",
            "1->127.0.0.1:99999",
            "->",
        ] {
            assert!(bad.parse::<UdpSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_cross_loopback_and_empty_datagrams_are_skipped() {
        let b = UdpCable::open(&"127.0.0.1:0->127.0.0.1:1".parse().unwrap()).unwrap();
        let pb = b.local_addr().unwrap().port();
        let a = UdpCable::open(&format!("127.0.0.1:0->127.0.0.1:{pb}").parse().unwrap()).unwrap();
        // before its first send, b accepts any sender
        let stray = UdpSocket::bind("127.0.0.1:0").unwrap();
        stray.send_to(&[], ("127.0.0.1", pb)).unwrap();
        a.send(&[7u8; 60]).unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(b.recv(&mut buf).unwrap(), 60);
        assert_eq!(&buf[..60], &[7u8; 60]);
        assert_eq!(b.dropped.load(Ordering::Relaxed), 1);
    }
}
