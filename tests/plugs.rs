//! Our vde_plug and its locators against the real C tools, both ways:
//! our plug on the C switch, the C dpipe driving our plug, udp:// between
//! our plug and the C plug, and bad input on the stream.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use vde::core::PortRequest;

/// Checks that frames cross between two stream plugs both ways.
fn exchange(a: &mut Plug, b: &mut Plug, what: &str) {
    for (i, len) in [14usize, 60, 1514].into_iter().enumerate() {
        a.send(&frame(BCAST, mac(1), len, i as u8));
        assert_eq!(
            b.recv(3000),
            Some(frame(BCAST, mac(1), len, i as u8)),
            "{what}: broadcast {len}"
        );
        b.send(&frame(mac(1), mac(2), len, 50 + i as u8));
        assert_eq!(
            a.recv(3000),
            Some(frame(mac(1), mac(2), len, 50 + i as u8)),
            "{what}: unicast {len}"
        );
    }
}

#[test]
fn our_plug_on_the_c_switch_and_on_ours() {
    if !have("vde_switch") {
        return;
    }
    for kind in [Impl::C, Impl::Ours] {
        let dir = TempDir::new("ourplug");
        let sw = Switch::start(kind, &dir, "sw", &[]);
        let ctl = sw.ctl.display().to_string();
        let mut a = Plug::ours(&[&ctl]);
        let mut b = Plug::ours(&["-D", "second", &format!("vde://{ctl}[5]")]);
        assert!(
            wait_for(5, || sw.cmd("port/print").matches("ACTIVE").count() == 2),
            "{kind:?}"
        );
        let print = sw.cmd("port/print");
        assert!(print.contains("Port 0005"), "{kind:?}: {print}");
        assert!(
            print.contains(": second user=root pid="),
            "{kind:?}: {print}"
        );
        assert!(
            print.contains(": vdeplug: user=root pid="),
            "{kind:?}: {print}"
        );
        exchange(&mut a, &mut b, &format!("{kind:?}"));
        // the plug unlinks its own socket after the handshake
        let names: Vec<String> = std::fs::read_dir(&sw.ctl)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "{kind:?}: {names:?}"
        );
    }
}

#[test]
fn plug_exits_when_the_switch_goes_away() {
    let dir = TempDir::new("hangup");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let watcher = Client::connect(&sw.ctl, PortRequest::Any, "watcher").unwrap();
    let mut p = Plug::ours(&[sw.ctl.to_str().unwrap()]);
    // The port shows ACTIVE as soon as the switch has answered, before the
    // plug has connected to its data socket: a shutdown in that window is a
    // failed open (exit 1, as libvdeplug's). The plug reads its stdin only
    // once the open is complete, so a frame reaching the switch says that
    // the plug is attached.
    let hello = frame(BCAST, mac(7), 60, 7);
    p.send(&hello);
    assert!(
        wait_for(30, || watcher.recv().is_some_and(|f| f == hello)),
        "the plug's frame never reached the switch"
    );
    sw.mgmt().cmd("shutdown");
    assert!(
        wait_for(
            30,
            || matches!(p.child.try_wait(), Ok(Some(s)) if s.success())
        ),
        "vde_plug did not exit 0"
    );
}

