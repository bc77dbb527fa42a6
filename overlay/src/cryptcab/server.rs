//! The server end: one UDP port, any number of cables, each on its own
//! switch port.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vde_crypto::{Config, KeyId, KeySource, PeerId, Psk, Server, ServerEvent, ServerRecv};

use super::diag::AuthFailures;
use super::ticket::{Allow, TicketListener};
use super::{
    any_v4, any_v6, bind_udp, deliver, id_hex, idle, send_udp, stats_line, Batch, Clock, Control,
    Link, LocalSide, BATCH,
};

/// How long a ticket nobody uses (or whose cable went down) is kept.
const TICKET_TTL: Duration = Duration::from_secs(60);

/// Tickets kept at once (announced, in use, or recently used).
const MAX_TICKETS: usize = 1024;

/// Longest wait in the receive loop (timers are checked at least this often).
const TICK: Duration = Duration::from_millis(20);

/// Where the server's keys come from.
pub enum ServerKeys {
    /// `-P keyfile`: every client knows the same key.
    Psk(Psk),
    /// Keys delivered over ssh by clients allowed by [`Allow`];
    /// `groups_of` lists a uid's supplementary groups.
    Ssh {
        allow: Allow,
        groups_of: Box<dyn Fn(u32) -> Vec<u32> + Send>,
    },
}

pub struct ServerOptions {
    /// The local UDP port (-p).
    pub port: u16,
    pub keys: ServerKeys,
    pub config: Config,
}

struct Cable {
    link: Arc<dyn Link>,
    addr: SocketAddr,
    key_id: KeyId,
}

struct Shared {
    server: Server,
    cables: HashMap<PeerId, Cable>,
    /// Ticket cable ids and when they were last in use.
    tickets: HashMap<KeyId, Duration>,
    dead_after: Duration,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a server until `ctl.stop`.
pub fn serve(opts: ServerOptions, local: Arc<dyn LocalSide>, ctl: Arc<Control>) -> io::Result<()> {
    let sock = bind_udp(any_v6(), opts.port).or_else(|_| bind_udp(any_v4(), opts.port))?;
    let sock = Arc::new(sock);
    let clock = Clock::new();
    let psk_mode = matches!(opts.keys, ServerKeys::Psk(_));
    let (source, ssh) = match opts.keys {
        ServerKeys::Psk(p) => (KeySource::Psk(p), None),
        ServerKeys::Ssh { allow, groups_of } => (KeySource::Tickets, Some((allow, groups_of))),
    };
    let shared = Arc::new(Mutex::new(Shared {
        server: Server::new(opts.config.clone(), source),
        cables: HashMap::new(),
        tickets: HashMap::new(),
        dead_after: opts.config.dead_after,
    }));
    if let Some((allow, groups_of)) = ssh {
        let listener = TicketListener::bind(opts.port)?;
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("tickets".into())
            .spawn(move || {
                listener.serve(allow, groups_of, move |t, uid| {
                    let now = clock.now();
                    let mut s = lock(&shared);
                    // cable ids are random: a known one is somebody else's
                    // cable, which must not be re-keyed by another ticket
                    if s.tickets.contains_key(&t.key_id)
                        || s.server.peer_by_key(&t.key_id).is_some()
                    {
                        return Err(format!("cable id {} is already in use", id_hex(&t.key_id)));
                    }
                    if s.tickets.len() >= MAX_TICKETS {
                        return Err(format!(
                            "too many cables announced ({MAX_TICKETS}); try again later"
                        ));
                    }
                    s.server.add_ticket(t.key_id, t.psk(), now);
                    s.tickets.insert(t.key_id, now);
                    tracing::info!(
                        "cable {} announced over ssh by uid {uid}",
                        id_hex(&t.key_id)
                    );
                    Ok(format!("cable {} may connect", id_hex(&t.key_id)))
                })
            })?;
    }
    tracing::info!(
        "vde_cryptcab server on UDP port {} for switch {}",
        opts.port,
        local.name()
    );
    sock.set_read_timeout(Some(TICK))?;
    let mut b = Batch::new();
    let mut out = Vec::with_capacity(2048);
    let mut deadline = Duration::ZERO;
    // frames opened in this batch, by slot, waiting to go to their port
    let mut pending: Vec<(PeerId, usize)> = Vec::with_capacity(BATCH);
    let mut auth_failures = AuthFailures::default();
    while !ctl.stopping() {
        if ctl.take_report() {
            tracing::info!("stats: {}", stats_line(lock(&shared).server.stats()));
        }
        match b.recv_udp(&sock) {
            Ok(k) => {
                let now = clock.now();
                for i in 0..k {
                    let Some(from) = b.from[i] else { continue };
                    let mut s = lock(&shared);
                    let (input, outs) = (&b.bufs[i][..b.lens[i].min(super::SLOT)], &mut b.outs);
                    let r = s.server.receive(input, from, now, &mut outs[i]);
                    if let Ok(ServerRecv::Frame(peer)) = r {
                        pending.push((peer, i));
                        continue;
                    }
                    drop(s);
                    if r == Err(vde_crypto::Drop::BadMac) {
                        if let Some(report) = auth_failures.failed(super::plain(from), now) {
                            let why = if psk_mode {
                                "not our pre-shared key?"
                            } else {
                                "for a cable id handed over ssh"
                            };
                            tracing::warn!("{report}: bad mac ({why})");
                        }
                    }
                    flush(&mut pending, &shared, &b.outs);
                    let s = lock(&shared);
                    handle_recv(r, s, &sock, &b.outs[i], &shared, &local, clock)?;
                }
                flush(&mut pending, &shared, &b.outs);
                // once per batch: the scan is over all cables
                deadline = deadline.min(lock(&shared).server.next_deadline());
            }
            Err(e) if idle(&e) || e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                // ENOBUFS, ENOMEM and the like pass; the cable goes on
                tracing::warn!("receiving on UDP port {}: {e}", opts.port);
                std::thread::sleep(TICK);
            }
        }
        let now = clock.now();
        if now >= deadline {
            deadline = run_timers(&shared, &sock, &mut out, now);
        }
    }
    let mut s = lock(&shared);
    tracing::info!("stats: {}", stats_line(s.server.stats()));
    for (_, c) in s.cables.drain() {
        c.link.close();
    }
    Ok(())
}

