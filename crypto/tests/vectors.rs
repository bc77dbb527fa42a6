//! Protocol-level known-answer test: with fixed RNGs, INIT, RESP, the first
//! KEEPALIVE and DATA in both directions are byte-exact, for both suites,
//! against values recomputed here straight from the ring primitives and the
//! spec. Also handshake messages crafted by hand with valid MACs but
//! unacceptable suites.
#![allow(deprecated)] // ring::test::rand::FixedSliceRandom

use std::net::SocketAddr;
use std::time::Duration;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use ring::test::rand::FixedSliceRandom;
use ring::{digest, hkdf, hmac};
use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Drop, KeySource, Psk, Server, ServerRecv, Suite,
    Suites,
};

// RFC 7748 §6.1: the fixed RNGs hand out these as the ephemeral private keys
// (and their first 4 bytes as the sender indices).
const ALICE: [u8; 32] = hexa("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const ALICE_PUB: [u8; 32] =
    hexa("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
const BOB: [u8; 32] = hexa("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
const BOB_PUB: [u8; 32] = hexa("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
const SHARED: [u8; 32] = hexa("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

const fn hexa(s: &str) -> [u8; 32] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("hex"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nib(b[2 * i]) << 4 | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    prk.expand(&[info], Len(32))
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

fn hmac16(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref()[..16].try_into().unwrap()
}

/// The ring algorithm of a suite id, as the spec numbers them.
fn algorithm(suite_id: u8) -> &'static aead::Algorithm {
    match suite_id {
        0x00 => &CHACHA20_POLY1305,
        0x01 => &AES_256_GCM,
        _ => panic!("suite id {suite_id}"),
    }
}

fn transport(
    alg: &'static aead::Algorithm,
    ty: u8,
    receiver: [u8; 4],
    counter: u64,
    key: &[u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    let mut pkt = vec![ty, 0, 0, 0];
    pkt.extend_from_slice(&receiver);
    pkt.extend_from_slice(&counter.to_le_bytes());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    let key = LessSafeKey::new(UnboundKey::new(alg, key).unwrap());
    let mut body = payload.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&pkt[..16]),
            &mut body,
        )
        .unwrap();
    pkt.extend_from_slice(&body);
    pkt.extend_from_slice(tag.as_ref());
    pkt
}

const PSK: [u8; 32] = [0x11; 32];
const KEY_ID: [u8; 8] = *b"vdecable";
const WALL: u64 = 0x0123_4567_89ab_cdef;

fn from() -> SocketAddr {
    "203.0.113.5:7000".parse().unwrap()
}

/// The client (ALICE's RNG) proposing `suite`, at `now`.
fn kat_client(suite: Suite, now: Duration) -> Client {
    let config = Config {
        suite,
        ..Config::default()
    };
    Client::with_rng(
        config,
        KEY_ID,
        Psk::from_bytes(PSK),
        WALL,
        now,
        Box::new(FixedSliceRandom { bytes: &ALICE }),
    )
}

/// The server (BOB's RNG) accepting `accept`.
fn kat_server(accept: Suites) -> Server {
    let config = Config {
        accept,
        ..Config::default()
    };
    Server::with_rng(
        config,
        KeySource::Psk(Psk::from_bytes(PSK)),
        Box::new(FixedSliceRandom { bytes: &BOB }),
    )
}

/// mac1_key and ck of `PSK`, by hand.
fn psk_keys() -> ([u8; 32], [u8; 32]) {
    let ck0 = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/1").extract(&PSK);
    (expand(&ck0, b"mac1"), expand(&ck0, b"ck"))
}

/// An INIT by hand: ALICE's index and key, suite byte `suite_id`.
fn hand_init(suite_id: u8, timestamp: u64) -> Vec<u8> {
    let (mac1_key, _) = psk_keys();
    let mut init = vec![0x01, suite_id, 0, 0];
    init.extend_from_slice(&ALICE[..4]); // sender index, LE of the draw
    init.extend_from_slice(&KEY_ID);
    init.extend_from_slice(&ALICE_PUB);
    init.extend_from_slice(&timestamp.to_be_bytes());
    let mac1 = hmac16(&mac1_key, &[&init]);
    init.extend_from_slice(&mac1);
    assert_eq!(init.len(), 72);
    init
}

/// A RESP by hand to `init`: BOB's index and key, suite byte `suite_id`,
/// with a valid confirm. Also returns (c2s, s2c).
fn hand_resp(init: &[u8], suite_id: u8) -> (Vec<u8>, [u8; 32], [u8; 32]) {
    let (_, ck) = psk_keys();
    let mut resp = vec![0x02, suite_id, 0, 0];
    resp.extend_from_slice(&BOB[..4]);
    resp.extend_from_slice(&init[4..8]);
    resp.extend_from_slice(&BOB_PUB);
    let mut th_ctx = digest::Context::new(&digest::SHA256);
    th_ctx.update(init);
    th_ctx.update(&resp);
    let th = th_ctx.finish();
    let mut ikm = SHARED.to_vec();
    ikm.extend_from_slice(th.as_ref());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &ck).extract(&ikm);
    let confirm_key = expand(&prk, b"confirm");
    let c2s = expand(&prk, b"c2s");
    let s2c = expand(&prk, b"s2c");
    let confirm = hmac16(&confirm_key, &[th.as_ref(), &resp]);
    resp.extend_from_slice(&confirm);
    assert_eq!(resp.len(), 60);
    (resp, c2s, s2c)
}

#[test]
fn byte_exact_handshake_and_first_packets() {
    let mut keys_seen = Vec::new();
    for (suite, suite_id) in [(Suite::ChaCha20Poly1305, 0x00), (Suite::Aes256Gcm, 0x01)] {
        let c2s = byte_exact(suite, suite_id, Suites::ALL);
        let c2s_only = byte_exact(suite, suite_id, Suites::only(suite));
        assert_eq!(c2s, c2s_only, "the accept set does not change the keys");
        keys_seen.push(c2s);
    }
    // Same ephemerals, different suite byte: different keys (bound via th).
    assert_ne!(keys_seen[0], keys_seen[1]);
}

/// Runs the byte-exact exchange for one suite; returns k_c2s.
fn byte_exact(suite: Suite, suite_id: u8, accept: Suites) -> [u8; 32] {
    let now = Duration::from_secs(7);
    let from = from();
    let key_id = KEY_ID;
    let alg = algorithm(suite_id);
    let mut client = kat_client(suite, now);
    let mut server = kat_server(accept);

    // INIT, no time elapsed.
    let want_init = hand_init(suite_id, WALL);
    let mut init = Vec::new();
    assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init, want_init);

    // RESP.
    let (want_resp, c2s, s2c) = hand_resp(&want_init, suite_id);
    let mut resp = Vec::new();
    assert_eq!(
        server.receive(&init, from, now, &mut resp),
        Ok(ServerRecv::Reply(from))
    );
    assert_eq!(resp, want_resp);

    // The client accepts it and owes a KEEPALIVE with counter 0.
    let mut buf = Vec::new();
    assert_eq!(client.receive(&resp, now, &mut buf), Ok(ClientRecv::Up));
    let mut ka = Vec::new();
    assert_eq!(client.poll(now, &mut ka), Some(ClientEvent::Send));
    let bob_idx: [u8; 4] = BOB[..4].try_into().unwrap();
    let alice_idx: [u8; 4] = ALICE[..4].try_into().unwrap();
    assert_eq!(ka, transport(alg, 0x05, bob_idx, 0, &c2s, b""));
    assert_eq!(ka.len(), 32);

    // First DATA client -> server: counter 1.
    let mut data = Vec::new();
    client.seal(b"hello, switch", now, &mut data).unwrap();
    assert_eq!(
        data,
        transport(alg, 0x04, bob_idx, 1, &c2s, b"hello, switch")
    );

    let mut out = Vec::new();
    let Ok(ServerRecv::PeerUp(peer, kid, addr)) = server.receive(&ka, from, now, &mut out) else {
        panic!("keepalive did not confirm");
    };
    assert_eq!((kid, addr), (key_id, from));
    assert_eq!(
        server.receive(&data, from, now, &mut out),
        Ok(ServerRecv::Frame(peer))
    );
    assert_eq!(out, b"hello, switch");

    // First DATA server -> client: counter 0 under s2c.
    let mut back = Vec::new();
    assert_eq!(server.seal(peer, b"hello, cable", now, &mut back), Ok(from));
    assert_eq!(
        back,
        transport(alg, 0x04, alice_idx, 0, &s2c, b"hello, cable")
    );
    assert_eq!(client.receive(&back, now, &mut out), Ok(ClientRecv::Frame));
    assert_eq!(out, b"hello, cable");
    assert_eq!(client.suite(), Some(suite));
    assert_eq!(server.peer_suite(peer), Some(suite));
    c2s
}

#[test]
fn init_with_valid_mac1_but_unacceptable_suite_is_dropped_unanswered() {
    let now = Duration::from_secs(7);
    let mut out = Vec::new();
    // Unknown suite ids, with a valid mac1, to a server accepting all.
    for id in [0x02u8, 0x7f, 0xff] {
        let mut server = kat_server(Suites::ALL);
        let init = hand_init(id, WALL);
        assert_eq!(
            server.receive(&init, from(), now, &mut out),
            Err(Drop::BadSuite)
        );
        assert!(out.is_empty());
        assert_eq!(server.stats().count(Drop::BadSuite), 1);
    }
    // A known suite the server does not accept.
    for (id, accept) in [
        (0x01, Suites::only(Suite::ChaCha20Poly1305)),
        (0x00, Suites::only(Suite::Aes256Gcm)),
        (0x00, Suites::NONE),
    ] {
        let mut server = kat_server(accept);
        let init = hand_init(id, WALL);
        assert_eq!(
            server.receive(&init, from(), now, &mut out),
            Err(Drop::BadSuite)
        );
        assert!(out.is_empty());
        assert_eq!(server.pending_handshakes(), 0);
        assert_eq!(server.stats().packets_out, 0);
        // The refused INIT did not consume its timestamp: an acceptable
        // INIT with the same timestamp is answered.
        let ok = hand_init(id ^ 1, WALL);
        let r = server.receive(&ok, from(), now, &mut out);
        if accept.is_empty() {
            assert_eq!(r, Err(Drop::BadSuite));
        } else {
            assert_eq!(r, Ok(ServerRecv::Reply(from())));
            assert_eq!(out[1], id ^ 1);
        }
    }
    // Nonzero reserved bytes 2..4 stay reserved.
    let mut server = kat_server(Suites::ALL);
    for i in 2..4 {
        let mut init = hand_init(0x00, WALL);
        init[i] = 1;
        assert_eq!(
            server.receive(&init, from(), now, &mut out),
            Err(Drop::BadReserved)
        );
    }
}

#[test]
fn resp_with_valid_confirm_but_other_suite_is_rejected() {
    let now = Duration::from_secs(7);
    for (suite, id) in [(Suite::ChaCha20Poly1305, 0x00u8), (Suite::Aes256Gcm, 0x01)] {
        let mut client = kat_client(suite, now);
        let mut init = Vec::new();
        assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
        assert_eq!(init[1], id);
        let mut out = Vec::new();
        // A responder that picks another suite, or an unknown one, with a
        // confirm computed honestly over its RESP.
        for other in [id ^ 1, 0x02, 0xff] {
            let (bad, _, _) = hand_resp(&init, other);
            assert_eq!(client.receive(&bad, now, &mut out), Err(Drop::BadSuite));
            assert!(!client.is_up());
            assert_eq!(client.suite(), None);
        }
        assert_eq!(client.stats().count(Drop::BadSuite), 3);
        // Rejected before the key agreement: the ephemeral key is intact and
        // the genuine answer still completes the handshake.
        let (good, _, _) = hand_resp(&init, id);
        assert_eq!(client.receive(&good, now, &mut out), Ok(ClientRecv::Up));
        assert_eq!(client.suite(), Some(suite));
        // Nonzero reserved bytes 2..4 of RESP are dropped.
        for i in 2..4 {
            let mut r = good.clone();
            r[i] = 1;
            assert_eq!(client.receive(&r, now, &mut out), Err(Drop::BadReserved));
        }
    }
}

#[test]
fn psk_file_derivation() {
    let contents = b"some key file contents, at least 16 bytes\n";
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/1 psk").extract(contents);
    let want = expand(&prk, b"psk");
    let psk = Psk::from_file_contents(contents).unwrap();
    assert_eq!(psk.as_bytes(), &want);
    assert!(Psk::from_file_contents(b"short").is_err());
    assert!(Psk::from_file_contents(b"").is_err());
}

#[test]
fn generated_psks_differ() {
    let rng = ring::rand::SystemRandom::new();
    let a = Psk::generate(&rng).unwrap();
    let b = Psk::generate(&rng).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
}
