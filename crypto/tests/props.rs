//! Property-style tests with seeded loops: tampering, truncation, replay,
//! reordering, garbage, floods.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    client_addr, client_identity, client_pub, new_client, new_server, open_init, psk, psk_auth,
    server_pub, ticket_auth, TestRng, KEY_ID, WALL,
};
use vde_crypto::wire::{INIT_LEN, INIT_MAC2_OFFSET, RESP_LEN};
use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Drop, Identity, KeyId, KeySource, PeerId, Psk, Server,
    ServerAuth, ServerRecv, Suite, Suites,
};

const T0: Duration = Duration::from_secs(50);

fn from() -> SocketAddr {
    client_addr()
}

/// A PSK-file-mode client that knows the server's key.
fn client(config: &Config) -> Client {
    new_client(config, psk_auth(), KEY_ID, T0)
}

/// A ticket-mode client (the server's key came with the ticket).
fn ticket_client(config: &Config) -> Client {
    new_client(config, ticket_auth(), KEY_ID, T0)
}

fn psk_server(config: &Config) -> Server {
    new_server(config, KeySource::Psk(psk()))
}

fn ticket_server(config: &Config) -> Server {
    let mut s = new_server(config, KeySource::Tickets);
    s.add_ticket(KEY_ID, psk(), client_pub(), T0);
    s
}

/// Both kinds of server, each with a client that can talk to it.
fn server_client_pairs(config: &Config) -> [(Server, Client); 2] {
    [
        (psk_server(config), client(config)),
        (ticket_server(config), ticket_client(config)),
    ]
}

fn init_of(c: &mut Client, now: Duration) -> Vec<u8> {
    let mut init = Vec::new();
    assert_eq!(c.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init.len(), INIT_LEN);
    init
}

/// A confirmed pair.
fn connected(config: &Config) -> (Client, Server, PeerId) {
    let mut c = client(config);
    let mut s = psk_server(config);
    let init = init_of(&mut c, T0);
    let mut resp = Vec::new();
    assert_eq!(
        s.receive(&init, from(), T0, &mut resp),
        Ok(ServerRecv::Reply(from()))
    );
    let mut out = Vec::new();
    assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
    assert_eq!(c.poll(T0, &mut out), Some(ClientEvent::Send));
    let mut f = Vec::new();
    let Ok(ServerRecv::PeerUp(id, ..)) = s.receive(&out, from(), T0, &mut f) else {
        panic!("not confirmed");
    };
    (c, s, id)
}

/// The default config, proposing `suite`.
fn proposing(suite: Suite) -> Config {
    Config {
        suite,
        ..Config::default()
    }
}

/// The default config, accepting `accept`.
fn accepting(accept: Suites) -> Config {
    Config {
        accept,
        ..Config::default()
    }
}

fn flips(len: usize) -> impl Iterator<Item = (usize, u8)> {
    (0..len).flat_map(|i| (0..8).map(move |b| (i, 1u8 << b)))
}

#[test]
fn every_bit_flip_of_init_is_rejected() {
    let config = Config::default();
    for (mut server, mut c) in server_client_pairs(&config) {
        let init = init_of(&mut c, T0);
        let mut out = Vec::new();
        // Every byte up to mac2. (mac2 is only looked at under load, where a
        // wrong one gets a COOKIE instead of a RESP: see
        // `attacks::cookies_under_load`.)
        for (i, bit) in flips(INIT_MAC2_OFFSET) {
            let mut bad = init.clone();
            bad[i] ^= bit;
            let r = server.receive(&bad, from(), T0, &mut out);
            assert!(r.is_err(), "byte {i} bit {bit:#x}: {r:?}");
            assert!(out.is_empty());
            if i == 1 {
                // mac1 covers the suite byte.
                assert_eq!(r, Err(Drop::BadMac), "bit {bit:#x}");
            }
        }
        assert_eq!(server.pending_handshakes(), 0);
        assert_eq!(server.stats().packets_out, 0);
        assert_eq!(server.stats().dropped_total(), INIT_MAC2_OFFSET as u64 * 8);
        // The genuine one still works.
        assert!(matches!(
            server.receive(&init, from(), T0, &mut out),
            Ok(ServerRecv::Reply(_))
        ));
    }
}

