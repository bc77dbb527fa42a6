//! vde_cryptcab end to end: switches joined by our encrypted cables, the
//! ssh key exchange against a real sshd started here on 127.0.0.1 with
//! keys made in a temp dir, refusals, hostile datagrams, dead peers and a
//! server restart.

mod common;

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use vde::core::PortRequest;

const CRYPTCAB: &str = env!("CARGO_BIN_EXE_vde_cryptcab");

/// A free UDP (or TCP) port on loopback, for a moment.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running vde_cryptcab whose log goes to a file.
struct Cab {
    child: Child,
    log: PathBuf,
}

impl Cab {
    fn start(dir: &TempDir, name: &str, args: &[&str]) -> Cab {
        Cab::start_env(dir, name, args, &[])
    }

    /// Like [`Cab::start`] with environment variables.
    fn start_env(dir: &TempDir, name: &str, args: &[&str], env: &[(&str, &str)]) -> Cab {
        let log = dir.path(&format!("{name}.log"));
        let child = Command::new(CRYPTCAB)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Cab { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        sh(&format!("kill -{sig} {}", self.child.id()));
    }

    /// Asks for the counters (SIGUSR1) and returns the newest stats line.
    fn stats(&self) -> String {
        // its first log line comes after it blocked the signals
        assert!(
            wait_for(5, || self.log().contains("vde_cryptcab ")),
            "not started"
        );
        let before = self.log().matches("stats:").count();
        self.signal("USR1");
        assert!(
            wait_for(5, || self.log().matches("stats:").count() > before),
            "no stats line: {}",
            self.log()
        );
        self.log()
            .lines()
            .rfind(|l| l.contains("stats:"))
            .unwrap()
            .to_string()
    }

    /// Waits for the process to end and returns its exit code.
    fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Cab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number from a stats line: `packets in 12 …`, `bad tag: 3`.
fn stat(line: &str, key: &str) -> u64 {
    line.split(key)
        .nth(1)
        .and_then(|r| {
            r.trim_start_matches(':')
                .split_whitespace()
                .next()
                .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
        })
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

fn cryptcab_ports(sw: &Switch) -> usize {
    sw.cmd("port/print").matches("vde_cryptcab").count()
}

/// A broadcast from `a` reaches `b` (retrying while the cable comes up).
fn passes(a: &Client, b: &Client, seq: u8) -> bool {
    for _ in 0..30 {
        let f = frame(BCAST, mac(seq), 100, seq);
        a.send(&f);
        if b.drain().iter().any(|g| g == &f) {
            return true;
        }
    }
    false
}

fn key_file(dir: &TempDir) -> String {
    let p = dir.path("cable.key");
    secret(&p, b"a lab secret, long enough for the cable");
    p.display().to_string()
}

/// Writes a key file with the mode a key needs (0600).
fn secret(p: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, bytes).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn psk_cables_join_three_switches_each_peer_on_its_own_port() {
    let dir = TempDir::new("cc-psk");
    let hub = Switch::start(Impl::Ours, &dir, "hub", &[]);
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let key = key_file(&dir);
    let sport = free_udp_port().to_string();
    let hubs = hub.ctl.display().to_string();
    let _srv = Cab::start(&dir, "srv", &["-s", &hubs, "-p", &sport, "-P", &key]);
    let (pa, pb) = (free_udp_port().to_string(), free_udp_port().to_string());
    let conn = format!("127.0.0.1:{sport}");
    // the second client reaches the server over IPv6 when loopback has it
    let conn6 = if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        format!("[::1]:{sport}")
    } else {
        conn.clone()
    };
    let as_ = a.ctl.display().to_string();
    let bs = b.ctl.display().to_string();
    let ca = Cab::start(
        &dir,
        "ca",
        &["-s", &as_, "-p", &pa, "-c", &conn, "-P", &key],
    );
    let cb = Cab::start(
        &dir,
        "cb",
        &["-s", &bs, "-p", &pb, "-c", &conn6, "-P", &key, "-k"],
    );
    assert!(
        wait_for(10, || cryptcab_ports(&hub) == 2
            && cryptcab_ports(&a) == 1
            && cryptcab_ports(&b) == 1),
        "hub:\n{}\nclient a log:\n{}\nclient b log:\n{}",
        hub.cmd("port/print"),
        ca.log(),
        cb.log()
    );
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    let z = Client::connect(&hub.ctl, PortRequest::Any, "z").unwrap();
    assert!(passes(&x, &y, 1), "a -> b through the hub");
    assert!(
        !z.drain().is_empty(),
        "the hub's own host sees the broadcast"
    );
    // unicast back once the MACs are learned, frames of every size
    for len in [60usize, 61, 100, 1000, 1514] {
        let f = frame(mac(1), mac(2), len, len as u8);
        y.send(&f);
        let got = x.drain();
        assert!(got.contains(&f), "unicast of {len} bytes b -> a");
    }
    assert!(ca.log().contains(" up on switch"), "{}", ca.log());
}

/// A real sshd on 127.0.0.1, with host and user keys made in a temp dir.
struct Sshd {
    child: Child,
    dir: PathBuf,
}

impl Sshd {
    fn start(dir: &TempDir) -> Option<Sshd> {
        if !have("ssh") || !have("ssh-keygen") || !is_root() {
            return None;
        }
        if !std::path::Path::new("/usr/sbin/sshd").exists() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "/usr/sbin/sshd is required under CI=true (openssh-server)"
            );
            eprintln!("SKIP: no /usr/sbin/sshd");
            return None;
        }
        let d = dir.path("ssh");
        std::fs::create_dir_all(&d).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        for k in ["host", "user", "stranger"] {
            sh(&format!(
                "ssh-keygen -q -t ed25519 -N '' -C vde-test-{k} -f {}",
                d.join(k).display()
            ));
        }
        std::fs::copy(d.join("user.pub"), d.join("authorized_keys")).unwrap();
        let port = free_tcp_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
                 AuthorizedKeysFile {auth}\nPidFile {pid}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nLogLevel VERBOSE\n\
                 SetEnv PATH=/usr/bin:/bin\n",
                host = d.join("host").display(),
                auth = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let hostpub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {hostpub}"),
        )
        .unwrap();
        for (name, key) in [("ssh_config", "user"), ("ssh_config_stranger", "stranger")] {
            std::fs::write(
                d.join(name),
                format!(
                    "Host *\n  Port {port}\n  IdentityFile {id}\n  IdentitiesOnly yes\n  \
                     UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  \
                     GlobalKnownHostsFile /dev/null\n",
                    id = d.join(key).display(),
                    kh = d.join("known_hosts").display(),
                ),
            )
            .unwrap();
        }
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ok = wait_for(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            ok,
            "sshd did not start: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
        Some(Sshd { child, dir: d })
    }

