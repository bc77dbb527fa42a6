//! Unit tests of the switch core with a simulated clock.

use super::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts this thread's heap allocations, to check the forwarding path.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator unchanged; the
// thread-local counter does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn forwarding_does_not_allocate() {
    let mut s = Sim::with_ports(8);
    s.sw.vlan_create(10).unwrap();
    s.sw.vlan_addport(10, 3).unwrap();
    s.sw.port_setvlan(4, 10).unwrap();
    let frames: Vec<(PortId, Vec<u8>)> = (0..200u8)
        .map(|i| {
            let p = u32::from(i % 8) + 1;
            match i % 4 {
                0 => (p, frame(Mac::BROADCAST, mac(i), 60)),
                1 => (p, frame(mac(i.wrapping_sub(1)), mac(i), 1500)),
                2 => (3, tagged(Mac::BROADCAST, mac(i), 10, 64)),
                _ => (p, frame(mac(i / 2), mac(i), 14)),
            }
        })
        .collect();
    // warm up (the output list reaches its capacity), then count
    for (p, f) in &frames {
        s.sw.ingress(*p, f, s.now);
    }
    let before = allocs();
    for _ in 0..10 {
        for (p, f) in &frames {
            s.sw.ingress(*p, f, s.now);
        }
    }
    assert_eq!(
        allocs() - before,
        0,
        "heap allocations on the forwarding path"
    );
}

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn frame(dst: Mac, src: Mac, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12] = 0x08;
    f
}

fn tagged(dst: Mac, src: Mac, tci: u16, len: usize) -> Vec<u8> {
    let mut f = frame(dst, src, len);
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    f[14..16].copy_from_slice(&tci.to_be_bytes());
    f[16..18].copy_from_slice(&[0x08, 0x00]);
    f
}

fn ep(id: u32) -> Endpoint {
    Endpoint {
        id,
        module: "unix prog",
        descr: format!("ep{id}"),
        uid: Some(0),
        gids: vec![],
    }
}

struct Sim {
    sw: Switch,
    t0: Instant,
    now: Instant,
}

impl Sim {
    fn new(cfg: Config) -> Self {
        let t0 = Instant::now();
        Sim {
            sw: Switch::new(cfg, t0),
            t0,
            now: t0,
        }
    }

    /// A switch with `n` active ports 1..=n (endpoint id = port * 10).
    fn with_ports(n: u32) -> Self {
        let mut s = Sim::new(Config::default());
        for i in 1..=n {
            assert_eq!(s.sw.attach(PortRequest::Any, ep(i * 10)), Ok(i));
        }
        s
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        while self.sw.poll_timeout() <= self.now {
            let t = self.sw.poll_timeout();
            self.sw.handle_timeout(t);
        }
        self.sw.handle_timeout(self.now);
    }

    fn send(&mut self, port: PortId, f: &[u8]) -> Vec<Out> {
        self.sw.ingress(port, f, self.now).to_vec()
    }

    fn dests(&mut self, port: PortId, f: &[u8]) -> Vec<PortId> {
        self.send(port, f).iter().map(|o| o.port).collect()
    }
}

#[test]
fn floods_unknown_and_broadcast_then_learns() {
    let mut s = Sim::with_ports(4);
    // unknown unicast floods to every other port
    assert_eq!(s.dests(1, &frame(mac(2), mac(1), 60)), vec![2, 3, 4]);
    // broadcast floods
    assert_eq!(
        s.dests(2, &frame(Mac::BROADCAST, mac(2), 60)),
        vec![1, 3, 4]
    );
    // now both are known: unicast goes only to the learned port
    assert_eq!(s.dests(1, &frame(mac(2), mac(1), 60)), vec![2]);
    assert_eq!(s.dests(2, &frame(mac(1), mac(2), 60)), vec![1]);
    // multicast destination always floods
    assert_eq!(
        s.dests(1, &frame(Mac([1, 0, 0x5e, 0, 0, 1]), mac(1), 60)),
        vec![2, 3, 4]
    );
    // a known destination on the ingress port is dropped
    assert_eq!(s.dests(1, &frame(mac(1), mac(9), 60)), Vec::<u32>::new());
    assert_eq!(s.sw.drops.same_port, 1);
}

