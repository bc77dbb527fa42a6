//! Whole meshes brought up by `vde-lab` (issue #12): the example
//! topologies of examples/lab/, driven from the hosts' own namespaces
//! (UDP broadcasts counted at every other host, ping, TCP), with cables
//! cut and sites killed and restarted through the runner. Root only.

mod common;

use common::{have, is_root, TempDir};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LAB: &str = env!("CARGO_BIN_EXE_vde-lab");
const PROBE_PORT: u16 = 9999;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/lab")
        .join(name)
}

fn ready() -> bool {
    is_root() && have("nft") && have("ping")
}

/// A lab brought up by the runner under a name of this test's own; down
/// on drop, even when the test fails.
struct Lab {
    file: PathBuf,
    name: String,
    _dir: TempDir,
    state: PathBuf,
}

impl Lab {
    fn up(file: &Path, tag: &str) -> Lab {
        let dir = TempDir::new(&format!("lab-{tag}"));
        let name = format!("{tag}{}", std::process::id() % 100000);
        let lab = Lab {
            file: file.to_path_buf(),
            name,
            state: dir.path("state"),
            _dir: dir,
        };
        let out = lab.run(&["up"]);
        assert!(out.0, "vde-lab up: {}", out.1);
        lab
    }

    /// Runs a runner command: (success, stdout + stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(LAB)
            .arg("--name")
            .arg(&self.name)
            .arg("--state")
            .arg(&self.state)
            .arg(&self.file)
            .args(args)
            .output()
            .expect("run vde-lab");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "vde-lab {args:?}: {out}");
        out
    }

    fn host_ns(&self, site: &str, host: &str) -> String {
        format!("{}-{site}-{host}", self.name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let (ok, out) = self.run(&["down"]);
        if !ok {
            eprintln!("vde-lab down: {out}");
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens
/// live there even when used from other threads afterwards.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(format!("/run/netns/{ns}")).expect("netns file");
            // SAFETY: setns on a namespace fd we hold open; CLONE_NEWNET only
            // changes this (scoped) thread's network namespace.
            let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// One UDP socket per host, for broadcasts on the hosts' subnet.
struct Hosts {
    socks: Vec<UdpSocket>,
    bcast: Ipv4Addr,
    seq: u32,
}

impl Hosts {
    fn new(lab: &Lab, hosts: &[(&str, &str)], bcast: Ipv4Addr) -> Hosts {
        let socks = hosts
            .iter()
            .map(|(site, host)| {
                in_netns(&lab.host_ns(site, host), || {
                    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PROBE_PORT))
                        .expect("bind the probe port");
                    s.set_broadcast(true).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    s
                })
            })
            .collect();
        Hosts {
            socks,
            bcast,
            seq: 0,
        }
    }

    /// Host `from` broadcasts one probe; how many copies each host got
    /// within 300 ms (the sender's own entry is left at 0).
    fn copies(&mut self, from: usize) -> Vec<usize> {
        self.seq += 1;
        let tag = format!("vde-lab probe {} from {from}", self.seq);
        let _ = self.socks[from].send_to(tag.as_bytes(), SocketAddrV4::new(self.bcast, PROBE_PORT));
        let mut n = vec![0; self.socks.len()];
        let end = Instant::now() + Duration::from_millis(300);
        let mut buf = [0u8; 200];
        while Instant::now() < end {
            for (i, s) in self.socks.iter().enumerate() {
                while let Ok(len) = s.recv(&mut buf) {
                    if i != from && &buf[..len] == tag.as_bytes() {
                        n[i] += 1;
                    }
                }
            }
        }
        n
    }

    /// Every host's broadcast reached every host of `group` but itself
    /// exactly once (and nobody else).
    fn once(&mut self, group: &[usize]) -> bool {
        group.iter().all(|&from| {
            let n = self.copies(from);
            (0..n.len()).all(|i| n[i] == usize::from(i != from && group.contains(&i)))
        })
    }

    /// Host `from` broadcasts a probe every 10 ms for 4 s while `action`
    /// runs at the start; the longest time host `to` went without one
    /// (from the action on): the outage the action caused.
    fn outage(&mut self, from: usize, to: usize, action: impl FnOnce() + Send) -> Duration {
        let tx = self.socks[from].try_clone().unwrap();
        let dst = SocketAddrV4::new(self.bcast, PROBE_PORT);
        let window = Duration::from_secs(4);
        let sender = std::thread::spawn(move || {
            let t = Instant::now();
            while t.elapsed() < window {
                let _ = tx.send_to(b"vde-lab outage probe", dst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let t0 = Instant::now();
        let (mut last, mut worst) = (t0, Duration::ZERO);
        let mut buf = [0u8; 200];
        let rx = &self.socks[to];
        // the action (a runner command, which may take a while to return)
        // runs beside the receiver, so that its own duration is not
        // counted as an outage
        std::thread::scope(|scope| {
            scope.spawn(action);
            while t0.elapsed() < window {
                if let Ok(len) = rx.recv(&mut buf) {
                    if &buf[..len] == b"vde-lab outage probe" {
                        worst = worst.max(last.elapsed());
                        last = Instant::now();
                    }
                }
            }
        });
        worst = worst.max(last.elapsed());
        sender.join().unwrap();
        // let the last probes drain before the next count
        std::thread::sleep(Duration::from_millis(300));
        for s in &self.socks {
            while s.recv(&mut buf).is_ok() {}
        }
        worst
    }

    /// Polls `once` for at most `secs`; how long until it held.
    fn until_once(&mut self, group: &[usize], secs: u64) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            if self.once(group) {
                return Some(t.elapsed());
            }
        }
        None
    }
}

fn ping(lab: &Lab, from: (&str, &str), to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &lab.host_ns(from.0, from.1)])
        .args(["ping", "-c", "1", "-W", "1", to])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pings until a reply, for at most `secs`.
fn ping_within(lab: &Lab, from: (&str, &str), to: &str, secs: u64) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if ping(lab, from, to) {
            return true;
        }
    }
    false
}