    fn config(&self, which: &str) -> String {
        self.dir.join(which).display().to_string()
    }

    fn user() -> String {
        sh("id -un").trim().to_string()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two of our switches, a real sshd and a vde_cryptcab server (ssh mode)
/// on switch b.
struct SshLab {
    dir: TempDir,
    sshd: Sshd,
    a: Switch,
    b: Switch,
    srv: Cab,
    sport: String,
}

impl SshLab {
    fn start(tag: &str) -> Option<SshLab> {
        let dir = TempDir::new(tag);
        let sshd = Sshd::start(&dir)?;
        let a = Switch::start(Impl::Ours, &dir, "a", &[]);
        let b = Switch::start(Impl::Ours, &dir, "b", &[]);
        let sport = free_udp_port().to_string();
        let srv = SshLab::server(&dir, &b, &sport, "srv");
        Some(SshLab {
            dir,
            sshd,
            a,
            b,
            srv,
            sport,
        })
    }

    fn server(dir: &TempDir, b: &Switch, sport: &str, name: &str) -> Cab {
        let bs = b.ctl.display().to_string();
        let srv = Cab::start(dir, name, &["-s", &bs, "-p", sport]);
        assert!(
            wait_for(5, || srv.log().contains("server on UDP port")),
            "{}",
            srv.log()
        );
        srv
    }

    /// A client on switch a using the ssh config `which`.
    fn client(&self, which: &str) -> Cab {
        self.client_running(which, Some(CRYPTCAB))
    }

    /// A client on switch a using the ssh config `which` that runs
    /// `remote_cmd` on the server host (None: the default, found through
    /// the ssh session's PATH, which is /usr/bin:/bin in this lab, as
    /// for a non-interactive login).
    fn client_running(&self, which: &str, remote_cmd: Option<&str>) -> Cab {
        let conn = format!("{}@127.0.0.1:{}", Sshd::user(), self.sport);
        let lport = free_udp_port().to_string();
        let as_ = self.a.ctl.display().to_string();
        let config = self.sshd.config(which);
        let mut args = vec![
            "-s",
            &as_,
            "-p",
            &lport,
            "-c",
            &conn,
            "--ssh-config",
            &config,
        ];
        if let Some(cmd) = remote_cmd {
            args.extend(["--remote-cmd", cmd]);
        }
        Cab::start(&self.dir, "cli", &args)
    }
}

#[test]
fn ssh_key_exchange_against_a_real_sshd() {
    let Some(lab) = SshLab::start("cc-ssh") else {
        return;
    };
    let (a, b, srv, sshd) = (&lab.a, &lab.b, &lab.srv, &lab.sshd);
    let cli = lab.client("ssh_config");
    assert!(
        wait_for(15, || cryptcab_ports(a) == 1 && cryptcab_ports(b) == 1),
        "client log:\n{}\nserver log:\n{}\nsshd log:\n{}",
        cli.log(),
        srv.log(),
        std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default()
    );
    assert!(srv.log().contains("announced over ssh"), "{}", srv.log());
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    assert!(passes(&x, &y, 3), "a -> b");
    assert!(passes(&y, &x, 4), "b -> a");
    // the key never touched the disk: no file in /tmp holds its cable id
    let id_line = cli.log();
    let id = id_line
        .split("cable ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16, "{id_line}");
    let found = Command::new("grep")
        .args(["-rlsF", &id, "/tmp", "--exclude=*.log"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&found.stdout).trim().is_empty(),
        "cable id found in files: {}",
        String::from_utf8_lossy(&found.stdout)
    );
}

#[test]
fn an_unauthorized_ssh_key_gets_no_cable() {
    let Some(lab) = SshLab::start("cc-deny") else {
        return;
    };
    let (a, b, srv) = (&lab.a, &lab.b, &lab.srv);
    let mut cli = lab.client("ssh_config_stranger");
    assert_eq!(cli.wait_exit(20), Some(253), "log: {}", cli.log());
    let log = cli.log();
    assert!(
        log.contains("ssh failed") && log.contains("Permission denied"),
        "the error says ssh refused the key: {log}"
    );
    assert_eq!(cryptcab_ports(b), 0);
    assert_eq!(cryptcab_ports(a), 0);
    assert!(!srv.log().contains("announced"), "{}", srv.log());
}

#[test]
fn the_debian_vde_cryptcab_on_the_server_host_is_named_with_the_fix() {
    if !have("/usr/bin/vde_cryptcab") {
        return;
    }
    let Some(lab) = SshLab::start("cc-cremote") else {
        return;
    };
    // the default remote command, found in /usr/bin by the session's PATH,
    // and the Debian one named explicitly
    for (remote, names) in [
        (None, "vde_cryptcab that ssh finds in the PATH"),
        (Some("/usr/bin/vde_cryptcab"), "/usr/bin/vde_cryptcab"),
    ] {
        let mut cli = lab.client_running("ssh_config", remote);
        assert_eq!(cli.wait_exit(20), Some(253), "{remote:?}: {}", cli.log());
        let log = cli.log();
        for want in [
            names,
            "is the Debian (C) vde_cryptcab",
            "--remote-cmd PATH",
            "install ours",
        ] {
            assert!(log.contains(want), "{remote:?}: no {want:?} in: {log}");
        }
        assert!(
            !log.contains("Usage:"),
            "{remote:?}: the C usage text is not passed on: {log}"
        );
    }
    assert_eq!(cryptcab_ports(&lab.a), 0);
    assert_eq!(cryptcab_ports(&lab.b), 0);
    assert!(!lab.srv.log().contains("announced"), "{}", lab.srv.log());
}

#[test]
fn tickets_are_checked_against_kernel_credentials() {
    if !is_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new("cc-cred");
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let bs = b.ctl.display().to_string();
    let line = "vde-crypto/2 0011223344556677 \
                00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
                0707070707070707070707070707070707070707070707070707070707070707\n";
    // the helper run as uid:gid hands the ticket line to the server on port
    let hand = |port: &str, uid: &str, gid: &str| {
        let mut c = Command::new("setpriv")
            .args(["--reuid", uid, "--regid", gid, "--clear-groups", CRYPTCAB])
            .args(["--ticket", "-p", port])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // a server in ssh mode with extra flags; returns its port
    let server = |name: &str, extra: &[&str]| {
        let port = free_udp_port().to_string();
        let mut args = vec!["-s", &bs, "-p", &port];
        args.extend_from_slice(extra);
        let srv = Cab::start(&dir, name, &args);
        assert!(wait_for(5, || srv.log().contains("server on UDP port")));
        (srv, port)
    };
    let (_srv, p1) = server("srv1", &[]);
    let (code, _, err) = hand(&p1, "4242", "4242");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("uid 4242 may not attach"), "{err}");
    let (code, out, err) = hand(&p1, "0", "0");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0011223344556677 may connect"), "{out}");
    // a cable id in use cannot be re-keyed by another ticket
    let (code, _, err) = hand(&p1, "0", "0");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already in use"), "{err}");
    let (_srv2, p2) = server("srv2", &["--allow-user", "4242"]);
    let (code, out, err) = hand(&p2, "4242", "4242");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("may connect"), "{out}");
    // and a group, through the helper's kernel-reported gid
    let (_srv3, p3) = server("srv3", &["--allow-group", "4343"]);
    let (code, _, err) = hand(&p3, "4242", "4242");
    assert_eq!(code, Some(1), "gid 4242 is not in group 4343: {err}");
    let (code, out, err) = hand(&p3, "4242", "4343");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("may connect"), "{out}");
    // nobody listening: a clear error
    let (code, _, err) = hand(&free_udp_port().to_string(), "0", "0");
    assert_eq!(code, Some(1));
    assert!(err.contains("no vde_cryptcab server on UDP port"), "{err}");
}

/// A UDP relay between a client and the server that records what the
/// client sends and can go silent.
struct Relay {
    port: u16,
    server: SocketAddr,
    silent: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(server).unwrap();
        let port = front.local_addr().unwrap().port();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        }
        let silent = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        // client -> server, recorded
        {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (si, se, st, cl) = (silent.clone(), seen.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // bounded: the test ends it, or it gives up after 5 minutes
                let end = Instant::now() + Duration::from_secs(300);
                while !st.load(Ordering::Relaxed) && Instant::now() < end {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *cl.lock().unwrap() = Some(from);
                        if !si.load(Ordering::Relaxed) {
                            se.lock().unwrap().push(buf[..n].to_vec());
                            let _ = back.send(&buf[..n]);
                        }
                    }
                }
            });
        }
        // server -> client
        {
            let (si, st, cl) = (silent.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let end = Instant::now() + Duration::from_secs(300);
                while !st.load(Ordering::Relaxed) && Instant::now() < end {
                    if let Ok(n) = back.recv(&mut buf) {
                        let c = *cl.lock().unwrap();
                        if let (false, Some(c)) = (si.load(Ordering::Relaxed), c) {
                            let _ = front.send_to(&buf[..n], c);
                        }
                    }
                }
            });
        }
        Relay {
            port,
            server,
            silent,
            seen,
            stop,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A PSK cable from switch `a` (client) to switch `b` (server) through a
/// [`Relay`].
fn relayed_cable(dir: &TempDir, a: &Switch, b: &Switch) -> (Cab, Relay, Cab) {
    let key = key_file(dir);
    let sport = free_udp_port();
    let bs = b.ctl.display().to_string();
    let srv = Cab::start(
        dir,
        "srv",
        &["-s", &bs, "-p", &sport.to_string(), "-P", &key],
    );
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], sport)));
    let conn = format!("127.0.0.1:{}", relay.port);
    let as_ = a.ctl.display().to_string();
    let lport = free_udp_port().to_string();
    let cli = Cab::start(
        dir,
        "cli",
        &["-s", &as_, "-p", &lport, "-c", &conn, "-P", &key],
    );
    (srv, relay, cli)
}

