//! Known-answer tests of the primitive wrappers in `keys`, plus tests that
//! need crate-internal access (counter exhaustion).
#![allow(deprecated)] // ring::test::rand::FixedSliceRandom

use std::net::SocketAddr;
use std::time::Duration;

use ring::test::rand::FixedSliceRandom;

use crate::keys::{self, Len};
use crate::wire::REJECT_AFTER_MESSAGES;
use crate::{
    Client, ClientEvent, ClientRecv, Config, Drop, Identity, KeySource, Psk, Server, ServerAuth,
    ServerRecv, Suite,
};

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn rfc8439_2_8_2_chacha20_poly1305() {
    let key = keys::aead_key(
        Suite::ChaCha20Poly1305,
        &hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    )
    .unwrap();
    let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
    let aad = hex("50515253c0c1c2c3c4c5c6c7");
    let plaintext: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let ciphertext = hex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116",
    );
    let tag = hex("1ae10b594f09e26a7e902ecbd0600691");

    let mut buf = plaintext.to_vec();
    let t = keys::aead_seal(&key, nonce, &aad, &mut buf).unwrap();
    assert_eq!(buf, ciphertext);
    assert_eq!(t.as_ref(), &tag[..]);

    let mut sealed = [ciphertext.clone(), tag.clone()].concat();
    let n = keys::aead_open(&key, nonce, &aad, &mut sealed).unwrap();
    assert_eq!(&sealed[..n], plaintext);

    let mut bad = [ciphertext, tag].concat();
    bad[0] ^= 1;
    assert!(keys::aead_open(&key, nonce, &aad, &mut bad).is_none());
}

#[test]
fn rfc5869_case_1_hkdf_sha256() {
    let ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    let salt = hex("000102030405060708090a0b0c");
    let info = hex("f0f1f2f3f4f5f6f7f8f9");
    let okm =
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    let prk = keys::extract(&salt, &ikm);
    let mut out = [0u8; 42];
    keys::expand(&prk, &info, &mut out);
    assert_eq!(&out[..], &okm[..]);
    // The PRK of the RFC expands to the same OKM.
    let prk2 = ring::hkdf::Prk::new_less_safe(
        ring::hkdf::HKDF_SHA256,
        &hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
    );
    let mut out2 = [0u8; 42];
    keys::expand(&prk2, &info, &mut out2);
    assert_eq!(out, out2);
    let _ = Len(0);
}

#[test]
fn rfc7748_6_1_x25519() {
    let a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let a_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let k = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

    let a_priv = keys::x25519_ephemeral(&FixedSliceRandom { bytes: &a }).unwrap();
    let b_priv = keys::x25519_ephemeral(&FixedSliceRandom { bytes: &b }).unwrap();
    let a_pub_got = x25519_dalek::PublicKey::from(&a_priv);
    let b_pub_got = x25519_dalek::PublicKey::from(&b_priv);
    assert_eq!(&a_pub_got.as_bytes()[..], &a_pub[..]);
    assert_eq!(&b_pub_got.as_bytes()[..], &b_pub[..]);
    let ka = a_priv.diffie_hellman(&b_pub_got);
    let kb = b_priv.diffie_hellman(&a_pub_got);
    assert_eq!(&ka.as_bytes()[..], &k[..]);
    assert_eq!(&kb.as_bytes()[..], &k[..]);
    // The same key pair as an identity.
    let id = Identity::from_bytes(a[..].try_into().unwrap());
    assert_eq!(&id.public().as_bytes()[..], &a_pub[..]);

    // A low-order point (all zeros) gives a non-contributory result, which
    // the handshake refuses (`noise::dh`).
    let low = a_priv.diffie_hellman(&x25519_dalek::PublicKey::from([0u8; 32]));
    assert!(!low.was_contributory());
}

#[test]
fn mac1_key_names_the_server_and_the_psk() {
    // SHA-256("vde-crypto/2 mac1" || server static || psk), as an HMAC key.
    let server = Identity::from_bytes([0x5e; 32]).public();
    let psk = Psk::from_bytes([0x11; 32]);
    let msg = b"an INIT's first 120 bytes";
    let want = keys::sha256(&[b"vde-crypto/2 mac1", server.as_bytes(), psk.as_bytes()]);
    let want = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &want);
    let mac = keys::mac16(&keys::mac1_key(&server, Some(&psk)), &[msg]);
    assert_eq!(mac, keys::mac16(&want, &[msg]));
    // Ticket mode: the server's key alone.
    let want = keys::sha256(&[b"vde-crypto/2 mac1", server.as_bytes()]);
    let want = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &want);
    assert_eq!(
        keys::mac16(&keys::mac1_key(&server, None), &[msg]),
        keys::mac16(&want, &[msg])
    );
    // Another server, or another PSK, gives another mac1.
    let other = Identity::from_bytes([0x77; 32]).public();
    assert_ne!(
        mac,
        keys::mac16(&keys::mac1_key(&other, Some(&psk)), &[msg])
    );
    assert_ne!(
        mac,
        keys::mac16(
            &keys::mac1_key(&server, Some(&Psk::from_bytes([0x12; 32]))),
            &[msg]
        )
    );
}

