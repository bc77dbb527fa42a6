//! Loops through a Linux kernel bridge with STP on (802.1D): our switch
//! (with -F) has two tap ports enslaved to the same kernel bridge in a
//! namespace the test makes. Our switch hears the bridge's configuration
//! BPDUs and answers in that format; whichever side is the root, one of the
//! four ports of the loop blocks, traffic flows, and nothing storms.

mod common;

use common::*;
use std::time::Duration;

fn rx_packets(ns: &NetNs, dev: &str) -> u64 {
    ns.sh(&format!("cat /sys/class/net/{dev}/statistics/rx_packets"))
        .trim()
        .parse()
        .unwrap()
}

/// The kernel bridge is the root (priority 0): our side blocks.
#[test]
fn loop_through_a_kernel_bridge_is_cut() {
    kernel_bridge_loop(true);
}

/// Our switch is the root: the kernel bridge takes our 802.1D BPDUs and
/// blocks one of its ports; ours forward after listening and learning.
#[test]
fn kernel_bridge_follows_our_root() {
    kernel_bridge_loop(false);
}

fn kernel_bridge_loop(kernel_root: bool) {
    if !is_root() || !have("ip") || !have("ping") || !have("bridge") {
        return;
    }
    let dir = TempDir::new("kbr");
    let id = std::process::id() % 10_000;
    let tag = if kernel_root { "k" } else { "o" };
    let (ka, kb, kc) = (
        format!("kb{tag}a{id}"),
        format!("kb{tag}b{id}"),
        format!("kb{tag}c{id}"),
    );
    let prio = if kernel_root { "0x8000" } else { "0" };
    let sw = Switch::start(
        Impl::Ours,
        &dir,
        "sw",
        &["-F", "--priority", prio, "-t", &ka, "-t", &kb, "-t", &kc],
    );
    let (br, host) = (NetNs::new("br"), NetNs::new("host"));
    for t in [&ka, &kb] {
        sh(&format!("ip link set {t} netns {}", br.0));
    }
    sh(&format!("ip link set {kc} netns {}", host.0));
    let kprio = if kernel_root { 0 } else { 65535 };
    br.sh(&format!(
        "ip link add br0 type bridge stp_state 1 priority {kprio} forward_delay 200 hello_time 100 && \
         ip link set {ka} master br0 && ip link set {kb} master br0 && \
         ip link set {ka} up && ip link set {kb} up && \
         ip addr add 10.215.0.1/24 dev br0 && ip link set br0 up"
    ));
    host.sh(&format!(
        "ip addr add 10.215.0.2/24 dev {kc} && ip link set {kc} up"
    ));
    if kernel_root {
        // our side blocks exactly one of the two bridge-facing ports
        let one = wait_for(15, || {
            sw.cmd("fstp/print")
                .matches("role=Alternate/Backup")
                .count()
                == 1
        });
        let print = sw.cmd("fstp/print");
        assert!(one, "the loop was not cut on our side:\n{print}");
        assert!(
            print.contains("++ root 00:00:"),
            "the kernel bridge is not the root:\n{print}"
        );
    } else {
        // the kernel blocks one of its two ports
        let one = wait_for(15, || {
            br.sh("bridge link show").matches("state blocking").count() == 1
        });
        assert!(
            one,
            "the kernel bridge did not block:\n{}\n{}",
            br.sh("bridge link show"),
            sw.cmd("fstp/print")
        );
        assert!(sw.cmd("fstp/print").contains("ROOTSWITCH"));
    }
    // traffic flows once the ports forward (listening + learning)
    let reached = wait_for(25, || host.ok("ping -c 1 -W 1 10.215.0.1"));
    assert!(
        reached,
        "no ping through the bridge loop:\n{}\n{}",
        sw.cmd("fstp/print"),
        br.sh("bridge link show")
    );
    assert!(host.ok("ping -c 3 -i 0.2 -W 2 10.215.0.1"));
    // and no storm: the host sees only a trickle while idle
    let before = rx_packets(&host, &kc);
    std::thread::sleep(Duration::from_secs(2));
    let seen = rx_packets(&host, &kc) - before;
    assert!(seen < 100, "{seen} packets in 2 s of idle: a storm");
}