/// Tiny deterministic generator for the junk datagrams.
fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn hostile_datagrams_are_dropped_counted_and_unanswered() {
    let dir = TempDir::new("cc-hostile");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let (srv, relay, _cli) = relayed_cable(&dir, &a, &b);
    let sport = relay.server.port();
    assert!(wait_for(10, || cryptcab_ports(&b) == 1), "{}", srv.log());
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    assert!(passes(&x, &y, 5));
    for i in 0..20u8 {
        x.send(&frame(BCAST, mac(5), 200, i));
    }
    std::thread::sleep(Duration::from_millis(200));
    let recorded: Vec<Vec<u8>> = relay
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.first() == Some(&0x04))
        .cloned()
        .collect();
    assert!(
        recorded.len() >= 20,
        "recorded {} data datagrams",
        recorded.len()
    );
    y.drain();
    let before = srv.stats();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], sport));
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut sent = 0u64;
    // random junk of every length, with each of the protocol's type bytes
    for len in 0..300usize {
        let mut d: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        if let Some(t) = d.first_mut() {
            *t = [0x01, 0x02, 0x04, 0x05, 0x06, 0x41, 0x20][len % 7];
        }
        attacker.send_to(&d, target).unwrap();
        sent += 1;
    }
    // replays and one-bit modifications of real data datagrams
    let (mut replays, mut tampered) = (0u64, 0u64);
    for d in &recorded {
        attacker.send_to(d, target).unwrap();
        replays += 1;
        let mut m = d.clone();
        let i = (xorshift(&mut seed) as usize) % m.len();
        m[i] ^= 1 << (xorshift(&mut seed) % 8);
        attacker.send_to(&m, target).unwrap();
        tampered += 1;
    }
    sent += replays + tampered;
    let mut b1 = [0u8; 2048];
    assert!(
        attacker.recv_from(&mut b1).is_err(),
        "the server answered a hostile datagram"
    );
    let after = srv.stats();
    let dropped = stat(&after, "dropped ") - stat(&before, "dropped ");
    assert_eq!(dropped, sent, "every hostile datagram is counted: {after}");
    assert!(stat(&after, "too old counter") >= replays, "{after}");
    assert!(
        !y.drain().iter().any(|f| f.len() == 200),
        "nothing replayed reached the switch"
    );
    // the cable still works
    assert!(passes(&x, &y, 6), "cable after the attack");
    assert!(passes(&y, &x, 7), "cable after the attack, back");
}

