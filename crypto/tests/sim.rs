//! Client <-> server through a simulated link and simulated time.

mod common;

use std::time::Duration;

use common::{client_pub, new_server, psk, ticket_auth, Ev, Net, KEY_ID, MS};
use vde_crypto::{
    ClientEvent, ClientRecv, Config, Drop, KeySource, Psk, ServerEvent, ServerRecv, Suite, Suites,
};

fn up(net: &Net) -> bool {
    net.client.is_up() && net.server.peers().count() == 1
}

#[test]
fn handshake_frames_and_keepalives() {
    for suite in [Suite::ChaCha20Poly1305, Suite::Aes256Gcm] {
        let config = Config {
            suite,
            ..Config::default()
        };
        let mut net = Net::psk_mode(config);
        let took = net.run_until(Duration::from_millis(10), up);
        assert!(took <= 2 * MS, "{took:?}");
        assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::Up)), 1);
        let peer = net.only_peer();
        assert_eq!(net.client.suite(), Some(suite));
        assert_eq!(net.server.peer_suite(peer), Some(suite));
        let (_, kid, addr) = net.server.peers().next().unwrap();
        assert_eq!((kid, addr), (KEY_ID, net.addr));
        assert_eq!(net.server.peer_by_key(&client_pub(), &KEY_ID), Some(peer));

        for i in 0..50u32 {
            let frame = vec![i as u8; i as usize * 30];
            net.client_send(&frame);
            net.server_send(&frame);
            net.step();
        }
        assert_eq!(net.server_frames.len(), 50);
        assert_eq!(net.client_frames.len(), 50);
        for (i, (p, f)) in net.server_frames.iter().enumerate() {
            assert_eq!(*p, peer);
            assert_eq!(f, &vec![i as u8; i * 30]);
        }
        for (i, f) in net.client_frames.iter().enumerate() {
            assert_eq!(f, &vec![i as u8; i * 30]);
        }

        // Idle: keepalives keep both ends up.
        let t = net.now;
        net.run(Duration::from_secs(5));
        let kc = net
            .events_since(t)
            .filter(|(_, e)| *e == Ev::ServerRecv(ServerRecv::Keepalive(peer)))
            .count();
        let ks = net
            .events_since(t)
            .filter(|(_, e)| *e == Ev::ClientRecv(ClientRecv::Keepalive))
            .count();
        assert!((18..=21).contains(&kc), "client keepalives {kc}");
        assert!((18..=21).contains(&ks), "server keepalives {ks}");
        assert!(up(&net));
        assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 0);
        assert_eq!(net.server.stats().dropped_total(), 0);
        assert_eq!(net.client.stats().dropped_total(), 0);
        assert_eq!(net.client.stats().handshakes_completed, 1);
        assert_eq!(net.server.stats().handshakes_completed, 1);
        assert_eq!(net.client.failed_attempts(), 0);
    }
}

#[test]
fn dead_detection_and_recovery() {
    let config = Config::default();
    let mut net = Net::psk_mode(config.clone());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    net.run(Duration::from_millis(777));

    // Last authenticated packets seen by each side before the cut.
    let cut = net.now;
    let last_client_rx = net
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Ev::ClientRecv(_)))
        .map(|(t, _)| *t)
        .next_back()
        .unwrap();
    let last_server_rx = net
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Ev::ServerRecv(_)))
        .map(|(t, _)| *t)
        .next_back()
        .unwrap();
    net.link = false;

    net.run_until(Duration::from_secs(3), |n| !n.client.is_up());
    let down_at = net
        .log
        .iter()
        .find(|(_, e)| *e == Ev::Client(ClientEvent::Down))
        .unwrap()
        .0;
    // Exactly dead_after after the last authenticated packet (1 ms steps),
    // so within dead_after of the cut and no earlier than
    // dead_after - keepalive_interval after it.
    assert_eq!(down_at, last_client_rx + config.dead_after);
    assert!(down_at <= cut + config.dead_after);
    assert!(down_at >= cut + config.dead_after - config.keepalive_interval);
    assert!(net.client.seal(b"x", net.now, &mut Vec::new()) == Err(Drop::NotUp));

    net.run_until(Duration::from_secs(3), |n| n.server.peers().count() == 0);
    let peer_down_at = net
        .log
        .iter()
        .find(|(_, e)| *e == Ev::Server(ServerEvent::PeerDown(peer)))
        .unwrap()
        .0;
    assert_eq!(peer_down_at, last_server_rx + config.dead_after);
    assert!(peer_down_at <= cut + config.dead_after);

    // While down the client retries every handshake_retry, counting
    // failures.
    net.run(Duration::from_secs(2));
    let inits: Vec<Duration> = net
        .events_since(down_at)
        .filter(|(_, e)| *e == Ev::Client(ClientEvent::Send))
        .map(|(t, _)| *t)
        .collect();
    assert!(inits.len() >= 4, "{inits:?}");
    for w in inits.windows(2) {
        assert_eq!(w[1] - w[0], config.handshake_retry);
    }
    assert!(net.client.failed_attempts() >= 4);

    // The link returns: up again within one retry interval.
    net.link = true;
    let took = net.run_until(Duration::from_secs(2), up);
    assert!(took <= config.handshake_retry + MS, "{took:?}");
    assert_eq!(net.client.failed_attempts(), 0);
    assert_ne!(net.only_peer(), peer, "a new peer after the old one died");
    net.client_send(b"after");
    net.step();
    assert_eq!(net.server_frames.last().unwrap().1, b"after");
}

