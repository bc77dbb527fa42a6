//! `tap://IFNAME`: a Linux tap interface (IFF_TAP | IFF_NO_PI), created if
//! it does not exist; one read or write is one frame.

use std::fs::File;
use std::io::{self, Read, Write};

use super::{Locator, OpenArgs, OpenError, Plug};
use crate::sys;

pub struct TapPlug {
    dev: File,
}

impl Plug for TapPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (&self.dev).write(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.dev).read(buf)
    }
}

pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let name = super::parse::unescape(&loc.rest);
    let (dev, _) = sys::open_tap(&name, false)
        .map_err(|e| OpenError::io(format!("cannot open {}", loc.text), e))?;
    Ok(Box::new(TapPlug { dev }))
}