#[test]
fn a_silent_cable_goes_down_within_a_second_and_comes_back() {
    let dir = TempDir::new("cc-silent");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let (srv, relay, cli) = relayed_cable(&dir, &a, &b);
    assert!(wait_for(10, || cryptcab_ports(&a) == 1 && cryptcab_ports(&b) == 1));
    relay.silent.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    assert!(wait_for(10, || cryptcab_ports(&a) == 0 && cryptcab_ports(&b) == 0));
    let took = t0.elapsed();
    eprintln!("both ends dropped their ports {took:?} after the cable went silent");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        cli.log().contains("down: nothing heard for 1.0 s"),
        "{}",
        cli.log()
    );
    assert!(srv.log().contains("down: nothing heard"), "{}", srv.log());
    relay.silent.store(false, Ordering::Relaxed);
    assert!(
        wait_for(10, || cryptcab_ports(&a) == 1 && cryptcab_ports(&b) == 1),
        "{}",
        cli.log()
    );
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    assert!(passes(&x, &y, 8));
}

#[test]
fn the_client_recovers_by_itself_when_the_server_restarts() {
    let Some(mut lab) = SshLab::start("cc-restart") else {
        return;
    };
    let cli = lab.client("ssh_config");
    let (a, b) = (&lab.a, &lab.b);
    assert!(wait_for(15, || cryptcab_ports(b) == 1), "{}", cli.log());
    lab.srv.signal("KILL");
    let _ = lab.srv.wait_exit(5);
    assert!(
        wait_for(10, || cryptcab_ports(a) == 0),
        "client keeps its port after the server died: {}",
        cli.log()
    );
    let srv2 = SshLab::server(&lab.dir, b, &lab.sport, "srv2");
    let t0 = Instant::now();
    assert!(
        wait_for(30, || cryptcab_ports(a) == 1 && cryptcab_ports(b) == 1),
        "client log:\n{}\nnew server log:\n{}",
        cli.log(),
        srv2.log()
    );
    eprintln!("cable back {:?} after the server restarted", t0.elapsed());
    assert!(cli.log().contains("new key handed"), "{}", cli.log());
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    assert!(passes(&x, &y, 9));
    assert!(passes(&y, &x, 10));
}

