//! Our wirefilter between real switches: values from the CLI and the
//! management socket, loss/delay/bandwidth/duplication measured within
//! statistical bounds, the console compared with the C wirefilter, and
//! the C dpipe driving it as the middle of a chain.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WF: &str = env!("CARGO_BIN_EXE_wirefilter");

struct Rig {
    _dir: TempDir,
    s1: Switch,
    s2: Switch,
    wf: Child,
    mgmt: std::path::PathBuf,
    a: Plug,
    b: Plug,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.wf.kill();
        let _ = self.wf.wait();
    }
}

/// s1 -- wirefilter ARGS -- s2, with a stream plug on each switch.
fn rig(args: &[&str]) -> Rig {
    let dir = TempDir::new("wf");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let mgmt = dir.path("wf.mgmt");
    let wf = Command::new(WF)
        .arg("-v")
        .arg(format!("{}:{}", s1.ctl.display(), s2.ctl.display()))
        .arg("-M")
        .arg(&mgmt)
        .args(["--seed", "7"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s1
        .cmd("port/print")
        .contains("vde_crosscable")
        && s2.cmd("port/print").contains("vde_crosscable")));
    let a = Plug::ours(&[s1.ctl.to_str().unwrap()]);
    let b = Plug::ours(&[s2.ctl.to_str().unwrap()]);
    assert!(wait_for(5, || s1
        .cmd("port/print")
        .matches("ACTIVE")
        .count()
        == 2
        && s2.cmd("port/print").matches("ACTIVE").count() == 2));
    Rig {
        _dir: dir,
        s1,
        s2,
        wf,
        mgmt,
        a,
        b,
    }
}

