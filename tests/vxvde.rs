//! vxvde:// against libvdeplug4's vxvde plugin (the Debian `vde_plug`),
//! inside two network namespaces joined by a veth pair that each test makes
//! for itself: 10.77.0.1 / fd77::1 on `vxa` in namespace A (our side),
//! 10.77.0.2 / fd77::2 on `vxb` in namespace B (the C side). No datagram
//! leaves those namespaces.

mod common;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Protocol, Socket, Type};
use vde::vnl::{vxvde, Locator};
use vde_overlay::vxvde::Vxvde;

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 77, 0, 1);
const PORT: u16 = 14789;
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The header of VNI 42, as observed from the C plug (spec §3.1).
const HDR42: [u8; 8] = [0x08, 0, 0, 0, 0, 0, 0x2a, 0];

/// Two namespaces joined by a veth pair; both deleted on drop (also when
/// a test fails).
struct Pair {
    a: NetNs,
    b: NetNs,
}

impl Pair {
    /// `None` (after a SKIP line) without root, `ip` or the C vde_plug;
    /// under CI=true those are failures.
    fn new(tag: &str) -> Option<Pair> {
        if !is_root() || !have("ip") || !have("vde_plug") {
            return None;
        }
        let a = NetNs::new(&format!("{tag}a"));
        let b = NetNs::new(&format!("{tag}b"));
        sh(&format!(
            "ip -n {} link add vxa type veth peer name vxb netns {}",
            a.0, b.0
        ));
        a.sh("ip addr add 10.77.0.1/24 dev vxa && ip addr add fd77::1/64 dev vxa nodad");
        b.sh("ip addr add 10.77.0.2/24 dev vxb && ip addr add fd77::2/64 dev vxb nodad");
        a.sh("ip link set vxa up");
        b.sh("ip link set vxb up");
        Some(Pair { a, b })
    }

    /// `ip netns exec NS BIN ARGS...` as a stream plug.
    fn plug(&self, ns: &NetNs, bin: &str, args: &[&str]) -> Plug {
        let mut all = vec!["netns", "exec", &ns.0, bin];
        all.extend_from_slice(args);
        Plug::start_with("ip", &all)
    }

    /// Our vde_plug in namespace A.
    fn ours(&self, args: &[&str]) -> Plug {
        self.plug(&self.a, OUR_PLUG, args)
    }

    /// The Debian vde_plug in namespace B.
    fn c(&self, args: &[&str]) -> Plug {
        self.plug(&self.b, "vde_plug", args)
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens
/// live there even when used from other threads afterwards.
fn in_netns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(format!("/run/netns/{}", ns.0)).expect("netns file");
            // SAFETY: setns on a namespace fd we hold open; CLONE_NEWNET only
            // changes this (scoped) thread's network namespace.
            let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// Sends `f` through `from` every 300 ms until `to` delivers it (other
/// frames are skipped); false after `secs`.
fn deliver(from: &mut Plug, to: &Plug, f: &[u8], secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        from.send(f);
        if expect(to, f, 300) {
            return true;
        }
    }
    false
}

/// Like [`deliver`] until every plug of `to` has delivered `f` once.
fn deliver_all(from: &mut Plug, to: &[&Plug], f: &[u8], secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut seen = vec![false; to.len()];
    while Instant::now() < end {
        from.send(f);
        std::thread::sleep(Duration::from_millis(200));
        for (p, s) in to.iter().zip(seen.iter_mut()) {
            *s |= p.drain(50).iter().any(|g| g == f);
        }
        if seen.iter().all(|s| *s) {
            return true;
        }
    }
    false
}

/// Whether `to` delivers `f` within `ms` (other frames are skipped).
fn expect(to: &Plug, f: &[u8], ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match to.recv(left.as_millis() as u64 + 1) {
            Some(g) if g == f => return true,
            Some(_) => {}
            None => return false,
        }
    }
}

/// Frames with `src` among what `p` delivers within `ms` of silence.
fn from_src(p: &Plug, src: [u8; 6], ms: u64) -> Vec<Vec<u8>> {
    p.drain(ms)
        .into_iter()
        .filter(|f| f.len() >= 12 && f[6..12] == src)
        .collect()
}

/// Our plug does not deliver its own multicast datagrams, looped back by
/// the kernel to its multicast socket (the peer proves they were sent).
fn no_echo(ours: &mut Plug, peer: &Plug) {
    ours.drain(200);
    let f = frame(BCAST, mac(0x61), 60, 0x61);
    ours.send(&f);
    assert!(expect(peer, &f, 2000), "the peer missed our broadcast");
    assert!(
        from_src(ours, mac(0x61), 500).is_empty(),
        "ours delivered its own multicast frame"
    );
}

