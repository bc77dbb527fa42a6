//! Frames and link changes from the tokio thread that runs quinn to the
//! switch's loop.
//!
//! A bounded queue of reusable buffers behind a mutex, and an eventfd the
//! loop polls. The tokio side copies each reassembled frame into a buffer
//! from the free list (made once, then reused: no allocation per frame in
//! steady state) and writes the eventfd when the queue was empty and the
//! consumer said it would wait; the loop copies frames straight into its
//! receive batch and gives the buffers back. A full queue drops the frame
//! and counts it, as a full socket would.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use crate::endpoint::{LinkId, RxBatch};

/// Frames waiting for the loop at most.
pub const QUEUE: usize = 2048;
/// Capacity of a fresh buffer (a standard frame fits; a jumbo frame
/// grows it once).
const BUF: usize = 1536;

struct Inner<N> {
    frames: VecDeque<(LinkId, Vec<u8>)>,
    free: Vec<Vec<u8>>,
    notes: VecDeque<N>,
    /// The consumer found nothing: the next push writes the eventfd.
    armed: bool,
    full: u64,
}

/// The queue between the two threads; `N` is what the tokio side has to
/// say besides frames (links up and down).
pub struct Handoff<N> {
    inner: Mutex<Inner<N>>,
    efd: OwnedFd,
}

impl<N> Handoff<N> {
    pub fn new() -> io::Result<Handoff<N>> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a
        // descriptor we own from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Handoff {
            inner: Mutex::new(Inner {
                frames: VecDeque::with_capacity(QUEUE),
                free: Vec::new(),
                notes: VecDeque::new(),
                armed: true,
                full: 0,
            }),
            efd,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<N>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The descriptor that is readable when something waits.
    pub fn fd(&self) -> RawFd {
        self.efd.as_raw_fd()
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to our eventfd.
        // A full counter (EAGAIN) means it is readable already.
        let _ = unsafe { libc::write(self.efd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    fn clear(&self) {
        let mut v = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer from our
        // non-blocking eventfd.
        let _ = unsafe { libc::read(self.efd.as_raw_fd(), v.as_mut_ptr().cast(), v.len()) };
    }

    /// Queues a frame of `link` (tokio side); false when the queue is full
    /// (the frame is dropped and counted).
    pub fn push_frame(&self, link: LinkId, frame: &[u8]) -> bool {
        let wake = {
            let mut g = self.lock();
            if g.frames.len() >= QUEUE {
                g.full += 1;
                return false;
            }
            let mut b = g.free.pop().unwrap_or_else(|| Vec::with_capacity(BUF));
            b.clear();
            b.extend_from_slice(frame);
            g.frames.push_back((link, b));
            std::mem::replace(&mut g.armed, false)
        };
        if wake {
            self.wake();
        }
        true
    }

    /// Queues a note (tokio side) and wakes the loop.
    pub fn push_note(&self, n: N) {
        self.lock().notes.push_back(n);
        self.wake();
    }

    /// Takes waiting notes (loop side).
    pub fn take_notes(&self, out: &mut Vec<N>) {
        let mut g = self.lock();
        out.extend(g.notes.drain(..));
    }

    /// Moves waiting frames into `rx` (loop side); `WouldBlock` when there
    /// were none. A frame longer than a slot is dropped; `too_long` counts
    /// it.
    pub fn take(&self, rx: &mut RxBatch<'_>, too_long: &mut u64) -> io::Result<usize> {
        self.clear();
        let cap = rx.capacity();
        let mut g = self.lock();
        let mut n = 0;
        while n < cap {
            let Some((link, b)) = g.frames.pop_front() else {
                break;
            };
            if rx.put(n, link, &b) {
                n += 1;
            } else {
                *too_long += 1;
            }
            g.free.push(b);
        }
        if g.frames.is_empty() {
            g.armed = true;
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        Ok(n)
    }

    /// Frames dropped because the queue was full.
    pub fn full_drops(&self) -> u64 {
        self.lock().full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn frames_cross_wake_the_loop_and_reuse_buffers() {
        let h: Handoff<&'static str> = Handoff::new().unwrap();
        let mut buf = vec![0u8; 4 * 100];
        let (mut lens, mut links) = ([0usize; 4], [0u64; 4]);
        let mut too_long = 0;
        let mut rx = RxBatch {
            buf: &mut buf,
            stride: 100,
            lens: &mut lens,
            links: &mut links,
        };
        assert!(!readable(h.fd()));
        assert_eq!(
            h.take(&mut rx, &mut too_long).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for i in 0..6u8 {
            assert!(h.push_frame(u64::from(i), &[i; 60]));
        }
        h.push_frame(9, &[0; 101]);
        assert!(readable(h.fd()));
        assert_eq!(h.take(&mut rx, &mut too_long).unwrap(), 4);
        assert!(!readable(h.fd()), "read clears it");
        // three left (one too long): the loop comes back for them
        assert_eq!(h.take(&mut rx, &mut too_long).unwrap(), 2);
        assert_eq!(too_long, 1);
        assert_eq!(rx.links[..2], [4, 5]);
        assert_eq!(rx.lens[0], 60);
        // the consumer waits now: the next push wakes it once
        assert!(h.take(&mut rx, &mut too_long).is_err());
        h.push_frame(1, b"x");
        h.push_frame(1, b"y");
        assert!(readable(h.fd()));
        assert_eq!(h.take(&mut rx, &mut too_long).unwrap(), 2);
        // buffers came back to the free list
        assert!(h.lock().free.len() >= 6);
        h.push_note("up");
        assert!(readable(h.fd()));
        let mut notes = Vec::new();
        h.take_notes(&mut notes);
        assert_eq!(notes, ["up"]);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let h: Handoff<()> = Handoff::new().unwrap();
        for _ in 0..QUEUE {
            assert!(h.push_frame(0, b"f"));
        }
        assert!(!h.push_frame(0, b"f"));
        assert_eq!(h.full_drops(), 1);
    }
}
