//! The client end as a [`FrameEndpoint`]: one cable to one server, kept up
//! by itself, driven by its owner's poll loop (a switch hosting the cable
//! as a port, or `vde_plug`). One link (0), up while the cable is.
//!
//! In ssh mode the first key exchange runs when the cable is opened (so
//! that a refusal is an error of `open`); the later ones, after the
//! server stopped answering, run on a thread of their own while the loop
//! goes on.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vde_crypto::{Client, ClientEvent, ClientRecv, Config, Identity, KeyId, PublicKey, ServerAuth};

use super::client::{random_id, resolve, ClientError, ClientKeys};
use super::diag::NoReply;
use super::ssh::{self, SshError};
use super::{any_v4, any_v6, bind_udp, drops_of, id_hex, wall_nanos, UdpIo, SEAL_BATCH};
use crate::endpoint::{EndpointEvent, EndpointStatus, FrameEndpoint, LinkId, LinkStatus, RxBatch};

/// Handshakes in a row without an answer before a new key is fetched over ssh.
const REFRESH_AFTER_FAILURES: u32 = 4;
/// Waits between ssh attempts while the server stays unreachable.
const SSH_BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];
/// At most one line per this long about handshake answers that do not
/// verify.
const FORGED_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often a pending ssh exchange is looked at.
const SSH_POLL: Duration = Duration::from_millis(50);

/// How to dial.
pub struct DialOptions {
    /// Server host (name or address) and UDP port.
    pub host: String,
    pub port: u16,
    /// Local UDP port; 0 for an ephemeral one (so that a site that also
    /// listens on the default port can dial out with the defaults).
    pub local_port: u16,
    pub keys: ClientKeys,
    /// This node's long-term key.
    pub identity: Identity,
    pub config: Config,
    /// The path MTU to the server, for TCP MSS clamping (0: off).
    pub mtu: u16,
}

type SshResult = Result<ssh::Exchanged, SshError>;

/// A cable to one server.
pub struct Dial {
    sock: UdpSocket,
    server: SocketAddr,
    client: Client,
    start: Instant,
    keys: ClientKeys,
    identity: PublicKey,
    port: u16,
    /// A key exchange running on its own thread.
    ssh_job: Option<mpsc::Receiver<SshResult>>,
    next_ssh: Duration,
    ssh_tries: usize,
    up: bool,
    events: VecDeque<EndpointEvent>,
    io: UdpIo,
    out: Vec<u8>,
    seal: Vec<Vec<u8>>,
    last_heard: Option<Instant>,
    init_sent: Option<Duration>,
    rtt: Option<Duration>,
    said_unreachable: bool,
    no_reply: NoReply,
    frames_in: u64,
    frames_out: u64,
    tx_dropped: u64,
    too_long: u64,
    dead_after: Duration,
    /// MSS clamping: the largest frame that fits one packet of the path.
    max_frame: Option<usize>,
    scratch: Vec<u8>,
    /// When a forged handshake answer was last logged.
    forged_logged: Option<Instant>,
}

