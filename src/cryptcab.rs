//! vde_cryptcab's switch side: each cable of vde-overlay's cryptcab gets
//! its own port, opened through a VNL (a switch directory in practice) with
//! the description `vde_cryptcab`, as the C tool does.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use vde_overlay::cryptcab::{Link, LocalSide};

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
}