#[test]
fn multicast_sources_are_not_learned() {
    let mut s = Sim::with_ports(3);
    let mcast = Mac([3, 0, 0, 0, 0, 1]);
    s.send(1, &frame(Mac::BROADCAST, mcast, 60));
    assert!(s.sw.mac_table().is_empty());
    assert_eq!(s.dests(2, &frame(mcast, mac(2), 60)), vec![1, 3]);
}

#[test]
fn ageing_expires_entries_after_gc() {
    let mut s = Sim::with_ports(3);
    s.send(1, &frame(Mac::BROADCAST, mac(1), 60));
    assert_eq!(s.sw.mac_table().len(), 1);
    s.advance(100);
    assert_eq!(
        s.sw.mac_table().len(),
        1,
        "expiry is strict: age 100 still lives"
    );
    assert_eq!(s.dests(2, &frame(mac(1), mac(2), 60)), vec![1]);
    s.advance(3);
    // mac(1) expired (last seen at 0, now 103 > 100); mac(2) is still there
    assert!(s.sw.mac_table().get(mac(1), 0).is_none());
    assert!(s.sw.mac_table().get(mac(2), 0).is_some());
    assert_eq!(s.dests(2, &frame(mac(1), mac(2), 60)), vec![1, 3]);
}

#[test]
fn gc_interval_and_expire_are_tunable() {
    let mut s = Sim::with_ports(2);
    s.sw.timers.expire = 5;
    s.sw.timers.gc_interval = 1;
    s.send(1, &frame(Mac::BROADCAST, mac(1), 60));
    s.advance(5);
    assert_eq!(s.sw.mac_table().len(), 1);
    s.advance(2);
    assert_eq!(s.sw.mac_table().len(), 0);
}

#[test]
fn min_persistence_guards_against_moves() {
    let mut s = Sim::with_ports(3);
    s.send(1, &frame(Mac::BROADCAST, mac(1), 60));
    s.advance(2);
    // the same MAC shows up on port 2 within 3 s: it stays on port 1
    s.send(2, &frame(Mac::BROADCAST, mac(1), 60));
    assert_eq!(s.dests(3, &frame(mac(1), mac(3), 60)), vec![1]);
    s.advance(2);
    // last seen on port 1 at t=0, now t=4 > 3: it moves
    s.send(2, &frame(Mac::BROADCAST, mac(1), 60));
    assert_eq!(s.dests(3, &frame(mac(1), mac(3), 60)), vec![2]);
}

#[test]
fn hub_mode_floods_everything_to_allocated_ports_but_port0() {
    let mut s = Sim::new(Config {
        hub: true,
        ..Config::default()
    });
    for i in 1..=3 {
        s.sw.attach(PortRequest::Any, ep(i)).unwrap();
    }
    s.sw.attach(PortRequest::Port0, ep(100)).unwrap();
    s.sw.port_create(7).unwrap();
    assert_eq!(s.dests(1, &frame(mac(2), mac(1), 60)), vec![2, 3, 7]);
    assert_eq!(
        s.dests(1, &frame(mac(2), mac(1), 60)),
        vec![2, 3, 7],
        "no learning in hub mode"
    );
    assert!(s.sw.mac_table().is_empty());
    // port 0 traffic reaches everyone
    assert_eq!(s.dests(0, &frame(mac(2), mac(9), 60)), vec![1, 2, 3, 7]);
    // the inactive created port counts OUT as the C switch does
    assert_eq!(s.sw.port(7).unwrap().counters.pkts_out, 3);
}

#[test]
fn counters_follow_the_c_switch() {
    let mut s = Sim::with_ports(3);
    for len in [20, 1500, 1518, 64] {
        s.send(1, &frame(Mac::BROADCAST, mac(1), len));
    }
    s.send(1, &[0u8; 10]); // runt: not counted
    s.send(1, &[0u8; 1519]); // oversized: not counted
    let c = s.sw.port(1).unwrap().counters;
    assert_eq!((c.pkts_in, c.bytes_in), (4, 3102));
    let c2 = s.sw.port(2).unwrap().counters;
    assert_eq!((c2.pkts_out, c2.bytes_out), (4, 3102));
    assert_eq!(s.sw.drops.runt, 1);
    assert_eq!(s.sw.drops.oversized, 1);
    s.sw.port_resetcounter(Some(1)).unwrap();
    assert_eq!(s.sw.port(1).unwrap().counters, Counters::default());
    assert_eq!(s.sw.port(2).unwrap().counters.pkts_out, 4);
    s.sw.port_resetcounter(None).unwrap();
    assert_eq!(s.sw.port(2).unwrap().counters, Counters::default());
    assert_eq!(s.sw.port_resetcounter(Some(99)), Err(EINVAL));
    assert_eq!(s.sw.port_resetcounter(Some(9)), Err(ENXIO));
}

