//! Endpoints and the data path: the control handshake that creates an
//! endpoint, and frames moved in batches from one endpoint's datagram
//! socket through the core to the endpoints of the destination ports.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use vde_overlay::endpoint::{LinkId, RxBatch};

use super::cables::Cables;
use super::{data_socket, set_write_interest, setup, write_some, Conn, Server};
use crate::core::{EndpointId, PortId, Switch};
use crate::ctl::{emit_reply, Request};
use crate::frame::{TagOp, MAX_FRAME, TAG_LEN};
use crate::mgmt::ShellStats;
use crate::sys;

/// Frames received per system call.
const BATCH: usize = 64;
/// Receive buffers are one byte longer than the largest frame, so an
/// oversized datagram shows up as oversized (and is dropped) instead of
/// being silently truncated.
const RX_BUF: usize = MAX_FRAME + 1;
/// Batches taken from one socket before the others get their turn.
const BUDGET: usize = 8;
/// Frames an endpoint may have waiting for its socket to drain.
const QUEUE: usize = 2 * BATCH;
/// A source is paused while a destination it feeds has more than this
/// queued, so that its next batch fits and nothing is lost.
const HIGH_WATER: usize = QUEUE - BATCH;
/// An endpoint whose socket has taken nothing for this long is stuck (a
/// paused VM, a client that stopped reading): it no longer holds the
/// others back, and what does not fit its queue is dropped.
pub const STUCK: Duration = Duration::from_millis(200);
/// How often paused sources are looked at again.
pub const PAUSE_RECHECK: Duration = Duration::from_millis(20);

const SLOT: usize = MAX_FRAME + TAG_LEN;

/// Frames waiting for an endpoint's full socket: a fixed ring, allocated
/// the first time the endpoint is congested.
struct Ring {
    slots: Box<[[u8; SLOT]; QUEUE]>,
    lens: [usize; QUEUE],
    head: usize,
    len: usize,
}

impl Ring {
    fn new() -> Box<Ring> {
        Box::new(Ring {
            slots: Box::new([[0; SLOT]; QUEUE]),
            lens: [0; QUEUE],
            head: 0,
            len: 0,
        })
    }

    /// Copies a frame in; false if the ring is full.
    fn push(&mut self, f: &[u8]) -> bool {
        if self.len == QUEUE {
            return false;
        }
        let i = (self.head + self.len) % QUEUE;
        self.slots[i][..f.len()].copy_from_slice(f);
        self.lens[i] = f.len();
        self.len += 1;
        true
    }

    /// Sends queued frames until the socket is full or the ring empty.
    /// Returns how many were sent.
    fn drain(&mut self, fd: RawFd, sock: bool, stats: &mut ShellStats) -> usize {
        let mut total = 0;
        while self.len > 0 {
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            let n = self.len.min(BATCH).min(QUEUE - self.head);
            for (j, f) in frames.iter_mut().enumerate().take(n) {
                let i = self.head + j;
                *f = &self.slots[i][..self.lens[i]];
            }
            let done = match send_frames(fd, sock, &frames[..n]) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    stats.tx_error += 1;
                    1
                }
            };
            self.head = (self.head + done) % QUEUE;
            self.len -= done;
            total += done;
        }
        total
    }
}

/// Where an endpoint's frames come and go.
pub enum DataIo {
    /// A connected datagram socket (control-socket clients).
    Sock(UnixDatagram),
    /// A tap device (`-t`): one read or write per frame.
    Tap(std::fs::File),
    /// A link of a cable the switch hosts: frames go through the cable's
    /// endpoint, which also receives them for every link it carries.
    Link { cable: usize, link: LinkId },
}

impl DataIo {
    pub fn is_socket(&self) -> bool {
        matches!(self, DataIo::Sock(_))
    }

    /// The descriptor of its own, if it has one (not a cable link).
    pub fn fd(&self) -> Option<RawFd> {
        match self {
            DataIo::Sock(s) => Some(s.as_raw_fd()),
            DataIo::Tap(f) => Some(f.as_raw_fd()),
            DataIo::Link { .. } => None,
        }
    }
}