#[test]
fn every_bit_flip_of_resp_is_rejected() {
    for suite in Suite::ALL {
        let config = proposing(suite);
        // One handshake for all the flips: a RESP that does not verify
        // leaves the client's handshake state (its ephemeral key) as it was,
        // so the genuine RESP still completes after all of them.
        let mut c = client(&config);
        let mut s = psk_server(&config);
        let init = init_of(&mut c, T0);
        let mut resp = Vec::new();
        s.receive(&init, from(), T0, &mut resp).unwrap();
        assert_eq!(resp.len(), RESP_LEN);
        assert_eq!(resp[1], suite.id());
        for (i, bit) in flips(RESP_LEN) {
            let mut bad = resp.clone();
            bad[i] ^= bit;
            let mut out = Vec::new();
            let r = c.receive(&bad, T0, &mut out);
            assert!(r.is_err(), "{suite} byte {i} bit {bit:#x}: {r:?}");
            if i == 1 {
                // Another (or an unknown) suite than the one proposed.
                assert_eq!(r, Err(Drop::BadSuite), "{suite} bit {bit:#x}");
            }
            assert!(out.is_empty());
            assert!(!c.is_up());
            assert_eq!(c.suite(), None);
            // It owes nothing to anyone except, later, a retransmitted INIT.
            assert_eq!(c.poll(T0, &mut out), None);
        }
        assert_eq!(c.stats().dropped_total(), RESP_LEN as u64 * 8);
        let mut out = Vec::new();
        assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
        assert_eq!(c.suite(), Some(suite));
    }
}

#[test]
fn every_bit_flip_of_data_is_rejected() {
    let config = Config::default();
    let (mut c, mut s, id) = connected(&config);
    let mut data = Vec::new();
    c.seal(b"a frame of some length", T0, &mut data).unwrap();
    let mut out = Vec::new();
    for (i, bit) in flips(data.len()) {
        let mut bad = data.clone();
        bad[i] ^= bit;
        let r = s.receive(&bad, from(), T0, &mut out);
        assert!(r.is_err(), "byte {i} bit {bit:#x}: {r:?}");
        assert!(out.is_empty());
        if i == 1 {
            // Transport packets carry no suite: byte 1 stays reserved.
            assert_eq!(r, Err(Drop::BadReserved), "bit {bit:#x}");
        }
    }
    assert_eq!(
        s.receive(&data, from(), T0, &mut out),
        Ok(ServerRecv::Frame(id))
    );
    assert_eq!(out, b"a frame of some length");

    // And server -> client.
    let mut back = Vec::new();
    s.seal(id, b"the other way", T0, &mut back).unwrap();
    for (i, bit) in flips(back.len()) {
        let mut bad = back.clone();
        bad[i] ^= bit;
        assert!(c.receive(&bad, T0, &mut out).is_err(), "byte {i}");
        assert!(out.is_empty());
    }
    assert_eq!(c.receive(&back, T0, &mut out), Ok(ClientRecv::Frame));
    assert!(c.is_up());
}

