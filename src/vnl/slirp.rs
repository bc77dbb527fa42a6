//! `slirp://[/OPTION][/OPTION=VALUE]…`: a slirp router (DHCP, NAT to the
//! host's network, DNS forwarder, port forwards, IPv6) as a plug, with the
//! option names and defaults of vdeplug4's libvdeplug_slirp, so a locator
//! string works the same with Debian's plugin and with this one
//! (`crate::slirp::options` parses it). The router runs on its own
//! thread; the plug is one end of a `SOCK_SEQPACKET` pair whose other end
//! the router reads and writes. Needs the `slirp` cargo feature.
//!
//! `open` starts a router once and stops it, so that what libslirp refuses
//! (a forwarded port in use) is an error there; the router that serves is
//! started by the first send or receive, so that a tool may fork between
//! the two (`vde_plug -d`): a thread does not survive a fork.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::slirp::{self, Port, Router, Settings};

use super::{Locator, OpenArgs, OpenError, Plug};

/// A router and the end of the pair its guests' frames go through.
pub struct SlirpPlug {
    sock: UnixDatagram,
    /// What the router is started with on first use, and its end of the
    /// pair.
    pending: Mutex<Option<(Settings, UnixDatagram)>>,
    started: AtomicBool,
    router: Mutex<Option<Router>>,
    vnl: String,
}

/// Starts a router on `theirs` (one end of a seqpacket pair).
fn start(settings: &Settings, theirs: UnixDatagram) -> Result<Router, String> {
    let port = Port {
        fd: theirs.as_raw_fd(),
        seqpacket: true,
        keep: Box::new(theirs),
    };
    slirp::start(settings, port)
}

impl SlirpPlug {
    /// Starts the router if it is not running yet.
    fn ensure_started(&self) -> io::Result<()> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if let Some((settings, theirs)) = pending.take() {
            match start(&settings, theirs) {
                Ok(r) => {
                    if let Ok(mut slot) = self.router.lock() {
                        *slot = Some(r);
                    }
                }
                Err(e) => {
                    let _ = self.sock.shutdown(Shutdown::Both);
                    return Err(io::Error::other(format!("{}: {e}", self.vnl)));
                }
            }
        }
        self.started.store(true, Ordering::Release);
        Ok(())
    }
}

impl Plug for SlirpPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.ensure_started()?;
        self.sock.send(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ensure_started()?;
        match self.sock.recv(buf)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => Ok(n),
        }
    }

    fn close(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
        if let Ok(mut r) = self.router.lock() {
            if let Some(mut r) = r.take() {
                tracing::info!("slirp: {}", r.stats);
                r.stop();
            }
        }
    }
}

impl Drop for SlirpPlug {
    fn drop(&mut self) {
        self.close();
    }
}

/// A `SOCK_SEQPACKET` pair (close-on-exec), as two datagram-style sockets.
pub fn seqpacket_pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
    use socket2::{Domain, Socket, Type};
    let (a, b) = Socket::pair(Domain::UNIX, Type::SEQPACKET.cloexec(), None)?;
    Ok((
        UnixDatagram::from(OwnedFd::from(a)),
        UnixDatagram::from(OwnedFd::from(b)),
    ))
}

pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let settings = slirp::options::from_locator(loc)?;
    if !slirp::AVAILABLE {
        return Err(OpenError::io(
            loc.text.clone(),
            io::Error::new(io::ErrorKind::Unsupported, slirp::FEATURE_MISSING),
        ));
    }
    if settings.verbose {
        eprint!("{}", settings.table());
    }
    let pair =
        || seqpacket_pair().map_err(|e| OpenError::io(format!("{}: socketpair", loc.text), e));
    // a trial run: libslirp's refusals are errors of open
    let (_probe, theirs) = pair()?;
    start(&settings, theirs)
        .map_err(|e| OpenError::io(loc.text.clone(), io::Error::other(e)))?
        .stop();
    let (mine, theirs) = pair()?;
    Ok(Box::new(SlirpPlug {
        sock: mine,
        pending: Mutex::new(Some((settings, theirs))),
        started: AtomicBool::new(false),
        router: Mutex::new(None),
        vnl: loc.text.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_err(s: &str) -> String {
        open(&Locator::split(s), &OpenArgs::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn bad_options_are_refused_before_anything_starts() {
        let e = open_err("slirp:///tcpfwd=nope");
        assert!(e.contains("tcpfwd") && e.contains("nope"), "{e}");
        let e = open_err("slirp:///nosuchkey");
        assert!(e.contains("unknown key: nosuchkey"), "{e}");
    }

    #[cfg(not(feature = "slirp"))]
    #[test]
    fn without_the_feature_the_feature_is_named() {
        let e = open_err("slirp://");
        assert!(e.contains("feature `slirp`"), "{e}");
    }

    #[cfg(feature = "slirp")]
    #[test]
    fn a_forward_libslirp_refuses_is_an_error_of_open() {
        let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let e = open_err(&format!("slirp:///tcpfwd={port}:10.0.2.15:80"));
        assert!(
            e.contains(&format!("cannot forward tcp 0.0.0.0:{port}")),
            "{e}"
        );
    }

    #[cfg(feature = "slirp")]
    #[test]
    fn arp_for_the_router_is_answered() {
        let plug = open(&Locator::split("slirp:///v4"), &OpenArgs::default()).unwrap();
        // who-has 10.0.2.2 tell 10.0.2.15, from 52:54:00:12:34:56
        let me = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&me);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&me);
        f.extend_from_slice(&[10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
        plug.send(&f).unwrap();
        // a runt is dropped, not answered
        plug.send(&[1, 2, 3]).unwrap();
        let mut buf = [0u8; 2048];
        let n = plug.recv(&mut buf).unwrap();
        let r = &buf[..n];
        assert_eq!(&r[0..6], &me, "reply to us");
        assert_eq!(&r[12..14], &[0x08, 0x06]);
        assert_eq!(&r[20..22], &[0, 2], "an ARP reply");
        assert_eq!(&r[28..32], &[10, 0, 2, 2], "for 10.0.2.2");
        plug.close();
    }
}
