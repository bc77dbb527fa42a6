//! The IO shell of the switch: one thread, one mio poll loop, the control
//! socket, the data sockets (batched with recvmmsg/sendmmsg), management
//! sessions, the stdin console and signals. All decisions are the core's
//! ([`crate::core::Switch`]) and the console's ([`crate::mgmt`]).

mod cables;
mod data;
mod mgmt_io;
pub mod setup;

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::core::{Config, EndpointId, Event, PortId, Switch};
use crate::mgmt::{self, Action, Ctx, Session, ShellStats, SwitchInfo};
pub use setup::SetupError;
use vde_overlay::endpoint::LinkId;

const CTL: Token = Token(0);
const MGMT: Token = Token(1);
const SIGNALS: Token = Token(2);
const STDIN: Token = Token(3);
/// Slab entries use tokens from here on: `FIRST + 2*i` for the entry's
/// stream, `FIRST + 2*i + 1` for an endpoint's data socket.
const FIRST: usize = 16;

/// A control connection that has not sent its request yet gets this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the loop wakes up for housekeeping with nothing else to do.
const TICK: Duration = Duration::from_secs(1);
/// How often stalled handshakes are looked for.
const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// Everything the switch needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub ctl_dir: PathBuf,
    /// Mode of the control socket and data sockets.
    pub ctl_mode: u32,
    pub dir_mode: u32,
    pub group: Option<u32>,
    pub mgmt: Option<PathBuf>,
    pub mgmt_mode: u32,
    pub mgmt_group: Option<u32>,
    /// Read commands from stdin and exit at its end.
    pub console: bool,
    pub rcfile: Option<PathBuf>,
    /// Tap interfaces to attach at start (`-t`).
    pub taps: Vec<String>,
    /// Cables to open at start (`--cable`): outgoing, one port each while up.
    pub cables: Vec<String>,
    /// Locators to accept cables on at start (`--listen`): a port per peer.
    pub listens: Vec<String>,
    /// Handle SIGINT/SIGTERM/SIGHUP (a stand-alone switch); an in-process
    /// switch leaves signals to its host and stops through `stop_handle`.
    pub signals: bool,
    pub config: Config,
}

enum Conn {
    /// A control connection waiting for its request.
    Pending {
        stream: mio::net::UnixStream,
        buf: Vec<u8>,
        since: Instant,
    },
    Endpoint(data::Endpoint),
    Mgmt(mgmt_io::MgmtConn),
}

pub struct Server {
    poll: Poll,
    sw: Switch,
    info: SwitchInfo,
    stats: ShellStats,
    opts: Options,
    ctl: mio::net::UnixListener,
    mgmt: Option<mio::net::UnixListener>,
    signals: Option<std::os::fd::OwnedFd>,
    /// Set from another thread to stop the loop (in-process switches).
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Slab indices of the endpoints of each port.
    port_eps: Vec<Vec<usize>>,
    data: data::DataPath,
    cables: cables::Cables,
    /// The next endpoint id for a cable's port.
    next_link_id: EndpointId,
    console: Option<mgmt_io::Console>,
    stopping: bool,
    last_recheck: Instant,
    next_housekeeping: Instant,
    /// Reused list of sources to pump again (no allocation per loop).
    backlog_scratch: Vec<usize>,
    /// What `bind` made, removed if the server is dropped without running
    /// (a start refused after `bind`: pid file, daemon).
    made: setup::Made,
}

