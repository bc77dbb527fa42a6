//! Attacks on the handshake and the transport (issue #10): each test plays
//! the attacker with what it can see or hold (packets on the path, the PSK
//! file, a server's public key), and fails if the attack works.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    client_addr, client_identity, client_pub, new_client, new_server, psk, psk_auth, server_pub,
    ticket_auth, Ev, Net, KEY_ID, MS, WALL,
};
use vde_crypto::wire::{COOKIE_LEN, INIT_LEN, INIT_MAC2_OFFSET, KEYREQ_LEN, KEYRESP_LEN, RESP_LEN};
use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Drop, Identity, KeyId, KeySource, PeerId, Psk, Server,
    ServerAuth, ServerRecv,
};

fn client() -> Client {
    new_client(&Config::default(), psk_auth(), KEY_ID, Duration::ZERO)
}

fn server() -> Server {
    new_server(&Config::default(), KeySource::Psk(psk()))
}

/// A client of `identity` (PSK-file mode, the test server's key known).
fn client_of(config: &Config, identity: Identity, key_id: KeyId, wall: u64) -> Client {
    Client::new(
        config.clone(),
        identity,
        psk_auth(),
        key_id,
        psk(),
        wall,
        Duration::ZERO,
    )
}

fn attacker_addr() -> SocketAddr {
    "203.0.113.66:6666".parse().unwrap()
}

/// The client's next INIT.
fn init_of(c: &mut Client, now: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match c.poll(now, &mut out) {
            Some(ClientEvent::Send) if out.len() == INIT_LEN => return out,
            Some(_) => continue,
            None => panic!("no INIT"),
        }
    }
}