/// Sends one frame the switch itself originates (a BPDU) to an endpoint.
pub fn send_one(ep: &Endpoint, frame: &[u8], cables: &mut Cables) -> io::Result<usize> {
    match ep.data {
        DataIo::Link { cable, link } => {
            if let Some(c) = cables.get_mut(cable) {
                c.ep.send_batch(link, &[frame], Instant::now());
            }
            Ok(1)
        }
        ref d => send_frames(d.fd().unwrap_or(-1), d.is_socket(), &[frame]),
    }
}

/// Sends frames in one call on a socket, one write each on a device.
fn send_frames(fd: RawFd, sock: bool, frames: &[&[u8]]) -> io::Result<usize> {
    if sock {
        sys::send_batch(fd, frames)
    } else {
        sys::write_frames(fd, frames)
    }
}

/// A client attached to a port.
pub struct Endpoint {
    pub id: EndpointId,
    pub port: PortId,
    /// The control stream (none for a tap device).
    pub ctl: Option<mio::net::UnixStream>,
    pub data: DataIo,
    /// The switch-side data socket file, removed on close.
    pub path: Option<PathBuf>,
    /// Frames of the current batch queued for this endpoint:
    /// (receive slot, send the re-tagged variant).
    txq: Vec<(u16, bool)>,
    /// Frames waiting for the socket to drain.
    ring: Option<Box<Ring>>,
    /// Last time the socket took a frame.
    last_progress: Instant,
    /// Registered for writable events.
    want_write: bool,
}

impl Endpoint {
    pub fn new(
        id: EndpointId,
        port: PortId,
        ctl: Option<mio::net::UnixStream>,
        data: DataIo,
        path: Option<PathBuf>,
    ) -> Self {
        Endpoint {
            id,
            port,
            ctl,
            data,
            path,
            txq: Vec::with_capacity(BATCH),
            ring: None,
            last_progress: Instant::now(),
            want_write: false,
        }
    }

