//! The client end's keys and errors; the cable itself is
//! [`super::dial::Dial`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use vde_crypto::{Fingerprint, KeyId, Psk};

use super::ssh::{self, SshOptions};

/// Where the client's key comes from.
pub enum ClientKeys {
    /// `-P keyfile`; the server's identity is asked for (KEYREQ) and, when
    /// `pin` is given, must hash to it.
    Psk { psk: Psk, pin: Option<Fingerprint> },
    /// A fresh key per connection, handed over through ssh.
    Ssh(SshOptions),
}

/// Why the client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Ssh(#[from] ssh::SshError),
}

pub(super) fn random_id() -> io::Result<KeyId> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| io::Error::other("no randomness from the system"))?;
    Ok(id)
}

pub(super) fn resolve(host: &str, port: u16) -> Result<SocketAddr, ClientError> {
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ClientError::Resolve(host.to_string(), e))?;
    addrs.next().ok_or_else(|| {
        ClientError::Resolve(
            host.to_string(),
            io::Error::new(io::ErrorKind::NotFound, "no address"),
        )
    })
}