#[test]
fn c_dpipe_drives_our_plugs_between_two_c_switches() {
    if !have("dpipe") || !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("cdpipe");
    let s1 = Switch::start(Impl::C, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::C, &dir, "s2", &[]);
    let mut cable = Command::new("dpipe")
        .args([
            OUR_PLUG,
            s1.ctl.to_str().unwrap(),
            "=",
            OUR_PLUG,
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
    exchange(&mut a, &mut b, "C dpipe + our vde_plug");
    let _ = cable.kill();
    let _ = cable.wait();
}

#[test]
fn two_locator_cable_and_cmd_scheme() {
    if !have("vde_switch") || !have("vde_plug") {
        return;
    }
    let dir = TempDir::new("twovnl");
    let s1 = Switch::start(Impl::C, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let s3 = Switch::start(Impl::C, &dir, "s3", &[]);
    let (c1, c2, c3) = (
        s1.ctl.display().to_string(),
        s2.ctl.display().to_string(),
        s3.ctl.display().to_string(),
    );
    // s1 -- our two-VNL cable -- s2 -- cmd://(C vde_plug) -- s3
    let mut cable = Command::new(OUR_PLUG).args([&c1, &c2]).spawn().unwrap();
    let mut cmd = Command::new(OUR_PLUG)
        .args([&c2, &format!("cmd://vde_plug -D via-cmd {c3}")])
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s3.cmd("port/print").contains("via-cmd")));
    let mut a = Plug::start(&[&c1]);
    let mut b = Plug::start(&[&c3]);
    assert!(wait_for(5, || s1
        .cmd("port/print")
        .matches("ACTIVE")
        .count()
        == 2
        && s3.cmd("port/print").matches("ACTIVE").count() == 2));
    exchange(&mut a, &mut b, "C - ours - C");
    for c in [&mut cable, &mut cmd] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn udp_between_our_plug_and_the_c_plug() {
    if !have("vde_plug") {
        return;
    }
    let dir = TempDir::new("udp");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let (p1, p2) = (free_udp_port(), free_udp_port());
    let mut ours = Command::new(OUR_PLUG)
        .args([
            s1.ctl.to_str().unwrap(),
            &format!("udp://127.0.0.1:{p1}->127.0.0.1:{p2}"),
        ])
        .spawn()
        .unwrap();
    let mut theirs = Command::new("vde_plug")
        .args([
            s2.ctl.to_str().unwrap(),
            &format!("udp://127.0.0.1:{p2}->127.0.0.1:{p1}"),
        ])
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s1.cmd("port/print").contains("ACTIVE")
        && s2.cmd("port/print").contains("ACTIVE")));
    let mut a = Plug::ours(&[s1.ctl.to_str().unwrap()]);
    let mut b = Plug::start(&[s2.ctl.to_str().unwrap()]);
    assert!(wait_for(5, || active(&s1) == 2 && active(&s2) == 2));
    exchange(&mut a, &mut b, "udp ours <-> C");
    // garbage datagrams at our udp end do not break it
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in [0usize, 1, 13, 3000] {
        let _ = junk.send_to(&vec![0x55; n], ("127.0.0.1", p1));
    }
    exchange(&mut a, &mut b, "udp after junk");
    for c in [&mut ours, &mut theirs] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bad_stream_input_is_dropped_and_the_plug_goes_on() {
    let dir = TempDir::new("badstream");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mut a = Plug::ours(&[sw.ctl.to_str().unwrap()]);
    let mut b = Plug::ours(&[sw.ctl.to_str().unwrap()]);
    assert!(wait_for(5, || sw
        .cmd("port/print")
        .matches("ACTIVE")
        .count()
        == 2));
    // a zero-length record is skipped; a length over 9236 drops that read
    a.send(&[]);
    let stdin = a.stdin_mut();
    stdin.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.drain(300), Vec::<Vec<u8>>::new());
    exchange(&mut a, &mut b, "after a length error");
    // a truncated record at end of input: the plug exits 0
    let stdin = a.stdin_mut();
    stdin.write_all(&[0, 60, 1, 2]).unwrap();
    a.close_stdin();
    assert!(wait_for(
        5,
        || matches!(a.child.try_wait(), Ok(Some(s)) if s.success())
    ));
}

#[test]
fn bad_locators_get_clear_errors() {
    for (vnl, want) in [
        ("bogus://x", "unknown VNL scheme \"bogus\""),
        ("/nonexistent/sw", "vde_open /nonexistent/sw"),
        ("/tmp/sw[mode=9x]", "mode"),
        ("udp://5000", "expected [SRCADDR:]SRCPORT->DSTADDR:DSTPORT"),
        ("/tmp/sw[bogus=1]", "unknown key: bogus"),
    ] {
        let out = Command::new(OUR_PLUG)
            .arg(vnl)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{vnl}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{vnl}: {err}");
    }
}

