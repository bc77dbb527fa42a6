//! `slirp://[/OPTION][/OPTION=VALUE]…`: a slirp router (DHCP, NAT to the
//! host's network, DNS forwarder, port forwards, IPv6) as a plug, with the
//! option names and defaults of vdeplug4's libvdeplug_slirp, so a locator
//! string works the same with Debian's plugin and with this one
//! (`crate::slirp::options` parses it). The router runs on its own
//! thread; the plug is one end of a `SOCK_SEQPACKET` pair whose other end
//! the router reads and writes. Needs the `slirp` cargo feature.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

use crate::slirp::{self, Port, Router};

use super::{Locator, OpenArgs, OpenError, Plug};

/// A router and the end of the pair its guests' frames go through.
pub struct SlirpPlug {
    sock: UnixDatagram,
    router: Mutex<Option<Router>>,
}

impl Plug for SlirpPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
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
    let (mine, theirs) =
        seqpacket_pair().map_err(|e| OpenError::io(format!("{}: socketpair", loc.text), e))?;
    let port = Port {
        fd: theirs.as_raw_fd(),
        seqpacket: true,
        keep: Box::new(theirs),
    };
    let router = slirp::start(&settings, port)
        .map_err(|e| OpenError::io(loc.text.clone(), io::Error::other(e)))?;
    Ok(Box::new(SlirpPlug {
        sock: mine,
        router: Mutex::new(Some(router)),
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