#[test]
fn frame_size_rules() {
    let mut s = Sim::with_ports(2);
    assert!(s.send(1, &frame(Mac::BROADCAST, mac(1), 13)).is_empty());
    assert_eq!(s.dests(1, &frame(Mac::BROADCAST, mac(1), 14)), vec![2]);
    assert_eq!(s.dests(1, &frame(Mac::BROADCAST, mac(1), 1518)), vec![2]);
    assert!(s.send(1, &frame(Mac::BROADCAST, mac(1), 1519)).is_empty());
    // a 14-byte frame claiming a tag is malformed
    let mut f = frame(Mac::BROADCAST, mac(1), 14);
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    assert!(s.send(1, &f).is_empty());
    assert_eq!(s.sw.drops.bad_tag, 1);
}

#[test]
fn table_bound_holds_under_a_mac_flood() {
    let mut s = Sim::with_ports(2);
    let max = s.sw.mac_table().max_entries();
    for i in 0..(max as u32 * 3) {
        let b = i.to_be_bytes();
        let src = Mac([2, 0, b[0], b[1], b[2], b[3]]);
        // still forwarded (flooded) although not learned
        assert_eq!(s.dests(1, &frame(Mac::BROADCAST, src, 60)), vec![2]);
    }
    assert_eq!(s.sw.mac_table().len(), max);
    assert_eq!(s.sw.drops.table_full, (max * 2) as u64);
    // once the flood ages out, learning works again
    s.advance(200);
    assert_eq!(s.sw.mac_table().len(), 0);
    s.send(2, &frame(Mac::BROADCAST, mac(7), 60));
    assert_eq!(s.dests(1, &frame(mac(7), mac(1), 60)), vec![2]);
}

#[test]
fn port_allocation_rules() {
    let mut s = Sim::new(Config {
        numports: 4,
        ..Config::default()
    });
    assert_eq!(s.sw.port_create(2), Ok(()));
    // port 2 is not allocatable: "any" skips it
    assert_eq!(s.sw.attach(PortRequest::Any, ep(1)), Ok(1));
    assert_eq!(s.sw.attach(PortRequest::Any, ep(2)), Ok(3));
    // but it can be asked for by number
    assert_eq!(s.sw.attach(PortRequest::Port(2), ep(3)), Ok(2));
    assert_eq!(s.sw.attach(PortRequest::Port(4), ep(4)), Ok(4));
    assert_eq!(s.sw.attach(PortRequest::Any, ep(5)), Err(ENOSPC));
    assert_eq!(s.sw.attach(PortRequest::Port(5), ep(6)), Err(EINVAL));
    // same uid on a used port: another endpoint
    assert_eq!(s.sw.attach(PortRequest::Port(4), ep(7)), Ok(4));
    assert_eq!(s.sw.port(4).unwrap().endpoints.len(), 2);
    // another uid: refused
    let other = Endpoint {
        uid: Some(1000),
        gids: vec![],
        ..ep(8)
    };
    assert_eq!(s.sw.attach(PortRequest::Port(4), other), Err(EADDRINUSE));
    // port 0
    assert_eq!(s.sw.attach(PortRequest::Port0, ep(9)), Ok(0));
    // detaching port 1's only endpoint frees it for "any"
    assert_eq!(s.sw.detach(1), Some(1));
    assert!(!s.sw.port(1).unwrap().is_active());
    assert_eq!(s.sw.attach(PortRequest::Any, ep(10)), Ok(1));
    assert_eq!(s.sw.detach(12345), None);
}

#[test]
fn several_endpoints_share_a_port_and_count_once() {
    let mut s = Sim::with_ports(2);
    s.sw.attach(PortRequest::Port(2), ep(99)).unwrap();
    assert_eq!(s.dests(1, &frame(Mac::BROADCAST, mac(1), 60)), vec![2]);
    assert_eq!(s.sw.port(2).unwrap().counters.pkts_out, 1);
    // frames from either endpoint enter on port 2 and are not reflected
    assert_eq!(s.dests(2, &frame(Mac::BROADCAST, mac(2), 60)), vec![1]);
    s.sw.detach(20);
    assert!(s.sw.port(2).unwrap().is_active());
}

