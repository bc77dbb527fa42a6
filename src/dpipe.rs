//! dpipe: bidirectional pipes between commands, a drop-in for vdeplug4's
//! `dpipe`.
//!
//! `dpipe a = b` connects a's stdout to b's stdin and b's stdout to a's
//! stdin. A chain `dpipe a = w = b` gives the middle command `w` its left
//! side on stdin/stdout and its right side on two extra descriptors, the two
//! lowest free ones (normally 3 and 4), whose numbers every command finds in
//! the environment as `ALTERNATE_STDIN` / `ALTERNATE_STDOUT`. `=} f }=`
//! inserts a filter for the left-to-right traffic only, `={ f {=` one for
//! the right-to-left traffic; inside the brackets `=` chains more filters of
//! the same direction.
//!
//! The module has three layers:
//! * [`split`] turns the words after the options into [`Stage`]s, exactly
//!   as the C tool scans them (pure);
//! * [`plan`] says which end of which pipe each stage gets on which
//!   descriptor (pure);
//! * [`run`] is the thin process shell: process group, pid files, signals,
//!   spawning with the planned descriptors, waiting.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

/// What a command of the chain does with its descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The first command: stdin and stdout both face the rest of the chain.
    First,
    /// `= cmd =`: stdin/stdout face the left, the alternate descriptors the
    /// right.
    Middle,
    /// `=} cmd }=`: reads the left-to-right traffic on stdin and passes it
    /// on through stdout.
    LeftToRight,
    /// `={ cmd {=`: reads the right-to-left traffic on stdin and passes it
    /// on through stdout.
    RightToLeft,
    /// The last command: stdin and stdout face the left.
    Last,
}

/// One command of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub role: Role,
    pub argv: Vec<OsString>,
}

/// Why a command line is not a dpipe chain. The C tool prints its usage
/// for all of them; so does the binary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("at least two commands are needed: cmd1 = cmd2")]
    TooFewCommands,
    #[error("empty command before separator {0:?}")]
    EmptyCommand(String),
    #[error("the chain ends with the separator {0:?}")]
    TrailingSeparator(String),
    #[error("the filter opened by ={0} is not closed by {0}=")]
    Unclosed(char),
}

/// Direction character of an open filter bracket: `{` or `}`.
type Dir = Option<u8>;

/// Index of the next separator in `words` (or `words.len()`), updating the
/// open bracket `dir` as the C tool's scanner does: a word starting with
/// the open bracket followed by `=` closes it (and is then a separator);
/// any word starting with `=` is a separator, and a `{` or `}` right after
/// the `=` opens a bracket for the next stage.
fn next_separator(words: &[OsString], dir: &mut Dir) -> usize {
    for (i, w) in words.iter().enumerate() {
        let mut w = w.as_bytes();
        if let Some(d) = *dir {
            if w.len() >= 2 && w[0] == d && w[1] == b'=' {
                w = &w[1..];
                *dir = None;
            }
        }
        if w.first() == Some(&b'=') {
            if let Some(&c @ (b'{' | b'}')) = w.get(1) {
                *dir = Some(c);
            }
            return i;
        }
    }
    words.len()
}

