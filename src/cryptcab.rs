//! vde_cryptcab's switch side: each cable of vde-overlay's cryptcab gets
//! its own port, opened through a VNL (a switch directory in practice) with
//! the description `vde_cryptcab`, as the C tool does.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use vde_overlay::cryptcab::{Link, LocalSide, Slot};

use crate::sys;
use crate::vnl::{self, OpenArgs, Plug};

/// The switch (or any VNL) cables are plugged into.
pub struct SwitchSide {
    pub vnl: String,
}

impl LocalSide for SwitchSide {
    fn attach(&self) -> io::Result<Box<dyn Link>> {
        let args = OpenArgs {
            descr: "vde_cryptcab".into(),
            ..OpenArgs::default()
        };
        let plug = vnl::open(&self.vnl, &args).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Box::new(PlugLink {
            plug,
            closed: AtomicBool::new(false),
        }))
    }

    fn name(&self) -> String {
        if self.vnl.is_empty() {
            "/tmp/vde.ctl".into()
        } else {
            self.vnl.clone()
        }
    }
}

struct PlugLink {
    plug: Box<dyn Plug>,
    closed: AtomicBool,
}

impl Link for PlugLink {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.plug.send(frame)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.plug.recv(buf);
        if self.closed.load(Ordering::Acquire) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        r
    }

    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.plug.close();
        }
    }

    fn send_batch(&self, frames: &[&[u8]]) {
        let Some(fd) = self.plug.datagram_fd() else {
            for f in frames {
                let _ = self.plug.send(f);
            }
            return;
        };
        let mut rest = frames;
        while !rest.is_empty() {
            match sys::send_batch(fd, rest) {
                Ok(0) | Err(_) => {
                    // full (or gone): the rest one by one, blocking
                    for f in rest {
                        let _ = self.plug.send(f);
                    }
                    return;
                }
                Ok(n) => rest = &rest[n..],
            }
        }
    }

    fn recv_batch(&self, bufs: &mut [Slot], lens: &mut [usize]) -> io::Result<usize> {
        let (Some(first), Some(l0)) = (bufs.first_mut(), lens.first_mut()) else {
            return Ok(0);
        };
        *l0 = self.recv(first)?;
        let more = match self.plug.datagram_fd() {
            Some(fd) if bufs.len() > 1 => {
                sys::recv_batch(fd, &mut bufs[1..], &mut lens[1..]).unwrap_or(0)
            }
            _ => 0,
        };
        Ok(1 + more)
    }
}
