//! The server end as a [`FrameEndpoint`]: one UDP port, any number of
//! cables, each its own link (and so its own switch port). In ssh mode a
//! thread serves the ticket socket and hands the tickets over through a
//! mutex that the endpoint empties before each batch.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vde_crypto::{
    Config, Identity, KeyId, KeySource, PeerId, Psk, PublicKey, Server, ServerEvent, ServerRecv,
};

use super::diag::AuthFailures;
use super::server::ServerKeys;
use super::ticket::TicketListener;
use super::{any_v4, any_v6, bind_udp, drops_of, id_hex, UdpIo, SEAL_BATCH};
use crate::endpoint::{EndpointEvent, EndpointStatus, FrameEndpoint, LinkId, LinkStatus, RxBatch};

/// How long a ticket nobody uses (or whose cable went down) is kept.
const TICKET_TTL: Duration = Duration::from_secs(60);
/// Tickets kept at once (announced, in use, or recently used).
const MAX_TICKETS: usize = 1024;
/// How often stale tickets are looked for.
const SWEEP: Duration = Duration::from_secs(1);

/// How to listen.
pub struct ListenOptions {
    /// The local UDP port.
    pub port: u16,
    pub keys: ServerKeys,
    /// This node's long-term key.
    pub identity: Identity,
    pub config: Config,
    /// The path MTU to the peers, for TCP MSS clamping (0: off).
    pub mtu: u16,
}

/// Tickets between the ticket thread and the endpoint.
#[derive(Default)]
struct Book {
    /// Announced, not yet given to the protocol: cable id, key, and the
    /// client identity that may use them.
    new: Vec<(KeyId, Psk, PublicKey)>,
    /// Every cable id announced and not forgotten (new, waiting or in use).
    known: HashMap<KeyId, ()>,
}

fn lock(m: &Mutex<Book>) -> MutexGuard<'_, Book> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Peer {
    addr: SocketAddr,
    key_id: KeyId,
    last_heard: Instant,
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    dropped: u64,
}

/// A cryptcab server.
pub struct Listen {
    sock: UdpSocket,
    server: Server,
    start: Instant,
    port: u16,
    book: Option<Arc<Mutex<Book>>>,
    /// Ticket ids given to the protocol, and when they were last in use.
    tickets: HashMap<KeyId, Duration>,
    ticket_stop: Option<Arc<AtomicBool>>,
    next_sweep: Duration,
    peers: HashMap<PeerId, Peer>,
    events: VecDeque<EndpointEvent>,
    io: UdpIo,
    out: Vec<u8>,
    seal: Vec<Vec<u8>>,
    dead_after: Duration,
    too_long: u64,
    auth_failures: AuthFailures,
    mtu: u16,
    scratch: Vec<u8>,
}

