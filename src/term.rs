//! vdeterm: a terminal for VDE management sockets (vde_switch `-M`,
//! wirefilter `-M`), drop-in for the C `vdeterm`/`unixterm`.
//!
//! The protocol side is sans-IO: [`Splitter`] cuts the byte stream of a
//! console into lines, prompts and the end-of-session marker, and
//! [`Classifier`] reads the 4-digit codes of those lines the way libvdehist
//! does (`0000` opens a data block closed by `.`, `1xxx` is a status, `3xxx`
//! an asynchronous debug message). [`Session`] is the blocking client used
//! for the banner, the silent `help` and the non-interactive mode;
//! [`interactive`] is the line editor (rustyline) with history, completion
//! and debug messages printed while the user is idle.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter as _, Helper};

/// How long to wait for the banner's prompt and for each reply by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The status line of a successful command.
pub const SUCCESS: u16 = 1000;

/// The line a console writes (without newline) before closing a session.
pub const END_OF_SESSION: &str = "9999 END OF SESSION";

/// Errors of a management session. Every message names the socket.
#[derive(Debug, thiserror::Error)]
pub enum TermError {
    #[error("cannot connect to management socket {}: {}{}", path.display(), err, connect_hint(path, err))]
    Connect { path: PathBuf, err: io::Error },
    #[error(
        "{} is not a VDE management socket: no prompt within {} s",
        path.display(),
        timeout.as_secs_f64()
    )]
    NoPrompt { path: PathBuf, timeout: Duration },
    #[error(
        "{} closed the connection before sending a prompt (not a VDE management socket?)",
        path.display()
    )]
    NoBanner { path: PathBuf },
    #[error("no reply to `{command}` from {} within {} s", path.display(), timeout.as_secs_f64())]
    Timeout {
        path: PathBuf,
        command: String,
        timeout: Duration,
    },
    #[error("the management session on {} was closed by the other side", path.display())]
    Closed { path: PathBuf },
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },
}

/// What a console's byte stream is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete line, without its newline.
    Line(String),
    /// The prompt (`\nvde$ `): the previous command is complete.
    Prompt,
    /// `9999 END OF SESSION`: the console closes the session (logout,
    /// shutdown).
    End,
    /// The connection was closed (or failed).
    Closed,
}

/// Cuts a console's byte stream into [`Event`]s. The prompt is the last
/// line of the banner (`vde$ `, `VDEwf$ `); it is recognised when it follows
/// an empty line, and that empty line (the `\n` of the prompt) is dropped.
#[derive(Debug, Clone)]
pub struct Splitter {
    prompt: Vec<u8>,
    partial: Vec<u8>,
    pending_empty: bool,
}

impl Splitter {
    pub fn new(prompt: &str) -> Splitter {
        Splitter {
            prompt: prompt.as_bytes().to_vec(),
            partial: Vec::new(),
            // the banner's last empty line was consumed with the banner
            pending_empty: false,
        }
    }

    /// The prompt this splitter recognises.
    pub fn prompt(&self) -> String {
        String::from_utf8_lossy(&self.prompt).into_owned()
    }

    /// Feeds bytes read from the console.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                if self.pending_empty {
                    out.push(Event::Line(String::new()));
                    self.pending_empty = false;
                }
                if line.is_empty() {
                    self.pending_empty = true;
                } else {
                    out.push(Event::Line(line));
                }
                continue;
            }
            self.partial.push(b);
            if self.pending_empty && self.partial == self.prompt {
                self.partial.clear();
                self.pending_empty = false;
                out.push(Event::Prompt);
            } else if self.partial == END_OF_SESSION.as_bytes() {
                self.partial.clear();
                if self.pending_empty {
                    out.push(Event::Line(String::new()));
                    self.pending_empty = false;
                }
                out.push(Event::End);
            }
        }
    }

    /// The stream ended: flushes what is left, then [`Event::Closed`].
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if self.pending_empty {
            out.push(Event::Line(String::new()));
            self.pending_empty = false;
        }
        if !self.partial.is_empty() {
            out.push(Event::Line(
                String::from_utf8_lossy(&self.partial).into_owned(),
            ));
            self.partial.clear();
        }
        out.push(Event::Closed);
    }
}