    /// Reads whatever the client wrote on its control stream; true once it
    /// is closed. (Clients never send anything after the request: stray
    /// bytes are discarded.)
    pub fn ctl_closed(&mut self) -> bool {
        let Some(ctl) = self.ctl.as_mut() else {
            return false;
        };
        let mut junk = [0u8; 256];
        loop {
            match ctl.read(&mut junk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    fn queued(&self) -> usize {
        self.ring.as_ref().map_or(0, |r| r.len)
    }

    /// Whether this endpoint should hold its sources back.
    fn congested(&self, now: Instant) -> bool {
        self.queued() > HIGH_WATER && now.duration_since(self.last_progress) < STUCK
    }

    /// Watches the data socket for writability only while frames wait.
    fn update_interest(&mut self, registry: &Registry, token: Token) {
        let want = self.queued() > 0;
        let Some(fd) = self.data.fd() else { return };
        set_write_interest(
            registry,
            &mut SourceFd(&fd),
            token,
            &mut self.want_write,
            want,
        );
    }
}

/// Where frames go: the connection slab, the port → endpoints map, and
/// the cables that carry some ports' frames.
pub struct Sink<'a> {
    pub conns: &'a mut Vec<Option<Conn>>,
    pub port_eps: &'a [Vec<usize>],
    pub registry: &'a Registry,
    pub cables: &'a mut Cables,
}

/// How a source is read.
#[derive(Debug, Clone, Copy)]
pub enum SourceKind {
    /// A datagram socket (batched receive).
    Sock(RawFd),
    /// A device: one read per frame.
    Dev(RawFd),
    /// A cable: its endpoint says which link (so which port) each frame
    /// came on.
    Cable(usize),
}

/// The endpoint a batch is read from.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Its slab index (a cable's: [`super::cables::TOKENS`] + its slot).
    pub idx: usize,
    pub kind: SourceKind,
    /// The port its frames enter on (not used for a cable).
    pub port: PortId,
}

/// A frame of a cable link that has no port (yet).
const NO_PORT: PortId = PortId::MAX;

/// Buffers reused for every batch: no allocation per frame.
pub struct DataPath {
    rx: Box<[[u8; RX_BUF]; BATCH]>,
    lens: [usize; BATCH],
    /// Re-tagged copies (tag stripped or inserted), built on demand.
    var: Box<[[u8; SLOT]; BATCH]>,
    var_len: [usize; BATCH],
    /// The link and port of each frame of a cable's batch.
    links: [LinkId; BATCH],
    ports: [PortId; BATCH],
    dirty: Vec<usize>,
    /// Sources that used up their budget: read again without waiting.
    backlog: Vec<usize>,
    /// Sources held back by a congested destination: (source, destination).
    paused: Vec<(usize, usize)>,
}

impl DataPath {
    pub fn new() -> Self {
        DataPath {
            rx: Box::new([[0; RX_BUF]; BATCH]),
            lens: [0; BATCH],
            var: Box::new([[0; SLOT]; BATCH]),
            var_len: [0; BATCH],
            links: [0; BATCH],
            ports: [NO_PORT; BATCH],
            dirty: Vec::with_capacity(64),
            backlog: Vec::with_capacity(64),
            paused: Vec::with_capacity(64),
        }
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    pub fn has_paused(&self) -> bool {
        !self.paused.is_empty()
    }

    /// Moves the backlog into `out` (an empty list whose capacity is kept).
    pub fn take_backlog(&mut self, out: &mut Vec<usize>) {
        std::mem::swap(&mut self.backlog, out);
    }

    /// Paused sources whose destination has drained (or is gone, or has
    /// become stuck) go on.
    pub fn resume_paused(&mut self, conns: &[Option<Conn>]) {
        let now = Instant::now();
        let backlog = &mut self.backlog;
        self.paused.retain(|&(src, dst)| {
            let still =
                matches!(conns.get(dst), Some(Some(Conn::Endpoint(ep))) if ep.congested(now));
            if !still && !backlog.contains(&src) {
                backlog.push(src);
            }
            still
        });
    }

    /// Moves frames from endpoint `idx` (socket `fd`, on `port`) until its
    /// socket is empty, its budget is spent (then it goes on the backlog:
    /// mio is edge-triggered, so it must be revisited by hand), or a
    /// destination is congested (then it is paused).
    pub fn pump(
        &mut self,
        src: Source,
        sw: &mut Switch,
        sink: &mut Sink<'_>,
        stats: &mut ShellStats,
    ) {
        let Source { idx, kind, port } = src;
        if self.paused.iter().any(|&(s, _)| s == idx) {
            // Held back: its frames wait in its socket (and its sender
            // blocks) until the destination drains.
            return;
        }
        for _ in 0..BUDGET {
            let now = Instant::now();
            let got = match kind {
                SourceKind::Sock(fd) => sys::recv_batch(fd, &mut self.rx[..], &mut self.lens),
                SourceKind::Dev(fd) => sys::read_frames(fd, &mut self.rx[..], &mut self.lens),
                SourceKind::Cable(ci) => {
                    let Some(c) = sink.cables.get_mut(ci) else {
                        return;
                    };
                    let mut rx = RxBatch {
                        buf: self.rx.as_flattened_mut(),
                        stride: RX_BUF,
                        lens: &mut self.lens,
                        links: &mut self.links,
                    };
                    let got = c.ep.recv_batch(&mut rx, now);
                    if let Ok(n) = got {
                        for k in 0..n {
                            self.ports[k] = c.port_of(self.links[k]).unwrap_or(NO_PORT);
                        }
                    }
                    got
                }
            };
            let n = match got {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("receive on port {port}: {e}");
                    return;
                }
            };
            let cable = matches!(kind, SourceKind::Cable(_));
            stats.rx_frames += n as u64;
            for k in 0..n {
                let frame = &self.rx[k][..self.lens[k]];
                let port = if cable { self.ports[k] } else { port };
                if port == NO_PORT {
                    stats.cable_no_port += 1;
                    continue;
                }
                self.var_len[k] = usize::MAX;
                for o in sw.ingress(port, frame, now) {
                    let variant = o.op != TagOp::Keep;
                    if variant && self.var_len[k] == usize::MAX {
                        self.var_len[k] = o.op.apply(frame, &mut self.var[k]);
                    }
                    for &e in sink
                        .port_eps
                        .get(o.port as usize)
                        .map_or(&[][..], |v| &v[..])
                    {
                        if let Some(Some(Conn::Endpoint(ep))) = sink.conns.get_mut(e) {
                            if ep.txq.is_empty() {
                                self.dirty.push(e);
                            }
                            ep.txq.push((k as u16, variant));
                        }
                    }
                }
            }
            if let Some(dst) = self.flush(sink, stats, now) {
                if !self.paused.iter().any(|&(s, _)| s == idx) {
                    self.paused.push((idx, dst));
                }
                return;
            }
            // a cable's batch may be short (or empty: transport packets
            // only) while more waits: it is drained when it says WouldBlock
            if n < BATCH && !cable {
                return;
            }
        }
        self.backlog.push(idx);
    }