/// INIT, RESP and the confirming KEEPALIVE between `c` and `s` at `now`,
/// from `addr`; the server's new (or rekeyed) peer.
fn handshake(c: &mut Client, s: &mut Server, addr: SocketAddr, now: Duration) -> ServerRecv {
    let init = init_of(c, now);
    let (mut resp, mut out) = (Vec::new(), Vec::new());
    assert_eq!(
        s.receive(&init, addr, now, &mut resp),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(resp.len(), RESP_LEN);
    let r = c.receive(&resp, now, &mut out).unwrap();
    assert!(matches!(r, ClientRecv::Up | ClientRecv::Rekeyed), "{r:?}");
    assert_eq!(c.poll(now, &mut out), Some(ClientEvent::Send));
    s.receive(&out, addr, now, &mut resp).unwrap()
}

/// A frame from `c` through `s` (from `addr`) and one back; checks both
/// arrive, and that the server sends to `addr`.
fn frames_flow(c: &mut Client, s: &mut Server, peer: PeerId, addr: SocketAddr, now: Duration) {
    let (mut d, mut out) = (Vec::new(), Vec::new());
    c.seal(b"up", now, &mut d).unwrap();
    assert_eq!(
        s.receive(&d, addr, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(out, b"up");
    assert_eq!(s.seal(peer, b"down", now, &mut d), Ok(addr));
    assert_eq!(c.receive(&d, now, &mut out), Ok(ClientRecv::Frame));
    assert_eq!(out, b"down");
}

/// A RESP an attacker makes from a seen INIT: the right indexes and
/// suite, a valid-looking ephemeral key (the X25519 base point), and an
/// encrypted payload it cannot compute.
fn forged_resp(init: &[u8], fill: u8) -> Vec<u8> {
    let mut r = vec![fill; RESP_LEN];
    r[0] = 0x02;
    r[1] = init[1];
    r[2] = 0;
    r[3] = 0;
    r[8..12].copy_from_slice(&init[4..8]);
    r[12] = 9;
    r[13..44].fill(0);
    r
}

#[test]
fn forged_resps_are_refused_and_the_genuine_one_completes() {
    let (mut c, mut s) = (client(), server());
    let now = Duration::from_millis(1);
    // A genuine RESP of an earlier handshake (a real ephemeral key, a
    // payload that decrypts under other keys): the attacker rewrites it to
    // the new handshake's index.
    let old = handshake(&mut client(), &mut server(), client_addr(), now);
    assert!(matches!(old, ServerRecv::PeerUp(..)));
    let mut c_old = client();
    let old_init = init_of(&mut c_old, now);
    let mut old_resp = Vec::new();
    server()
        .receive(&old_init, client_addr(), now, &mut old_resp)
        .unwrap();

    let init = init_of(&mut c, now);
    let mut out = Vec::new();
    // The attacker answers first, from the server's address.
    let mut forged: Vec<Vec<u8>> = [0u8, 0x55, 0xff]
        .iter()
        .map(|&f| forged_resp(&init, f))
        .collect();
    let mut rewritten = old_resp.clone();
    rewritten[8..12].copy_from_slice(&init[4..8]);
    forged.push(rewritten);
    for f in &forged {
        assert_eq!(
            c.receive(f, now, &mut out),
            Err(Drop::BadMac),
            "a forged RESP is refused"
        );
        assert!(!c.is_up());
    }
    assert_eq!(c.stats().count(Drop::BadMac), 4, "and counted");
    // The genuine answer still completes the handshake: a RESP that does
    // not verify leaves the handshake (its ephemeral key) as it was.
    let addr: SocketAddr = client_addr();
    let mut resp = Vec::new();
    assert_eq!(
        s.receive(&init, addr, now, &mut resp),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(
        c.receive(&resp, now, &mut out),
        Ok(ClientRecv::Up),
        "the genuine RESP after forged ones brings the cable up"
    );
    assert!(c.is_up());
    assert_eq!(c.poll(now, &mut out), Some(ClientEvent::Send));
    let Ok(ServerRecv::PeerUp(peer, ..)) = s.receive(&out, addr, now, &mut Vec::new()) else {
        panic!("not confirmed");
    };
    frames_flow(&mut c, &mut s, peer, addr, now);
    // And the genuine RESP cannot be used twice.
    assert_eq!(c.receive(&resp, now, &mut out), Err(Drop::UnknownIndex));
}

#[test]
fn forged_resps_during_a_rekey_leave_the_cable_up_and_the_rekey_possible() {
    let config = Config {
        rekey_after_time: Duration::from_millis(50),
        dead_after: Duration::from_secs(10),
        ..Config::default()
    };
    let mut c = new_client(&config, psk_auth(), KEY_ID, Duration::ZERO);
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let addr = client_addr();
    let mut now = Duration::from_millis(1);
    let (mut out, mut resp) = (Vec::new(), Vec::new());
    assert!(matches!(
        handshake(&mut c, &mut s, addr, now),
        ServerRecv::PeerUp(..)
    ));
    // up; time passes until the client rekeys
    now += config.rekey_after_time + Duration::from_millis(1);
    let init2 = init_of(&mut c, now);
    for fill in 0..20u8 {
        assert_eq!(
            c.receive(&forged_resp(&init2, fill), now, &mut out),
            Err(Drop::BadMac)
        );
        assert!(c.is_up(), "forged answers do not take the cable down");
    }
    s.receive(&init2, addr, now, &mut resp).unwrap();
    assert_eq!(c.receive(&resp, now, &mut out), Ok(ClientRecv::Rekeyed));
    assert_eq!(c.stats().rekeys, 1);
}

/// The first INIT the client sent in `net`.
fn first_init(net: &Net) -> Vec<u8> {
    net.client_sent
        .iter()
        .find(|d| d[0] == 0x01 && d.len() == INIT_LEN)
        .expect("an INIT")
        .clone()
}

#[test]
fn an_init_replayed_to_a_restarted_server_makes_no_peer() {
    let config = Config::default();
    let mut net = Net::psk_mode(config.clone());
    net.run_until(Duration::from_millis(10), |n| {
        n.client.is_up() && n.server.peers().count() == 1
    });
    let recorded = first_init(&net);
    net.client_send(b"before");
    net.run(Duration::from_millis(300));

    // The server restarts: same identity, same PSK, no memory of
    // timestamps. The attacker replays the recorded INIT first.
    net.server = new_server(&config, KeySource::Psk(psk()));
    let restart = net.now;
    let (now, attacker) = (net.now, attacker_addr());
    let mut out = Vec::new();
    assert_eq!(
        net.server.receive(&recorded, attacker, now, &mut out),
        Ok(ServerRecv::Reply(attacker)),
        "a restarted server cannot tell an old INIT from a new one"
    );
    assert_eq!(out.len(), RESP_LEN, "at most a RESP, no larger than INIT");
    let resp = out.clone();
    assert_eq!(net.server.pending_handshakes(), 1);
    assert_eq!(net.server.peers().count(), 0);
    // Without the client's keys the attacker cannot confirm it: whatever it
    // sends under the RESP's index (the client's old packets rewritten to
    // it, or a forgery) fails.
    let old_packets: Vec<Vec<u8>> = net
        .client_sent
        .iter()
        .filter(|d| d[0] == 0x04 || d[0] == 0x05)
        .cloned()
        .collect();
    assert!(!old_packets.is_empty());
    for mut p in old_packets {
        p[4..8].copy_from_slice(&resp[4..8]);
        assert_eq!(
            net.server.receive(&p, attacker, now, &mut out),
            Err(Drop::BadTag)
        );
    }
    assert_eq!(net.server.peers().count(), 0);

    // The real client notices the restart (nothing answers), handshakes
    // again with a newer timestamp, and connects; the replayed INIT's
    // pending handshake is replaced.
    net.run_until(Duration::from_secs(5), |n| {
        n.client.is_up() && n.server.peers().count() == 1
    });
    let ups: Vec<&Ev> = net
        .events_since(restart)
        .map(|(_, e)| e)
        .filter(|e| {
            matches!(
                e,
                Ev::ServerRecv(ServerRecv::PeerUp(..) | ServerRecv::PeerUpFrame(..))
            )
        })
        .collect();
    assert_eq!(ups.len(), 1, "{ups:?}");
    let peer = net.only_peer();
    assert_eq!(net.server.peers().next().unwrap().2, net.addr);
    assert_eq!(net.server.peer_identity(peer), Some(client_pub()));
    assert_eq!(net.server.pending_handshakes(), 0);
    net.client_send(b"after");
    net.server_send(b"after too");
    net.step();
    assert_eq!(
        net.server_frames.last().unwrap(),
        &(peer, b"after".to_vec())
    );
    assert_eq!(net.client_frames.last().unwrap(), b"after too");
    // Now the old INIT is stale at this server too.
    let now = net.now;
    assert_eq!(
        net.server.receive(&recorded, attacker, now, &mut out),
        Err(Drop::StaleTimestamp)
    );
    assert!(out.is_empty());
}

#[test]
fn an_init_replayed_to_the_live_server_does_not_disturb_the_cable() {
    let config = Config::default();
    let mut net = Net::psk_mode(config);
    net.run_until(Duration::from_millis(10), |n| {
        n.client.is_up() && n.server.peers().count() == 1
    });
    let peer = net.only_peer();
    let recorded = first_init(&net);
    let mut out = Vec::new();
    for _ in 0..3 {
        net.run(Duration::from_millis(100));
        let now = net.now;
        // from the attacker's address and from the client's own
        for from in [attacker_addr(), net.addr] {
            assert_eq!(
                net.server.receive(&recorded, from, now, &mut out),
                Err(Drop::StaleTimestamp)
            );
            assert!(out.is_empty(), "no answer");
        }
        assert_eq!(net.server.pending_handshakes(), 0);
        assert_eq!(net.only_peer(), peer);
        assert_eq!(net.server.peers().next().unwrap().2, net.addr);
    }
    net.client_send(b"still");
    net.server_send(b"still too");
    net.step();
    assert_eq!(
        net.server_frames.last().unwrap(),
        &(peer, b"still".to_vec())
    );
    assert_eq!(net.client_frames.last().unwrap(), b"still too");
    assert_eq!(net.client.stats().dropped_total(), 0);
    assert_eq!(net.client.stats().handshakes_completed, 1);
}

#[test]
fn an_init_replayed_to_another_server_with_the_same_psk_is_dropped() {
    let (mut c, mut s) = (client(), server());
    let now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    // A second server of the same PSK file, another identity.
    let mut other = Server::new(
        Config::default(),
        Identity::from_bytes([0x0e; 32]),
        KeySource::Psk(psk()),
    );
    let mut out = Vec::new();
    for from in [client_addr(), attacker_addr()] {
        assert_eq!(
            other.receive(&init, from, now, &mut out),
            Err(Drop::BadMac),
            "mac1 names the responder"
        );
        assert!(out.is_empty());
    }
    assert_eq!(other.pending_handshakes(), 0);
    assert_eq!(other.stats().packets_out, 0);
    // Even under load (every INIT answered with a COOKIE first), mac1 is
    // checked before anything is sent.
    let mut loaded = Server::new(
        Config {
            cookie_threshold: 0,
            ..Config::default()
        },
        Identity::from_bytes([0x0e; 32]),
        KeySource::Psk(psk()),
    );
    assert_eq!(
        loaded.receive(&init, attacker_addr(), now, &mut out),
        Err(Drop::BadMac)
    );
    assert_eq!(loaded.stats().cookies_sent, 0);
    // The server it was made for still answers it.
    assert!(matches!(
        s.receive(&init, client_addr(), now, &mut out),
        Ok(ServerRecv::Reply(_))
    ));
}

#[test]
fn a_full_pending_table_does_not_refuse_a_live_cables_rekey() {
    // With cookies out of the way (threshold above the table), then with
    // the server under load (the rekey first gets a COOKIE).
    for cookie_threshold in [usize::MAX, 2] {
        let config = Config {
            max_pending: 4,
            cookie_threshold,
            rekey_after_time: Duration::from_millis(200),
            dead_after: Duration::from_secs(100),
            ..Config::default()
        };
        let mut c = new_client(&config, psk_auth(), KEY_ID, Duration::ZERO);
        let mut s = new_server(&config, KeySource::Psk(psk()));
        let addr = client_addr();
        let (mut out, mut back) = (Vec::new(), Vec::new());
        let mut now = Duration::from_millis(1);
        let ServerRecv::PeerUp(peer, ..) = handshake(&mut c, &mut s, addr, now) else {
            panic!("no peer");
        };
        // INITs of other identities and cable ids (recorded elsewhere,
        // replayed after a restart, or made by other key holders; each
        // answering COOKIEs from its own address) fill the pending table.
        for i in 0..10u8 {
            let id = Identity::from_bytes([0x40 + i; 32]);
            let mut other = client_of(&config, id, [b'x', i, 0, 0, 0, 0, 0, 0], WALL);
            let from: SocketAddr = format!("192.0.2.{}:9", i + 1).parse().unwrap();
            let init = init_of(&mut other, now);
            let r = s.receive(&init, from, now, &mut back);
            if back.len() == COOKIE_LEN {
                assert_eq!(other.receive(&back, now, &mut out), Ok(ClientRecv::Cookie));
                // the attempt in flight runs out, the next carries mac2
                let later = now + config.handshake_retry;
                let init = init_of(&mut other, later);
                let _ = s.receive(&init, from, later, &mut back);
            } else {
                assert!(matches!(
                    r,
                    Ok(ServerRecv::Reply(_)) | Err(Drop::TooManyPending)
                ));
            }
        }
        assert_eq!(s.pending_handshakes(), 4);
        // The live cable rekeys all the same.
        now += Duration::from_millis(250);
        let init2 = init_of(&mut c, now);
        let mut r = s.receive(&init2, addr, now, &mut back);
        if cookie_threshold <= 4 {
            assert_eq!(back.len(), COOKIE_LEN, "under load: a COOKIE first");
            assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Cookie));
            assert!(c.is_up());
            now += config.handshake_retry;
            let init3 = init_of(&mut c, now);
            r = s.receive(&init3, addr, now, &mut back);
        }
        assert_eq!(
            r,
            Ok(ServerRecv::Reply(addr)),
            "the live cable's rekey is answered"
        );
        assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Rekeyed));
        assert_eq!(c.poll(now, &mut out), Some(ClientEvent::Send));
        assert_eq!(
            s.receive(&out, addr, now, &mut back),
            Ok(ServerRecv::Rekeyed(peer))
        );
        frames_flow(&mut c, &mut s, peer, addr, now);
        // And a new cable is still refused while the table is full.
        let mut late = client_of(
            &config,
            Identity::from_bytes([0x99; 32]),
            *b"late-one",
            WALL,
        );
        let init = init_of(&mut late, now);
        let mut r = s.receive(&init, addr, now, &mut back);
        if back.len() == COOKIE_LEN {
            late.receive(&back, now, &mut out).unwrap();
            let later = now + config.handshake_retry;
            let init = init_of(&mut late, later);
            r = s.receive(&init, addr, later, &mut back);
        }
        assert_eq!(r, Err(Drop::TooManyPending));
    }
}

