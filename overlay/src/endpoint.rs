//! The frame endpoint: the one abstraction at the bottom of the stack.
//!
//! Every transport that carries Ethernet frames across hosts (udp, vxvde,
//! cryptcab, …) is a non-blocking [`FrameEndpoint`] that an owner's poll
//! loop drives. It may carry several *links* at once (a cryptcab listener:
//! one link per peer); each link becomes one switch port.
//!
//! The owner's loop, in the words of quinn-proto's `Connection`:
//!
//! 1. wait until [`FrameEndpoint::fd`] is readable or
//!    [`FrameEndpoint::poll_timeout`] has passed;
//! 2. call [`FrameEndpoint::recv_batch`] until it fails with `WouldBlock`
//!    (it handles the transport's own packets — handshakes, keepalives —
//!    by itself and returns only frames, each with the link it came on; a
//!    batch of only such packets returns 0 frames: call again, or yield
//!    and come back, the descriptor will not be readable again);
//! 3. call [`FrameEndpoint::handle_timeout`] when the deadline has passed;
//! 4. drain [`FrameEndpoint::poll_event`]: links that came up (give them a
//!    port) or went down (take their port down);
//! 5. hand frames for a link to [`FrameEndpoint::send_batch`] at any time.
//!
//! The endpoint owns its socket and sends its own control packets; it
//! never blocks. Frames that a full socket refuses are counted and
//! dropped, as the network would (a UDP cable has no backpressure).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// One link of an endpoint (a peer of a listener; 0 for a plain cable).
pub type LinkId = u64;

/// Where a batch of received frames goes: `lens.len()` buffers of
/// `stride` bytes laid end to end in `buf`, and the link of each frame.
pub struct RxBatch<'a> {
    pub buf: &'a mut [u8],
    pub stride: usize,
    pub lens: &'a mut [usize],
    pub links: &'a mut [LinkId],
}

impl RxBatch<'_> {
    /// How many frames fit.
    pub fn capacity(&self) -> usize {
        self.lens
            .len()
            .min(self.links.len())
            .min(self.buf.len() / self.stride.max(1))
    }

    /// Copies `frame` into slot `i` for `link`. A frame longer than a slot
    /// is not copied; false then (the caller counts it).
    pub fn put(&mut self, i: usize, link: LinkId, frame: &[u8]) -> bool {
        if frame.len() > self.stride || i >= self.capacity() {
            return false;
        }
        let at = i * self.stride;
        self.buf[at..at + frame.len()].copy_from_slice(frame);
        self.lens[i] = frame.len();
        self.links[i] = link;
        true
    }
}

/// What happened to an endpoint's links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A link is ready to carry frames: give it a port.
    Up { link: LinkId, peer: String },
    /// A link stopped (the peer is dead, closed, or was removed): take its
    /// port down. `why` is for the log.
    Down { link: LinkId, why: String },
}

/// Counters and state of one link, for `cable/print`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkStatus {
    pub link: LinkId,
    pub up: bool,
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// The peer's name, when it has one (an ssh destination, a cable id).
    pub name: Option<String>,
    /// The AEAD in use.
    pub cipher: Option<String>,
    /// The fingerprint of the peer's long-term key, when it has one.
    pub identity: Option<String>,
    /// Since the last packet heard from the peer.
    pub last_heard: Option<Duration>,
    /// Round-trip time, when the transport measures it.
    pub rtt: Option<Duration>,
    pub rekeys: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Packets or frames dropped, by reason (only non-zero ones).
    pub drops: Vec<(String, u64)>,
}

/// The state of a whole endpoint, for `cable/print`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointStatus {
    /// `dial`, `listen` or `plug`.
    pub role: &'static str,
    /// The local address it sends from or listens on.
    pub local: Option<SocketAddr>,
    /// What it is doing when no link is up ("handshaking", …).
    pub state: String,
    pub links: Vec<LinkStatus>,
    /// Drops not attributed to a link (unauthenticated packets), by reason.
    pub drops: Vec<(String, u64)>,
}

/// A non-blocking, batch-capable carrier of Ethernet frames.
pub trait FrameEndpoint: Send {
    /// The descriptor to watch for readability.
    fn fd(&self) -> RawFd;
    /// Receives what is waiting, without blocking: returns how many frames
    /// were put into `rx` (possibly 0: the batch held only transport
    /// packets, which are handled inside), or `WouldBlock` once nothing is
    /// left.
    fn recv_batch(&mut self, rx: &mut RxBatch<'_>, now: Instant) -> io::Result<usize>;
    /// Sends frames on a link, without blocking. Returns how many the
    /// endpoint took (sent, or dropped and counted); the rest may be
    /// offered again later.
    fn send_batch(&mut self, link: LinkId, frames: &[&[u8]], now: Instant) -> usize;
    /// When [`FrameEndpoint::handle_timeout`] wants to run next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs the timers that are due (keepalives, retries, dead peers).
    fn handle_timeout(&mut self, now: Instant);
    /// The next change of a link's state.
    fn poll_event(&mut self) -> Option<EndpointEvent>;
    /// Ends one link (the others go on); its Down event follows.
    fn close_link(&mut self, link: LinkId, now: Instant);
    /// Says goodbye on every link where the protocol has one.
    fn close(&mut self, now: Instant);
    /// State and counters.
    fn status(&self, now: Instant) -> EndpointStatus;
}

impl fmt::Debug for dyn FrameEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameEndpoint(fd {})", self.fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_batch_slots() {
        let mut buf = [0u8; 40];
        let mut lens = [0usize; 4];
        let mut links = [0u64; 4];
        let mut rx = RxBatch {
            buf: &mut buf,
            stride: 10,
            lens: &mut lens,
            links: &mut links,
        };
        assert_eq!(rx.capacity(), 4);
        assert!(rx.put(1, 7, b"hello"));
        assert!(!rx.put(2, 7, &[0u8; 11]), "longer than a slot");
        assert!(!rx.put(4, 7, b"x"), "past the end");
        assert_eq!(&buf[10..15], b"hello");
        assert_eq!(lens[1], 5);
        assert_eq!(links[1], 7);
    }
}
