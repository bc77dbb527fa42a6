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
    let dir = TempDir::new("ring");
    let sws: Vec<Switch> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let mac = format!("--macaddr=00:ff:00:00:00:{:02x}", i + 1);
            Switch::start(k, &dir, &format!("s{i}"), &["-F", &mac])
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
