//! Ethernet and 802.1Q frames: the checked view and its fields, the tag
//! operations, and a switch (VLANs, a trunk port, FSTP on or off) taking
//! a sequence of frames on any port and writing every copy it sends with
//! its tag operation, as the IO shell does. Nothing may panic, every copy
//! fits its buffer, and a tag inserted then stripped gives the frame back.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vde::core::{Config, Endpoint, PortRequest, Switch};
use vde::frame::{Frame, TagOp, MAX_FRAME, TAG_LEN};
use vde_fuzz::messages;

fn ep(id: u32) -> Endpoint {
    Endpoint {
        id,
        module: "unix prog",
        descr: format!("fuzz{id}"),
        uid: Some(0),
        gids: vec![],
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let cfg = Config {
        numports: 6,
        fstp: mode & 1 != 0,
        rstp: mode & 2 != 0,
        hub: mode & 4 != 0,
        ..Config::default()
    };
    let mut sw = Switch::new(cfg, t0);
    for id in 1..=5 {
        sw.attach(PortRequest::Any, ep(id)).expect("a free port");
    }
    sw.vlan_create(10).unwrap();
    sw.vlan_create(20).unwrap();
    sw.vlan_addport(10, 3).unwrap();
    sw.vlan_addport(20, 3).unwrap();
    sw.port_setvlan(4, 10).unwrap();
    sw.port_setvlan(5, 20).unwrap();
    let mut buf = vec![0u8; MAX_FRAME + TAG_LEN];
    let mut back = vec![0u8; MAX_FRAME + 2 * TAG_LEN];
    let mut now = t0;
    // At most 64 frames an input, and less than a second between two:
    // every timer event scans the switch's VLANs, and long simulated
    // times would spend the run there instead of on frames.
    for m in messages(rest).take(64) {
        let Some((&p, frame)) = m.split_first() else {
            continue;
        };
        if let Ok(f) = Frame::new_checked(frame) {
            let _ = (f.dst(), f.src(), f.ethertype(), f.is_tagged(), f.len());
            if let Some(tci) = f.tci() {
                assert!(f.is_tagged());
                let _ = tci;
            }
            // a tag inserted and stripped again leaves the frame as it was
            let n = TagOp::Insert(u16::from(p) << 4 | u16::from(p)).apply(frame, &mut buf);
            assert_eq!(n, frame.len() + TAG_LEN);
            let k = TagOp::Strip.apply(&buf[..n], &mut back);
            assert_eq!(&back[..k], frame);
        }
        let port = u32::from(p % 7);
        let outs = sw.ingress(port, frame, now).to_vec();
        for o in outs {
            assert!((1..=6).contains(&o.port));
            let n = o.op.apply(frame, &mut buf);
            assert!(n <= frame.len() + TAG_LEN);
        }
        now += Duration::from_millis(u64::from(p >> 5) * 125);
        while sw.poll_timeout() <= now {
            let t = sw.poll_timeout();
            sw.handle_timeout(t);
        }
        while sw.poll_event().is_some() {}
    }
});