#[test]
fn every_truncation_is_rejected() {
    let config = Config::default();
    // INIT.
    let mut c = client(&config);
    let mut s = psk_server(&config);
    let init = init_of(&mut c, T0);
    let mut out = Vec::new();
    for n in 0..init.len() {
        assert!(s.receive(&init[..n], from(), T0, &mut out).is_err(), "{n}");
        assert!(out.is_empty());
    }
    let mut resp = Vec::new();
    s.receive(&init, from(), T0, &mut resp).unwrap();
    // RESP (truncations never reach the key agreement).
    for n in 0..resp.len() {
        assert!(c.receive(&resp[..n], T0, &mut out).is_err(), "{n}");
    }
    let mut longer = resp.clone();
    longer.push(0);
    assert_eq!(c.receive(&longer, T0, &mut out), Err(Drop::BadLength));
    assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
    // DATA and KEEPALIVE.
    let mut ka = Vec::new();
    c.poll(T0, &mut ka).unwrap();
    let mut data = Vec::new();
    c.seal(&[7u8; 100], T0, &mut data).unwrap();
    for pkt in [&ka, &data] {
        for n in 0..pkt.len() {
            assert!(s.receive(&pkt[..n], from(), T0, &mut out).is_err(), "{n}");
            assert!(out.is_empty());
        }
    }
    assert!(matches!(
        s.receive(&ka, from(), T0, &mut out),
        Ok(ServerRecv::PeerUp(..))
    ));
    assert!(matches!(
        s.receive(&data, from(), T0, &mut out),
        Ok(ServerRecv::Frame(_))
    ));
    // A KEEPALIVE or CLOSE with a payload is malformed.
    let mut padded = ka.clone();
    padded.push(0);
    assert_eq!(
        s.receive(&padded, from(), T0, &mut out),
        Err(Drop::BadLength)
    );
}

#[test]
fn replayed_data_is_rejected_and_counted_once_per_replay() {
    let config = Config::default();
    let (mut c, mut s, id) = connected(&config);
    let mut data = Vec::new();
    c.seal(b"once", T0, &mut data).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        s.receive(&data, from(), T0, &mut out),
        Ok(ServerRecv::Frame(id))
    );
    for k in 1..=5 {
        assert_eq!(s.receive(&data, from(), T0, &mut out), Err(Drop::Replay));
        assert!(out.is_empty());
        assert_eq!(s.stats().count(Drop::Replay), k);
        assert_eq!(s.stats().dropped_total(), k);
    }
    // The confirming KEEPALIVE, replayed.
    let mut back = Vec::new();
    s.seal(id, b"x", T0, &mut back).unwrap();
    assert_eq!(c.receive(&back, T0, &mut out), Ok(ClientRecv::Frame));
    assert_eq!(c.receive(&back, T0, &mut out), Err(Drop::Replay));
    assert_eq!(c.stats().count(Drop::Replay), 1);
}

#[test]
fn reordering_within_2048_is_accepted_exactly_once() {
    let config = Config::default();
    let (mut c, mut s, id) = connected(&config);
    let mut rng = TestRng::new(0x5eed);
    for round in 0..3u32 {
        let mut pkts: Vec<(u32, Vec<u8>)> = (0..2048u32)
            .map(|i| {
                let mut d = Vec::new();
                c.seal(&(round * 10_000 + i).to_le_bytes(), T0, &mut d)
                    .unwrap();
                (i, d)
            })
            .collect();
        rng.shuffle(&mut pkts);
        let mut seen = vec![false; 2048];
        let mut out = Vec::new();
        for (i, d) in &pkts {
            assert_eq!(
                s.receive(d, from(), T0, &mut out),
                Ok(ServerRecv::Frame(id))
            );
            let v = u32::from_le_bytes(out[..4].try_into().unwrap());
            assert_eq!(v, round * 10_000 + i);
            assert!(!seen[*i as usize]);
            seen[*i as usize] = true;
        }
        assert!(seen.iter().all(|&b| b));
        let before = s.stats().count(Drop::Replay);
        for (_, d) in &pkts {
            assert_eq!(s.receive(d, from(), T0, &mut out), Err(Drop::Replay));
        }
        assert_eq!(s.stats().count(Drop::Replay) - before, 2048);
    }
}

#[test]
fn older_than_window_is_rejected() {
    let config = Config::default();
    let (mut c, mut s, id) = connected(&config);
    let pkts: Vec<Vec<u8>> = (0..5000)
        .map(|_| {
            let mut d = Vec::new();
            c.seal(b"x", T0, &mut d).unwrap();
            d
        })
        .collect();
    let mut out = Vec::new();
    assert_eq!(
        s.receive(&pkts[4999], from(), T0, &mut out),
        Ok(ServerRecv::Frame(id))
    );
    // Counter 1 (the KEEPALIVE took 0) is ~5000 behind.
    assert_eq!(s.receive(&pkts[0], from(), T0, &mut out), Err(Drop::Replay));
    // 2048 behind is still fine.
    assert_eq!(
        s.receive(&pkts[4999 - 2048], from(), T0, &mut out),
        Ok(ServerRecv::Frame(id))
    );
}

