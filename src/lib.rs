//! vde: Virtual Distributed Ethernet in Rust.
//!
//! The switch core ([`core`]) and the wire views ([`frame`], [`ctl`]) are
//! sans-IO; [`mgmt`] is the console as data; [`server`] is the thin IO shell
//! that binds them to unix sockets.

pub mod cable;
pub mod core;
pub mod cryptcab;
pub mod ctl;
pub mod dpipe;
pub mod errno;
pub mod frame;
pub mod mgmt;
pub mod server;
pub mod sim;
pub mod slirp;
pub mod stream;
pub mod sys;
pub mod term;
pub mod users;
pub mod vnl;
pub mod wirefilter;

/// Logs to stderr, quiet by default: warnings only, or the level named by
/// `VDE_LOG` (`error`, `warn`, `info`, `debug`, `trace`). Plain messages,
/// colour only on a terminal. For the binaries' `main`.
pub fn init_logging() {
    init_logging_at(tracing::Level::WARN)
}

/// [`init_logging`] with another default level (`VDE_LOG` still wins).
pub fn init_logging_at(default: tracing::Level) {
    let level = std::env::var("VDE_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(default);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Parses a file mode given in octal on a command line (`660`, `0660`),
/// for clap's `value_parser`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode"))
}

/// The version this project reports in banners and `showinfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
