//! The fast spanning tree end to end: rings of our switches (and with the
//! C switch) joined by cables, broadcasts delivered exactly once, failover
//! when a cable process dies and when a cable goes silent.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WF: &str = env!("CARGO_BIN_EXE_wirefilter");

struct Ring {
    _dir: TempDir,
    sws: Vec<Switch>,
    cables: Vec<Child>,
    plugs: Vec<Plug>,
}

impl Drop for Ring {
    fn drop(&mut self) {
        for c in &mut self.cables {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `kinds.len()` switches in a ring; cable i joins switch i and i+1. The
/// last cable is a wirefilter with a management socket (to silence it).
fn ring(kinds: &[Impl]) -> Ring {
    ring_with(kinds, &[])
}

/// [`ring`] with more switch flags.
fn ring_with(kinds: &[Impl], extra: &[&str]) -> Ring {
    let dir = TempDir::new("ring");
    let sws: Vec<Switch> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let mac = format!("--macaddr=00:ff:00:00:00:{:02x}", i + 1);
            let mut args = vec!["-F", &mac];
            args.extend_from_slice(extra);
            Switch::start(k, &dir, &format!("s{i}"), &args)
        })
        .collect();
    let n = sws.len();
    let mut cables = Vec::new();
    for i in 0..n {
        let (a, b) = (&sws[i].ctl, &sws[(i + 1) % n].ctl);
        let c = if i == n - 1 {
            Command::new(WF)
                .arg("-v")
                .arg(format!("{}:{}", a.display(), b.display()))
                .arg("-M")
                .arg(dir.path("wf.mgmt"))
                .arg("--daemon")
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        } else {
            Command::new(OUR_PLUG)
                .args([a.to_str().unwrap(), b.to_str().unwrap()])
                .spawn()
                .unwrap()
        };
        cables.push(c);
    }
    let plugs = sws
        .iter()
        .map(|s| Plug::ours(&[s.ctl.to_str().unwrap()]))
        .collect();
    assert!(
        wait_for(10, || sws.iter().all(|s| active(s) == 3)),
        "ring did not come up"
    );
    Ring {
        _dir: dir,
        sws,
        cables,
        plugs,
    }
}

/// Sends a broadcast from switch 0's plug; returns how many copies each
/// other plug got within `ms`.
fn broadcast_copies(r: &mut Ring, seq: u8, ms: u64) -> Vec<usize> {
    for p in &r.plugs {
        let _ = p.drain(50);
    }
    r.plugs[0].send(&frame(BCAST, mac(1), 60, seq));
    std::thread::sleep(Duration::from_millis(ms));
    r.plugs[1..]
        .iter()
        .map(|p| {
            p.drain(100)
                .iter()
                .filter(|f| f[..] == frame(BCAST, mac(1), 60, seq)[..])
                .count()
        })
        .collect()
}

/// Waits until a broadcast reaches every other switch exactly once.
fn converged(r: &mut Ring, secs: u64) -> Option<Duration> {
    let t = Instant::now();
    let mut seq = 0u8;
    while t.elapsed() < Duration::from_secs(secs) {
        seq = seq.wrapping_add(1);
        if broadcast_copies(r, seq, 150).iter().all(|&c| c == 1) {
            return Some(t.elapsed());
        }
    }
    None
}

#[test]
fn ring_of_three_converges_and_fails_over() {
    let mut r = ring(&[Impl::Ours, Impl::Ours, Impl::Ours]);
    let t = converged(&mut r, 10).expect("no loop-free delivery in a ring of 3");
    eprintln!("ring of 3 converged in {t:?}");
    // exactly one port of the ring is blocked
    let blocked: usize = r
        .sws
        .iter()
        .map(|s| s.cmd("fstp/print").matches("role=Alternate/Backup").count())
        .sum();
    assert_eq!(blocked, 1, "{}", r.sws[0].cmd("fstp/print"));
    // still exactly once after a while (no storm, no flapping)
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(broadcast_copies(&mut r, 200, 300), vec![1, 1]);
    // kill the cable between switch 0 and 1: traffic goes the other way
    let _ = r.cables[0].kill();
    let _ = r.cables[0].wait();
    let t = converged(&mut r, 10).expect("no failover after a cable died");
    eprintln!("failover after a dead cable: {t:?}");
    // plug it back (the ports are reused): the ring blocks one port again
    let (a, b) = (r.sws[0].ctl.clone(), r.sws[1].ctl.clone());
    r.cables[0] = Command::new(OUR_PLUG)
        .args([a.to_str().unwrap(), b.to_str().unwrap()])
        .spawn()
        .unwrap();
    assert!(
        wait_for(10, || {
            let blocked: usize = r
                .sws
                .iter()
                .map(|s| s.cmd("fstp/print").matches("role=Alternate/Backup").count())
                .sum();
            let disabled: usize = r
                .sws
                .iter()
                .map(|s| s.cmd("fstp/print").matches("role=Disabled").count())
                .sum();
            blocked == 1 && disabled == 0
        }),
        "re-plugged ring: {}",
        r.sws[0].cmd("fstp/print")
    );
    converged(&mut r, 10).expect("no loop-free delivery after re-plugging");
}

#[test]
fn a_silent_cable_is_detected() {
    let mut r = ring(&[Impl::Ours, Impl::Ours, Impl::Ours, Impl::Ours]);
    converged(&mut r, 10).expect("no loop-free delivery in a ring of 4");
    // silence the wirefilter cable (loss 100 both ways) without closing it
    let mut m = Mgmt::connect_with_prompt(&r._dir.path("wf.mgmt"), "\nVDEwf$ ");
    assert_eq!(m.cmd("loss 100"), "1000 Success\n");
    let t = converged(&mut r, 10).expect("the silent cable was never routed around");
    eprintln!("failover after a silent cable: {t:?}");
    assert!(t < Duration::from_secs(6), "{t:?}");
}

#[test]
fn mixed_ring_with_the_c_switch() {
    if !have("vde_switch") {
        return;
    }
    let mut r = ring(&[Impl::Ours, Impl::C, Impl::Ours]);
    let t = converged(&mut r, 20).expect("a ring with a C switch never delivered exactly once");
    eprintln!("mixed ring converged in {t:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        broadcast_copies(&mut r, 201, 300),
        vec![1, 1],
        "storm or loss in the mixed ring"
    );
}

#[test]
fn a_ring_speaking_standard_rstp_converges_and_fails_over() {
    let mut r = ring_with(&[Impl::Ours, Impl::Ours, Impl::Ours], &["--rstp"]);
    converged(&mut r, 10).expect("no loop-free delivery in an RSTP ring of 3");
    let blocked: usize = r
        .sws
        .iter()
        .map(|s| s.cmd("fstp/print").matches("role=Alternate/Backup").count())
        .sum();
    assert_eq!(blocked, 1, "{}", r.sws[0].cmd("fstp/print"));
    let _ = r.cables[0].kill();
    let _ = r.cables[0].wait();
    converged(&mut r, 10).expect("no failover in the RSTP ring");
}

/// 802.1D-2004 §9.3.3, written out here rather than with the switch's code.
fn std_rst_bpdu(flags: u8, root: [u8; 8], cost: u32, bridge: [u8; 8], port: u16) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x77];
    f.extend_from_slice(&39u16.to_be_bytes());
    f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 2, 2, flags]);
    f.extend_from_slice(&root);
    f.extend_from_slice(&cost.to_be_bytes());
    f.extend_from_slice(&bridge);
    f.extend_from_slice(&port.to_be_bytes());
    // message age 0, max age 20 s, hello 2 s, forward delay 15 s (1/256 s)
    for t in [0u16, 20 * 256, 2 * 256, 15 * 256] {
        f.extend_from_slice(&t.to_be_bytes());
    }
    f.push(0);
    f
}