/// 1 MiB over TCP from one host to another; the bytes must arrive intact.
fn tcp(lab: &Lab, from: (&str, &str), to: (&str, &str), to_ip: Ipv4Addr) {
    let l = in_netns(&lab.host_ns(to.0, to.1), || {
        TcpListener::bind(SocketAddrV4::new(to_ip, 5001)).expect("listen")
    });
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let expect = data.clone();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let mut s = in_netns(&lab.host_ns(from.0, from.1), || {
        TcpStream::connect_timeout(
            &SocketAddrV4::new(to_ip, 5001).into(),
            Duration::from_secs(5),
        )
        .expect("connect across the sites")
    });
    s.write_all(&data).unwrap();
    drop(s);
    assert!(rx.join().unwrap() == expect, "1 MiB intact across sites");
}

/// The sites' lines of `status`, and which cable has which role at which site.
fn roles(lab: &Lab) -> Vec<(String, String, String)> {
    let out = lab.ok(&["status"]);
    let mut site = String::new();
    let mut v = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() == Some(&"site") {
            site = w[1].to_string();
        } else if line.starts_with("  cable ") && line.contains("role=") {
            let role = w.iter().find_map(|x| x.strip_prefix("role=")).unwrap();
            v.push((site.clone(), w[1].to_string(), role.to_string()));
        }
    }
    v
}