#[test]
fn cookies_under_load() {
    // Always under load: no INIT gets any X25519 without a cookie.
    let config = Config {
        cookie_threshold: 0,
        ..Config::default()
    };
    let mut c = new_client(&config, psk_auth(), KEY_ID, Duration::ZERO);
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let addr = client_addr();
    let now = Duration::from_millis(1);
    let (mut out, mut back) = (Vec::new(), Vec::new());
    let init = init_of(&mut c, now);
    assert_eq!(
        &init[INIT_MAC2_OFFSET..],
        &[0u8; 16],
        "no cookie yet: no mac2"
    );
    assert_eq!(
        s.receive(&init, addr, now, &mut back),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(back.len(), COOKIE_LEN);
    assert_eq!(back[0], 0x03);
    assert!(back.len() <= init.len(), "a COOKIE never amplifies");
    assert_eq!(s.stats().cookies_sent, 1);
    assert_eq!(s.pending_handshakes(), 0, "no pending slot for a COOKIE");
    assert_eq!(s.peers().count(), 0);
    let cookie = back.clone();
    assert_eq!(c.receive(&cookie, now, &mut out), Ok(ClientRecv::Cookie));
    // The attempt in flight is not cancelled (no new INIT yet); the next
    // one, when it runs out, carries mac2.
    assert_eq!(c.poll(now, &mut out), None);
    let now = now + config.handshake_retry;
    let init2 = init_of(&mut c, now);
    assert_ne!(&init2[INIT_MAC2_OFFSET..], &[0u8; 16]);

    // Someone else (another address) sending that INIT: its mac2 is bound
    // to the client's address, so it only gets a COOKIE (for itself).
    let spoofer = attacker_addr();
    assert_eq!(
        s.receive(&init2, spoofer, now, &mut back),
        Ok(ServerRecv::Reply(spoofer))
    );
    assert_eq!(back.len(), COOKIE_LEN);
    assert_eq!(s.pending_handshakes(), 0);
    // Nor does a mac2 that was altered.
    let mut bad = init2.clone();
    bad[INIT_LEN - 1] ^= 1;
    assert_eq!(
        s.receive(&bad, addr, now, &mut back),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(back.len(), COOKIE_LEN);
    assert_eq!(s.pending_handshakes(), 0);
    assert_eq!(s.stats().cookies_sent, 3);

    // From the client's address it goes through.
    assert_eq!(
        s.receive(&init2, addr, now, &mut back),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(back.len(), RESP_LEN);
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    assert_eq!(c.poll(now, &mut out), Some(ClientEvent::Send));
    let Ok(ServerRecv::PeerUp(peer, ..)) = s.receive(&out, addr, now, &mut back) else {
        panic!("not confirmed");
    };
    frames_flow(&mut c, &mut s, peer, addr, now);
    // A COOKIE nobody asked for (no handshake in flight) is dropped, and
    // so is one for another INIT.
    assert_eq!(c.receive(&cookie, now, &mut out), Err(Drop::UnknownIndex));
    assert_eq!(s.stats().cookies_sent, 3);
}

#[test]
fn cookies_under_load_through_the_simulated_link() {
    // The whole exchange driven by the timers: INIT, COOKIE, INIT with
    // mac2, RESP, KEEPALIVE; the cookie is reused by the rekeys.
    let config = Config {
        cookie_threshold: 0,
        rekey_after_time: Duration::from_secs(2),
        ..Config::default()
    };
    let retry = config.handshake_retry;
    let mut net = Net::psk_mode(config);
    let took = net.run_until(retry + Duration::from_millis(50), |n| {
        n.client.is_up() && n.server.peers().count() == 1
    });
    // The attempt the COOKIE answered runs out first (a COOKIE does not
    // cancel it), then one retry with mac2 completes at once.
    assert!(
        took >= retry && took <= retry + 2 * MS,
        "one retry interval: {took:?}"
    );
    assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::Cookie)), 1);
    net.run(Duration::from_millis(4500));
    assert_eq!(net.server.stats().rekeys, 2);
    assert_eq!(net.server.stats().cookies_sent, 1, "the cookie is kept");
    assert_eq!(net.server.stats().dropped_total(), 0);
}

