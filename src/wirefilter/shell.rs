//! The IO shell of wirefilter: reader threads feed one event channel; the
//! main loop owns the [`Channel`] model, writes what it releases, and runs
//! the management sessions. All timing decisions are the model's.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::console::{self, Action, Session};
use super::{Channel, Dir};
use crate::mgmt::{Line, LineBuffer};
use crate::stream::{self, Decoder, Item};
use crate::vnl::Plug;

/// Frames held while `speed` keeps a direction closed, per direction.
const MAX_HELD: usize = 4096;
/// Simultaneous management sessions (as the C tool).
const MAX_SESSIONS: usize = 3;

/// Where frames of one direction come from.
pub enum Input {
    Plug(Arc<dyn Plug>),
    /// A stream and its name for the log (`stdin`, `ALTERNATE_STDIN`).
    Stream(Box<dyn Read + Send>, &'static str),
}

/// Where frames of one direction go.
pub enum Output {
    Plug(Arc<dyn Plug>),
    Stream(Box<dyn Write + Send>),
}

impl Output {
    fn send(&mut self, f: &[u8], rec: &mut Vec<u8>) {
        match self {
            Output::Plug(p) => {
                let _ = p.send(f);
            }
            Output::Stream(w) => {
                if stream::encode(f, rec).is_some() {
                    let _ = w.write_all(rec).and_then(|_| w.flush());
                }
            }
        }
    }
}

/// How a wirefilter is wired and watched.
pub struct Config {
    /// L→R input (left side) and output (right side).
    pub lr: (Input, Output),
    /// R→L input and output, absent when monodirectional.
    pub rl: Option<(Input, Output)>,
    pub mgmt: Option<MgmtSocket>,
    /// A console on stdin/stdout (with -v); its end stops the filter.
    pub console: bool,
    /// Commands run before traffic flows (the CLI values, then `load RC`).
    pub startup: Vec<String>,
    pub blink: Option<(PathBuf, String)>,
}

enum Ev {
    Frame(Dir, Vec<u8>),
    /// An input ended, and why.
    Eof(Dir, String),
    NewSession(usize, UnixStream),
    Line(usize, Line),
    Closed(usize),
    Console(Option<String>),
}

fn spawn_input(dir: Dir, input: Input, tx: Sender<Ev>) {
    if let Input::Plug(p) = &input {
        // a switch that goes away ends the filter, as the C tool does
        let (p, tx) = (p.clone(), tx.clone());
        std::thread::spawn(move || {
            if p.wait_hangup() {
                let _ = tx.send(Ev::Eof(dir, "the switch hung up".into()));
            }
        });
    }
    std::thread::spawn(move || match input {
        Input::Plug(p) => {
            let mut buf = vec![0u8; crate::frame::MAX_JUMBO + 1];
            loop {
                match p.recv(&mut buf) {
                    Ok(n) if n >= crate::frame::HEADER_LEN => {
                        if tx.send(Ev::Frame(dir, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Ev::Eof(dir, format!("the plug closed: {e}")));
                        return;
                    }
                }
            }
        }
        Input::Stream(mut r, name) => {
            let mut dec = Decoder::default();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Ev::Eof(dir, format!("end of {name}")));
                        return;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Ev::Eof(dir, format!("cannot read {name}: {e}")));
                        return;
                    }
                    Ok(n) => n,
                };
                let mut gone = false;
                dec.push(&buf[..n], |item| match item {
                    Item::Frame(f) => gone |= tx.send(Ev::Frame(dir, f.to_vec())).is_err(),
                    Item::LengthError { len } => tracing::warn!("Packet length error size {len}"),
                });
                if gone {
                    return;
                }
            }
        }
    });
}

