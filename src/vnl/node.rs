//! What `hub://` and `switch://` share: the process itself becomes a small
//! switch (our switch core, run on a thread) that other programs join with
//! `vde://PATH`, and the plug is this process's own port on it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::parse::{path_style, VnlError};
use super::{Locator, OpenArgs, OpenError, Plug};
use crate::core::Config;
use crate::server::{Options, Server};
use crate::{sys, users};

/// Option keys of the hub and switch plugins.
pub const HUB_KEYS: &[&str] = &["mode", "dirmode", "grp"];
pub const SWITCH_KEYS: &[&str] = &[
    "mode",
    "dirmode",
    "grp",
    "hashsize",
    "expiretime",
    "hashseed",
];

/// Ports of a node (vdeplug4's nodes have no fixed limit).
const NODE_PORTS: u32 = 256;

struct Running {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<()>>,
}

static NODES: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Stops every node this process started and removes its directory. Tools
/// call it before they exit.
pub fn shutdown_all() {
    // The lock is held until every node has cleaned up, so that a second
    // caller (the main thread finishing while a signal handler thread shuts
    // down) waits instead of ending the process half way.
    let mut nodes = NODES.lock().unwrap_or_else(|e| e.into_inner());
    for n in nodes.drain(..) {
        n.stop.store(true, Ordering::Release);
        // poke the loop so it sees the flag now
        let _ = std::os::unix::net::UnixStream::connect(n.dir.join("ctl"));
        let _ = n.thread.join();
    }
}

/// The default node directory: `/tmp/vdenode_<user>`.
fn default_dir() -> PathBuf {
    let uid = sys::euid();
    match users::user_name(uid) {
        Some(u) => PathBuf::from(format!("/tmp/vdenode_{u}")),
        None => PathBuf::from(format!("/tmp/vdenode_u{uid}")),
    }
}

/// vdeplug4's directory mode from the socket mode: r and w bits of each
/// class become x (search) bits, plus setgid.
fn dirmode_from(mode: u32) -> u32 {
    0o2000 | mode | ((mode & 0o444) >> 2) | ((mode & 0o222) >> 1)
}

pub fn open(loc: &Locator, args: &OpenArgs, hub: bool) -> Result<Box<dyn Plug>, OpenError> {
    let scheme = if hub { "hub" } else { "switch" };
    let keys = if hub { HUB_KEYS } else { SWITCH_KEYS };
    let (path, opts) = path_style(&loc.rest, keys, scheme, &loc.text)?;
    let bad = |key: &str, value: &str, why: &str| VnlError::BadValue {
        key: key.into(),
        value: value.into(),
        vnl: loc.text.clone(),
        why: why.into(),
    };
    let octal = |key: &str| -> Result<Option<u32>, VnlError> {
        opts.value(key)
            .map(|v| u32::from_str_radix(v, 8).map_err(|_| bad(key, v, "not an octal mode")))
            .transpose()
    };
    let number = |key: &str| -> Result<Option<u64>, VnlError> {
        opts.value(key)
            .map(|v| v.parse::<u64>().map_err(|_| bad(key, v, "not a number")))
            .transpose()
    };
    let mode = octal("mode")?.unwrap_or(0o600) & !0o111;
    let dirmode = octal("dirmode")?.unwrap_or_else(|| {
        if opts.has("mode") {
            dirmode_from(mode)
        } else {
            0o2700
        }
    });
    let group = match opts.value("grp") {
        Some(g) => Some(users::parse_group(g).ok_or_else(|| bad("grp", g, "no such group"))?),
        None => None,
    };
    let dir = if path.is_empty() {
        default_dir()
    } else {
        PathBuf::from(&path)
    };
    if dir.exists() && !is_stale(&dir) {
        return Err(OpenError::io(
            format!("{} already exists (another node or switch?)", dir.display()),
            io::ErrorKind::AlreadyExists.into(),
        ));
    }
    let config = Config {
        numports: NODE_PORTS,
        hub,
        hashsize: number("hashsize")?.map_or(256, |h| h as usize),
        mac: Config::default().mac,
        priority: 0x8000,
        fstp: false,
        rstp: false,
        guard: false,
    };
    let options = Options {
        ctl_dir: dir.clone(),
        ctl_mode: mode,
        dir_mode: dirmode,
        group,
        mgmt: None,
        mgmt_mode: 0o600,
        mgmt_group: None,
        console: false,
        rcfile: None,
        taps: Vec::new(),
        cables: Vec::new(),
        listens: Vec::new(),
        signals: false,
        config,
    };
    let mut server = Server::bind(options)
        .map_err(|e| OpenError::io(format!("cannot start {}", loc.text), io::Error::other(e)))?;
    if let Some(exp) = number("expiretime")? {
        server.set_hash_expire(exp);
    }
    let real_dir = server.ctl_dir().to_path_buf();
    let stop = server.stop_handle();
    let thread = std::thread::Builder::new()
        .name(format!("{scheme}-node"))
        .spawn(move || server.run())
        .map_err(|e| OpenError::io("cannot start the node thread", e))?;
    NODES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Running {
            dir: real_dir.clone(),
            stop,
            thread,
        });
    let host = OpenArgs {
        descr: if args.descr.is_empty() {
            format!("{scheme} host")
        } else {
            args.descr.clone()
        },
        ..OpenArgs::default()
    };
    super::open(&real_dir.display().to_string(), &host)
}

/// A directory left by a node that is gone: its `ctl` takes no connection.
fn is_stale(dir: &Path) -> bool {
    let ctl = dir.join("ctl");
    ctl.exists() && std::os::unix::net::UnixStream::connect(&ctl).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_modes() {
        assert_eq!(dirmode_from(0o666), 0o2777);
        assert_eq!(dirmode_from(0o600), 0o2700);
        assert_eq!(dirmode_from(0o640), 0o2750);
    }
}
