//! The server end's keys; the cable itself is [`super::listen::Listen`].

use vde_crypto::Psk;

use super::ticket::Allow;

/// Where the server's keys come from.
pub enum ServerKeys {
    /// `-P keyfile`: every client knows the same key.
    Psk(Psk),
    /// Keys delivered over ssh by clients allowed by [`Allow`];
    /// `groups_of` lists a uid's supplementary groups.
    Ssh {
        allow: Allow,
        groups_of: Box<dyn Fn(u32) -> Vec<u32> + Send>,
    },
}