#[test]
fn switch_and_hub_nodes_joined_by_the_c_plug() {
    if !have("vde_plug") {
        return;
    }
    for scheme in ["switch", "hub"] {
        let dir = TempDir::new("node");
        let node = dir.path("node");
        // the node process's own port is its stdin/stdout
        let mut host = Plug::ours(&[&format!("{scheme}://{}[mode=0666]", node.display())]);
        assert!(wait_for(5, || node.join("ctl").exists()), "{scheme}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&node).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o7777,
            0o2777,
            "{scheme}: directory mode from mode=0666"
        );
        let mut a = Plug::start(&[node.to_str().unwrap()]);
        let mut b = Plug::start(&[&format!("vde://{}", node.display())]);
        std::thread::sleep(Duration::from_millis(300));
        exchange(&mut a, &mut b, scheme);
        // the host port sees broadcasts too
        let _ = host.drain(200);
        a.send(&frame(BCAST, mac(9), 60, 9));
        assert_eq!(
            host.recv(2000),
            Some(frame(BCAST, mac(9), 60, 9)),
            "{scheme}: host port"
        );
        let _ = b.drain(200);
        host.send(&frame(BCAST, mac(8), 60, 8));
        assert_eq!(
            a.recv(2000),
            Some(frame(BCAST, mac(8), 60, 8)),
            "{scheme}: from the host port"
        );
        // the node ends with its process and removes its directory
        host.close_stdin();
        assert!(
            wait_for(5, || !node.exists()),
            "{scheme}: node directory left behind"
        );
        // a second node on a live node's path is refused
        let _ = (a, b);
    }
}

#[test]
fn ptp_links_our_plug_and_the_c_plug() {
    if !have("vde_plug") {
        return;
    }
    // ours first then C, and C first then ours
    for (first, second) in [(OUR_PLUG, "vde_plug"), ("vde_plug", OUR_PLUG)] {
        let dir = TempDir::new("ptp");
        let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
        let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
        let link = format!("ptp://{}", dir.path("link").display());
        let mut p1 = Command::new(first)
            .args([s1.ctl.to_str().unwrap(), &link])
            .spawn()
            .unwrap();
        assert!(wait_for(5, || dir.path("link").exists()));
        let mut p2 = Command::new(second)
            .args([s2.ctl.to_str().unwrap(), &link])
            .spawn()
            .unwrap();
        assert!(wait_for(5, || active(&s1) == 1 && active(&s2) == 1));
        let mut a = Plug::ours(&[s1.ctl.to_str().unwrap()]);
        let mut b = Plug::start(&[s2.ctl.to_str().unwrap()]);
        assert!(wait_for(5, || active(&s1) == 2 && active(&s2) == 2));
        // the first peer learns where to send from the second's first frame
        b.send(&frame(BCAST, mac(2), 60, 0));
        assert!(
            a.recv(3000).is_some(),
            "{first} then {second}: second -> first"
        );
        exchange(&mut a, &mut b, &format!("ptp {first} then {second}"));
        for p in [&mut p1, &mut p2] {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

#[test]
fn sigterm_ends_a_plug_cleanly() {
    let dir = TempDir::new("sigterm");
    let node = dir.path("node");
    let mut p = Plug::ours(&[&format!("switch://{}", node.display())]);
    assert!(wait_for(5, || node.join("ctl").exists()));
    assert!(Command::new("kill")
        .arg(p.child.id().to_string())
        .status()
        .unwrap()
        .success());
    assert!(
        wait_for(
            5,
            || matches!(p.child.try_wait(), Ok(Some(s)) if s.success())
        ),
        "exit 0 on SIGTERM"
    );
    assert!(!node.exists(), "the node directory is removed on SIGTERM");
}

#[test]
fn help_lists_the_schemes_with_an_example_each() {
    let out = Command::new(OUR_PLUG).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in vde::vnl::SCHEMES {
        assert!(
            help.contains(&format!("{}://", s.name)) && help.contains(s.example),
            "{}: {help}",
            s.name
        );
    }
    assert!(help.contains("Examples:"), "{help}");
    // vde_plug2tap's -s shows where the default switch really is
    let out = Command::new(env!("CARGO_BIN_EXE_vde_plug2tap"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.contains("[default: \"\"]"), "{help}");
    assert!(help.contains("/tmp/vde.ctl]"), "{help}");
}
