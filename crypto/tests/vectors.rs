//! Protocol-level known-answer tests of `vde-crypto/2`: with fixed RNGs,
//! INIT, RESP, the first KEEPALIVE and DATA in both directions are
//! byte-exact, for both suites, against packets built here by hand from
//! the spec: the Noise IKpsk2 messages from `vde_crypto::noise` (checked
//! against the cacophony vector in the crate), everything around them (the
//! cleartext headers, the prologue, the payloads, mac1, mac2, the transport
//! keys and packets) straight from the ring primitives. Also KEYREQ,
//! KEYRESP and COOKIE byte-exact, and handshake messages crafted by hand
//! with valid MACs but unacceptable suites.
#![allow(deprecated)] // ring::test::rand::FixedSliceRandom

use std::net::SocketAddr;
use std::time::Duration;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use ring::test::rand::FixedSliceRandom;
use ring::{digest, hkdf, hmac};
use vde_crypto::noise::{msg1_len, msg2_len, Initiator, Responder};
use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Drop, Identity, KeySource, Psk, PublicKey, Server,
    ServerAuth, ServerRecv, Suite, Suites,
};
use x25519_dalek::StaticSecret;

// RFC 7748 §6.1: the fixed RNGs hand out these as the ephemeral private keys
// (and their first 4 bytes as the sender indices).
const ALICE: [u8; 32] = hexa("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const ALICE_PUB: [u8; 32] =
    hexa("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
const BOB: [u8; 32] = hexa("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
const BOB_PUB: [u8; 32] = hexa("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");

/// The static secrets of the client and the server.
const CLIENT_S: [u8; 32] = [0xc1; 32];
const SERVER_S: [u8; 32] = [0x5e; 32];

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

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
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

/// The spec's name of a suite id (the `info` of its transport keys).
fn suite_name(suite_id: u8) -> &'static [u8] {
    match suite_id {
        0x00 => b"chacha20-poly1305",
        0x01 => b"aes-256-gcm",
        _ => panic!("suite id {suite_id}"),
    }
}

/// A transport key: HKDF-SHA256(salt "vde-crypto/2 transport", ikm = one
/// direction of the split, info = the suite's name).
fn transport_key(split: &[u8; 32], suite_id: u8) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/2 transport").extract(split);
    expand(&prk, suite_name(suite_id))
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

fn client_id() -> Identity {
    Identity::from_bytes(CLIENT_S)
}

fn server_id() -> Identity {
    Identity::from_bytes(SERVER_S)
}

fn server_pub() -> PublicKey {
    server_id().public()
}

/// The client (ALICE's RNG) proposing `suite`, at `now`, knowing the
/// server's key (`known`) or not.
fn kat_client_with(suite: Suite, now: Duration, known: Option<PublicKey>) -> Client {
    let config = Config {
        suite,
        ..Config::default()
    };
    Client::with_rng(
        config,
        client_id(),
        ServerAuth::Psk { known, pin: None },
        KEY_ID,
        Psk::from_bytes(PSK),
        WALL,
        now,
        Box::new(FixedSliceRandom { bytes: &ALICE }),
    )
}

fn kat_client(suite: Suite, now: Duration) -> Client {
    kat_client_with(suite, now, Some(server_pub()))
}

/// The server (BOB's RNG) accepting `accept`, with `cookie_threshold`.
fn kat_server_with(accept: Suites, cookie_threshold: usize) -> Server {
    let config = Config {
        accept,
        cookie_threshold,
        ..Config::default()
    };
    Server::with_rng(
        config,
        server_id(),
        KeySource::Psk(Psk::from_bytes(PSK)),
        Box::new(FixedSliceRandom { bytes: &BOB }),
    )
}

fn kat_server(accept: Suites) -> Server {
    kat_server_with(accept, Config::default().cookie_threshold)
}

/// mac1's key in PSK-file mode: SHA-256("vde-crypto/2 mac1" || server
/// static public key || PSK).
fn mac1_key() -> [u8; 32] {
    sha256(&[b"vde-crypto/2 mac1", server_pub().as_bytes(), &PSK])
}

/// The prologue: the protocol name and INIT's cleartext header.
fn prologue(init: &[u8]) -> Vec<u8> {
    [&b"vde-crypto/2"[..], &init[..8]].concat()
}

/// An INIT by hand: ALICE's index and ephemeral key, suite byte
/// `suite_id`, the cable id and `timestamp` encrypted to the server, mac1,
/// mac2 zero (no cookie).
fn hand_init(suite_id: u8, timestamp: u64) -> Vec<u8> {
    let mut init = vec![0x01, suite_id, 0, 0];
    init.extend_from_slice(&ALICE[..4]); // sender index, LE of the draw
    let mut payload = KEY_ID.to_vec();
    payload.extend_from_slice(&timestamp.to_be_bytes());
    let mut msg = vec![0u8; msg1_len(payload.len())];
    Initiator::write_msg1(
        &client_id(),
        &server_pub(),
        &prologue(&init),
        StaticSecret::from(ALICE),
        &payload,
        &mut msg,
    )
    .unwrap();
    // The Noise message starts with the ephemeral public key in clear.
    assert_eq!(msg[..32], ALICE_PUB);
    init.extend_from_slice(&msg);
    assert_eq!(init.len(), 120);
    let mac1 = hmac16(&mac1_key(), &[&init]);
    init.extend_from_slice(&mac1);
    init.extend_from_slice(&[0u8; 16]);
    assert_eq!(init.len(), 152);
    init
}

/// A RESP by hand to `init`: BOB's index and ephemeral key, suite byte
/// `suite_id`, its first 12 bytes as the encrypted payload. Also returns
/// the split (i2r, r2i).
fn hand_resp(init: &[u8], suite_id: u8) -> (Vec<u8>, [u8; 32], [u8; 32]) {
    let mut payload = [0u8; 16];
    let responder =
        Responder::read_msg1(&server_id(), &prologue(init), &init[8..120], &mut payload).unwrap();
    assert_eq!(payload[..8], KEY_ID);
    assert_eq!(responder.remote_static(), client_id().public());
    let mut resp = vec![0x02, suite_id, 0, 0];
    resp.extend_from_slice(&BOB[..4]);
    resp.extend_from_slice(&init[4..8]);
    let mut msg = vec![0u8; msg2_len(12)];
    let split = responder
        .write_msg2(StaticSecret::from(BOB), &PSK, &resp[..12], &mut msg)
        .unwrap();
    assert_eq!(msg[..32], BOB_PUB);
    resp.extend_from_slice(&msg);
    assert_eq!(resp.len(), 72);
    (resp, *split.i2r, *split.r2i)
}

#[test]
fn byte_exact_handshake_and_first_packets() {
    let mut seen = Vec::new();
    for (suite, suite_id) in [(Suite::ChaCha20Poly1305, 0x00), (Suite::Aes256Gcm, 0x01)] {
        let keys = byte_exact(suite, suite_id, Suites::ALL);
        let keys_only = byte_exact(suite, suite_id, Suites::only(suite));
        assert_eq!(keys, keys_only, "the accept set does not change the keys");
        seen.push(keys);
    }
    // Same static and ephemeral keys, different suite byte: the Noise split
    // is the same (it comes from the chaining key, which the prologue does
    // not enter; the prologue binds byte 1 through the handshake hash, so
    // that a changed suite byte fails to decrypt: see
    // `init_with_valid_mac1_but_unacceptable_suite_is_dropped_unanswered`),
    // and the transport keys differ: the suite's name is their HKDF info.
    assert_eq!(seen[0].0, seen[1].0);
    assert_ne!(seen[0].1, seen[1].1);
}

/// Runs the byte-exact exchange for one suite; returns (split i2r, c2s).
fn byte_exact(suite: Suite, suite_id: u8, accept: Suites) -> ([u8; 32], [u8; 32]) {
    let now = Duration::from_secs(7);
    let from = from();
    let alg = algorithm(suite_id);
    let mut client = kat_client(suite, now);
    let mut server = kat_server(accept);

    // INIT, no time elapsed: the timestamp is the wall clock given.
    let want_init = hand_init(suite_id, WALL);
    let mut init = Vec::new();
    assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init, want_init);

    // RESP.
    let (want_resp, i2r, r2i) = hand_resp(&want_init, suite_id);
    let (c2s, s2c) = (transport_key(&i2r, suite_id), transport_key(&r2i, suite_id));
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
    assert_eq!((kid, addr), (KEY_ID, from));
    assert_eq!(server.peer_identity(peer), Some(client_id().public()));
    assert_eq!(
        server.peer_by_key(&client_id().public(), &KEY_ID),
        Some(peer)
    );
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
    (i2r, c2s)
}

/// The key of KEYREQ and KEYRESP: HKDF-SHA256(salt "vde-crypto/2 keyreq",
/// ikm = PSK, info "keyreq").
fn keyreq_key() -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/2 keyreq").extract(&PSK);
    expand(&prk, b"keyreq")
}