#[test]
fn clear_errors_for_bad_command_lines() {
    let dir = TempDir::new("cc-cli");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let s = sw.ctl.display().to_string();
    let run = |args: &[&str]| {
        let o = Command::new(CRYPTCAB).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let short = dir.path("short.key");
    secret(&short, b"tiny");
    let shorts = short.display().to_string();
    let weak = dir.path("weak.key");
    secret(&weak, &[b'a'; 64]);
    let weaks = weak.display().to_string();
    let open = dir.path("open.key");
    std::fs::write(&open, b"a lab secret, long enough for the cable").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let opens = open.display().to_string();
    let good = key_file(&dir);
    for (args, want) in [
        (vec!["-s", &s, "-x"], "always encrypts"),
        (vec!["-s", &s, "-k"], "clients (-c) only"),
        (
            vec!["-s", &s, "-P", "/no/such/key"],
            "cannot read key file /no/such/key",
        ),
        (vec!["-s", &s, "-P", &shorts], "short.key"),
        (vec!["-s", &s, "-P", &shorts], "head -c 32 /dev/urandom"),
        (vec!["-s", &s, "-P", &weaks], "not random enough"),
        (
            vec!["-s", &s, "-P", &opens],
            "readable by others (mode 0644): chmod 600",
        ),
        (
            vec!["-s", "/no/such/switch", "-P", &good],
            "/no/such/switch",
        ),
        (vec!["-s", &s, "--cipher", "rot13"], "unknown --cipher"),
        (vec!["-s", "null://", "-P", &good], "plugs into a switch"),
        (vec!["-s", &s, "-c", "host:notaport"], "bad UDP port"),
        (
            vec!["-s", &s, "--connect=-oProxyCommand=x", "-P", &good],
            "may not begin with '-'",
        ),
        (
            vec!["-s", &s, "--connect=-l@host", "-P", &good],
            "may not begin with '-'",
        ),
        (
            vec!["-s", &s, "-c", "host:70000", "-P", &good],
            "port 70000: must be 1..65535",
        ),
        (
            vec!["-s", &s, "-c", "host:0", "-P", &good],
            "port 0: must be 1..65535",
        ),
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, err) = run(&["-s", &s, "-p", "70000", "-P", &good]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("port 70000: must be 1..65535"), "{err}");
    // a UDP port in use is said once, by client and server alike
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let peer = format!("127.0.0.1:{}", free_udp_port());
    for args in [
        vec!["-s", &s, "-p", &port, "-P", &good],
        vec!["-s", &s, "-p", &port, "-c", &peer, "-P", &good],
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(
            err.matches("Address already in use").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("cannot bind UDP port {port}")),
            "{err}"
        );
    }
    // --help shows the real default switch
    let help = Command::new(CRYPTCAB).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: /tmp/vde.ctl]"), "{help}");
    assert!(!help.contains("[default: \"\"]"), "{help}");
}