/// Splits the words after the options into the chain's commands.
///
/// Any word starting with `=` separates two commands; `={`/`=}` open a
/// one-directional section that the matching `{=`/`}=` (or `{={`, `}=}`,
/// `}={`, … which close one section and open the next) ends. A `{=` or
/// `}=` that closes nothing is an ordinary argument, as in the C tool.
pub fn split(words: &[OsString]) -> Result<Vec<Stage>, SyntaxError> {
    let sep = |w: &OsString| w.to_string_lossy().into_owned();
    let mut dir: Dir = None;
    let first = next_separator(words, &mut dir);
    if first >= words.len() || words.len() < 3 {
        return Err(SyntaxError::TooFewCommands);
    }
    if first == 0 {
        return Err(SyntaxError::EmptyCommand(sep(&words[0])));
    }
    if first == words.len() - 1 {
        return Err(SyntaxError::TrailingSeparator(sep(&words[first])));
    }
    let mut stages = vec![Stage {
        role: Role::First,
        argv: words[..first].to_vec(),
    }];
    let mut rest = &words[first + 1..];
    loop {
        let open = dir;
        let at = next_separator(rest, &mut dir);
        if at >= rest.len() {
            if let Some(d) = dir {
                return Err(SyntaxError::Unclosed(d as char));
            }
            stages.push(Stage {
                role: Role::Last,
                argv: rest.to_vec(),
            });
            return Ok(stages);
        }
        if at == 0 {
            return Err(SyntaxError::EmptyCommand(sep(&rest[0])));
        }
        if at == rest.len() - 1 {
            return Err(SyntaxError::TrailingSeparator(sep(&rest[at])));
        }
        let role = match open {
            None => Role::Middle,
            Some(b'}') => Role::LeftToRight,
            Some(_) => Role::RightToLeft,
        };
        stages.push(Stage {
            role,
            argv: rest[..at].to_vec(),
        });
        rest = &rest[at + 1..];
    }
}

/// One end of one of the plan's pipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    Read(usize),
    Write(usize),
}

/// The descriptors one command gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wiring {
    pub stdin: End,
    pub stdout: End,
    /// `(ALTERNATE_STDIN, ALTERNATE_STDOUT)` of a middle command.
    pub alternate: Option<(End, End)>,
}

/// Which pipe end goes where: `pipes` pipes, one [`Wiring`] per stage.
/// Every end of every pipe is used exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub pipes: usize,
    pub wiring: Vec<Wiring>,
}

/// Wires a chain of stages with these roles (first one [`Role::First`],
/// last one [`Role::Last`]).
///
/// Walking left to right, the rest of the chain reads the left-to-right
/// traffic from `rd` and writes the right-to-left traffic to `wr`:
/// a middle command takes both and opens two new pipes to its right, a
/// filter takes one and opens one new pipe, the last command takes both.
pub fn plan(roles: &[Role]) -> Plan {
    let mut pipes = 0;
    let mut new_pipe = || {
        pipes += 1;
        pipes - 1
    };
    let mut wiring = Vec::with_capacity(roles.len());
    let (mut rd, mut wr) = (End::Read(0), End::Write(0));
    for &role in roles {
        let w = match role {
            Role::First => {
                let (to_me, from_me) = (new_pipe(), new_pipe());
                rd = End::Read(from_me);
                wr = End::Write(to_me);
                Wiring {
                    stdin: End::Read(to_me),
                    stdout: End::Write(from_me),
                    alternate: None,
                }
            }
            Role::Middle => {
                let (to_me, from_me) = (new_pipe(), new_pipe());
                let w = Wiring {
                    stdin: rd,
                    stdout: wr,
                    alternate: Some((End::Read(to_me), End::Write(from_me))),
                };
                rd = End::Read(from_me);
                wr = End::Write(to_me);
                w
            }
            Role::LeftToRight => {
                let p = new_pipe();
                let w = Wiring {
                    stdin: rd,
                    stdout: End::Write(p),
                    alternate: None,
                };
                rd = End::Read(p);
                w
            }
            Role::RightToLeft => {
                let p = new_pipe();
                let w = Wiring {
                    stdin: End::Read(p),
                    stdout: wr,
                    alternate: None,
                };
                wr = End::Write(p);
                w
            }
            Role::Last => Wiring {
                stdin: rd,
                stdout: wr,
                alternate: None,
            },
        };
        wiring.push(w);
    }
    Plan { pipes, wiring }
}