#[test]
fn byte_exact_keyreq_and_keyresp() {
    let now = Duration::from_secs(7);
    let mut client = kat_client_with(Suite::ChaCha20Poly1305, now, None);
    let mut server = kat_server(Suites::ALL);
    // KEYREQ: type, 3 zero bytes, the 32-byte nonce (ALICE's draw), a MAC
    // under the PSK.
    let mut want = vec![0x07, 0, 0, 0];
    want.extend_from_slice(&ALICE);
    let mac = hmac16(&keyreq_key(), &[&want]);
    want.extend_from_slice(&mac);
    let mut req = Vec::new();
    assert_eq!(client.poll(now, &mut req), Some(ClientEvent::Send));
    assert_eq!(req, want);
    // KEYRESP: the server's static key, a MAC over the nonce and the
    // answer.
    let mut want = vec![0x08, 0, 0, 0];
    want.extend_from_slice(server_pub().as_bytes());
    let mac = hmac16(&keyreq_key(), &[&ALICE, &want]);
    want.extend_from_slice(&mac);
    let mut resp = Vec::new();
    assert_eq!(
        server.receive(&req, from(), now, &mut resp),
        Ok(ServerRecv::Reply(from()))
    );
    assert_eq!(resp, want);
    let mut out = Vec::new();
    assert_eq!(
        client.receive(&resp, now, &mut out),
        Ok(ClientRecv::ServerKey)
    );
    assert_eq!(client.server_identity(), Some(server_pub()));
    // Then the same INIT as with the key configured.
    let mut init = Vec::new();
    assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init, hand_init(0x00, WALL));
}

