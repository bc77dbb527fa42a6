//! Cables inside vde_switch (`--cable`, `--listen`, `cable/...`): frames
//! over in-process cryptcab cables, a listener with a port per peer,
//! `cable/del`, clear console errors, our vde_cryptcab and the Debian
//! vde_plug on the other end, and a spanning-tree ring of three switches
//! in three network namespaces made here whose silenced cable is routed
//! around.

mod common;

use std::fs::File;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use vde::core::PortRequest;

const CRYPTCAB: &str = env!("CARGO_BIN_EXE_vde_cryptcab");

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A key file as a user makes it: 32 random bytes, mode 0600.
fn key_file(dir: &TempDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.path("cable.key");
    let mut key = [0u8; 32];
    std::io::Read::read_exact(&mut File::open("/dev/urandom").unwrap(), &mut key).unwrap();
    std::fs::write(&p, key).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

/// Ports of a switch held by cables.
fn cable_ports(sw: &Switch) -> usize {
    sw.cmd("port/print").matches("module cable").count()
}

/// The frames a client gets within `ms` (a spanning-tree switch keeps
/// sending BPDUs: a drain until silence would not end).
fn take(c: &Client, ms: u64) -> Vec<Vec<u8>> {
    c.data
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let end = Instant::now() + Duration::from_millis(ms);
    let mut got = Vec::new();
    while Instant::now() < end {
        if let Some(f) = c.recv() {
            got.push(f);
        }
    }
    got
}

/// A frame from `a` reaches `b` (retrying while the cable comes up).
fn passes(a: &Client, b: &Client, f: &[u8]) -> bool {
    for _ in 0..50 {
        a.send(f);
        if take(b, 200).iter().any(|g| g == f) {
            return true;
        }
    }
    false
}

fn client(sw: &Switch) -> Client {
    Client::connect(&sw.ctl, PortRequest::Any, "cables test").unwrap()
}

#[test]
fn in_process_cryptcab_carries_frames_both_ways() {
    let dir = TempDir::new("cab-two");
    let key = key_file(&dir);
    let port = free_udp_port();
    let listen = format!("--listen=cryptcab://:{port}/psk={key}");
    let dial = format!("--cable=cryptcab://127.0.0.1:{port}/psk={key}");
    let a = Switch::start(Impl::Ours, &dir, "a", &[&listen]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[&dial]);
    assert!(
        wait_for(10, || cable_ports(&a) == 1 && cable_ports(&b) == 1),
        "cable up: {}\n{}",
        a.cmd("cable/print"),
        b.cmd("cable/print")
    );
    let (ca, cb) = (client(&a), client(&b));
    for (i, len) in [60usize, 61, 500, 1514].into_iter().enumerate() {
        let f = frame(BCAST, mac(1), len, i as u8);
        assert!(passes(&ca, &cb, &f), "a->b {len} bytes");
        let g = frame(mac(1), mac(2), len, i as u8 + 100);
        assert!(passes(&cb, &ca, &g), "b->a {len} bytes, unicast");
    }
    let pa = a.cmd("cable/print");
    let pb = b.cmd("cable/print");
    assert!(pa.contains("listen cryptcab://"), "{pa}");
    assert!(
        pb.contains("dial cryptcab://") && pb.contains(" UP "),
        "{pb}"
    );
    assert!(pb.contains("cipher chacha20-poly1305"), "{pb}");
    assert!(
        pb.contains("rtt "),
        "the dialer measures a round trip: {pb}"
    );
    let frames_out = |t: &str| -> u64 {
        t.split("frames in ")
            .nth(1)
            .and_then(|r| r.split(" out ").nth(1))
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(frames_out(&pb) >= 4, "{pb}");
    let j = b.cmd("cable/json");
    assert!(
        j.contains("\"role\":\"dial\"") && j.contains("\"up\":true") && j.contains("\"port\":"),
        "{j}"
    );
    // the data block is one JSON line
    let line = j.lines().find(|l| l.starts_with('[')).expect("JSON line");
    assert!(line.ends_with(']'), "{line}");
    // the core sees the cable as a port: its counters moved
    assert!(b.cmd("port/print").contains("module cable"));
    // a switch holding cable keys makes no core files
    for sw in [&a, &b] {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", sw.pid())).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
    }
}

#[test]
fn a_listener_gives_each_peer_its_own_port_and_cable_del_ends_one() {
    let dir = TempDir::new("cab-many");
    let key = key_file(&dir);
    let port = free_udp_port();
    let listen = format!("--listen=cryptcab://:{port}/psk={key}");
    let hub = Switch::start(Impl::Ours, &dir, "hub", &[&listen]);
    let dial = format!("--cable=cryptcab://127.0.0.1:{port}/psk={key}");
    let leaves: Vec<Switch> = (0..3)
        .map(|i| Switch::start(Impl::Ours, &dir, &format!("l{i}"), &[&dial]))
        .collect();
    assert!(
        wait_for(10, || cable_ports(&hub) == 3),
        "{}",
        hub.cmd("cable/print")
    );
    let ports: Vec<String> = hub
        .cmd("cable/json")
        .split("\"port\":")
        .skip(1)
        .map(|r| r.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(ports.len(), 3, "three links on three ports");
    let mut distinct = ports.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ports:?}");
    // a frame from one leaf reaches the others through the hub switch
    let cs: Vec<Client> = leaves.iter().map(client).collect();
    let f = frame(BCAST, mac(7), 100, 7);
    assert!(passes(&cs[0], &cs[2], &f));
    assert!(take(&cs[1], 300).contains(&f));
    // cable/del on a leaf ends that cable on both sides, for good
    let r = leaves[0].cmd("cable/del 1");
    assert!(r.contains("closed") && r.contains("1000 Success"), "{r}");
    assert!(wait_for(5, || cable_ports(&hub) == 2), "the hub lost it");
    assert_eq!(cable_ports(&leaves[0]), 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cable_ports(&hub), 2, "a deleted cable stays gone");
    assert!(!leaves[0].cmd("cable/print").contains("Cable 1"));
    // the others still pass frames
    let g = frame(BCAST, mac(8), 100, 8);
    assert!(passes(&cs[1], &cs[2], &g));
}

#[test]
fn cable_errors_are_clear_and_leave_other_ports_alone() {
    let dir = TempDir::new("cab-err");
    let key = key_file(&dir);
    let sw = Switch::start(Impl::Ours, &dir, "sw", &["-n", "3"]);
    let (c1, c2) = (client(&sw), client(&sw));
    let f = frame(BCAST, mac(3), 80, 1);
    assert!(passes(&c1, &c2, &f));
    let busy = UdpSocket::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    for (cmd, code, words) in [
        ("cable/add bogus://x", "1022", "unknown VNL scheme"),
        (
            "cable/add cryptcab://h:70000",
            "1022",
            "port 70000: must be 1..65535",
        ),
        (
            "cable/add cryptcab://h/cipher=rot13",
            "1022",
            "unknown cipher",
        ),
        ("cable/add cryptcab://:7667/psk=/k", "1022", "cable/listen"),
        (
            &format!("cable/listen cryptcab://127.0.0.1:9/psk={key}"),
            "1022",
            "does not listen",
        ),
        (
            "cable/add cryptcab://127.0.0.1/psk=/no/such/key",
            "1002",
            "/no/such/key",
        ),
        (
            "cable/add cryptcab://no-such-host.invalid/psk=/etc/hostname",
            "",
            "",
        ),
        (
            &format!("cable/listen cryptcab://:{busy_port}/psk={key}"),
            "1098",
            "in use",
        ),
        ("cable/del 2", "1006", "no cable on port 2"),
        ("cable/del 99", "1022", "no port 99"),
        ("cable/add", "1022", ""),
    ] {
        let r = sw.cmd(cmd);
        if cmd.contains("no-such-host") {
            // a short key file or an unknown host: either is named
            assert!(
                r.contains("no-such-host.invalid") || r.contains("key file"),
                "{cmd}: {r}"
            );
            assert!(!r.contains("1000 Success"), "{cmd}: {r}");
            continue;
        }
        assert!(r.contains(code), "{cmd}: {r}");
        assert!(r.contains(words), "{cmd}: {r}");
    }
    // a full switch refuses a cable before opening it
    let _c3 = client(&sw);
    let r = sw.cmd(&format!(
        "cable/add cryptcab://127.0.0.1:{busy_port}/psk={key}"
    ));
    assert!(r.contains("1028") && r.contains("no free port"), "{r}");
    assert!(sw.cmd("cable/print").trim().ends_with("1000 Success"));
    // nothing else was touched
    let g = frame(BCAST, mac(4), 80, 2);
    assert!(passes(&c1, &c2, &g));
    assert_eq!(active(&sw), 3);
}

#[test]
fn in_process_cables_talk_to_our_vde_cryptcab_both_ways() {
    let dir = TempDir::new("cab-tool");
    let key = key_file(&dir);
    // our switch listens, vde_cryptcab dials from another switch
    let port = free_udp_port();
    let listen = format!("--listen=cryptcab://:{port}/psk={key}");
    let a = Switch::start(Impl::Ours, &dir, "a", &[&listen]);
    let b = Switch::start(Impl::Ours, &dir, "b", &[]);
    let lport = free_udp_port().to_string();
    let log = File::create(dir.path("cli.log")).unwrap();
    let mut cli = Command::new(CRYPTCAB)
        .args(["-s", b.ctl.to_str().unwrap(), "-p", &lport, "-P", &key])
        .args(["-c", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let (ca, cb) = (client(&a), client(&b));
    let f = frame(BCAST, mac(5), 200, 5);
    assert!(
        wait_for(10, || cable_ports(&a) == 1),
        "{}",
        std::fs::read_to_string(dir.path("cli.log")).unwrap_or_default()
    );
    assert!(passes(&cb, &ca, &f));
    assert!(passes(&ca, &cb, &frame(BCAST, mac(6), 1514, 6)));
    let _ = cli.kill();
    let _ = cli.wait();
    // vde_cryptcab serves, our switch dials
    let sport = free_udp_port();
    let mut srv = Command::new(CRYPTCAB)
        .args([
            "-s",
            b.ctl.to_str().unwrap(),
            "-p",
            &sport.to_string(),
            "-P",
            &key,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let r = a.cmd(&format!("cable/add cryptcab://127.0.0.1:{sport}/psk={key}"));
    assert!(r.contains("1000 Success"), "{r}");
    let g = frame(BCAST, mac(9), 300, 9);
    assert!(passes(&ca, &cb, &g), "{}", a.cmd("cable/print"));
    let _ = srv.kill();
    let _ = srv.wait();
}

#[test]
fn in_process_udp_cable_with_the_debian_vde_plug() {
    if !have("vde_plug") {
        return;
    }
    let dir = TempDir::new("cab-udp");
    let (p1, p2) = (free_udp_port(), free_udp_port());
    let mine = format!("--cable=udp://127.0.0.1:{p1}->127.0.0.1:{p2}");
    let a = Switch::start(Impl::Ours, &dir, "a", &[&mine]);
    let b = Switch::start(Impl::C, &dir, "b", &[]);
    let theirs = format!("udp://127.0.0.1:{p2}->127.0.0.1:{p1}");
    let mut plug: Child = Command::new("/usr/bin/vde_plug")
        .arg(format!("vde://{}", b.ctl.display()))
        .arg(&theirs)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(5, || cable_ports(&a) == 1),
        "{}",
        a.cmd("cable/print")
    );
    assert!(wait_for(5, || active(&b) == 1));
    let (ca, cb) = (client(&a), client(&b));
    for (i, len) in [60usize, 1514].into_iter().enumerate() {
        assert!(
            passes(&ca, &cb, &frame(BCAST, mac(1), len, i as u8)),
            "ours -> C"
        );
        assert!(
            passes(&cb, &ca, &frame(BCAST, mac(2), len, i as u8 + 50)),
            "C -> ours"
        );
    }
    let _ = plug.kill();
    let _ = plug.wait();
}

// ---------------------------------------------------------------------
// A ring of three sites in three network namespaces

/// How many copies of a broadcast from client 0 clients 1 and 2 get.
fn copies(cs: &[Client], seq: u8) -> Vec<usize> {
    for c in cs {
        let _ = take(c, 5);
    }
    let f = frame(BCAST, mac(40), 60, seq);
    cs[0].send(&f);
    std::thread::sleep(Duration::from_millis(100));
    cs[1..]
        .iter()
        .map(|c| take(c, 50).iter().filter(|g| **g == f).count())
        .collect()
}

fn wait_once(cs: &[Client], seq: &mut u8, secs: u64) -> Option<Duration> {
    until_once(secs, seq, |n| copies(cs, n) == vec![1, 1])
}

#[test]
fn a_ring_of_three_sites_reroutes_around_a_silenced_cable() {
    if !is_root() || !have("ip") {
        return;
    }
    let dir = TempDir::new("cab-ring");
    let key = key_file(&dir);
    let ns: Vec<NetNs> = (0..3).map(|i| NetNs::new(&format!("r{i}"))).collect();
    // one veth per cable: 10.77.IJ.1 (site I) <-> 10.77.IJ.2 (site J)
    let pairs = [(0usize, 1usize), (1, 2), (2, 0)];
    for (k, &(i, j)) in pairs.iter().enumerate() {
        let (a, b) = (
            format!("ring{k}a{}", std::process::id() % 10000),
            format!("ring{k}b{}", std::process::id() % 10000),
        );
        sh(&format!(
            "ip link add {a} netns {} type veth peer name {b} netns {}",
            ns[i].0, ns[j].0
        ));
        ns[i].sh(&format!(
            "ip addr add 10.77.{k}.1/24 dev {a} && ip link set {a} up"
        ));
        ns[j].sh(&format!(
            "ip addr add 10.77.{k}.2/24 dev {b} && ip link set {b} up"
        ));
    }
    // every site listens on the default port and dials its successor:
    // listening and dialing with the defaults must not collide
    let sites: Vec<Switch> = (0..3)
        .map(|i| {
            let k = i; // the cable i -> i+1 is pair k = i
            let peer = format!("10.77.{k}.2");
            Switch::start_in(
                &ns[i],
                &dir,
                &format!("s{i}"),
                &[
                    "-F".into(),
                    format!("--macaddr=00:ff:00:00:02:{:02x}", i + 1),
                    format!("--listen=cryptcab:///psk={key}/dead=0.3"),
                    format!("--cable=cryptcab://{peer}/psk={key}/dead=0.3"),
                ],
            )
        })
        .collect();
    assert!(
        wait_for(10, || sites.iter().all(|s| cable_ports(s) == 2)),
        "ring up: {}",
        sites
            .iter()
            .map(|s| s.cmd("cable/print"))
            .collect::<String>()
    );
    let cs: Vec<Client> = sites.iter().map(client).collect();
    let mut seq = 0u8;
    let t = wait_once(&cs, &mut seq, 15).expect("the ring converges: one copy each");
    eprintln!("ring converged {t:?} after the cables came up");
    for _ in 0..5 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "exactly once, no loop");
    }
    // silence the cable s0-s1: no link-down event reaches either switch
    let a = format!("ring0a{}", std::process::id() % 10000);
    let start = Instant::now();
    ns[0].sh(&format!("ip link set {a} down"));
    let mut rerouted = None;
    while start.elapsed() < Duration::from_secs(10) {
        seq = seq.wrapping_add(1);
        if copies(&cs, seq) == vec![1, 1] && cable_ports(&sites[0]) == 1 {
            rerouted = Some(start.elapsed());
            break;
        }
    }
    let rerouted = rerouted.expect("rerouted around the silenced cable");
    eprintln!("silenced cable routed around in {rerouted:?}");
    for _ in 0..3 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "still exactly once");
    }
    // it comes back by itself, and the ring stays loop-free
    ns[0].sh(&format!("ip link set {a} up"));
    assert!(
        wait_for(15, || cable_ports(&sites[0]) == 2
            && cable_ports(&sites[1]) == 2),
        "the cable comes back: {}",
        sites[0].cmd("cable/print")
    );
    assert!(wait_once(&cs, &mut seq, 15).is_some());
    for _ in 0..5 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "exactly once after the heal");
    }
}