/// The C tool's usage text, `PROG` standing for the program name.
const USAGE: &str = "Usage:
  PROG [OPTIONS} cmd1 [arg1...] = cmd2 [arg2...] [ = cmd3 [arg3...] ]
    using: ... =} cmd [arg] }= ...
       or: ... ={ cmd [arg] {= ...
    instead of ... = cmd [arg] = ...
  means that the intermediate command processes data flowing in one direction only
  (left to right, or right to left respectively as indicated by the brackets)
OPTIONS:
  -p PIDFILE | --pidfile PIDFILE     write process id to PIDFILE
  -P PGRPFILE | --pgrpfile PGRPFILE  write process group id to PIDFILE
  -d | --daemon                      daemonize the process group
  -n | --nowrapproc                  do not create the dpipe parent process
  -N | --nowrapnoclean               -n and do not remove pid/pgrp file
  -h | --help                        show this short summary
";

/// The C tool's usage text (printed on stderr for `-h` and bad chains),
/// typos included, so that the output is the same.
pub fn usage(progname: &str) -> String {
    USAGE.replacen("PROG", progname, 1)
}

/// The options of the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-p`: write dpipe's pid (with `-n`: the last command's) here.
    pub pidfile: Option<PathBuf>,
    /// `-P`: write the process group id, negated (`-PGID`), here.
    pub pgrpfile: Option<PathBuf>,
    /// `-d`: daemon(0, 0) first (so relative paths resolve from `/`).
    pub daemon: bool,
    /// `-n`: no waiting dpipe process: it becomes the last command.
    pub nowrap: bool,
    /// `-N`: `-n`, and leave the pid/pgrp files behind.
    pub noclean: bool,
}

/// Why [`run`] could not start the chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error("daemonize: {0}")]
    Daemon(io::Error),
    #[error("Err: cannot create pgrp: {0}")]
    Pgrp(io::Error),
    #[error("cannot reserve the alternate descriptors: {0}")]
    Alternate(io::Error),
    #[error("cannot set up signal handling: {0}")]
    Signals(io::Error),
    #[error("pipe: {0}")]
    Pipe(io::Error),
    #[error("cannot start the cleanup process: {0}")]
    Fork(io::Error),
}

/// Signals dpipe ignores, and whose SIG_IGN its commands inherit, as with
/// the C tool (its selfsighandler list).
const IGNORED: [libc::c_int; 9] = [
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPROF,
    libc::SIGVTALRM,
    libc::SIGIO,
    libc::SIGSTKFLT,
    libc::SIGPWR,
];

/// The pid and pgrp files this run wrote, removed at the end.
#[derive(Clone, Debug, Default)]
struct PidFiles(Vec<PathBuf>);

impl PidFiles {
    fn write(&mut self, path: &Path, content: String) {
        // like the C tool, a file that cannot be written is no reason to
        // stop (but we say so)
        match std::fs::write(path, content) {
            Ok(()) => self.0.push(path.to_path_buf()),
            Err(e) => eprintln!("dpipe: cannot write {}: {e}", path.display()),
        }
    }