    /// Sends every endpoint its frames of the batch. Returns one that is
    /// congested, if any (the source then pauses until it drains).
    fn flush(
        &mut self,
        sink: &mut Sink<'_>,
        stats: &mut ShellStats,
        now: Instant,
    ) -> Option<usize> {
        let mut congested = None;
        for e in self.dirty.drain(..) {
            let Some(Some(Conn::Endpoint(ep))) = sink.conns.get_mut(e) else {
                continue;
            };
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            let q = ep.txq.len().min(BATCH);
            for (slot, &(k, variant)) in frames.iter_mut().zip(ep.txq.iter()) {
                let k = k as usize;
                *slot = if variant {
                    &self.var[k][..self.var_len[k]]
                } else {
                    &self.rx[k][..self.lens[k]]
                };
            }
            ep.txq.clear();
            let (fd, sock) = match ep.data {
                DataIo::Link { cable, link } => {
                    // a cable takes every frame: what its socket refuses,
                    // it drops and counts, as the network would
                    if let Some(c) = sink.cables.get_mut(cable) {
                        c.ep.send_batch(link, &frames[..q], now);
                    }
                    continue;
                }
                ref d => (d.fd().unwrap_or(-1), d.is_socket()),
            };
            let mut sent = 0;
            if ep.queued() == 0 {
                while sent < q {
                    match send_frames(fd, sock, &frames[sent..q]) {
                        Ok(m) => sent += m.max(1),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            stats.tx_error += 1;
                            sent += 1;
                        }
                    }
                }
                if sent > 0 {
                    ep.last_progress = now;
                }
            }
            if sent < q {
                // The socket is full: keep the rest in order behind what
                // already waits, and drop only what does not fit.
                let ring = ep.ring.get_or_insert_with(Ring::new);
                for f in &frames[sent..q] {
                    if !ring.push(f) {
                        stats.tx_full += 1;
                    }
                }
                if ring.drain(fd, sock, stats) > 0 {
                    ep.last_progress = now;
                }
            }
            ep.update_interest(sink.registry, Server::data_token(e));
            if ep.congested(now) {
                congested = Some(e);
            }
        }
        congested
    }

    /// The endpoint's socket has room again: sends what waits, and lets
    /// the sources it held back go on once it is low enough.
    pub fn writable(&mut self, idx: usize, sink: &mut Sink<'_>, stats: &mut ShellStats) {
        let Some(Some(Conn::Endpoint(ep))) = sink.conns.get_mut(idx) else {
            return;
        };
        let (Some(fd), sock) = (ep.data.fd(), ep.data.is_socket()) else {
            return;
        };
        if let Some(ring) = ep.ring.as_mut() {
            if ring.drain(fd, sock, stats) > 0 {
                ep.last_progress = Instant::now();
            }
        }
        ep.update_interest(sink.registry, Server::data_token(idx));
        if ep.queued() <= HIGH_WATER {
            self.resume_paused(sink.conns);
        }
    }
}