#[test]
fn server_restart_needs_a_new_ticket() {
    let config = Config::default();
    let mut net = Net::new(config.clone(), KeySource::Tickets);
    // No ticket yet: INITs are dropped unanswered.
    net.run(Duration::from_millis(1600));
    assert!(!net.client.is_up());
    assert_eq!(net.server.stats().count(Drop::UnknownKey), 4);
    assert_eq!(net.client.failed_attempts(), 3);
    assert_eq!(net.server.stats().packets_out, 0);

    net.server.add_ticket(KEY_ID, psk(), client_pub(), net.now);
    net.run_until(Duration::from_secs(1), up);
    assert_eq!(net.client.failed_attempts(), 0);

    // The server restarts: tickets and sessions are gone.
    net.server = new_server(&config, KeySource::Tickets);
    let restart = net.now;
    net.run_until(Duration::from_secs(3), |n| !n.client.is_up());
    assert!(net.server.stats().count(Drop::UnknownIndex) > 0);
    net.run(Duration::from_secs(3));
    assert!(!net.client.is_up());
    assert!(net.server.stats().count(Drop::UnknownKey) >= 5);
    let failed = net.client.failed_attempts();
    assert!(failed >= 5, "{failed}");
    net.run(config.handshake_retry);
    assert_eq!(net.client.failed_attempts(), failed + 1);
    assert_eq!(net.server.pending_handshakes(), 0);

    // The IO shell refreshes the ticket (same key id and PSK here).
    net.server.add_ticket(KEY_ID, psk(), client_pub(), net.now);
    net.run_until(Duration::from_secs(1), up);
    assert_eq!(net.client.failed_attempts(), 0);
    assert!(net.now - restart < Duration::from_secs(8));
}

#[test]
fn set_key_after_failures() {
    let config = Config::default();
    let mut net = Net::new(config, KeySource::Tickets);
    let new_id = *b"cable-02";
    let new_psk = Psk::from_bytes([0x77; 32]);
    net.server
        .add_ticket(new_id, new_psk.clone(), client_pub(), net.now);
    net.run(Duration::from_millis(2100));
    assert_eq!(net.client.failed_attempts(), 4);
    net.client.set_key(new_id, new_psk, ticket_auth());
    assert_eq!(net.client.failed_attempts(), 0);
    assert_eq!(net.client.key_id(), new_id);
    net.run_until(Duration::from_millis(5), up);
    assert_eq!(net.server.peers().next().unwrap().1, new_id);
}

