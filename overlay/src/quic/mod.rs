//! QUIC cables: Ethernet frames in QUIC DATAGRAMs (RFC 9221) between vde
//! switches, on one UDP port, with mutual TLS 1.3 pinned by certificate
//! fingerprint.
//!
//! Layers, one file each: [`frag`] (the datagram format, fragmentation
//! and reassembly), [`tls`] (certificates, pins, verifiers), [`handoff`]
//! (frames from the tokio thread to the switch's loop), and here the
//! [`Quic`] [`FrameEndpoint`]: a dialer (one link, 0, that reconnects by
//! itself) or a listener (one link per peer).
//!
//! A tokio runtime on a thread of its own runs the quinn endpoint: it
//! dials or accepts, reads datagrams, reassembles frames and queues them
//! in the [`handoff::Handoff`] whose eventfd the switch's loop polls.
//! Frames the switch sends go out from the loop's thread through
//! `Connection::send_datagram`, copied into a shared arena (`BytesMut`
//! split into `Bytes`: one allocation per [`ARENA`] bytes, not per frame).
//!
//! QUIC keeps the link alive: PINGs every `dead / 4`, and an idle timeout
//! of `dead` (1 s by default, as cryptcab's) takes it down. The server
//! accepts a client's new address (connection migration), so a NAT that
//! rebinds the client's port keeps the cable up.

pub mod frag;
pub mod handoff;
pub mod tls;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::{ConnectionError, SendDatagramError};

use crate::endpoint::{EndpointEvent, EndpointStatus, FrameEndpoint, LinkId, LinkStatus, RxBatch};
use frag::Datagram;
use handoff::Handoff;
use tls::{Certified, Fingerprint, Pins};

/// The UDP port of a QUIC cable by default (HTTP/3's: firewalls tend to
/// let it through).
pub const DEFAULT_PORT: u16 = 443;
/// The default dead-peer time (cryptcab's).
pub const DEFAULT_DEAD: Duration = Duration::from_secs(1);
/// Bytes of outgoing datagrams allocated at once.
pub const ARENA: usize = 256 * 1024;
/// What the server says on its control stream once it accepted a client.
const HELLO: &[u8] = b"vde-quic/1 ok";
/// UDP socket buffers asked for.
const SOCKBUF: usize = 4 << 20;
/// Bytes a QUIC short-header packet adds around a DATAGRAM frame at most
/// (flags, connection id, packet number, AEAD tag, frame header).
const QUIC_OVERHEAD: usize = 48;
/// At most one log line per this long about the same failure.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What a cable does.
#[derive(Debug, Clone)]
pub enum Role {
    /// Dial `host:port` from local UDP port `local_port` (0: any).
    Dial {
        host: String,
        port: u16,
        local_port: u16,
    },
    /// Listen on UDP `port` (both IPv6 and IPv4 where it can).
    Listen { port: u16 },
}

/// How to open a QUIC cable.
pub struct Options {
    pub role: Role,
    /// This node's certificate and key.
    pub cert: Certified,
    /// The peers' certificates it accepts.
    pub pins: Arc<Pins>,
    /// Nothing heard for this long takes a link down.
    pub dead_after: Duration,
    /// The path MTU for TCP MSS clamping and MTU discovery (0: clamping
    /// off, discovery up to quinn's default).
    pub mtu: u16,
}

/// Receive-side counters of a link, kept by the tokio thread.
#[derive(Debug, Default)]
struct RxCounters {
    frames: AtomicU64,
    bytes: AtomicU64,
    malformed: AtomicU64,
    timed_out: AtomicU64,
    evicted: AtomicU64,
    inconsistent: AtomicU64,
    queue_full: AtomicU64,
}

/// What the tokio thread tells the loop besides frames.
enum Note {
    Up {
        link: LinkId,
        conn: quinn::Connection,
        identity: Fingerprint,
        rx: Arc<RxCounters>,
    },
    Down {
        link: LinkId,
        why: String,
    },
}

