//! `ptp://PATH`: a point-to-point link between two processes using the
//! same PATH, in Debian vdeplug4 4.0.1's datagram flavour: the first to
//! open binds PATH and sends to `PATH+`; the second binds `PATH+` and is
//! connected to PATH. An empty datagram disconnects until the next send.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::parse::unescape;
use super::{Locator, OpenArgs, OpenError, Plug};

pub struct PtpPlug {
    sock: UnixDatagram,
    peer: PathBuf,
    bound: PathBuf,
    connected: AtomicBool,
}

impl Plug for PtpPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        if !self.connected.load(Ordering::Acquire) {
            if self.sock.connect(&self.peer).is_err() {
                // no peer yet: the frame is lost, as on an unplugged cable
                return Ok(());
            }
            self.connected.store(true, Ordering::Release);
        }
        self.sock.send(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.sock.recv(buf)?;
            if n == 0 {
                self.connected.store(false, Ordering::Release);
                continue;
            }
            return Ok(n);
        }
    }
}

impl Drop for PtpPlug {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.bound);
    }
}

pub fn open(loc: &Locator, args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let path = PathBuf::from(unescape(&loc.rest));
    let plus = PathBuf::from(format!("{}+", path.display()));
    let err = |what: &str, e| OpenError::io(format!("{what} {}", loc.text), e);
    let probe = UnixDatagram::unbound().map_err(|e| err("socket for", e))?;
    let (sock, bound, peer, connected) = if probe.connect(&path).is_ok() {
        // a live first peer: we are the second
        let _ = std::fs::remove_file(&plus);
        let s = UnixDatagram::bind(&plus).map_err(|e| err("cannot bind", e))?;
        s.connect(&path).map_err(|e| err("cannot connect", e))?;
        (s, plus, path, true)
    } else {
        let _ = std::fs::remove_file(&path);
        let s = UnixDatagram::bind(&path).map_err(|e| err("cannot bind", e))?;
        (s, path, plus, false)
    };
    let _ = std::fs::set_permissions(
        &bound,
        std::fs::Permissions::from_mode(args.mode.unwrap_or(0o700)),
    );
    if let Some(g) = args.group.as_deref().and_then(crate::users::parse_group) {
        let _ = std::os::unix::fs::chown(&bound, None, Some(g));
    }
    Ok(Box::new(PtpPlug {
        sock,
        peer,
        bound,
        connected: AtomicBool::new(connected),
    }))
}
