//! Shared pieces of the end-to-end tests: switches (ours and the Debian C
//! one) in temporary directories, a management client, a raw control
//! protocol client, and the Debian `vde_plug` driven through its stream.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vde::core::PortRequest;
use vde::ctl::{parse_reply, Request};

/// Our switch binary, built by cargo for these tests.
pub const OURS: &str = env!("CARGO_BIN_EXE_vde_switch");
/// Our vde_plug.
pub const OUR_PLUG: &str = env!("CARGO_BIN_EXE_vde_plug");

/// True when a tool is on PATH. Under CI=true a missing tool fails the
/// test; elsewhere the test prints why it is skipped.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is required under CI=true but is not installed (.ci/run installs it)");
        }
        eprintln!("SKIP: {tool} not installed (run .ci/run or install the Debian package)");
    }
    found
}

/// True when running as root; same CI rule as [`have`].
pub fn is_root() -> bool {
    let root = vde::sys::euid() == 0;
    if !root {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("this test needs root under CI=true");
        }
        eprintln!("SKIP: needs root");
    }
    root
}

/// A fresh directory under /tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = PathBuf::from(format!(
            "/tmp/vdet-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 10 ms for up to `secs` seconds.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Ours,
    C,
}

/// A running switch with a control directory and a management socket.
pub struct Switch {
    pub child: Child,
    /// Held open: both switches exit at end of stdin.
    pub stdin: Option<ChildStdin>,
    pub ctl: PathBuf,
    pub mgmt: PathBuf,
    pub kind: Impl,
}

impl Switch {
    pub fn start(kind: Impl, dir: &TempDir, name: &str, extra: &[&str]) -> Switch {
        let bin = match kind {
            Impl::Ours => OURS,
            Impl::C => "vde_switch",
        };
        Switch::launch(Command::new(bin), kind, dir, name, extra, Stdio::null())
    }

    /// A switch started by `cmd` (our binary behind a wrapper such as
    /// `unshare`); its stderr goes to NAME.log in `dir`.
    pub fn start_cmd(cmd: Command, dir: &TempDir, name: &str, extra: &[&str]) -> Switch {
        let log = std::fs::File::create(dir.path(&format!("{name}.log"))).unwrap();
        Switch::launch(cmd, Impl::Ours, dir, name, extra, log.into())
    }