#[test]
fn wrong_psk_is_bad_mac() {
    let config = Config::default();
    let wrong = |auth: ServerAuth| {
        Client::new(
            config.clone(),
            client_identity(),
            auth,
            KEY_ID,
            Psk::from_bytes([1; 32]),
            WALL,
            T0,
        )
    };
    let mut out = Vec::new();
    // PSK-file mode: mac1 is keyed by the PSK, so the server drops the INIT
    // before any X25519.
    let mut c = wrong(psk_auth());
    let init = init_of(&mut c, T0);
    let mut s = psk_server(&config);
    assert_eq!(s.receive(&init, from(), T0, &mut out), Err(Drop::BadMac));
    assert_eq!(s.stats().count(Drop::BadMac), 1);
    assert!(out.is_empty());
    assert_eq!(s.pending_handshakes(), 0);
    // Ticket mode: mac1 names the server only, and the INIT does come from
    // the identity the ticket names, so the server answers; the PSK enters
    // in RESP (IKpsk2), which the client with the wrong PSK cannot verify.
    let mut c = wrong(ticket_auth());
    let init = init_of(&mut c, T0);
    let mut s = ticket_server(&config);
    assert_eq!(
        s.receive(&init, from(), T0, &mut out),
        Ok(ServerRecv::Reply(from()))
    );
    let resp = out.clone();
    assert_eq!(c.receive(&resp, T0, &mut out), Err(Drop::BadMac));
    assert!(!c.is_up());
    assert_eq!(s.peers().count(), 0);
    // An INIT for another server's key (mac1 names the responder) is
    // dropped by both kinds of server.
    let other = Identity::from_bytes([0x77; 32]).public();
    for (mut s, auth) in [
        (
            psk_server(&config),
            ServerAuth::Psk {
                known: Some(other),
                pin: None,
            },
        ),
        (ticket_server(&config), ServerAuth::Ticket(other)),
    ] {
        let mut c = new_client(&config, auth, KEY_ID, T0);
        let init = init_of(&mut c, T0);
        assert_eq!(s.receive(&init, from(), T0, &mut out), Err(Drop::BadMac));
        assert!(out.is_empty());
        assert_eq!(s.pending_handshakes(), 0);
    }
    // Unknown key id in ticket mode.
    let mut c = new_client(&config, ticket_auth(), *b"someone!", T0);
    let init = init_of(&mut c, T0);
    let mut s = ticket_server(&config);
    assert_eq!(
        s.receive(&init, from(), T0, &mut out),
        Err(Drop::UnknownKey)
    );
    s.remove_ticket(&KEY_ID);
    let mut c = ticket_client(&config);
    let init = init_of(&mut c, T0);
    assert_eq!(
        s.receive(&init, from(), T0, &mut out),
        Err(Drop::UnknownKey)
    );
}

#[test]
fn suite_outside_the_accept_set_gets_no_resp() {
    for (proposed, accept) in [
        (Suite::Aes256Gcm, Suites::only(Suite::ChaCha20Poly1305)),
        (Suite::ChaCha20Poly1305, Suites::only(Suite::Aes256Gcm)),
    ] {
        let server_config = Config {
            // The server's own `suite` plays no part.
            suite: proposed,
            accept,
            ..Config::default()
        };
        let client_config = proposing(proposed);
        for (mut s, mut c) in [
            (psk_server(&server_config), client(&client_config)),
            (ticket_server(&server_config), ticket_client(&client_config)),
        ] {
            let mut out = Vec::new();
            let mut now = T0;
            for k in 1..=3 {
                let init = init_of(&mut c, now);
                assert_eq!(init[1], proposed.id());
                assert_eq!(s.receive(&init, from(), now, &mut out), Err(Drop::BadSuite));
                assert!(out.is_empty());
                assert_eq!(s.stats().count(Drop::BadSuite), k);
                assert_eq!(s.stats().dropped_total(), k);
                assert_eq!(s.stats().packets_out, 0);
                assert_eq!(s.pending_handshakes(), 0);
                assert_eq!(s.peers().count(), 0);
                now += server_config.handshake_retry;
            }
            assert!(!c.is_up());
            assert_eq!(c.suite(), None);
        }
    }
}

