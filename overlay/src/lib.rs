//! vde-overlay: cross-host transports that carry Ethernet frames between
//! vde switches (cryptcab, quic, vxvde, udp).
//!
//! Each transport exposes a concrete frame endpoint (open, send frame,
//! receive frame, close, state); the `vde` crate adapts it to its plug
//! interface. Dependencies point one way: `vde` -> `vde-overlay` -> `vde-crypto`.

pub use vde_crypto::PROTOCOL as CRYPTO_PROTOCOL;

pub mod cryptcab;
pub mod endpoint;
pub mod keyfile;
pub mod mss;
pub mod quic;
pub mod sys;
pub mod udp;
mod udpio;
pub mod vxvde;