fn rekey_test(config: Config, mut drive: impl FnMut(&mut Net)) {
    let keep = config.old_key_keep;
    let suite = config.suite;
    let mut net = Net::psk_mode(config);
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    assert_eq!(net.client.suite(), Some(suite));
    assert_eq!(net.server.peer_suite(peer), Some(suite));

    // Sealed under the first keypair, held back ("in flight").
    let mut old_c = Vec::new();
    let mut old_s = Vec::new();
    for i in 0..3u8 {
        let mut d = Vec::new();
        net.client.seal(&[b'c', i], net.now, &mut d).unwrap();
        old_c.push(d);
        let mut d = Vec::new();
        net.server.seal(peer, &[b's', i], net.now, &mut d).unwrap();
        old_s.push(d);
    }

    while net.server.stats().rekeys == 0 {
        drive(&mut net);
        assert!(net.now < Duration::from_secs(400), "no rekey");
    }
    assert_eq!(net.client.stats().rekeys, 1);
    assert_eq!(net.only_peer(), peer, "same peer across a rekey");
    // The rekey negotiated again, to the same suite (the config of neither
    // end can change mid-session).
    assert_eq!(net.client.suite(), Some(suite));
    assert_eq!(net.server.peer_suite(peer), Some(suite));
    assert_eq!(net.server.stats().count(Drop::BadSuite), 0);
    assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::Rekeyed)), 1);
    assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::Up)), 1);
    assert!(net
        .log
        .iter()
        .any(|(_, e)| matches!(e, Ev::ServerRecv(ServerRecv::Rekeyed(p) | ServerRecv::RekeyedFrame(p)) if *p == peer)));
    let rekeyed_at = net.now;

    // Old packets still open, once.
    let mut out = Vec::new();
    let now = net.now;
    assert_eq!(
        net.server.receive(&old_c[0], net.addr, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(out, [b'c', 0]);
    assert_eq!(
        net.server.receive(&old_c[0], net.addr, now, &mut out),
        Err(Drop::Replay)
    );
    assert_eq!(
        net.client.receive(&old_s[0], now, &mut out),
        Ok(ClientRecv::Frame)
    );
    assert_eq!(out, [b's', 0]);

    // Just before old_key_keep ends, still accepted.
    net.run(keep - Duration::from_millis(20));
    let now = net.now;
    assert_eq!(
        net.server.receive(&old_c[1], net.addr, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(
        net.client.receive(&old_s[1], now, &mut out),
        Ok(ClientRecv::Frame)
    );

    // After it, dropped and forgotten.
    net.run(Duration::from_millis(40));
    assert!(net.now >= rekeyed_at + keep);
    let now = net.now;
    assert_eq!(
        net.server.receive(&old_c[2], net.addr, now, &mut out),
        Err(Drop::UnknownIndex)
    );
    assert_eq!(
        net.client.receive(&old_s[2], now, &mut out),
        Err(Drop::UnknownIndex)
    );
    assert!(up(&net));
    net.client_send(b"new keys");
    net.server_send(b"new keys too");
    net.step();
    assert_eq!(net.server_frames.last().unwrap().1, b"new keys");
    assert_eq!(net.client_frames.last().unwrap(), b"new keys too");
}

#[test]
fn rekey_by_time() {
    for suite in Suite::ALL {
        let config = Config {
            suite,
            rekey_after_time: Duration::from_secs(3),
            old_key_keep: Duration::from_secs(2),
            ..Config::default()
        };
        rekey_test(config, |net| net.step());
    }
}

#[test]
fn rekey_by_time_happens_on_schedule_and_repeats() {
    let config = Config {
        rekey_after_time: Duration::from_secs(3),
        ..Config::default()
    };
    let mut net = Net::psk_mode(config);
    net.run_until(Duration::from_millis(10), up);
    let t0 = net.now;
    net.run(Duration::from_millis(9_500));
    let rekeys: Vec<Duration> = net
        .log
        .iter()
        .filter(|(_, e)| *e == Ev::ClientRecv(ClientRecv::Rekeyed))
        .map(|(t, _)| *t - t0)
        .collect();
    assert_eq!(rekeys.len(), 3, "{rekeys:?}");
    assert_eq!(net.server.stats().rekeys, 3);
    assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 0);
}

#[test]
fn rekey_by_bytes() {
    for suite in Suite::ALL {
        let config = Config {
            suite,
            rekey_after_bytes: 50_000,
            old_key_keep: Duration::from_secs(1),
            ..Config::default()
        };
        let frame = vec![0xabu8; 1000];
        rekey_test(config, |net| {
            net.client_send(&frame);
            net.step();
        });
    }
}

#[test]
fn repeated_rekeys_keep_a_server_pinned_suite() {
    // A server that accepts only one suite, a client proposing it: every
    // rekey renegotiates it.
    for suite in Suite::ALL {
        let config = Config {
            suite,
            accept: Suites::only(suite),
            rekey_after_time: Duration::from_secs(2),
            ..Config::default()
        };
        let mut net = Net::psk_mode(config);
        net.run_until(Duration::from_millis(10), up);
        let peer = net.only_peer();
        net.run(Duration::from_millis(6_500));
        assert_eq!(net.server.stats().rekeys, 3);
        assert_eq!(net.only_peer(), peer);
        assert_eq!(net.client.suite(), Some(suite));
        assert_eq!(net.server.peer_suite(peer), Some(suite));
        assert_eq!(net.server.stats().dropped_total(), 0);
        net.client_send(b"still");
        net.step();
        assert_eq!(net.server_frames.last().unwrap().1, b"still");
    }
}

#[test]
fn suite_mismatch_never_comes_up() {
    let config = Config {
        suite: Suite::Aes256Gcm,
        accept: Suites::only(Suite::ChaCha20Poly1305),
        ..Config::default()
    };
    let mut net = Net::psk_mode(config.clone());
    net.run(Duration::from_millis(2_100));
    assert!(!net.client.is_up());
    assert_eq!(net.client.suite(), None);
    assert_eq!(net.server.peers().count(), 0);
    // INITs at 0, 500, 1000, 1500 and 2000 ms, all dropped unanswered.
    assert_eq!(net.server.stats().count(Drop::BadSuite), 5);
    assert_eq!(net.server.stats().dropped_total(), 5);
    assert_eq!(net.server.stats().packets_out, 0);
    assert_eq!(net.server.pending_handshakes(), 0);
    assert_eq!(net.client.failed_attempts(), 4);
    assert_eq!(net.client.stats().packets_in, 0);
}

#[test]
fn default_config_negotiates_the_preferred_suite() {
    let mut net = Net::psk_mode(Config::default());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    assert_eq!(net.client.suite(), Some(Suite::preferred()));
    assert_eq!(net.server.peer_suite(peer), Some(Suite::preferred()));
    // A server that accepts only ChaCha20-Poly1305 (say, for a peer
    // without AES instructions) serves a client configured for it. (`Net`
    // gives both ends one config: the server ignores `suite`, the client
    // `accept`.)
    let config = Config {
        suite: Suite::ChaCha20Poly1305,
        accept: Suites::only(Suite::ChaCha20Poly1305),
        ..Config::default()
    };
    let mut net = Net::psk_mode(config);
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    assert_eq!(net.server.peer_suite(peer), Some(Suite::ChaCha20Poly1305));
    assert_eq!(net.client.suite(), Some(Suite::ChaCha20Poly1305));
}

#[test]
fn rekey_by_bytes_counts_received_bytes_too() {
    let config = Config {
        rekey_after_bytes: 50_000,
        ..Config::default()
    };
    let mut net = Net::psk_mode(config);
    net.run_until(Duration::from_millis(10), up);
    let frame = vec![1u8; 1000];
    for _ in 0..60 {
        net.server_send(&frame);
        net.step();
    }
    assert_eq!(net.client_frames.len(), 60);
    assert_eq!(net.server.stats().rekeys, 1);
}

#[test]
fn client_close() {
    let mut net = Net::psk_mode(Config::default());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    let mut out = Vec::new();
    assert_eq!(net.client.close(net.now, &mut out), Some(()));
    assert_eq!(out.len(), 32);
    assert_eq!(out[0], 0x06);
    let close = out.clone();
    net.send_to_server(out.clone());
    net.step();
    assert_eq!(net.count(&Ev::ServerRecv(ServerRecv::PeerClosed(peer))), 1);
    assert_eq!(net.server.peers().count(), 0);
    assert!(net.client.is_closed() && !net.client.is_up());
    // A closed client stays silent.
    net.run(Duration::from_secs(3));
    assert_eq!(net.client.next_deadline(), Duration::MAX);
    assert!(!net
        .log
        .iter()
        .any(|(t, e)| *t > net.now - Duration::from_secs(3) && matches!(e, Ev::Client(_))));
    assert_eq!(net.client.close(net.now, &mut out), None);
    assert!(out.is_empty());
    // The replayed CLOSE is dropped.
    let now = net.now;
    assert_eq!(
        net.server.receive(&close, net.addr, now, &mut Vec::new()),
        Err(Drop::UnknownIndex)
    );
}

#[test]
fn server_close_and_client_retry() {
    let config = Config::default();
    let mut net = Net::psk_mode(config.clone());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    let mut out = Vec::new();
    let to = net.server.close_peer(peer, net.now, &mut out).unwrap();
    assert_eq!(to, net.addr);
    net.send_to_client(out);
    net.step();
    let closed_at = net.now - MS;
    assert_eq!(net.count(&Ev::ClientRecv(ClientRecv::Closed)), 1);
    assert!(!net.client.is_up());
    // The client comes back after handshake_retry.
    net.run_until(Duration::from_secs(2), up);
    assert_eq!(net.now - MS, closed_at + config.handshake_retry);
}

#[test]
fn roaming_updates_peer_address() {
    let mut net = Net::psk_mode(Config::default());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    net.addr = "192.0.2.99:5555".parse().unwrap();
    net.client_send(b"from elsewhere");
    net.step();
    assert_eq!(net.server.peers().next().unwrap().2, net.addr);
    let mut out = Vec::new();
    assert_eq!(
        net.server.seal(peer, b"ok", net.now, &mut out),
        Ok(net.addr)
    );
    // A forged packet from a third address does not move the peer.
    let mut bad = out.clone();
    bad[20] ^= 1;
    let third = "192.0.2.100:1".parse().unwrap();
    assert!(net.server.receive(&bad, third, net.now, &mut out).is_err());
    assert_eq!(net.server.peers().next().unwrap().2, net.addr);
}

#[test]
fn pending_handshakes_expire() {
    let config = Config::default();
    let mut net = Net::psk_mode(config.clone());
    // The server answers but the client never hears back.
    let mut out = Vec::new();
    let mut init = Vec::new();
    assert_eq!(net.client.poll(net.now, &mut init), Some(ClientEvent::Send));
    let now = net.now;
    assert!(matches!(
        net.server.receive(&init, net.addr, now, &mut out),
        Ok(ServerRecv::Reply(_))
    ));
    assert_eq!(net.server.pending_handshakes(), 1);
    assert_eq!(net.server.next_deadline(), now + config.pending_timeout);
    while net
        .server
        .poll(now + config.pending_timeout - MS, &mut out)
        .is_some()
    {}
    assert_eq!(net.server.pending_handshakes(), 1);
    while net
        .server
        .poll(now + config.pending_timeout, &mut out)
        .is_some()
    {}
    assert_eq!(net.server.pending_handshakes(), 0);
    assert_eq!(net.server.next_deadline(), Duration::MAX);
}

/// When the client's and the server's first keypair became current.
fn up_times(net: &Net) -> (Duration, Duration) {
    let client = net
        .log
        .iter()
        .find(|(_, e)| *e == Ev::ClientRecv(ClientRecv::Up))
        .unwrap()
        .0;
    let server = net
        .log
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                Ev::ServerRecv(ServerRecv::PeerUp(..) | ServerRecv::PeerUpFrame(..))
            )
        })
        .unwrap()
        .0;
    (client, server)
}