#[test]
fn server_accepting_all_takes_the_proposed_suite() {
    for suite in Suite::ALL {
        // Whatever the server's own `suite`: it only proposes as a client.
        for server_suite in Suite::ALL {
            let server_config = Config {
                suite: server_suite,
                ..accepting(Suites::ALL)
            };
            let mut c = client(&proposing(suite));
            let mut s = psk_server(&server_config);
            let init = init_of(&mut c, T0);
            let mut resp = Vec::new();
            assert_eq!(
                s.receive(&init, from(), T0, &mut resp),
                Ok(ServerRecv::Reply(from()))
            );
            assert_eq!(resp[1], suite.id());
            assert_eq!(&resp[2..4], &[0, 0]);
            let mut out = Vec::new();
            assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
            assert_eq!(c.suite(), Some(suite));
            c.seal(b"first", T0, &mut out).unwrap();
            assert_eq!(&out[1..4], &[0, 0, 0], "transport names no suite");
            let mut f = Vec::new();
            let Ok(ServerRecv::PeerUpFrame(id, ..)) = s.receive(&out, from(), T0, &mut f) else {
                panic!("not confirmed");
            };
            assert_eq!(f, b"first");
            assert_eq!(s.peer_suite(id), Some(suite));
            assert_eq!(s.peer_suite(PeerId(id.0 + 1)), None);
            s.seal(id, b"back", T0, &mut out).unwrap();
            assert_eq!(c.receive(&out, T0, &mut f), Ok(ClientRecv::Frame));
            assert_eq!(f, b"back");
            assert_eq!(s.stats().dropped_total(), 0);
            assert_eq!(c.stats().dropped_total(), 0);
        }
    }
}

#[test]
fn one_server_serves_both_suites_at_once() {
    let config = accepting(Suites::ALL);
    let mut s = psk_server(&config);
    let suites = [Suite::ChaCha20Poly1305, Suite::Aes256Gcm];
    let addrs: [SocketAddr; 2] = [
        "198.51.100.1:1000".parse().unwrap(),
        "198.51.100.2:2000".parse().unwrap(),
    ];
    let mut clients: Vec<Client> = suites
        .iter()
        .enumerate()
        .map(|(i, &suite)| {
            let kid: KeyId = [b'k', i as u8, 0, 0, 0, 0, 0, 0];
            new_client(&proposing(suite), psk_auth(), kid, T0)
        })
        .collect();
    // Both handshakes interleaved: both INITs, then both RESPs.
    let mut resps = Vec::new();
    for (c, addr) in clients.iter_mut().zip(addrs) {
        let init = init_of(c, T0);
        let mut resp = Vec::new();
        assert_eq!(
            s.receive(&init, addr, T0, &mut resp),
            Ok(ServerRecv::Reply(addr))
        );
        resps.push(resp);
    }
    assert_eq!(s.pending_handshakes(), 2);
    let mut ids = Vec::new();
    let mut out = Vec::new();
    for ((c, addr), resp) in clients.iter_mut().zip(addrs).zip(&resps) {
        assert_eq!(c.receive(resp, T0, &mut out), Ok(ClientRecv::Up));
        c.poll(T0, &mut out).unwrap();
        let mut f = Vec::new();
        let Ok(ServerRecv::PeerUp(id, _, a)) = s.receive(&out, addr, T0, &mut f) else {
            panic!("not confirmed");
        };
        assert_eq!(a, addr);
        ids.push(id);
    }
    for ((c, id), suite) in clients.iter().zip(&ids).zip(suites) {
        assert_eq!(c.suite(), Some(suite));
        assert_eq!(s.peer_suite(*id), Some(suite));
    }
    // Frames both ways, interleaved.
    for round in 0..20u8 {
        for (i, (c, id)) in clients.iter_mut().zip(&ids).enumerate() {
            let frame = [round, i as u8, 0xee];
            let mut d = Vec::new();
            c.seal(&frame, T0, &mut d).unwrap();
            let mut f = Vec::new();
            assert_eq!(
                s.receive(&d, addrs[i], T0, &mut f),
                Ok(ServerRecv::Frame(*id))
            );
            assert_eq!(f, frame);
            assert_eq!(s.seal(*id, &frame, T0, &mut d), Ok(addrs[i]));
            assert_eq!(c.receive(&d, T0, &mut f), Ok(ClientRecv::Frame));
            assert_eq!(f, frame);
        }
    }
    // A packet of one session replayed at the other session's index (same
    // header, other keys and suite) fails authentication.
    let mut d0 = Vec::new();
    clients[0].seal(b"x", T0, &mut d0).unwrap();
    let mut d1 = Vec::new();
    clients[1].seal(b"x", T0, &mut d1).unwrap();
    d0[4..8].copy_from_slice(&d1[4..8]);
    assert_eq!(s.receive(&d0, addrs[0], T0, &mut out), Err(Drop::BadTag));
    assert_eq!(s.stats().dropped_total(), 1);
}

