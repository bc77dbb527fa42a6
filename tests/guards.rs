//! Issue #13: a hostile guest on a `-F` switch. A rogue host that sends vde
//! BPDUs of priority 0 becomes root of the whole ring without guards (the
//! attack works); root guard holds its port and keeps the root; BPDU guard
//! closes it; `--guard` protects host ports and leaves in-process cables
//! trusted.

mod common;

use common::*;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vde::core::bpdu::{port_id, Bpdu, BridgeId};
use vde::core::PortRequest;
use vde::frame::Mac;

const ROGUE_MAC: [u8; 6] = [0x02, 0xde, 0xad, 0xbe, 0xef, 0x01];
const ROGUE_ROOT: &str = "root 00:00:02:de:ad:be:ef:01";

/// The 53-byte vde BPDU of a bridge of priority 0 claiming to be root.
fn rogue_bpdu() -> Vec<u8> {
    let id = BridgeId::new(0, Mac(ROGUE_MAC));
    let b = Bpdu {
        flags: 0x7c,
        root: id,
        root_cost: 0,
        bridge: id,
        port: port_id(1),
        message_age: 0,
        max_age: 40,
        hello: 1,
        forward_delay: 0,
    };
    let mut buf = [0u8; 64];
    let n = b.emit(Mac(ROGUE_MAC), None, &mut buf);
    assert_eq!(n, 53);
    buf[..n].to_vec()
}

/// A guest sending the rogue BPDU twice a second until stopped.
struct Rogue {
    stop: Arc<AtomicBool>,
    t: Option<JoinHandle<Client>>,
}

impl Rogue {
    fn start(c: Client) -> Rogue {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            let f = rogue_bpdu();
            while !s.load(Ordering::SeqCst) {
                let _ = c.data.send(&f);
                std::thread::sleep(Duration::from_millis(500));
            }
            c
        });
        Rogue { stop, t: Some(t) }
    }

    fn stop(&mut self) -> Client {
        self.stop.store(true, Ordering::SeqCst);
        self.t.take().unwrap().join().unwrap()
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        if self.t.is_some() {
            self.stop();
        }
    }
}

struct Ring {
    _dir: TempDir,
    sws: Vec<Switch>,
    cables: Vec<Child>,
    hosts: Vec<Client>,
}

