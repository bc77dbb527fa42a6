//! Real VDE clients against our switch: the Debian vde_plug (libvdeplug4),
//! QEMU's -netdev vde, and our own protocol client (first checked against
//! the Debian C vde_switch, so it is a faithful stand-in).

mod common;

use common::*;
use std::process::{Command, Stdio};
use vde::core::PortRequest;

/// Our raw client works against the real C switch: same handshake, same
/// data plane. This is what lets the other tests use it as a peer.
#[test]
fn rust_client_against_the_c_switch() {
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("cclient");
    let sw = Switch::start(Impl::C, &dir, "c", &[]);
    let a = Client::connect(&sw.ctl, PortRequest::Any, "A").unwrap();
    let b = Client::connect(&sw.ctl, PortRequest::Port(7), "B").unwrap();
    assert_eq!((a.port(), b.port()), (1, 7));
    a.send(&frame(BCAST, mac(1), 60, 1));
    assert_eq!(b.recv().unwrap(), frame(BCAST, mac(1), 60, 1));
    b.send(&frame(mac(1), mac(2), 100, 2));
    assert_eq!(a.recv().unwrap(), frame(mac(1), mac(2), 100, 2));
    let p = sw.cmd("port/print");
    assert!(p.contains("Port 0007") && p.contains(": B"), "{p}");
}

/// Runs the same exchange through either switch, so one test body checks
/// both and compares.
fn plug_exchange(kind: Impl) -> (String, Vec<Vec<u8>>) {
    let dir = TempDir::new("plug");
    let sw = Switch::start(kind, &dir, "sw", &[]);
    let ctl = sw.ctl.display().to_string();
    let mut p1 = Plug::start(&["-D", "plug-one", &ctl]);
    let mut p2 = Plug::start(&["-D", "plug-two", &format!("{ctl}[7]")]);
    assert!(wait_for(5, || sw
        .cmd("port/print")
        .matches("plug-")
        .count()
        == 2));
    // broadcast one way, unicast back, several sizes
    let mut got = Vec::new();
    for (i, len) in [14usize, 60, 64, 1000, 1514, 1518].into_iter().enumerate() {
        p1.send(&frame(BCAST, mac(1), len, i as u8));
        got.push(
            p2.recv(2000)
                .unwrap_or_else(|| panic!("{kind:?}: broadcast of {len} bytes not delivered")),
        );
        p2.send(&frame(mac(1), mac(2), len, 100 + i as u8));
        got.push(
            p1.recv(2000)
                .unwrap_or_else(|| panic!("{kind:?}: unicast of {len} bytes not delivered")),
        );
    }
    // nothing else arrives (no duplicates, no reflection)
    assert!(p1.drain(200).is_empty() && p2.drain(200).is_empty());
    let print = sw.cmd("port/print");
    (print, got)
}

#[test]
fn debian_vde_plug_through_our_switch() {
    if !have("vde_plug") {
        return;
    }
    let (print, got) = plug_exchange(Impl::Ours);
    for (i, len) in [14usize, 60, 64, 1000, 1514, 1518].into_iter().enumerate() {
        assert_eq!(got[2 * i], frame(BCAST, mac(1), len, i as u8));
        assert_eq!(got[2 * i + 1], frame(mac(1), mac(2), len, 100 + i as u8));
    }
    assert!(
        print.contains("Port 0007 untagged_vlan=0000 ACTIVE - Unnamed Allocatable"),
        "{print}"
    );
    assert!(
        print.contains("module unix prog   : plug-two user=root pid="),
        "{print}"
    );
    // port 1 received 6 frames of 14+60+64+1000+1514+1518 bytes
    assert!(
        print.contains(" IN:  pkts          6          bytes                 4170"),
        "{print}"
    );
}

#[test]
fn same_frames_and_counters_as_the_c_switch() {
    if !have("vde_plug") || !have("vde_switch") {
        return;
    }
    let (ours_print, ours) = plug_exchange(Impl::Ours);
    let (c_print, c) = plug_exchange(Impl::C);
    assert_eq!(ours, c, "frames delivered differ");
    let counters = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("pkts"))
            .map(String::from)
            .collect()
    };
    assert_eq!(counters(&ours_print), counters(&c_print));
}

#[test]
fn vde_plug_cable_between_two_of_our_switches() {
    if !have("vde_plug") {
        return;
    }
    let dir = TempDir::new("cable");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    // vdeplug4's two-VNL form joins the switches with a cable
    let mut cable = Command::new("vde_plug")
        .arg(s1.ctl.display().to_string())
        .arg(s2.ctl.display().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s1.cmd("port/print").contains("ACTIVE")
        && s2.cmd("port/print").contains("ACTIVE")));
    let a = Client::connect(&s1.ctl, PortRequest::Any, "a").unwrap();
    let b = Client::connect(&s2.ctl, PortRequest::Any, "b").unwrap();
    a.send(&frame(BCAST, mac(1), 60, 9));
    assert_eq!(b.recv().unwrap(), frame(BCAST, mac(1), 60, 9));
    b.send(&frame(mac(1), mac(2), 1500, 8));
    assert_eq!(a.recv().unwrap(), frame(mac(1), mac(2), 1500, 8));
    let _ = cable.kill();
    let _ = cable.wait();
}