#[test]
fn disconnect_flushes_the_port_and_its_vlans() {
    let mut s = Sim::with_ports(3);
    s.send(1, &frame(Mac::BROADCAST, mac(1), 60));
    s.send(2, &frame(Mac::BROADCAST, mac(2), 60));
    assert_eq!(s.sw.mac_table().len(), 2);
    s.sw.detach(10);
    assert_eq!(s.sw.mac_table().len(), 0, "join/leave flushes the VLAN");
    // inactive ports receive nothing
    assert_eq!(s.dests(2, &frame(Mac::BROADCAST, mac(2), 60)), vec![3]);
    // frames from a port that no longer exists are dropped and counted
    s.sw.port_remove(1).unwrap();
    assert!(s.send(1, &frame(Mac::BROADCAST, mac(1), 60)).is_empty());
    assert_eq!(s.sw.drops.no_port, 1);
}

#[test]
fn vlans_tag_and_untag() {
    let mut s = Sim::with_ports(4);
    s.sw.vlan_create(10).unwrap();
    s.sw.port_setvlan(1, 10).unwrap(); // access port in VLAN 10
    s.sw.vlan_addport(10, 3).unwrap(); // trunk: tagged member of 10
                                       // untagged frame from the access port: tag inserted towards the trunk only
    let out = s.send(1, &frame(Mac::BROADCAST, mac(1), 60));
    assert_eq!(
        out,
        vec![Out {
            port: 3,
            op: TagOp::Insert(10)
        }]
    );
    // tagged frame from the trunk: stripped to the access port, PCP kept in tag
    let out = s.send(3, &tagged(Mac::BROADCAST, mac(3), 0xa00a, 64));
    assert_eq!(
        out,
        vec![Out {
            port: 1,
            op: TagOp::Strip
        }]
    );
    assert_eq!(s.sw.port(1).unwrap().counters.bytes_out, 60);
    // VLAN 0 traffic on the trunk (its untagged VLAN) still floods untagged
    assert_eq!(s.dests(3, &frame(Mac::BROADCAST, mac(3), 60)), vec![2, 4]);
    // a tag the port is not a member of is dropped; VID 4095 always
    assert!(s
        .send(2, &tagged(Mac::BROADCAST, mac(2), 10, 64))
        .is_empty());
    assert!(s
        .send(3, &tagged(Mac::BROADCAST, mac(3), 0x0fff, 64))
        .is_empty());
    assert_eq!(s.sw.drops.vlan, 2);
    // VID 0 on a default port is VLAN 0
    assert_eq!(
        s.dests(2, &tagged(Mac::BROADCAST, mac(2), 0, 64)),
        vec![3, 4]
    );
    // an access port accepts its own VID tagged
    assert_eq!(s.dests(1, &tagged(Mac::BROADCAST, mac(1), 10, 64)), vec![3]);
    // learning is per VLAN: mac(3) learnt in VLAN 10 and in VLAN 0
    assert_eq!(s.sw.mac_table().get(mac(3), 10).unwrap().port, 3);
    assert_eq!(s.sw.mac_table().get(mac(3), 0).unwrap().port, 3);
    // no untagged VLAN: untagged frames dropped
    s.sw.port_setvlan(4, NO_VLAN as i64).unwrap();
    assert!(s.send(4, &frame(Mac::BROADCAST, mac(4), 60)).is_empty());
}

#[test]
fn vlan_management_errors() {
    let mut s = Sim::with_ports(2);
    assert_eq!(s.sw.vlan_create(0), Err(EINVAL));
    assert_eq!(s.sw.vlan_create(4094), Err(EINVAL));
    assert_eq!(s.sw.vlan_create(5), Ok(()));
    assert_eq!(s.sw.vlan_create(5), Err(EEXIST));
    assert_eq!(s.sw.vlan_addport(6, 1), Err(ENXIO));
    assert_eq!(s.sw.vlan_addport(5, 1), Ok(()));
    assert_eq!(s.sw.vlan_addport(5, 1), Err(EEXIST));
    assert_eq!(s.sw.vlan_remove(5), Err(EADDRINUSE));
    assert_eq!(s.sw.vlan_delport(0, 1), Err(EADDRINUSE));
    assert_eq!(s.sw.vlan_delport(5, 1), Ok(()));
    assert_eq!(s.sw.vlan_remove(5), Ok(()));
    assert_eq!(s.sw.vlan_remove(5), Err(ENXIO));
    assert_eq!(s.sw.port_setvlan(1, 77), Err(ENXIO));
    assert_eq!(s.sw.port_setvlan(1, 4096), Err(EINVAL));
    assert_eq!(s.sw.port_setvlan(9, 0), Err(ENXIO));
}