#[test]
fn ring_of_three_over_cryptcab() {
    if !ready() {
        return;
    }
    let lab = Lab::up(&example("ring3.toml"), "r");
    let mut h = Hosts::new(
        &lab,
        &[("a", "h1"), ("b", "h1"), ("c", "h1")],
        Ipv4Addr::new(10, 0, 0, 255),
    );
    let all = [0, 1, 2];
    let t = h.until_once(&all, 20).expect("the ring converges");
    eprintln!("ring3: broadcasts exactly once {t:?} after `up`");
    for _ in 0..3 {
        assert!(
            h.once(&all),
            "every broadcast reaches every other site once"
        );
    }
    // one port of the ring is blocked, and status says so
    let r = roles(&lab);
    assert_eq!(
        r.iter().filter(|x| x.2 == "Alternate/Backup").count(),
        1,
        "{r:?}"
    );
    assert!(ping_within(&lab, ("a", "h1"), "10.0.0.3", 5));
    assert!(ping_within(&lab, ("c", "h1"), "10.0.0.2", 5));
    tcp(&lab, ("a", "h1"), ("c", "h1"), Ipv4Addr::new(10, 0, 0, 3));

    // silence a cable of the tree (one that is some site's root port)
    let (site, cable) = r
        .iter()
        .find(|x| x.2 == "Root")
        .map(|x| (x.0.clone(), x.1.clone()))
        .unwrap();
    // probes from the site whose root port it is to the cable's other end
    let ends = lab
        .ok(&["status"])
        .lines()
        .find(|l| l.starts_with(&format!("cable {cable} ")))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[2].to_string(), w[4].to_string())
        })
        .unwrap();
    let other = if ends.0 == site { &ends.1 } else { &ends.0 };
    let idx = |s: &str| ["a", "b", "c"].iter().position(|x| *x == s).unwrap();
    let gap = h.outage(idx(&site), idx(other), || {
        lab.ok(&["cut", &cable]);
    });
    eprintln!("ring3: cable {cable} cut: {site} -> {other} broadcasts lost for {gap:?}");
    assert!(gap < Duration::from_secs(4), "failover within a sane bound");
    h.until_once(&all, 10)
        .expect("rerouted around the cut cable");
    let st = lab.ok(&["status"]);
    assert!(
        st.lines()
            .any(|l| l.starts_with(&format!("cable {cable} ")) && l.ends_with(" CUT")),
        "{st}"
    );
    for _ in 0..3 {
        assert!(h.once(&all), "still exactly once with the cable cut");
    }
    lab.ok(&["mend", &cable]);
    assert!(h.until_once(&all, 15).is_some(), "loop-free after the mend");
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.once(&all) && h.once(&all), "exactly once after the mend");

    // kill the root bridge's site: the others keep forwarding
    let out = lab.ok(&["status"]);
    let root = out
        .lines()
        .find(|l| l.starts_with("site ") && l.ends_with("root-bridge"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("a root bridge")
        .to_string();
    let dead = ["a", "b", "c"].iter().position(|s| *s == root).unwrap();
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != dead).collect();
    let gap = h.outage(rest[0], rest[1], || {
        lab.ok(&["kill", &root]);
    });
    eprintln!("ring3: root site {root} killed: broadcasts between the others lost for {gap:?}");
    assert!(gap < Duration::from_secs(4), "failover within a sane bound");
    h.until_once(&rest, 10).expect("the others keep forwarding");
    // it rejoins by itself once started (the host's namespace and socket
    // stay; its tap is new)
    lab.ok(&["start", &root]);
    let t0 = Instant::now();
    h.until_once(&all, 20).expect("the restarted site rejoins");
    eprintln!(
        "ring3: site {root} restarted, rejoined in {:?}",
        t0.elapsed()
    );
    for _ in 0..3 {
        assert!(h.once(&all));
    }
}

/// What a lab with keys over ssh needs besides [`ready`]: ssh-keygen and
/// the OpenSSH server (same CI rule as `have`).
fn ssh_ready() -> bool {
    if !ready() || !have("ssh") || !have("ssh-keygen") {
        return false;
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "/usr/sbin/sshd is required under CI=true (openssh-server)"
        );
        eprintln!("SKIP: no /usr/sbin/sshd");
        return false;
    }
    true
}

/// The `status` line of cable `name` at site `site` ("  cable NAME port
/// P up role=…"), if it is up there.
fn cable_up_at(lab: &Lab, site: &str, name: &str) -> bool {
    let out = lab.ok(&["status"]);
    let mut here = false;
    out.lines().any(|l| {
        if l.starts_with("site ") {
            here = l.split_whitespace().nth(1) == Some(site);
        }
        here && l.starts_with(&format!("  cable {name} port ")) && l.contains(" up")
    })
}