/// State both threads see.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Handshakes refused for a certificate not pinned (either side).
    refused: AtomicU64,
    /// Other failed handshakes.
    failed: AtomicU64,
    next_link: AtomicU64,
    state: Mutex<String>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn set_state(&self, s: &str) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.clear();
        g.push_str(s);
    }

    fn state(&self) -> String {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One link as the loop sees it.
struct Link {
    conn: Option<quinn::Connection>,
    peer: SocketAddr,
    identity: Fingerprint,
    rx: Arc<RxCounters>,
    frames_out: u64,
    bytes_out: u64,
    not_sent: u64,
    too_long: u64,
}

/// A QUIC cable: a dialer or a listener.
pub struct Quic {
    role: &'static str,
    handoff: Arc<Handoff<Note>>,
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    local: Option<SocketAddr>,
    links: BTreeMap<LinkId, Link>,
    events: VecDeque<EndpointEvent>,
    notes: Vec<Note>,
    arena: BytesMut,
    next_id: u32,
    /// Frames longer than a receive slot.
    rx_too_long: u64,
    /// The largest frame that fits one datagram of the path (for MSS
    /// clamping), by address family; `None`: clamping is off.
    max_frame: Option<(usize, usize)>,
    scratch: Vec<u8>,
    closed: bool,
}

fn plain(a: SocketAddr) -> SocketAddr {
    crate::cryptcab::plain(a)
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot resolve {host}: no address"),
            )
        })
}

fn bind(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ip.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    let _ = s.set_recv_buffer_size(SOCKBUF);
    let _ = s.set_send_buffer_size(SOCKBUF);
    s.bind(&SocketAddr::new(ip, port).into()).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::PermissionDenied && port < 1024 {
            " (a port below 1024 needs root: give another, e.g. quic://:4433)"
        } else {
            " (another cable on that port?)"
        };
        io::Error::new(
            e.kind(),
            format!("cannot bind UDP port {port} on {ip}: {e}{hint}"),
        )
    })?;
    Ok(s.into())
}

/// quinn's transport settings for a cable.
fn transport(dead: Duration, mtu: u16, v6: bool) -> io::Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(dead)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "dead time out of range"))?;
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(dead / 4))
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(1u32.into())
        .datagram_receive_buffer_size(Some(4 << 20))
        .datagram_send_buffer_size(1 << 20)
        // BBR paces to the path's measured rate instead of backing off on
        // every loss: the TCP carried inside reacts to losses already
        .congestion_controller_factory(
            std::sync::Arc::new(quinn::congestion::BbrConfig::default()),
        );
    if mtu > 0 {
        let mut m = quinn::MtuDiscoveryConfig::default();
        let udp = usize::from(mtu).saturating_sub(if v6 { 48 } else { 28 });
        m.upper_bound(udp.clamp(1200, 65527) as u16);
        t.mtu_discovery_config(Some(m));
    }
    Ok(t)
}

/// Says what a failed or ended connection means.
fn describe(e: &ConnectionError, ours: &Fingerprint) -> String {
    match e {
        ConnectionError::TransportError(t) if t.reason.contains("not pinned") => {
            format!("{} (pin= it if it is right)", t.reason)
        }
        ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => format!(
            "the peer refused the handshake ({}): is our certificate {ours} pinned there?",
            c.error_code
        ),
        ConnectionError::TimedOut => "no answer (no QUIC cable there, or UDP blocked?)".into(),
        ConnectionError::ApplicationClosed(_) => "closed by the peer".into(),
        ConnectionError::LocallyClosed => "closed here".into(),
        ConnectionError::Reset => "reset by the peer (restarted?)".into(),
        other => other.to_string(),
    }
}

fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

fn refused(e: &ConnectionError) -> bool {
    match e {
        ConnectionError::TransportError(t) => t.reason.contains("not pinned"),
        ConnectionError::ConnectionClosed(c) => is_crypto(c.error_code),
        _ => false,
    }
}

/// The fingerprint of the certificate the peer showed.
fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| tls::fingerprint(c))
}