#[test]
fn cookie_seal_opens_only_with_its_aad() {
    let server = Identity::from_bytes([0x5e; 32]).public();
    let key = keys::cookie_seal_key(&server);
    assert_eq!(
        *key,
        keys::sha256(&[b"vde-crypto/2 cookie", server.as_bytes()])
    );
    let nonce = [3u8; 12];
    let cookie = [0xabu8; 16];
    let mut sealed = cookie;
    let tag = keys::cookie_seal(&key, &nonce, b"mac1 of the INIT", &mut sealed).unwrap();
    assert_ne!(sealed, cookie);
    let mut c = sealed;
    assert!(keys::cookie_open(&key, &nonce, b"mac1 of the INIT", &mut c, &tag).is_some());
    assert_eq!(c, cookie);
    let mut c = sealed;
    assert!(keys::cookie_open(&key, &nonce, b"mac1 of another", &mut c, &tag).is_none());
    let other = keys::cookie_seal_key(&Identity::from_bytes([0x77; 32]).public());
    let mut c = sealed;
    assert!(keys::cookie_open(&other, &nonce, b"mac1 of the INIT", &mut c, &tag).is_none());
}

#[test]
fn rfc4231_case_2_hmac_sha256() {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
    let mac = keys::hmac_sign(&key, &[b"what do ya want ", b"for nothing?"]);
    let expected = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(mac.as_ref(), &expected[..]);
    let trunc: [u8; 16] = expected[..16].try_into().unwrap();
    assert_eq!(keys::mac16(&key, &[b"what do ya want for nothing?"]), trunc);
    assert!(keys::verify_mac16(
        &key,
        &[b"what do ya want for nothing?"],
        &trunc
    ));
    let mut bad = trunc;
    bad[15] ^= 0x80;
    assert!(!keys::verify_mac16(
        &key,
        &[b"what do ya want for nothing?"],
        &bad
    ));
}

#[test]
fn sha256_abc() {
    let d = keys::sha256(&[b"a", b"bc"]);
    assert_eq!(
        &d[..],
        &hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")[..]
    );
}

#[test]
fn psk_file_too_short() {
    let random: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(97) ^ 0x5c).collect();
    assert_eq!(
        Psk::from_file_contents(&random[..31]).unwrap_err(),
        crate::Error::PskFileTooShort
    );
    assert!(Psk::from_file_contents(&random).is_ok());
    // long but not random: one byte, or a short word repeated
    assert_eq!(
        Psk::from_file_contents(&[7u8; 64]).unwrap_err(),
        crate::Error::PskFileWeak
    );
    assert_eq!(
        Psk::from_file_contents(&b"secret".repeat(8)).unwrap_err(),
        crate::Error::PskFileWeak
    );
    assert!(crate::Error::PskFileWeak
        .to_string()
        .contains("head -c 32 /dev/urandom"));
    assert_eq!(format!("{:?}", Psk::from_bytes([0x42; 32])), "Psk(..)");
}

fn addr() -> SocketAddr {
    "192.0.2.1:4000".parse().unwrap()
}

/// A client and a server with a confirmed cable.
fn connected(config: Config) -> (Client, Server, crate::PeerId) {
    let psk = Psk::from_bytes([9; 32]);
    let now = Duration::ZERO;
    let server_id = Identity::from_bytes([0x5e; 32]);
    let auth = ServerAuth::Psk {
        known: Some(server_id.public()),
        pin: None,
    };
    let client_id = Identity::from_bytes([0xc1; 32]);
    let mut client = Client::new(config.clone(), client_id, auth, [1; 8], psk.clone(), 1, now);
    let mut server = Server::new(config, server_id, KeySource::Psk(psk));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    assert_eq!(client.poll(now, &mut buf), Some(ClientEvent::Send));
    assert!(matches!(
        server.receive(&buf, addr(), now, &mut out),
        Ok(ServerRecv::Reply(_))
    ));
    assert_eq!(client.receive(&out, now, &mut buf), Ok(ClientRecv::Up));
    assert_eq!(client.poll(now, &mut buf), Some(ClientEvent::Send));
    let Ok(ServerRecv::PeerUp(id, ..)) = server.receive(&buf, addr(), now, &mut out) else {
        panic!("no peer");
    };
    (client, server, id)
}

