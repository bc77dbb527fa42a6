//! Tickets: how a cable's pre-shared key reaches the server over ssh.
//!
//! The client makes a random 32-byte key and an 8-byte cable id, runs
//! `vde_cryptcab --ticket -p PORT` on the server host through ssh, and
//! writes one line to its stdin:
//!
//! ```text
//! vde-crypto/2 <cable id, 16 hex digits> <key, 64 hex digits> <client's static key, 64 hex digits>\n
//! ```
//!
//! That helper passes the line to the server listening on UDP port PORT
//! through the unix socket `DIR/net-NS/PORT` ([`socket_path`]): DIR is
//! `/run/vde_cryptcab` for a server run by root, else the user's own
//! `$XDG_RUNTIME_DIR/vde_cryptcab` (or `/tmp/vde_cryptcab-UID`), NS the
//! network namespace (one socket per namespace, as the UDP port is). Only
//! the server's user can create files there, so nobody can take the name
//! before the server starts; both sides check the directories' owner and
//! mode. Both ends check the other's kernel credentials (SO_PEERCRED):
//! * the server accepts tickets from root, from its own uid, and from the
//!   users and groups given with `--allow-user`/`--allow-group`; so the ssh
//!   login decides *who* the peer is, and the server decides whether that
//!   login may attach a cable;
//! * the helper gives the key only to a server run by root or by its own
//!   uid, so a process that squats the socket name cannot collect keys.
//!
//! The server answers one line, `OK <server's static key, 64 hex digits>
//! <text>` or `ERR <reason>`, which the helper prints and the client
//! reports. So the ssh login carries and authenticates both static keys:
//! the server takes the cable id for that client identity only, and the
//! client pins the server's key for the handshake (Noise IKpsk2, see
//! vde-crypto). The key is the handshake's PSK, never written to disk.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vde_crypto::{KeyId, Psk, PublicKey};
use zeroize::{Zeroize, Zeroizing};

use crate::sys;

/// The longest ticket line accepted (a well-formed one is 160 bytes).
pub const MAX_LINE: usize = 256;

/// How long either side waits for the other's line.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The directory of the ticket sockets of servers run by `uid`.
fn base_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        return PathBuf::from("/run/vde_cryptcab");
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        let x = PathBuf::from(x);
        if std::fs::symlink_metadata(&x).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            return x.join("vde_cryptcab");
        }
    }
    PathBuf::from(format!("/tmp/vde_cryptcab-{uid}"))
}

/// The network namespace of this process, for the socket's directory.
fn netns() -> String {
    std::fs::metadata("/proc/self/ns/net")
        .map_or_else(|_| "net".into(), |m| format!("net-{}", m.ino()))
}

/// Where a server run by `uid` in this network namespace takes tickets for
/// UDP port `port`.
pub fn socket_path(uid: u32, port: u16) -> PathBuf {
    base_dir(uid).join(netns()).join(port.to_string())
}