impl Dial {
    /// Resolves the server, binds the socket and, in ssh mode, hands the
    /// first key over. Blocks for as long as that exchange takes (bounded
    /// by the ssh connect timeout).
    pub fn open(opts: DialOptions) -> Result<Dial, ClientError> {
        let server = resolve(&opts.host, opts.port)?;
        let sock = bind_udp(
            if server.is_ipv6() { any_v6() } else { any_v4() },
            opts.local_port,
        )?;
        sock.connect(server)?;
        sock.set_nonblocking(true)?;
        let start = Instant::now();
        let me = opts.identity.public();
        let (key_id, psk, auth) = match &opts.keys {
            ClientKeys::Psk { psk, pin } => (
                random_id()?,
                psk.clone(),
                ServerAuth::Psk {
                    known: None,
                    pin: *pin,
                },
            ),
            ClientKeys::Ssh(o) => {
                let (t, server, answer) = ssh::exchange(o, opts.port, me)?;
                tracing::info!(
                    "key handed to {} over ssh (server identity {}): {answer}",
                    o.dest,
                    server.fingerprint()
                );
                (t.key_id, t.psk(), ServerAuth::Ticket(server))
            }
        };
        tracing::info!("cable {} dialing {server}", id_hex(&key_id));
        let dead_after = opts.config.dead_after;
        let io = UdpIo::new(&sock);
        Ok(Dial {
            sock,
            server,
            client: Client::new(
                opts.config,
                opts.identity,
                auth,
                key_id,
                psk,
                wall_nanos(),
                Duration::ZERO,
            ),
            start,
            keys: opts.keys,
            identity: me,
            port: opts.port,
            ssh_job: None,
            next_ssh: Duration::ZERO,
            ssh_tries: 0,
            up: false,
            events: VecDeque::new(),
            io,
            out: Vec::with_capacity(2048),
            seal: (0..SEAL_BATCH).map(|_| Vec::with_capacity(2048)).collect(),
            last_heard: None,
            init_sent: None,
            rtt: None,
            said_unreachable: false,
            no_reply: NoReply::default(),
            frames_in: 0,
            frames_out: 0,
            tx_dropped: 0,
            too_long: 0,
            dead_after,
            max_frame: super::max_frame(opts.mtu, server),
            scratch: Vec::new(),
            forged_logged: None,
        })
    }

    /// The server's address.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The protocol's counters.
    pub fn stats(&self) -> &vde_crypto::Stats {
        self.client.stats()
    }

    /// The cable id in use.
    pub fn key_id(&self) -> KeyId {
        self.client.key_id()
    }

    fn since_start(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    fn went_up(&mut self, now: Duration) {
        if let Some(t) = self.init_sent.take() {
            self.rtt = Some(now.saturating_sub(t));
        }
        self.said_unreachable = false;
        self.ssh_tries = 0;
        if !self.up {
            self.up = true;
            let suite = self.client.suite().map_or("?", |s| s.name());
            tracing::info!("cable to {} up ({suite})", self.server);
            self.events.push_back(EndpointEvent::Up {
                link: 0,
                peer: self.server.to_string(),
            });
        }
    }

    fn went_down(&mut self, why: String) {
        if self.up {
            self.up = false;
            tracing::warn!("cable to {} down: {why}", self.server);
            self.events.push_back(EndpointEvent::Down { link: 0, why });
        }
    }

    fn send_control(&mut self) {
        if let Err(e) = self.sock.send(&self.out) {
            if !self.said_unreachable {
                let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                    " (UDP port closed: no cryptcab server there?)"
                } else {
                    ""
                };
                tracing::warn!("cannot send to {}: {e}{hint}; retrying", self.server);
                self.said_unreachable = true;
            }
        }
    }

