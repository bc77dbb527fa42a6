//! Management sessions on the -M socket and the stdin console.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::sync::mpsc;

use mio::{Interest, Waker};

use super::{write_some, Conn, Server, MGMT};
use crate::mgmt::{self, Action, Line, LineBuffer, Session};

/// Output a session may leave unread before it is closed.
const MAX_PENDING_OUTPUT: usize = 4 << 20;

pub struct MgmtConn {
    pub stream: mio::net::UnixStream,
    pub session: Session,
    lines: LineBuffer,
    out: Vec<u8>,
    /// Close once `out` is written (after logout).
    closing: bool,
    want_write: bool,
}

impl MgmtConn {
    /// Queues output; false if the client is not reading and has too much.
    pub fn queue(&mut self, b: &[u8]) -> bool {
        self.out.extend_from_slice(b);
        self.out.len() <= MAX_PENDING_OUTPUT
    }

    /// Writes what the socket takes. Err if the client is gone.
    fn flush(&mut self) -> io::Result<()> {
        let n = write_some(&mut self.stream, &self.out)?;
        self.out.drain(..n);
        Ok(())
    }
}

/// The stdin console: a thread reads stdin (which may be a tty, a pipe or
/// a file, and epoll cannot watch files) and wakes the loop.
pub struct Console {
    rx: mpsc::Receiver<Option<String>>,
    pub session: Session,
    tty: bool,
}

impl Console {
    pub fn start(waker: Waker) -> Console {
        let (tx, rx) = mpsc::channel();
        let tty = io::stdin().is_terminal();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let stdin = io::stdin();
                let mut lock = stdin.lock();
                loop {
                    let mut line = Vec::new();
                    // Bounded read: a line longer than MAX_LINE is read to
                    // its end, discarded, and reported as too long.
                    let r = (&mut lock)
                        .take(mgmt::MAX_LINE as u64 + 1)
                        .read_until(b'\n', &mut line);
                    let mut msg = match r {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(String::from_utf8_lossy(&line).into_owned()),
                    };
                    if line.len() > mgmt::MAX_LINE && line.last() != Some(&b'\n') {
                        let mut rest = Vec::new();
                        loop {
                            rest.clear();
                            match (&mut lock)
                                .take(mgmt::MAX_LINE as u64)
                                .read_until(b'\n', &mut rest)
                            {
                                Ok(0) | Err(_) => break,
                                Ok(_) if rest.last() == Some(&b'\n') => break,
                                Ok(_) => {}
                            }
                        }
                        msg = Some("x".repeat(mgmt::MAX_LINE + 1));
                    }
                    let end = msg.is_none();
                    if tx.send(msg).is_err() || waker.wake().is_err() || end {
                        return;
                    }
                }
            })
            .expect("spawn stdin thread");
        let con = Console {
            rx,
            session: Session {
                console: true,
                ..Session::default()
            },
            tty,
        };
        con.prompt();
        con
    }

    pub fn write(&self, b: &[u8]) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(b);
        let _ = out.flush();
    }

    fn prompt(&self) {
        // The C switch writes its prompt to fd 0, so it only shows on a tty.
        if self.tty {
            self.write(mgmt::PROMPT.as_bytes());
        }
    }
}

impl Server {
    pub(super) fn accept_mgmt(&mut self) {
        loop {
            let Some(l) = self.mgmt.as_ref() else { return };
            match l.accept() {
                Ok((stream, _)) => {
                    let mut c = MgmtConn {
                        stream,
                        session: Session::default(),
                        lines: LineBuffer::default(),
                        out: Vec::new(),
                        closing: false,
                        want_write: false,
                    };
                    c.queue(mgmt::banner().as_bytes());
                    c.queue(mgmt::PROMPT.as_bytes());
                    let idx = self.insert(Conn::Mgmt(c));
                    let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
                        unreachable!()
                    };
                    if self
                        .poll
                        .registry()
                        .register(&mut c.stream, Self::stream_token(idx), Interest::READABLE)
                        .is_err()
                    {
                        self.remove(idx);
                        continue;
                    }
                    self.mgmt_ready(idx, false, true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("accept on {MGMT:?} management socket: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn mgmt_ready(&mut self, idx: usize, readable: bool, _writable: bool) {
        let mut lines = Vec::new();
        let mut gone = false;
        if readable {
            let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
                return;
            };
            let mut buf = [0u8; 4096];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        c.lines.finish(&mut lines);
                        gone = true;
                        break;
                    }
                    Ok(n) => c.lines.push(&buf[..n], &mut lines),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        gone = true;
                        break;
                    }
                }
                if lines.len() > 64 {
                    break;
                }
            }
        }
        for line in lines {
            let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
                return;
            };
            if c.closing {
                break;
            }
            let mut session = std::mem::take(&mut c.session);
            let (text, action) = match line {
                Line::Command(l) => self.execute(&mut session, &l),
                Line::TooLong => {
                    self.stats.long_lines += 1;
                    ("1022 Invalid argument\n".to_string(), Action::None)
                }
            };
            if let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) {
                c.session = session;
            }
            // Debug lines the command caused go out before its reply.
            self.update_debug_mask();
            self.deliver_events();
            let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
                return;
            };
            c.queue(text.as_bytes());
            if action == Action::None {
                c.queue(mgmt::PROMPT.as_bytes());
            } else {
                c.closing = true;
            }
        }
        self.update_debug_mask();
        let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
            return;
        };
        let flushed = c.flush();
        if gone
            || flushed.is_err()
            || c.out.len() > MAX_PENDING_OUTPUT
            || (c.closing && c.out.is_empty())
        {
            self.close_mgmt(idx);
            return;
        }
        let want = !c.out.is_empty();
        if want != c.want_write {
            c.want_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ =
                self.poll
                    .registry()
                    .reregister(&mut c.stream, Self::stream_token(idx), interest);
        }
    }

    pub(super) fn close_mgmt(&mut self, idx: usize) {
        if let Some(Conn::Mgmt(mut c)) = self.remove(idx) {
            let _ = c.flush();
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.update_debug_mask();
    }

    pub(super) fn console_input(&mut self) {
        loop {
            let Some(con) = self.console.as_mut() else {
                return;
            };
            let msg = match con.rx.try_recv() {
                Ok(m) => m,
                Err(_) => return,
            };
            let Some(line) = msg else {
                tracing::warn!("EOF on stdin, cleaning up and exiting");
                self.stopping = true;
                return;
            };
            let mut session = std::mem::take(&mut con.session);
            let (text, _) = if line.len() > mgmt::MAX_LINE {
                self.stats.long_lines += 1;
                ("1022 Invalid argument\n".to_string(), Action::None)
            } else {
                self.execute(&mut session, &line)
            };
            if let Some(con) = self.console.as_mut() {
                con.session = session;
            }
            self.deliver_events();
            if let Some(con) = self.console.as_mut() {
                con.write(text.as_bytes());
                con.prompt();
            }
            self.update_debug_mask();
        }
    }
}