#[test]
fn garbage_never_panics_and_allocates_nothing() {
    let config = Config::default();
    let mut rng = TestRng::new(42);
    let (mut cc, mut cs, _) = connected(&config);
    let mut servers = [psk_server(&config), ticket_server(&config)];
    let mut fresh_client = client(&config);
    let _ = init_of(&mut fresh_client, T0); // a handshake in flight
    let mut out = Vec::new();
    let types = [0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
    for len in 0..200usize {
        for iter in 0..60 {
            let mut g = vec![0u8; len];
            rng.fill(&mut g);
            // Most of the time, pass the header checks to reach deeper code.
            if iter % 4 != 0 {
                if let Some(b) = g.get_mut(0) {
                    *b = types[rng.below(types.len())];
                }
                for b in g.iter_mut().skip(1).take(3) {
                    *b = 0;
                }
            }
            // Sometimes aim at the live session's receiver index.
            if iter % 5 == 1 && len >= 8 {
                let mut ka = Vec::new();
                cc.seal(b"", T0, &mut ka).unwrap();
                g[4..8].copy_from_slice(&ka[4..8]);
            }
            for s in servers.iter_mut() {
                assert!(s.receive(&g, from(), T0, &mut out).is_err());
                assert!(out.is_empty());
            }
            assert!(cs.receive(&g, from(), T0, &mut out).is_err());
            assert!(out.is_empty());
            assert!(fresh_client.receive(&g, T0, &mut out).is_err());
            assert!(cc.receive(&g, T0, &mut out).is_err());
            assert!(out.is_empty());
        }
    }
    for s in &servers {
        assert_eq!(s.pending_handshakes(), 0);
        assert_eq!(s.peers().count(), 0);
        assert_eq!(s.stats().packets_out, 0);
        assert_eq!(s.stats().packets_in, 0);
        assert_eq!(s.stats().dropped_total(), 200 * 60);
    }
    assert_eq!(cs.peers().count(), 1);
    assert_eq!(cs.pending_handshakes(), 0);
    assert!(cc.is_up());
    assert!(!fresh_client.is_up());
}

#[test]
fn replayed_init_gets_no_second_resp() {
    let config = Config::default();
    let mut c = client(&config);
    let mut s = psk_server(&config);
    let first = init_of(&mut c, T0);
    let mut out = Vec::new();
    assert!(s.receive(&first, from(), T0, &mut out).is_ok());
    assert_eq!(
        s.receive(&first, from(), T0, &mut out),
        Err(Drop::StaleTimestamp)
    );
    assert!(out.is_empty());
    // A retransmitted INIT (fresh timestamp) replaces the pending one.
    let retry = T0 + config.handshake_retry;
    assert_eq!(c.poll(retry, &mut out), Some(ClientEvent::Send));
    let second = out.clone();
    assert!(s.receive(&second, from(), retry, &mut out).is_ok());
    assert_eq!(s.pending_handshakes(), 1);
    // Now both old INITs are stale, even after the first was confirmed...
    assert_eq!(
        s.receive(&first, from(), retry, &mut out),
        Err(Drop::StaleTimestamp)
    );
    assert_eq!(
        s.receive(&second, from(), retry, &mut out),
        Err(Drop::StaleTimestamp)
    );
    assert_eq!(s.stats().count(Drop::StaleTimestamp), 3);
    assert_eq!(s.stats().packets_out, 2);
    // ...and timestamps follow the wall clock and keep increasing even if
    // the clock does not. (They travel encrypted: only the server, with its
    // static key, reads them.)
    let mut c2 = client(&config);
    let i1 = init_of(&mut c2, T0);
    let i2 = init_of(&mut c2, T0 + config.handshake_retry);
    // A new key makes a new handshake at once, at the same instant.
    c2.set_key(KEY_ID, psk(), psk_auth());
    let i3 = init_of(&mut c2, T0 + config.handshake_retry);
    let ts = |i: &[u8]| {
        let (who, kid, ts) = open_init(i).expect("the server opens it");
        assert_eq!((who, kid), (client_pub(), KEY_ID));
        ts
    };
    assert_eq!(ts(&i1), WALL);
    assert_eq!(ts(&i2), WALL + config.handshake_retry.as_nanos() as u64);
    assert_eq!(ts(&i3), ts(&i2) + 1);
}

#[test]
fn init_flood_respects_max_pending() {
    // Cookies never kick in here (see `attacks::cookies_under_load`): this
    // is about the bound itself, which holds for INITs with valid cookies.
    let config = Config {
        cookie_threshold: usize::MAX,
        ..Config::default()
    };
    let mut s = psk_server(&config);
    let mut out = Vec::new();
    let mut replies = 0;
    let mut clients: Vec<Client> = (0..200u64)
        .map(|i| {
            let kid: KeyId = i.to_le_bytes();
            new_client(&config, psk_auth(), kid, T0)
        })
        .collect();
    for c in clients.iter_mut() {
        let init = init_of(c, T0);
        match s.receive(&init, from(), T0, &mut out) {
            Ok(ServerRecv::Reply(_)) => replies += 1,
            Err(Drop::TooManyPending) => assert!(out.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(replies, config.max_pending);
    assert_eq!(s.pending_handshakes(), config.max_pending);
    assert_eq!(s.stats().count(Drop::TooManyPending), 200 - 64);
    // Retransmissions from a client that already has a pending handshake
    // replace it instead of taking a new slot.
    let later = T0 + config.handshake_retry;
    let init = init_of(&mut clients[0], later);
    assert!(matches!(
        s.receive(&init, from(), later, &mut out),
        Ok(ServerRecv::Reply(_))
    ));
    assert_eq!(s.pending_handshakes(), config.max_pending);
    // After pending_timeout the slots are free again.
    let expire = T0 + config.pending_timeout;
    while s.poll(expire, &mut out).is_some() {}
    assert_eq!(s.pending_handshakes(), 1);
    let late = expire + Duration::from_millis(1);
    let init = init_of(&mut clients[150], late);
    assert!(matches!(
        s.receive(&init, from(), late, &mut out),
        Ok(ServerRecv::Reply(_))
    ));
}

#[test]
fn max_peers_respected() {
    let config = Config {
        max_peers: 3,
        ..Config::default()
    };
    let mut s = psk_server(&config);
    let mut out = Vec::new();
    let mut up = 0;
    for i in 0..5u64 {
        let mut c = new_client(&config, psk_auth(), i.to_le_bytes(), T0);
        let init = init_of(&mut c, T0);
        match s.receive(&init, from(), T0, &mut out) {
            Ok(ServerRecv::Reply(_)) => {
                let resp = out.clone();
                assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
                c.poll(T0, &mut out).unwrap();
                let ka = out.clone();
                assert!(matches!(
                    s.receive(&ka, from(), T0, &mut out),
                    Ok(ServerRecv::PeerUp(..))
                ));
                up += 1;
            }
            Err(Drop::TooManyPeers) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(up, 3);
    assert_eq!(s.peers().count(), 3);
    assert_eq!(s.stats().count(Drop::TooManyPeers), 2);
}

// Round trips of the handshake packets through their emitter (`Client`)
// and their parser (`Server`, and back), over arbitrary inputs.
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any cable id, wall clock and suite: the INIT carries them (the
    /// server reads back the client's identity, the cable id and the
    /// timestamp), and the handshake completes on the peer
    /// (identity, cable id).
    #[test]
    fn init_resp_round_trip(
        key_id in proptest::prelude::any::<[u8; 8]>(),
        wall in proptest::prelude::any::<u64>(),
        aes in proptest::prelude::any::<bool>(),
    ) {
        let suite = if aes { Suite::Aes256Gcm } else { Suite::ChaCha20Poly1305 };
        let config = proposing(suite);
        let mut c = Client::new(
            config.clone(), client_identity(), psk_auth(), key_id, psk(), wall, T0,
        );
        let mut s = psk_server(&config);
        let init = init_of(&mut c, T0);
        proptest::prop_assert_eq!(open_init(&init), Some((client_pub(), key_id, wall)));
        let mut resp = Vec::new();
        proptest::prop_assert_eq!(
            s.receive(&init, from(), T0, &mut resp),
            Ok(ServerRecv::Reply(from()))
        );
        proptest::prop_assert_eq!(resp.len(), RESP_LEN);
        let mut out = Vec::new();
        proptest::prop_assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
        proptest::prop_assert_eq!(c.poll(T0, &mut out), Some(ClientEvent::Send));
        let r = s.receive(&out, from(), T0, &mut resp);
        let Ok(ServerRecv::PeerUp(id, kid, _)) = r else {
            return Err(proptest::test_runner::TestCaseError::fail(format!("{r:?}")));
        };
        proptest::prop_assert_eq!(kid, key_id);
        proptest::prop_assert_eq!(s.peer_by_key(&client_pub(), &key_id), Some(id));
        proptest::prop_assert_eq!(s.peer_suite(id), Some(suite));
    }

    /// Any PSK: KEYREQ and KEYRESP made and checked under it teach the
    /// client the server's key; under another PSK nothing is answered.
    #[test]
    fn keyreq_keyresp_round_trip(
        key in proptest::prelude::any::<[u8; 32]>(),
        other in proptest::prelude::any::<[u8; 32]>(),
    ) {
        let auth = ServerAuth::Psk { known: None, pin: Some(server_pub().digest()) };
        let mut c = Client::new(
            Config::default(), client_identity(), auth, KEY_ID, Psk::from_bytes(key), WALL, T0,
        );
        let mut req = Vec::new();
        proptest::prop_assert_eq!(c.poll(T0, &mut req), Some(ClientEvent::Send));
        proptest::prop_assert_eq!(req[0], 0x07);
        let mut s = new_server(&Config::default(), KeySource::Psk(Psk::from_bytes(key)));
        let mut resp = Vec::new();
        proptest::prop_assert_eq!(
            s.receive(&req, from(), T0, &mut resp),
            Ok(ServerRecv::Reply(from()))
        );
        let mut out = Vec::new();
        proptest::prop_assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::ServerKey));
        proptest::prop_assert_eq!(c.server_identity(), Some(server_pub()));
        if other != key {
            let mut s = new_server(&Config::default(), KeySource::Psk(Psk::from_bytes(other)));
            proptest::prop_assert_eq!(s.receive(&req, from(), T0, &mut resp), Err(Drop::BadMac));
            proptest::prop_assert!(resp.is_empty());
        }
    }
}
