//! A loop through a Linux kernel bridge with STP on: our switch (with -F)
//! has two tap ports enslaved to the same kernel bridge in a namespace the
//! test makes. Our switch hears the bridge's 802.1D configuration BPDUs,
//! blocks one of the two ports, and traffic flows without a storm.

mod common;

use common::*;
use std::time::Duration;

fn rx_packets(ns: &NetNs, dev: &str) -> u64 {
    ns.sh(&format!("cat /sys/class/net/{dev}/statistics/rx_packets"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn loop_through_a_kernel_bridge_is_cut() {
    if !is_root() || !have("ip") || !have("ping") {
        return;
    }
    let dir = TempDir::new("kbr");
    let id = std::process::id() % 100_000;
    let (ka, kb, kc) = (format!("kba{id}"), format!("kbb{id}"), format!("kbc{id}"));
    let sw = Switch::start(
        Impl::Ours,
        &dir,
        "sw",
        &["-F", "-t", &ka, "-t", &kb, "-t", &kc],
    );
    let (br, host) = (NetNs::new("br"), NetNs::new("host"));
    for t in [&ka, &kb] {
        sh(&format!("ip link set {t} netns {}", br.0));
    }
    sh(&format!("ip link set {kc} netns {}", host.0));
    // the kernel bridge is the root (priority 0), 2 s forward delay
    br.sh(&format!(
        "ip link add br0 type bridge stp_state 1 priority 0 forward_delay 200 hello_time 100 && \
         ip link set {ka} master br0 && ip link set {kb} master br0 && \
         ip link set {ka} up && ip link set {kb} up && \
         ip addr add 10.215.0.1/24 dev br0 && ip link set br0 up"
    ));
    host.sh(&format!(
        "ip addr add 10.215.0.2/24 dev {kc} && ip link set {kc} up"
    ));
    // our side blocks exactly one of the two bridge-facing ports
    let one_blocked = wait_for(15, || {
        sw.cmd("fstp/print")
            .matches("role=Alternate/Backup")
            .count()
            == 1
    });
    let print = sw.cmd("fstp/print");
    assert!(one_blocked, "the loop was not cut on our side:\n{print}");
    assert!(
        print.contains("++ root 00:00:"),
        "the kernel bridge (priority 0) is not the root:\n{print}"
    );
    // traffic flows once the kernel's ports forward (listening + learning)
    let reached = wait_for(20, || host.ok("ping -c 1 -W 1 10.215.0.1"));
    assert!(
        reached,
        "no ping through the bridge loop:\n{}",
        sw.cmd("fstp/print")
    );
    assert!(host.ok("ping -c 3 -i 0.2 -W 2 10.215.0.1"));
    // and no storm: the host sees only a trickle while idle
    let before = rx_packets(&host, &kc);
    std::thread::sleep(Duration::from_secs(2));
    let seen = rx_packets(&host, &kc) - before;
    assert!(seen < 100, "{seen} packets in 2 s of idle: a storm");
}