/// An Ethernet + IPv4 + TCP SYN carrying MSS `mss`, checksum right.
fn syn(mss: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BCAST);
    f.extend_from_slice(&mac(30));
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0]);
    f.extend_from_slice(&[0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    f.extend_from_slice(&[2, 4]);
    f.extend_from_slice(&mss.to_be_bytes());
    let c = !fold(tcp_sum(&f));
    f[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// The ones' complement sum of the TCP segment with its pseudo header.
fn tcp_sum(f: &[u8]) -> u32 {
    let tcp = &f[34..];
    let mut s = 6 + tcp.len() as u32;
    for c in f[26..34].chunks(2).chain(tcp.chunks(2)) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn tcp_syns_through_a_cable_get_an_mss_that_fits_the_path() {
    let dir = TempDir::new("cab-mss");
    let key = key_file(&dir);
    let (p1, p2) = (free_udp_port(), free_udp_port());
    let a = Switch::start(
        Impl::Ours,
        &dir,
        "a",
        &[
            &format!("--listen=cryptcab://:{p1}/psk={key}"),
            &format!("--listen=cryptcab://:{p2}/psk={key}/mtu=0"),
        ],
    );
    let b = Switch::start(
        Impl::Ours,
        &dir,
        "b",
        &[&format!("--cable=cryptcab://127.0.0.1:{p1}/psk={key}")],
    );
    let c = Switch::start(
        Impl::Ours,
        &dir,
        "c",
        &[&format!(
            "--cable=cryptcab://127.0.0.1:{p2}/psk={key}/mtu=0"
        )],
    );
    assert!(wait_for(10, || cable_ports(&a) == 2
        && cable_ports(&b) == 1
        && cable_ports(&c) == 1));
    let (cb, cc) = (client(&b), client(&c));
    let ca = client(&a);
    assert!(passes(&cb, &ca, &frame(BCAST, mac(31), 60, 1)));
    // b's cable clamps (1500 - 20 - 8 - 32 = 1440-byte frames: MSS 1386);
    // a's listener without clamping passes it on to c unchanged
    let s = syn(1460);
    cb.send(&s);
    let got = take(&ca, 500);
    let g = got
        .iter()
        .find(|f| f.len() == s.len() && f[34..36] == s[34..36])
        .expect("the SYN");
    assert_eq!(u16::from_be_bytes([g[56], g[57]]), 1386, "MSS clamped");
    assert_eq!(fold(tcp_sum(g)), 0xffff, "TCP checksum still right");
    let at_c = take(&cc, 300);
    let gc = at_c
        .iter()
        .find(|f| f.len() == s.len() && f[34..36] == s[34..36])
        .expect("at c");
    assert_eq!(
        u16::from_be_bytes([gc[56], gc[57]]),
        1386,
        "mtu=0 leaves it"
    );
    // a SYN that already fits, and one through the unclamped cable, pass as they are
    let small = syn(1200);
    cb.send(&small);
    assert!(take(&ca, 300).contains(&small));
    let s2 = syn(1460);
    cc.send(&s2);
    assert!(take(&ca, 300).contains(&s2), "mtu=0: no clamping");
}

#[test]
fn a_plug_cable_whose_switch_went_away_comes_back_by_itself() {
    let dir = TempDir::new("cab-reopen");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let actl = a.ctl.display().to_string();
    // any locator is a cable: here a plug into switch a (vde://)
    let b = Switch::start(Impl::Ours, &dir, "b", &[&format!("--cable=vde://{actl}")]);
    assert!(
        wait_for(5, || cable_ports(&b) == 1),
        "{}",
        b.cmd("cable/print")
    );
    let (ca, cb) = (client(&a), client(&b));
    assert!(passes(&ca, &cb, &frame(BCAST, mac(50), 80, 1)));
    // switch a goes away: b's port goes down, the cable stays listed
    drop(ca);
    drop(a);
    assert!(
        wait_for(5, || cable_ports(&b) == 0),
        "{}",
        b.cmd("port/print")
    );
    assert!(b.cmd("cable/print").contains("Cable 1 plug vde://"));
    // a new switch a at the same place: the cable opens again by itself
    let a2 = Switch::start(Impl::Ours, &dir, "a", &[]);
    assert!(
        wait_for(10, || cable_ports(&b) == 1),
        "{}",
        b.cmd("cable/print")
    );
    let ca2 = client(&a2);
    assert!(passes(&ca2, &cb, &frame(BCAST, mac(51), 80, 2)));
}

// ---------------------------------------------------------------------
// QUIC cables (issue #14)

/// A QUIC certificate for a switch, made here: its file and fingerprint.
fn quic_cert(dir: &TempDir, name: &str) -> (String, String) {
    let p = dir.path(&format!("{name}.pem"));
    let c = vde_overlay::quic::tls::load_or_create(Some(&p)).unwrap();
    (p.display().to_string(), c.fingerprint().to_string())
}

/// Two namespaces joined by a veth pair: 10.78.N.1 in the first, .2 in
/// the second; returns them and the second's interface name.
fn two_sites(n: u8, tag: &str) -> (NetNs, NetNs, String) {
    let (a, b) = (
        NetNs::new(&format!("{tag}a")),
        NetNs::new(&format!("{tag}b")),
    );
    let pid = std::process::id() % 10000;
    let (ia, ib) = (format!("q{n}a{pid}"), format!("q{n}b{pid}"));
    sh(&format!(
        "ip link add {ia} netns {} type veth peer name {ib} netns {}",
        a.0, b.0
    ));
    a.sh(&format!(
        "ip addr add 10.78.{n}.1/24 dev {ia} && ip link set {ia} up"
    ));
    b.sh(&format!(
        "ip addr add 10.78.{n}.2/24 dev {ib} && ip link set {ib} up"
    ));
    (a, b, ib)
}

/// The first `"link":N` of a cable/json reply.
fn first_link(sw: &Switch) -> Option<u64> {
    sw.cmd("cable/json")
        .split("\"link\":")
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()
}

#[test]
fn quic_cable_between_two_namespaces_carries_frames_both_ways() {
    if !is_root() || !have("ip") {
        return;
    }
    let dir = TempDir::new("quic-two");
    let (ns_a, ns_b, _) = two_sites(1, "qt");
    let (ca_file, ca_fp) = quic_cert(&dir, "a");
    let (cb_file, cb_fp) = quic_cert(&dir, "b");
    let a = Switch::start_in(
        &ns_a,
        &dir,
        "a",
        &[format!("--listen=quic://:4433/cert={ca_file}/pin={cb_fp}")],
    );
    let b = Switch::start_in(
        &ns_b,
        &dir,
        "b",
        &[format!(
            "--cable=quic://10.78.1.1:4433/cert={cb_file}/pin={ca_fp}"
        )],
    );
    assert!(
        wait_for(10, || cable_ports(&a) == 1 && cable_ports(&b) == 1),
        "cable up: {}\n{}\n{}",
        a.cmd("cable/print"),
        b.cmd("cable/print"),
        std::fs::read_to_string(dir.path("b.log")).unwrap_or_default()
    );
    let (ca, cb) = (client(&a), client(&b));
    for (i, len) in [60usize, 61, 500, 1400, 1433, 1434, 1500, 1514]
        .into_iter()
        .enumerate()
    {
        let f = frame(BCAST, mac(1), len, i as u8);
        assert!(passes(&ca, &cb, &f), "a->b {len} bytes");
        let g = frame(mac(1), mac(2), len, i as u8 + 100);
        assert!(passes(&cb, &ca, &g), "b->a {len} bytes, unicast");
    }
    let (pa, pb) = (a.cmd("cable/print"), b.cmd("cable/print"));
    assert!(pa.contains("listen quic://") && pa.contains(&cb_fp), "{pa}");
    assert!(
        pb.contains("dial quic://") && pb.contains(" UP ") && pb.contains(&ca_fp),
        "{pb}"
    );
    assert!(pb.contains("peer 10.78.1.1:4433"), "{pb}");
    assert!(
        !pb.contains("dropped"),
        "nothing dropped on a clean path: {pb}"
    );
    // cable/del on the dialer ends the cable on both sides
    let r = b.cmd("cable/del 1");
    assert!(r.contains("closed") && r.contains("1000 Success"), "{r}");
    assert!(
        wait_for(5, || cable_ports(&a) == 0),
        "{}",
        a.cmd("cable/print")
    );
}

#[test]
fn quic_refuses_a_peer_whose_certificate_is_not_pinned() {
    let dir = TempDir::new("quic-pin");
    let (ca_file, ca_fp) = quic_cert(&dir, "a");
    let (cb_file, _) = quic_cert(&dir, "b");
    let (_, other_fp) = quic_cert(&dir, "other");
    let port = free_udp_port();
    // a trusts "other", not b
    let a = Switch::start(
        Impl::Ours,
        &dir,
        "a",
        &[&format!(
            "--listen=quic://:{port}/cert={ca_file}/pin={other_fp}"
        )],
    );
    let b = Switch::start(
        Impl::Ours,
        &dir,
        "b",
        &[&format!(
            "--cable=quic://127.0.0.1:{port}/cert={cb_file}/pin={ca_fp}/dead=0.5"
        )],
    );
    assert!(
        wait_for(10, || a
            .cmd("cable/print")
            .contains("refused (certificate not pinned)")),
        "{}",
        a.cmd("cable/print")
    );
    assert!(
        wait_for(5, || b
            .cmd("cable/print")
            .contains("refused (certificate not pinned)")),
        "{}",
        b.cmd("cable/print")
    );
    assert_eq!(cable_ports(&a), 0);
    assert_eq!(cable_ports(&b), 0);
    assert!(b.cmd("cable/print").contains("-- connecting"));
    // and a client that does not pin the server refuses it
    let c = Switch::start(
        Impl::Ours,
        &dir,
        "c",
        &[&format!(
            "--cable=quic://127.0.0.1:{port}/cert={cb_file}/pin={other_fp}"
        )],
    );
    assert!(
        wait_for(10, || c
            .cmd("cable/print")
            .contains("refused (certificate not pinned)")),
        "{}",
        c.cmd("cable/print")
    );
    assert_eq!(cable_ports(&c), 0);
    // a cable/add without a pin says what is missing and names our certificate
    let r = c.cmd(&format!("cable/add quic://127.0.0.1:{port}/cert={cb_file}"));
    assert!(
        r.contains("no peer certificate pinned") && r.contains("SHA256:"),
        "{r}"
    );
}

#[test]
fn quic_client_recovers_when_the_server_restarts() {
    let dir = TempDir::new("quic-restart");
    let (ca_file, ca_fp) = quic_cert(&dir, "a");
    let (cb_file, cb_fp) = quic_cert(&dir, "b");
    let port = free_udp_port();
    let listen = format!("--listen=quic://:{port}/cert={ca_file}/pin={cb_fp}");
    let a = Switch::start(Impl::Ours, &dir, "a", &[&listen]);
    let b = Switch::start(
        Impl::Ours,
        &dir,
        "b",
        &[&format!(
            "--cable=quic://127.0.0.1:{port}/cert={cb_file}/pin={ca_fp}"
        )],
    );
    assert!(wait_for(10, || cable_ports(&a) == 1 && cable_ports(&b) == 1));
    let cb = client(&b);
    {
        let ca = client(&a);
        assert!(passes(&ca, &cb, &frame(BCAST, mac(60), 100, 1)));
    }
    // the server goes away: the client's port goes down within the
    // dead time (1 s) and some slack, and the cable stays listed
    drop(a);
    let t = Instant::now();
    assert!(
        wait_for(5, || cable_ports(&b) == 0),
        "{}",
        b.cmd("cable/print")
    );
    eprintln!("the client saw the server gone after {:?}", t.elapsed());
    assert!(b.cmd("cable/print").contains("Cable 1 dial quic://"));
    // a new server on the same port: the client comes back by itself
    let a2 = Switch::start(Impl::Ours, &dir, "a", &[&listen]);
    assert!(
        wait_for(10, || cable_ports(&b) == 1 && cable_ports(&a2) == 1),
        "{}",
        b.cmd("cable/print")
    );
    let ca2 = client(&a2);
    assert!(passes(&cb, &ca2, &frame(BCAST, mac(61), 1514, 2)));
    assert!(passes(&ca2, &cb, &frame(BCAST, mac(62), 1514, 3)));
}

#[test]
fn quic_cable_survives_the_client_address_changing() {
    if !is_root() || !have("ip") {
        return;
    }
    let dir = TempDir::new("quic-move");
    let (ns_a, ns_b, ib) = two_sites(2, "qm");
    let (ca_file, ca_fp) = quic_cert(&dir, "a");
    let (cb_file, cb_fp) = quic_cert(&dir, "b");
    let a = Switch::start_in(
        &ns_a,
        &dir,
        "a",
        &[format!("--listen=quic://:4433/cert={ca_file}/pin={cb_fp}")],
    );
    let b = Switch::start_in(
        &ns_b,
        &dir,
        "b",
        &[format!(
            "--cable=quic://10.78.2.1:4433/cert={cb_file}/pin={ca_fp}"
        )],
    );
    assert!(wait_for(10, || cable_ports(&a) == 1 && cable_ports(&b) == 1));
    let (ca, cb) = (client(&a), client(&b));
    assert!(passes(&cb, &ca, &frame(BCAST, mac(70), 200, 1)));
    let link = first_link(&a).expect("a link");
    assert!(a.cmd("cable/print").contains("peer 10.78.2.2:"));
    // the client's address changes under the cable (as a NAT rebinding
    // would change it): the old one goes away, a new one comes
    ns_b.sh(&format!(
        "sysctl -qw net.ipv4.conf.{ib}.promote_secondaries=1 && \
         ip addr add 10.78.2.3/24 dev {ib} && ip addr del 10.78.2.2/24 dev {ib}"
    ));
    let mut seq = 10u8;
    let moved = until_once(10, &mut seq, |n| {
        passes(&cb, &ca, &frame(BCAST, mac(71), 1514, n))
            && a.cmd("cable/print").contains("peer 10.78.2.3:")
    });
    assert!(
        moved.is_some(),
        "frames pass from the new address: {}",
        a.cmd("cable/print")
    );
    assert!(passes(&ca, &cb, &frame(BCAST, mac(72), 1514, 99)));
    // the same connection: no new link on the server, no down on either side
    assert_eq!(first_link(&a), Some(link), "{}", a.cmd("cable/print"));
    let la = std::fs::read_to_string(dir.path("a.log")).unwrap_or_default();
    let lb = std::fs::read_to_string(dir.path("b.log")).unwrap_or_default();
    assert!(!la.contains(" down"), "{la}");
    assert!(!lb.contains(" down"), "{lb}");
}

#[test]
fn a_ring_with_one_quic_cable_reroutes_around_it_when_silenced() {
    if !is_root() || !have("ip") {
        return;
    }
    let dir = TempDir::new("quic-ring");
    let key = key_file(&dir);
    let certs: Vec<(String, String)> = (0..3).map(|i| quic_cert(&dir, &format!("q{i}"))).collect();
    let ns: Vec<NetNs> = (0..3).map(|i| NetNs::new(&format!("qr{i}"))).collect();
    let pid = std::process::id() % 10000;
    let pairs = [(0usize, 1usize), (1, 2), (2, 0)];
    for (k, &(i, j)) in pairs.iter().enumerate() {
        let (a, b) = (format!("qring{k}a{pid}"), format!("qring{k}b{pid}"));
        sh(&format!(
            "ip link add {a} netns {} type veth peer name {b} netns {}",
            ns[i].0, ns[j].0
        ));
        ns[i].sh(&format!(
            "ip addr add 10.76.{k}.1/24 dev {a} && ip link set {a} up"
        ));
        ns[j].sh(&format!(
            "ip addr add 10.76.{k}.2/24 dev {b} && ip link set {b} up"
        ));
    }
    // s0 -> s1 is a quic cable; s1 -> s2 and s2 -> s0 are cryptcab ones
    let sites: Vec<Switch> = (0..3)
        .map(|i| {
            let mut args = vec![
                "-F".to_string(),
                format!("--macaddr=00:ff:00:00:03:{:02x}", i + 1),
            ];
            match i {
                0 => {
                    args.push(format!(
                        "--cable=quic://10.76.0.2:4433/cert={}/pin={}",
                        certs[0].0, certs[1].1
                    ));
                    args.push(format!("--listen=cryptcab:///psk={key}/dead=0.3"));
                }
                1 => {
                    args.push(format!(
                        "--listen=quic://:4433/cert={}/pin={}",
                        certs[1].0, certs[0].1
                    ));
                    args.push(format!("--cable=cryptcab://10.76.1.2/psk={key}/dead=0.3"));
                }
                _ => {
                    args.push(format!("--listen=cryptcab:///psk={key}/dead=0.3"));
                    args.push(format!("--cable=cryptcab://10.76.2.2/psk={key}/dead=0.3"));
                }
            }
            Switch::start_in(&ns[i], &dir, &format!("s{i}"), &args)
        })
        .collect();
    assert!(
        wait_for(10, || sites.iter().all(|s| cable_ports(s) == 2)),
        "ring up: {}",
        sites
            .iter()
            .map(|s| s.cmd("cable/print"))
            .collect::<String>()
    );
    let cs: Vec<Client> = sites.iter().map(client).collect();
    let mut seq = 0u8;
    let t = wait_once(&cs, &mut seq, 15).expect("the ring converges: one copy each");
    eprintln!("ring converged {t:?} after the cables came up");
    for _ in 0..5 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "exactly once, no loop");
    }
    // silence the quic cable: its port goes down when QUIC's idle timeout
    // (1 s) runs out, and the tree routes around it
    let a = format!("qring0a{pid}");
    let start = Instant::now();
    ns[0].sh(&format!("ip link set {a} down"));
    let mut rerouted = None;
    while start.elapsed() < Duration::from_secs(10) {
        seq = seq.wrapping_add(1);
        if copies(&cs, seq) == vec![1, 1] && cable_ports(&sites[0]) == 1 {
            rerouted = Some(start.elapsed());
            break;
        }
    }
    let rerouted = rerouted.expect("rerouted around the silenced quic cable");
    eprintln!("silenced quic cable routed around in {rerouted:?}");
    for _ in 0..3 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "still exactly once");
    }
    // it comes back by itself (the dialer reconnects), loop-free
    ns[0].sh(&format!("ip link set {a} up"));
    assert!(
        wait_for(15, || cable_ports(&sites[0]) == 2
            && cable_ports(&sites[1]) == 2),
        "the quic cable comes back: {}",
        sites[0].cmd("cable/print")
    );
    assert!(wait_once(&cs, &mut seq, 15).is_some());
    for _ in 0..5 {
        seq = seq.wrapping_add(1);
        assert_eq!(copies(&cs, seq), vec![1, 1], "exactly once after the heal");
    }
}