/// Brings the cable up, makes rekeys impossible with `block`, and checks that
/// both ends drop the keypair at `reject_after_time`, then that the client
/// keeps handshaking and comes back once `unblock` lets it.
fn expiry_test(
    config: Config,
    mut net: Net,
    block: impl FnOnce(&mut Net),
    unblock: impl FnOnce(&mut Net),
) {
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    let (client_up, server_up) = up_times(&net);
    // Zero latency: the confirming KEEPALIVE arrives in the same step.
    assert_eq!(client_up, server_up);
    let expiry = client_up + config.reject_after_time;
    block(&mut net);

    // Traffic flows under the first keypair while every rekey fails.
    let mut sent = 0;
    while net.now < expiry - MS {
        if (net.now - client_up).as_millis().is_multiple_of(100) {
            net.client_send(b"c");
            net.server_send(b"s");
            sent += 1;
        }
        net.step();
    }
    assert!(up(&net));
    assert_eq!(net.only_peer(), peer);
    assert_eq!(net.server_frames.len(), sent);
    assert_eq!(net.client_frames.len(), sent);
    assert_eq!(net.client.stats().rekeys, 0);
    assert_eq!(net.client.stats().handshakes_completed, 1);
    assert!(net.client.failed_attempts() > 0, "rekeys were attempted");
    assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 0);
    assert_eq!(net.count(&Ev::Server(ServerEvent::PeerDown(peer))), 0);
    // The expiry is a deadline of both ends.
    assert!(net.client.next_deadline() <= expiry);
    assert!(net.server.next_deadline() <= expiry);

    // Sealed 1 ms before the expiry, delivered at it: dropped.
    let (mut late_c, mut late_s) = (Vec::new(), Vec::new());
    net.client.seal(b"late", net.now, &mut late_c).unwrap();
    net.server
        .seal(peer, b"late", net.now, &mut late_s)
        .unwrap();
    net.step();
    assert_eq!(net.now, expiry);
    assert!(up(&net), "nothing expires before reject_after_time");
    let (now, addr) = (net.now, net.addr);
    let mut out = Vec::new();
    assert_eq!(net.client.seal(b"x", now, &mut out), Err(Drop::KeyExpired));
    assert!(out.is_empty());
    assert_eq!(
        net.server.seal(peer, b"x", now, &mut out),
        Err(Drop::KeyExpired)
    );
    assert!(out.is_empty());
    assert_eq!(
        net.client.receive(&late_s, now, &mut out),
        Err(Drop::KeyExpired)
    );
    assert_eq!(
        net.server.receive(&late_c, addr, now, &mut out),
        Err(Drop::KeyExpired)
    );
    assert_eq!(net.client.stats().count(Drop::KeyExpired), 1);
    assert_eq!(net.server.stats().count(Drop::KeyExpired), 1);
    assert!(net.client.next_deadline() <= expiry);
    assert!(net.server.next_deadline() <= expiry);

    // Both ends go down exactly at the expiry.
    net.step();
    let down = |e: Ev| net.log.iter().find(|(_, x)| *x == e).map(|(t, _)| *t);
    assert_eq!(down(Ev::Client(ClientEvent::Down)), Some(expiry));
    assert_eq!(down(Ev::Server(ServerEvent::PeerDown(peer))), Some(expiry));
    assert!(!net.client.is_up());
    assert_eq!(net.server.peers().count(), 0);
    assert_eq!(net.client.suite(), None);
    assert_eq!(
        net.client.seal(b"x", net.now, &mut out),
        Err(Drop::KeyExpired)
    );
    assert_eq!(
        net.server.seal(peer, b"x", net.now, &mut out),
        Err(Drop::NotUp)
    );

    // The client keeps handshaking, every handshake_retry, and seal keeps
    // saying why.
    net.run(Duration::from_secs(2));
    let inits: Vec<Duration> = net
        .events_since(expiry)
        .filter(|(_, e)| *e == Ev::Client(ClientEvent::Send))
        .map(|(t, _)| *t)
        .collect();
    assert!(inits.len() >= 4, "{inits:?}");
    for w in inits.windows(2) {
        assert_eq!(w[1] - w[0], config.handshake_retry);
    }
    assert_eq!(
        net.client.seal(b"x", net.now, &mut out),
        Err(Drop::KeyExpired)
    );
    assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 1);

    // Rekeys possible again: up within one retry interval, with new keys.
    unblock(&mut net);
    let took = net.run_until(Duration::from_secs(2), up);
    assert!(took <= config.handshake_retry + MS, "{took:?}");
    assert_ne!(net.only_peer(), peer);
    net.client_send(b"fresh");
    net.server_send(b"fresh too");
    net.step();
    assert_eq!(net.server_frames.last().unwrap().1, b"fresh");
    assert_eq!(net.client_frames.last().unwrap(), b"fresh too");
}