#[test]
fn a_psk_holder_cannot_take_over_another_clients_cable() {
    let config = Config::default();
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let (victim_addr, attacker) = (client_addr(), attacker_addr());
    let now = Duration::from_millis(1);
    let mut victim = client_of(&config, client_identity(), KEY_ID, WALL);
    let ServerRecv::PeerUp(vp, kid, a) = handshake(&mut victim, &mut s, victim_addr, now) else {
        panic!("victim not up");
    };
    assert_eq!((kid, a), (KEY_ID, victim_addr));
    // The attacker has the PSK file but not the victim's identity, and
    // names the victim's cable id, with later timestamps.
    let mallory = Identity::from_bytes([0x66; 32]);
    let mut m = client_of(&config, mallory.clone(), KEY_ID, WALL + 1_000_000_000);
    let r = handshake(&mut m, &mut s, attacker, now);
    let ServerRecv::PeerUp(mp, mkid, ma) = r else {
        panic!("{r:?}");
    };
    // A separate peer (the cable id is the same; the cable is not).
    assert_ne!(mp, vp);
    assert_eq!((mkid, ma), (KEY_ID, attacker));
    assert_eq!(s.peers().count(), 2);
    assert_eq!(s.peer_identity(vp), Some(client_pub()));
    assert_eq!(s.peer_identity(mp), Some(mallory.public()));
    assert_eq!(s.peer_by_key(&client_pub(), &KEY_ID), Some(vp));
    assert_eq!(s.peer_by_key(&mallory.public(), &KEY_ID), Some(mp));
    // The victim's peer keeps its address and its keys: traffic both ways.
    let victim_entry = s.peers().find(|p| p.0 == vp).unwrap();
    assert_eq!(victim_entry, (vp, KEY_ID, victim_addr));
    frames_flow(&mut victim, &mut s, vp, victim_addr, now);
    frames_flow(&mut m, &mut s, mp, attacker, now);
    // The attacker's rekeys stay on its own peer.
    let later = now + config.rekey_after_time;
    assert_eq!(
        handshake(&mut m, &mut s, attacker, later),
        ServerRecv::Rekeyed(mp)
    );
    frames_flow(&mut victim, &mut s, vp, victim_addr, later);
    assert_eq!(s.peers().find(|p| p.0 == vp).unwrap().2, victim_addr);
}

