//! vde: Virtual Distributed Ethernet in Rust.
//!
//! The switch core ([`core`]) and the wire views ([`frame`], [`ctl`]) are
//! sans-IO; [`mgmt`] is the console as data; [`server`] is the thin IO shell
//! that binds them to unix sockets.

pub mod cable;
pub mod core;
pub mod ctl;
pub mod dpipe;
pub mod errno;
pub mod frame;
pub mod mgmt;
pub mod server;
pub mod stream;
pub mod sys;
pub mod term;
pub mod users;
pub mod vnl;
pub mod wirefilter;

/// The version this project reports in banners and `showinfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