#[test]
fn byte_exact_cookie_and_mac2() {
    // A server always under load: the INIT without mac2 gets a COOKIE.
    let now = Duration::from_secs(7);
    let from = from();
    let mut client = kat_client(Suite::ChaCha20Poly1305, now);
    let mut server = kat_server_with(Suites::ALL, 0);
    let mut init = Vec::new();
    assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init, hand_init(0x00, WALL));
    // The cookie: HMAC(secret, source address as IPv6 || port BE)[..16];
    // the secret is BOB's draw. Sealed with ChaCha20-Poly1305 under
    // SHA-256("vde-crypto/2 cookie" || server static), the nonce the first
    // 12 bytes of BOB's next draw, the INIT's mac1 as AAD.
    let ip = match from.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    let cookie = hmac16(&BOB, &[&ip, &from.port().to_be_bytes()]);
    let seal_key = sha256(&[b"vde-crypto/2 cookie", server_pub().as_bytes()]);
    let nonce: [u8; 12] = BOB[..12].try_into().unwrap();
    let mut sealed = cookie.to_vec();
    let tag = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &seal_key).unwrap())
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&init[120..136]),
            &mut sealed,
        )
        .unwrap();
    let mut want = vec![0x03, 0, 0, 0];
    want.extend_from_slice(&ALICE[..4]); // the INIT's sender index
    want.extend_from_slice(&nonce);
    want.extend_from_slice(&sealed);
    want.extend_from_slice(tag.as_ref());
    assert_eq!(want.len(), 52);
    let mut got = Vec::new();
    assert_eq!(
        server.receive(&init, from, now, &mut got),
        Ok(ServerRecv::Reply(from))
    );
    assert_eq!(got, want);
    assert_eq!(server.pending_handshakes(), 0);
    let mut out = Vec::new();
    assert_eq!(client.receive(&got, now, &mut out), Ok(ClientRecv::Cookie));
    // The next INIT, when the attempt in flight runs out: its timestamp
    // is handshake_retry later, mac2 = HMAC(cookie, INIT[0..136])[..16].
    let retry = Config::default().handshake_retry;
    let mut init2 = Vec::new();
    assert_eq!(client.poll(now, &mut init2), None, "the attempt goes on");
    let now = now + retry;
    assert_eq!(client.poll(now, &mut init2), Some(ClientEvent::Send));
    let mut want = hand_init(0x00, WALL + retry.as_nanos() as u64);
    let mac2 = hmac16(&cookie, &[&want[..136]]);
    want[136..].copy_from_slice(&mac2);
    assert_eq!(init2, want);
    let mut resp = Vec::new();
    assert_eq!(
        server.receive(&init2, from, now, &mut resp),
        Ok(ServerRecv::Reply(from))
    );
    assert_eq!(resp, hand_resp(&init2, 0x00).0);
    assert_eq!(client.receive(&resp, now, &mut out), Ok(ClientRecv::Up));
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
    // The suite byte is bound by mac1 and the prologue: changing it in a
    // valid INIT breaks mac1; with mac1 recomputed (by a PSK holder) the
    // Noise message no longer decrypts.
    let mut server = kat_server(Suites::ALL);
    let mut init = hand_init(0x00, WALL);
    init[1] = 0x01;
    assert_eq!(
        server.receive(&init, from(), now, &mut out),
        Err(Drop::BadMac)
    );
    let mac1 = hmac16(&mac1_key(), &[&init[..120]]);
    init[120..136].copy_from_slice(&mac1);
    assert_eq!(
        server.receive(&init, from(), now, &mut out),
        Err(Drop::BadMac)
    );
    assert_eq!(server.pending_handshakes(), 0);
    // Nonzero reserved bytes 2..4 stay reserved.
    for i in 2..4 {
        let mut init = hand_init(0x00, WALL);
        init[i] = 1;
        assert_eq!(
            server.receive(&init, from(), now, &mut out),
            Err(Drop::BadReserved)
        );
    }
    assert_eq!(server.stats().packets_out, 0);
}

