//! Management sessions on the -M socket and the stdin console.

use std::io::{self, IsTerminal, Read, Write};

use mio::Interest;

use super::{set_write_interest, write_some, Conn, Server, MGMT};
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

/// The stdin console. A thread copies stdin (a tty, a pipe or a file,
/// and epoll cannot watch files) into a socket pair whose other end the
/// loop watches like any management stream.
pub struct Console {
    stream: mio::net::UnixStream,
    lines: LineBuffer,
    pub session: Session,
    tty: bool,
}

impl Console {
    pub fn start() -> io::Result<Console> {
        let (mut theirs, ours) = std::os::unix::net::UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let tty = io::stdin().is_terminal();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let _ = io::copy(&mut io::stdin().lock(), &mut theirs);
                // dropping `theirs` tells the loop that stdin ended
            })?;
        let con = Console {
            stream: mio::net::UnixStream::from_std(ours),
            lines: LineBuffer::default(),
            session: Session {
                console: true,
                ..Session::default()
            },
            tty,
        };
        con.prompt();
        Ok(con)
    }

    pub fn source(&mut self) -> &mut mio::net::UnixStream {
        &mut self.stream
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
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.lines.take_partial(&mut lines);
                        break;
                    }
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
        if gone {
            self.close_mgmt(idx);
        } else {
            self.mgmt_flush(idx);
        }
    }

    /// Writes a session's pending output; closes it when it is done (after
    /// logout), gone, or too far behind; otherwise watches for room.
    pub(super) fn mgmt_flush(&mut self, idx: usize) {
        let Some(Some(Conn::Mgmt(c))) = self.conns.get_mut(idx) else {
            return;
        };
        let flushed = c.flush();
        if flushed.is_err() || c.out.len() > MAX_PENDING_OUTPUT || (c.closing && c.out.is_empty()) {
            self.close_mgmt(idx);
            return;
        }
        let want = !c.out.is_empty();
        set_write_interest(
            self.poll.registry(),
            &mut c.stream,
            Self::stream_token(idx),
            &mut c.want_write,
            want,
        );
    }

    pub(super) fn close_mgmt(&mut self, idx: usize) {
        if let Some(Conn::Mgmt(mut c)) = self.remove(idx) {
            let _ = c.flush();
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.update_debug_mask();
    }

    pub(super) fn console_input(&mut self) {
        let mut lines = Vec::new();
        let mut eof = false;
        {
            let Some(con) = self.console.as_mut() else {
                return;
            };
            let mut buf = [0u8; 4096];
            loop {
                match con.stream.read(&mut buf) {
                    Ok(n) if n > 0 => con.lines.push(&buf[..n], &mut lines),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(_) | Err(_) => {
                        con.lines.finish(&mut lines);
                        eof = true;
                        break;
                    }
                }
            }
        }
        for line in lines {
            let Some(con) = self.console.as_mut() else {
                return;
            };
            let mut session = std::mem::take(&mut con.session);
            let (text, action) = match line {
                Line::Command(l) => self.execute(&mut session, &l),
                Line::TooLong => {
                    self.stats.long_lines += 1;
                    ("1022 Invalid argument\n".to_string(), Action::None)
                }
            };
            if let Some(con) = self.console.as_mut() {
                con.session = session;
            }
            self.update_debug_mask();
            self.deliver_events();
            if let Some(con) = self.console.as_mut() {
                con.write(text.as_bytes());
                if action == Action::None {
                    con.prompt();
                }
            }
            if self.stopping {
                return;
            }
        }
        if eof {
            tracing::warn!("EOF on stdin, cleaning up and exiting");
            self.stopping = true;
        }
    }
}