#[test]
fn a_ticket_is_for_the_identity_it_names() {
    let config = Config::default();
    let mut s = new_server(&config, KeySource::Tickets);
    let now = Duration::from_millis(1);
    s.add_ticket(KEY_ID, psk(), client_pub(), now);
    // Someone else with the ticket's key id and PSK (stolen from the
    // ticket exchange, say) and the server's public key.
    let mallory = Identity::from_bytes([0x66; 32]);
    let mut m = Client::new(
        config.clone(),
        mallory,
        ticket_auth(),
        KEY_ID,
        psk(),
        WALL,
        Duration::ZERO,
    );
    let init = init_of(&mut m, now);
    let mut out = Vec::new();
    assert_eq!(
        s.receive(&init, attacker_addr(), now, &mut out),
        Err(Drop::BadIdentity)
    );
    assert!(out.is_empty(), "no answer");
    assert_eq!(s.pending_handshakes(), 0);
    assert_eq!(s.stats().packets_out, 0);
    // The identity it names connects (the attacker's INIT took no
    // timestamp from it).
    let mut c = new_client(&config, ticket_auth(), KEY_ID, Duration::ZERO);
    let r = handshake(&mut c, &mut s, client_addr(), now);
    assert!(matches!(r, ServerRecv::PeerUp(_, KEY_ID, _)), "{r:?}");
    assert_eq!(s.peer_identity(r.peer().unwrap()), Some(client_pub()));
}

#[test]
fn a_held_back_packet_released_from_elsewhere_does_not_move_the_peer() {
    let (mut c, mut s) = (client(), server());
    let addr = client_addr();
    let now = Duration::from_millis(1);
    let ServerRecv::PeerUp(peer, ..) = handshake(&mut c, &mut s, addr, now) else {
        panic!("no peer");
    };
    let (mut k, mut k1, mut out) = (Vec::new(), Vec::new(), Vec::new());
    c.seal(b"held back", now, &mut k).unwrap();
    c.seal(b"next", now, &mut k1).unwrap();
    // k+1 arrives from the client's address...
    assert_eq!(
        s.receive(&k1, addr, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    // ...then the attacker releases k from its own.
    assert_eq!(
        s.receive(&k, attacker_addr(), now, &mut out),
        Ok(ServerRecv::Frame(peer)),
        "a genuine frame, accepted"
    );
    assert_eq!(out, b"held back");
    assert_eq!(
        s.receive(&k, attacker_addr(), now, &mut out),
        Err(Drop::Replay),
        "once"
    );
    assert_eq!(s.peers().next().unwrap(), (peer, KEY_ID, addr), "not moved");
    assert_eq!(s.seal(peer, b"to the client", now, &mut out), Ok(addr));
    // The client's next packet from a new address does move it (roaming).
    let roamed: SocketAddr = "198.51.100.200:1234".parse().unwrap();
    c.seal(b"roamed", now, &mut k).unwrap();
    assert_eq!(
        s.receive(&k, roamed, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(s.peers().next().unwrap().2, roamed);
    assert_eq!(s.seal(peer, b"follow", now, &mut out), Ok(roamed));
}

#[test]
fn a_packet_held_back_across_a_rekey_does_not_move_the_peer() {
    let config = Config {
        rekey_after_time: Duration::from_millis(100),
        dead_after: Duration::from_secs(10),
        ..Config::default()
    };
    let mut c = new_client(&config, psk_auth(), KEY_ID, Duration::ZERO);
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let addr = client_addr();
    let mut now = Duration::from_millis(1);
    let ServerRecv::PeerUp(peer, ..) = handshake(&mut c, &mut s, addr, now) else {
        panic!("no peer");
    };
    // The attacker holds back the client's last packets under the first
    // keypair (never delivered: each is the newest of its keypair)...
    let (mut held, mut held2, mut out) = (Vec::new(), Vec::new(), Vec::new());
    c.seal(b"held back", now, &mut held).unwrap();
    c.seal(b"held back too", now, &mut held2).unwrap();
    // ...the client rekeys...
    now += config.rekey_after_time;
    assert_eq!(
        handshake(&mut c, &mut s, addr, now),
        ServerRecv::Rekeyed(peer)
    );
    frames_flow(&mut c, &mut s, peer, addr, now);
    // ...and the attacker releases them from its own address while the
    // previous keypair still opens: genuine frames, but older than
    // everything under the current keypair.
    for (pkt, frame) in [(&held, &b"held back"[..]), (&held2, &b"held back too"[..])] {
        assert_eq!(
            s.receive(pkt, attacker_addr(), now, &mut out),
            Ok(ServerRecv::Frame(peer))
        );
        assert_eq!(out, frame);
        assert_eq!(s.peers().next().unwrap().2, addr, "moved by an old packet");
        assert_eq!(s.seal(peer, b"x", now, &mut out), Ok(addr));
    }
}

#[test]
fn two_clients_on_one_identity() {
    let config = Config::default();
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "198.51.100.1:1000".parse().unwrap(),
        "198.51.100.2:2000".parse().unwrap(),
    );
    let now = Duration::from_millis(1);
    // Different cable ids: two peers, side by side.
    let mut a = client_of(&config, client_identity(), *b"cable-aa", WALL);
    let mut b = client_of(&config, client_identity(), *b"cable-bb", WALL);
    let ServerRecv::PeerUp(pa, ..) = handshake(&mut a, &mut s, a_addr, now) else {
        panic!("a");
    };
    let ServerRecv::PeerUp(pb, ..) = handshake(&mut b, &mut s, b_addr, now) else {
        panic!("b");
    };
    assert_ne!(pa, pb);
    assert_eq!(s.peer_identity(pa), s.peer_identity(pb));
    for _ in 0..3 {
        frames_flow(&mut a, &mut s, pa, a_addr, now);
        frames_flow(&mut b, &mut s, pb, b_addr, now);
    }
    // A's packets are not B's: one rewritten to B's index fails.
    let (mut da, mut db, mut out) = (Vec::new(), Vec::new(), Vec::new());
    a.seal(b"a", now, &mut da).unwrap();
    b.seal(b"b", now, &mut db).unwrap();
    da[4..8].copy_from_slice(&db[4..8]);
    assert_eq!(s.receive(&da, a_addr, now, &mut out), Err(Drop::BadTag));

    // The same cable id too: the cable is (identity, cable id), and whoever
    // proves the identity with a newer timestamp holds it. C's handshake
    // is a rekey of A's peer: same PeerId, C's address and keys from now;
    // A's keypair becomes the previous one (it still opens for
    // `old_key_keep`, then A is cut off and its next INIT, newer again,
    // takes the cable back). Both hold the identity's secret, so both are
    // the same client as far as the server can tell.
    let c_addr: SocketAddr = "198.51.100.3:3000".parse().unwrap();
    let mut c = client_of(&config, client_identity(), *b"cable-aa", WALL + 1_000_000);
    assert_eq!(
        handshake(&mut c, &mut s, c_addr, now),
        ServerRecv::Rekeyed(pa)
    );
    assert_eq!(s.peers().count(), 2);
    assert_eq!(s.peers().find(|p| p.0 == pa).unwrap().2, c_addr);
    frames_flow(&mut c, &mut s, pa, c_addr, now);
    // A's frames still open under the previous keypair for a while...
    a.seal(b"from a", now, &mut da).unwrap();
    assert_eq!(
        s.receive(&da, a_addr, now, &mut out),
        Ok(ServerRecv::Frame(pa))
    );
    // ...but what the server sends now goes to C, under C's keys.
    // (A's packet is under the previous keypair: it does not move the
    // peer back to A.)
    assert_eq!(s.seal(pa, b"x", now, &mut out), Ok(c_addr));
    assert_eq!(a.receive(&out, now, &mut da), Err(Drop::UnknownIndex));
    // B is untouched.
    frames_flow(&mut b, &mut s, pb, b_addr, now);
    // Past old_key_keep, A's keys open nothing.
    let later = now + config.old_key_keep + MS;
    a.seal(b"late", later, &mut da).unwrap();
    assert_eq!(
        s.receive(&da, a_addr, later, &mut out),
        Err(Drop::UnknownIndex)
    );
}

/// A Net whose client learns the server's key with KEYREQ (`pin` checked).
fn keyreq_net(config: Config, pin: Option<vde_crypto::Fingerprint>) -> Net {
    let mut net = Net::psk_mode(config.clone());
    net.client = new_client(
        &config,
        ServerAuth::Psk { known: None, pin },
        KEY_ID,
        net.now,
    );
    net
}

#[test]
fn keyreq_teaches_the_client_the_servers_key() {
    for pin in [None, Some(server_pub().digest())] {
        let mut net = keyreq_net(Config::default(), pin);
        assert_eq!(net.client.server_identity(), None);
        let took = net.run_until(Duration::from_millis(50), |n| {
            n.client.is_up() && n.server.peers().count() == 1
        });
        assert!(took <= 2 * MS, "{took:?}");
        assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::ServerKey)), 1);
        assert_eq!(net.client.server_identity(), Some(server_pub()));
        let kinds: Vec<(u8, usize)> = net.client_sent.iter().map(|d| (d[0], d.len())).collect();
        assert_eq!(&kinds[..2], &[(0x07, KEYREQ_LEN), (0x01, INIT_LEN)]);
        net.client_send(b"hi");
        net.step();
        assert_eq!(net.server_frames.last().unwrap().1, b"hi");
    }
}