fn vnl(group: &str, iface: &str, extra: &str) -> String {
    format!("vxvde://{group}/if={iface}{extra}")
}

#[test]
fn rust_and_c_plugs_join_two_switches() {
    let Some(p) = Pair::new("vxsw") else { return };
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("vxvde-sw");
    let sa = Switch::start(Impl::Ours, &dir, "sa", &[]);
    let sb = Switch::start(Impl::C, &dir, "sb", &[]);
    let (ca, cb) = (sa.ctl.to_str().unwrap(), sb.ctl.to_str().unwrap());
    let va = vnl("239.77.0.1", "vxa", "");
    let vb = vnl("239.77.0.1", "vxb", "");
    // the cables: our vde_plug in A, the C one in B, each to its switch
    let _link_a = p.ours(&[ca, &va]);
    let _link_b = p.c(&[cb, &vb]);
    // end stations on the switches, and one passive member of the cloud
    // on each side that must see group traffic but not unicast
    let mut ta = Plug::ours(&[ca]);
    let mut tb = Plug::start(&[cb]);
    let obs_a = p.ours(&[&va]);
    let obs_b = p.c(&[&vb]);

    let b1 = frame(BCAST, mac(1), 80, 1);
    assert!(
        deliver_all(&mut ta, &[&tb, &obs_a, &obs_b], &b1, 10),
        "broadcast A->B never reached everyone"
    );
    let b2 = frame(BCAST, mac(2), 81, 2);
    assert!(
        deliver_all(&mut tb, &[&ta, &obs_a, &obs_b], &b2, 10),
        "broadcast B->A never reached everyone"
    );
    obs_a.drain(300);
    obs_b.drain(300);

    // unicast both ways, by unicast datagrams: the observers see nothing
    let u1 = frame(mac(2), mac(1), 90, 3);
    ta.send(&u1);
    assert!(expect(&tb, &u1, 2000), "unicast A->B lost");
    let u2 = frame(mac(1), mac(2), 91, 4);
    tb.send(&u2);
    assert!(expect(&ta, &u2, 2000), "unicast B->A lost");
    for (i, n) in (10..20u8).enumerate() {
        let u = frame(mac(2), mac(1), 100 + i, n);
        ta.send(&u);
        assert!(expect(&tb, &u, 2000), "unicast A->B #{n} lost");
        let u = frame(mac(1), mac(2), 200 + i, n);
        tb.send(&u);
        assert!(expect(&ta, &u, 2000), "unicast B->A #{n} lost");
    }
    let seen_a = obs_a.drain(300);
    let seen_b = obs_b.drain(300);
    assert!(
        seen_a.is_empty() && seen_b.is_empty(),
        "unicast frames went to the group: A saw {}, B saw {}",
        seen_a.len(),
        seen_b.len()
    );
    // a big frame crosses too
    let big = frame(BCAST, mac(1), 1514, 5);
    ta.send(&big);
    assert!(expect(&tb, &big, 2000), "1514-byte frame lost");
}

#[test]
fn our_switch_hosts_a_vxvde_cable_with_the_c_plugin_on_the_other_side() {
    let Some(p) = Pair::new("vxcab") else { return };
    if !have("vde_switch") {
        return;
    }
    let dir = TempDir::new("vxvde-cab");
    // our switch in A joins the cloud itself (--cable), no vde_plug
    let va = vnl("239.77.0.1", "vxa", "");
    let sa = Switch::start_in(&p.a, &dir, "sa", &[format!("--cable={va}")]);
    let sb = Switch::start(Impl::C, &dir, "sb", &[]);
    let cb = sb.ctl.to_str().unwrap();
    let vb = vnl("239.77.0.1", "vxb", "");
    let _link_b = p.c(&[cb, &vb]);
    assert!(
        wait_for(5, || sa.cmd("port/print").contains("module cable")),
        "{}",
        sa.cmd("cable/print")
    );
    let mut ta = Plug::ours(&[sa.ctl.to_str().unwrap()]);
    let mut tb = Plug::start(&[cb]);
    let b1 = frame(BCAST, mac(1), 80, 1);
    assert!(deliver(&mut ta, &tb, &b1, 10), "broadcast ours -> C");
    let b2 = frame(BCAST, mac(2), 81, 2);
    assert!(deliver(&mut tb, &ta, &b2, 10), "broadcast C -> ours");
    let u1 = frame(mac(2), mac(1), 1514, 3);
    ta.send(&u1);
    assert!(expect(&tb, &u1, 2000), "unicast ours -> C");
    let u2 = frame(mac(1), mac(2), 60, 4);
    tb.send(&u2);
    assert!(expect(&ta, &u2, 2000), "unicast C -> ours");
    let print = sa.cmd("cable/print");
    assert!(print.contains("plug vxvde://239.77.0.1"), "{print}");
}

