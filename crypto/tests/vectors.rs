//! Protocol-level known-answer test: with fixed RNGs, INIT, RESP, the first
//! KEEPALIVE and DATA in both directions are byte-exact, against values
//! recomputed here straight from the ring primitives and the spec.
#![allow(deprecated)] // ring::test::rand::FixedSliceRandom

use std::net::SocketAddr;
use std::time::Duration;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::test::rand::FixedSliceRandom;
use ring::{digest, hkdf, hmac};
use vde_crypto::{Client, ClientEvent, ClientRecv, Config, KeySource, Psk, Server, ServerRecv};

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

fn transport(ty: u8, receiver: [u8; 4], counter: u64, key: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut pkt = vec![ty, 0, 0, 0];
    pkt.extend_from_slice(&receiver);
    pkt.extend_from_slice(&counter.to_le_bytes());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap());
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

#[test]
fn byte_exact_handshake_and_first_packets() {
    let psk_bytes = [0x11u8; 32];
    let key_id = *b"vdecable";
    let wall: u64 = 0x0123_4567_89ab_cdef;
    let now = Duration::from_secs(7);
    let from: SocketAddr = "203.0.113.5:7000".parse().unwrap();

    let mut client = Client::with_rng(
        Config::default(),
        key_id,
        Psk::from_bytes(psk_bytes),
        wall,
        now,
        Box::new(FixedSliceRandom { bytes: &ALICE }),
    );
    let mut server = Server::with_rng(
        Config::default(),
        KeySource::Psk(Psk::from_bytes(psk_bytes)),
        Box::new(FixedSliceRandom { bytes: &BOB }),
    );

    // Key material by hand.
    let ck0 = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vde-crypto/1").extract(&psk_bytes);
    let mac1_key = expand(&ck0, b"mac1");
    let ck = expand(&ck0, b"ck");

    // INIT.
    let mut want_init = vec![0x01, 0, 0, 0];
    want_init.extend_from_slice(&ALICE[..4]); // sender index, LE of the draw
    want_init.extend_from_slice(&key_id);
    want_init.extend_from_slice(&ALICE_PUB);
    want_init.extend_from_slice(&wall.to_be_bytes()); // no time elapsed
    let mac1 = hmac16(&mac1_key, &[&want_init]);
    want_init.extend_from_slice(&mac1);
    assert_eq!(want_init.len(), 72);

    let mut init = Vec::new();
    assert_eq!(client.poll(now, &mut init), Some(ClientEvent::Send));
    assert_eq!(init, want_init);

    // RESP.
    let mut want_resp = vec![0x02, 0, 0, 0];
    want_resp.extend_from_slice(&BOB[..4]);
    want_resp.extend_from_slice(&ALICE[..4]);
    want_resp.extend_from_slice(&BOB_PUB);
    let mut th_ctx = digest::Context::new(&digest::SHA256);
    th_ctx.update(&want_init);
    th_ctx.update(&want_resp);
    let th = th_ctx.finish();
    let mut ikm = SHARED.to_vec();
    ikm.extend_from_slice(th.as_ref());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &ck).extract(&ikm);
    let confirm_key = expand(&prk, b"confirm");
    let c2s = expand(&prk, b"c2s");
    let s2c = expand(&prk, b"s2c");
    let confirm = hmac16(&confirm_key, &[th.as_ref(), &want_resp]);
    want_resp.extend_from_slice(&confirm);
    assert_eq!(want_resp.len(), 60);

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
    assert_eq!(ka, transport(0x05, bob_idx, 0, &c2s, b""));
    assert_eq!(ka.len(), 32);

    // First DATA client -> server: counter 1.
    let mut data = Vec::new();
    client.seal(b"hello, switch", now, &mut data).unwrap();
    assert_eq!(data, transport(0x04, bob_idx, 1, &c2s, b"hello, switch"));

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
    assert_eq!(back, transport(0x04, alice_idx, 0, &s2c, b"hello, cable"));
    assert_eq!(client.receive(&back, now, &mut out), Ok(ClientRecv::Frame));
    assert_eq!(out, b"hello, cable");
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