#[test]
fn keyreq_answer_that_does_not_match_the_pin_is_refused() {
    let other = Identity::from_bytes([0x0e; 32]).public();
    let config = Config::default();
    let mut net = keyreq_net(config.clone(), Some(other.digest()));
    net.run(Duration::from_millis(1600));
    assert!(!net.client.is_up());
    assert_eq!(net.client.server_identity(), None);
    // Every answer refused; only key requests were sent, every
    // handshake_retry, never an INIT.
    assert!(net.client.stats().count(Drop::BadIdentity) >= 4);
    assert!(net.client_sent.len() >= 4);
    assert!(net
        .client_sent
        .iter()
        .all(|d| d[0] == 0x07 && d.len() == KEYREQ_LEN));
    assert_eq!(net.server.pending_handshakes(), 0);
    assert_eq!(net.server.peers().count(), 0);
    assert!(net.client.failed_attempts() >= 3);
}

#[test]
fn keyreq_needs_the_psk_and_psk_file_mode() {
    let now = Duration::from_millis(1);
    let mut out = Vec::new();
    let asking = |psk: Psk| {
        Client::new(
            Config::default(),
            client_identity(),
            ServerAuth::Psk {
                known: None,
                pin: None,
            },
            KEY_ID,
            psk,
            WALL,
            Duration::ZERO,
        )
    };
    let keyreq = |c: &mut Client| {
        let mut req = Vec::new();
        assert_eq!(c.poll(now, &mut req), Some(ClientEvent::Send));
        assert_eq!((req[0], req.len()), (0x07, KEYREQ_LEN));
        req
    };
    // Without the PSK: no answer.
    let mut s = server();
    let req = keyreq(&mut asking(Psk::from_bytes([0x01; 32])));
    assert_eq!(
        s.receive(&req, attacker_addr(), now, &mut out),
        Err(Drop::BadMac)
    );
    assert!(out.is_empty());
    // A ticket-mode server has no key to give: no answer either.
    let mut t = new_server(&Config::default(), KeySource::Tickets);
    let mut c = asking(psk());
    let req = keyreq(&mut c);
    assert_eq!(
        t.receive(&req, client_addr(), now, &mut out),
        Err(Drop::BadType)
    );
    assert!(out.is_empty());
    assert_eq!(t.stats().packets_out, 0);
    // The genuine answer, and its replay to a later request (another
    // nonce): refused.
    assert_eq!(
        s.receive(&req, client_addr(), now, &mut out),
        Ok(ServerRecv::Reply(client_addr()))
    );
    assert_eq!(out.len(), KEYRESP_LEN);
    assert!(out.len() <= req.len());
    let resp = out.clone();
    let mut later = asking(psk());
    let _ = keyreq(&mut later);
    assert_eq!(later.receive(&resp, now, &mut out), Err(Drop::BadMac));
    assert_eq!(later.server_identity(), None);
    // A KEYRESP with another key under the right MAC cannot be made
    // without the PSK: altered bytes are refused.
    let mut bad = resp.clone();
    bad[10] ^= 1;
    assert_eq!(c.receive(&bad, now, &mut out), Err(Drop::BadMac));
    assert_eq!(c.receive(&resp, now, &mut out), Ok(ClientRecv::ServerKey));
    assert_eq!(c.server_identity(), Some(server_pub()));
    // Once known, no further KEYRESP is expected.
    assert_eq!(c.receive(&resp, now, &mut out), Err(Drop::UnknownIndex));
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn init_hides_the_cable_id_the_timestamp_and_the_client() {
    for auth in [psk_auth(), ticket_auth()] {
        let mut c = new_client(&Config::default(), auth, KEY_ID, Duration::ZERO);
        let mut now = Duration::ZERO;
        for _ in 0..3 {
            let init = init_of(&mut c, now);
            let (who, kid, ts) = common::open_init(&init).unwrap();
            assert_eq!((who, kid), (client_pub(), KEY_ID));
            assert!(!contains(&init, &KEY_ID), "cable id in clear");
            assert!(!contains(&init, &ts.to_be_bytes()), "timestamp in clear");
            assert!(!contains(&init, &ts.to_le_bytes()), "timestamp in clear");
            assert!(
                !contains(&init, client_pub().as_bytes()),
                "identity in clear"
            );
            now += Config::default().handshake_retry;
        }
    }
}

#[test]
fn a_key_that_expires_is_told_apart_from_silence() {
    // rekeys are blocked (every INIT after the first is lost), the rest
    // flows: both ends drop the keypair at its hard lifetime and say so
    let config = Config {
        rekey_after_time: Duration::from_millis(500),
        reject_after_time: Duration::from_millis(1500),
        dead_after: Duration::from_secs(100),
        ..Config::default()
    };
    let mut c = new_client(&config, psk_auth(), KEY_ID, Duration::ZERO);
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let addr = client_addr();
    let (mut out, mut back, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    s.receive(&init, addr, now, &mut back).unwrap();
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    let (mut client_down, mut server_down) = (None, None);
    while now < Duration::from_secs(5) && (client_down.is_none() || server_down.is_none()) {
        now += Duration::from_millis(10);
        while let Some(ev) = c.poll(now, &mut out) {
            match ev {
                ClientEvent::Send if out.len() == INIT_LEN => {} // lost
                ClientEvent::Send => {
                    let _ = s.receive(&out, addr, now, &mut scratch);
                }
                ClientEvent::Down => client_down = Some(c.key_expired()),
                ClientEvent::Up => {}
            }
        }
        while let Some(ev) = s.poll(now, &mut back) {
            match ev {
                vde_crypto::ServerEvent::Send(_) => {
                    let _ = c.receive(&back, now, &mut scratch);
                }
                vde_crypto::ServerEvent::PeerDown(p) => server_down = Some(s.take_expired(p)),
            }
        }
    }
    assert_eq!(client_down, Some(true), "the client says its key expired");
    assert_eq!(server_down, Some(true), "the server says the key expired");
    assert!(
        now < Duration::from_secs(3),
        "at the hard lifetime: {now:?}"
    );
}

#[test]
fn silence_is_not_reported_as_an_expired_key() {
    let (mut c, mut s) = (client(), server());
    let addr = client_addr();
    let (mut out, mut back) = (Vec::new(), Vec::new());
    let mut now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    assert!(matches!(
        s.receive(&init, addr, now, &mut back),
        Ok(ServerRecv::Reply(_))
    ));
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    // the confirming keepalive makes the server's peer
    let _ = c.poll(now, &mut out);
    let _ = s.receive(&out, addr, now, &mut back);
    let (mut cd, mut sd) = (None, None);
    while now < Duration::from_secs(3) && (cd.is_none() || sd.is_none()) {
        now += Duration::from_millis(10);
        while let Some(ev) = c.poll(now, &mut out) {
            if ev == ClientEvent::Down {
                cd = Some(c.key_expired());
            }
        }
        while let Some(ev) = s.poll(now, &mut back) {
            if let vde_crypto::ServerEvent::PeerDown(p) = ev {
                sd = Some(s.take_expired(p));
            }
        }
    }
    assert_eq!((cd, sd), (Some(false), Some(false)));
}

/// A COOKIE is sealed under a key made from the server's PUBLIC key, with
/// the INIT's mac1 (seen on the wire) as AAD, so anyone who sees an INIT
/// and knows the server's key can make a COOKIE the client accepts. It
/// must not cancel the handshake in flight: else an attacker that can
/// inject but not drop (a man on the side) could keep a client from ever
/// completing one. (It failed while a COOKIE dropped the attempt.)
#[test]
fn a_forged_cookie_does_not_cancel_the_handshake_in_flight() {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    use vde_crypto::wire::{INIT_MAC1_OFFSET, MAC_LEN};
    let (mut c, mut s) = (client(), server());
    let now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    // The attacker: everything it needs is public or on the wire.
    let key = ring::digest::digest(
        &ring::digest::SHA256,
        &[&b"vde-crypto/2 cookie"[..], server_pub().as_bytes()].concat(),
    );
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key.as_ref()).unwrap());
    let nonce = [7u8; 12];
    let mut cookie = vec![0x42u8; MAC_LEN];
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&init[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET]),
            &mut cookie,
        )
        .unwrap();
    let mut forged = vec![0x03, 0, 0, 0];
    forged.extend_from_slice(&init[4..8]);
    forged.extend_from_slice(&nonce);
    forged.extend_from_slice(&cookie);
    forged.extend_from_slice(tag.as_ref());
    assert_eq!(forged.len(), COOKIE_LEN);
    let mut out = Vec::new();
    let _ = c.receive(&forged, now, &mut out);
    // The genuine RESP arrives just after.
    let mut resp = Vec::new();
    assert_eq!(
        s.receive(&init, client_addr(), now, &mut resp),
        Ok(ServerRecv::Reply(client_addr()))
    );
    assert_eq!(c.receive(&resp, now, &mut out), Ok(ClientRecv::Up));
}