#[test]
fn counter_exhaustion_refuses_to_seal() {
    let (mut client, mut server, id) = connected(Config::default());
    let now = Duration::ZERO;
    let mut buf = Vec::new();
    let mut out = Vec::new();

    client
        .current_keypair_mut()
        .unwrap()
        .set_send_counter(REJECT_AFTER_MESSAGES - 1);
    client.seal(b"last", now, &mut buf).unwrap();
    assert!(matches!(
        server.receive(&buf, addr(), now, &mut out),
        Ok(ServerRecv::Frame(_))
    ));
    assert_eq!(out, b"last");
    assert_eq!(
        client.seal(b"one more", now, &mut buf),
        Err(Drop::KeyExhausted)
    );
    assert!(buf.is_empty());
    // The client starts a rekey at once.
    assert!(!client.handshake_in_flight());
    assert_eq!(client.poll(now, &mut buf), Some(ClientEvent::Send));
    assert_eq!(buf[0], crate::wire::TYPE_INIT);

    server
        .peer_keypair_mut(id)
        .unwrap()
        .set_send_counter(REJECT_AFTER_MESSAGES);
    assert_eq!(
        server.seal(id, b"x", now, &mut out),
        Err(Drop::KeyExhausted)
    );
    assert!(out.is_empty());
}

#[test]
fn counter_at_reject_limit_is_dropped_on_receive() {
    let (mut client, mut server, _) = connected(Config::default());
    let now = Duration::ZERO;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    client
        .current_keypair_mut()
        .unwrap()
        .set_send_counter(REJECT_AFTER_MESSAGES - 1);
    client.seal(b"ok", now, &mut buf).unwrap();
    // Forge the counter up to the limit: rejected before decryption.
    buf[8..16].copy_from_slice(&REJECT_AFTER_MESSAGES.to_le_bytes());
    assert_eq!(
        server.receive(&buf, addr(), now, &mut out),
        Err(Drop::KeyExhausted)
    );
}

#[test]
fn suite_ids_names_and_sets() {
    use crate::Suites;
    assert_eq!(Suite::ChaCha20Poly1305.id(), 0x00);
    assert_eq!(Suite::Aes256Gcm.id(), 0x01);
    for s in Suite::ALL {
        assert_eq!(Suite::from_id(s.id()), Some(s));
        assert_eq!(s.to_string(), s.name());
        assert_eq!(s.algorithm().key_len(), 32);
    }
    for id in 2..=u8::MAX {
        assert_eq!(Suite::from_id(id), None);
    }
    assert_eq!(Suite::ChaCha20Poly1305.name(), "chacha20-poly1305");
    assert_eq!(Suite::Aes256Gcm.name(), "aes-256-gcm");

    assert_eq!(Suites::default(), Suites::ALL);
    for s in Suite::ALL {
        assert!(Suites::ALL.contains(s));
        assert!(!Suites::NONE.contains(s));
        assert!(Suites::only(s).contains(s));
        assert_eq!(Suites::from(s), Suites::only(s));
        assert_eq!(Suites::only(s).iter().collect::<Vec<_>>(), [s]);
    }
    assert!(!Suites::only(Suite::Aes256Gcm).contains(Suite::ChaCha20Poly1305));
    assert!(!Suites::only(Suite::ChaCha20Poly1305).contains(Suite::Aes256Gcm));
    assert!(Suites::NONE.is_empty() && !Suites::ALL.is_empty());
    assert_eq!(
        Suites::NONE
            .with(Suite::Aes256Gcm)
            .with(Suite::ChaCha20Poly1305),
        Suites::ALL
    );
    assert_eq!(Suite::ALL.into_iter().collect::<Suites>(), Suites::ALL);
    assert_eq!(Suites::ALL.to_string(), "chacha20-poly1305,aes-256-gcm");
    assert_eq!(
        format!("{:?}", Suites::only(Suite::Aes256Gcm)),
        "{Aes256Gcm}"
    );
    assert_eq!(Suites::NONE.to_string(), "");

    assert_eq!(Config::default().suite, Suite::preferred());
    assert_eq!(Config::default().accept, Suites::ALL);
    assert_eq!(
        Config::default().reject_after_time,
        3 * Config::default().rekey_after_time
    );
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    assert_eq!(
        Suite::preferred() == Suite::Aes256Gcm,
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    );
}

#[test]
fn drop_reasons_are_indexed_by_declaration_order() {
    for (i, d) in Drop::ALL.iter().enumerate() {
        assert_eq!(*d as usize, i);
        assert!(!d.as_str().is_empty());
    }
    assert!(Drop::ALL.contains(&Drop::BadSuite));
    assert_eq!(Drop::BadSuite.to_string(), "suite not offered/accepted");
    assert!(Drop::ALL.contains(&Drop::KeyExpired));
    assert_eq!(Drop::KeyExpired.to_string(), "keypair expired");
    let mut stats = crate::Stats::default();
    stats.dropped(Drop::BadSuite);
    assert_eq!(stats.count(Drop::BadSuite), 1);
    assert_eq!(stats.dropped_total(), 1);
}