/// A standard bridge's BPDU as read by the test: (role bits, flags).
fn std_role(f: &[u8]) -> Option<(u8, u8)> {
    (f.len() >= 53
        && f[..6] == [0x01, 0x80, 0xc2, 0, 0, 0]
        && f[12..14] == 39u16.to_be_bytes()
        && f[14..21] == [0x42, 0x42, 0x03, 0, 0, 2, 2]
        && f[52] == 0)
        .then(|| (f[21] & 0x0c, f[21]))
}

#[test]
fn a_standard_rstp_bridge_gets_a_standard_answer() {
    let dir = TempDir::new("rstp-peer");
    let sw = Switch::start(
        Impl::Ours,
        &dir,
        "sw",
        &["-F", "--rstp", "--macaddr=00:ff:00:00:00:01"],
    );
    let peer = Client::connect(&sw.ctl, vde::core::PortRequest::Any, "bridge").unwrap();
    let host = Client::connect(&sw.ctl, vde::core::PortRequest::Any, "host").unwrap();
    // before anything is heard the switch is root: designated BPDUs, with
    // the standard layout, untagged, hello 2 s
    let first = wait_bpdu(&peer, |r, _, _| r == 0x0c).expect("a designated RST BPDU");
    assert_eq!(&first[48..50], &[0x02, 0x00], "hello time 2 s in 1/256 s");
    // a superior standard bridge proposes on its designated port
    let root = [0x00, 0x00, 0x02, 0, 0, 0, 0, 0x77];
    let proposal = std_rst_bpdu(0x0e, root, 0, root, 0x8001);
    let mut answer = None;
    for _ in 0..20 {
        peer.send(&proposal);
        answer = wait_bpdu(&peer, |r, f, _| r == 0x08 && f & 0x40 != 0);
        if answer.is_some() {
            break;
        }
    }
    let answer = answer.expect("our port became Root and agreed, in standard role bits");
    assert_eq!(
        &answer[22..30],
        &root,
        "it took the standard bridge as root"
    );
    assert_eq!(
        answer[21] & 0x30,
        0x30,
        "the root port forwards (learning + forwarding)"
    );
    assert_eq!(answer[21] & 0x02, 0, "a root port does not propose");
    let print = sw.cmd("fstp/print");
    assert!(print.contains("role=Root"), "{print}");
    // the host port is designated, in standard bits, and never says Root
    // the standard bridge keeps sending hellos (now forwarding, agreed)
    peer.send(&std_rst_bpdu(0x7c, root, 0, root, 0x8001));
    let d = wait_bpdu(&host, |r, _, f| r == 0x0c && f[22..30] == root)
        .expect("a designated BPDU for the new root on the host port");
    assert_eq!(&d[22..30], &root, "the host port relays the new root");
    assert_eq!(
        &d[30..34],
        &20_000_000u32.to_be_bytes(),
        "at one hop's cost"
    );
}

/// The next BPDU in the standard layout on `c` that `want` accepts (others
/// are skipped), within 3 s.
fn wait_bpdu(c: &Client, want: impl Fn(u8, u8, &[u8]) -> bool) -> Option<Vec<u8>> {
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Some(f) = c.recv() {
            if let Some((role, flags)) = std_role(&f) {
                if want(role, flags, &f) {
                    return Some(f);
                }
            }
        }
    }
    None
}