impl Server {
    /// Attaches a tap interface (`-t`) to the first free port, as the C
    /// switch's tuntap module does: its description is the interface name.
    pub(super) fn attach_tap(&mut self, name: &str) -> io::Result<PortId> {
        let (dev, ifname) = sys::open_tap(name, true)?;
        let id = dev.as_raw_fd() as EndpointId;
        let port = self
            .sw
            .attach(
                crate::core::PortRequest::Any,
                crate::core::Endpoint {
                    id,
                    module: "tuntap",
                    descr: ifname.clone(),
                    uid: None,
                    gids: Vec::new(),
                },
            )
            .map_err(|e| io::Error::other(format!("no port for tap {ifname}: {e}")))?;
        let idx = self.insert(Conn::Endpoint(Endpoint::new(
            id,
            port,
            None,
            DataIo::Tap(dev),
            None,
        )));
        if let Some(list) = self.port_eps.get_mut(port as usize) {
            list.push(idx);
        }
        let fd = id as RawFd;
        self.poll.registry().register(
            &mut SourceFd(&fd),
            Self::data_token(idx),
            Interest::READABLE,
        )?;
        Ok(port)
    }

    /// Turns a complete control request into an endpoint: port allocation,
    /// the data socket `<ctldir>/NNN.F`, and the 110-byte reply. On any
    /// failure the connection is closed, as upstream vde_switch does.
    pub(super) fn handshake(&mut self, mut stream: mio::net::UnixStream, buf: &[u8]) {
        let req = match Request::parse(buf) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("control request refused: {e}");
                self.stats.bad_requests += 1;
                return;
            }
        };
        if req.sun_path.is_empty() {
            tracing::warn!("control request refused: no data socket path (unnamed and abstract addresses are not supported)");
            self.stats.bad_requests += 1;
            return;
        }
        let cred = sys::peer_cred(&stream).ok();
        let uid = cred.map(|(u, _)| u);
        let gids = cred.map_or_else(Vec::new, |(u, g)| crate::users::groups_of(u, g));
        let id = stream.as_raw_fd() as EndpointId;
        let ep = crate::core::Endpoint {
            id,
            module: "unix prog",
            descr: req.description.clone(),
            uid,
            gids,
        };
        let port = match self.sw.attach(req.port, ep) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    "port request {:?} from {:?} refused: {e}",
                    req.port,
                    req.description
                );
                self.stats.bad_requests += 1;
                return;
            }
        };
        let client = Path::new(OsStr::from_bytes(&req.sun_path));
        let fail = |s: &mut Server, what: String| {
            tracing::warn!("{what}");
            s.stats.bad_requests += 1;
            s.sw.detach(id);
        };
        let (data, path) = match data_socket(&self.opts.ctl_dir, port, client) {
            Ok(x) => x,
            Err(e) => {
                return fail(
                    self,
                    format!("cannot connect to client socket {}: {e}", client.display()),
                )
            }
        };
        let (mode, owner) = match uid {
            Some(u) if sys::euid() == 0 => (self.opts.ctl_mode & 0o700, Some(u)),
            _ => (self.opts.ctl_mode, None),
        };
        if let Err(e) = setup::set_mode(&path, mode, owner, self.opts.group) {
            tracing::warn!("{e}");
        }
        let reply = emit_reply(path.as_os_str().as_bytes());
        if !matches!(write_some(&mut stream, &reply), Ok(n) if n == reply.len()) {
            let _ = std::fs::remove_file(&path);
            return fail(
                self,
                format!("client on port {port} went away during the handshake"),
            );
        }
        let idx = self.insert(Conn::Endpoint(Endpoint::new(
            id,
            port,
            Some(stream),
            DataIo::Sock(data),
            Some(path),
        )));
        let Some(Some(Conn::Endpoint(ep))) = self.conns.get_mut(idx) else {
            unreachable!()
        };
        let reg = self.poll.registry();
        let ok = reg
            .register(
                ep.ctl.as_mut().expect("control stream"),
                Self::stream_token(idx),
                Interest::READABLE,
            )
            .is_ok()
            && reg
                .register(
                    &mut SourceFd(&ep.data.fd().expect("a socket")),
                    Self::data_token(idx),
                    Interest::READABLE,
                )
                .is_ok();
        if let Some(list) = self.port_eps.get_mut(port as usize) {
            list.push(idx);
        }
        if !ok {
            tracing::warn!("cannot watch the sockets of port {port}");
            self.sw.detach(id);
            self.close_endpoint(idx);
            return;
        }
        // Frames may already be waiting (edge-triggered: read them now).
        self.data_ready(idx);
    }
}