/// Sockets in namespace B: one listening on the group (like any member),
/// a stranger that sends good datagrams and a vandal that sends garbage.
struct Wire {
    listen: UdpSocket,
    stranger: UdpSocket,
    vandal: UdpSocket,
}

impl Wire {
    fn new(p: &Pair) -> Wire {
        in_netns(&p.b, || {
            let l = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            l.set_reuse_address(true).unwrap();
            l.bind(&SocketAddr::from((GROUP, PORT)).into()).unwrap();
            l.join_multicast_v4(&GROUP, &IP_B).unwrap();
            l.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let sender = || {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
                s.bind(&SocketAddr::from((IP_B, 0)).into()).unwrap();
                s.set_multicast_if_v4(&IP_B).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                UdpSocket::from(s)
            };
            Wire {
                listen: l.into(),
                stranger: sender(),
                vandal: sender(),
            }
        })
    }

    /// The next datagram on `sock` carrying `f` (others skipped) and its
    /// source, within `ms`.
    fn catch(sock: &UdpSocket, f: &[u8], ms: u64) -> Option<(Vec<u8>, SocketAddr)> {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut buf = [0u8; 2000];
        while Instant::now() < end {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                if n >= 8 && buf[8..n] == *f {
                    return Some((buf[..n].to_vec(), from));
                }
            }
        }
        None
    }

    fn send(&self, to: SocketAddr, d: &[u8]) {
        self.stranger.send_to(d, to).unwrap();
    }
}

fn dgram(hdr: &[u8], f: &[u8]) -> Vec<u8> {
    [hdr, f].concat()
}

