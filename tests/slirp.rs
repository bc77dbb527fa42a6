//! slirpvde and slirp:// against real peers: a namespace "guest" whose tap
//! is on our switch (busybox udhcpc, nc and nslookup in it), a DNS
//! resolver this test runs on the loopback, QEMU's iPXE asking for a
//! lease, and Debian's libvdeplug_slirp given the same locator strings.
//!
//! The routers' DNS forwarder sends to the first `nameserver` of
//! /etc/resolv.conf: each router runs in a mount namespace (`unshare -m`)
//! where that file names the test's resolver, so no query leaves the
//! machine. The guests' traffic goes only to the router's addresses,
//! which libslirp maps to the host's loopback.
//!
//! Needs the `slirp` feature (scripts/test-all builds with it); without
//! it this file has one test, that the tools name the missing feature.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLIRPVDE: &str = env!("CARGO_BIN_EXE_slirpvde");

#[cfg(not(feature = "slirp"))]
#[test]
fn without_the_feature_the_tools_name_it() {
    let out = Command::new(SLIRPVDE)
        .args(["-s", "/nonexistent", "-D"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("feature `slirp`"), "{e}");
    let out = Command::new(OUR_PLUG)
        .args(["slirp://", "null://"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("feature `slirp`"), "{e}");
}

#[test]
fn bad_options_are_named() {
    for (args, want) in [
        (vec!["-L", "8080:10.0.2.15"], "-L 8080:10.0.2.15"),
        (vec!["-L", "0:10.0.2.15:80"], "-L 0:10.0.2.15:80"),
        (vec!["-U", "53:nohost:53"], "-U 53:nohost:53"),
        (vec!["-H", "10.0.2.2/40"], "-H 10.0.2.2/40"),
        (vec!["-H", "10.0.2.2/24", "--dhcp=10.9.9.9"], "-D/--dhcp"),
        (vec!["-x", "6000"], "-x 6000"),
        (vec!["--mtu", "10"], "--mtu"),
    ] {
        let out = Command::new(SLIRPVDE)
            .args(["-s", "/nonexistent"])
            .args(&args)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let out = Command::new(OUR_PLUG)
        .args(["slirp:///tcpfwd=8080:10.0.2.15", "null://"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("tcpfwd"), "{e}");
}

// ---------------------------------------------------------------------
// Helpers

/// A DNS resolver on 127.53.N.1:53 answering every A query with
/// 192.0.2.77 (a documentation address, never contacted).
struct Resolver {
    addr: String,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

const ANSWER: [u8; 4] = [192, 0, 2, 77];

impl Resolver {
    fn start() -> Resolver {
        static N: AtomicUsize = AtomicUsize::new(1);
        let addr = format!(
            "127.53.{}.{}",
            std::process::id() % 250 + 1,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let sock = UdpSocket::bind((addr.as_str(), 53)).expect("bind the test resolver");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (queries, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (q, st) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let end = Instant::now() + Duration::from_secs(300);
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(r) = dns_answer(&buf[..n]) {
                    q.fetch_add(1, Ordering::SeqCst);
                    let _ = sock.send_to(&r, from);
                }
            }
        });
        Resolver {
            addr,
            queries,
            stop,
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The answer to a one-question query (A: ANSWER; other types: no data).
fn dns_answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += usize::from(q[i]) + 1;
    }
    let qend = i + 5;
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    q.get(qend - 1)?;
    let mut r = q[..qend].to_vec();
    r[2] = 0x81;
    r[3] = 0x80;
    r[8..12].fill(0);
    if qtype == 1 {
        r[6..8].copy_from_slice(&[0, 1]);
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&ANSWER);
    } else {
        r[6..8].fill(0);
    }
    Some(r)
}

/// A resolv.conf naming the resolver, and the command prefix that runs a
/// router with it (a private mount namespace).
fn with_resolver(dir: &TempDir, r: &Resolver, cmd: &[&str]) -> Command {
    let conf = dir.path("resolv.conf");
    std::fs::write(&conf, format!("nameserver {}\n", r.addr)).unwrap();
    let mut script = format!("mount --bind {} /etc/resolv.conf && exec", conf.display());
    for a in cmd {
        script.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
    }
    // arguments added to the command later go on after `cmd`
    script.push_str(" \"$@\"");
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", &script, "sh"]);
    c
}

/// A guest: a namespace whose tap is a port of our switch.
struct Guest {
    ns: NetNs,
    tap: String,
    sw: Switch,
}

impl Guest {
    fn new(dir: &TempDir, tag: &str) -> Guest {
        Guest::with_switch(dir, tag, None, &[])
    }

    /// A guest whose switch is started by `cmd` (default: our switch) with
    /// `extra` flags.
    fn with_switch(dir: &TempDir, tag: &str, cmd: Option<Command>, extra: &[&str]) -> Guest {
        static N: AtomicUsize = AtomicUsize::new(0);
        let tap = format!(
            "vs{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut args = vec!["-t", tap.as_str()];
        args.extend_from_slice(extra);
        let sw = match cmd {
            None => Switch::start(Impl::Ours, dir, "sw", &args),
            Some(c) => Switch::start_cmd(c, dir, "sw", &args),
        };
        let ns = NetNs::new(tag);
        sh(&format!("ip link set {tap} netns {}", ns.0));
        Guest { ns, tap, sw }
    }

    fn ctl(&self) -> String {
        self.sw.ctl.display().to_string()
    }

    /// Runs udhcpc on the tap; returns "IP ROUTER DNS" of the lease.
    fn lease(&self, dir: &TempDir) -> Option<String> {
        let out = dir.path("lease");
        let script = dir.path("udhcpc.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in bound|renew)\n  busybox ifconfig \"$interface\" \"$ip\" netmask \"$subnet\" up\n  set -- $router\n  busybox ip route add default via \"$1\" dev \"$interface\"\n  echo \"$ip $1 $dns\" > {}\n;; esac\n",
                out.display()
            ),
        )
        .unwrap();
        sh(&format!("chmod +x {}", script.display()));
        self.ns.ok(&format!(
            "ip link set {t} up && busybox udhcpc -i {t} -f -q -n -t 8 -T 2 -A 1 -s {s}",
            t = self.tap,
            s = script.display()
        ));
        std::fs::read_to_string(&out)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Runs a command in the guest and returns its stdout (bounded by
    /// `timeout`).
    fn run(&self, cmd: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns.0, "sh", "-c", cmd])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A TCP server on the host's loopback that greets each client and
/// records what it sent.
struct HostServer {
    port: u16,
    heard: Arc<std::sync::Mutex<Vec<String>>>,
    #[cfg_attr(not(feature = "slirp"), allow(dead_code))]
    accepted: Arc<AtomicUsize>,
}

impl HostServer {
    fn start(addr: &str) -> HostServer {
        let l = TcpListener::bind((addr, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (h, a) = (heard.clone(), accepted.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            while Instant::now() < end {
                match l.accept() {
                    Ok((mut s, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let _ = s.write_all(b"hello-from-host\n");
                        let mut got = Vec::new();
                        let mut b = [0u8; 256];
                        while let Ok(n) = s.read(&mut b) {
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&b[..n]);
                            if got.contains(&b'\n') {
                                break;
                            }
                        }
                        h.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&got).into_owned());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostServer {
            port,
            heard,
            accepted,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to 127.0.0.1:port until a forward delivers the guest's
/// greeting (the guest's listener may come up late).
fn read_forward(port: u16, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut got = String::new();
            let _ = s.read_to_string(&mut got);
            if !got.is_empty() {
                return got;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    String::new()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon of the test's, by pid, killed on drop.
#[cfg(feature = "slirp")]
struct KillPid(String);

#[cfg(feature = "slirp")]
impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.0).status();
    }
}

fn ready(tools: &[&str]) -> bool {
    is_root() && tools.iter().all(|t| have(t))
}

// ---------------------------------------------------------------------
// The namespace guest through each router

#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "slirp"), allow(dead_code))]
enum Router {
    Slirpvde,
    OurPlug,
    DebianPlug,
    /// `vde_switch --cable slirp://…`: a port of the switch.
    InSwitch,
}

/// Lease, NAT to the host's loopback, DNS through the forwarder, a port
/// forward from the host: the guest's view of a router.
fn guest_through(router: Router) {
    let dir = TempDir::new("slirp");
    let resolver = Resolver::start();
    let server = HostServer::start("127.0.0.1");
    let (hp, gp) = (free_port(), 7000 + (std::process::id() % 1000) as u16);
    let fwd = format!("{hp}:10.0.2.15:{gp}");
    let locator = format!("slirp:///tcpfwd={fwd}");
    let g = match router {
        // the switch hosts the router as a port of its own
        Router::InSwitch => Guest::with_switch(
            &dir,
            "sg",
            Some(with_resolver(&dir, &resolver, &[OURS])),
            &["--cable", &locator],
        ),
        _ => Guest::new(&dir, "sg"),
    };
    let sw = format!("vde://{}", g.ctl());
    let log = std::fs::File::create(dir.path("router.log")).unwrap();
    // slirpvde also joins 10.0.2.4:6000 to a unix socket of the host (-x)
    let unix = dir.path("x.sock");
    let ul = std::os::unix::net::UnixListener::bind(&unix).unwrap();
    let xfwd = format!("6000:{}", unix.display());
    let mut cmd = match router {
        Router::Slirpvde => with_resolver(
            &dir,
            &resolver,
            &[SLIRPVDE, "-s", &g.ctl(), "-D", "-L", &fwd, "-x", &xfwd],
        ),
        Router::OurPlug => with_resolver(&dir, &resolver, &[OUR_PLUG, &sw, &locator]),
        Router::DebianPlug => with_resolver(&dir, &resolver, &["vde_plug", &sw, &locator]),
        Router::InSwitch => {
            let mut c = Command::new("true");
            c.stdout(Stdio::null());
            c
        }
    };
    let _r = Kill(
        cmd.stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the router"),
    );
    let joined = wait_for(10, || active(&g.sw) == 2);
    let logtext = || std::fs::read_to_string(dir.path("router.log")).unwrap_or_default();
    assert!(joined, "{router:?} did not join the switch: {}", logtext());

    let lease = g.lease(&dir);
    assert_eq!(
        lease.as_deref(),
        Some("10.0.2.15 10.0.2.2 10.0.2.3"),
        "{router:?}: lease; router log: {}",
        logtext()
    );

    // NAT: the router's address is the host's loopback
    let said = g.run(&format!(
        "echo guest-says-hi | timeout 10 busybox nc 10.0.2.2 {}",
        server.port
    ));
    assert!(
        said.contains("hello-from-host"),
        "{router:?}: nc got {said:?}"
    );
    assert!(
        wait_for(5, || server
            .heard
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.contains("guest-says-hi"))),
        "{router:?}: the host server did not hear the guest"
    );

    // DNS forwarder to the resolver of (the router's) resolv.conf
    let ns = g.run("timeout 10 busybox nslookup vde-test.example 10.0.2.3");
    assert!(
        ns.contains("192.0.2.77"),
        "{router:?}: nslookup said {ns:?}"
    );
    assert!(resolver.queries.load(Ordering::SeqCst) >= 1);

    // a host port forwarded to the guest
    let _listener = Kill(
        Command::new("ip")
            .args([
                "netns", "exec", &g.ns.0, "timeout", "30", "busybox", "nc", "-l", "-p",
            ])
            .arg(gp.to_string())
            .args(["-e", "echo", "from-guest"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let got = read_forward(hp, 15);
    assert!(
        got.contains("from-guest"),
        "{router:?}: forward gave {got:?}"
    );

    if let Router::Slirpvde = router {
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = ul.accept() {
                let _ = c.write_all(b"hello-from-unix\n");
            }
        });
        let said = g.run("echo hi | timeout 10 busybox nc 10.0.2.4 6000");
        assert!(said.contains("hello-from-unix"), "-x gave {said:?}");
    }
}

#[cfg(feature = "slirp")]
#[test]
fn namespace_guest_through_slirpvde() {
    if ready(&["ip", "busybox", "unshare"]) {
        guest_through(Router::Slirpvde);
    }
}

#[cfg(feature = "slirp")]
#[test]
fn namespace_guest_through_our_vde_plug_slirp() {
    if ready(&["ip", "busybox", "unshare"]) {
        guest_through(Router::OurPlug);
    }
}

#[cfg(feature = "slirp")]
#[test]
fn namespace_guest_through_a_slirp_port_of_the_switch() {
    if ready(&["ip", "busybox", "unshare"]) {
        guest_through(Router::InSwitch);
    }
}

/// The same locator string with Debian's vde_plug and libvdeplug_slirp.
#[test]
fn namespace_guest_through_debian_slirp_plugin() {
    if ready(&["ip", "busybox", "unshare", "vde_plug"]) {
        if !std::path::Path::new("/usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so").exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("libvdeplug-slirp is required under CI=true");
            }
            eprintln!("SKIP: libvdeplug-slirp not installed");
            return;
        }
        guest_through(Router::DebianPlug);
    }
}

// ---------------------------------------------------------------------
// QEMU, IPv6, restricted mode, garbage

/// The yiaddr of a DHCP reply of type `kind` (2 OFFER, 5 ACK) to `mac`
/// in an Ethernet frame, if it is one.
#[cfg(feature = "slirp")]
fn dhcp_reply(f: &[u8], mac: &[u8; 6], kind: u8) -> Option<[u8; 4]> {
    if f.len() < 14 + 20 + 8 + 240 || f[12..14] != [8, 0] || f[23] != 17 {
        return None;
    }
    let ihl = usize::from(f[14] & 15) * 4;
    let udp = 14 + ihl;
    if f.get(udp..udp + 2)? != [0, 67] {
        return None;
    }
    let b = &f[udp + 8..];
    if b.first()? != &2 || b.get(28..34)? != mac || b.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let mut i = 240;
    while let (Some(&code), Some(&len)) = (b.get(i), b.get(i + 1)) {
        if code == 255 {
            break;
        }
        if code == 53 && len == 1 && b.get(i + 2) == Some(&kind) {
            return b.get(16..20)?.try_into().ok();
        }
        i += 2 + usize::from(len);
    }
    None
}

#[cfg(feature = "slirp")]
#[test]
fn qemu_ipxe_gets_a_lease_from_slirpvde() {
    if !have("qemu-system-x86_64") {
        return;
    }
    let dir = TempDir::new("slirpq");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let ctl = sw.ctl.display().to_string();
    let _router = Kill(
        Command::new(SLIRPVDE)
            .args(["-sock", &ctl, "-dhcp", "-quiet"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(10, || active(&sw) == 1), "slirpvde did not join");
    let sniffer = Client::connect(&sw.ctl, vde::core::PortRequest::Any, "sniffer").unwrap();
    let mac = [0x52, 0x54, 0x00, 0x5a, 0x17, 0x01];
    // TCG: nested KVM on test machines can fail in iPXE's real-mode code
    let _qemu = Kill(
        Command::new("qemu-system-x86_64")
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", "none", "-m", "128", "-machine", "accel=tcg"])
            .arg("-netdev")
            .arg(format!("vde,id=n0,sock={ctl}"))
            .arg("-device")
            .arg("e1000,netdev=n0,mac=52:54:00:5a:17:01")
            .args(["-boot", "n"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // iPXE's DISCOVER and REQUEST, slirpvde's OFFER and ACK (broadcast)
    let end = Instant::now() + Duration::from_secs(90);
    let mut ack = None;
    while ack.is_none() && Instant::now() < end {
        if let Some(f) = sniffer.recv() {
            ack = dhcp_reply(&f, &mac, 5);
        }
    }
    assert_eq!(ack, Some([10, 0, 2, 15]), "no DHCP ACK for iPXE");
}

#[cfg(feature = "slirp")]
#[test]
fn ipv6_guest_autoconfigures_and_reaches_the_host() {
    if !ready(&["ip", "busybox", "bash"]) {
        return;
    }
    let dir = TempDir::new("slirp6");
    let g = Guest::new(&dir, "s6");
    let server = HostServer::start("::1");
    let _r = Kill(
        Command::new(SLIRPVDE)
            .args([
                "-s",
                &g.ctl(),
                "-q",
                "-H",
                "10.0.2.0/24",
                "-H",
                "fd00:5::/64",
                "-r",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(10, || active(&g.sw) == 2));
    g.ns.sh(&format!(
        "sysctl -qw net.ipv6.conf.{t}.accept_ra=2 net.ipv6.conf.{t}.dad_transmits=0 && ip link set {t} up",
        t = g.tap
    ));
    // SLAAC from the router advertisement
    let mut addr = String::new();
    assert!(
        wait_for(30, || {
            addr = g.run(&format!("ip -6 addr show dev {} scope global", g.tap));
            addr.contains("fd00:5::")
        }),
        "no address from a router advertisement: {addr}"
    );
    let route = g.run("ip -6 route show default");
    assert!(route.contains("via fe80::"), "no default route: {route}");
    // the router's address is the host's ::1
    let said = g.run(&format!(
        "exec 3<>/dev/tcp/fd00:5::2/{} && echo guest6-says-hi >&3 && timeout 5 head -n1 <&3",
        server.port
    ));
    let said = if said.is_empty() {
        g.run(&format!(
            "echo guest6-says-hi | timeout 10 busybox nc fd00:5::2 {}",
            server.port
        ))
    } else {
        said
    };
    assert!(said.contains("hello-from-host"), "got {said:?}");
    assert!(wait_for(5, || server
        .heard
        .lock()
        .unwrap()
        .iter()
        .any(|h| h.contains("guest6-says-hi"))));
}

#[cfg(feature = "slirp")]
#[test]
fn restricted_mode_refuses_outbound_connections() {
    if !ready(&["ip", "busybox"]) {
        return;
    }
    let dir = TempDir::new("slirpr");
    let g = Guest::new(&dir, "sr");
    let server = HostServer::start("127.0.0.1");
    let (hp, gp) = (free_port(), 7000 + (std::process::id() % 1000) as u16);
    // as a daemon: the router starts after the fork
    let pidfile = dir.path("plug.pid");
    let st = Command::new(OUR_PLUG)
        .args(["-d", "-p", pidfile.to_str().unwrap()])
        .arg(format!("vde://{}", g.ctl()))
        .arg(format!("slirp:///v4/restricted/tcpfwd={hp}:10.0.2.15:{gp}"))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_for(5, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|p| !p.trim().is_empty())));
    let _r = KillPid(
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string(),
    );
    assert!(wait_for(10, || active(&g.sw) == 2));
    // DHCP works, without router or DNS options (libslirp gives none
    // in restricted mode); the subnet is on-link
    assert_eq!(g.lease(&dir).as_deref(), Some("10.0.2.15"));
    let said = g.run(&format!(
        "echo x | timeout 10 busybox nc 10.0.2.2 {}; echo rc=$?",
        server.port
    ));
    assert!(!said.contains("hello-from-host"), "{said}");
    assert!(
        !said.contains("rc=0"),
        "the connection was not refused: {said}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        0,
        "the host saw a connection"
    );
    // forwards into the guest still work
    let _listener = Kill(
        Command::new("ip")
            .args([
                "netns", "exec", &g.ns.0, "timeout", "30", "busybox", "nc", "-l", "-p",
            ])
            .arg(gp.to_string())
            .args(["-e", "echo", "from-guest"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(read_forward(hp, 15).contains("from-guest"));
}

/// `slirpvde -`: the guests on stdin/stdout, 2-byte length framing (as
/// at the far end of `dpipe vde_plug = ssh host slirpvde -`).
#[cfg(feature = "slirp")]
#[test]
fn stream_mode_answers_on_stdout() {
    let mut p = Plug::start_with(SLIRPVDE, &["-", "-q"]);
    let me = [0x52, 0x54, 0, 0x12, 0x34, 0x57];
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&me);
    arp.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&me);
    arp.extend_from_slice(&[10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 3]);
    p.send(&arp);
    let r = p.recv(5000).expect("an answer on stdout");
    assert_eq!(&r[0..6], &me);
    assert_eq!(&r[20..22], &[0, 2], "an ARP reply");
    assert_eq!(&r[28..32], &[10, 0, 2, 3], "for the DNS address");
    // the end of stdin ends it
    p.close_stdin();
    assert!(wait_for(5, || p.child.try_wait().ok().flatten().is_some()));
}

#[cfg(feature = "slirp")]
#[test]
fn garbage_frames_are_dropped_and_counted() {
    let dir = TempDir::new("slirpg");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let r = Command::new(SLIRPVDE)
        .args(["-s", sw.ctl.to_str().unwrap(), "-D"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = Kill(r);
    assert!(wait_for(10, || active(&sw) == 1));
    let c = Client::connect(&sw.ctl, vde::core::PortRequest::Any, "guest").unwrap();
    let me = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    // garbage (the switch itself drops runts): an IPv4 header longer
    // than the frame, IPv4 of version 6, a truncated ARP, an IPv6 payload
    // length past the end
    let mut bad = Vec::new();
    let mut ip = frame(BCAST, me, 60, 0);
    ip[14] = 0x65;
    bad.push(ip);
    let mut ip = frame(BCAST, me, 60, 0);
    ip[14] = 0x4f;
    bad.push(ip);
    let mut arp = frame(BCAST, me, 30, 0);
    arp[12..14].copy_from_slice(&[8, 6]);
    bad.push(arp);
    let mut v6 = frame(BCAST, me, 60, 0);
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    v6[14] = 0x60;
    v6[18..20].copy_from_slice(&[0x05, 0xdc]);
    bad.push(v6);
    for f in &bad {
        c.send(f);
    }
    // then a good ARP request, which is answered: the router survived
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&me);
    arp.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&me);
    arp.extend_from_slice(&[10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
    c.send(&arp);
    let mut answered = false;
    for _ in 0..10 {
        if let Some(f) = c.recv() {
            if f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == [10, 0, 2, 2] {
                answered = true;
                break;
            }
        }
    }
    assert!(answered, "no ARP reply after the garbage");
    sh(&format!("kill -TERM {}", r.0.id()));
    let mut err = String::new();
    r.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("garbage dropped 4,"), "{err}");
}