#[test]
fn a_ring_with_keys_over_ssh() {
    if !ssh_ready() {
        return;
    }
    let lab = Lab::up(&example("ring3-ssh.toml"), "s");
    let st = lab.ok(&["status"]);
    // the runner started an sshd in b, the listening end of ab
    assert!(
        st.lines()
            .any(|l| l.starts_with("cable ab a -> b cryptcab keys=ssh ")),
        "{st}"
    );
    assert!(st.contains("  sshd 10.99.0.2:22 up"), "{st}");
    assert_eq!(st.matches("  sshd ").count(), 1, "an sshd in b only: {st}");
    let sshd_log = lab.state.join("b").join("sshd.log");
    let sessions = || {
        std::fs::read_to_string(&sshd_log)
            .unwrap_or_default()
            .matches("Starting session: forced-command")
            .count()
    };
    assert_eq!(sessions(), 1, "one key exchange over ssh at `up`");
    std::thread::sleep(Duration::from_secs(1));
    assert_ports_apart(&lab);
    assert!(
        cable_up_at(&lab, "a", "ab") && cable_up_at(&lab, "b", "ab"),
        "{st}"
    );
    // the keys of the other cables stay pre-shared; ab has no key file
    assert!(!lab.state.join("keys/ab.key").exists());
    assert!(lab.state.join("keys/bc.key").exists());

    // the other way from a to c cut: a reaches b and c through ab only
    lab.ok(&["cut", "ca"]);
    let t0 = Instant::now();
    assert!(
        ping_within(&lab, ("a", "h1"), "10.0.0.3", 20),
        "a -> c through the ssh cable and b: {}",
        lab.ok(&["status"])
    );
    eprintln!("ring3-ssh: ca cut, a -> b -> c pings in {:?}", t0.elapsed());
    assert!(ping_within(&lab, ("c", "h1"), "10.0.0.1", 5));
    assert!(ping_within(&lab, ("a", "h1"), "10.0.0.2", 5));
    tcp(&lab, ("a", "h1"), ("c", "h1"), Ipv4Addr::new(10, 0, 0, 3));

    // the listening site crashes (its sshd with it) and comes back: the
    // dialing switch fetches a new key over ssh by itself
    lab.ok(&["kill", "b"]);
    let st = lab.ok(&["status"]);
    assert!(
        st.contains("switch ours DOWN") && st.contains("  sshd 10.99.0.2:22 DOWN"),
        "{st}"
    );
    assert!(
        !ping(&lab, ("a", "h1"), "10.0.0.3"),
        "no way from a to c with b dead"
    );
    std::thread::sleep(Duration::from_secs(2));
    let out = lab.ok(&["start", "b"]);
    let t0 = Instant::now();
    assert!(
        !out.contains("key handed over ssh"),
        "the runner left the dialing cable alone: {out}"
    );
    let back = wait_until(40, || cable_up_at(&lab, "a", "ab"));
    assert!(
        back,
        "ab back up within 40 s: {}\n{}",
        lab.ok(&["status"]),
        std::fs::read_to_string(lab.state.join("a/switch.log")).unwrap_or_default()
    );
    eprintln!(
        "ring3-ssh: b restarted, ab up again after {:?}",
        t0.elapsed()
    );
    assert!(sessions() >= 1, "the new key went over ssh to the new sshd");
    assert!(
        ping_within(&lab, ("a", "h1"), "10.0.0.3", 20),
        "a -> b -> c again: {}",
        lab.ok(&["status"])
    );
    eprintln!(
        "ring3-ssh: a -> c pings {:?} after the restart",
        t0.elapsed()
    );
}

/// No two cables of a site share a switch port (a link that comes back
/// takes its old port only if nobody else took it meanwhile).
fn assert_ports_apart(lab: &Lab) {
    let out = lab.ok(&["status"]);
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut site = String::new();
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"site") {
            site = w[1].to_string();
        } else if l.starts_with("  cable ") && w.get(2) == Some(&"port") {
            let key = (site.clone(), w[3].to_string());
            assert!(!seen.contains(&key), "two cables on one port: {out}");
            seen.push(key);
        }
    }
}

/// Polls `f` every 200 ms for at most `secs`.
fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

#[test]
fn vlans_stay_apart_across_sites() {
    if !ready() {
        return;
    }
    let lab = Lab::up(&example("vlans.toml"), "v");
    // red (VLAN 10) and blue (VLAN 20) share one subnet: only the VLANs
    // keep them apart
    let mut h = Hosts::new(
        &lab,
        &[
            ("a", "red"),
            ("b", "red"),
            ("c", "red"),
            ("a", "blue"),
            ("b", "blue"),
            ("c", "blue"),
        ],
        Ipv4Addr::new(10, 0, 0, 255),
    );
    let red = [0, 1, 2];
    let blue = [3, 4, 5];
    h.until_once(&red, 20).expect("red converges");
    h.until_once(&blue, 20).expect("blue converges");
    for _ in 0..3 {
        assert!(
            h.once(&red),
            "red broadcasts reach the red hosts only, once"
        );
        assert!(
            h.once(&blue),
            "blue broadcasts reach the blue hosts only, once"
        );
    }
    assert!(ping_within(&lab, ("a", "red"), "10.0.0.3", 5));
    assert!(ping_within(&lab, ("b", "blue"), "10.0.0.11", 5));
    for to in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
        assert!(!ping(&lab, ("a", "red"), to), "red reaches blue {to}");
    }
}