#[test]
fn numports_resize() {
    let mut s = Sim::with_ports(3);
    assert_eq!(s.sw.set_numports(0), Err(EINVAL));
    assert_eq!(s.sw.set_numports(2), Err(EADDRINUSE));
    assert_eq!(s.sw.set_numports(100), Ok(()));
    assert_eq!(s.sw.attach(PortRequest::Port(100), ep(1000)), Ok(100));
    assert_eq!(
        s.dests(100, &frame(Mac::BROADCAST, mac(1), 60)),
        vec![1, 2, 3]
    );
    s.sw.detach(1000);
    s.sw.port_remove(100).unwrap();
    assert_eq!(s.sw.set_numports(3), Ok(()));
    assert_eq!(s.sw.attach(PortRequest::Port(4), ep(1001)), Err(EINVAL));
}

#[test]
fn epclose_asks_the_shell_to_close() {
    let mut s = Sim::with_ports(2);
    assert_eq!(s.sw.port_epclose(1, 99), Err(ENXIO));
    assert_eq!(s.sw.port_epclose(1, 10), Ok(()));
    assert_eq!(s.sw.poll_event(), Some(Event::CloseEndpoint(10)));
    assert!(!s.sw.port(1).unwrap().is_active());
    assert_eq!(s.sw.port_remove(1), Ok(()));
    assert_eq!(s.sw.port_remove(2), Err(EADDRINUSE));
}

#[test]
fn debug_events_only_when_subscribed() {
    let mut s = Sim::new(Config::default());
    s.sw.attach(PortRequest::Any, ep(6)).unwrap();
    assert_eq!(s.sw.poll_event(), None);
    s.sw.set_debug_mask(u64::MAX);
    s.sw.attach(PortRequest::Port(9), ep(7)).unwrap();
    let texts: Vec<_> = std::iter::from_fn(|| s.sw.poll_event())
        .map(|e| match e {
            Event::Debug { category, text } => (category, text),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            (DBG_PORT_NEW, "09".to_string()),
            (DBG_EP_NEW, "Port 09 FD  7".to_string()),
            (DBG_PORT_DESCR, "Port 09 FD  7 -> \"ep7\"".to_string()),
        ]
    );
    s.send(9, &frame(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 9]), 60));
    assert_eq!(
        s.sw.poll_event(),
        Some(Event::Debug {
            category: DBG_HASH_NEW,
            text: "02:00:00:00:00:09 VLAN 00:00 Port 9".into()
        })
    );
    let _ = s.t0;
}

#[test]
fn access_control_by_user_and_group() {
    // unrestricted: anyone, even an unknown uid
    assert!(access_allowed(None, None, None, &[]));
    assert!(access_allowed(None, None, Some(1000), &[]));
    // restricted to user 1000: root and 1000 only; unknown uid refused
    assert!(access_allowed(Some(1000), None, Some(0), &[]));
    assert!(access_allowed(Some(1000), None, Some(1000), &[]));
    assert!(!access_allowed(Some(1000), None, Some(1001), &[1000]));
    assert!(!access_allowed(Some(1000), None, None, &[]));
    // restricted to group 50: members (primary or listed) get in
    assert!(access_allowed(None, Some(50), Some(1001), &[100, 50]));
    assert!(!access_allowed(None, Some(50), Some(1001), &[100]));
    // through the switch: the first endpoint is checked, the port stays free
    let mut s = Sim::with_ports(2);
    s.sw.port_create(5).unwrap();
    s.sw.port_setuser(5, Some(1000)).unwrap();
    let stranger = Endpoint {
        uid: Some(1001),
        ..ep(50)
    };
    assert_eq!(s.sw.attach(PortRequest::Port(5), stranger), Err(EPERM));
    assert!(!s.sw.port(5).unwrap().is_active());
    let owner = Endpoint {
        uid: Some(1000),
        ..ep(51)
    };
    assert_eq!(s.sw.attach(PortRequest::Port(5), owner), Ok(5));
}

