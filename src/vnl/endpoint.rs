//! Plugs and frame endpoints, each as the other.
//!
//! - [`open_endpoint`] opens any locator as a
//!   [`FrameEndpoint`](vde_overlay::endpoint::FrameEndpoint), the form a
//!   switch hosts as ports: the schemes that have a native endpoint
//!   (`cryptcab`, `quic`) directly; every other one through [`PlugEndpoint`], a
//!   blocking plug run by two threads behind a `SOCK_SEQPACKET` pair.
//! - [`EndpointPlug`] is the blocking [`Plug`] over an endpoint, for the
//!   tools (`vde_plug cryptcab://…`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vde_overlay::endpoint::{
    EndpointEvent, EndpointStatus, FrameEndpoint, LinkId, LinkStatus, RxBatch,
};

use super::{Locator, OpenArgs, OpenError, Plug};

/// Largest frame carried through a [`PlugEndpoint`].
const MAX_FRAME: usize = 9234;

/// Opens a locator as a frame endpoint.
pub fn open_endpoint(vnl: &str, args: &OpenArgs) -> Result<Box<dyn FrameEndpoint>, OpenError> {
    let loc = Locator::split(&super::resolve_default(vnl));
    match loc.scheme.as_str() {
        "cryptcab" => return super::cryptcab::open_endpoint(&loc),
        "quic" => return super::quic::open_endpoint(&loc),
        "udp" => return super::udp::open_endpoint(&loc),
        _ => {}
    }
    let plug = super::open(vnl, args)?;
    PlugEndpoint::start(plug).map_err(|e| OpenError::io(format!("cannot start {vnl}"), e))
}

// ---------------------------------------------------------------------
// A plug as an endpoint

/// Counters shared with the threads.
#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    dropped: AtomicU64,
}

/// A blocking plug hosted as an endpoint with one link (0): a thread
/// copies its frames into one end of a `SOCK_SEQPACKET` pair, another
/// takes what the owner writes to it. The link goes down when the plug
/// closes (a switch that went away, the end of a command's output).
pub struct PlugEndpoint {
    sock: UnixDatagram,
    plug: Arc<dyn Plug>,
    up: bool,
    events: VecDeque<EndpointEvent>,
    counters: Arc<Counters>,
    closed: Arc<AtomicBool>,
}

fn seqpacket_pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
    use socket2::{Domain, Socket, Type};
    let (a, b) = Socket::pair(Domain::UNIX, Type::SEQPACKET.cloexec(), None)?;
    // a datagram socket's send/recv are what a seqpacket one needs
    Ok((UnixDatagram::from(std::os::fd::OwnedFd::from(a)), {
        UnixDatagram::from(std::os::fd::OwnedFd::from(b))
    }))
}