#[test]
fn a_mixed_mesh_of_a_vxvde_cloud_and_cryptcab_is_loop_free() {
    if !ready() {
        return;
    }
    let lab = Lab::up(&example("cloud.toml"), "m");
    let mut h = Hosts::new(
        &lab,
        &[("a", "h1"), ("b", "h1"), ("c", "h1")],
        Ipv4Addr::new(10, 0, 0, 255),
    );
    let all = [0, 1, 2];
    let t = h.until_once(&all, 20).expect("the mixed mesh converges");
    eprintln!("cloud: exactly once {t:?} after `up`");
    for _ in 0..5 {
        assert!(h.once(&all), "no loop through the cloud and the cables");
    }
    assert!(
        ping_within(&lab, ("a", "h1"), "10.0.0.2", 5),
        "across the cloud"
    );
    tcp(&lab, ("c", "h1"), ("b", "h1"), Ipv4Addr::new(10, 0, 0, 2));
    // the cloud silenced: a and b still meet through c
    lab.ok(&["cut", "lan"]);
    let t0 = Instant::now();
    h.until_once(&all, 10).expect("rerouted through c");
    eprintln!("cloud: cloud cut, rerouted in {:?}", t0.elapsed());
    for _ in 0..3 {
        assert!(h.once(&all));
    }
}

#[test]
fn a_debian_switch_as_one_site() {
    if !ready() || !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("lab-deb");
    let text = std::fs::read_to_string(example("ring3.toml"))
        .unwrap()
        .replacen("name = \"b\"\n", "name = \"b\"\nswitch = \"debian\"\n", 1);
    assert!(text.contains("switch = \"debian\""));
    let file = dir.path("deb.toml");
    std::fs::write(&file, text).unwrap();
    let lab = Lab::up(&file, "d");
    assert!(lab.ok(&["status"]).contains("switch debian up"));
    let mut h = Hosts::new(
        &lab,
        &[("a", "h1"), ("b", "h1"), ("c", "h1")],
        Ipv4Addr::new(10, 0, 0, 255),
    );
    let all = [0, 1, 2];
    // the C switch says hello every 4 s: give it time
    let t = h
        .until_once(&all, 40)
        .expect("a ring with the C switch converges");
    eprintln!("debian site: exactly once {t:?} after `up`");
    for _ in 0..3 {
        assert!(h.once(&all));
    }
    assert!(ping_within(&lab, ("a", "h1"), "10.0.0.2", 5));
    assert!(ping_within(&lab, ("b", "h1"), "10.0.0.3", 5));
}

#[test]
fn a_debian_site_listens_with_keys_over_ssh() {
    if !ssh_ready() || !have("vde_switch") {
        return;
    }
    // b runs the C switch: our vde_cryptcab process there listens in ssh
    // mode, beside the sshd the runner starts
    let dir = TempDir::new("lab-deb-ssh");
    let text = std::fs::read_to_string(example("ring3-ssh.toml"))
        .unwrap()
        .replacen("name = \"b\"\n", "name = \"b\"\nswitch = \"debian\"\n", 1);
    let file = dir.path("deb-ssh.toml");
    std::fs::write(&file, text).unwrap();
    let lab = Lab::up(&file, "e");
    let st = lab.ok(&["status"]);
    assert!(
        st.contains("switch debian up") && st.contains("  sshd 10.99.0.2:22 up"),
        "{st}"
    );
    assert!(cable_up_at(&lab, "a", "ab"), "{st}");
    let log = std::fs::read_to_string(lab.state.join("b/cable-ab.log")).unwrap();
    assert!(log.contains("announced over ssh"), "{log}");
    lab.ok(&["cut", "ca"]);
    // the C switch says hello every 4 s: give it time
    assert!(
        ping_within(&lab, ("a", "h1"), "10.0.0.3", 40),
        "a -> c through the ssh cable and the C switch: {}",
        lab.ok(&["status"])
    );
}

#[test]
fn a_bad_topology_file_is_named_with_its_line() {
    let dir = TempDir::new("lab-bad");
    let file = dir.path("bad.toml");
    std::fs::write(
        &file,
        "name = \"x\"\n[[site]]\nname = \"a\"\n[[cable]]\nname = \"ab\"\nfrom = \"a\"\nto = \"b\"\n",
    )
    .unwrap();
    let out = Command::new(LAB).arg(&file).arg("check").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:7: no site named \"b\"", file.display())),
        "{err}"
    );
    // the examples are all good
    for f in ["ring3.toml", "ring3-ssh.toml", "cloud.toml", "vlans.toml"] {
        let out = Command::new(LAB)
            .arg(example(f))
            .arg("check")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