/// Delivers the pending frames, a batch per run of the same cable.
fn flush(pending: &mut Vec<(PeerId, usize)>, shared: &Arc<Mutex<Shared>>, outs: &[Vec<u8>]) {
    let mut rest = &pending[..];
    while let Some(&(peer, _)) = rest.first() {
        let run = rest.iter().take_while(|(p, _)| *p == peer).count();
        let link = lock(shared).cables.get(&peer).map(|c| c.link.clone());
        if let Some(l) = link {
            let idx: Vec<usize> = rest[..run].iter().map(|&(_, i)| i).collect();
            deliver(&*l, outs, &idx);
        }
        rest = &rest[run..];
    }
    pending.clear();
}

fn handle_recv(
    r: Result<ServerRecv, vde_crypto::Drop>,
    mut s: MutexGuard<'_, Shared>,
    sock: &Arc<UdpSocket>,
    out: &[u8],
    shared: &Arc<Mutex<Shared>>,
    local: &Arc<dyn LocalSide>,
    clock: Clock,
) -> io::Result<()> {
    match r {
        Ok(ServerRecv::Frame(peer)) => {
            let link = s.cables.get(&peer).map(|c| c.link.clone());
            drop(s);
            if let Some(l) = link {
                let _ = l.send(out);
            }
        }
        Ok(ServerRecv::Reply(to)) => {
            drop(s);
            let _ = sock.send_to(out, to);
        }
        Ok(ServerRecv::PeerUp(peer, key_id, addr))
        | Ok(ServerRecv::PeerUpFrame(peer, key_id, addr)) => {
            let with_frame = matches!(r, Ok(ServerRecv::PeerUpFrame(..)));
            let addr = super::plain(addr);
            if let Some(t) = s.tickets.get_mut(&key_id) {
                *t = clock.now();
            }
            drop(s);
            cable_up(peer, key_id, addr, shared, sock, local, clock);
            if with_frame {
                if let Some(l) = lock(shared).cables.get(&peer).map(|c| c.link.clone()) {
                    let _ = l.send(out);
                }
            }
        }
        Ok(ServerRecv::PeerClosed(peer)) => {
            if let Some(c) = s.cables.remove(&peer) {
                s.tickets.insert(c.key_id, clock.now());
                drop(s);
                tracing::info!(
                    "cable {} from {} closed by the peer",
                    id_hex(&c.key_id),
                    c.addr
                );
                c.link.close();
            }
        }
        Ok(ServerRecv::Rekeyed(peer)) => {
            tracing::debug!("cable {peer} rekeyed");
        }
        Ok(ServerRecv::RekeyedFrame(peer)) => {
            tracing::debug!("cable {peer} rekeyed");
            let link = s.cables.get(&peer).map(|c| c.link.clone());
            drop(s);
            if let Some(l) = link {
                let _ = l.send(out);
            }
        }
        Ok(ServerRecv::Keepalive(_)) => {}
        Err(d) => {
            tracing::debug!("dropped a datagram: {d}");
        }
    }
    Ok(())
}

