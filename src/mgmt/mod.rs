//! The management console as data (DESIGN principle 4): one command table
//! ([`commands::TABLE`]) from which `help`, dispatch, prefix matching and
//! the rc-file loader derive, and the exact response grammar of the C
//! switch (protocol spec §5).

pub mod commands;
pub mod debug;

use std::path::PathBuf;
use std::time::Instant;

use crate::core::Switch;
use crate::errno::Errno;

/// The prompt written after every command's output.
pub const PROMPT: &str = "\nvde$ ";
/// First line of a data block.
pub const DATA_HEADER: &str = "0000 DATA END WITH '.'\n";
/// What `logout` and `shutdown` write before the socket closes.
pub const END_OF_SESSION: &str = "9999 END OF SESSION";
/// Longest management line accepted; longer lines are refused with EINVAL.
pub const MAX_LINE: usize = 4096;

/// The two-line banner (also the head of `showinfo`).
pub fn banner() -> String {
    format!(
        "VDE switch V.{} (vde-rs)\n(C) vde contributors, after Virtual Square's VDE (R. Davoli) - GPLv2\n",
        crate::VERSION
    )
}

/// Facts about the running switch that `showinfo` and friends print.
#[derive(Debug, Clone)]
pub struct SwitchInfo {
    pub pid: u32,
    pub started: Instant,
    pub ctl_dir: PathBuf,
    pub ctl_mode: u32,
    pub mgmt: Option<(PathBuf, u32)>,
}

/// Counters kept by the IO shell, shown by the `stats` command.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellStats {
    /// Control requests refused (bad magic/version/type, no port, ...).
    pub bad_requests: u64,
    /// Control connections that vanished or stalled before a request.
    pub dropped_handshakes: u64,
    /// Frames not delivered because an endpoint's socket was full.
    pub tx_full: u64,
    /// Frames not delivered because of another send error.
    pub tx_error: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// Management lines refused for being too long.
    pub long_lines: u64,
    /// Frames from a cable link that had no port.
    pub cable_no_port: u64,
}

/// One management session: the console, a -M connection, or an rc file.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Debug categories this session subscribed to (bit per category).
    pub debug: u64,
    /// The stdin console (no `logout`).
    pub console: bool,
    /// Nesting depth of `load`.
    pub depth: u32,
}

/// What the shell must do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    None,
    /// Close this session after writing the output.
    Logout,
    /// Write the output, then stop the switch.
    Shutdown,
}

/// The cables a switch hosts, as the console sees them (`cable/...`).
/// Errors carry the errno of the status line and a message for the data
/// block.
pub trait CableHost {
    /// Opens a cable (`listen`: accept cables) from a locator; returns a
    /// line for the session.
    fn add(
        &mut self,
        sw: &Switch,
        vnl: &str,
        listen: bool,
        now: Instant,
    ) -> Result<String, (Errno, String)>;
    /// Ends the cable on `port` (for a listener's peer, that peer only).
    fn del(&mut self, sw: &Switch, port: i64, now: Instant) -> Result<String, (Errno, String)>;
    /// Writes the state of every cable, or of the one on `port`, as text
    /// or JSON.
    fn print(
        &self,
        sw: &Switch,
        port: Option<i64>,
        json: bool,
        now: Instant,
        out: &mut String,
    ) -> Result<(), Errno>;
}

/// A switch without cables (tests, in-process switches).
pub struct NoCables;

impl CableHost for NoCables {
    fn add(&mut self, _: &Switch, _: &str, _: bool, _: Instant) -> Result<String, (Errno, String)> {
        Err((crate::errno::ENOSYS, "this switch hosts no cables".into()))
    }

    fn del(&mut self, _: &Switch, _: i64, _: Instant) -> Result<String, (Errno, String)> {
        Err((crate::errno::ENXIO, "no cable on that port".into()))
    }

    fn print(
        &self,
        _: &Switch,
        _: Option<i64>,
        json: bool,
        _: Instant,
        out: &mut String,
    ) -> Result<(), Errno> {
        if json {
            out.push_str("[]\n");
        }
        Ok(())
    }
}

/// Everything a command handler may touch.
pub struct Ctx<'a> {
    pub sw: &'a mut Switch,
    pub cables: &'a mut dyn CableHost,
    pub now: Instant,
    pub info: &'a SwitchInfo,
    pub stats: &'a ShellStats,
    pub session: &'a mut Session,
    pub action: Action,
}

/// Output of one command line.
#[derive(Debug, Default)]
pub struct Reply {
    pub text: String,
    pub action: Action,
}

/// Splits a raw line the way the C switch does: one trailing `\n` removed
/// (a `\r` stays), leading blanks skipped.
fn trim_line(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.trim_start_matches([' ', '\t'])
}