#[test]
fn keypair_expires_when_the_server_lost_the_ticket() {
    let config = Config {
        rekey_after_time: Duration::from_secs(3),
        reject_after_time: Duration::from_secs(9),
        ..Config::default()
    };
    let mut net = Net::new(config.clone(), KeySource::Tickets);
    net.server.add_ticket(KEY_ID, psk(), client_pub(), net.now);
    expiry_test(
        config,
        net,
        |net| net.server.remove_ticket(&KEY_ID),
        |net| {
            let now = net.now;
            net.server.add_ticket(KEY_ID, psk(), client_pub(), now)
        },
    );
}

#[test]
fn keypair_expires_at_the_default_limit_when_inits_are_lost() {
    let config = Config::default();
    assert_eq!(config.reject_after_time, 3 * config.rekey_after_time);
    assert_eq!(config.reject_after_time, Duration::from_secs(360));
    let net = Net::psk_mode(config.clone());
    expiry_test(
        config,
        net,
        |net| net.drop_inits = true,
        |net| net.drop_inits = false,
    );
}

#[test]
fn working_rekeys_never_reach_the_limit() {
    for config in [
        Config {
            rekey_after_time: Duration::from_secs(3),
            reject_after_time: Duration::from_secs(9),
            ..Config::default()
        },
        Config::default(),
    ] {
        let mut net = Net::psk_mode(config.clone());
        net.run_until(Duration::from_millis(10), up);
        let peer = net.only_peer();
        let start = net.now;
        let mut sent = 0;
        while net.now < start + 10 * config.rekey_after_time {
            if (net.now - start).as_millis().is_multiple_of(50) {
                // `client_send` and `server_send` unwrap: seal never fails.
                net.client_send(b"c");
                net.server_send(b"s");
                sent += 1;
            }
            net.step();
        }
        assert!(up(&net));
        assert_eq!(net.only_peer(), peer);
        assert_eq!(net.server_frames.len(), sent);
        assert_eq!(net.client_frames.len(), sent);
        assert!(net.client.stats().rekeys >= 9, "{:?}", net.client.stats());
        assert_eq!(net.server.stats().rekeys, net.client.stats().rekeys);
        assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 0);
        assert_eq!(net.count(&Ev::Server(ServerEvent::PeerDown(peer))), 0);
        assert_eq!(net.client.stats().dropped_total(), 0);
        assert_eq!(net.server.stats().dropped_total(), 0);
        assert_eq!(net.client.failed_attempts(), 0);
    }
}

