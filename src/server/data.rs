//! Endpoints and the data path: the control handshake that creates an
//! endpoint, and frames moved in batches from one endpoint's datagram
//! socket through the core to the endpoints of the destination ports.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::Interest;

use super::{data_socket, setup, write_some, Conn, Server};
use crate::core::{EndpointId, PortId, Switch};
use crate::ctl::{emit_reply, Request};
use crate::frame::{TagOp, MAX_FRAME, TAG_LEN};
use crate::mgmt::ShellStats;
use crate::sys;

/// Frames received per system call.
const BATCH: usize = 32;
/// Receive buffers are one byte longer than the largest frame, so an
/// oversized datagram shows up as oversized (and is dropped) instead of
/// being silently truncated.
const RX_BUF: usize = MAX_FRAME + 1;
/// Batches taken from one socket before the others get their turn.
const BUDGET: usize = 8;

/// A client attached to a port.
pub struct Endpoint {
    pub id: EndpointId,
    pub port: PortId,
    pub ctl: mio::net::UnixStream,
    pub data: UnixDatagram,
    pub path: PathBuf,
    /// Frames of the current batch queued for this endpoint:
    /// (receive slot, send the re-tagged variant).
    txq: Vec<(u16, bool)>,
}

impl Endpoint {
    /// Reads whatever the client wrote on its control stream; true once it
    /// is closed. (Clients never send anything after the request: stray
    /// bytes are discarded.)
    pub fn ctl_closed(&mut self) -> bool {
        let mut junk = [0u8; 256];
        loop {
            match self.ctl.read(&mut junk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

/// Where frames go: the connection slab and the port → endpoints map.
pub struct Sink<'a> {
    pub conns: &'a mut Vec<Option<Conn>>,
    pub port_eps: &'a [Vec<usize>],
}

/// Buffers reused for every batch: no allocation per frame.
pub struct DataPath {
    rx: Box<[[u8; RX_BUF]; BATCH]>,
    lens: [usize; BATCH],
    /// Re-tagged copies (tag stripped or inserted), built on demand.
    var: Box<[[u8; MAX_FRAME + TAG_LEN]; BATCH]>,
    var_len: [usize; BATCH],
    dirty: Vec<usize>,
    backlog: Vec<usize>,
}

impl DataPath {
    pub fn new() -> Self {
        DataPath {
            rx: Box::new([[0; RX_BUF]; BATCH]),
            lens: [0; BATCH],
            var: Box::new([[0; MAX_FRAME + TAG_LEN]; BATCH]),
            var_len: [0; BATCH],
            dirty: Vec::with_capacity(64),
            backlog: Vec::new(),
        }
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    pub fn take_backlog(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.backlog)
    }

    /// Moves frames from endpoint `idx` (socket `fd`, on `port`) until its
    /// socket is empty or its budget is spent (then it is put on the
    /// backlog: mio is edge-triggered, so it must be revisited by hand).
    pub fn pump(
        &mut self,
        idx: usize,
        fd: RawFd,
        port: PortId,
        sw: &mut Switch,
        sink: &mut Sink<'_>,
        stats: &mut ShellStats,
    ) {
        for _ in 0..BUDGET {
            let n = match sys::recv_batch(fd, &mut self.rx[..], &mut self.lens) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("receive on port {port}: {e}");
                    return;
                }
            };
            let now = Instant::now();
            stats.rx_frames += n as u64;
            for k in 0..n {
                let frame = &self.rx[k][..self.lens[k]];
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
            self.flush(sink, stats);
            if n < BATCH {
                return;
            }
        }
        self.backlog.push(idx);
    }

    fn flush(&mut self, sink: &mut Sink<'_>, stats: &mut ShellStats) {
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
            let fd = ep.data.as_raw_fd();
            let mut sent = 0;
            while sent < q {
                match sys::send_batch(fd, &frames[sent..q]) {
                    Ok(m) => sent += m.max(1),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        stats.tx_full += (q - sent) as u64;
                        break;
                    }
                    Err(_) => {
                        stats.tx_error += 1;
                        sent += 1;
                    }
                }
            }
            ep.txq.clear();
        }
    }
}

impl Server {
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
        let uid = sys::peer_uid(&stream).ok();
        let id = stream.as_raw_fd() as EndpointId;
        let ep = crate::core::Endpoint {
            id,
            module: "unix prog",
            descr: req.description.clone(),
            uid,
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
        let idx = self.insert(Conn::Endpoint(Endpoint {
            id,
            port,
            ctl: stream,
            data,
            path,
            txq: Vec::with_capacity(BATCH),
        }));
        let Some(Some(Conn::Endpoint(ep))) = self.conns.get_mut(idx) else {
            unreachable!()
        };
        let reg = self.poll.registry();
        let ok = reg
            .register(&mut ep.ctl, Self::stream_token(idx), Interest::READABLE)
            .is_ok()
            && reg
                .register(
                    &mut SourceFd(&ep.data.as_raw_fd()),
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