/// Sends `n` broadcasts a -> b and counts what arrives.
fn count_through(r: &mut Rig, n: usize, len: usize) -> usize {
    for i in 0..n {
        r.a.send(&frame(BCAST, mac(1), len, i as u8));
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    r.b.drain(500).len()
}

#[test]
fn frames_pass_and_mgmt_controls_loss() {
    let mut r = rig(&[]);
    let mut m = Mgmt::connect_with_prompt(&r.mgmt, "\nVDEwf$ ");
    assert!(m.banner.contains("VDE wirefilter V."), "{}", m.banner);
    r.a.send(&frame(BCAST, mac(1), 100, 1));
    assert_eq!(r.b.recv(2000), Some(frame(BCAST, mac(1), 100, 1)));
    r.b.send(&frame(mac(1), mac(2), 100, 2));
    assert_eq!(r.a.recv(2000), Some(frame(mac(1), mac(2), 100, 2)));
    assert_eq!(m.cmd("loss 100"), "1000 Success\n");
    assert_eq!(count_through(&mut r, 50, 60), 0);
    assert_eq!(m.cmd("loss LR0"), "1000 Success\n");
    let info = m.cmd("showinfo");
    assert!(info.contains("Loss   L->R 0+0U   R->L 100+0U"), "{info}");
    assert_eq!(count_through(&mut r, 50, 60), 50);
    assert_eq!(m.cmd("delay nonsense"), "1022 Invalid argument\n");
    let _ = (&r.s1, &r.s2);
}

#[test]
fn loss_dup_within_statistical_bounds() {
    let mut r = rig(&["-l", "30"]);
    let got = count_through(&mut r, 2000, 60) as f64 / 2000.0;
    assert!(
        (0.64..=0.76).contains(&got),
        "delivered {got} with 30% loss"
    );
    let mut m = Mgmt::connect_with_prompt(&r.mgmt, "\nVDEwf$ ");
    assert_eq!(m.cmd("loss 0"), "1000 Success\n");
    assert_eq!(m.cmd("dup 50"), "1000 Success\n");
    let got = count_through(&mut r, 1000, 60) as f64 / 1000.0;
    assert!(
        (1.8..=2.2).contains(&got),
        "copies per frame {got} with 50% dup"
    );
}

#[test]
fn delay_and_bandwidth_are_felt() {
    let mut r = rig(&["-d", "300"]);
    let t = Instant::now();
    r.a.send(&frame(BCAST, mac(1), 60, 1));
    assert!(r.b.recv(3000).is_some());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let mut m = Mgmt::connect_with_prompt(&r.mgmt, "\nVDEwf$ ");
    assert_eq!(m.cmd("delay 0"), "1000 Success\n");
    // 40 frames of 1000 bytes at 80000 bytes/s: about half a second
    assert_eq!(m.cmd("bandwidth 80000"), "1000 Success\n");
    let t = Instant::now();
    for i in 0..40 {
        r.a.send(&frame(BCAST, mac(1), 1000, i));
    }
    let mut n = 0;
    while n < 40 && r.b.recv(3000).is_some() {
        n += 1;
    }
    let took = t.elapsed();
    assert_eq!(n, 40);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

#[test]
fn console_matches_the_c_wirefilter() {
    if !have("wirefilter") || !have("vde_switch") {
        return;
    }
    let script = [
        "delay 20+5N",
        "loss RL3",
        "mtu 1500",
        "band 1M",
        "showinfo",
        "markov-numnodes 2",
        "markov-name 1,bad",
        "showinfo 1",
        "showcurrent",
        "fifo 0",
        "bogus",
        "load /nonexistent/file",
    ];
    let run = |bin: &str| -> Vec<String> {
        let dir = TempDir::new("wfcmp");
        let s1 = Switch::start(Impl::C, &dir, "s1", &[]);
        let s2 = Switch::start(Impl::C, &dir, "s2", &[]);
        let mgmt = dir.path("wf.mgmt");
        let mut wf = Command::new(bin)
            .arg("-v")
            .arg(format!("{}:{}", s1.ctl.display(), s2.ctl.display()))
            .arg("-M")
            .arg(&mgmt)
            .args(["-d", "10", "-l", "LR5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_for(5, || std::os::unix::net::UnixStream::connect(
            &mgmt
        )
        .is_ok()));
        let mut m = Mgmt::connect_with_prompt(&mgmt, "\nVDEwf$ ");
        let out = script.iter().map(|c| m.cmd(c)).collect();
        let _ = wf.kill();
        let _ = wf.wait();
        out
    };
    let ours = run(WF);
    let theirs = run("wirefilter");
    for ((c, o), t) in script.iter().zip(&ours).zip(&theirs) {
        // deliberate: a value that does not parse is an error here
        if *c == "bogus" || o == t {
            assert_eq!(o, t, "{c}");
            continue;
        }
        panic!("{c}:\nours:\n{o}\nC:\n{t}");
    }
}

#[test]
fn c_dpipe_puts_our_wirefilter_in_the_middle() {
    if !have("dpipe") || !have("vde_plug") {
        return;
    }
    let dir = TempDir::new("wfdpipe");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let mut chain = Command::new("dpipe")
        .args([
            "vde_plug",
            s1.ctl.to_str().unwrap(),
            "=",
            WF,
            "-d",
            "100",
            "=",
            "vde_plug",
            s2.ctl.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s1.cmd("port/print").contains("ACTIVE")
        && s2.cmd("port/print").contains("ACTIVE")));
    let mut a = Plug::start(&[s1.ctl.to_str().unwrap()]);
    let mut b = Plug::start(&[s2.ctl.to_str().unwrap()]);
    assert!(wait_for(5, || active(&s1) == 2 && active(&s2) == 2));
    let t = Instant::now();
    a.send(&frame(BCAST, mac(1), 60, 1));
    assert_eq!(b.recv(3000), Some(frame(BCAST, mac(1), 60, 1)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    b.send(&frame(mac(1), mac(2), 60, 2));
    assert_eq!(
        a.recv(3000),
        Some(frame(mac(1), mac(2), 60, 2)),
        "R->L through ALTERNATE_* fds"
    );
    let _ = chain.kill();
    let _ = chain.wait();
}

#[test]
fn bad_cli_values_are_refused() {
    let out = Command::new(WF)
        .args(["-l", "lots", "-v", "/nonexistent/a:/nonexistent/b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("vde_open /nonexistent/a") || e.contains("bad value for loss"),
        "{e}"
    );
}

/// A child process killed (if still running) when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A wirefilter on pipes (stdin held open) with a management socket.
fn wf_on_pipes(mgmt: &std::path::Path) -> Running {
    Running(
        Command::new(WF)
            .arg("-M")
            .arg(mgmt)
            .env_remove("VDE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits (at most `secs`, a sanity bound) for the child to exit; returns
/// its exit code and its stderr.
fn exit_of(c: &mut Running, secs: u64) -> Option<(Option<i32>, String)> {
    if !wait_for(secs, || c.0.try_wait().unwrap().is_some()) {
        return None;
    }
    let code = c.0.wait().unwrap().code();
    let mut e = String::new();
    if let Some(mut s) = c.0.stderr.take() {
        use std::io::Read;
        s.read_to_string(&mut e).unwrap();
    }
    Some((code, e))
}

#[test]
fn a_second_wirefilter_does_not_take_over_a_live_mgmt_socket() {
    let dir = TempDir::new("wfmgmt");
    let mgmt = dir.path("wf.mgmt");
    let mut first = wf_on_pipes(&mgmt);
    assert!(wait_for(10, || std::os::unix::net::UnixStream::connect(
        &mgmt
    )
    .is_ok()));
    // refused as the C wirefilter refuses it ("mgmt bind Address already
    // in use", exit 1), but the first one's socket stays
    let mut second = wf_on_pipes(&mgmt);
    let (code, err) = exit_of(&mut second, 20).expect("the second wirefilter took over the socket");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("Address already in use") && err.contains(&mgmt.display().to_string()),
        "{err}"
    );
    let m = Mgmt::connect_with_prompt(&mgmt, "\nVDEwf$ ");
    assert!(m.banner.contains("VDE wirefilter"), "{}", m.banner);
    drop(m);
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first one still runs"
    );
    // killed, the first leaves a stale socket, which the next one replaces
    let _ = first.0.kill();
    let _ = first.0.wait();
    assert!(mgmt.exists());
    let _third = wf_on_pipes(&mgmt);
    assert!(wait_for(10, || std::os::unix::net::UnixStream::connect(
        &mgmt
    )
    .is_ok()));
    let m = Mgmt::connect_with_prompt(&mgmt, "\nVDEwf$ ");
    assert!(m.banner.contains("VDE wirefilter"), "{}", m.banner);
}

#[test]
fn the_reason_to_stop_is_logged_by_default() {
    // on pipes: stdin is the L->R input
    let dir = TempDir::new("wfeof");
    let mut wf = wf_on_pipes(&dir.path("m"));
    drop(wf.0.stdin.take());
    let (code, err) = exit_of(&mut wf, 20).expect("wirefilter did not stop at end of stdin");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("end of stdin (LR input)"), "{err:?}");
    // two plugs and the console on stdin
    let mut wf = Running(
        Command::new(WF)
            .args(["null://", "null://"])
            .env_remove("VDE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    drop(wf.0.stdin.take());
    let (code, err) = exit_of(&mut wf, 20).expect("wirefilter did not stop at end of its console");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("end of stdin (the console)"), "{err:?}");
}