/// A vde BPDU from a rogue bridge of priority 0.
fn rogue_bpdu() -> Vec<u8> {
    let rogue = BridgeId::new(0, Mac([2, 0xde, 0xad, 0xbe, 0xef, 1]));
    let b = Bpdu {
        flags: 0x7c,
        root: rogue,
        root_cost: 0,
        bridge: rogue,
        port: bpdu::port_id(1),
        message_age: 0,
        max_age: 40,
        hello: 1,
        forward_delay: 0,
    };
    let mut buf = [0u8; 64];
    let n = b.emit(Mac([2, 0xde, 0xad, 0xbe, 0xef, 1]), None, &mut buf);
    buf[..n].to_vec()
}

fn cable_ep(id: u32) -> Endpoint {
    Endpoint {
        module: "cable",
        ..ep(id)
    }
}

#[test]
fn bpdu_guard_closes_the_port_and_the_port_is_reused() {
    let mut s = Sim::new(Config {
        fstp: true,
        ..Config::default()
    });
    assert_eq!(s.sw.attach(PortRequest::Port(3), ep(30)), Ok(3));
    s.sw.fstp_bpduguard(3, true).unwrap();
    while s.sw.poll_event().is_some() {}
    assert!(s.send(3, &rogue_bpdu()).is_empty());
    assert_eq!(s.sw.poll_event(), Some(Event::CloseEndpoint(30)));
    assert!(!s.sw.port(3).unwrap().is_active());
    assert_eq!(s.sw.port(3).unwrap().bpdu_guard_closes, 1);
    assert_eq!(s.sw.drops.bpdu_guard, 1);
    assert_eq!(s.sw.guard_stats.bpdu_closed, 1);
    // the port takes the next client; ordinary frames pass
    assert_eq!(s.sw.attach(PortRequest::Port(3), ep(31)), Ok(3));
    s.send(3, &frame(Mac::BROADCAST, mac(3), 60));
    assert!(s.sw.port(3).unwrap().is_active());
    // bad arguments
    assert_eq!(s.sw.fstp_bpduguard(0, true), Err(EINVAL));
    assert_eq!(s.sw.fstp_bpduguard(99, true), Err(EINVAL));
}

#[test]
fn root_guard_keeps_the_root_and_counts_episodes() {
    for guard in [false, true] {
        let mut s = Sim::new(Config {
            fstp: true,
            ..Config::default()
        });
        s.sw.attach(PortRequest::Port(1), ep(10)).unwrap();
        s.sw.attach(PortRequest::Port(2), ep(20)).unwrap();
        if guard {
            s.sw.fstp_rootguard(2, true).unwrap();
        }
        for _ in 0..6 {
            s.send(2, &rogue_bpdu());
            s.now += Duration::from_millis(500);
            let t = s.now;
            s.sw.handle_timeout(t);
        }
        let i = s.sw.fstp_instance(0).unwrap();
        assert_eq!(i.is_root(), guard, "guard {guard}");
        assert_eq!(i.is_root_inconsistent(2), guard);
        assert_eq!(s.sw.guard_stats.root_inconsistent, u64::from(guard));
    }
}

#[test]
fn guard_flag_covers_host_ports_not_cables() {
    let mut s = Sim::new(Config {
        fstp: true,
        guard: true,
        ..Config::default()
    });
    s.sw.attach(PortRequest::Port(1), cable_ep(10)).unwrap();
    s.sw.attach(PortRequest::Port(2), ep(20)).unwrap();
    assert!(!s.sw.root_guarded(1), "a cable is trusted");
    assert!(s.sw.root_guarded(2), "a host port is guarded");
    let i = s.sw.fstp_instance(0).unwrap();
    assert!(!i.is_root_guard(1) && i.is_root_guard(2));
    // the operator trusts port 2 and distrusts the cable
    s.sw.fstp_rootguard(2, false).unwrap();
    s.sw.fstp_rootguard(1, true).unwrap();
    assert!(s.sw.root_guarded(1) && !s.sw.root_guarded(2));
    let i = s.sw.fstp_instance(0).unwrap();
    assert!(i.is_root_guard(1) && !i.is_root_guard(2));
    // without --guard nothing is guarded
    let mut s = Sim::new(Config {
        fstp: true,
        ..Config::default()
    });
    s.sw.attach(PortRequest::Port(2), ep(20)).unwrap();
    assert!(!s.sw.root_guarded(2));
}