#[test]
fn previous_keypair_does_not_outlive_reject_after_time() {
    // old_key_keep would keep the first keypair until 3 + 5 s; its
    // lifetime ends at 4 s.
    let config = Config {
        rekey_after_time: Duration::from_secs(3),
        reject_after_time: Duration::from_secs(4),
        old_key_keep: Duration::from_secs(5),
        ..Config::default()
    };
    let mut net = Net::psk_mode(config.clone());
    net.run_until(Duration::from_millis(10), up);
    let peer = net.only_peer();
    let (client_up, _) = up_times(&net);
    let mut old_c = Vec::new();
    let mut old_s = Vec::new();
    for i in 0..2u8 {
        let mut d = Vec::new();
        net.client.seal(&[b'c', i], net.now, &mut d).unwrap();
        old_c.push(d);
        let mut d = Vec::new();
        net.server.seal(peer, &[b's', i], net.now, &mut d).unwrap();
        old_s.push(d);
    }
    let expiry = client_up + config.reject_after_time;
    while net.now < expiry - MS {
        net.step();
    }
    assert_eq!(net.server.stats().rekeys, 1);
    let (now, addr) = (net.now, net.addr);
    let mut out = Vec::new();
    assert_eq!(
        net.server.receive(&old_c[0], addr, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(
        net.client.receive(&old_s[0], now, &mut out),
        Ok(ClientRecv::Frame)
    );
    net.step();
    let now = net.now;
    assert_eq!(now, expiry);
    assert_eq!(
        net.server.receive(&old_c[1], addr, now, &mut out),
        Err(Drop::UnknownIndex)
    );
    assert_eq!(
        net.client.receive(&old_s[1], now, &mut out),
        Err(Drop::UnknownIndex)
    );
    // The current keypair is young: the cable stays up.
    net.run(Duration::from_secs(1));
    assert!(up(&net));
    assert_eq!(net.only_peer(), peer);
    assert_eq!(net.count(&Ev::Client(ClientEvent::Down)), 0);
}