/// Runs one command line and returns what to write back (without the
/// prompt: the caller adds it where the session has one).
pub fn execute(ctx: &mut Ctx<'_>, line: &str) -> Reply {
    let line = trim_line(line);
    let mut text = String::new();
    if line.is_empty() || line.starts_with('#') {
        return Reply::default();
    }
    let Some(cmd) = commands::find(line) else {
        status(&mut text, Err(crate::errno::ENOSYS));
        return Reply {
            text,
            action: Action::None,
        };
    };
    let args = line[cmd.path.len()..].trim_start_matches([' ', '\t']);
    let commands::Kind::Cmd { with_file, handler } = cmd.kind else {
        unreachable!("find returns commands only")
    };
    let mut data = String::new();
    let r = handler(ctx, args, &mut data);
    render(&mut text, with_file, &data);
    match ctx.action {
        Action::None => status(&mut text, r),
        Action::Logout | Action::Shutdown => text.push_str(END_OF_SESSION),
    }
    Reply {
        text,
        action: std::mem::take(&mut ctx.action),
    }
}

/// Appends a command's output: for commands "with file" the data block,
/// which they print even when they fail; for the others their text.
pub fn render(out: &mut String, with_file: bool, data: &str) {
    if with_file {
        out.push_str(DATA_HEADER);
        out.push_str(data);
        out.push_str(".\n");
    } else {
        out.push_str(data);
    }
}

/// Appends the status line for a result.
pub fn status(out: &mut String, r: Result<(), Errno>) {
    match r {
        Ok(()) => out.push_str("1000 Success\n"),
        Err(e) => out.push_str(&format!("1{:03} {}\n", e.0, e.text())),
    }
}

/// Splits a byte stream into command lines, refusing lines longer than
/// [`MAX_LINE`]. Keeps the partial last line between calls.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    overlong: bool,
}

/// One item cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Command(String),
    /// A line over the limit was discarded.
    TooLong,
}

impl LineBuffer {
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Line>) {
        for &b in data {
            if b == b'\n' {
                if self.overlong {
                    out.push(Line::TooLong);
                } else {
                    self.buf.push(b'\n');
                    out.push(Line::Command(
                        String::from_utf8_lossy(&self.buf).into_owned(),
                    ));
                }
                self.buf.clear();
                self.overlong = false;
            } else if self.buf.len() >= MAX_LINE {
                self.overlong = true;
                self.buf.clear();
            } else if !self.overlong {
                self.buf.push(b);
            }
        }
    }

    /// Takes an unterminated rest as a command, as the C switch does with
    /// each read(): vdeterm sends its commands without a newline.
    pub fn take_partial(&mut self, out: &mut Vec<Line>) {
        if !self.overlong && !self.buf.is_empty() {
            out.push(Line::Command(
                String::from_utf8_lossy(&self.buf).into_owned(),
            ));
            self.buf.clear();
        }
    }

    /// The unterminated rest at end of stream.
    pub fn finish(&mut self, out: &mut Vec<Line>) {
        if self.overlong {
            out.push(Line::TooLong);
        } else if !self.buf.is_empty() {
            out.push(Line::Command(
                String::from_utf8_lossy(&self.buf).into_owned(),
            ));
        }
        self.buf.clear();
        self.overlong = false;
    }
}

/// Parses an integer the way C's `atoi` does: optional blanks and sign,
/// leading digits, anything else ignored; garbage is 0.
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .take(18)
        .collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// Parses one integer the way `sscanf("%i")` does (decimal, 0x hex,
/// leading-0 octal). Returns the value and the unparsed rest.
pub fn scan_int(s: &str) -> Option<(i64, &str)> {
    let s = s.trim_start();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits_at) = if body.starts_with("0x") || body.starts_with("0X") {
        (16, 2)
    } else if body.starts_with('0') {
        (8, 0)
    } else {
        (10, 0)
    };
    let digits = &body[digits_at..];
    let n = digits.chars().take_while(|c| c.is_digit(radix)).count();
    if n == 0 {
        if radix == 16 {
            // "0x" with no hex digits: sscanf reads the 0
            return Some((0, &body[1..]));
        }
        return None;
    }
    let v = i64::from_str_radix(&digits[..n.min(18)], radix).ok()?;
    Some((if neg { -v } else { v }, &digits[n..]))
}

/// Scans exactly `N` integers (`%i %i ...`); `None` if fewer parse.
pub fn scan_ints<const N: usize>(s: &str) -> Option<[i64; N]> {
    let mut out = [0; N];
    let mut rest = s;
    for v in out.iter_mut() {
        let (x, r) = scan_int(rest)?;
        *v = x;
        rest = r;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