/// A reply line as libvdehist reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// `0000 DATA END WITH '.'`
    DataBegin,
    /// A line inside a data block.
    Data(&'a str),
    /// The `.` closing a data block.
    DataEnd,
    /// `1xxx text`: the result of a command.
    Status { code: u16, text: &'a str },
    /// `3xxx text`: an asynchronous debug message.
    Debug(&'a str),
    /// Anything else (no code, `9999`, …); vdeterm does not show it.
    Other(&'a str),
}

/// Tracks whether the stream is inside a data block.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    in_data: bool,
}

impl Classifier {
    pub fn new() -> Classifier {
        Classifier::default()
    }

    pub fn classify<'a>(&mut self, line: &'a str) -> Item<'a> {
        if self.in_data {
            if line == "." {
                self.in_data = false;
                return Item::DataEnd;
            }
            return Item::Data(line);
        }
        // like libvdehist: the code is the first run of 4 digits
        let b = line.as_bytes();
        let Some(at) =
            (0..b.len().saturating_sub(3)).find(|&i| b[i..i + 4].iter().all(u8::is_ascii_digit))
        else {
            return Item::Other(line);
        };
        let code = &line[at..at + 4];
        let text = line.get(at + 5..).unwrap_or("");
        match code.as_bytes()[0] {
            _ if code == "0000" => {
                self.in_data = true;
                Item::DataBegin
            }
            b'1' => Item::Status {
                code: code.parse().unwrap_or(0),
                text,
            },
            b'3' => Item::Debug(text),
            _ => Item::Other(line),
        }
    }
}

/// How reply lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Like C vdeterm: codes stripped, data blocks unwrapped, debug
    /// messages as `** DBG MSG: …`.
    #[default]
    Vdeterm,
    /// The console's lines, unmodified.
    Raw,
}

/// The text to show for a line, or None when the line is not shown.
pub fn render(style: Style, line: &str, item: Item<'_>) -> Option<String> {
    if style == Style::Raw {
        return Some(line.to_string());
    }
    match item {
        Item::Data(l) => Some(l.to_string()),
        Item::Status { text, .. } => Some(text.to_string()),
        Item::Debug(text) => Some(format!("** DBG MSG: {text}")),
        Item::DataBegin | Item::DataEnd | Item::Other(_) => None,
    }
}

/// How a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEnd {
    Prompt,
    EndOfSession,
    Closed,
}

/// The lines a console wrote in reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<String>,
    pub end: ReplyEnd,
}

impl Reply {
    /// The code of the last status line (`1000` for success).
    pub fn status(&self) -> Option<u16> {
        let mut c = Classifier::new();
        let mut status = None;
        for l in &self.lines {
            if let Item::Status { code, .. } = c.classify(l) {
                status = Some(code);
            }
        }
        status
    }

    /// The lines to show, in `style`.
    pub fn rendered(&self, style: Style) -> Vec<String> {
        let mut c = Classifier::new();
        let mut out: Vec<String> = self
            .lines
            .iter()
            .filter_map(|l| render(style, l, c.classify(l)))
            .collect();
        if style == Style::Raw && self.end == ReplyEnd::EndOfSession {
            out.push(END_OF_SESSION.to_string());
        }
        out
    }
}

/// The commands of a `help` reply, for tab completion: the first token of
/// each line between the `------------` header rule and the closing `.`,
/// without menus (a token that another token continues with `/`), sorted.
pub fn parse_help<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let mut tokens: Vec<String> = lines
        .iter()
        .map(AsRef::as_ref)
        .skip_while(|l| !l.starts_with("------------"))
        .skip(1)
        .take_while(|l| *l != ".")
        .filter_map(|l| l.split([' ', '\t']).next())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    tokens.sort();
    tokens.dedup();
    let menus: Vec<String> = tokens
        .iter()
        .filter(|t| {
            let menu = format!("{t}/");
            tokens.iter().any(|o| o.starts_with(&menu))
        })
        .cloned()
        .collect();
    tokens.retain(|t| !menus.contains(t));
    tokens
}

/// The commands of `commands` that complete `prefix`.
pub fn complete<'a>(commands: &'a [String], prefix: &str) -> Vec<&'a str> {
    commands
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