/// INITs that fail after the key exchange (ticket mode: an identity with
/// no ticket, knowing only the server's public key) take no pending slot,
/// but each costs X25519: after 4 × `cookie_threshold` of them within a
/// second the server is under load and wants mac2, so a flood from
/// spoofed addresses costs it no more X25519. A second later it is not.
#[test]
fn inits_that_fail_after_the_key_exchange_also_bring_cookies() {
    let config = Config {
        cookie_threshold: 2,
        ..Config::default()
    };
    let mut s = new_server(&config, KeySource::Tickets);
    let mut back = Vec::new();
    let now = Duration::from_millis(1);
    let mut answers = Vec::new();
    for i in 0..12u8 {
        let mut c = Client::new(
            config.clone(),
            Identity::from_bytes([0x70 + i; 32]),
            ticket_auth(),
            [b't', i, 0, 0, 0, 0, 0, 0],
            psk(),
            WALL,
            now,
        );
        let init = init_of(&mut c, now);
        let from: SocketAddr = format!("198.18.0.{}:7", i + 1).parse().unwrap();
        answers.push(match s.receive(&init, from, now, &mut back) {
            Err(d) => format!("{d:?}"),
            Ok(_) if back.len() == COOKIE_LEN => "cookie".into(),
            Ok(r) => format!("{r:?}"),
        });
    }
    assert_eq!(s.pending_handshakes(), 0);
    let unknown = answers.iter().filter(|a| *a == "UnknownKey").count();
    assert_eq!(
        unknown, 8,
        "4 x threshold went through the key exchange: {answers:?}"
    );
    assert!(answers[8..].iter().all(|a| a == "cookie"), "{answers:?}");
    assert_eq!(s.stats().cookies_sent, 4);
    // The next second starts afresh.
    let later = now + Duration::from_secs(1);
    let mut c = Client::new(
        config.clone(),
        Identity::from_bytes([0x6f; 32]),
        ticket_auth(),
        *b"t-later!",
        psk(),
        WALL,
        later,
    );
    let init = init_of(&mut c, later);
    assert_eq!(
        s.receive(&init, client_addr(), later, &mut back),
        Err(Drop::UnknownKey)
    );
}