    /// Our switch started inside a network namespace (its control and
    /// management sockets are files, reachable from here); its stderr
    /// goes to NAME.log in `dir`.
    pub fn start_in(ns: &NetNs, dir: &TempDir, name: &str, extra: &[String]) -> Switch {
        let log = std::fs::File::create(dir.path(&format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0, OURS]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Switch::launch(cmd, Impl::Ours, dir, name, &extra, log.into())
    }

    /// Runs `cmd -s DIR/NAME.ctl -M DIR/NAME.mgmt EXTRA…` and waits for
    /// both sockets.
    fn launch(
        mut cmd: Command,
        kind: Impl,
        dir: &TempDir,
        name: &str,
        extra: &[&str],
        stderr: Stdio,
    ) -> Switch {
        let ctl = dir.path(&format!("{name}.ctl"));
        let mgmt = dir.path(&format!("{name}.mgmt"));
        let mut child = cmd
            .arg("-s")
            .arg(&ctl)
            .arg("-M")
            .arg(&mgmt)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {kind:?} switch {name}: {e}"));
        let stdin = child.stdin.take();
        let ok = wait_for(10, || {
            ctl.join("ctl").exists() && UnixStream::connect(&mgmt).is_ok()
        });
        assert!(
            ok,
            "{kind:?} switch {name} did not come up at {}: {}",
            ctl.display(),
            std::fs::read_to_string(dir.path(&format!("{name}.log"))).unwrap_or_default()
        );
        Switch {
            child,
            stdin,
            ctl,
            mgmt,
            kind,
        }
    }

    pub fn mgmt(&self) -> Mgmt {
        Mgmt::connect(&self.mgmt)
    }

    /// Runs one management command on a fresh session.
    pub fn cmd(&self, c: &str) -> String {
        self.mgmt().cmd(c)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A management session: reads the banner, then one command at a time.
pub struct Mgmt {
    pub stream: UnixStream,
    pub banner: String,
    prompt: &'static str,
}

impl Mgmt {
    pub fn connect(path: &Path) -> Mgmt {
        Mgmt::connect_with_prompt(path, "\nvde$ ")
    }

    /// A session on a console whose prompt is `prompt` (wirefilter's is
    /// `\nVDEwf$ `).
    pub fn connect_with_prompt(path: &Path, prompt: &'static str) -> Mgmt {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut m = Mgmt {
            stream,
            banner: String::new(),
            prompt,
        };
        m.banner = m.read_reply();
        m
    }

    /// Reads until the prompt or the end-of-session line.
    pub fn read_reply(&mut self) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let s = String::from_utf8_lossy(&got);
            if s.ends_with(self.prompt) || s.ends_with("9999 END OF SESSION") {
                break;
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Sends a command and returns the reply without the trailing prompt.
    pub fn cmd(&mut self, c: &str) -> String {
        self.stream.write_all(format!("{c}\n").as_bytes()).unwrap();
        let r = self.read_reply();
        r.strip_suffix(self.prompt).unwrap_or(&r).to_string()
    }
}

/// A client speaking the control protocol directly (what libvdeplug does).
pub struct Client {
    pub ctl: UnixStream,
    pub data: UnixDatagram,
    pub path: PathBuf,
    pub remote: PathBuf,
}

impl Client {
    pub fn connect(ctl_dir: &Path, port: PortRequest, descr: &str) -> std::io::Result<Client> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = ctl_dir.join(format!(
            ".t{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&path);
        let data = UnixDatagram::bind(&path)?;
        let mut ctl = UnixStream::connect(ctl_dir.join("ctl"))?;
        ctl.set_read_timeout(Some(Duration::from_secs(3)))?;
        use std::os::unix::ffi::OsStrExt;
        ctl.write_all(&Request::emit_v3(port, path.as_os_str().as_bytes(), descr))?;
        let mut reply = [0u8; 110];
        let mut got = 0;
        while got < reply.len() {
            let n = ctl.read(&mut reply[got..])?;
            if n == 0 {
                let _ = std::fs::remove_file(&path);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "switch closed the control stream",
                ));
            }
            got += n;
        }
        let remote = parse_reply(&reply).expect("valid reply");
        let remote = PathBuf::from(std::ffi::OsStr::from_bytes(&remote));
        data.connect(&remote)?;
        // like libvdeplug4: the connected socket keeps working unlinked
        let _ = std::fs::remove_file(&path);
        data.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(Client {
            ctl,
            data,
            path,
            remote,
        })
    }

    pub fn send(&self, f: &[u8]) {
        self.data.send(f).unwrap();
    }

    /// Next frame, or None after the read timeout.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut b = vec![0u8; 10000];
        match self.data.recv(&mut b) {
            Ok(n) => {
                b.truncate(n);
                Some(b)
            }
            Err(_) => None,
        }
    }

    /// Reads frames until none arrives within the timeout.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// The port number from the data socket name `NNN.F`.
    pub fn port(&self) -> u32 {
        let name = self
            .remote
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        name.split('.').next().unwrap().parse().unwrap()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The Debian `vde_plug` (libvdeplug4) attached to a switch, driven through
/// its stdin/stdout stream (2-byte big-endian length + frame).
pub struct Plug {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Plug {
    pub fn start(args: &[&str]) -> Plug {
        Plug::start_with("vde_plug", args)
    }

    /// Our vde_plug, built by cargo for these tests.
    pub fn ours(args: &[&str]) -> Plug {
        Plug::start_with(OUR_PLUG, args)
    }

    pub fn start_with(bin: &str, args: &[&str]) -> Plug {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut len = [0u8; 2];
            if out.read_exact(&mut len).is_err() {
                return;
            }
            let mut f = vec![0u8; u16::from_be_bytes(len) as usize];
            if out.read_exact(&mut f).is_err() || tx.send(f).is_err() {
                return;
            }
        });
        Plug {
            child,
            stdin: Some(stdin),
            rx,
        }
    }

    pub fn send(&mut self, f: &[u8]) {
        let mut rec = (f.len() as u16).to_be_bytes().to_vec();
        rec.extend_from_slice(f);
        let stdin = self.stdin_mut();
        stdin.write_all(&rec).unwrap();
        stdin.flush().unwrap();
    }

    pub fn stdin_mut(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin open")
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn recv(&self, ms: u64) -> Option<Vec<u8>> {
        self.rx.recv_timeout(Duration::from_millis(ms)).ok()
    }

    pub fn drain(&self, ms: u64) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.recv(ms)).collect()
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Ethernet frame of `len` bytes with a recognisable payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], len: usize, seq: u8) -> Vec<u8> {
    let mut f = vec![seq; len.max(14)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x08;
    f[13] = 0x00;
    f.truncate(len);
    f
}

pub const BCAST: [u8; 6] = [0xff; 6];

pub fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

/// Reads a whole line-oriented file of a child's output (for logs).
pub fn lines_of(r: impl Read) -> Vec<String> {
    BufReader::new(r).lines().map_while(Result::ok).collect()
}

/// A network namespace made by a test, deleted on drop.
pub struct NetNs(pub String);

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vdet-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        sh(&format!("ip netns add {name}"));
        sh(&format!("ip -n {name} link set lo up"));
        NetNs(name)
    }

    /// Runs a shell command inside the namespace; panics on failure.
    pub fn sh(&self, cmd: &str) -> String {
        sh(&format!(
            "ip netns exec {} sh -c '{}'",
            self.0,
            cmd.replace('\'', "'\\''")
        ))
    }

    /// Like `sh` but returns success instead of panicking.
    pub fn ok(&self, cmd: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs a shell command; panics with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Number of active ports of a switch.
pub fn active(sw: &Switch) -> usize {
    sw.cmd("port/print").matches(" ACTIVE").count()
}

/// Tries `once(seq)` with a fresh sequence number until it says a probe
/// arrived exactly once where it should, for at most `secs`; returns how
/// long that took.
pub fn until_once(secs: u64, seq: &mut u8, mut once: impl FnMut(u8) -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        *seq = seq.wrapping_add(1);
        if once(*seq) {
            return Some(t.elapsed());
        }
    }
    None
}