/// Refuses a directory that is a symlink, not a directory, not `uid`'s, or
/// writable by others: someone else could have put a socket there.
fn check_dir(dir: &Path, uid: u32) -> io::Result<()> {
    let m = std::fs::symlink_metadata(dir)?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of uid {uid} that only it may write (owner {}, mode {:04o}): \
                 remove it",
                dir.display(),
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Makes (or checks) the socket directories of this process's user:
/// readable by all for root's (allowed users' helpers connect; the server
/// checks who they are), private otherwise.
fn make_dirs(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let uid = sys::euid();
    let mode = if uid == 0 { 0o755 } else { 0o700 };
    let sub = path.parent().ok_or(io::ErrorKind::InvalidInput)?;
    let base = sub.parent().ok_or(io::ErrorKind::InvalidInput)?;
    for d in [base, sub] {
        match std::fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", d.display()))),
        }
        check_dir(d, uid)?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A cable id, its key and the client's static key, as carried on the
/// ticket line.
pub struct Ticket {
    pub key_id: KeyId,
    pub key: [u8; 32],
    pub client: PublicKey,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl Ticket {
    /// A fresh random ticket for the client `client`.
    pub fn generate(client: PublicKey) -> io::Result<Ticket> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut t = Ticket {
            key_id: [0; 8],
            key: [0; 32],
            client,
        };
        rng.fill(&mut t.key_id)
            .and_then(|_| rng.fill(&mut t.key))
            .map_err(|_| io::Error::other("no randomness from the system"))?;
        Ok(t)
    }

    pub fn psk(&self) -> Psk {
        Psk::from_bytes(self.key)
    }

    /// The line sent on the helper's stdin (secret: callers zeroize it).
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            vde_crypto::PROTOCOL,
            hex(&self.key_id),
            hex(&self.key),
            self.client.to_hex()
        )
    }

    /// Parses a ticket line (with or without its newline).
    pub fn parse(line: &str) -> Result<Ticket, String> {
        let mut words = line.trim_end_matches(['\n', '\r']).split(' ');
        match words.next() {
            Some(p) if p == vde_crypto::PROTOCOL => {}
            Some(p) => {
                return Err(format!(
                    "unknown ticket protocol {:?} (this side speaks {})",
                    p.chars().take(32).collect::<String>(),
                    vde_crypto::PROTOCOL
                ))
            }
            None => return Err("empty ticket".into()),
        }
        let key_id = words
            .next()
            .and_then(unhex::<8>)
            .ok_or("bad cable id in ticket")?;
        let key = words
            .next()
            .and_then(unhex::<32>)
            .ok_or("bad key in ticket")?;
        let client = words
            .next()
            .and_then(PublicKey::from_hex)
            .ok_or("bad client identity in ticket")?;
        if words.next().is_some() {
            return Err("trailing words in ticket".into());
        }
        Ok(Ticket {
            key_id,
            key,
            client,
        })
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes.
fn read_line(r: impl Read) -> io::Result<Zeroizing<String>> {
    read_line_until(r, None)
}

/// Sets a socket's receive timeout.
type SetTimeout<'a> = dyn Fn(Duration) -> io::Result<()> + 'a;

/// Reads one line of at most [`MAX_LINE`] bytes, byte by byte so nothing
/// past the newline is taken, into buffers that are wiped when dropped.
/// With a deadline (a socket and its timeout setter), the whole line must
/// arrive by then, however slowly the bytes trickle in.
fn read_line_until(
    mut r: impl Read,
    mut deadline: Option<(Instant, &SetTimeout<'_>)>,
) -> io::Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new([0u8; MAX_LINE]);
    let mut n = 0;
    loop {
        if let Some((end, set_timeout)) = deadline.as_mut() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            set_timeout(left)?;
        }
        if n == MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        match r.read(&mut buf[n..n + 1]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "no complete line (the other side closed)",
                ))
            }
            Ok(_) => {
                n += 1;
                if buf[n - 1] == b'\n' {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let text = std::str::from_utf8(&buf[..n])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not text"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Who may hand tickets to a server.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl Allow {
    /// Root, the server's own uid, and the listed users and groups
    /// (primary group from the credentials, supplementary ones through
    /// `groups_of`).
    pub fn permits(&self, uid: u32, gid: u32, groups_of: impl Fn(u32) -> Vec<u32>) -> bool {
        if uid == 0 || uid == sys::euid() || self.uids.contains(&uid) || self.gids.contains(&gid) {
            return true;
        }
        !self.gids.is_empty() && groups_of(uid).iter().any(|g| self.gids.contains(g))
    }
}

/// The server's end: a listener on [`socket_path`] for `port`, removed
/// when it is dropped.
pub struct TicketListener {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for TicketListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl TicketListener {
    pub fn bind(port: u16) -> io::Result<TicketListener> {
        let path = socket_path(sys::euid(), port);
        make_dirs(&path)?;
        if std::fs::symlink_metadata(&path).is_ok() {
            if UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another vde_cryptcab already serves UDP port {port} ({} answers)",
                        path.display()
                    ),
                ));
            }
            // a stale socket of a server that is gone
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mode = if sys::euid() == 0 { 0o666 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(TicketListener { listener, path })
    }

    /// Serves connections for ever; `accept` decides on each ticket given
    /// the sender's uid and gid and returns the reply text or the refusal.
    pub fn serve(
        self,
        allow: Allow,
        groups_of: impl Fn(u32) -> Vec<u32> + Send + 'static,
        accept: impl FnMut(Ticket, u32) -> Result<String, String> + Send + 'static,
    ) {
        self.serve_until(&AtomicBool::new(false), allow, groups_of, accept)
    }

    /// Like [`TicketListener::serve`], until `stop` is set and the socket
    /// is poked ([`wake`]). Connections are served at the same time, each
    /// on a thread with its own deadline ([`MAX_HELPERS`] at most: more are
    /// refused at once), so one idle connection holds nobody up; refusals
    /// are logged at most once per [`REFUSAL_LOG_EVERY`] per uid, with the
    /// count of those left out.
    pub fn serve_until(
        self,
        stop: &AtomicBool,
        allow: Allow,
        groups_of: impl Fn(u32) -> Vec<u32> + Send + 'static,
        accept: impl FnMut(Ticket, u32) -> Result<String, String> + Send + 'static,
    ) {
        let shared = Arc::new(Mutex::new(Shared {
            groups_of: Box::new(groups_of),
            accept: Box::new(accept),
            log: RefusalLog::default(),
        }));
        let allow = Arc::new(allow);
        let busy = Arc::new(AtomicUsize::new(0));
        for conn in self.listener.incoming() {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
            let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_HELPERS {
                busy.fetch_sub(1, Ordering::AcqRel);
                let uid = sys::peer_cred(&conn).map_or(u32::MAX, |(u, _)| u);
                refuse(&shared, uid, "too many helpers at once; try again");
                let _ = conn.write_all(b"ERR too many helpers at once; try again\n");
                continue;
            }
            let (shared, allow, busy) = (shared.clone(), allow.clone(), busy.clone());
            let spawned = std::thread::Builder::new()
                .name("ticket".into())
                .spawn(move || {
                    serve_one(conn, &allow, &shared);
                    busy.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                tracing::warn!("cannot start a thread for a ticket helper");
            }
        }
    }
}

/// Helpers served at the same time.
pub const MAX_HELPERS: usize = 16;

/// At most one refusal line per uid per this long.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

/// Uids whose refusals are remembered for the rate limit.
const REFUSAL_TRACKED: usize = 256;

type GroupsOf = Box<dyn Fn(u32) -> Vec<u32> + Send>;
type Accept = Box<dyn FnMut(Ticket, u32) -> Result<String, String> + Send>;

struct Shared {
    groups_of: GroupsOf,
    accept: Accept,
    log: RefusalLog,
}

/// When each uid's last refusal was logged, and how many since were not.
#[derive(Default)]
struct RefusalLog {
    last: HashMap<u32, (Instant, u64)>,
}

impl RefusalLog {
    /// The line to log for a refusal now, if any.
    fn refused(&mut self, uid: u32, why: &str, now: Instant) -> Option<String> {
        if self.last.len() >= REFUSAL_TRACKED && !self.last.contains_key(&uid) {
            self.last
                .retain(|_, (t, _)| now.saturating_duration_since(*t) < REFUSAL_LOG_EVERY);
            if self.last.len() >= REFUSAL_TRACKED {
                return None;
            }
        }
        match self.last.get_mut(&uid) {
            Some((t, n)) if now.saturating_duration_since(*t) < REFUSAL_LOG_EVERY => {
                *n += 1;
                None
            }
            Some((t, n)) => {
                let more = std::mem::take(n);
                *t = now;
                Some(if more > 0 {
                    format!("ticket refused: {why} ({more} more from uid {uid} since)")
                } else {
                    format!("ticket refused: {why}")
                })
            }
            None => {
                self.last.insert(uid, (now, 0));
                Some(format!("ticket refused: {why}"))
            }
        }
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refuse(shared: &Mutex<Shared>, uid: u32, why: &str) {
    if let Some(line) = lock(shared).log.refused(uid, why, Instant::now()) {
        tracing::warn!("{line}");
    }
}

/// One helper's connection: credentials first (a process that may not
/// hand tickets is answered at once), then one ticket line by a deadline.
fn serve_one(mut conn: UnixStream, allow: &Allow, shared: &Mutex<Shared>) {
    let cred = sys::peer_cred(&conn);
    let uid = cred.as_ref().map_or(u32::MAX, |(u, _)| *u);
    let reply = match cred {
        Err(e) => Err(format!("cannot read the helper's credentials: {e}")),
        Ok((uid, gid)) if !allow.permits(uid, gid, |u| (lock(shared).groups_of)(u)) => {
            Err(format!(
                "uid {uid} may not attach cables to this server \
                 (see --allow-user/--allow-group)"
            ))
        }
        Ok((uid, _)) => {
            let c = &conn;
            let set = |d: Duration| c.set_read_timeout(Some(d));
            match read_line_until(c, Some((Instant::now() + IO_TIMEOUT, &set))) {
                Err(e) => Err(format!("bad ticket: {e}")),
                Ok(line) => Ticket::parse(&line).and_then(|t| (lock(shared).accept)(t, uid)),
            }
        }
    };
    let text = match reply {
        Ok(t) => format!("OK {t}\n"),
        Err(e) => {
            refuse(shared, uid, &e);
            format!("ERR {e}\n")
        }
    };
    let _ = conn.write_all(text.as_bytes());
}

/// Pokes the ticket socket of `port` so that a listener told to stop
/// ([`TicketListener::serve_until`]) sees it.
pub fn wake(port: u16) {
    let _ = UnixStream::connect(socket_path(sys::euid(), port));
}

/// The helper's end (`vde_cryptcab --ticket -p PORT`, run by ssh): passes
/// one ticket line from `input` to the server and returns its answer.
pub fn hand_over(port: u16, input: impl Read) -> Result<String, String> {
    let line = read_line(input).map_err(|e| format!("reading the ticket: {e}"))?;
    let result = (|| {
        Ticket::parse(&line)?;
        // our own server's socket, or root's: the only two a key may go to
        let me = sys::euid();
        let mut tried = Vec::new();
        let mut conn = None;
        for uid in [me, 0] {
            let path = socket_path(uid, port);
            if tried.contains(&path) {
                continue;
            }
            let dirs_ok = path
                .parent()
                .into_iter()
                .chain(path.parent().and_then(Path::parent))
                .all(|d| check_dir(d, uid).is_ok());
            if dirs_ok {
                if let Ok(c) = UnixStream::connect(&path) {
                    conn = Some((c, path));
                    break;
                }
            }
            tried.push(path);
        }
        let Some((conn, path)) = conn else {
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "no vde_cryptcab server on UDP port {port} on this host (nothing at {})",
                list.join(" or ")
            ));
        };
        let mut conn = conn;
        let (server_uid, _) =
            sys::peer_cred(&conn).map_err(|e| format!("cannot check the server: {e}"))?;
        if server_uid != 0 && server_uid != me {
            return Err(format!(
                "the process on {} runs as uid {server_uid}, neither root nor this user: \
                 not giving it the key",
                path.display()
            ));
        }
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        // a refusal may come before the line is read: then the write
        // fails but the answer is there to read
        let sent = conn.write_all(line.as_bytes());
        let reply = read_line(&mut conn).map_err(|e| match &sent {
            Err(w) => format!("sending the ticket: {w}"),
            Ok(()) => format!("no answer from the server: {e}"),
        })?;
        Ok(reply.trim_end().to_string())
    })();
    drop(line); // wiped
    let reply = result?;
    match reply.split_once(' ') {
        Some(("OK", text)) => Ok(text.to_string()),
        Some(("ERR", why)) => Err(why.to_string()),
        _ if reply == "OK" => Ok(String::new()),
        _ => Err(format!("unexpected answer from the server: {reply:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip() {
        let t = Ticket::generate(PublicKey([7; 32])).unwrap();
        let line = t.line();
        assert_eq!(line.len(), 12 + 1 + 16 + 1 + 64 + 1 + 64 + 1);
        assert!(line.len() <= MAX_LINE);
        let u = Ticket::parse(&line).unwrap();
        assert_eq!(u.key_id, t.key_id);
        assert_eq!(u.key, t.key);
        assert_eq!(u.client, t.client);
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        let t = Ticket::generate(PublicKey([7; 32])).unwrap();
        let good = t.line();
        for (bad, why) in [
            ("", "unknown ticket protocol"),
            ("vde-crypto/1 00 00\n", "unknown ticket protocol"),
            ("vde-crypto/2 0011\n", "cable id"),
            (&good[..good.len() - 3], "client identity"),
            (&good.replace(' ', "  "), "cable id"),
            (&format!("{} extra\n", good.trim_end()), "trailing"),
            (&good[..12 + 1 + 16 + 1 + 60], "bad key"),
        ] {
            let e = Ticket::parse(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(Ticket::parse(&good.replace('a', "g")).is_err() || !good.contains('a'));
    }

    #[test]
    fn a_trickling_line_meets_the_deadline() {
        struct Slow;
        impl Read for Slow {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(10));
                b[0] = b'x';
                Ok(1)
            }
        }
        let noop = |_: Duration| Ok(());
        let t = Instant::now();
        let e = read_line_until(Slow, Some((t + Duration::from_millis(50), &noop))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(1));
        // without a deadline the length bound ends it
        let e = read_line(Slow).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        assert_eq!(&*read_line(&b"ab\ncd\n"[..]).unwrap(), "ab\n");
    }

    #[test]
    fn allow_rules() {
        let me = sys::euid();
        let none = Allow::default();
        assert!(none.permits(0, 0, |_| vec![]));
        assert!(none.permits(me, 12345, |_| vec![]));
        assert!(!none.permits(54321, 54321, |_| vec![]) || me == 54321);
        let a = Allow {
            uids: vec![1111],
            gids: vec![2222],
        };
        assert!(a.permits(1111, 9, |_| vec![]));
        assert!(a.permits(3333, 2222, |_| vec![]));
        assert!(a.permits(3333, 9, |_| vec![2222]));
        assert!(!a.permits(3333, 9, |_| vec![9, 10]));
    }

    #[test]
    fn hand_over_without_server_says_so() {
        let t = Ticket::generate(PublicKey([7; 32])).unwrap();
        let e = hand_over(1, t.line().as_bytes()).unwrap_err();
        assert!(e.contains("no vde_cryptcab server on UDP port 1"), "{e}");
    }

    #[test]
    fn ticket_travels_through_the_socket() {
        let port = 40000 + (std::process::id() % 20000) as u16;
        let l = TicketListener::bind(port).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            l.serve(
                Allow::default(),
                |_| vec![],
                move |t, uid| {
                    tx.send((t.key_id, uid)).unwrap();
                    Ok("port 5".into())
                },
            )
        });
        let t = Ticket::generate(PublicKey([7; 32])).unwrap();
        assert_eq!(hand_over(port, t.line().as_bytes()).unwrap(), "port 5");
        let (id, uid) = rx.recv().unwrap();
        assert_eq!(id, t.key_id);
        assert_eq!(uid, sys::euid());
        assert!(hand_over(port, &b"garbage\n"[..])
            .unwrap_err()
            .contains("unknown ticket protocol"));
        assert!(TicketListener::bind(port)
            .err()
            .unwrap()
            .to_string()
            .contains("already serves"));
    }

    #[test]
    fn refusals_are_logged_once_per_interval_per_uid() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(
            log.refused(7, "no", t0).as_deref(),
            Some("ticket refused: no")
        );
        for k in 1..=100u64 {
            assert!(log
                .refused(7, "no", t0 + Duration::from_millis(k))
                .is_none());
        }
        // another uid has its own budget
        assert!(log.refused(8, "no", t0).is_some());
        let later = t0 + REFUSAL_LOG_EVERY;
        assert_eq!(
            log.refused(7, "no", later).as_deref(),
            Some("ticket refused: no (100 more from uid 7 since)")
        );
        // bounded memory under many uids
        for uid in 0..10_000u32 {
            let _ = log.refused(uid, "no", later);
        }
        assert!(log.last.len() <= REFUSAL_TRACKED);
    }

    #[test]
    fn an_idle_connection_holds_nobody_up() {
        let port = 40000 + ((std::process::id() + 7) % 20000) as u16;
        let l = TicketListener::bind(port).unwrap();
        std::thread::spawn(move || l.serve(Allow::default(), |_| vec![], |_, _| Ok("ok".into())));
        // a helper that connects and says nothing
        let idle = UnixStream::connect(socket_path(sys::euid(), port)).unwrap();
        let t = Ticket::generate(PublicKey([7; 32])).unwrap();
        let start = Instant::now();
        assert_eq!(hand_over(port, t.line().as_bytes()).unwrap(), "ok");
        assert!(
            start.elapsed() < IO_TIMEOUT,
            "served while the idle one waits: {:?}",
            start.elapsed()
        );
        drop(idle);
    }
}

/// Property tests: a ticket line parses back to the same ticket.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn line_parse(key_id in any::<[u8; 8]>(), key in any::<[u8; 32]>(), client in any::<[u8; 32]>(), end in prop_oneof![Just(""), Just("\n"), Just("\r\n")]) {
            let t = Ticket { key_id, key, client: PublicKey(client) };
            let line = t.line();
            let line = format!("{}{end}", line.trim_end());
            let u = Ticket::parse(&line).unwrap();
            prop_assert_eq!((u.key_id, u.key, u.client), (key_id, key, PublicKey(client)));
        }

        #[test]
        fn a_changed_word_does_not_parse(key_id in any::<[u8; 8]>(), key in any::<[u8; 32]>(), at in 0usize..159, c in "[g-z:/ ]") {
            let line = Ticket { key_id, key, client: PublicKey([3; 32]) }.line();
            let mut bytes = line.clone().into_bytes();
            // a non-hex character anywhere after the protocol name, or any
            // change to the name, breaks the line
            bytes[at] = c.as_bytes()[0];
            let changed = String::from_utf8(bytes).unwrap();
            if changed != line {
                prop_assert!(Ticket::parse(&changed).is_err(), "{changed:?}");
            }
        }
    }
}
