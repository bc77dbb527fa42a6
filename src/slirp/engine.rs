//! The router's thread: one loop over libslirp's sockets, the frame port
//! and a stop socket, sleeping in poll(2) until one of them is ready or
//! libslirp's next timer is due (never spinning), like libvdeslirp's
//! thread and QEMU's main-loop notifier.

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use super::ffi::{self, Stack};
use super::options::Settings;
use super::{classify, Class, Port, Router, Stats};

/// Largest frame read from the port; a read that fills the buffer is an
/// oversized frame and is dropped.
const BUF: usize = 65536 + 64;
/// Frames read from the port per loop iteration, at most.
const BATCH: usize = 64;

pub fn start(settings: &Settings, port: Port) -> Result<Router, String> {
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) =
        UnixDatagram::pair().map_err(|e| format!("cannot make the stop socket: {e}"))?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
    let settings = settings.clone();
    let st = stats.clone();
    let thread = std::thread::Builder::new()
        .name("slirp".into())
        .spawn(move || {
            ffi::block_all_signals();
            let Port {
                fd,
                seqpacket,
                keep,
            } = port;
            let mut stack = match setup(&settings, fd, st.clone()) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(ffi::version()));
            run(&mut stack, fd, seqpacket, &stop_rx, &st);
            drop(stack);
            drop::<Box<dyn Any + Send>>(keep);
        })
        .map_err(|e| format!("cannot start the slirp thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(version)) => {
            tracing::debug!("libslirp {version} running");
            Ok(Router {
                stop: stop_tx,
                thread: Some(thread),
                stats,
            })
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err("the slirp thread died while starting".into())
        }
    }
}

fn setup(settings: &Settings, fd: RawFd, stats: Arc<Stats>) -> Result<Stack, String> {
    let mut stack = Stack::new(settings, fd, stats)?;
    for f in &settings.forwards {
        stack.add_forward(f)?;
    }
    for g in &settings.guestfwds {
        stack.add_guestfwd(g)?;
    }
    Ok(stack)
}

fn run(stack: &mut Stack, port: RawFd, seqpacket: bool, stop: &UnixDatagram, stats: &Stats) {
    let mut buf = vec![0u8; BUF];
    let stop_fd = stop.as_raw_fd();
    loop {
        {
            let fds = &mut stack.host().fds;
            fds.clear();
            for fd in [port, stop_fd] {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // no timer and no socket due: sleep until a frame or a stop
        let timeout = stack.fill(u32::MAX);
        let polled = ffi::poll(&mut stack.host().fds, timeout);
        let failed = match polled {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(e) => {
                tracing::warn!("slirp: poll failed: {e}");
                return;
            }
        };
        let (port_ev, stop_ev) = {
            let fds = &stack.host().fds;
            (fds[0].revents, fds[1].revents)
        };
        if stop_ev != 0 {
            return;
        }
        if port_ev != 0 && !failed {
            for _ in 0..BATCH {
                match ffi::recv(port, &mut buf) {
                    Ok(0) if seqpacket => return,
                    Ok(n) if n >= BUF => {
                        stats.garbage.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(n) => {
                        let f = &buf[..n];
                        stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        match classify(f) {
                            Class::Ip => stack.input(f),
                            Class::Garbage => {
                                stats.garbage.fetch_add(1, Ordering::Relaxed);
                            }
                            Class::Other => {
                                stats.ignored.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        if port_ev & (libc::POLLHUP | libc::POLLERR) != 0 || seqpacket {
                            tracing::debug!("slirp: port closed: {e}");
                            return;
                        }
                        break;
                    }
                }
            }
        }
        stack.dispatch(failed);
        stack.run_timers();
    }
}

impl Router {
    /// Stops the thread and waits for it; libslirp closes its sockets.
    pub fn stop(&mut self) {
        let _ = self.stop.send(b"x");
        let _ = self.stop.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