/// A new cable: a switch port and the thread that feeds the cable from it.
fn cable_up(
    peer: PeerId,
    key_id: KeyId,
    addr: SocketAddr,
    shared: &Arc<Mutex<Shared>>,
    sock: &Arc<UdpSocket>,
    local: &Arc<dyn LocalSide>,
    clock: Clock,
) {
    let link: Arc<dyn Link> = match local.attach() {
        Ok(l) => Arc::from(l),
        Err(e) => {
            tracing::error!(
                "cable {} from {addr}: cannot attach to switch {}: {e}; closing the cable",
                id_hex(&key_id),
                local.name()
            );
            // no port, no cable: the client is told and tries again
            let mut out = Vec::new();
            let to = lock(shared).server.close_peer(peer, clock.now(), &mut out);
            if let Some(to) = to {
                let _ = sock.send_to(&out, to);
            }
            return;
        }
    };
    let suite = lock(shared)
        .server
        .peer_suite(peer)
        .map_or("?", |s| s.name());
    tracing::info!(
        "cable {} from {addr} up on switch {} ({suite})",
        id_hex(&key_id),
        local.name()
    );
    if let Some(old) = lock(shared).cables.insert(
        peer,
        Cable {
            link: link.clone(),
            addr,
            key_id,
        },
    ) {
        old.link.close();
    }
    let shared = shared.clone();
    let sock = sock.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("cable-{peer}"))
        .spawn(move || pump(peer, link, shared, sock, clock));
    if let Err(e) = spawned {
        tracing::error!("cannot start the thread of cable {peer}: {e}");
    }
}

/// Switch port → cable, until the port or the cable goes.
fn pump(
    peer: PeerId,
    link: Arc<dyn Link>,
    shared: Arc<Mutex<Shared>>,
    sock: Arc<UdpSocket>,
    clock: Clock,
) {
    let mut b = Batch::new();
    let mut idx = [0usize; BATCH];
    while let Ok(k) = link.recv_batch(&mut b.bufs, &mut b.lens) {
        let (mut m, mut to) = (0, None);
        {
            let mut s = lock(&shared);
            if !s
                .cables
                .get(&peer)
                .is_some_and(|c| Arc::ptr_eq(&c.link, &link))
            {
                break;
            }
            let now = clock.now();
            for i in 0..k {
                if b.lens[i] > super::MAX_FRAME {
                    tracing::debug!(
                        "dropped a {}-byte frame (longer than {})",
                        b.lens[i],
                        super::MAX_FRAME
                    );
                    continue;
                }
                let frame = &b.bufs[i][..b.lens[i]];
                if let Ok(a) = s.server.seal(peer, frame, now, &mut b.outs[i]) {
                    to = Some(a);
                    idx[m] = i;
                    m += 1;
                }
            }
        }
        if let Some(to) = to {
            send_udp(&sock, &b.outs, &idx[..m], Some(to));
        }
    }
    link.close();
}

/// Keepalives, dead cables, stale tickets; returns the next deadline.
fn run_timers(
    shared: &Arc<Mutex<Shared>>,
    sock: &UdpSocket,
    out: &mut Vec<u8>,
    now: Duration,
) -> Duration {
    let mut s = lock(shared);
    while let Some(ev) = s.server.poll(now, out) {
        match ev {
            ServerEvent::Send(to) => {
                let _ = sock.send_to(out, to);
            }
            ServerEvent::PeerDown(peer) => {
                if let Some(c) = s.cables.remove(&peer) {
                    s.tickets.insert(c.key_id, now);
                    tracing::warn!(
                        "cable {} from {} down: nothing heard for {:.1} s",
                        id_hex(&c.key_id),
                        c.addr,
                        s.dead_after.as_secs_f64()
                    );
                    c.link.close();
                }
            }
        }
    }
    let active: Vec<KeyId> = s.cables.values().map(|c| c.key_id).collect();
    let stale: Vec<KeyId> = s
        .tickets
        .iter()
        .filter(|(id, t)| !active.contains(id) && now.saturating_sub(**t) > TICKET_TTL)
        .map(|(id, _)| *id)
        .collect();
    for id in stale {
        s.tickets.remove(&id);
        s.server.remove_ticket(&id);
    }
    s.server.next_deadline().min(now + Duration::from_secs(1))
}