    fn remove(&self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs the chain in `words` (the command line after the options) and
/// returns dpipe's exit status: that of the last command (0 if a signal
/// killed it, 127 if it could not be started), once every command has
/// ended. With `-n`/`-N` this process becomes the last command and only
/// returns on error.
///
/// Call it while the process is single-threaded (it may fork).
pub fn run(opts: &Options, words: &[OsString]) -> Result<i32, Error> {
    let stages = split(words)?;
    let nowrap = opts.nowrap || opts.noclean;
    let cleanup = !opts.noclean && (opts.pidfile.is_some() || opts.pgrpfile.is_some());

    if opts.daemon {
        crate::sys::daemonize().map_err(Error::Daemon)?;
    } else {
        sys::new_process_group().map_err(Error::Pgrp)?;
    }
    // after setpgid(0, 0) or setsid(), our group is our pid
    let pgid = std::process::id() as i32;

    // The two lowest free descriptors, held open (close-on-exec) until
    // every command is started so that no other descriptor of ours, nor
    // std's exec-error pipe, takes their numbers.
    let reserved = [
        File::open("/dev/null").map_err(Error::Alternate)?,
        File::open("/dev/null").map_err(Error::Alternate)?,
    ];
    let alt = (reserved[0].as_raw_fd(), reserved[1].as_raw_fd());

    for sig in IGNORED {
        sys::ignore(sig);
    }
    // SIGINT/SIGTERM/SIGHUP wait in a signalfd; the commands get back the
    // mask we started with (std does not reset it)
    let mask = sys::current_mask();
    let sigfd = crate::sys::signalfd_for_termination().map_err(Error::Signals)?;

    let mut files = PidFiles::default();
    if let Some(p) = &opts.pidfile {
        files.write(p, format!("{}\n", std::process::id()));
    }
    if let Some(p) = &opts.pgrpfile {
        files.write(p, format!("-{pgid}\n"));
    }

    let roles: Vec<Role> = stages.iter().map(|s| s.role).collect();
    let plan = plan(&roles);
    let mut ends: Vec<[Option<OwnedFd>; 2]> = Vec::with_capacity(plan.pipes);
    for _ in 0..plan.pipes {
        let (r, w) = sys::pipe().map_err(Error::Pipe)?;
        ends.push([Some(r), Some(w)]);
    }
    let mut take = |e: End| -> OwnedFd {
        let (pipe, side) = match e {
            End::Read(p) => (p, 0),
            End::Write(p) => (p, 1),
        };
        ends[pipe][side]
            .take()
            .expect("plan uses each pipe end once")
    };

    let (last, others) = stages.split_last().expect("split gives two stages or more");
    let (last_wiring, other_wiring) = plan.wiring.split_last().expect("one wiring per stage");
    let mut children: Vec<Option<Child>> = Vec::with_capacity(stages.len());
    for (stage, w) in others.iter().zip(other_wiring) {
        let mut cmd = command(stage, alt);
        cmd.stdin(take(w.stdin)).stdout(take(w.stdout));
        let alternate = w.alternate.map(|(i, o)| (take(i), take(o)));
        let moves = alternate
            .as_ref()
            .map(|(i, o)| [(i.as_raw_fd(), alt.0), (o.as_raw_fd(), alt.1)]);
        sys::set_child_fds(&mut cmd, moves, mask);
        children.push(spawn(&mut cmd, stage));
        // our copies of this command's ends close here
    }
    let mut cmd = command(last, alt);
    cmd.stdin(take(last_wiring.stdin))
        .stdout(take(last_wiring.stdout));
    sys::set_child_fds(&mut cmd, None, mask);

    if nowrap {
        if cleanup {
            // a process that waits for the last command (this one) to end
            // and removes the files
            let parent = std::process::id() as i32;
            // no thread was started: forking here is sound
            if sys::fork_cleaner().map_err(Error::Fork)? {
                drop(cmd); // its pipe ends are not ours to hold
                drop(reserved);
                sys::detach_stdio();
                watch(&sigfd, &files, None, pgid, Some(parent));
            }
        }
        let e = cmd.exec();
        eprintln!("dpipe: {}: {e}", show(&last.argv));
        files.remove();
        return Ok(127);
    }

    let last_child = spawn(&mut cmd, last);
    drop(cmd);
    drop(reserved);
    let last_pid = last_child.as_ref().map(|c| c.id() as i32);
    children.push(last_child);
    // like the C tool, keep neither our own stdin nor stdout: whoever reads
    // our stdout sees its end now
    sys::detach_stdio();
    {
        let files = files.clone();
        std::thread::spawn(move || watch(&sigfd, &files, last_pid, pgid, None));
    }
    let mut status = 127;
    let n = children.len();
    for (i, c) in children.iter_mut().enumerate() {
        let Some(c) = c else { continue };
        let s = wait(c);
        if i == n - 1 {
            status = exit_code(s);
        }
    }
    files.remove();
    Ok(status)
}

/// The status dpipe reports for its last command: WEXITSTATUS, i.e. the
/// exit code, or 0 for a command killed by a signal.
pub fn exit_code(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| (s.into_raw() >> 8) & 0xff)
}

fn command(stage: &Stage, alt: (RawFd, RawFd)) -> Command {
    let mut cmd = Command::new(&stage.argv[0]);
    cmd.args(&stage.argv[1..])
        .env("ALTERNATE_STDIN", alt.0.to_string())
        .env("ALTERNATE_STDOUT", alt.1.to_string());
    cmd
}

/// Starts a command; one that cannot be started counts as exited with 127
/// (the C tool's child does `exit(127)` after a failed execvp).
fn spawn(cmd: &mut Command, stage: &Stage) -> Option<Child> {
    match cmd.spawn() {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("dpipe: {}: {e}", show(&stage.argv));
            None
        }
    }
}