/// The local prompt of C vdeterm: the console's prompt without `$ `,
/// followed by the socket path in brackets (`vde[/tmp/mgmt]: `).
pub fn local_prompt(console_prompt: &str, sock: &Path) -> String {
    let name = console_prompt.strip_suffix("$ ").unwrap_or(console_prompt);
    format!("{name}[{}]: ", sock.display())
}

/// Whether an input line is the local `logout` (C vdeterm ends the session
/// without sending it).
pub fn is_logout(cmd: &str) -> bool {
    cmd.trim_start_matches([' ', '\t']).starts_with("logout")
}

/// Whether an input line asks the console to shut down.
pub fn is_shutdown(cmd: &str) -> bool {
    cmd.trim_start_matches([' ', '\t']).starts_with("shutdown")
}

/// A blocking client of a management console.
#[derive(Debug)]
pub struct Session {
    stream: UnixStream,
    path: PathBuf,
    banner: String,
    splitter: Splitter,
    queue: VecDeque<Event>,
    closed: bool,
}

impl Session {
    /// Connects and reads the banner up to the first prompt (a read that
    /// ends in `$ `), waiting at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Session, TermError> {
        let stream = UnixStream::connect(path).map_err(|err| TermError::Connect {
            path: path.to_path_buf(),
            err,
        })?;
        // a console that stops reading must not block a command forever
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|err| io_err(path, err))?;
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"$ ") {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TermError::NoPrompt {
                    path: path.to_path_buf(),
                    timeout,
                });
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(|err| io_err(path, err))?;
            match (&stream).read(&mut buf) {
                Ok(0) => {
                    return Err(TermError::NoBanner {
                        path: path.to_path_buf(),
                    })
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_err(path, err)),
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let cut = text.rfind('\n').map_or(0, |i| i + 1);
        let (banner, prompt) = text.split_at(cut);
        Ok(Session {
            stream,
            path: path.to_path_buf(),
            banner: banner.to_string(),
            splitter: Splitter::new(prompt),
            queue: VecDeque::new(),
            closed: false,
        })
    }

    /// The banner, up to and including the newline before the prompt.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// The console's own prompt line (`vde$ `).
    pub fn console_prompt(&self) -> String {
        self.splitter.prompt()
    }

    /// The local prompt, like C vdeterm (`vde[PATH]: `).
    pub fn local_prompt(&self) -> String {
        local_prompt(&self.console_prompt(), &self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: &str) -> Result<(), TermError> {
        send_line(&self.stream, &self.path, cmd)
    }

    /// The next event, waiting until `deadline`; None on timeout.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>, TermError> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Ok(Some(ev));
            }
            if self.closed {
                return Ok(Some(Event::Closed));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|err| io_err(&self.path, err))?;
            let mut evs = Vec::new();
            match (&self.stream).read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    self.splitter.close(&mut evs);
                }
                Ok(n) => self.splitter.push(&buf[..n], &mut evs),
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    self.splitter.close(&mut evs);
                }
            }
            self.queue.extend(evs);
        }
    }

    /// Sends `cmd` and collects its reply up to the prompt (or the end of
    /// the session).
    pub fn command(&mut self, cmd: &str, timeout: Duration) -> Result<Reply, TermError> {
        self.send(cmd)?;
        self.reply(cmd, timeout)
    }

    /// Collects lines up to the next prompt.
    fn reply(&mut self, cmd: &str, timeout: Duration) -> Result<Reply, TermError> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        let end = loop {
            match self.next_event(deadline)? {
                Some(Event::Line(l)) => lines.push(l),
                Some(Event::Prompt) => break ReplyEnd::Prompt,
                Some(Event::End) => break ReplyEnd::EndOfSession,
                Some(Event::Closed) => break ReplyEnd::Closed,
                None => {
                    return Err(TermError::Timeout {
                        path: self.path.clone(),
                        command: cmd.to_string(),
                        timeout,
                    })
                }
            }
        };
        Ok(Reply { lines, end })
    }

    /// Sends `help` and returns the commands for tab completion (empty if
    /// the console has no usable help).
    pub fn completions(&mut self, timeout: Duration) -> Result<Vec<String>, TermError> {
        let reply = self.command("help", timeout)?;
        if reply.end == ReplyEnd::Closed {
            return Err(TermError::Closed {
                path: self.path.clone(),
            });
        }
        Ok(parse_help(&reply.lines))
    }
}