#[test]
fn our_cable_between_two_debian_switches() {
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("cc-c");
    let a = Switch::start(Impl::C, &dir, "a", &[]);
    let b = Switch::start(Impl::C, &dir, "b", &[]);
    let key = key_file(&dir);
    let sport = free_udp_port().to_string();
    let (as_, bs) = (a.ctl.display().to_string(), b.ctl.display().to_string());
    // the server as a daemon, with a pid file; a symlink planted at the
    // old predictable temporary name is not written through
    let pidfile = dir.path("srv.pid");
    let pids = pidfile.display().to_string();
    let victim = dir.path("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path("srv.tmp")).unwrap();
    let mut srv = Cab::start(
        &dir,
        "srv",
        &[
            "-s",
            &bs,
            "-p",
            &sport,
            "-P",
            &key,
            "-d",
            "--pidfile",
            &pids,
        ],
    );
    assert_eq!(
        srv.wait_exit(5),
        Some(0),
        "the parent returns: {}",
        srv.log()
    );
    assert!(wait_for(5, || pidfile.exists()));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(!std::fs::symlink_metadata(&pidfile)
        .unwrap()
        .file_type()
        .is_symlink());
    let daemon: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let conn = format!("127.0.0.1:{sport}");
    let lport = free_udp_port().to_string();
    let cli = Cab::start(
        &dir,
        "cli",
        &["-s", &as_, "-p", &lport, "-c", &conn, "-P", &key],
    );
    assert!(
        wait_for(10, || cryptcab_ports(&a) == 1 && cryptcab_ports(&b) == 1),
        "{}",
        cli.log()
    );
    let x = Client::connect(&a.ctl, PortRequest::Any, "x").unwrap();
    let y = Client::connect(&b.ctl, PortRequest::Any, "y").unwrap();
    assert!(passes(&x, &y, 11));
    assert!(passes(&y, &x, 12));
    // frames arrive as sent: no trailer (the C cryptcab appends 12 bytes)
    let f = frame(mac(11), mac(12), 61, 1);
    y.send(&f);
    assert!(x.drain().contains(&f));
    sh(&format!("kill {daemon}"));
    assert!(
        wait_for(5, || cryptcab_ports(&b) == 0),
        "SIGTERM ends the daemon and its ports"
    );
}

#[test]
fn unreachable_and_unknown_servers_are_named() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("cc-unreach");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let key = key_file(&dir);
    let as_ = a.ctl.display().to_string();
    // a namespace with only loopback: no route to anywhere else
    let ns = NetNs::new("cc");
    let log = dir.path("unreach.log");
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            CRYPTCAB,
            "-s",
            &as_,
            "-c",
            "10.99.0.1:7667",
            "-P",
            &key,
        ])
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ok = wait_for(5, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Network is unreachable"))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(cryptcab_ports(&a), 0);
    // name lookups happen inside the namespace too: nothing leaves it
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, CRYPTCAB, "-s", &as_])
        .args(["-c", "no-such-host.invalid:7667", "-P", &key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot resolve no-such-host.invalid"), "{err}");
}

/// Broadcast copies from plug 0 seen by plugs 1 and 2 within 150 ms.
fn copies(plugs: &mut [Plug], seq: u8) -> Vec<usize> {
    for p in plugs.iter() {
        let _ = p.drain(30);
    }
    let f = frame(BCAST, mac(40), 60, seq);
    plugs[0].send(&f);
    std::thread::sleep(Duration::from_millis(150));
    plugs[1..]
        .iter()
        .map(|p| p.drain(100).iter().filter(|g| **g == f).count())
        .collect()
}

/// Waits until a broadcast from plug 0 reaches plugs 1 and 2 exactly once.
fn wait_once(plugs: &mut [Plug], seq: &mut u8, secs: u64) -> Option<Duration> {
    until_once(secs, seq, |n| copies(plugs, n) == vec![1, 1])
}

#[test]
fn the_spanning_tree_reroutes_when_a_cryptcab_goes_silent() {
    let dir = TempDir::new("cc-stp");
    let sws: Vec<Switch> = (0..3)
        .map(|i| {
            let mac = format!("--macaddr=00:ff:00:00:01:{:02x}", i + 1);
            Switch::start(Impl::Ours, &dir, &format!("s{i}"), &["-F", &mac])
        })
        .collect();
    let ctl = |i: usize| sws[i].ctl.display().to_string();
    let mut cables: Vec<Child> = [(0, 1), (1, 2)]
        .iter()
        .map(|&(i, j)| {
            Command::new(OUR_PLUG)
                .args([ctl(i), ctl(j)])
                .spawn()
                .unwrap()
        })
        .collect();
    let (_srv, relay, _cli) = relayed_cable(&dir, &sws[2], &sws[0]);
    let mut plugs: Vec<Plug> = (0..3).map(|i| Plug::ours(&[&ctl(i)])).collect();
    assert!(
        wait_for(10, || sws.iter().all(|s| active(s) == 3)),
        "ring up"
    );
    let mut seq = 0u8;
    assert!(
        wait_once(&mut plugs, &mut seq, 15).is_some(),
        "the ring with a cryptcab converges"
    );
    // the plain cable 1-2 dies: the only way to s2 is now the cryptcab
    let _ = cables[1].kill();
    let _ = cables[1].wait();
    let t = wait_once(&mut plugs, &mut seq, 15).expect("reroutes over the cryptcab");
    eprintln!("rerouted over the cryptcab in {t:?}");
    // the cryptcab goes silent: s2 is cut off, s0-s1 keeps working
    relay.silent.store(true, Ordering::Relaxed);
    assert!(wait_for(5, || cryptcab_ports(&sws[0]) == 0));
    assert_eq!(copies(&mut plugs, 200), vec![1, 0]);
    // it comes back: s2 is reached again, still exactly once
    relay.silent.store(false, Ordering::Relaxed);
    let t = wait_once(&mut plugs, &mut seq, 15).expect("the cryptcab comes back");
    eprintln!("s2 reachable again {t:?} after the cable came back");
    for c in &mut cables {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn the_cipher_is_negotiated_and_a_refused_one_gets_no_cable() {
    let dir = TempDir::new("cc-suite");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let key = key_file(&dir);
    let (as_, bs) = (a.ctl.display().to_string(), b.ctl.display().to_string());
    // a client asking for ChaCha20-Poly1305 from an "auto" server gets it
    let sport = free_udp_port().to_string();
    let srv = Cab::start(&dir, "srv", &["-s", &bs, "-p", &sport, "-P", &key]);
    let conn = format!("127.0.0.1:{sport}");
    let lport = free_udp_port().to_string();
    let cli = Cab::start(
        &dir,
        "cli",
        &[
            "-s",
            &as_,
            "-p",
            &lport,
            "-c",
            &conn,
            "-P",
            &key,
            "--cipher",
            "chacha20-poly1305",
        ],
    );
    assert!(wait_for(10, || cryptcab_ports(&b) == 1), "{}", cli.log());
    assert!(
        wait_for(5, || srv.log().contains("(chacha20-poly1305)")),
        "{}",
        srv.log()
    );
    assert!(cli.log().contains("(chacha20-poly1305)"), "{}", cli.log());
    drop(cli);
    drop(srv);
    // a server that takes only AES-256-GCM refuses it: no answer, counted
    let sport = free_udp_port().to_string();
    let srv = Cab::start(
        &dir,
        "srv2",
        &[
            "-s",
            &bs,
            "-p",
            &sport,
            "-P",
            &key,
            "--cipher",
            "aes-256-gcm",
        ],
    );
    let conn = format!("127.0.0.1:{sport}");
    let lport = free_udp_port().to_string();
    let cli = Cab::start(
        &dir,
        "cli2",
        &[
            "-s", &as_, "-p", &lport, "-c", &conn, "-P", &key, "--cipher", "chacha",
        ],
    );
    assert!(wait_for(5, || stat(
        &srv.stats(),
        "suite not offered/accepted"
    ) >= 2));
    assert_eq!(cryptcab_ports(&a), 0, "{}", cli.log());
    assert!(
        wait_for(10, || cryptcab_ports(&b) == 0),
        "the first cable left"
    );
    // and an AES client is welcome there
    let lport = free_udp_port().to_string();
    let cli3 = Cab::start(
        &dir,
        "cli3",
        &[
            "-s", &as_, "-p", &lport, "-c", &conn, "-P", &key, "--cipher", "aes",
        ],
    );
    assert!(wait_for(10, || cryptcab_ports(&b) == 1), "{}", cli3.log());
    assert!(
        wait_for(5, || cli3.log().contains("(aes-256-gcm)")),
        "{}",
        cli3.log()
    );
}

/// Lines of `log` that contain `what`.
fn lines_with(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn a_wrong_key_is_named_on_both_ends_and_the_server_says_so_sparingly() {
    let dir = TempDir::new("cc-wrongkey");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let key = key_file(&dir);
    let other = dir.path("other.key");
    secret(&other, b"another secret, just as long as the first");
    let others = other.display().to_string();
    let (as_, bs) = (a.ctl.display().to_string(), b.ctl.display().to_string());
    // both ends log warnings only: what follows is at warn level
    let warn = [("VDE_LOG", "warn")];
    let sport = free_udp_port();
    let srv = Cab::start_env(
        &dir,
        "srv",
        &["-s", &bs, "-p", &sport.to_string(), "-P", &key],
        &warn,
    );
    assert!(
        wait_for(5, || UdpSocket::bind(("127.0.0.1", sport)).is_err()),
        "the server did not take its port: {}",
        srv.log()
    );
    let lport = free_udp_port().to_string();
    let t0 = Instant::now();
    let conn = format!("127.0.0.1:{sport}");
    let cli = Cab::start_env(
        &dir,
        "cli",
        &["-s", &as_, "-p", &lport, "-c", &conn, "-P", &others],
        &warn,
    );
    // the client names the server that does not answer
    let no_reply = format!("no reply from 127.0.0.1:{sport}");
    assert!(
        wait_for(15, || cli.log().contains(&no_reply)),
        "client log:\n{}",
        cli.log()
    );
    assert!(
        cli.log().contains("wrong key, or no server?"),
        "{}",
        cli.log()
    );
    // the server names the client whose handshakes fail
    let peer = format!("handshake from 127.0.0.1:{lport} failed authentication");
    assert!(
        wait_for(10, || srv.log().contains(&peer)),
        "server log:\n{}",
        srv.log()
    );
    // the client keeps trying (an INIT every 0.5 s): the server says so
    // once per 10 s, the next line counting the failures left out
    let bound = |secs: u64| 1 + (t0.elapsed().as_secs() / secs) as usize;
    assert!(
        wait_for(30, || lines_with(&srv.log(), &peer) >= 2),
        "{}",
        srv.log()
    );
    let log = srv.log();
    assert!(lines_with(&log, &peer) <= bound(10), "{log}");
    let second = log.lines().filter(|l| l.contains(&peer)).nth(1).unwrap();
    let more: u64 = second
        .split(" more")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|w| w.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no count of the failures left out: {second}"));
    assert!(more >= 5, "{second}");
    let warnings = lines_with(&cli.log(), &no_reply);
    assert!(warnings <= bound(30), "{warnings} warnings:\n{}", cli.log());
    assert_eq!(cryptcab_ports(&a), 0);
    assert_eq!(cryptcab_ports(&b), 0);
}

/// Ports of a switch held by cables it hosts itself.
fn inproc_ports(sw: &Switch) -> usize {
    sw.cmd("port/print").matches("module cable").count()
}

#[test]
fn the_ssh_form_runs_inside_the_switch_against_a_real_sshd() {
    let Some(lab) = SshLab::start("cc-inproc-ssh") else {
        return;
    };
    let user = Sshd::user();
    let cfg = lab.sshd.config("ssh_config");
    // switch a dials vde_cryptcab on switch b: the key goes over ssh
    let vnl = format!(
        "cryptcab://{user}@127.0.0.1:{}/sshconfig={cfg}/remote={CRYPTCAB}",
        lab.sport
    );
    let r = lab.a.cmd(&format!("cable/add {vnl}"));
    assert!(r.contains("1000 Success"), "{r}\n{}", lab.srv.log());
    assert!(
        wait_for(10, || inproc_ports(&lab.a) == 1
            && cryptcab_ports(&lab.b) == 1),
        "{}\n{}",
        lab.a.cmd("cable/print"),
        lab.srv.log()
    );
    let ca = Client::connect(&lab.a.ctl, PortRequest::Any, "t").unwrap();
    let cb = Client::connect(&lab.b.ctl, PortRequest::Any, "t").unwrap();
    assert!(passes(&ca, &cb, 1) && passes(&cb, &ca, 2));
    // an unauthorized ssh key gets no cable, and a clear console error
    let bad = lab.sshd.config("ssh_config_stranger");
    let r = lab.a.cmd(&format!(
        "cable/add cryptcab://{user}@127.0.0.1:{}/sshconfig={bad}/remote={CRYPTCAB}",
        lab.sport
    ));
    assert!(
        r.contains("1013 Permission denied") && r.contains("ssh"),
        "{r}"
    );
    assert_eq!(inproc_ports(&lab.a), 1, "the other cable is untouched");
    // a switch that listens itself takes keys over ssh too: the helper
    // run by ssh finds its ticket socket
    let c = Switch::start(
        Impl::Ours,
        &lab.dir,
        "c",
        &[&format!("--listen=cryptcab://:{}", {
            let p = free_udp_port();
            std::fs::write(lab.dir.path("cport"), p.to_string()).unwrap();
            p
        })],
    );
    let cport = std::fs::read_to_string(lab.dir.path("cport")).unwrap();
    let r = lab.a.cmd(&format!(
        "cable/add cryptcab://{user}@127.0.0.1:{cport}/sshconfig={cfg}/remote={CRYPTCAB}"
    ));
    assert!(r.contains("1000 Success"), "{r}");
    assert!(
        wait_for(10, || inproc_ports(&c) == 1 && inproc_ports(&lab.a) == 2),
        "{}\n{}",
        c.cmd("cable/print"),
        lab.a.cmd("cable/print")
    );
    let cc = Client::connect(&c.ctl, PortRequest::Any, "t").unwrap();
    assert!(passes(&ca, &cc, 3) && passes(&cc, &ca, 4));
}

#[test]
fn nobody_can_take_the_ticket_socket_before_the_server() {
    if !is_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new("cc-squat");
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let bs = b.ctl.display().to_string();
    let port = free_udp_port();
    // the old abstract name, taken by anyone first, is no obstacle
    let _squat = {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(
            format!("vde_cryptcab.{port}").as_bytes(),
        )
        .unwrap();
        std::os::unix::net::UnixListener::bind_addr(&a).unwrap()
    };
    // and an unprivileged user cannot put a socket where root's server
    // will listen
    let path = vde_overlay::cryptcab::ticket::socket_path(0, port);
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    let squat = Command::new("setpriv")
        .args(["--reuid", "4242", "--regid", "4242", "--clear-groups"])
        .args(["sh", "-c", &format!("touch {}", path.display())])
        .status()
        .unwrap();
    assert!(!squat.success(), "uid 4242 could create {}", path.display());
    let ports = port.to_string();
    let srv = Cab::start(&dir, "srv", &["-s", &bs, "-p", &ports]);
    assert!(
        wait_for(5, || srv.log().contains("server on UDP port")),
        "{}",
        srv.log()
    );
    let mut c = Command::new(CRYPTCAB)
        .args(["--ticket", "-p", &ports])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(
            b"vde-crypto/2 0a0b0c0d0e0f0102 \
              00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
              0707070707070707070707070707070707070707070707070707070707070707\n",
        )
        .unwrap();
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("may connect"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Identities (issue #10): made on first use with mode 0600 and shown as a
/// fingerprint; a PSK client pinned to the server's fingerprint connects,
/// one pinned to another identity does not (even with the right key
/// file), and the server's log names the client's identity.
#[test]
fn identities_are_made_shown_and_pinned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cc-ident");
    let fingerprint = |id: &str| {
        let out = Command::new(CRYPTCAB)
            .args(["--identity", id, "--fingerprint"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (sid, cid) = (dir.path("srv.id"), dir.path("cli.id"));
    let (sid, cid) = (sid.to_str().unwrap(), cid.to_str().unwrap());
    let sfp = fingerprint(sid);
    assert!(sfp.starts_with("SHA256:") && sfp.len() == 50, "{sfp}");
    assert_eq!(fingerprint(sid), sfp, "the same identity the next time");
    let mode = std::fs::metadata(sid).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let cfp = fingerprint(cid);
    assert_ne!(cfp, sfp);
    // a key others may read is refused
    std::fs::set_permissions(cid, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(CRYPTCAB)
        .args(["--identity", cid, "--fingerprint"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{out:?}"
    );
    std::fs::set_permissions(cid, std::fs::Permissions::from_mode(0o600)).unwrap();

    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let key = key_file(&dir);
    let (as_, bs) = (a.ctl.display().to_string(), b.ctl.display().to_string());
    let sport = free_udp_port().to_string();
    let srv = Cab::start(
        &dir,
        "srv",
        &["-s", &bs, "-p", &sport, "-P", &key, "--identity", sid],
    );
    assert!(wait_for(5, || srv.log().contains(&sfp)), "{}", srv.log());
    let conn = format!("127.0.0.1:{sport}");
    // pinned to the client's own fingerprint: the server is not that
    let lport = free_udp_port().to_string();
    let wrong = Cab::start(
        &dir,
        "wrong",
        &[
            "-s",
            &as_,
            "-p",
            &lport,
            "-c",
            &conn,
            "-P",
            &key,
            "--identity",
            cid,
            "--pin",
            &cfp,
        ],
    );
    assert!(
        wait_for(5, || wrong.log().contains("not the pinned identity")),
        "{}",
        wrong.log()
    );
    assert_eq!(cryptcab_ports(&b), 0, "no cable with the wrong pin");
    drop(wrong);
    // pinned right: up, and each end names the other's identity
    let lport = free_udp_port().to_string();
    let cli = Cab::start(
        &dir,
        "cli",
        &[
            "-s",
            &as_,
            "-p",
            &lport,
            "-c",
            &conn,
            "-P",
            &key,
            "--identity",
            cid,
            "--pin",
            &sfp,
        ],
    );
    assert!(wait_for(10, || cryptcab_ports(&b) == 1), "{}", cli.log());
    assert!(
        wait_for(5, || srv.log().contains(&format!("identity {cfp}"))),
        "{}",
        srv.log()
    );
    // a pin is refused where it means nothing, and a bad one is named
    for (args, why) in [
        (
            vec!["-s", &as_, "-P", &key, "--pin", &sfp],
            "--pin is for a client",
        ),
        (
            vec!["-s", &as_, "-c", &conn, "-P", &key, "--pin", "SHA256:nope"],
            "not a fingerprint",
        ),
    ] {
        let mut args = args;
        args.extend(["--identity", cid]);
        let out = Command::new(CRYPTCAB).args(&args).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
}