fn show(argv: &[OsString]) -> String {
    OsStr::new(&argv[0]).to_string_lossy().into_owned()
}

fn wait(c: &mut Child) -> ExitStatus {
    loop {
        match c.wait() {
            Ok(s) => return s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // cannot happen for a child we spawned; report it as failed
            Err(_) => return ExitStatus::from_raw(127 << 8),
        }
    }
}

/// Waits for SIGINT/SIGTERM/SIGHUP (and, for the `-n` cleanup process, for
/// the end of `parent`), then does what the C tool's handler does: remove
/// the pid files, SIGTERM the last command; on SIGTERM exit 0, on the
/// others send the signal to the whole process group, ourselves included.
fn watch(
    sigfd: &OwnedFd,
    files: &PidFiles,
    last: Option<i32>,
    pgid: i32,
    parent: Option<i32>,
) -> ! {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    use std::time::Duration;

    let poll = Poll::new().and_then(|p| {
        p.registry()
            .register(
                &mut SourceFd(&sigfd.as_raw_fd()),
                Token(0),
                Interest::READABLE,
            )
            .map(|()| p)
    });
    let mut poll = match poll {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("dpipe: cannot watch for signals: {e}");
            None
        }
    };
    let mut events = Events::with_capacity(4);
    let tick = parent.map(|_| Duration::from_millis(200));
    loop {
        match poll.as_mut() {
            Some(p) => {
                let _ = p.poll(&mut events, tick);
            }
            None => std::thread::sleep(tick.unwrap_or(Duration::from_secs(3600))),
        }
        if let Some(sig) = crate::sys::read_signal(sigfd) {
            let sig = sig as i32;
            files.remove();
            if let Some(pid) = last {
                sys::kill(pid, libc::SIGTERM);
            }
            if sig == libc::SIGTERM {
                std::process::exit(0);
            }
            sys::kill(-pgid, sig);
            // the signal is pending for us too: take its default action
            sys::unblock(sig);
            std::process::exit(128 + sig);
        }
        if let Some(ppid) = parent {
            if std::os::unix::process::parent_id() as i32 != ppid || !sys::alive(ppid) {
                files.remove();
                std::process::exit(0);
            }
        }
    }
}

