//! The README's examples, run as they are written. A fenced block right
//! after a `<!-- test: NAME -->` line is runnable: the tests here run it
//! with bash (`set -e`), `PATH` starting with this build's binaries, `/tmp/`
//! replaced by a temporary directory and, as root, inside a network
//! namespace of its own (so its loopback UDP ports are its own). Between
//! the blocks they check what the README says should have happened, and
//! send frames through the topologies the README builds. Every process a
//! block starts carries a marker in its environment; whatever is left is
//! killed at the end, and the namespaces are deleted, even on failure.
//! The blocks that need a second host or ssh are not marked, so not run.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vde::core::PortRequest;

const README: &str = include_str!("../README.md");

/// Every marked block, in README order, and the test that runs it.
const MARKED: &[(&str, &str)] = &[
    ("switch", "usage_examples"),
    ("qemu", "usage_examples"),
    ("cable", "usage_examples"),
    ("udp", "usage_examples"),
    ("wirefilter", "usage_examples"),
    ("wirefilter-console", "usage_examples"),
    ("stop", "usage_examples"),
    ("ring", "ring_example"),
    ("ring-print", "ring_example"),
    ("ring-stop", "ring_example"),
    ("ping", "check_that_it_works"),
    ("ping-ports", "check_that_it_works"),
    ("ping-stop", "check_that_it_works"),
    ("inproc", "in_process_cable_example"),
    ("inproc-print", "in_process_cable_example"),
    ("inproc-stop", "in_process_cable_example"),
    ("cryptcab", "cryptcab_example"),
    ("cryptcab-ports", "cryptcab_example"),
    ("cryptcab-stop", "cryptcab_example"),
];

/// Our programs, all built next to each other by cargo for the tests.
const TOOLS: &[&str] = &[
    env!("CARGO_BIN_EXE_vde_switch"),
    env!("CARGO_BIN_EXE_vde_plug"),
    env!("CARGO_BIN_EXE_vde_plug2tap"),
    env!("CARGO_BIN_EXE_wirefilter"),
    env!("CARGO_BIN_EXE_dpipe"),
    env!("CARGO_BIN_EXE_vdeterm"),
    env!("CARGO_BIN_EXE_vde_cryptcab"),
];

/// The longest a block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The marked blocks of the README: (name, body).
fn blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- test:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        let name = name.trim().to_string();
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "README: the marker of {name:?} is not followed by a fenced block"
        );
        let mut body = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l.starts_with("```") {
                closed = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(closed, "README: block {name:?} is not closed");
        out.push((name, body));
    }
    out
}

fn block(name: &str) -> String {
    blocks()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("README has no block marked <!-- test: {name} -->"))
}

fn bin_dir() -> PathBuf {
    let dir = Path::new(TOOLS[0]).parent().unwrap().to_path_buf();
    for t in TOOLS {
        assert_eq!(
            Path::new(t).parent().unwrap(),
            dir,
            "{t} is not with the others"
        );
    }
    dir
}