impl Drop for Ring {
    fn drop(&mut self) {
        for c in &mut self.cables {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn host(sw: &Switch) -> Client {
    let c = Client::connect(&sw.ctl, PortRequest::Any, "host").unwrap();
    c.data
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    c
}

/// Three switches in a ring. `udp`: cables inside the switches
/// (`--cable udp://…`, module `cable`); otherwise `vde_plug` processes
/// (plain clients of the switches).
fn ring3(extra: &[&str], udp: bool) -> Ring {
    let dir = TempDir::new("guards");
    let ports: Vec<u16> = (0..6)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let sws: Vec<Switch> = (0..3)
        .map(|i| {
            let mut args = vec![
                "-F".to_string(),
                format!("--macaddr=00:ff:00:00:00:{:02x}", i + 1),
            ];
            if udp {
                // cable i joins switch i (port 2i) and i+1 (port 2i+1)
                let j = (i + 2) % 3;
                args.push(format!(
                    "--cable=udp://127.0.0.1:{}->127.0.0.1:{}",
                    ports[2 * i],
                    ports[2 * i + 1]
                ));
                args.push(format!(
                    "--cable=udp://127.0.0.1:{}->127.0.0.1:{}",
                    ports[2 * j + 1],
                    ports[2 * j]
                ));
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            Switch::start(Impl::Ours, &dir, &format!("s{i}"), &args)
        })
        .collect();
    let mut cables = Vec::new();
    if !udp {
        for i in 0..3 {
            let (a, b) = (&sws[i].ctl, &sws[(i + 1) % 3].ctl);
            cables.push(
                Command::new(OUR_PLUG)
                    .args([a.to_str().unwrap(), b.to_str().unwrap()])
                    .spawn()
                    .unwrap(),
            );
        }
    }
    assert!(
        wait_for(10, || sws.iter().all(|s| active(s) == 2)),
        "ring did not come up: {}",
        sws[0].cmd("port/print")
    );
    let hosts = sws.iter().map(host).collect();
    Ring {
        _dir: dir,
        sws,
        cables,
        hosts,
    }
}

/// Copies of one broadcast from host 0 seen by hosts 1 and 2.
fn copies(r: &Ring, seq: u8) -> Vec<usize> {
    for h in &r.hosts {
        let _ = h.drain();
    }
    let f = frame(BCAST, mac(1), 60, seq);
    r.hosts[0].send(&f);
    std::thread::sleep(Duration::from_millis(150));
    r.hosts[1..]
        .iter()
        .map(|h| h.drain().iter().filter(|g| g[..] == f[..]).count())
        .collect()
}

fn converged(r: &Ring, secs: u64) -> bool {
    let mut seq = 0u8;
    wait_for(secs, || {
        seq = seq.wrapping_add(1);
        copies(r, seq) == vec![1, 1]
    })
}

fn roots(r: &Ring) -> Vec<String> {
    r.sws
        .iter()
        .map(|s| {
            let p = s.cmd("fstp/print");
            p.lines()
                .find(|l| l.contains("++ root "))
                .unwrap_or("")
                .trim()
                .trim_start_matches("++ ")
                .to_string()
        })
        .collect()
}

#[test]
fn without_guards_a_rogue_host_becomes_root_of_the_ring() {
    let r = ring3(&[], false);
    assert!(converged(&r, 10), "ring never converged");
    let c = Client::connect(&r.sws[0].ctl, PortRequest::Any, "rogue").unwrap();
    let _rogue = Rogue::start(c);
    assert!(
        wait_for(5, || roots(&r).iter().all(|x| x == ROGUE_ROOT)),
        "the attack did not work: {:?}",
        roots(&r)
    );
}

#[test]
fn root_guard_holds_the_rogue_and_bpdu_guard_closes_it() {
    let r = ring3(&[], false);
    assert!(converged(&r, 10), "ring never converged");
    let before = roots(&r);
    assert!(before.iter().all(|x| x == &before[0]), "{before:?}");
    // root guard on the port the guest will take (rc-style, before it comes)
    assert_eq!(r.sws[0].cmd("fstp/rootguard 20 1"), "1000 Success\n");
    let c = Client::connect(&r.sws[0].ctl, PortRequest::Port(20), "rogue").unwrap();
    let mut rogue = Rogue::start(c);
    assert!(
        wait_for(5, || {
            r.sws[0]
            .cmd("fstp/print")
            .contains("Port 0020 tagged=0 portcost=20000000 role=Alternate/Backup rootguard=root-inconsistent episodes=1")
        }),
        "{}",
        r.sws[0].cmd("fstp/print")
    );
    for i in 0..10 {
        assert_eq!(roots(&r), before, "the root changed");
        assert_eq!(
            copies(&r, 100 + i),
            vec![1, 1],
            "the ring stopped forwarding"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(r.sws[0]
        .cmd("stats")
        .contains("guard root_inconsistent 1\n"));
    // the rogue stops: its port recovers by itself
    let rc = rogue.stop();
    assert!(
        wait_for(6, || r.sws[0].cmd("fstp/print").contains(
            "Port 0020 tagged=0 portcost=20000000 role=Designated rootguard=ok episodes=1"
        )),
        "{}",
        r.sws[0].cmd("fstp/print")
    );
    assert_eq!(roots(&r), before);
    drop(rc);
    // BPDU guard: the next guest that sends a BPDU is disconnected
    assert_eq!(r.sws[0].cmd("fstp/bpduguard 21 1"), "1000 Success\n");
    let c = Client::connect(&r.sws[0].ctl, PortRequest::Port(21), "rogue2").unwrap();
    c.send(&rogue_bpdu());
    let mut ctl = &c.ctl;
    let mut b = [0u8; 16];
    use std::io::Read;
    assert_eq!(ctl.read(&mut b).unwrap_or(0), 0, "endpoint not closed");
    assert!(
        wait_for(3, || !r.sws[0].cmd("port/print").contains("Port 0021")),
        "{}",
        r.sws[0].cmd("port/print")
    );
    assert!(r.sws[0].cmd("stats").contains("guard bpdu_closed 1\n"));
    assert_eq!(roots(&r), before);
    // the port can be reused
    let again = Client::connect(&r.sws[0].ctl, PortRequest::Port(21), "again").unwrap();
    assert_eq!(again.port(), 21);
    assert!(converged(&r, 5));
}

#[test]
fn guard_flag_protects_hosts_and_trusts_in_process_cables() {
    let r = ring3(&["--guard"], true);
    assert!(
        converged(&r, 10),
        "a --guard ring of cables never converged"
    );
    let p = r.sws[1].cmd("fstp/print");
    assert_eq!(
        p.matches("rootguard=").count(),
        1,
        "only the host port: {p}"
    );
    let blocked: usize = r
        .sws
        .iter()
        .map(|s| s.cmd("fstp/print").matches("role=Alternate/Backup").count())
        .sum();
    assert_eq!(blocked, 1, "the ring blocks one cable port");
    let before = roots(&r);
    let c = Client::connect(&r.sws[2].ctl, PortRequest::Any, "rogue").unwrap();
    let _rogue = Rogue::start(c);
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..5 {
        assert_eq!(roots(&r), before, "the root changed");
        assert_eq!(copies(&r, 50 + i), vec![1, 1]);
    }
    assert!(r.sws[2]
        .cmd("fstp/print")
        .contains("rootguard=root-inconsistent"));
}

fn stat(sw: &Switch, name: &str) -> u64 {
    let s = sw.cmd("stats");
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {s}"))
}

fn smac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [2, 0x10, b[0], b[1], b[2], b[3]]
}

#[test]
fn port_security_caps_macs_and_damps_spoofing() {
    let dir = TempDir::new("portsec");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    for c in [
        "port/maclimit 2 32",
        "port/movedamp 2 30",
        "port/maclimit 3 32",
        "port/movedamp 3 30",
    ] {
        assert_eq!(sw.cmd(c), "1000 Success\n", "{c}");
    }
    let gw = Client::connect(&sw.ctl, PortRequest::Port(1), "gateway").unwrap();
    let guest = Client::connect(&sw.ctl, PortRequest::Port(2), "guest").unwrap();
    let other = host(&sw);
    assert_eq!(other.port(), 3);
    // a guest sending from 10,000 source MACs is capped at the limit
    for n in 0..10_000u32 {
        guest.send(&frame(BCAST, smac(n), 60, 0));
        if n % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        wait_for(5, || stat(&sw, "drop mac_limit") + 32 >= 10_000),
        "{}",
        sw.cmd("stats")
    );
    let p = sw.cmd("port/print 2");
    assert!(p.contains("maclimit 32 (learned 32, dropped 9968)"), "{p}");
    assert_eq!(sw.cmd("hash/print").matches("to port: 002").count(), 32);
    // the guest spoofs the gateway's MAC: damped, the gateway keeps it
    gw.send(&frame(BCAST, mac(1), 60, 1));
    assert!(wait_for(2, || sw
        .cmd("hash/find 02:00:00:00:00:01")
        .contains("to port: 001")));
    for _ in 0..5 {
        guest.send(&frame(BCAST, mac(1), 60, 2));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(stat(&sw, "drop mac_move") >= 5);
    let _ = other.drain();
    other.send(&frame(mac(1), mac(3), 60, 3));
    assert!(
        gw.drain()
            .iter()
            .any(|f| f[..] == frame(mac(1), mac(3), 60, 3)[..]),
        "traffic to the gateway went astray"
    );
    assert!(sw
        .cmd("hash/find 02:00:00:00:00:01")
        .contains("to port: 001"));
}

#[test]
fn storm_control_holds_a_broadcast_blast_to_the_limit() {
    let dir = TempDir::new("storm");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    assert_eq!(sw.cmd("port/stormlimit 2 200"), "1000 Success\n");
    let a = Client::connect(&sw.ctl, PortRequest::Port(1), "a").unwrap();
    let blaster = Client::connect(&sw.ctl, PortRequest::Port(2), "blaster").unwrap();
    let b = Client::connect(&sw.ctl, PortRequest::Port(3), "b").unwrap();
    for c in [&a, &b] {
        c.data
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    // the blaster sends broadcasts as fast as it can for 2 s while a and b
    // exchange unicast
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        let f = frame(BCAST, mac(2), 60, 0);
        let mut sent = 0u64;
        while !s2.load(Ordering::SeqCst) {
            if blaster.data.send(&f).is_ok() {
                sent += 1;
            }
        }
        sent
    });
    a.send(&frame(BCAST, mac(1), 60, 1));
    b.send(&frame(BCAST, mac(3), 60, 1));
    let start = std::time::Instant::now();
    let (mut sent_ab, mut got_ab, mut storm_at_b) = (0, 0, 0);
    let want = frame(mac(3), mac(1), 60, 7);
    while start.elapsed() < Duration::from_secs(2) {
        a.send(&want);
        sent_ab += 1;
        std::thread::sleep(Duration::from_millis(20));
        for f in std::iter::from_fn(|| {
            b.data.set_nonblocking(true).unwrap();
            let mut buf = vec![0u8; 2000];
            let r = b.data.recv(&mut buf).ok().map(|n| buf[..n].to_vec());
            b.data.set_nonblocking(false).unwrap();
            r
        }) {
            if f[..] == want[..] {
                got_ab += 1;
            } else if f[6..12] == mac(2) {
                storm_at_b += 1;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sent = t.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "blaster sent {sent}, b got {storm_at_b} of them in {secs:.2} s; a->b {got_ab}/{sent_ab}"
    );
    let dropped = stat(&sw, "drop storm");
    assert!(sent > 2000, "the blaster was too slow to test: {sent}");
    // burst of 200 then 200/s: generous bounds
    assert!(
        (storm_at_b as f64) <= 200.0 + 200.0 * (secs + 1.0),
        "{storm_at_b} broadcasts got through"
    );
    assert!(storm_at_b >= 100, "storm control dropped everything");
    assert!(dropped > 1000, "{}", sw.cmd("stats"));
    assert!(got_ab * 10 >= sent_ab * 9, "a->b lost: {got_ab}/{sent_ab}");
    assert!(sw.cmd("port/allprint 2").contains("stormlimit 200/s"));
}