fn io_err(path: &Path, err: io::Error) -> TermError {
    TermError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// A hint for the usual mistakes: the switch's control directory instead
/// of its management socket, or a switch started without `-M`.
fn connect_hint(path: &Path, err: &io::Error) -> &'static str {
    if path.is_dir() {
        " (this is a directory: give the management socket, vde_switch -M PATH)"
    } else if err.kind() == io::ErrorKind::NotFound {
        " (is the switch running with -M PATH?)"
    } else {
        ""
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One command per write, as the console expects.
fn send_line(mut stream: &UnixStream, path: &Path, cmd: &str) -> Result<(), TermError> {
    stream
        .write_all(format!("{cmd}\n").as_bytes())
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => TermError::Closed {
                path: path.to_path_buf(),
            },
            _ => io_err(path, e),
        })
}

/// Options shared by both modes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Program name for messages (`vdeterm`, `unixterm`).
    pub prog: String,
    /// Socket path as given (shown in the prompt and in errors).
    pub sock: PathBuf,
    pub style: Style,
    /// Wait for the banner and for each reply.
    pub timeout: Duration,
}

/// Runs `commands` one after the other (non-interactive mode, like
/// unixcmd), writing the replies to `out`. Blank lines and `#` comments are
/// skipped, `logout` stops. Returns whether every command answered
/// `1000 Success` (a `shutdown` that ends the session counts as success).
pub fn run_commands<I>(
    session: &mut Session,
    commands: I,
    opts: &Options,
    out: &mut dyn Write,
) -> anyhow::Result<bool>
where
    I: IntoIterator<Item = io::Result<String>>,
{
    let mut ok = true;
    let mut commands = commands.into_iter();
    while let Some(cmd) = commands.next() {
        let cmd = cmd?;
        let cmd = cmd.strip_suffix('\r').unwrap_or(&cmd);
        let trimmed = cmd.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if is_logout(cmd) {
            return Ok(ok);
        }
        let reply = session.command(cmd, opts.timeout)?;
        for l in reply.rendered(opts.style) {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
        match reply.end {
            ReplyEnd::Prompt => ok &= reply.status() == Some(SUCCESS),
            ReplyEnd::EndOfSession | ReplyEnd::Closed
                if is_shutdown(cmd) || reply.end == ReplyEnd::EndOfSession =>
            {
                let rest: Vec<String> = commands
                    .filter_map(Result::ok)
                    .filter(|c| {
                        let t = c.trim();
                        !t.is_empty() && !t.starts_with('#')
                    })
                    .collect();
                if !rest.is_empty() {
                    anyhow::bail!(
                        "the session on {} ended after `{cmd}`; {} command(s) not run (first: `{}`)",
                        opts.sock.display(),
                        rest.len(),
                        rest[0].trim()
                    );
                }
                return Ok(ok);
            }
            ReplyEnd::EndOfSession | ReplyEnd::Closed => {
                return Err(TermError::Closed {
                    path: opts.sock.clone(),
                }
                .into())
            }
        }
    }
    Ok(ok)
}

/// Where the commands come from.
#[derive(Debug)]
pub enum Mode {
    /// The line editor on the terminal.
    Interactive,
    /// The given commands (`-c`), then exit.
    Commands(Vec<String>),
    /// Commands read from standard input, one per line.
    Stdin,
}

/// Runs vdeterm: connects to `opts.sock` and runs in `mode`. Returns the
/// exit status (0: every command succeeded or the session ended normally).
pub fn run(opts: &Options, mode: Mode) -> anyhow::Result<i32> {
    let mut session = Session::connect(&opts.sock, opts.timeout)?;
    let ok = match mode {
        Mode::Interactive => return interactive(session, opts),
        Mode::Commands(cmds) => run_commands(
            &mut session,
            cmds.into_iter().map(Ok),
            opts,
            &mut io::stdout(),
        )?,
        Mode::Stdin => run_commands(
            &mut session,
            io::BufRead::lines(io::stdin().lock()),
            opts,
            &mut io::stdout(),
        )?,
    };
    Ok(if ok { 0 } else { 1 })
}

/// What the socket reader thread hands to the interactive loop.
#[derive(Debug)]
enum Msg {
    /// A line to show.
    Show(String),
    Prompt,
    End,
    Closed,
}

/// Shared between the socket reader and the line editor: while `idle`, the
/// user is at the prompt and messages go to the external printer;
/// otherwise they are queued for the command being run.
struct Shared {
    idle: bool,
}

#[derive(Default)]
struct TermHelper {
    commands: Vec<String>,
}

impl Completer for TermHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.len() - before.trim_start_matches([' ', '\t']).len();
        let word = &before[start..];
        // only the command itself is completed, like libvdehist
        if word.is_empty() || word.contains([' ', '\t']) {
            return Ok((pos, Vec::new()));
        }
        let found = complete(&self.commands, word);
        let single = found.len() == 1 && !line[pos..].starts_with(' ');
        let pairs = found
            .into_iter()
            .map(|c| Pair {
                display: c.to_string(),
                replacement: if single {
                    format!("{c} ")
                } else {
                    c.to_string()
                },
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for TermHelper {
    type Hint = String;
}
impl Highlighter for TermHelper {}
impl Validator for TermHelper {}
impl Helper for TermHelper {}

/// The terminal mode saved at start (`stty -g`), restored when the session
/// ends while the line editor holds the terminal in raw mode.
fn save_tty() -> Option<String> {
    let out = std::process::Command::new("stty")
        .arg("-g")
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn restore_tty(saved: Option<&str>) {
    let _ = std::process::Command::new("stty")
        .arg(saved.unwrap_or("sane"))
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The interactive terminal: banner, local prompt, line editing with
/// history and completion of the console's commands, replies shown like C
/// vdeterm, debug messages shown while idle. Returns the exit status.
pub fn interactive(mut session: Session, opts: &Options) -> anyhow::Result<i32> {
    let commands = session.completions(opts.timeout)?;
    let prompt = local_prompt(&session.console_prompt(), &opts.sock);
    let path = opts.sock.clone();
    let style = opts.style;

    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .bracketed_paste(false)
        .max_history_size(1000)?
        .build();
    let mut editor: Editor<TermHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(TermHelper { commands }));
    let saved_tty = save_tty();

    // the external printer, fed by its own thread so that the socket
    // reader never blocks on the terminal
    let (print_tx, print_rx) = mpsc::channel::<String>();
    let printer = editor.create_external_printer().ok();
    std::thread::spawn(move || {
        let mut printer = printer;
        for msg in print_rx {
            match printer.as_mut() {
                Some(p) => {
                    if p.print(msg.clone()).is_err() {
                        print!("{msg}");
                        let _ = io::stdout().flush();
                    }
                }
                None => {
                    print!("{msg}");
                    let _ = io::stdout().flush();
                }
            }
        }
    });

    print!("{}", session.banner());
    io::stdout().flush()?;

    let Session {
        stream,
        mut splitter,
        queue,
        closed,
        ..
    } = session;
    stream.set_read_timeout(None)?;
    let writer = stream.try_clone()?;
    let shared = Arc::new(Mutex::new(Shared { idle: false }));
    let (tx, rx) = mpsc::channel::<Msg>();
    {
        let shared = shared.clone();
        let print_tx = print_tx.clone();
        let path = path.clone();
        let prog = opts.prog.clone();
        let saved_tty = saved_tty.clone();
        let mut stream = stream;
        std::thread::spawn(move || {
            let mut classifier = Classifier::new();
            let mut pending: Vec<Event> = queue.into_iter().collect();
            if closed && !pending.contains(&Event::Closed) {
                pending.push(Event::Closed);
            }
            let mut buf = [0u8; 4096];
            let mut done = closed;
            loop {
                for ev in pending.drain(..) {
                    let msg = match ev {
                        Event::Line(l) => {
                            let item = classifier.classify(&l);
                            match render(style, &l, item) {
                                Some(s) => Msg::Show(s),
                                None => continue,
                            }
                        }
                        Event::Prompt => Msg::Prompt,
                        Event::End => Msg::End,
                        Event::Closed => Msg::Closed,
                    };
                    let st = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if !st.idle {
                        let _ = tx.send(msg);
                        continue;
                    }
                    match msg {
                        Msg::Show(s) => {
                            let _ = print_tx.send(format!("{s}\n"));
                        }
                        Msg::Prompt => {}
                        Msg::End | Msg::Closed => {
                            // the user is at the prompt: end the session here
                            restore_tty(saved_tty.as_deref());
                            eprintln!("\n{prog}: {}", TermError::Closed { path: path.clone() });
                            std::process::exit(1);
                        }
                    }
                }
                if done {
                    return;
                }
                match stream.read(&mut buf) {
                    Ok(0) => {
                        splitter.close(&mut pending);
                        done = true;
                    }
                    Ok(n) => splitter.push(&buf[..n], &mut pending),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        splitter.close(&mut pending);
                        done = true;
                    }
                }
            }
        });
    }

    let set_idle = |idle: bool| -> anyhow::Result<Option<i32>> {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        if idle {
            // what arrived after the last reply is shown before the prompt
            while let Ok(m) = rx.try_recv() {
                match m {
                    Msg::Show(s) => println!("{s}"),
                    Msg::Prompt => {}
                    Msg::End | Msg::Closed => {
                        eprintln!(
                            "{}: {}",
                            opts.prog,
                            TermError::Closed { path: path.clone() }
                        );
                        return Ok(Some(1));
                    }
                }
            }
            io::stdout().flush()?;
        }
        st.idle = idle;
        Ok(None)
    };

    loop {
        if let Some(code) = set_idle(true)? {
            return Ok(code);
        }
        let line = editor.readline(&prompt);
        if let Some(code) = set_idle(false)? {
            return Ok(code);
        }
        let line = match line {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                eprintln!();
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let cmd = line.trim_start_matches([' ', '\t']);
        if !cmd.is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        if is_logout(cmd) {
            // like C vdeterm, which ends with a newline on stderr
            eprintln!();
            return Ok(0);
        }
        if cmd.is_empty() {
            println!();
            continue;
        }
        if let Err(e) = send_line(&writer, &path, &line) {
            eprintln!("{}: {e}", opts.prog);
            return Ok(1);
        }
        // C vdeterm leaves an empty line before the reply (not after
        // `shutdown`, where it just ends)
        let mut blank = !is_shutdown(cmd);
        if blank {
            println!();
        }
        let deadline = Instant::now() + opts.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Msg::Show(s)) => {
                    if !blank {
                        println!();
                        blank = true;
                    }
                    println!("{s}");
                }
                Ok(Msg::Prompt) => break,
                Ok(Msg::End) => {
                    if style == Style::Raw {
                        println!("{END_OF_SESSION}");
                    }
                    eprintln!();
                    return Ok(0);
                }
                Ok(Msg::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    if is_shutdown(cmd) {
                        eprintln!();
                        return Ok(0);
                    }
                    eprintln!(
                        "{}: {}",
                        opts.prog,
                        TermError::Closed { path: path.clone() }
                    );
                    return Ok(1);
                }
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "{}: {}",
                        opts.prog,
                        TermError::Timeout {
                            path: path.clone(),
                            command: line.clone(),
                            timeout: opts.timeout,
                        }
                    );
                    break;
                }
            }
        }
        io::stdout().flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(prompt: &str, chunks: &[&[u8]]) -> Vec<Event> {
        let mut s = Splitter::new(prompt);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    fn line(s: &str) -> Event {
        Event::Line(s.to_string())
    }

    #[test]
    fn splitter_finds_prompt_and_drops_its_newline() {
        let evs = split(
            "vde$ ",
            &[b"0000 DATA END WITH '.'\nNumports=32\n.\n1000 Success\n\nvde$ "],
        );
        assert_eq!(
            evs,
            vec![
                line("0000 DATA END WITH '.'"),
                line("Numports=32"),
                line("."),
                line("1000 Success"),
                Event::Prompt
            ]
        );
    }

    #[test]
    fn splitter_handles_byte_by_byte_and_trailing_async() {
        let data = b"1000 Success\n\nvde$ 3021 port/+ 06\n";
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let evs = split("vde$ ", &chunks);
        assert_eq!(
            evs,
            vec![line("1000 Success"), Event::Prompt, line("3021 port/+ 06")]
        );
    }

    #[test]
    fn splitter_keeps_empty_data_lines_and_sees_end() {
        let evs = split("VDEwf$ ", &[b"a\n\nb\n\nVDEwf$ ", b"9999 END OF SESSION"]);
        assert_eq!(
            evs,
            vec![line("a"), line(""), line("b"), Event::Prompt, Event::End]
        );
        // the prompt text inside a line is not a prompt
        let evs = split("vde$ ", &[b"x vde$ y\n"]);
        assert_eq!(evs, vec![line("x vde$ y")]);
        let mut s = Splitter::new("vde$ ");
        let mut out = Vec::new();
        s.push(b"partial", &mut out);
        s.close(&mut out);
        assert_eq!(out, vec![line("partial"), Event::Closed]);
    }

    #[test]
    fn classifier_like_libvdehist() {
        let mut c = Classifier::new();
        assert_eq!(c.classify("0000 DATA END WITH '.'"), Item::DataBegin);
        assert_eq!(c.classify("1000 Success"), Item::Data("1000 Success"));
        assert_eq!(c.classify("."), Item::DataEnd);
        assert_eq!(
            c.classify("1000 Success"),
            Item::Status {
                code: 1000,
                text: "Success"
            }
        );
        assert_eq!(
            c.classify("1038 Function not implemented"),
            Item::Status {
                code: 1038,
                text: "Function not implemented"
            }
        );
        assert_eq!(c.classify("3021 port/+ 06"), Item::Debug("port/+ 06"));
        assert_eq!(
            c.classify("vde$ 1000 Success").clone(),
            Item::Status {
                code: 1000,
                text: "Success"
            }
        );
        assert_eq!(c.classify("no code"), Item::Other("no code"));
        assert_eq!(c.classify("9999 END"), Item::Other("9999 END"));
        assert_eq!(
            c.classify("1000"),
            Item::Status {
                code: 1000,
                text: ""
            }
        );
    }

    #[test]
    fn reply_rendering_and_status() {
        let r = Reply {
            lines: [
                "0000 DATA END WITH '.'",
                "Numports=32",
                ".",
                "1022 Invalid argument",
            ]
            .map(String::from)
            .to_vec(),
            end: ReplyEnd::Prompt,
        };
        assert_eq!(r.status(), Some(1022));
        assert_eq!(
            r.rendered(Style::Vdeterm),
            vec!["Numports=32", "Invalid argument"]
        );
        assert_eq!(r.rendered(Style::Raw), r.lines);
        let dbg = Reply {
            lines: vec!["3021 port/+ 06".into(), "1000 Success".into()],
            end: ReplyEnd::Prompt,
        };
        assert_eq!(
            dbg.rendered(Style::Vdeterm),
            vec!["** DBG MSG: port/+ 06", "Success"]
        );
        assert_eq!(dbg.status(), Some(SUCCESS));
    }

    #[test]
    fn help_parsing_drops_menus() {
        let help = [
            "0000 DATA END WITH '.'",
            "COMMAND PATH       SYNTAX          HELP",
            "------------       --------------  ------------",
            "ds                 ============    DATA SOCKET MENU",
            "ds/showinfo                        show ds info",
            "help               [arg]           Help",
            "port               ============    PORT STATUS MENU",
            "port/showinfo                      show port info",
            "port/print         [N]             print",
            "showinfo                           info",
            "showinfo n         markov mode",
            ".",
            "1000 Success",
        ];
        let cmds = parse_help(&help);
        assert_eq!(
            cmds,
            vec![
                "ds/showinfo",
                "help",
                "port/print",
                "port/showinfo",
                "showinfo"
            ]
        );
        assert_eq!(complete(&cmds, "port/sh"), vec!["port/showinfo"]);
        assert_eq!(
            complete(&cmds, "port/"),
            vec!["port/print", "port/showinfo"]
        );
    }

    #[test]
    fn prompt_and_local_commands() {
        assert_eq!(
            local_prompt("vde$ ", Path::new("/tmp/x/mgmt")),
            "vde[/tmp/x/mgmt]: "
        );
        assert_eq!(local_prompt("VDEwf$ ", Path::new("wf")), "VDEwf[wf]: ");
        assert!(is_logout("  logout"));
        assert!(is_shutdown("\tshutdown"));
        assert!(!is_logout("port/print"));
    }
}