impl Listen {
    /// Binds the UDP port (both IPv6 and IPv4 where it can) and, in ssh
    /// mode, the ticket socket of that port.
    pub fn open(opts: ListenOptions) -> io::Result<Listen> {
        let sock = bind_udp(any_v6(), opts.port).or_else(|_| bind_udp(any_v4(), opts.port))?;
        sock.set_nonblocking(true)?;
        let port = sock.local_addr()?.port();
        let start = Instant::now();
        let (source, ssh) = match opts.keys {
            ServerKeys::Psk(p) => (KeySource::Psk(p), None),
            ServerKeys::Ssh { allow, groups_of } => (KeySource::Tickets, Some((allow, groups_of))),
        };
        let (mut book, mut ticket_stop) = (None, None);
        let me = opts.identity.public();
        if let Some((allow, groups_of)) = ssh {
            let listener = TicketListener::bind(port)?;
            let shared = Arc::new(Mutex::new(Book::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let (b, s) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("tickets".into())
                .spawn(move || {
                    listener.serve_until(&s, allow, groups_of, move |t, uid| {
                        let mut b = lock(&b);
                        // cable ids are random: a known one is somebody
                        // else's cable, which another ticket must not re-key
                        if b.known.contains_key(&t.key_id) {
                            return Err(format!(
                                "cable id {} is already in use",
                                id_hex(&t.key_id)
                            ));
                        }
                        if b.known.len() >= MAX_TICKETS {
                            return Err(format!(
                                "too many cables announced ({MAX_TICKETS}); try again later"
                            ));
                        }
                        b.known.insert(t.key_id, ());
                        b.new.push((t.key_id, t.psk(), t.client));
                        tracing::info!(
                            "cable {} announced over ssh by uid {uid} for identity {}",
                            id_hex(&t.key_id),
                            t.client.fingerprint()
                        );
                        // our static key first: the client pins it
                        Ok(format!(
                            "{} cable {} may connect",
                            me.to_hex(),
                            id_hex(&t.key_id)
                        ))
                    })
                })?;
            book = Some(shared);
            ticket_stop = Some(stop);
        }
        tracing::info!(
            "cryptcab listening on UDP port {port}, identity {}",
            me.fingerprint()
        );
        let io = UdpIo::new(&sock);
        Ok(Listen {
            sock,
            server: Server::new(opts.config.clone(), opts.identity, source),
            start,
            port,
            book,
            tickets: HashMap::new(),
            ticket_stop,
            next_sweep: SWEEP,
            peers: HashMap::new(),
            events: VecDeque::new(),
            io,
            out: Vec::with_capacity(2048),
            seal: (0..SEAL_BATCH).map(|_| Vec::with_capacity(2048)).collect(),
            dead_after: opts.config.dead_after,
            too_long: 0,
            auth_failures: AuthFailures::default(),
            mtu: opts.mtu,
            scratch: Vec::new(),
        })
    }

    /// The protocol's counters.
    pub fn stats(&self) -> &vde_crypto::Stats {
        self.server.stats()
    }

    /// The UDP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn since_start(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Gives the tickets announced since the last call to the protocol.
    fn take_tickets(&mut self, t: Duration) {
        let Some(book) = &self.book else { return };
        let new = std::mem::take(&mut lock(book).new);
        for (id, psk, client) in new {
            self.server.add_ticket(id, psk, client, t);
            self.tickets.insert(id, t);
        }
    }

    /// Forgets tickets unused for [`TICKET_TTL`].
    fn sweep_tickets(&mut self, t: Duration) {
        let Some(book) = &self.book else { return };
        let active: Vec<KeyId> = self.peers.values().map(|p| p.key_id).collect();
        let stale: Vec<KeyId> = self
            .tickets
            .iter()
            .filter(|(id, at)| !active.contains(id) && t.saturating_sub(**at) > TICKET_TTL)
            .map(|(id, _)| *id)
            .collect();
        let mut b = lock(book);
        for id in stale {
            self.tickets.remove(&id);
            self.server.remove_ticket(&id);
            b.known.remove(&id);
        }
    }

    fn peer_up(&mut self, peer: PeerId, key_id: KeyId, addr: SocketAddr, now: Instant) {
        let addr = super::plain(addr);
        let t = self.since_start(now);
        if let Some(at) = self.tickets.get_mut(&key_id) {
            *at = t;
        }
        let suite = self.server.peer_suite(peer).map_or("?", |s| s.name());
        let who = self
            .server
            .peer_identity(peer)
            .map_or_else(String::new, |k| format!(", identity {}", k.fingerprint()));
        tracing::info!("cable {} from {addr} up ({suite}){who}", id_hex(&key_id));
        self.peers.insert(
            peer,
            Peer {
                addr,
                key_id,
                last_heard: now,
                frames_in: 0,
                frames_out: 0,
                bytes_in: 0,
                bytes_out: 0,
                dropped: 0,
            },
        );
        self.events.push_back(EndpointEvent::Up {
            link: peer.0,
            peer: addr.to_string(),
        });
    }

    fn peer_gone(&mut self, peer: PeerId, why: String, now: Instant) {
        if let Some(p) = self.peers.remove(&peer) {
            let t = self.since_start(now);
            if self.tickets.contains_key(&p.key_id) {
                self.tickets.insert(p.key_id, t);
            }
            tracing::warn!("cable {} from {} down: {why}", id_hex(&p.key_id), p.addr);
            self.events
                .push_back(EndpointEvent::Down { link: peer.0, why });
        }
    }
}

impl FrameEndpoint for Listen {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, now: Instant) -> io::Result<usize> {
        let t = self.since_start(now);
        self.take_tickets(t);
        let cap = rx.capacity();
        let mut n = 0;
        // bounded: a flood of packets that are not frames yields too
        for seen in 0..4 * cap.max(1) {
            if n == cap {
                break;
            }
            let d = match self.io.next() {
                Ok(Some(d)) => d,
                Ok(None) if seen == 0 => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(None) => break,
                // an ICMP error for an earlier reply: the next read goes on
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(e),
            };
            let Some(from) = d.from else {
                continue;
            };
            let len = d.len;
            let r = self
                .server
                .receive(self.io.bytes(d), from, t, &mut self.out);
            match r {
                Ok(ServerRecv::Reply(to)) => {
                    let _ = self.sock.send_to(&self.out, to);
                }
                Ok(ServerRecv::PeerUp(peer, key_id, addr))
                | Ok(ServerRecv::PeerUpFrame(peer, key_id, addr)) => {
                    self.peer_up(peer, key_id, addr, now);
                }
                Ok(ServerRecv::PeerClosed(peer)) => {
                    self.peer_gone(peer, "closed by the peer".into(), now);
                }
                Ok(ServerRecv::Rekeyed(peer)) | Ok(ServerRecv::RekeyedFrame(peer)) => {
                    tracing::debug!("cable {peer} rekeyed");
                }
                Ok(ServerRecv::Frame(_)) | Ok(ServerRecv::Keepalive(_)) => {}
                Err(vde_crypto::Drop::BadMac) => {
                    if let Some(report) = self.auth_failures.failed(super::plain(from), t) {
                        let why = if self.book.is_none() {
                            "not our pre-shared key?"
                        } else {
                            "for a cable id handed over ssh"
                        };
                        tracing::warn!("{report}: bad mac ({why})");
                    }
                }
                Err(d) => tracing::debug!("dropped a datagram from {from}: {d}"),
            }
            let Ok(r) = r else { continue };
            if let Some(p) = r.peer().and_then(|id| self.peers.get_mut(&id)) {
                p.last_heard = now;
                p.bytes_in += len as u64;
            }
            if r.has_frame() {
                let peer = r.peer().expect("a frame has a peer");
                let Some(p) = self.peers.get_mut(&peer) else {
                    continue;
                };
                if rx.put(n, peer.0, &self.out) {
                    n += 1;
                    p.frames_in += 1;
                } else {
                    p.dropped += 1;
                    self.too_long += 1;
                }
            }
        }
        Ok(n)
    }

    fn send_batch(&mut self, link: LinkId, frames: &[&[u8]], now: Instant) -> usize {
        let t = self.since_start(now);
        let peer = PeerId(link);
        let max = self
            .peers
            .get(&peer)
            .and_then(|p| super::max_frame(self.mtu, p.addr));
        for chunk in frames.chunks(SEAL_BATCH) {
            let mut refs: [&[u8]; SEAL_BATCH] = [&[]; SEAL_BATCH];
            let (mut m, mut to, mut bytes) = (0, None, 0u64);
            let mut dropped = 0u64;
            for f in chunk {
                if f.len() > super::MAX_FRAME {
                    dropped += 1;
                    continue;
                }
                let f = super::clamped(f, max, &mut self.scratch);
                match self.server.seal(peer, f, t, &mut self.seal[m]) {
                    Ok(a) => {
                        to = Some(a);
                        bytes += self.seal[m].len() as u64;
                        m += 1;
                    }
                    Err(_) => dropped += 1,
                }
            }
            for (r, s) in refs.iter_mut().zip(&self.seal[..m]) {
                *r = s;
            }
            let sent = match to {
                Some(to) => self.io.send(&refs[..m], Some(to)),
                None => 0,
            };
            if let Some(p) = self.peers.get_mut(&peer) {
                p.frames_out += sent as u64;
                p.bytes_out += bytes;
                p.dropped += dropped + (m - sent) as u64;
            }
        }
        frames.len()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let d = self.server.next_deadline().min(self.next_sweep);
        let mut at = self.start + d;
        if self.book.is_some() {
            // tickets may arrive at any time: take them soon
            at = at.min(Instant::now() + Duration::from_millis(100));
        }
        Some(at)
    }

    fn handle_timeout(&mut self, now: Instant) {
        let t = self.since_start(now);
        self.take_tickets(t);
        while let Some(ev) = self.server.poll(t, &mut self.out) {
            match ev {
                ServerEvent::Send(to) => {
                    let _ = self.sock.send_to(&self.out, to);
                }
                ServerEvent::PeerDown(peer) => {
                    let why = if self.server.take_expired(peer) {
                        "its key expired (the client's rekeys kept failing)".to_string()
                    } else {
                        format!("nothing heard for {:.1} s", self.dead_after.as_secs_f64())
                    };
                    self.peer_gone(peer, why, now);
                }
            }
        }
        if t >= self.next_sweep {
            self.next_sweep = t + SWEEP;
            self.sweep_tickets(t);
        }
    }

    fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    fn close_link(&mut self, link: LinkId, now: Instant) {
        let t = self.since_start(now);
        let peer = PeerId(link);
        if let Some(to) = self.server.close_peer(peer, t, &mut self.out) {
            if !self.out.is_empty() {
                let _ = self.sock.send_to(&self.out, to);
            }
        }
        self.peer_gone(peer, "closed here".into(), now);
    }

    fn close(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in ids {
            self.close_link(p.0, now);
        }
        if let Some(s) = self.ticket_stop.take() {
            s.store(true, Ordering::Release);
            super::ticket::wake(self.port);
        }
    }

    fn status(&self, now: Instant) -> EndpointStatus {
        let s = self.server.stats();
        let mut links: Vec<LinkStatus> = self
            .peers
            .iter()
            .map(|(id, p)| LinkStatus {
                link: id.0,
                up: true,
                peer: Some(p.addr),
                name: Some(id_hex(&p.key_id)),
                cipher: self.server.peer_suite(*id).map(|s| s.name().to_string()),
                identity: self.server.peer_identity(*id).map(|k| k.fingerprint()),
                last_heard: Some(now.saturating_duration_since(p.last_heard)),
                rtt: None,
                rekeys: 0,
                frames_in: p.frames_in,
                frames_out: p.frames_out,
                bytes_in: p.bytes_in,
                bytes_out: p.bytes_out,
                drops: if p.dropped > 0 {
                    vec![("not sent".into(), p.dropped)]
                } else {
                    Vec::new()
                },
            })
            .collect();
        links.sort_by_key(|l| l.link);
        EndpointStatus {
            role: "listen",
            local: self.sock.local_addr().ok().map(super::plain),
            state: format!("{} cables", self.peers.len()),
            links,
            drops: drops_of(s),
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        if let Some(s) = self.ticket_stop.take() {
            s.store(true, Ordering::Release);
            super::ticket::wake(self.port);
        }
    }
}