/// Pids of the processes whose environment holds `VDE_README_TEST=token`.
fn marked(token: &str) -> Vec<i32> {
    let want = format!("VDE_README_TEST={token}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

/// A place to run README blocks: a temporary directory standing for
/// `/tmp/`, a network namespace when root, and the marker of the
/// processes started there.
struct Example {
    token: String,
    /// README names of network namespaces -> the names used here.
    names: Vec<(String, String)>,
    ns: Option<NetNs>,
    dir: TempDir,
}

impl Example {
    fn new(tag: &str) -> Example {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = vde::sys::euid() == 0;
        Example {
            token: format!(
                "{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            names: Vec::new(),
            ns: root.then(|| NetNs::new(&format!("rd{tag}"))),
            dir: TempDir::new(&format!("readme-{tag}")),
        }
    }

    /// The README's namespace `name` becomes one unique to this run.
    fn rename_netns(&mut self, name: &str) -> String {
        let new = format!("{}-{name}", self.token);
        self.names.push((name.to_string(), new.clone()));
        new
    }

    /// The README's `/tmp/NAME`, here.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// Runs README block `name`; panics with its script and output unless
    /// it exits 0 within [`BLOCK_TIMEOUT`]. Returns its output.
    fn run(&self, name: &str) -> String {
        let mut body = block(name).replace("/tmp/", &format!("{}/", self.dir.0.display()));
        for (from, to) in &self.names {
            body = body.replace(from, to);
        }
        let script = self.path(&format!("{name}.sh"));
        let log = self.path(&format!("{name}.log"));
        std::fs::write(&script, format!("set -e -o pipefail\n{body}")).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.0, "bash"]);
                c
            }
            None => Command::new("bash"),
        };
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // output to a file: what the block leaves in the background would
        // hold a pipe open
        let mut child = cmd
            .arg(&script)
            .current_dir(&self.dir.0)
            .env("PATH", path)
            .env("VDE_README_TEST", &self.token)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start bash");
        let end = Instant::now() + BLOCK_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(s) if s.success() => output,
            Some(s) => panic!("README block {name:?} failed ({s}):\n{body}\n--- output:\n{output}"),
            None => panic!("README block {name:?} did not end in {BLOCK_TIMEOUT:?}:\n{body}\n--- output:\n{output}"),
        }
    }

    /// Waits up to 5 s for every process the blocks started to be gone:
    /// what the README's stop commands must achieve.
    fn assert_all_stopped(&self, after: &str) {
        let ok = wait_for(5, || marked(&self.token).is_empty());
        let left: Vec<String> = marked(&self.token)
            .iter()
            .map(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default()
            })
            .collect();
        assert!(ok, "still running after README block {after:?}: {left:?}");
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let pids = marked(&self.token);
        for &p in &pids {
            // SAFETY: kill(2) on pids whose environment carries this run's
            // marker: processes the README blocks started.
            unsafe { libc::kill(p, libc::SIGTERM) };
        }
        if !wait_for(2, || marked(&self.token).is_empty()) {
            for p in marked(&self.token) {
                // SAFETY: as above.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            wait_for(2, || marked(&self.token).is_empty());
        }
        for (_, ns) in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One console command through our vdeterm (no panic if the socket is
/// not there yet: the output is then an error message).
fn console(sock: &Path, cmd: &str) -> String {
    Command::new(env!("CARGO_BIN_EXE_vdeterm"))
        .arg(sock)
        .args(["-t", "2", "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn active_ports(sock: &Path) -> usize {
    console(sock, "port/print").matches(" ACTIVE ").count()
}

/// Sends `n` broadcasts into switch `from` and returns how many of them
/// arrive at switch `to`, each counted as often as it arrives, and how
/// many came back to the sender (a loop brings them back).
fn broadcasts(from: &Path, to: &Path, n: u8) -> (usize, usize) {
    let tx = Client::connect(from, PortRequest::Any, "readme-test").unwrap();
    let rx = Client::connect(to, PortRequest::Any, "readme-test").unwrap();
    // a new port may not forward at once (with -F: 2 s for a host port):
    // probe until a frame gets through, for at most 10 s
    let end = Instant::now() + Duration::from_secs(10);
    let probe = frame(BCAST, mac(0xa0), 60, 0);
    let through = loop {
        tx.send(&probe);
        if let Some(f) = rx.recv() {
            if f[6..12] == mac(0xa0) {
                break true;
            }
        }
        if Instant::now() > end {
            break false;
        }
    };
    assert!(
        through,
        "no frame from {} reaches {}",
        from.display(),
        to.display()
    );
    for seq in 0..n {
        tx.send(&frame(BCAST, mac(0xa1), 60, seq));
    }
    (count_mine(&rx), count_mine(&tx))
}

/// Our test frames a client receives in 1.5 s (a fixed time: switches
/// with `-F` send BPDUs to every port, so there is no quiet end).
fn count_mine(c: &Client) -> usize {
    let end = Instant::now() + Duration::from_millis(1500);
    let mut n = 0;
    while Instant::now() < end {
        if let Some(f) = c.recv() {
            n += usize::from(f.len() == 60 && f[6..12] == mac(0xa1));
        }
    }
    n
}

#[test]
fn every_marked_block_is_run() {
    let found: Vec<String> = blocks().into_iter().map(|(n, _)| n).collect();
    let known: Vec<String> = MARKED.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(found, known, "README markers and the tests here differ");
    for (name, body) in blocks() {
        // bare names, so that PATH decides: ours from the build
        for bad in ["target/", "/usr/bin/", "sudo "] {
            assert!(!body.contains(bad), "block {name:?} contains {bad:?}");
        }
    }
    // said once, at the top of Usage; and nothing links outside the repository
    assert_eq!(
        README
            .matches("export PATH=$PWD/target/release:$PATH")
            .count(),
        1
    );
    assert!(
        !README.contains("](../"),
        "README links outside the repository"
    );
}

#[test]
fn usage_examples() {
    if !have("qemu-system-x86_64") || !have("bash") {
        return;
    }
    let ex = Example::new("usage");
    let out = ex.run("switch");
    assert!(out.contains("mgmt ") && out.contains("Success"), "{out}");

    let out = ex.run("qemu");
    assert!(
        out.contains("Port 0004") && out.contains("QEMU user="),
        "QEMU not on port 4:\n{out}"
    );

    ex.run("cable");
    assert_eq!(active_ports(&ex.path("sw2.mgmt")), 1, "sw1-sw2 cable");
    ex.run("udp");
    assert_eq!(active_ports(&ex.path("sw2.mgmt")), 2, "sw2's udp plug");
    assert_eq!(active_ports(&ex.path("sw3.mgmt")), 1, "sw3's udp plug");
    ex.run("wirefilter");
    assert!(wait_for(5, || active_ports(&ex.path("sw4.mgmt")) == 1));
    assert!(wait_for(5, || console(&ex.path("wf.mgmt"), "showinfo")
        .contains("Loss")));
    let out = ex.run("wirefilter-console");
    assert!(out.contains("Delay  L->R 20"), "{out}");

    // the line carries frames end to end, each once (the block above set
    // the loss to 0): no loop
    let (got, back) = broadcasts(&ex.path("sw1"), &ex.path("sw4"), 20);
    assert_eq!((got, back), (20, 0), "sw1 -> sw4 through the three cables");

    ex.run("stop");
    ex.assert_all_stopped("stop");
    for s in ["sw1", "sw2", "sw3", "sw4"] {
        assert!(!ex.path(s).exists(), "/tmp/{s} left behind");
    }
}

#[test]
fn ring_example() {
    if !have("bash") {
        return;
    }
    let ex = Example::new("ring");
    ex.run("ring");
    let roles = || -> String {
        ["r1", "r2", "r3"]
            .iter()
            .map(|s| console(&ex.path(&format!("{s}.mgmt")), "fstp/print"))
            .collect()
    };
    // one port of the ring blocked, every other one forwarding
    assert!(
        wait_for(10, || {
            let r = roles();
            r.matches("role=Alternate/Backup").count() == 1
                && r.matches("role=Root").count() == 2
                && r.matches("role=Designated").count() == 3
        }),
        "the ring did not converge:\n{}",
        roles()
    );
    let out = ex.run("ring-print");
    assert_eq!(out.matches("role=Alternate/Backup").count(), 1, "{out}");
    assert_eq!(out.matches("ROOTSWITCH").count(), 1, "{out}");
    // broadcasts go round once
    let (got, back) = broadcasts(&ex.path("r1"), &ex.path("r3"), 10);
    assert_eq!((got, back), (10, 0), "broadcasts in the ring");
    ex.run("ring-stop");
    ex.assert_all_stopped("ring-stop");
}

#[test]
fn check_that_it_works() {
    if !is_root() || !have("ip") || !have("ping") || !have("bash") {
        return;
    }
    let mut ex = Example::new("ping");
    let (a, b) = (ex.rename_netns("vdeA"), ex.rename_netns("vdeB"));
    let out = ex.run("ping");
    assert!(
        out.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{out}"
    );
    assert!(out.contains("64 bytes from 10.0.0.2: icmp_seq=1"), "{out}");
    let out = ex.run("ping-ports");
    assert!(out.contains("module tuntap      : tapA"), "{out}");
    assert_eq!(out.matches(" ACTIVE ").count(), 2, "{out}");
    assert!(
        !out.contains("IN:  pkts          0 "),
        "a port saw nothing:\n{out}"
    );
    ex.run("ping-stop");
    ex.assert_all_stopped("ping-stop");
    let list = sh("ip netns list");
    assert!(!list.contains(&a) && !list.contains(&b), "{list}");
}

#[test]
fn cryptcab_example() {
    if !have("bash") {
        return;
    }
    let ex = Example::new("cab");
    ex.run("cryptcab");
    let up = |s: &str| {
        console(&ex.path(&format!("{s}.mgmt")), "port/print").contains("vde_cryptcab user=")
    };
    assert!(
        wait_for(10, || up("csw1") && up("csw2")),
        "no cable port:\n{}\n{}",
        console(&ex.path("csw1.mgmt"), "port/print"),
        console(&ex.path("csw2.mgmt"), "port/print")
    );
    let out = ex.run("cryptcab-ports");
    assert!(out.contains("prog   : vde_cryptcab user="), "{out}");
    let (got, back) = broadcasts(&ex.path("csw1"), &ex.path("csw2"), 10);
    assert_eq!((got, back), (10, 0), "broadcasts through the cable");
    ex.run("cryptcab-stop");
    ex.assert_all_stopped("cryptcab-stop");
}

#[test]
fn in_process_cable_example() {
    if !have("bash") {
        return;
    }
    let ex = Example::new("inproc");
    ex.run("inproc");
    let up =
        |s: &str| console(&ex.path(&format!("{s}.mgmt")), "port/print").contains("module cable");
    assert!(
        wait_for(10, || up("isw1") && up("isw2")),
        "no cable port:\n{}\n{}",
        console(&ex.path("isw1.mgmt"), "cable/print"),
        console(&ex.path("isw2.mgmt"), "cable/print")
    );
    let out = ex.run("inproc-print");
    assert!(
        out.contains("dial cryptcab://127.0.0.1:7667") && out.contains(" UP peer 127.0.0.1:7667"),
        "{out}"
    );
    let (got, back) = broadcasts(&ex.path("isw1"), &ex.path("isw2"), 10);
    assert_eq!((got, back), (10, 0), "broadcasts through the cable");
    ex.run("inproc-stop");
    ex.assert_all_stopped("inproc-stop");
}