/// `vde_switch -d` with a cable through the plug adapter (here a
/// `vde://` plug into another switch): the cable opens after the fork, so
/// its threads live in the daemon and frames cross both ways; a cable
/// that cannot open is reported by the command itself (exit 1 and the
/// reason), and the daemon leaves nothing behind.
#[test]
fn a_daemonized_switch_keeps_its_adapter_cables() {
    use vde::core::PortRequest;
    let dir = TempDir::new("daemon-cable");
    let a = Switch::start(Impl::Ours, &dir, "a", &[]);
    let (bctl, bpid) = (dir.path("b.ctl"), dir.path("b.pid"));
    let vnl = format!("vde://{}", a.ctl.display());
    let out = Command::new(OURS)
        .args(["-d", "-s"])
        .arg(&bctl)
        .arg("-p")
        .arg(&bpid)
        .args(["--cable", &vnl])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid: i32 = std::fs::read_to_string(&bpid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: a plain kill(2) of the daemon this test started.
            unsafe { libc::kill(self.0, libc::SIGTERM) };
        }
    }
    let _kill = Kill(pid);
    assert!(wait_for(5, || active(&a) == 1), "the cable's port on a");
    let ca = Client::connect(&a.ctl, PortRequest::Any, "ca").unwrap();
    let cb = Client::connect(&bctl, PortRequest::Any, "cb").unwrap();
    let mut through = false;
    for seq in 0..50u8 {
        ca.send(&frame([0xff; 6], mac(1), 80, seq));
        cb.send(&frame([0xff; 6], mac(2), 80, seq));
        std::thread::sleep(Duration::from_millis(50));
        let (to_b, to_a) = (cb.drain(), ca.drain());
        if to_b.iter().any(|f| f[6..12] == mac(1)) && to_a.iter().any(|f| f[6..12] == mac(2)) {
            through = true;
            break;
        }
    }
    assert!(through, "frames cross the daemon's adapter cable both ways");

    // a cable that cannot open: the command says why and exits 1
    let cctl = dir.path("c.ctl");
    let out = Command::new(OURS)
        .args(["-d", "-s"])
        .arg(&cctl)
        .args(["--cable", "cryptcab://127.0.0.1:9/psk=/no/such/key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/key"), "{err}");
    assert!(
        wait_for(5, || !cctl.exists()),
        "the failed daemon removed its socket"
    );
}