/// Reads datagrams of one connection until it ends; returns why.
async fn read_frames(
    conn: &quinn::Connection,
    link: LinkId,
    handoff: &Handoff<Note>,
    rx: &RxCounters,
    ours: &Fingerprint,
) -> String {
    let mut re = frag::Reassembly::new();
    let deliver = |f: &[u8]| {
        if f.is_empty() {
            rx.malformed.fetch_add(1, Ordering::Relaxed);
        } else if handoff.push_frame(link, f) {
            rx.frames.fetch_add(1, Ordering::Relaxed);
            rx.bytes.fetch_add(f.len() as u64, Ordering::Relaxed);
        } else {
            rx.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    };
    loop {
        let d = match conn.read_datagram().await {
            Ok(d) => d,
            Err(e) => return describe(&e, ours),
        };
        match frag::parse(&d) {
            Ok(Datagram::Whole(f)) => deliver(f),
            Ok(Datagram::Piece {
                id,
                index,
                count,
                total,
                piece,
            }) => {
                if let Some(f) = re.add(id, index, count, total, piece, Instant::now()) {
                    deliver(f);
                }
                let d = re.drops;
                rx.timed_out.store(d.timed_out, Ordering::Relaxed);
                rx.evicted.store(d.evicted, Ordering::Relaxed);
                rx.inconsistent.store(d.inconsistent, Ordering::Relaxed);
            }
            Err(e) => {
                rx.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dropped a datagram from {}: {e}", conn.remote_address());
            }
        }
    }
}

/// Logs a failure once per [`LOG_EVERY`] while it stays the same.
struct Quiet {
    last: String,
    at: Option<Instant>,
}

impl Quiet {
    fn say(&mut self, msg: String) {
        let now = Instant::now();
        if msg != self.last || self.at.is_none_or(|t| now >= t + LOG_EVERY) {
            tracing::warn!("{msg}");
            self.at = Some(now);
            self.last = msg;
        } else {
            tracing::debug!("{msg}");
        }
    }
}

/// The dialer's life: connect, carry frames, and when the connection ends
/// connect again, until told to stop.
async fn dial_loop(
    ep: quinn::Endpoint,
    server: SocketAddr,
    handoff: Arc<Handoff<Note>>,
    shared: Arc<Shared>,
    ours: Fingerprint,
    hello_wait: Duration,
) {
    let mut quiet = Quiet {
        last: String::new(),
        at: None,
    };
    let mut failures = 0usize;
    while !shared.stopping() {
        shared.set_state("connecting");
        let attempt = async {
            let conn = ep
                .connect(server, tls::SERVER_NAME)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| {
                    if refused(&e) {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    describe(&e, &ours)
                })?;
            // the server says it took our certificate before the link is up
            let hello = tokio::time::timeout(hello_wait, async {
                let mut s = conn.accept_uni().await.map_err(|e| {
                    if refused(&e) {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    describe(&e, &ours)
                })?;
                s.read_to_end(64).await.map_err(|e| e.to_string())
            })
            .await
            .map_err(|_| "the server did not confirm the handshake".to_string())??;
            if hello != HELLO {
                conn.close(1u32.into(), b"protocol");
                return Err("the server speaks another protocol".to_string());
            }
            Ok(conn)
        };
        match attempt.await {
            Ok(conn) => {
                failures = 0;
                quiet.last.clear();
                let identity = peer_fingerprint(&conn).unwrap_or(Fingerprint([0; 32]));
                tracing::info!("quic cable to {server} up (certificate {identity})");
                let rx = Arc::new(RxCounters::default());
                handoff.push_note(Note::Up {
                    link: 0,
                    conn: conn.clone(),
                    identity,
                    rx: rx.clone(),
                });
                shared.set_state("up");
                let why = read_frames(&conn, 0, &handoff, &rx, &ours).await;
                if !shared.stopping() {
                    tracing::warn!("quic cable to {server} down: {why}");
                }
                handoff.push_note(Note::Down { link: 0, why });
            }
            Err(e) => {
                failures += 1;
                if !shared.stopping() {
                    quiet.say(format!("quic cable to {server}: {e}; retrying"));
                }
            }
        }
        if shared.stopping() {
            break;
        }
        let wait = [100, 250, 500, 1000, 2000][failures.min(4)];
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// The listener's life: accept cables until the endpoint closes.
async fn accept_loop(
    ep: quinn::Endpoint,
    handoff: Arc<Handoff<Note>>,
    shared: Arc<Shared>,
    ours: Fingerprint,
) {
    let quiet = Arc::new(Mutex::new(Quiet {
        last: String::new(),
        at: None,
    }));
    while let Some(incoming) = ep.accept().await {
        let (handoff, shared, quiet) = (handoff.clone(), shared.clone(), quiet.clone());
        tokio::spawn(async move {
            let from = plain(incoming.remote_address());
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    if refused(&e) {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    let msg = format!("refused a quic cable from {from}: {}", describe(&e, &ours));
                    quiet.lock().unwrap_or_else(|e| e.into_inner()).say(msg);
                    return;
                }
            };
            let Some(identity) = peer_fingerprint(&conn) else {
                conn.close(1u32.into(), b"no certificate");
                return;
            };
            let said = async {
                let mut s = conn.open_uni().await.ok()?;
                s.write_all(HELLO).await.ok()?;
                s.finish().ok()
            };
            if said.await.is_none() {
                return;
            }
            let link = shared.next_link.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!("quic cable {link} from {from} up (certificate {identity})");
            let rx = Arc::new(RxCounters::default());
            handoff.push_note(Note::Up {
                link,
                conn: conn.clone(),
                identity,
                rx: rx.clone(),
            });
            let why = read_frames(&conn, link, &handoff, &rx, &ours).await;
            if !shared.stopping() {
                tracing::warn!(
                    "quic cable {link} from {} down: {why}",
                    plain(conn.remote_address())
                );
            }
            handoff.push_note(Note::Down { link, why });
        });
    }
}

impl Quic {
    /// Binds the UDP port and starts the tokio thread. A dialer connects
    /// in the background (its link comes up when the handshake is done).
    pub fn open(opts: Options) -> io::Result<Quic> {
        let ours = opts.cert.fingerprint();
        let (sock, server, v6) = match &opts.role {
            Role::Dial {
                host,
                port,
                local_port,
            } => {
                let server = resolve(host, *port)?;
                let any: IpAddr = if server.is_ipv6() {
                    Ipv6Addr::UNSPECIFIED.into()
                } else {
                    Ipv4Addr::UNSPECIFIED.into()
                };
                (bind(any, *local_port)?, Some(server), server.is_ipv6())
            }
            Role::Listen { port } => {
                let s = bind(Ipv6Addr::UNSPECIFIED.into(), *port)
                    .or_else(|_| bind(Ipv4Addr::UNSPECIFIED.into(), *port))?;
                (s, None, false)
            }
        };
        let transport = Arc::new(transport(opts.dead_after, opts.mtu, v6)?);
        let quic_err = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let server_config = match server {
            Some(_) => None,
            None => {
                let t = tls::server_config(&opts.cert, opts.pins.clone())?;
                let q = quinn::crypto::rustls::QuicServerConfig::try_from(t)
                    .map_err(|e| quic_err(e.to_string()))?;
                let mut c = quinn::ServerConfig::with_crypto(Arc::new(q));
                c.transport_config(transport.clone()).migration(true);
                Some(c)
            }
        };
        let client_config = match server {
            Some(_) => {
                let t = tls::client_config(&opts.cert, opts.pins.clone())?;
                let q = quinn::crypto::rustls::QuicClientConfig::try_from(t)
                    .map_err(|e| quic_err(e.to_string()))?;
                let mut c = quinn::ClientConfig::new(Arc::new(q));
                c.transport_config(transport.clone());
                Some(c)
            }
            None => None,
        };
        let handoff = Arc::new(Handoff::new()?);
        let shared = Arc::new(Shared::default());
        shared.set_state(if server.is_some() {
            "connecting"
        } else {
            "0 cables"
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let (h, sh) = (handoff.clone(), shared.clone());
        let hello_wait = opts.dead_after * 2 + Duration::from_secs(1);
        std::thread::Builder::new()
            .name("quic".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let made = quinn::Endpoint::new(
                        quinn::EndpointConfig::default(),
                        server_config,
                        sock,
                        Arc::new(quinn::TokioRuntime),
                    );
                    let mut ep = match made {
                        Ok(ep) => ep,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    if let Some(c) = client_config {
                        ep.set_default_client_config(c);
                    }
                    let _ = tx.send(Ok(ep.clone()));
                    match server {
                        Some(s) => dial_loop(ep.clone(), s, h, sh, ours, hello_wait).await,
                        None => accept_loop(ep.clone(), h, sh, ours).await,
                    }
                    // let the goodbyes go out
                    let _ = tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
                });
            })?;
        let endpoint = rx
            .recv()
            .map_err(|_| io::Error::other("the quic thread did not start"))??;
        let local = endpoint.local_addr().ok().map(plain);
        match server {
            Some(s) => tracing::info!("quic cable dialing {s} (our certificate {ours})"),
            None => tracing::info!(
                "quic cable listening on UDP {} (our certificate {ours}, {} pinned)",
                local.map_or(0, |a| a.port()),
                opts.pins.len()
            ),
        }
        let max_frame = (opts.mtu > 0).then(|| {
            let m = usize::from(opts.mtu);
            let f = |ip: usize| m.saturating_sub(ip + 8 + QUIC_OVERHEAD + frag::WHOLE_HEADER);
            (f(20), f(40))
        });
        Ok(Quic {
            role: if server.is_some() { "dial" } else { "listen" },
            handoff,
            shared,
            endpoint,
            local,
            links: BTreeMap::new(),
            events: VecDeque::new(),
            notes: Vec::new(),
            arena: BytesMut::with_capacity(ARENA),
            next_id: 0,
            rx_too_long: 0,
            max_frame,
            scratch: Vec::new(),
            closed: false,
        })
    }

    /// The local UDP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Turns what the tokio thread said into link events.
    fn take_notes(&mut self) {
        self.handoff.take_notes(&mut self.notes);
        for n in self.notes.drain(..) {
            match n {
                Note::Up {
                    link,
                    conn,
                    identity,
                    rx,
                } => {
                    if self.closed {
                        conn.close(0u32.into(), b"closed");
                        continue;
                    }
                    let peer = plain(conn.remote_address());
                    self.links.insert(
                        link,
                        Link {
                            conn: Some(conn),
                            peer,
                            identity,
                            rx,
                            frames_out: 0,
                            bytes_out: 0,
                            not_sent: 0,
                            too_long: 0,
                        },
                    );
                    self.events.push_back(EndpointEvent::Up {
                        link,
                        peer: peer.to_string(),
                    });
                }
                Note::Down { link, why } => {
                    let Some(l) = self.links.get_mut(&link) else {
                        continue;
                    };
                    if let Some(c) = l.conn.take() {
                        l.peer = plain(c.remote_address());
                        self.events.push_back(EndpointEvent::Down { link, why });
                    }
                    if self.role == "listen" {
                        self.links.remove(&link);
                    }
                }
            }
        }
    }

    /// One datagram from `parts`, copied into the arena.
    fn datagram(arena: &mut BytesMut, parts: &[&[u8]]) -> Bytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if arena.capacity() - arena.len() < len {
            arena.reserve(ARENA.max(len));
        }
        for p in parts {
            arena.extend_from_slice(p);
        }
        arena.split().freeze()
    }
}

impl FrameEndpoint for Quic {
    fn fd(&self) -> RawFd {
        self.handoff.fd()
    }

    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, _now: Instant) -> io::Result<usize> {
        self.take_notes();
        self.handoff.take(rx, &mut self.rx_too_long)
    }

    fn send_batch(&mut self, link: LinkId, frames: &[&[u8]], _now: Instant) -> usize {
        let Some(l) = self.links.get_mut(&link) else {
            return frames.len();
        };
        let Some(conn) = &l.conn else {
            l.not_sent += frames.len() as u64;
            return frames.len();
        };
        let Some(max) = conn.max_datagram_size() else {
            l.not_sent += frames.len() as u64;
            return frames.len();
        };
        let clamp = self
            .max_frame
            .map(|(v4, v6)| if l.peer.is_ipv4() { v4 } else { v6 });
        let (mut too_long, mut not_sent) = (0u64, 0u64);
        let (mut frames_out, mut bytes_out) = (0u64, 0u64);
        for f in frames {
            let f: &[u8] = match clamp {
                Some(m) if crate::mss::is_syn(f) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(f);
                    crate::mss::clamp(&mut self.scratch, m);
                    &self.scratch
                }
                _ => f,
            };
            let mut send = |d: Bytes| match conn.send_datagram(d) {
                Ok(()) => true,
                Err(SendDatagramError::TooLarge) => {
                    too_long += 1;
                    false
                }
                Err(_) => {
                    not_sent += 1;
                    false
                }
            };
            let arena = &mut self.arena;
            let sent = match frag::pieces(f.len(), max) {
                None => {
                    too_long += 1;
                    false
                }
                Some(1) => send(Self::datagram(arena, &[&[frag::WHOLE][..], f])),
                Some(n) => {
                    let id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1);
                    (0..n).all(|i| {
                        let (h, (a, b)) = frag::piece_header(id, i, n, f.len());
                        send(Self::datagram(arena, &[&h[..], &f[a..b]]))
                    })
                }
            };
            if sent {
                frames_out += 1;
                bytes_out += f.len() as u64;
            }
        }
        l.too_long += too_long;
        l.not_sent += not_sent;
        l.frames_out += frames_out;
        l.bytes_out += bytes_out;
        frames.len()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        // quinn runs its own timers on the tokio thread
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.take_notes();
        self.events.pop_front()
    }

    fn close_link(&mut self, link: LinkId, now: Instant) {
        if self.role == "dial" {
            return self.close(now);
        }
        if let Some(c) = self.links.get_mut(&link).and_then(|l| l.conn.take()) {
            c.close(0u32.into(), b"closed");
            self.links.remove(&link);
            self.events.push_back(EndpointEvent::Down {
                link,
                why: "closed here".into(),
            });
        }
    }

    fn close(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shared.stop.store(true, Ordering::Release);
        self.shared.set_state("closed");
        for (link, l) in self.links.iter_mut() {
            if let Some(c) = l.conn.take() {
                c.close(0u32.into(), b"closed");
                self.events.push_back(EndpointEvent::Down {
                    link: *link,
                    why: "closed here".into(),
                });
            }
        }
        self.endpoint.close(0u32.into(), b"closed");
    }

    fn status(&self, _now: Instant) -> EndpointStatus {
        let queue_full_total = self.handoff.full_drops();
        let links: Vec<LinkStatus> = self
            .links
            .iter()
            .map(|(id, l)| {
                let r = &l.rx;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let mut drops = Vec::new();
                for (what, n) in [
                    ("malformed", get(&r.malformed)),
                    ("reassembly timed out", get(&r.timed_out)),
                    ("reassembly full", get(&r.evicted)),
                    ("reassembly inconsistent", get(&r.inconsistent)),
                    ("queue full", get(&r.queue_full)),
                    ("not sent", l.not_sent),
                    ("too long", l.too_long),
                ] {
                    if n > 0 {
                        drops.push((what.to_string(), n));
                    }
                }
                let (peer, rtt) = match &l.conn {
                    Some(c) => (plain(c.remote_address()), Some(c.rtt())),
                    None => (l.peer, None),
                };
                LinkStatus {
                    link: *id,
                    up: l.conn.is_some(),
                    peer: Some(peer),
                    name: None,
                    cipher: Some("quic/tls1.3".into()),
                    identity: Some(l.identity.to_string()),
                    last_heard: None,
                    rtt,
                    rekeys: 0,
                    frames_in: get(&r.frames),
                    frames_out: l.frames_out,
                    bytes_in: get(&r.bytes),
                    bytes_out: l.bytes_out,
                    drops,
                }
            })
            .collect();
        let mut drops = Vec::new();
        for (what, n) in [
            (
                "refused (certificate not pinned)",
                self.shared.refused.load(Ordering::Relaxed),
            ),
            (
                "handshakes failed",
                self.shared.failed.load(Ordering::Relaxed),
            ),
            ("too long for a slot", self.rx_too_long),
            ("queue full", queue_full_total),
        ] {
            if n > 0 {
                drops.push((what.to_string(), n));
            }
        }
        let state = if self.role == "listen" && !self.closed {
            format!("{} cables", links.iter().filter(|l| l.up).count())
        } else {
            self.shared.state()
        };
        EndpointStatus {
            role: self.role,
            local: self.local,
            state,
            links,
            drops,
        }
    }
}

impl Drop for Quic {
    fn drop(&mut self) {
        self.close(Instant::now());
    }
}