impl PlugEndpoint {
    pub fn start(plug: Box<dyn Plug>) -> io::Result<Box<dyn FrameEndpoint>> {
        let (mine, theirs) = seqpacket_pair()?;
        mine.set_nonblocking(true)?;
        let plug: Arc<dyn Plug> = Arc::from(plug);
        let counters = Arc::new(Counters::default());
        let closed = Arc::new(AtomicBool::new(false));
        let theirs = Arc::new(theirs);
        {
            let (plug, sock, c) = (plug.clone(), theirs.clone(), counters.clone());
            std::thread::Builder::new()
                .name("plug-rx".into())
                .spawn(move || {
                    let mut buf = vec![0u8; MAX_FRAME + 1];
                    loop {
                        match plug.recv(&mut buf) {
                            Ok(0) => continue,
                            Ok(n) if n > MAX_FRAME => {
                                c.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(n) => {
                                if sock.send(&buf[..n]).is_err() {
                                    break;
                                }
                                c.frames_in.fetch_add(1, Ordering::Relaxed);
                                c.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => {
                                tracing::debug!("plug closed: {e}");
                                break;
                            }
                        }
                    }
                    // the owner reads the end of the stream
                    let _ = sock.shutdown(std::net::Shutdown::Write);
                })?;
        }
        {
            // a switch that goes away is seen on its control stream only:
            // end the pair then, as the plug's own end would
            let (plug, sock) = (plug.clone(), theirs.clone());
            std::thread::Builder::new()
                .name("plug-hangup".into())
                .spawn(move || {
                    if plug.wait_hangup() {
                        let _ = sock.shutdown(std::net::Shutdown::Both);
                    }
                })?;
        }
        {
            let (plug, sock, c) = (plug.clone(), theirs, counters.clone());
            std::thread::Builder::new()
                .name("plug-tx".into())
                .spawn(move || {
                    let mut buf = vec![0u8; MAX_FRAME + 1];
                    while let Ok(n) = sock.recv(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if plug.send(&buf[..n]).is_ok() {
                            c.frames_out.fetch_add(1, Ordering::Relaxed);
                            c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                        } else {
                            c.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    plug.close();
                })?;
        }
        let mut events = VecDeque::new();
        events.push_back(EndpointEvent::Up {
            link: 0,
            peer: String::new(),
        });
        Ok(Box::new(PlugEndpoint {
            sock: mine,
            plug,
            up: true,
            events,
            counters,
            closed,
        }))
    }

    fn went_down(&mut self, why: &str) {
        if self.up {
            self.up = false;
            self.events.push_back(EndpointEvent::Down {
                link: 0,
                why: why.into(),
            });
        }
    }
}

impl FrameEndpoint for PlugEndpoint {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, _now: Instant) -> io::Result<usize> {
        let mut n = 0;
        while n < rx.capacity() && self.up {
            let at = n * rx.stride;
            match self.sock.recv(&mut rx.buf[at..at + rx.stride]) {
                Ok(0) => self.went_down("the plug closed"),
                Ok(len) => {
                    rx.lens[n] = len;
                    rx.links[n] = 0;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if n == 0 {
                        return Err(e);
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.went_down(&e.to_string());
                    break;
                }
            }
        }
        if n == 0 && !self.up {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn send_batch(&mut self, _link: LinkId, frames: &[&[u8]], _now: Instant) -> usize {
        if !self.up {
            return frames.len();
        }
        let mut rest = frames;
        while !rest.is_empty() {
            match crate::sys::send_batch(self.sock.as_raw_fd(), rest) {
                Ok(k) if k > 0 => rest = &rest[k..],
                _ => break,
            }
        }
        self.counters
            .dropped
            .fetch_add(rest.len() as u64, Ordering::Relaxed);
        frames.len()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    fn close_link(&mut self, _link: LinkId, now: Instant) {
        self.close(now);
    }

    fn close(&mut self, _now: Instant) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.plug.close();
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
        }
        self.went_down("closed here");
    }

    fn status(&self, _now: Instant) -> EndpointStatus {
        let c = &self.counters;
        let dropped = c.dropped.load(Ordering::Relaxed);
        EndpointStatus {
            role: "plug",
            local: None,
            state: if self.up { "up" } else { "down" }.into(),
            links: vec![LinkStatus {
                link: 0,
                up: self.up,
                frames_in: c.frames_in.load(Ordering::Relaxed),
                frames_out: c.frames_out.load(Ordering::Relaxed),
                bytes_in: c.bytes_in.load(Ordering::Relaxed),
                bytes_out: c.bytes_out.load(Ordering::Relaxed),
                drops: if dropped > 0 {
                    vec![("not sent".into(), dropped)]
                } else {
                    Vec::new()
                },
                ..LinkStatus::default()
            }],
            drops: Vec::new(),
        }
    }
}

impl Drop for PlugEndpoint {
    fn drop(&mut self) {
        self.close(Instant::now());
    }
}

// ---------------------------------------------------------------------
// An endpoint as a plug

struct Inner {
    ep: Box<dyn FrameEndpoint>,
    /// The links that are up (a listener may have several: frames go to
    /// all of them, as on a hub).
    links: Vec<LinkId>,
}

impl Inner {
    /// Runs due timers and takes the link events.
    fn service(&mut self, now: Instant) {
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                EndpointEvent::Up { link, peer } => {
                    tracing::info!("link {link} up {peer}");
                    if !self.links.contains(&link) {
                        self.links.push(link);
                    }
                }
                EndpointEvent::Down { link, why } => {
                    tracing::info!("link {link} down: {why}");
                    self.links.retain(|&l| l != link);
                }
            }
        }
    }
}

/// A frame endpoint behind the blocking [`Plug`] interface: the thread in
/// `recv` runs the endpoint's timers while it waits.
pub struct EndpointPlug {
    inner: Mutex<Inner>,
    fd: RawFd,
    closed: AtomicBool,
}

impl EndpointPlug {
    pub fn new(ep: Box<dyn FrameEndpoint>) -> EndpointPlug {
        EndpointPlug {
            fd: ep.fd(),
            inner: Mutex::new(Inner {
                ep,
                links: Vec::new(),
            }),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Plug for EndpointPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.service(now);
        for i in 0..inner.links.len() {
            let l = inner.links[i];
            inner.ep.send_batch(l, &[frame], now);
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let wait = {
                let now = Instant::now();
                let mut inner = self.lock();
                inner.service(now);
                let mut lens = [0usize; 1];
                let mut links = [0 as LinkId; 1];
                let stride = buf.len();
                let mut rx = RxBatch {
                    buf: &mut *buf,
                    stride,
                    lens: &mut lens,
                    links: &mut links,
                };
                match inner.ep.recv_batch(&mut rx, now) {
                    Ok(1) => return Ok(lens[0]),
                    // transport packets only: more may wait
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                inner.service(now);
                inner.ep.poll_timeout().map_or(Duration::from_secs(1), |t| {
                    t.saturating_duration_since(Instant::now())
                })
            };
            crate::sys::wait_readable(self.fd, wait.min(Duration::from_secs(1)));
        }
    }

    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.lock().ep.close(Instant::now());
        }
    }
}
