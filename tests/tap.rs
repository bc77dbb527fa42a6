//! Tap interfaces: `vde_switch -t`, `tap://` and `vde_plug2tap`, with
//! kernel IP traffic between two network namespaces made by the test,
//! through two of our switches and a cable.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// Moves a tap interface into a namespace and gives it an address.
fn place(ns: &NetNs, tap: &str, addr: &str) {
    sh(&format!("ip link set {tap} netns {}", ns.0));
    ns.sh(&format!(
        "ip addr add {addr}/24 dev {tap} && ip link set {tap} up"
    ));
}

#[test]
fn ping_between_namespaces_through_two_switches() {
    if !is_root() || !have("ip") || !have("ping") {
        return;
    }
    let dir = TempDir::new("tap");
    let id = std::process::id() % 100_000;
    let (ta, tb) = (format!("vta{id}"), format!("vtb{id}"));
    // switch 1 owns tap A itself (-t); switch 2 gets tap B from vde_plug2tap
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &["-t", &ta]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let p1 = s1.cmd("port/print");
    assert!(p1.contains(&format!("module tuntap      : {ta}")), "{p1}");
    let mut plug2tap = Command::new(env!("CARGO_BIN_EXE_vde_plug2tap"))
        .args(["-s", s2.ctl.to_str().unwrap(), &tb])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || s2
        .cmd("port/print")
        .contains("vde_plug2tap: user=")));
    let mut cable = Command::new(OUR_PLUG)
        .args([s1.ctl.to_str().unwrap(), s2.ctl.to_str().unwrap()])
        .spawn()
        .unwrap();
    let (na, nb) = (NetNs::new("a"), NetNs::new("b"));
    place(&na, &ta, "10.213.0.1");
    place(&nb, &tb, "10.213.0.2");
    let ok = na.ok("ping -c 3 -i 0.2 -W 2 10.213.0.2") && nb.ok("ping -c 3 -i 0.2 -W 2 10.213.0.1");
    let stats = s1.cmd("port/print");
    for c in [&mut cable, &mut plug2tap] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(ok, "no ping through switch-cable-switch: {stats}");
    // the switch learned the namespace's MAC on the tap port
    assert!(stats.contains(" IN:  pkts"), "{stats}");
}

#[test]
fn tap_scheme_in_a_namespace_with_a_c_switch() {
    if !is_root() || !have("ip") || !have("ping") || !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("tapc");
    let id = std::process::id() % 100_000;
    let (ta, tb) = (format!("vtc{id}"), format!("vtd{id}"));
    // the C switch with two of our tap:// plugs on it
    let sw = Switch::start(Impl::C, &dir, "c", &[]);
    let mut plugs: Vec<_> = [&ta, &tb]
        .iter()
        .map(|t| {
            Command::new(OUR_PLUG)
                .args([sw.ctl.to_str().unwrap(), &format!("tap://{t}")])
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    assert!(wait_for(5, || sw
        .cmd("port/print")
        .matches("ACTIVE")
        .count()
        == 2));
    assert!(wait_for(5, || sh(&format!(
        "ip link show {ta} && ip link show {tb}; true"
    ))
    .contains(&tb)));
    let (na, nb) = (NetNs::new("c"), NetNs::new("d"));
    place(&na, &ta, "10.214.0.1");
    place(&nb, &tb, "10.214.0.2");
    let ok = na.ok("ping -c 3 -i 0.2 -W 2 10.214.0.2");
    for p in plugs.iter_mut() {
        let _ = p.kill();
        let _ = p.wait();
    }
    assert!(ok, "no ping through tap:// and the C switch");
}