/// QEMU with only a vde netdev (no guest, no NIC), paused: it attaches
/// to the switch and stays.
fn qemu(netdev: &str) -> std::process::Child {
    Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-netdev",
            netdev,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn qemu_attaches_and_shows_in_port_print() {
    if !have("qemu-system-x86_64") {
        return;
    }
    let dir = TempDir::new("qemu");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mut q = qemu(&format!("vde,id=n0,sock={},port=4", sw.ctl.display()));
    let seen = wait_for(20, || sw.cmd("port/print").contains("QEMU"));
    let print = sw.cmd("port/print");
    let _ = q.kill();
    let _ = q.wait();
    assert!(seen, "QEMU never attached: {print}");
    assert!(
        print.contains("Port 0004 untagged_vlan=0000 ACTIVE"),
        "{print}"
    );
    assert!(
        print.contains("module unix prog   : QEMU user=root pid="),
        "{print}"
    );
    // QEMU gone: its port goes inactive and its data socket is removed
    assert!(wait_for(5, || !sw.cmd("port/print").contains("QEMU")));
    let files: Vec<_> = std::fs::read_dir(&sw.ctl)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("ctl")]);
}

/// QEMU with a real NIC: the guest's frames never come without a guest OS,
/// but the switch's frames must reach QEMU's socket without error: a
/// broadcast injected on another port is counted as sent to QEMU's port.
#[test]
fn qemu_port_receives_broadcasts() {
    if !have("qemu-system-x86_64") {
        return;
    }
    let dir = TempDir::new("qemu2");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mut q = qemu(&format!("vde,id=n0,sock={}", sw.ctl.display()));
    let seen = wait_for(20, || sw.cmd("port/print").contains("QEMU"));
    let a = Client::connect(&sw.ctl, PortRequest::Any, "injector").unwrap();
    for i in 0..5 {
        a.send(&frame(BCAST, mac(1), 60, i));
    }
    let ok = wait_for(5, || {
        sw.cmd("port/print 1")
            .contains(" OUT: pkts          5          bytes                  300")
    });
    let stats = sw.cmd("stats");
    let _ = q.kill();
    let _ = q.wait();
    assert!(seen && ok, "{}", sw.cmd("port/print"));
    assert!(stats.contains("drop tx_error 0"), "{stats}");
}

/// unixcmd (libvdemgmt's scripted client) gets the same answer from our
/// switch as from the C one.
#[test]
fn unixcmd_reads_our_console_like_the_c_one() {
    if !have("unixcmd") || !have("vde_switch") {
        return;
    }
    let run = |kind| {
        let dir = TempDir::new("unixcmd");
        let sw = Switch::start(kind, &dir, "sw", &[]);
        let out = Command::new("unixcmd")
            .args([
                "-s",
                sw.mgmt.to_str().unwrap(),
                "-f",
                "/etc/vde2/vdecmd",
                "port/showinfo",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ours = run(Impl::Ours);
    assert!(ours.contains("Numports=32"), "{ours}");
    assert_eq!(ours, run(Impl::C));
}

/// vdeterm, the interactive client, in a real terminal (tmux): it reads
/// the banner, builds its prompt, runs commands and shows debug lines.
#[test]
fn vdeterm_drives_our_switch_in_a_terminal() {
    if !have("vdeterm") || !have("tmux") {
        return;
    }
    let dir = TempDir::new("vdeterm");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let session = format!("vdet{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .output()
            .unwrap()
    };
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned()
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        "vdeterm",
        sw.mgmt.to_str().unwrap(),
    ]);
    let prompt = format!("vde[{}]:", sw.mgmt.display());
    let ok = wait_for(10, || screen().contains(&prompt));
    if ok {
        tmux(&["send-keys", "-t", &session, "port/showinfo", "Enter"]);
    }
    let shown = ok && wait_for(10, || screen().contains("Numports=32"));
    if shown {
        tmux(&["send-keys", "-t", &session, "debug/add port", "Enter"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        sw.cmd("port/create 6");
    }
    let dbg = shown && wait_for(10, || screen().contains("port/+ 06"));
    let text = screen();
    tmux(&["kill-server"]);
    assert!(ok, "no vdeterm prompt: {text}");
    assert!(shown, "no output: {text}");
    assert!(dbg, "no debug line: {text}");
}

/// BPDUs from the C switch with FSTP on parse with our wire layer, and
/// our emitter writes the same bytes back.
#[test]
fn c_switch_bpdus_round_trip_through_our_wire_layer() {
    use vde::core::bpdu::{port_id, Bpdu, BridgeId, Role};
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("bpdu");
    let sw = Switch::start(
        Impl::C,
        &dir,
        "c",
        &[
            "-F",
            "--macaddr",
            "00:ff:00:00:00:03",
            "--priority",
            "0x1000",
        ],
    );
    let c = Client::connect(&sw.ctl, PortRequest::Port(17), "bpdu").unwrap();
    c.data
        .set_read_timeout(Some(std::time::Duration::from_secs(6)))
        .unwrap();
    let raw = c.recv().expect("no BPDU from the C switch within 6 s");
    let (b, tci) = Bpdu::parse(&raw).unwrap();
    let me = BridgeId::new(0x1000, vde::frame::Mac([0, 0xff, 0, 0, 0, 3]));
    assert_eq!((b.root, b.bridge, b.root_cost, tci), (me, me, 0, None));
    assert_eq!(b.port, port_id(17));
    assert_eq!(Role::from_flags(b.flags), Role::Designated);
    assert_eq!((b.max_age, b.hello, b.forward_delay), (40, 4, 0));
    let mut out = [0u8; 57];
    let n = b.emit(vde::frame::Mac([0, 0xff, 0, 0, 0, 3]), None, &mut out);
    assert_eq!(&out[..n], &raw[..]);
}