/// The system calls std does not offer, each at its boundary.
mod sys {
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// setpgid(0, 0): a process group of our own (the C tool's setpgrp).
    pub fn new_process_group() -> io::Result<()> {
        // SAFETY: setpgid only changes this process's group; no memory is
        // involved.
        if unsafe { libc::setpgid(0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sets a signal's disposition to SIG_IGN.
    pub fn ignore(sig: libc::c_int) {
        // SAFETY: SIG_IGN installs no handler code; the call only changes
        // this process's disposition for `sig`.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }

    /// The calling thread's signal mask.
    pub fn current_mask() -> libc::sigset_t {
        // SAFETY: sigset_t is plain data; with a null new set,
        // pthread_sigmask only writes the current mask into `set`.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
            set
        }
    }

    /// Unblocks one signal for the calling thread.
    pub fn unblock(sig: libc::c_int) {
        // SAFETY: `set` is a valid sigset_t initialised by sigemptyset; the
        // calls only read it and change the calling thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }

    /// kill(2); errors (no such process) are of no interest to dpipe.
    pub fn kill(pid: i32, sig: libc::c_int) {
        // SAFETY: kill takes plain integers and touches no memory of ours.
        unsafe { libc::kill(pid, sig) };
    }

    /// True while `pid` exists (kill with signal 0).
    pub fn alive(pid: i32) -> bool {
        // SAFETY: as for `kill`; signal 0 only checks existence.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    /// A pipe, both ends close-on-exec. (std::io::pipe does the same but
    /// needs Rust 1.87; the crate's rust-version is 1.80.)
    pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid, writable array of two c_ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// Points our stdin and stdout at /dev/null (the C tool has closed
    /// them by the time it waits).
    pub fn detach_stdio() {
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            use std::os::fd::AsRawFd;
            for fd in [0, 1] {
                // SAFETY: dup2 onto 0 and 1 replaces those descriptors
                // atomically; `null` stays open for the duration.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
        }
    }

    /// Forks the `-n` cleanup process; true in the child.
    pub fn fork_cleaner() -> io::Result<bool> {
        // SAFETY: called only while the process has a single thread (the
        // signal thread is never started with -n), so the child may run
        // ordinary code.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(true),
            _ => Ok(false),
        }
    }

    /// In the child, before exec: moves the right-side pipe ends onto the
    /// alternate descriptors (`(from, to)` pairs), restores the signal mask
    /// dpipe started with, and ignores SIGPIPE like the rest of the C
    /// tool's ignored signals (std resets SIGPIPE alone).
    pub fn set_child_fds(
        cmd: &mut Command,
        moves: Option<[(RawFd, RawFd); 2]>,
        mask: libc::sigset_t,
    ) {
        let hook = move || {
            for (from, to) in moves.into_iter().flatten() {
                // SAFETY: dup2 and signal are async-signal-safe; `from` is
                // a pipe end the parent keeps open until spawn returns and
                // `to` is a reserved descriptor number no other source
                // uses; dup2 clears close-on-exec on `to`.
                if unsafe { libc::dup2(from, to) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // SAFETY: as above; SIG_IGN installs no handler, and `mask`
            // is a valid sigset_t owned by this closure.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
            }
            Ok(())
        };
        // SAFETY: the hook runs between fork and exec and only makes the
        // async-signal-safe calls above; it allocates nothing.
        unsafe { cmd.pre_exec(hook) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn words(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn roles_and_cmds(s: &str) -> Vec<(Role, String)> {
        split(&words(s))
            .unwrap()
            .into_iter()
            .map(|st| {
                let argv: Vec<String> =
                    st.argv.iter().map(|a| a.to_string_lossy().into()).collect();
                (st.role, argv.join(" "))
            })
            .collect()
    }

    #[test]
    fn two_commands() {
        use Role::*;
        assert_eq!(
            roles_and_cmds("a -x = b y z"),
            [(First, "a -x".into()), (Last, "b y z".into())]
        );
    }

    #[test]
    fn chains_and_filters() {
        use Role::*;
        assert_eq!(
            roles_and_cmds("a = w = v = b"),
            [
                (First, "a".into()),
                (Middle, "w".into()),
                (Middle, "v".into()),
                (Last, "b".into())
            ]
        );
        assert_eq!(
            roles_and_cmds("a =} f }= b"),
            [
                (First, "a".into()),
                (LeftToRight, "f".into()),
                (Last, "b".into())
            ]
        );
        assert_eq!(
            roles_and_cmds("a ={ f {= b"),
            [
                (First, "a".into()),
                (RightToLeft, "f".into()),
                (Last, "b".into())
            ]
        );
        // the man page's example: all notations mixed
        assert_eq!(
            roles_and_cmds("a =} b }={ c {= d = e"),
            [
                (First, "a".into()),
                (LeftToRight, "b".into()),
                (RightToLeft, "c".into()),
                (Middle, "d".into()),
                (Last, "e".into())
            ]
        );
        // `=` inside brackets chains filters of the same direction
        assert_eq!(
            roles_and_cmds("a ={ f = g {= b"),
            [
                (First, "a".into()),
                (RightToLeft, "f".into()),
                (RightToLeft, "g".into()),
                (Last, "b".into())
            ]
        );
        // closing and reopening the same bracket
        assert_eq!(
            roles_and_cmds("a =} f }=} g }= b"),
            [
                (First, "a".into()),
                (LeftToRight, "f".into()),
                (LeftToRight, "g".into()),
                (Last, "b".into())
            ]
        );
    }

    #[test]
    fn separator_words_as_in_c() {
        use Role::*;
        // any word starting with `=` separates
        assert_eq!(
            roles_and_cmds("a =x b == c"),
            [
                (First, "a".into()),
                (Middle, "b".into()),
                (Last, "c".into())
            ]
        );
        // a closing bracket with nothing open is an argument
        assert_eq!(
            roles_and_cmds("a {= }= = b }="),
            [(First, "a {= }=".into()), (Last, "b }=".into())]
        );
        // the wrong closing bracket is an argument too
        assert_eq!(
            roles_and_cmds("a ={ f }= {= b"),
            [
                (First, "a".into()),
                (RightToLeft, "f }=".into()),
                (Last, "b".into())
            ]
        );
        // only '=' right after the bracket closes: `{x` is an argument
        assert_eq!(
            roles_and_cmds("a ={ f {x {=y b"),
            [
                (First, "a".into()),
                (RightToLeft, "f {x".into()),
                (Last, "b".into())
            ]
        );
    }

    #[test]
    fn syntax_errors() {
        use SyntaxError::*;
        let err = |s: &str| split(&words(s)).unwrap_err();
        assert_eq!(err(""), TooFewCommands);
        assert_eq!(err("a"), TooFewCommands);
        assert_eq!(err("a b c"), TooFewCommands);
        assert_eq!(err("a ="), TooFewCommands);
        assert_eq!(err("= b"), TooFewCommands);
        assert_eq!(err("= b c"), EmptyCommand("=".into()));
        assert_eq!(err("a b ="), TrailingSeparator("=".into()));
        assert_eq!(err("a = = b"), EmptyCommand("=".into()));
        assert_eq!(err("a = b ="), TrailingSeparator("=".into()));
        assert_eq!(err("a ={ b"), Unclosed('{'));
        assert_eq!(err("a =} b = c"), Unclosed('}'));
        assert_eq!(err("a =} f }="), TrailingSeparator("}=".into()));
        assert_eq!(err("a ={ {= b"), EmptyCommand("{=".into()));
    }

    #[test]
    fn non_utf8_arguments_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'x', 0xff]);
        let w = vec![OsString::from("a"), odd.clone(), "=".into(), "b".into()];
        let s = split(&w).unwrap();
        assert_eq!(s[0].argv, vec![OsString::from("a"), odd]);
    }

    /// Where a byte written on (stage, fd) arrives: (stage, fd), with fds
    /// 0/1 for stdio and 3/4 for the alternate pair.
    /// A (stage, fd) pair.
    type Port = (usize, u8);
    /// Where bytes are written, where they are read.
    type Flows = HashSet<(Port, Port)>;

    fn flows(p: &Plan) -> Flows {
        let mut writers = std::collections::HashMap::new();
        let mut readers = std::collections::HashMap::new();
        for (i, w) in p.wiring.iter().enumerate() {
            let mut ends = vec![(w.stdin, 0u8), (w.stdout, 1u8)];
            if let Some((a, b)) = w.alternate {
                ends.push((a, 3));
                ends.push((b, 4));
            }
            for (e, fd) in ends {
                match e {
                    End::Read(n) => assert!(readers.insert(n, (i, fd)).is_none()),
                    End::Write(n) => assert!(writers.insert(n, (i, fd)).is_none()),
                }
            }
        }
        assert_eq!(readers.len(), p.pipes, "every pipe read exactly once");
        assert_eq!(writers.len(), p.pipes, "every pipe written exactly once");
        writers.iter().map(|(n, w)| (*w, readers[n])).collect()
    }

    fn flows_of(chain: &str) -> Flows {
        let roles: Vec<Role> = split(&words(chain))
            .unwrap()
            .iter()
            .map(|s| s.role)
            .collect();
        flows(&plan(&roles))
    }

    fn set(v: &[(Port, Port)]) -> Flows {
        v.iter().copied().collect()
    }

    #[test]
    fn plan_two_commands() {
        assert_eq!(
            flows_of("a = b"),
            set(&[((0, 1), (1, 0)), ((1, 1), (0, 0))])
        );
        let p = plan(&[Role::First, Role::Last]);
        assert_eq!(p.pipes, 2);
    }

    #[test]
    fn plan_middle_uses_alternate_fds_to_the_right() {
        assert_eq!(
            flows_of("a = w = b"),
            set(&[
                ((0, 1), (1, 0)), // a -> w stdin
                ((1, 1), (0, 0)), // w stdout -> a
                ((1, 4), (2, 0)), // w ALTERNATE_STDOUT -> b
                ((2, 1), (1, 3)), // b -> w ALTERNATE_STDIN
            ])
        );
        assert_eq!(
            flows_of("a = w = v = b"),
            set(&[
                ((0, 1), (1, 0)),
                ((1, 1), (0, 0)),
                ((1, 4), (2, 0)),
                ((2, 1), (1, 3)),
                ((2, 4), (3, 0)),
                ((3, 1), (2, 3)),
            ])
        );
    }

    #[test]
    fn plan_filters() {
        // left to right through f, right to left directly
        assert_eq!(
            flows_of("a =} f }= b"),
            set(&[((0, 1), (1, 0)), ((1, 1), (2, 0)), ((2, 1), (0, 0))])
        );
        // right to left through f, left to right directly
        assert_eq!(
            flows_of("a ={ f {= b"),
            set(&[((0, 1), (2, 0)), ((2, 1), (1, 0)), ((1, 1), (0, 0))])
        );
        // man page: a -> b -> d -> c -> a, d's alternate pair <-> e
        assert_eq!(
            flows_of("a =} b }={ c {= d = e"),
            set(&[
                ((0, 1), (1, 0)),
                ((1, 1), (3, 0)),
                ((3, 1), (2, 0)),
                ((2, 1), (0, 0)),
                ((3, 4), (4, 0)),
                ((4, 1), (3, 3)),
            ])
        );
        // two right-to-left filters in a row
        assert_eq!(
            flows_of("a ={ f = g {= b"),
            set(&[
                ((0, 1), (3, 0)),
                ((3, 1), (2, 0)),
                ((2, 1), (1, 0)),
                ((1, 1), (0, 0)),
            ])
        );
    }

    #[test]
    fn usage_text_is_the_c_tools() {
        let u = usage("dpipe");
        assert!(u.starts_with(
            "Usage:\n  dpipe [OPTIONS} cmd1 [arg1...] = cmd2 [arg2...] [ = cmd3 [arg3...] ]\n"
        ));
        assert!(u.contains(
            "\n    using: ... =} cmd [arg] }= ...\n       or: ... ={ cmd [arg] {= ...\n"
        ));
        assert!(u.ends_with("  -h | --help                        show this short summary\n"));
        assert_eq!(u.lines().count(), 14);
    }

    #[test]
    fn exit_code_is_wexitstatus() {
        assert_eq!(exit_code(ExitStatus::from_raw(5 << 8)), 5);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 0); // SIGKILL
        assert_eq!(exit_code(ExitStatus::from_raw(255 << 8)), 255);
    }

    #[test]
    fn run_rejects_bad_chains_before_doing_anything() {
        let e = run(&Options::default(), &words("a =")).unwrap_err();
        assert!(matches!(e, Error::Syntax(SyntaxError::TooFewCommands)));
    }
}
