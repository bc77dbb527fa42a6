//! `udp://[SRCADDR:]SRCPORT->DSTADDR:DSTPORT`: raw frames in UDP
//! datagrams, compatible with libvdeplug4's udp plugin. The transport
//! itself lives in vde-overlay; this adapts it to a plug.

use std::io;

use vde_overlay::endpoint::FrameEndpoint;
use vde_overlay::udp::{UdpCable, UdpEndpoint, UdpSpec};

use super::parse::VnlError;
use super::{Locator, OpenArgs, OpenError, Plug};

impl Plug for UdpCable {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        UdpCable::send(self, frame)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        UdpCable::recv(self, buf)
    }
}

fn spec(loc: &Locator) -> Result<UdpSpec, OpenError> {
    Ok(loc
        .rest
        .parse()
        .map_err(|why: String| VnlError::BadAddress {
            addr: loc.rest.clone(),
            vnl: loc.text.clone(),
            why,
        })?)
}

/// The cable as an endpoint a switch hosts.
pub fn open_endpoint(loc: &Locator) -> Result<Box<dyn FrameEndpoint>, OpenError> {
    let ep = UdpEndpoint::open(&spec(loc)?)
        .map_err(|e| OpenError::io(format!("cannot open {}", loc.text), e))?;
    Ok(Box::new(ep))
}

pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let cable = UdpCable::open(&spec(loc)?)
        .map_err(|e| OpenError::io(format!("cannot open {}", loc.text), e))?;
    Ok(Box::new(cable))
}