#[test]
fn wire_format_garbage_and_a_strangers_goodbye() {
    let Some(p) = Pair::new("vxwire") else { return };
    let va = vnl("239.77.0.1", "vxa", "/vni=42");
    let vb = vnl("239.77.0.1", "vxb", "/vni=42");
    let mut oa = p.ours(&[&va]);
    let mut cb = p.c(&[&vb]);
    let wire = Wire::new(&p);
    let group: SocketAddr = (GROUP, PORT).into();

    // our datagrams: VXLAN header of VNI 42 + the frame, from an ephemeral
    // port of our address, to the group; byte for byte what the C plug sends
    let f1 = frame(BCAST, mac(1), 60, 1);
    assert!(
        deliver(&mut oa, &cb, &f1, 10),
        "broadcast ours->C never arrived"
    );
    let (d, ours) = Wire::catch(&wire.listen, &f1, 2000).expect("our datagram on the wire");
    assert_eq!(d[..8], HDR42, "our header");
    assert_eq!(ours.ip(), std::net::IpAddr::V4(IP_A));
    assert_ne!(ours.port(), PORT, "datagrams leave from the unicast socket");
    let f2 = frame(BCAST, mac(2), 60, 2);
    assert!(
        deliver(&mut cb, &oa, &f2, 10),
        "broadcast C->ours never arrived"
    );
    let (d, theirs) = Wire::catch(&wire.listen, &f2, 2000).expect("C datagram on the wire");
    assert_eq!(d[..8], HDR42, "the C header");
    assert_eq!(theirs.ip(), std::net::IpAddr::V4(IP_B));

    // garbage at the group, at our unicast port and at the C one
    let g = |n: u8| frame(BCAST, mac(0x30 + n), 60, 0x30 + n);
    let mut junk: Vec<Vec<u8>> = vec![
        dgram(&[0x08, 0, 0, 0, 0, 0, 43, 0], &g(1)), // wrong VNI
        dgram(&[0x08, 1, 0, 0, 0, 0, 42, 0], &g(2)), // reserved byte 1
        dgram(&[0x08, 0, 0, 1, 0, 0, 42, 0], &g(3)), // reserved byte 3
        dgram(&[0x08, 0, 0, 0, 0, 0, 42, 1], &g(4)), // reserved byte 7
        dgram(&[0x0c, 0, 0, 0, 0, 0, 42, 0], &g(5)), // other flags
        dgram(&[0x00, 0, 0, 0, 0, 0, 42, 0], &g(6)), // no I flag
        dgram(&HDR42, &g(7)[..14]),                  // frame of 14 bytes
        dgram(&HDR42, &g(8)[..5]),                   // runt
        HDR42[..5].to_vec(),                         // truncated header
        HDR42.to_vec(),                              // goodbye of a stranger
        Vec::new(),                                  // empty
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        let d: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
        if d.len() < 8 || d[..8] != HDR42 {
            junk.push(d);
        }
    }
    for to in [group, ours, theirs] {
        for d in &junk {
            wire.vandal.send_to(d, to).unwrap();
        }
    }
    // (the two sockets of a plug are read in no fixed order: let the
    // garbage be read before the next good datagram)
    std::thread::sleep(Duration::from_millis(300));
    // a good frame from the stranger, last: both plugs deliver it and none
    // of the garbage
    let good = frame(BCAST, mac(0x3f), 70, 0x3f);
    wire.send(group, &dgram(&HDR42, &good));
    assert!(
        expect(&oa, &good, 2000),
        "ours lost the stranger's good frame"
    );
    assert!(expect(&cb, &good, 2000), "C lost the stranger's good frame");
    for n in 1..=8 {
        assert!(
            from_src(&oa, mac(0x30 + n), 300).is_empty(),
            "ours passed garbage {n}"
        );
        assert!(
            from_src(&cb, mac(0x30 + n), 300).is_empty(),
            "C passed garbage {n}"
        );
    }

    // we learned the stranger's address and port: unicast reaches it, not
    // the group
    let to_s = frame(mac(0x3f), mac(1), 64, 0x40);
    oa.send(&to_s);
    let (d, _) = Wire::catch(&wire.stranger, &to_s, 2000).expect("unicast to the stranger");
    assert_eq!(d[..8], HDR42);
    assert!(
        !expect(&cb, &to_s, 300),
        "unicast to the stranger went to the group"
    );
    // its goodbye makes us forget it: the next frame for it goes to the group
    wire.send(group, &HDR42);
    std::thread::sleep(Duration::from_millis(200));
    let to_s2 = frame(mac(0x3f), mac(1), 64, 0x41);
    oa.send(&to_s2);
    assert!(
        expect(&cb, &to_s2, 2000),
        "after the goodbye, not sent to the group"
    );
    assert!(Wire::catch(&wire.stranger, &to_s2, 300).is_none());

    // the C peer is still learned (the stranger's goodbye was not its), and
    // frames pass both ways
    let u1 = frame(mac(2), mac(1), 90, 0x50);
    oa.send(&u1);
    assert!(
        expect(&cb, &u1, 2000),
        "unicast ours->C lost after the garbage"
    );
    assert!(
        Wire::catch(&wire.listen, &u1, 300).is_none(),
        "unicast ours->C went to the group"
    );
    let u2 = frame(mac(1), mac(2), 91, 0x51);
    cb.send(&u2);
    assert!(
        expect(&oa, &u2, 2000),
        "unicast C->ours lost after the garbage"
    );
    no_echo(&mut oa, &cb);
}

#[test]
fn a_c_peer_goodbye_makes_ours_forget() {
    let Some(p) = Pair::new("vxbye") else { return };
    let va = vnl("239.77.0.1", "vxa", "");
    let vb = vnl("239.77.0.1", "vxb", "");
    let mut oa = p.ours(&[&va]);
    let mut c1 = p.c(&[&vb]);
    let from_c = frame(BCAST, mac(2), 60, 1);
    assert!(deliver(&mut c1, &oa, &from_c, 10), "C->ours never arrived");
    let to_c = frame(mac(2), mac(1), 60, 2);
    oa.send(&to_c);
    assert!(expect(&c1, &to_c, 2000), "unicast ours->C lost");
    // the C plug leaves (end of its stdin): it sends the goodbye
    c1.close_stdin();
    assert!(
        wait_for(5, || c1.child.try_wait().is_ok_and(|s| s.is_some())),
        "the C vde_plug did not exit at the end of its input"
    );
    // a new C peer, at another port: frames for the MAC we had learned
    // behind the old one now go to the group, so the new one gets them
    let c2 = p.c(&[&vb]);
    let hello = frame(BCAST, mac(1), 60, 3);
    assert!(
        deliver(&mut oa, &c2, &hello, 10),
        "ours->new C never arrived"
    );
    let again = frame(mac(2), mac(1), 60, 4);
    assert!(
        deliver(&mut oa, &c2, &again, 3),
        "ours still sends to the peer that said goodbye"
    );
}

