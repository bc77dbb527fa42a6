//! VLANs across a tagged trunk between our switch and the C switch, both
//! directions: access ports in VLAN 10 and 20 on each side, isolation, and
//! the 802.1Q tag as the C switch writes and reads it.

mod common;

use common::*;
use std::process::Command;
use vde::core::PortRequest;

fn setup(sw: &Switch) -> (Client, Client) {
    for c in [
        "vlan/create 10",
        "vlan/create 20",
        "port/create 5",
        "vlan/addport 10 5",
        "vlan/addport 20 5",
    ] {
        assert_eq!(sw.cmd(c), "1000 Success\n", "{c} on {:?}", sw.kind);
    }
    let a = Client::connect(&sw.ctl, PortRequest::Port(1), "vlan10").unwrap();
    let b = Client::connect(&sw.ctl, PortRequest::Port(2), "vlan20").unwrap();
    assert_eq!(sw.cmd("port/setvlan 1 10"), "1000 Success\n");
    assert_eq!(sw.cmd("port/setvlan 2 20"), "1000 Success\n");
    (a, b)
}

#[test]
fn trunk_between_our_switch_and_the_c_switch() {
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("vlan");
    let ours = Switch::start(Impl::Ours, &dir, "ours", &[]);
    let c = Switch::start(Impl::C, &dir, "c", &[]);
    let (a10, a20) = setup(&ours);
    let (c10, c20) = setup(&c);
    // a tagged observer on the C side, member of VLAN 10 only
    assert_eq!(c.cmd("port/create 6"), "1000 Success\n");
    assert_eq!(c.cmd("vlan/addport 10 6"), "1000 Success\n");
    let tap = Client::connect(&c.ctl, PortRequest::Port(6), "trunk-observer").unwrap();
    assert_eq!(c.cmd("port/setvlan 6 4095"), "1000 Success\n");
    let mut cable = Command::new(OUR_PLUG)
        .args([
            &format!("{}[5]", ours.ctl.display()),
            &format!("{}[5]", c.ctl.display()),
        ])
        .spawn()
        .unwrap();
    assert!(wait_for(5, || ours.cmd("port/print 5").contains("ACTIVE")
        && c.cmd("port/print 5").contains("ACTIVE")));
    std::thread::sleep(std::time::Duration::from_millis(200));

    // ours VLAN 10 -> C VLAN 10 (untagged), tagged on the C trunk observer
    let f = frame(BCAST, mac(1), 60, 1);
    a10.send(&f);
    assert_eq!(c10.recv(), Some(f.clone()), "ours->C VLAN 10");
    let mut tagged = f[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    tagged.extend_from_slice(&f[12..]);
    assert_eq!(tap.recv(), Some(tagged), "the trunk carries VID 10, PCP 0");
    assert_eq!(c20.recv(), None, "VLAN 20 on C saw VLAN 10");
    assert_eq!(a20.recv(), None, "VLAN 20 on ours saw VLAN 10");

    // C VLAN 20 -> ours VLAN 20, isolated from VLAN 10 and the observer
    let g = frame(BCAST, mac(2), 100, 2);
    c20.send(&g);
    assert_eq!(a20.recv(), Some(g), "C->ours VLAN 20");
    assert_eq!(a10.recv(), None);
    assert_eq!(c10.recv(), None);
    assert_eq!(tap.recv(), None, "VLAN 20 reached a VLAN 10 trunk member");

    // a tagged frame with priority bits from the C trunk observer keeps
    // them through the trunk to ours' VLAN 10 access port (stripped there)
    let mut pcp = frame(BCAST, mac(3), 64, 3)[..12].to_vec();
    pcp.extend_from_slice(&[0x81, 0x00, 0xa0, 0x0a, 0x08, 0x00]);
    pcp.resize(64, 3);
    tap.send(&pcp);
    let got = a10.recv().expect("VLAN 10 frame from the C trunk");
    assert_eq!(
        &got[12..14],
        &[0x08, 0x00],
        "tag stripped on the access port"
    );
    assert_eq!(got.len(), 60);
    let _ = cable.kill();
    let _ = cable.wait();
}