impl Server {
    /// Creates the control directory and sockets; nothing runs yet.
    pub fn bind(opts: Options) -> Result<Server, SetupError> {
        // removed again if the start fails from here on
        let mut made = setup::Made::default();
        let ctl_dir = setup::make_ctl_dir(&opts.ctl_dir, opts.dir_mode, opts.group, &mut made)?;
        let ctl = setup::listen(&ctl_dir.join("ctl"), opts.ctl_mode, opts.group, &mut made)?;
        let mgmt = match &opts.mgmt {
            Some(p) => Some(setup::listen(
                p,
                opts.mgmt_mode,
                opts.mgmt_group,
                &mut made,
            )?),
            None => None,
        };
        let io_err = |err: io::Error| SetupError::Bind {
            path: ctl_dir.clone(),
            err,
        };
        let poll = Poll::new().map_err(io_err)?;
        let signals = if opts.signals {
            Some(crate::sys::signalfd_for_termination().map_err(io_err)?)
        } else {
            None
        };
        let now = Instant::now();
        let sw = Switch::new(opts.config.clone(), now);
        let info = SwitchInfo {
            pid: std::process::id(),
            started: now,
            ctl_dir: ctl_dir.clone(),
            ctl_mode: opts.ctl_mode,
            mgmt: opts.mgmt.as_ref().map(|p| (absolute(p), opts.mgmt_mode)),
        };
        let registry = poll.registry().try_clone().map_err(io_err)?;
        let nports = sw.numports() as usize + 1;
        let mut opts = opts;
        opts.ctl_dir = ctl_dir;
        let taps = opts.taps.clone();
        let cables = cables::Cables::new(registry);
        let mut server = Server {
            poll,
            sw,
            info,
            stats: ShellStats::default(),
            opts,
            ctl,
            mgmt,
            signals,
            stop: Default::default(),
            conns: Vec::new(),
            free: Vec::new(),
            port_eps: vec![Vec::new(); nports],
            data: data::DataPath::new(),
            cables,
            next_link_id: cables::FIRST_ID,
            console: None,
            stopping: false,
            last_recheck: now,
            next_housekeeping: now,
            backlog_scratch: Vec::with_capacity(64),
            made,
        };
        for t in &taps {
            if let Err(err) = server.attach_tap(t) {
                // dropping the server removes what it made
                return Err(SetupError::Tap {
                    name: t.clone(),
                    err,
                });
            }
        }
        Ok(server)
    }

    /// Opens the cables of `--cable` and `--listen`. Separate from
    /// [`Server::bind`] because cables may start threads (a plug's
    /// adapter, a listener's ticket socket, QUIC's runtime), which a fork
    /// into the background would lose: `vde_switch -d` forks between the
    /// two. On an error the server is dropped by the caller, which removes
    /// what it made.
    pub fn open_cables(&mut self) -> Result<(), SetupError> {
        let (dial, listen) = (self.opts.cables.clone(), self.opts.listens.clone());
        let wanted = listen.iter().map(|v| (v, true));
        for (vnl, listen) in wanted.chain(dial.iter().map(|v| (v, false))) {
            if let Err((_, why)) = self.cables.open(vnl, listen) {
                return Err(SetupError::Cable {
                    vnl: vnl.clone(),
                    why,
                });
            }
        }
        Ok(())
    }