fn spawn_mgmt(listener: UnixListener, tx: Sender<Ev>) {
    std::thread::spawn(move || {
        for (id, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            let Ok(reader) = conn.try_clone() else {
                continue;
            };
            if tx.send(Ev::NewSession(id, conn)).is_err() {
                return;
            }
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = reader;
                let mut lines = LineBuffer::default();
                let mut buf = [0u8; 4096];
                loop {
                    let mut out = Vec::new();
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            lines.finish(&mut out);
                            for l in out {
                                let _ = tx.send(Ev::Line(id, l));
                            }
                            let _ = tx.send(Ev::Closed(id));
                            return;
                        }
                        Ok(n) => {
                            lines.push(&buf[..n], &mut out);
                            // one command per read, as vdeterm sends them
                            lines.take_partial(&mut out);
                        }
                    }
                    for l in out {
                        if tx.send(Ev::Line(id, l)).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

fn spawn_console(tx: Sender<Ev>) {
    std::thread::spawn(move || {
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Ev::Console(Some(l))).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Ev::Console(None));
    });
}

struct Sess {
    stream: UnixStream,
    session: Session,
}

/// Runs the filter until an input ends, `shutdown`, or the console ends.
pub fn run(cfg: Config, seed: u64) -> io::Result<()> {
    let start = Instant::now();
    let mode = if cfg.rl.is_some() {
        super::Mode::Bidirectional
    } else {
        super::Mode::Monodirectional
    };
    let mut ch = Channel::new(mode, seed, start);
    let (tx, rx) = mpsc::channel();
    let (lr_in, lr_out) = cfg.lr;
    spawn_input(Dir::LR, lr_in, tx.clone());
    let mut outputs: [Option<Output>; 2] = [Some(lr_out), None];
    if let Some((rl_in, rl_out)) = cfg.rl {
        spawn_input(Dir::RL, rl_in, tx.clone());
        outputs[Dir::RL.index()] = Some(rl_out);
    }
    let _mgmt_guard = cfg.mgmt.map(|m| {
        spawn_mgmt(m.listener, tx.clone());
        m.guard
    });
    let mut console_session = Session::default();
    for cmd in &cfg.startup {
        let (reply, _) = console::execute(&mut ch, &mut console_session, start, cmd);
        for l in reply
            .lines()
            .filter(|l| l.starts_with('1') && !l.starts_with("1000"))
        {
            tracing::warn!("{cmd}: {l}");
        }
    }
    if cfg.console {
        spawn_console(tx.clone());
    }
    drop(tx);
    let blink = match &cfg.blink {
        Some((path, id)) => Some((UnixDatagram::unbound()?, path.clone(), id.clone())),
        None => None,
    };
    let mut sessions: HashMap<usize, Sess> = HashMap::new();
    let mut held: [VecDeque<Vec<u8>>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut rec = Vec::new();
    loop {
        let now = Instant::now();
        let mut wake = ch.poll_timeout();
        for d in Dir::BOTH {
            if !held[d.index()].is_empty() {
                let t = ch.next_accept(d, now).unwrap_or(now);
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        }
        let timeout = wake.map_or(Duration::from_secs(1), |w| w.saturating_duration_since(now));
        let ev = match rx.recv_timeout(timeout) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let now = Instant::now();
        match ev {
            None => {}
            Some(Ev::Frame(d, f)) => {
                let h = &mut held[d.index()];
                if h.is_empty() && ch.next_accept(d, now).is_none() {
                    ch.handle_frame(d, &f, now);
                } else if h.len() < MAX_HELD {
                    h.push_back(f);
                } else {
                    tracing::debug!("speed queue full: frame dropped");
                }
            }
            Some(Ev::Eof(d, why)) => {
                tracing::info!("wirefilter: {why} ({} input), stopping", d.as_str());
                return Ok(());
            }
            Some(Ev::NewSession(id, mut stream)) => {
                if sessions.len() >= MAX_SESSIONS {
                    continue;
                }
                let _ = stream.write_all(console::banner().as_bytes());
                let _ = stream.write_all(console::PROMPT.as_bytes());
                sessions.insert(
                    id,
                    Sess {
                        stream,
                        session: Session::default(),
                    },
                );
            }
            Some(Ev::Line(id, line)) => {
                let Some(s) = sessions.get_mut(&id) else {
                    continue;
                };
                let (reply, action) = match line {
                    Line::Command(l) => console::execute(&mut ch, &mut s.session, now, &l),
                    Line::TooLong => ("1022 Invalid argument\n".into(), Action::None),
                };
                let _ = s.stream.write_all(reply.as_bytes());
                match action {
                    Action::None => {
                        let _ = s.stream.write_all(console::PROMPT.as_bytes());
                    }
                    Action::Logout => {
                        let _ = s.stream.shutdown(std::net::Shutdown::Both);
                        sessions.remove(&id);
                    }
                    Action::Shutdown => return Ok(()),
                }
                let any = sessions.values().any(|s| s.session.markov_debug);
                ch.set_report_node_changes(any || console_session.markov_debug);
            }
            Some(Ev::Closed(id)) => {
                sessions.remove(&id);
            }
            Some(Ev::Console(None)) => {
                tracing::info!("wirefilter: end of stdin (the console), stopping");
                return Ok(());
            }
            Some(Ev::Console(Some(l))) => {
                let (reply, action) = console::execute(&mut ch, &mut console_session, now, &l);
                let mut out = io::stdout().lock();
                let _ = out.write_all(reply.as_bytes());
                let _ = out.flush();
                if action == Action::Shutdown {
                    return Ok(());
                }
            }
        }
        // frames that the speed gate held back, as far as it now allows
        for d in Dir::BOTH {
            while !held[d.index()].is_empty() && ch.next_accept(d, now).is_none() {
                if let Some(f) = held[d.index()].pop_front() {
                    ch.handle_frame(d, &f, now);
                }
            }
        }
        ch.handle_timeout(now);
        while let Some(t) = ch.poll_transmit(now) {
            if let Some((sock, path, id)) = &blink {
                let _ = sock.send_to(
                    format!("{id} {} {}\n", t.dir.as_str(), t.size()).as_bytes(),
                    path,
                );
            }
            if let Some(out) = outputs[t.dir.index()].as_mut() {
                out.send(&t.frame, &mut rec);
            }
            ch.recycle(t.frame);
        }
        while let Some(change) = ch.poll_event() {
            let line = format!("{change}\n");
            for s in sessions.values_mut().filter(|s| s.session.markov_debug) {
                let _ = s.stream.write_all(line.as_bytes());
            }
        }
    }
}

/// The management socket, bound; its file is removed when it is dropped.
pub struct MgmtSocket {
    listener: UnixListener,
    guard: RemoveOnDrop,
}

/// Binds the management socket at `path` with `mode`. A socket someone
/// still accepts connections on is refused (`AddrInUse`: another
/// wirefilter is there, and its socket stays); a stale one (nobody
/// listens) is replaced. Anything that is not a socket is left alone.
pub fn bind_mgmt(path: &Path, mode: u32) -> io::Result<MgmtSocket> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let listener = match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if !is_socket {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "Address already in use (the path exists and is not a socket)",
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "Address already in use (another program accepts connections there)",
                ));
            }
            tracing::debug!("replacing the stale socket {}", path.display());
            std::fs::remove_file(path)?;
            UnixListener::bind(path)?
        }
        r => r?,
    };
    let guard = RemoveOnDrop(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(MgmtSocket { listener, guard })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