    /// ssh mode: starts a new key exchange on a thread, or takes the key
    /// of one that finished.
    fn refresh_key(&mut self, now: Duration) {
        let o = match &self.keys {
            ClientKeys::Ssh(o) => o,
            // An identity learned from a KEYRESP is kept for the life of
            // this cable: asking again after an outage would let a key
            // holder who silenced the server answer in its place.
            ClientKeys::Psk { .. } => return,
        };
        if let Some(job) = &self.ssh_job {
            match job.try_recv() {
                Ok(Ok((t, server, answer))) => {
                    tracing::info!("new key handed to {} over ssh: {answer}", o.dest);
                    if let Some(old) = self.client.server_identity().filter(|k| *k != server) {
                        tracing::warn!(
                            "the server at {} has a new identity {} (was {}); ssh vouched for it",
                            o.dest,
                            server.fingerprint(),
                            old.fingerprint()
                        );
                    }
                    self.client
                        .set_key(t.key_id, t.psk(), ServerAuth::Ticket(server));
                    self.ssh_job = None;
                }
                Ok(Err(e)) => {
                    tracing::warn!("reconnecting to {}: {e}", o.dest);
                    self.ssh_job = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.ssh_job = None,
            }
            return;
        }
        let stuck = !self.client.is_up()
            && self.client.failed_attempts() >= REFRESH_AFTER_FAILURES
            && now >= self.next_ssh;
        if !stuck {
            return;
        }
        self.next_ssh = now + SSH_BACKOFF[self.ssh_tries.min(SSH_BACKOFF.len() - 1)];
        self.ssh_tries += 1;
        let (tx, rx) = mpsc::channel();
        let (o, port, me) = (o.clone(), self.port, self.identity);
        let spawned = std::thread::Builder::new()
            .name("cable-ssh".into())
            .spawn(move || {
                let _ = tx.send(ssh::exchange(&o, port, me));
            });
        match spawned {
            Ok(_) => self.ssh_job = Some(rx),
            Err(e) => tracing::warn!("cannot start the ssh exchange: {e}"),
        }
    }
}

impl FrameEndpoint for Dial {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, now: Instant) -> io::Result<usize> {
        let t = self.since_start(now);
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
                Err(e) => {
                    // an ICMP error for an earlier send (port closed,
                    // unreachable): reported once, then the next read goes on
                    if !self.said_unreachable {
                        let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                            "UDP port closed (no cryptcab server there?)".to_string()
                        } else {
                            e.to_string()
                        };
                        tracing::warn!("{}: {hint}; retrying", self.server);
                        self.said_unreachable = true;
                    }
                    break;
                }
            };
            let input = self.io.bytes(d);
            let r = self.client.receive(input, t, &mut self.out);
            if r.is_ok() {
                self.last_heard = Some(now);
            }
            match r {
                Ok(ClientRecv::Frame) => {
                    if rx.put(n, 0, &self.out) {
                        n += 1;
                        self.frames_in += 1;
                    } else {
                        self.too_long += 1;
                    }
                }
                Ok(ClientRecv::Up) | Ok(ClientRecv::Rekeyed) => self.went_up(t),
                Ok(ClientRecv::Closed) => self.went_down("closed by the server".into()),
                Ok(ClientRecv::Keepalive) | Ok(ClientRecv::Cookie) => {}
                Ok(ClientRecv::ServerKey) => {
                    if let Some(k) = self.client.server_identity() {
                        tracing::info!(
                            "server {} has identity {} (learned from a holder of the key file; \
                             pin it with pin={})",
                            self.server,
                            k.fingerprint(),
                            k.fingerprint()
                        );
                    }
                }
                Err(vde_crypto::Drop::BadIdentity) => {
                    if self
                        .forged_logged
                        .is_none_or(|t| now >= t + FORGED_LOG_EVERY)
                    {
                        self.forged_logged = Some(now);
                        tracing::warn!(
                            "the server at {} is not the pinned identity (pin=); not connecting",
                            self.server
                        );
                    }
                }
                Err(vde_crypto::Drop::BadMac) => {
                    // a handshake answer that does not verify: forged, or
                    // from a server with another key; the handshake goes on
                    if self
                        .forged_logged
                        .is_none_or(|t| now >= t + FORGED_LOG_EVERY)
                    {
                        self.forged_logged = Some(now);
                        tracing::warn!(
                            "a handshake answer from {} did not verify (forged, or another key); ignored",
                            self.server
                        );
                    }
                }
                Err(d) => tracing::debug!("dropped a datagram from {}: {d}", self.server),
            }
        }
        // the confirming keepalive of a new session goes out at once
        if self.client.next_deadline() <= t {
            self.handle_timeout(now);
        }
        Ok(n)
    }

    fn send_batch(&mut self, _link: LinkId, frames: &[&[u8]], now: Instant) -> usize {
        let t = self.since_start(now);
        for chunk in frames.chunks(SEAL_BATCH) {
            let mut refs: [&[u8]; SEAL_BATCH] = [&[]; SEAL_BATCH];
            let mut m = 0;
            for f in chunk {
                if f.len() > super::MAX_FRAME {
                    self.too_long += 1;
                    continue;
                }
                let f = super::clamped(f, self.max_frame, &mut self.scratch);
                match self.client.seal(f, t, &mut self.seal[m]) {
                    Ok(()) => m += 1,
                    Err(_) => self.tx_dropped += 1,
                }
            }
            for (r, s) in refs.iter_mut().zip(&self.seal[..m]) {
                *r = s;
            }
            let sent = self.io.send(&refs[..m], None);
            self.frames_out += sent as u64;
            // full socket or unreachable: the network drops
            self.tx_dropped += (m - sent) as u64;
        }
        frames.len()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let d = self.client.next_deadline();
        let mut at = (d != Duration::MAX).then(|| self.start + d);
        if self.ssh_job.is_some() || matches!(self.keys, ClientKeys::Ssh(_)) && !self.up {
            let tick = Instant::now() + SSH_POLL;
            at = Some(at.map_or(tick, |a| a.min(tick)));
        }
        at
    }

    fn handle_timeout(&mut self, now: Instant) {
        let t = self.since_start(now);
        while let Some(ev) = self.client.poll(t, &mut self.out) {
            match ev {
                ClientEvent::Send => {
                    if self.out.first() == Some(&vde_crypto::wire::TYPE_INIT) {
                        self.init_sent = Some(t);
                    }
                    self.send_control();
                }
                ClientEvent::Up => {}
                ClientEvent::Down => {
                    let why = if self.client.key_expired() {
                        "its key expired (rekeys kept failing)".to_string()
                    } else {
                        format!("nothing heard for {:.1} s", self.dead_after.as_secs_f64())
                    };
                    self.went_down(why);
                }
            }
        }
        let failed = self.client.failed_attempts();
        if let Some(n) = self.no_reply.update(failed, self.client.is_up(), t) {
            tracing::warn!(
                "no reply from {} — wrong key, or no server? ({n} handshakes unanswered)",
                self.server
            );
        }
        self.refresh_key(t);
    }

    fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    fn close_link(&mut self, _link: LinkId, now: Instant) {
        self.close(now);
    }

    fn close(&mut self, now: Instant) {
        let t = self.since_start(now);
        if self.client.close(t, &mut self.out).is_some() {
            let _ = self.sock.send(&self.out);
        }
        self.went_down("closed here".into());
    }

    fn status(&self, now: Instant) -> EndpointStatus {
        let s = self.client.stats();
        let state = if self.client.is_closed() {
            "closed"
        } else if self.up {
            "up"
        } else if self.ssh_job.is_some() {
            "exchanging a key over ssh"
        } else {
            "handshaking"
        };
        EndpointStatus {
            role: "dial",
            local: self.sock.local_addr().ok(),
            state: state.into(),
            links: vec![LinkStatus {
                link: 0,
                up: self.up,
                peer: Some(self.server),
                name: Some(id_hex(&self.client.key_id())),
                cipher: self.client.suite().map(|s| s.name().to_string()),
                identity: self.client.server_identity().map(|k| k.fingerprint()),
                last_heard: self.last_heard.map(|t| now.saturating_duration_since(t)),
                rtt: self.rtt,
                rekeys: s.rekeys,
                frames_in: self.frames_in,
                frames_out: self.frames_out,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                drops: {
                    let mut d = drops_of(s);
                    if self.tx_dropped > 0 {
                        d.push(("not sent".into(), self.tx_dropped));
                    }
                    if self.too_long > 0 {
                        d.push(("too long".into(), self.too_long));
                    }
                    d
                },
            }],
            drops: Vec::new(),
        }
    }
}