    /// A flag that stops `run` (within a second, or at once if the control
    /// socket is then poked with a connection).
    pub fn stop_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.stop.clone()
    }

    /// Sets the MAC table's expiry (seconds).
    pub fn set_hash_expire(&mut self, secs: u64) {
        self.sw.timers.expire = secs;
    }

    /// The canonical control directory.
    pub fn ctl_dir(&self) -> &Path {
        &self.opts.ctl_dir
    }

    /// Runs until `shutdown`, a signal, or (with the console) end of stdin.
    pub fn run(mut self) -> io::Result<()> {
        // the process that runs the loop: after `bind`, the caller may
        // have forked into the background (vde_switch -d)
        self.info.pid = std::process::id();
        let reg = self.poll.registry();
        reg.register(&mut self.ctl, CTL, Interest::READABLE)?;
        if let Some(m) = self.mgmt.as_mut() {
            reg.register(m, MGMT, Interest::READABLE)?;
        }
        if let Some(sig) = &self.signals {
            reg.register(&mut SourceFd(&sig.as_raw_fd()), SIGNALS, Interest::READABLE)?;
        }
        if let Some(rc) = self.opts.rcfile.clone() {
            self.run_rcfile(&rc);
        }
        if self.opts.console {
            let mut con = mgmt_io::Console::start()?;
            self.poll
                .registry()
                .register(con.source(), STDIN, Interest::READABLE)?;
            self.console = Some(con);
        }
        let mut events = Events::with_capacity(256);
        while !self.stopping && !self.stop.load(std::sync::atomic::Ordering::Acquire) {
            let now = Instant::now();
            let timeout = if self.data.has_backlog() {
                Duration::ZERO
            } else if self.data.has_paused() {
                data::PAUSE_RECHECK
            } else {
                let at = self.sw.poll_timeout();
                let at = self.cables.poll_timeout().map_or(at, |c| c.min(at));
                at.saturating_duration_since(now).min(TICK)
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                self.dispatch(
                    ev.token(),
                    ev.is_readable() || ev.is_read_closed(),
                    ev.is_writable(),
                );
                if self.stopping {
                    break;
                }
            }
            let now = Instant::now();
            if self.data.has_paused()
                && now.duration_since(self.last_recheck) >= data::PAUSE_RECHECK
            {
                self.last_recheck = now;
                self.data.resume_paused(&self.conns);
            }
            self.run_backlog();
            if now >= self.next_housekeeping {
                self.next_housekeeping = now + HOUSEKEEPING;
                self.expire_handshakes(now);
            }
            if now >= self.sw.poll_timeout() {
                self.sw.handle_timeout(now);
            }
            self.service_cables(now);
            self.deliver_events();
        }
        self.cleanup();
        Ok(())
    }

    fn dispatch(&mut self, token: Token, readable: bool, writable: bool) {
        match token {
            CTL => self.accept_ctl(),
            MGMT => self.accept_mgmt(),
            SIGNALS => {
                if let Some(sig) = self.signals.as_ref().and_then(crate::sys::read_signal) {
                    tracing::info!("caught signal {sig}, cleaning up and exiting");
                    self.stopping = true;
                }
            }
            STDIN => self.console_input(),
            Token(t) if t >= cables::TOKENS => self.cable_ready(t - cables::TOKENS),
            Token(t) if t >= FIRST => {
                let idx = (t - FIRST) / 2;
                if (t - FIRST) % 2 == 1 {
                    if writable {
                        self.data_writable(idx);
                    }
                    if readable {
                        self.data_ready(idx);
                    }
                } else {
                    self.stream_ready(idx, readable, writable);
                }
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------
    // Slab of connections

    fn insert(&mut self, c: Conn) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(c);
                i
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        }
    }

    fn remove(&mut self, idx: usize) -> Option<Conn> {
        let c = self.conns.get_mut(idx)?.take()?;
        self.free.push(idx);
        Some(c)
    }

    fn stream_token(idx: usize) -> Token {
        Token(FIRST + 2 * idx)
    }

    fn data_token(idx: usize) -> Token {
        Token(FIRST + 2 * idx + 1)
    }

    // -----------------------------------------------------------------
    // Control connections

    fn accept_ctl(&mut self) {
        loop {
            match self.ctl.accept() {
                Ok((stream, _)) => {
                    let idx = self.insert(Conn::Pending {
                        stream,
                        buf: Vec::with_capacity(crate::ctl::MAX_REQUEST),
                        since: Instant::now(),
                    });
                    if let Some(Conn::Pending { stream, .. }) = self.conns[idx].as_mut() {
                        if let Err(e) = self.poll.registry().register(
                            stream,
                            Self::stream_token(idx),
                            Interest::READABLE,
                        ) {
                            tracing::warn!("cannot watch control connection: {e}");
                            self.remove(idx);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("accept on control socket: {e}");
                    return;
                }
            }
        }
    }

    fn stream_ready(&mut self, idx: usize, readable: bool, writable: bool) {
        match self.conns.get(idx) {
            Some(Some(Conn::Pending { .. })) => self.pending_ready(idx),
            Some(Some(Conn::Endpoint(_))) => self.endpoint_ctl_ready(idx),
            Some(Some(Conn::Mgmt(_))) => self.mgmt_ready(idx, readable, writable),
            _ => {}
        }
    }

    fn pending_ready(&mut self, idx: usize) {
        let Some(Some(Conn::Pending { stream, buf, .. })) = self.conns.get_mut(idx) else {
            return;
        };
        let mut eof = false;
        loop {
            let mut chunk = [0u8; crate::ctl::MAX_REQUEST];
            let room = crate::ctl::MAX_REQUEST - buf.len();
            if room == 0 {
                break;
            }
            match stream.read(&mut chunk[..room]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if buf.len() >= crate::ctl::needed(buf) {
            if let Some(Conn::Pending {
                mut stream, buf, ..
            }) = self.remove(idx)
            {
                let _ = self.poll.registry().deregister(&mut stream);
                self.handshake(stream, &buf);
            }
        } else if eof {
            self.stats.dropped_handshakes += 1;
            if let Some(Conn::Pending { mut stream, .. }) = self.remove(idx) {
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    fn expire_handshakes(&mut self, now: Instant) {
        let late: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(Conn::Pending { since, .. })
                    if now.duration_since(*since) > HANDSHAKE_TIMEOUT =>
                {
                    Some(i)
                }
                _ => None,
            })
            .collect();
        for i in late {
            self.stats.dropped_handshakes += 1;
            if let Some(Conn::Pending { mut stream, .. }) = self.remove(i) {
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    // -----------------------------------------------------------------
    // Endpoints

    fn endpoint_ctl_ready(&mut self, idx: usize) {
        let Some(Some(Conn::Endpoint(ep))) = self.conns.get_mut(idx) else {
            return;
        };
        if ep.ctl_closed() {
            let id = ep.id;
            self.sw.detach(id);
            self.close_endpoint(idx);
        }
    }

    /// Closes an endpoint's sockets and forgets it. A cable's port tells
    /// its cable to end that link (the core closed the endpoint); a link
    /// that went down by itself is closed with [`Server::drop_link_port`].
    fn close_endpoint(&mut self, idx: usize) {
        if let Some(Some(Conn::Endpoint(ep))) = self.conns.get(idx) {
            if let data::DataIo::Link { cable, link } = ep.data {
                if let Some(c) = self.cables.get_mut(cable) {
                    c.ep.close_link(link, Instant::now());
                }
            }
        }
        self.drop_endpoint(idx);
    }

    fn drop_endpoint(&mut self, idx: usize) {
        if let Some(Conn::Endpoint(mut ep)) = self.remove(idx) {
            let reg = self.poll.registry();
            if let Some(ctl) = ep.ctl.as_mut() {
                let _ = reg.deregister(ctl);
            }
            if let Some(fd) = ep.data.fd() {
                let _ = reg.deregister(&mut SourceFd(&fd));
            }
            if let Some(p) = &ep.path {
                let _ = std::fs::remove_file(p);
            }
            if let Some(list) = self.port_eps.get_mut(ep.port as usize) {
                list.retain(|&i| i != idx);
            }
        }
    }

    fn endpoint_by_id(&self, id: EndpointId) -> Option<usize> {
        self.conns
            .iter()
            .position(|c| matches!(c, Some(Conn::Endpoint(ep)) if ep.id == id))
    }

    fn data_ready(&mut self, idx: usize) {
        let Some(Some(Conn::Endpoint(ep))) = self.conns.get(idx) else {
            return;
        };
        let kind = match ep.data.fd() {
            Some(fd) if ep.data.is_socket() => data::SourceKind::Sock(fd),
            Some(fd) => data::SourceKind::Dev(fd),
            None => return,
        };
        let src = data::Source {
            idx,
            kind,
            port: ep.port,
        };
        self.pump(src);
    }

    fn pump(&mut self, src: data::Source) {
        let mut sink = data::Sink {
            conns: &mut self.conns,
            port_eps: &self.port_eps,
            registry: self.poll.registry(),
            cables: &mut self.cables,
        };
        self.data
            .pump(src, &mut self.sw, &mut sink, &mut self.stats);
    }

    /// A cable's socket is readable: its frames go to the ports of their
    /// links.
    fn cable_ready(&mut self, ci: usize) {
        if self.cables.get(ci).is_none() {
            return;
        }
        self.pump(data::Source {
            idx: cables::TOKENS + ci,
            kind: data::SourceKind::Cable(ci),
            port: 0,
        });
    }

    fn data_writable(&mut self, idx: usize) {
        let mut sink = data::Sink {
            conns: &mut self.conns,
            port_eps: &self.port_eps,
            registry: self.poll.registry(),
            cables: &mut self.cables,
        };
        self.data.writable(idx, &mut sink, &mut self.stats);
    }

    fn run_backlog(&mut self) {
        let mut list = std::mem::take(&mut self.backlog_scratch);
        self.data.take_backlog(&mut list);
        for &idx in &list {
            if idx >= cables::TOKENS {
                self.cable_ready(idx - cables::TOKENS);
            } else {
                self.data_ready(idx);
            }
        }
        list.clear();
        self.backlog_scratch = list;
    }

    // -----------------------------------------------------------------
    // Cables

    /// Runs the cables' due timers and turns their link events into ports:
    /// a link that comes up gets a port (the one it had before, if free),
    /// a link that goes down takes its port down (so the spanning tree
    /// reroutes), and a removed cable goes once its ports are down.
    pub(crate) fn service_cables(&mut self, now: Instant) {
        for ci in self.cables.indices() {
            self.cables.reopen_if_due(ci, now);
            let Some(c) = self.cables.get_mut(ci) else {
                continue;
            };
            if c.ep.poll_timeout().is_some_and(|t| t <= now) {
                c.ep.handle_timeout(now);
            }
            let mut evs = Vec::new();
            while let Some(ev) = c.ep.poll_event() {
                evs.push(ev);
            }
            let removed = c.removed;
            for ev in evs {
                match ev {
                    vde_overlay::endpoint::EndpointEvent::Up { link, peer } => {
                        self.link_up(ci, link, peer)
                    }
                    vde_overlay::endpoint::EndpointEvent::Down { link, why } => {
                        self.link_down(ci, link, &why);
                        self.cables.schedule_reopen(ci, now);
                    }
                }
            }
            // up links whose port could not be had earlier try again
            let waiting: Vec<(LinkId, String)> = self
                .cables
                .get(ci)
                .map(|c| {
                    c.links
                        .iter()
                        .filter(|l| l.up && l.port.is_none())
                        .map(|l| (l.link, l.peer.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if !removed {
                for (link, peer) in waiting {
                    self.link_up(ci, link, peer);
                }
            } else {
                let links: Vec<LinkId> = self
                    .cables
                    .get(ci)
                    .map(|c| c.links.iter().map(|l| l.link).collect())
                    .unwrap_or_default();
                for l in links {
                    self.link_down(ci, l, "cable removed");
                }
                self.cables.remove(ci);
            }
        }
    }

    fn link_up(&mut self, ci: usize, link: LinkId, peer: String) {
        let Some(c) = self.cables.get_mut(ci) else {
            return;
        };
        let pos = match c.links.iter().position(|l| l.link == link) {
            Some(p) => p,
            None => {
                c.links.push(cables::LinkPort {
                    link,
                    peer: peer.clone(),
                    port: None,
                    conn: None,
                    id: 0,
                    last_port: None,
                    up: true,
                });
                c.links.len() - 1
            }
        };
        let l = &mut c.links[pos];
        l.up = true;
        l.peer = peer;
        if l.port.is_some() {
            return;
        }
        let descr = if l.peer.is_empty() {
            format!("cable {}", c.vnl)
        } else {
            format!("cable {} peer {}", c.vnl, l.peer)
        };
        let (last, number) = (l.last_port, c.number);
        let id = self.next_link_id;
        let ep = |id| crate::core::Endpoint {
            id,
            module: "cable",
            descr: descr.clone(),
            uid: None,
            gids: Vec::new(),
        };
        let mut got = Err(crate::errno::ENOSPC);
        // its old port back, unless another endpoint took it meanwhile
        // (asking for a port by number joins whoever is on it)
        let free = |p| !self.sw.port(p).is_some_and(|x| x.is_active());
        if let Some(p) = last.filter(|&p| free(p)) {
            got = self.sw.attach(crate::core::PortRequest::Port(p), ep(id));
        }
        if got.is_err() {
            got = self.sw.attach(crate::core::PortRequest::Any, ep(id));
        }
        let port = match got {
            Ok(p) => p,
            Err(e) => {
                // logged once per link: it is tried again on every pass
                let c = self.cables.get_mut(ci).expect("checked above");
                if c.links[pos].id != u64::MAX as EndpointId {
                    tracing::error!("cable {number}: no port for link {link}: {e}; will retry");
                    c.links[pos].id = u64::MAX as EndpointId;
                }
                return;
            }
        };
        self.next_link_id += 1;
        let idx = self.insert(Conn::Endpoint(data::Endpoint::new(
            id,
            port,
            None,
            data::DataIo::Link { cable: ci, link },
            None,
        )));
        if let Some(list) = self.port_eps.get_mut(port as usize) {
            list.push(idx);
        }
        let c = self.cables.get_mut(ci).expect("checked above");
        let l = &mut c.links[pos];
        l.port = Some(port);
        l.last_port = Some(port);
        l.conn = Some(idx);
        l.id = id;
        tracing::info!("cable {number}: link {link} on port {port}");
    }

    fn link_down(&mut self, ci: usize, link: LinkId, why: &str) {
        let Some(c) = self.cables.get_mut(ci) else {
            return;
        };
        let Some(pos) = c.links.iter().position(|l| l.link == link) else {
            return;
        };
        let listen = c.listen;
        let number = c.number;
        let l = &mut c.links[pos];
        l.up = false;
        let (port, conn, id) = (l.port.take(), l.conn.take(), l.id);
        if listen {
            // a listener's peers are not coming back under this link id
            c.links.remove(pos);
        }
        if let (Some(port), Some(conn)) = (port, conn) {
            tracing::info!("cable {number}: link {link} off port {port}: {why}");
            self.sw.detach(id);
            self.drop_endpoint(conn);
        }
    }

    // -----------------------------------------------------------------
    // Events from the core

    fn deliver_events(&mut self) {
        if !self.sw.has_events() {
            return;
        }
        while let Some(ev) = self.sw.poll_event() {
            match ev {
                Event::CloseEndpoint(id) => {
                    if let Some(idx) = self.endpoint_by_id(id) {
                        self.close_endpoint(idx);
                    }
                }
                Event::Frame { port, frame } => {
                    for &i in self.port_eps.get(port as usize).map_or(&[][..], |v| &v[..]) {
                        if let Some(Conn::Endpoint(ep)) = &self.conns[i] {
                            if data::send_one(ep, &frame, &mut self.cables).is_err() {
                                self.stats.tx_error += 1;
                            }
                        }
                    }
                }
                Event::Debug { category, text } => {
                    let line = mgmt::debug::line(category, &text);
                    let bit = 1u64 << category;
                    let mut told = Vec::new();
                    for (i, c) in self.conns.iter_mut().enumerate() {
                        if let Some(Conn::Mgmt(m)) = c {
                            if m.session.debug & bit != 0 {
                                m.queue(line.as_bytes());
                                told.push(i);
                            }
                        }
                    }
                    if let Some(con) = self.console.as_mut() {
                        if con.session.debug & bit != 0 {
                            con.write(line.as_bytes());
                        }
                    }
                    for i in told {
                        self.mgmt_flush(i);
                    }
                }
            }
        }
        self.update_debug_mask();
    }

    fn update_debug_mask(&mut self) {
        let mut mask = self.console.as_ref().map_or(0, |c| c.session.debug);
        for c in self.conns.iter().flatten() {
            if let Conn::Mgmt(m) = c {
                mask |= m.session.debug;
            }
        }
        self.sw.set_debug_mask(mask);
    }

    /// Runs a command line for a session and acts on what it asks.
    fn execute(&mut self, session: &mut Session, line: &str) -> (String, Action) {
        let now = Instant::now();
        let mut ctx = Ctx {
            sw: &mut self.sw,
            cables: &mut self.cables,
            now,
            info: &self.info,
            stats: &self.stats,
            session,
            action: Action::None,
        };
        let reply = mgmt::execute(&mut ctx, line);
        let want = self.sw.numports() as usize + 1;
        if self.port_eps.len() != want {
            self.port_eps.resize(want, Vec::new());
        }
        self.service_cables(now);
        if reply.action == Action::Shutdown {
            self.stopping = true;
        }
        (reply.text, reply.action)
    }

    fn run_rcfile(&mut self, rc: &Path) {
        let mut session = Session {
            console: true,
            ..Session::default()
        };
        let (text, _) = self.execute(&mut session, &format!("load {}", rc.display()));
        for line in text
            .lines()
            .filter(|l| l.starts_with('1') && !l.starts_with("1000"))
        {
            tracing::warn!("rc file {}: {line}", rc.display());
        }
        self.deliver_events();
    }

    fn cleanup(&mut self) {
        self.made.keep();
        let now = Instant::now();
        for ci in self.cables.indices() {
            if let Some(c) = self.cables.get_mut(ci) {
                c.ep.close(now);
                c.removed = true;
            }
        }
        self.service_cables(now);
        for i in 0..self.conns.len() {
            if matches!(self.conns[i], Some(Conn::Endpoint(_))) {
                self.close_endpoint(i);
            }
        }
        let _ = std::fs::remove_file(self.opts.ctl_dir.join("ctl"));
        let _ = std::fs::remove_dir(&self.opts.ctl_dir);
        if let Some(p) = &self.opts.mgmt {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Frames for a datagram socket the shell created for an endpoint.
fn data_socket(ctl_dir: &Path, port: PortId, client: &Path) -> io::Result<(UnixDatagram, PathBuf)> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::DGRAM.nonblocking().cloexec(), None)?;
    s.connect(&SockAddr::unix(client)?)?;
    let path = ctl_dir.join(format!("{:03}.{}", port, s.as_raw_fd()));
    let _ = std::fs::remove_file(&path);
    s.bind(&SockAddr::unix(&path)?)?;
    Ok((s.into(), path))
}

/// Watches `source` for writability too while `want` (output waits), and
/// only readability otherwise; `current` remembers what is registered.
fn set_write_interest(
    registry: &mio::Registry,
    source: &mut impl mio::event::Source,
    token: Token,
    current: &mut bool,
    want: bool,
) {
    if want != *current {
        *current = want;
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = registry.reregister(source, token, interest);
    }
}

/// Writes as much of `buf` as the non-blocking stream takes; returns how
/// much was written, or an error if the peer is gone.
fn write_some(stream: &mut impl Write, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match stream.write(&buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
