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
