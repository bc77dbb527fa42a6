//! vde-crypto: the sans-IO secure-cable protocol of vde.
//!
//! This crate will hold the handshake messages, key schedule, seal/open,
//! replay window and rekey timers of the vde-crypto protocol. It touches no
//! socket and no clock: time is passed in by the caller.
//!
//! Until the secure-cable work lands it only names the protocol it will speak.

/// Name and version of the cable protocol, as it appears in handshakes.
pub const PROTOCOL: &str = "vde-crypto/1";