fn smac(n: u32) -> Mac {
    let b = n.to_be_bytes();
    Mac([2, 0x10, b[0], b[1], b[2], b[3]])
}

#[test]
fn mac_limit_caps_learning_per_port() {
    let mut s = Sim::with_ports(3);
    s.sw.port_maclimit(2, 16).unwrap();
    for n in 0..10_000 {
        s.send(2, &frame(Mac::BROADCAST, smac(n), 60));
    }
    assert_eq!(s.sw.mac_table().port_count(2), 16);
    assert_eq!(s.sw.drops.mac_limit, 10_000 - 16);
    assert_eq!(s.sw.security(2).mac_limit_drops, 10_000 - 16);
    // known stations keep working; other ports are not limited
    assert!(!s.send(2, &frame(Mac::BROADCAST, smac(3), 60)).is_empty());
    assert!(s
        .send(2, &frame(Mac::BROADCAST, smac(20_000), 60))
        .is_empty());
    for n in 0..100 {
        assert!(!s
            .send(3, &frame(Mac::BROADCAST, smac(50_000 + n), 60))
            .is_empty());
    }
    // entries that age out make room again
    s.advance(200);
    assert_eq!(s.sw.mac_table().port_count(2), 0);
    assert!(!s
        .send(2, &frame(Mac::BROADCAST, smac(20_000), 60))
        .is_empty());
    assert_eq!(s.sw.port_maclimit(0, 1), Err(EINVAL));
    assert_eq!(s.sw.port_maclimit(1, -1), Err(EINVAL));
}

#[test]
fn move_damping_pins_a_busy_mac_to_its_port() {
    let mut s = Sim::with_ports(3);
    s.sw.port_movedamp(2, 10).unwrap();
    let gw = mac(1);
    s.send(1, &frame(Mac::BROADCAST, gw, 60));
    // a guest on port 2 spoofs the gateway: dropped, the entry stays
    assert!(s.send(2, &frame(Mac::BROADCAST, gw, 60)).is_empty());
    assert_eq!(s.sw.mac_table().get(gw, 0).unwrap().port, 1);
    assert_eq!(s.sw.drops.mac_move, 1);
    // the gateway keeps talking: still pinned
    s.advance(5);
    s.send(1, &frame(Mac::BROADCAST, gw, 60));
    s.advance(5);
    assert!(s.send(2, &frame(Mac::BROADCAST, gw, 60)).is_empty());
    let to_gw = frame(gw, mac(3), 60);
    assert_eq!(s.send(3, &to_gw)[0].port, 1);
    // a station quiet for longer than the damping time may move (a VM
    // migrating)
    s.advance(11);
    assert!(!s.send(2, &frame(Mac::BROADCAST, gw, 60)).is_empty());
    assert_eq!(s.sw.mac_table().get(gw, 0).unwrap().port, 2);
}

#[test]
fn storm_control_holds_flooding_to_the_limit() {
    let mut s = Sim::with_ports(3);
    s.sw.port_stormlimit(2, 100).unwrap();
    let mut passed = 0;
    // 10,000 broadcasts over 2 s (one per 200 us)
    for i in 0..10_000u32 {
        s.now = s.t0 + Duration::from_micros(200 * u64::from(i));
        passed += usize::from(!s.send(2, &frame(Mac::BROADCAST, mac(2), 60)).is_empty());
    }
    // a burst of one second's worth, then 100/s
    assert!((290..=310).contains(&passed), "{passed}");
    assert_eq!(s.sw.drops.storm, 10_000 - passed as u64);
    // known unicast is not limited, nor are other ports
    s.send(3, &frame(Mac::BROADCAST, mac(3), 60));
    for _ in 0..1000 {
        assert_eq!(s.send(2, &frame(mac(3), mac(2), 60)).len(), 1);
        assert_eq!(s.send(1, &frame(Mac::BROADCAST, mac(1), 60)).len(), 2);
    }
}