#[test]
fn resp_with_valid_payload_but_other_suite_is_rejected() {
    let now = Duration::from_secs(7);
    for (suite, id) in [(Suite::ChaCha20Poly1305, 0x00u8), (Suite::Aes256Gcm, 0x01)] {
        let mut client = kat_client(suite, now);
        let mut init = Vec::new();
        assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
        assert_eq!(init[1], id);
        let mut out = Vec::new();
        // A responder that picks another suite, or an unknown one, with a
        // RESP made honestly (it verifies under the handshake).
        for other in [id ^ 1, 0x02, 0xff] {
            let (bad, _, _) = hand_resp(&init, other);
            assert_eq!(client.receive(&bad, now, &mut out), Err(Drop::BadSuite));
            assert!(!client.is_up());
            assert_eq!(client.suite(), None);
        }
        assert_eq!(client.stats().count(Drop::BadSuite), 3);
        // The server's index rewritten in a genuine RESP: the encrypted
        // copy of the header no longer matches.
        let (good, _, _) = hand_resp(&init, id);
        let mut bad = good.clone();
        bad[4] ^= 1;
        assert_eq!(client.receive(&bad, now, &mut out), Err(Drop::BadMac));
        // Rejected before the key agreement, and a RESP that fails leaves
        // the handshake as it was: the genuine answer still completes it.
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
    // (The file salt still says vde-crypto/1: the derivation did not
    // change with the handshake, so existing key files give the same PSK.)
    let contents = b"some key file contents, at least 32 bytes, varied enough\n";
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/1 psk").extract(contents);
    let want = expand(&prk, b"psk");
    let psk = Psk::from_file_contents(contents).unwrap();
    assert_eq!(psk.as_bytes(), &want);
    assert!(Psk::from_file_contents(b"short").is_err());
    assert!(Psk::from_file_contents(b"").is_err());
}

#[test]
fn generated_psks_and_identities_differ() {
    let rng = ring::rand::SystemRandom::new();
    let a = Psk::generate(&rng).unwrap();
    let b = Psk::generate(&rng).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
    let a = Identity::generate(&rng).unwrap();
    let b = Identity::generate(&rng).unwrap();
    assert_ne!(a.public(), b.public());
    assert_eq!(Identity::from_bytes(*a.secret_bytes()).public(), a.public());
}