#[test]
fn our_goodbye_makes_a_c_peer_forget() {
    let Some(p) = Pair::new("vxbye2") else { return };
    let vb = vnl("239.77.0.1", "vxb", "");
    let mut cb = p.c(&[&vb]);
    // our endpoint, opened through the locator parser, in namespace A
    let open = || {
        in_netns(&p.a, || {
            let loc = Locator::split("vxvde://239.77.0.1/if=vxa");
            let cfg = vxvde::config(&loc, &|_| None, 0).unwrap();
            Vxvde::open(&cfg).unwrap()
        })
    };
    let v1 = open();
    let hello = frame(BCAST, mac(1), 60, 1);
    let ok = (0..30).any(|_| {
        v1.send(&hello).unwrap();
        expect(&cb, &hello, 300)
    });
    assert!(ok, "ours->C never arrived");
    let mut buf = [0u8; 2000];
    let to_v1 = frame(mac(1), mac(2), 60, 2);
    cb.send(&to_v1);
    let n = v1
        .recv_timeout(&mut buf, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(
        n.map(|n| buf[..n].to_vec()),
        Some(to_v1),
        "unicast C->ours lost"
    );
    // close the first endpoint (goodbye), open another at a new port
    let old = v1.local_addr().unwrap().port();
    drop(v1);
    let v2 = open();
    assert_ne!(v2.local_addr().unwrap().port(), old);
    std::thread::sleep(Duration::from_millis(200));
    let to_new = frame(mac(1), mac(2), 60, 3);
    let end = Instant::now() + Duration::from_secs(3);
    let mut got = false;
    while !got && Instant::now() < end {
        cb.send(&to_new);
        while let Some(n) = v2
            .recv_timeout(&mut buf, Some(Duration::from_millis(300)))
            .unwrap()
        {
            if buf[..n] == to_new[..] {
                got = true;
                break;
            }
        }
    }
    assert!(
        got,
        "the C peer still unicasts to the endpoint that said goodbye"
    );
}

#[test]
fn ipv6_rust_and_c_plugs() {
    let Some(p) = Pair::new("vx6") else { return };
    let va = vnl("ff05:56de::77", "vxa", "/v6/vni=7");
    let vb = vnl("ff05:56de::77", "vxb", "/v6/vni=7");
    let mut oa = p.ours(&[&va]);
    let mut cb = p.c(&[&vb]);
    let obs = p.c(&[&vb]);
    let b1 = frame(BCAST, mac(1), 80, 1);
    assert!(
        deliver_all(&mut oa, &[&cb, &obs], &b1, 10),
        "IPv6 broadcast ours->C never arrived"
    );
    let b2 = frame(BCAST, mac(2), 80, 2);
    assert!(
        deliver(&mut cb, &oa, &b2, 10),
        "IPv6 broadcast C->ours never arrived"
    );
    obs.drain(300);
    for n in 3..10u8 {
        let u = frame(mac(2), mac(1), 70 + n as usize, n);
        oa.send(&u);
        assert!(expect(&cb, &u, 2000), "IPv6 unicast ours->C #{n} lost");
        let u = frame(mac(1), mac(2), 90 + n as usize, n);
        cb.send(&u);
        assert!(expect(&oa, &u, 2000), "IPv6 unicast C->ours #{n} lost");
    }
    assert!(
        obs.drain(300).is_empty(),
        "IPv6 unicast frames went to the group"
    );
    // our own copies (recognised through the interface addresses) are not
    // delivered back
    no_echo(&mut oa, &cb);
}

#[test]
fn grp_option_agrees_with_c() {
    // grp=N: VNI N and the group's last 3 bytes = N (239.0.3.232 for 1000)
    let Some(p) = Pair::new("vxgrp") else { return };
    let mut oa = p.ours(&[&vnl("", "vxa", "/grp=1000")]);
    let mut cb = p.c(&[&vnl("", "vxb", "/grp=1000")]);
    let listen = in_netns(&p.b, || {
        let g = Ipv4Addr::new(239, 0, 3, 232);
        let l = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        l.set_reuse_address(true).unwrap();
        l.bind(&SocketAddr::V4(SocketAddrV4::new(g, PORT)).into())
            .unwrap();
        l.join_multicast_v4(&g, &IP_B).unwrap();
        l.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        UdpSocket::from(l)
    });
    let f = frame(BCAST, mac(1), 60, 1);
    assert!(
        deliver(&mut oa, &cb, &f, 10),
        "grp=1000: ours->C never arrived"
    );
    let (d, _) = Wire::catch(&listen, &f, 2000).expect("datagram on 239.0.3.232");
    assert_eq!(d[..8], [0x08, 0, 0, 0, 0, 0x03, 0xe8, 0]);
    let f = frame(BCAST, mac(2), 60, 2);
    assert!(
        deliver(&mut cb, &oa, &f, 10),
        "grp=1000: C->ours never arrived"
    );
}