/// Under load, one address gets a share only. Clients of a key holder at
/// one address (each with a fresh identity, each proving the address with
/// its cookie) hold at most 4 handshake slots, and a client elsewhere still
/// gets one; and INITs that fail after the key exchange are limited to a
/// burst of 5 per address, so a proven address cannot make the server do
/// X25519 at will. (Both failed before the per-address limits.)
#[test]
fn under_load_one_address_gets_its_share_only() {
    let config = Config {
        cookie_threshold: 0,
        ..Config::default()
    };
    let retry = config.handshake_retry;
    // a client at `from` through its COOKIE round: the answer to its INIT
    // with mac2
    let with_cookie = |s: &mut Server, c: &mut Client, from: SocketAddr, now: Duration| {
        let (mut back, mut out) = (Vec::new(), Vec::new());
        let init = init_of(c, now);
        assert_eq!(
            s.receive(&init, from, now, &mut back),
            Ok(ServerRecv::Reply(from))
        );
        assert_eq!(back.len(), COOKIE_LEN);
        assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Cookie));
        let later = now + retry;
        let init = init_of(c, later);
        s.receive(&init, from, later, &mut back)
    };
    let now = Duration::from_millis(1);
    let mut s = new_server(&config, KeySource::Psk(psk()));
    let mut answers = Vec::new();
    for i in 0..8u8 {
        let mut c = client_of(
            &config,
            Identity::from_bytes([0x20 + i; 32]),
            [b'k', i, 0, 0, 0, 0, 0, 0],
            WALL,
        );
        let from: SocketAddr = format!("203.0.113.9:{}", 1000 + u16::from(i))
            .parse()
            .unwrap();
        answers.push(with_cookie(
            &mut s,
            &mut c,
            from,
            now + retry * u32::from(i),
        ));
    }
    let replies = answers
        .iter()
        .filter(|r| matches!(r, Ok(ServerRecv::Reply(_))))
        .count();
    assert_eq!(replies, 4, "{answers:?}");
    assert!(
        answers[4..].iter().all(|r| *r == Err(Drop::TooManyPending)),
        "{answers:?}"
    );
    assert_eq!(s.pending_handshakes(), 4);
    let mut elsewhere = client_of(
        &config,
        Identity::from_bytes([0x33; 32]),
        *b"honest!!",
        WALL,
    );
    let from: SocketAddr = "198.51.100.200:4000".parse().unwrap();
    let r = with_cookie(&mut s, &mut elsewhere, from, now + retry * 9);
    assert_eq!(
        r,
        Ok(ServerRecv::Reply(from)),
        "another address gets a slot"
    );

    // Ticket mode: INITs of identities with no ticket, all from one proven
    // address at once, each costing X25519 until the burst is spent.
    let mut s = new_server(&config, KeySource::Tickets);
    let from: SocketAddr = "203.0.113.10:5000".parse().unwrap();
    let ticketless = |i: u8, at: Duration| {
        Client::new(
            config.clone(),
            Identity::from_bytes([0x60 ^ i; 32]),
            ticket_auth(),
            [b'u', i, 0, 0, 0, 0, 0, 0],
            psk(),
            WALL,
            at,
        )
    };
    let first = with_cookie(&mut s, &mut ticketless(0xff, now), from, now);
    assert_eq!(first, Err(Drop::UnknownKey));
    // Ten more at one instant, each with its own cookie round (COOKIEs
    // cost no X25519 and are not limited).
    let t = now + retry;
    let answers: Vec<_> = (0..10u8)
        .map(|i| with_cookie(&mut s, &mut ticketless(i, t), from, t))
        .collect();
    let dh = answers
        .iter()
        .filter(|r| **r == Err(Drop::UnknownKey))
        .count();
    let limited = answers
        .iter()
        .filter(|r| **r == Err(Drop::RateLimited))
        .count();
    assert!(
        dh <= 5,
        "at most a burst of X25519 from one address: {answers:?}"
    );
    assert_eq!(dh + limited, 10, "{answers:?}");
    assert!(s.stats().count(Drop::RateLimited) >= 5);
}
