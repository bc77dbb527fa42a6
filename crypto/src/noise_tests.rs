//! The Noise test vector of `Noise_IKpsk2_25519_ChaChaPoly_SHA256` from
//! cacophony (the vectors the Noise specification points to): both
//! handshake messages byte for byte, the handshake hash, and the split keys
//! through the transport messages that follow.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;

use crate::identity::{Identity, PublicKey};
use crate::noise::{msg1_len, msg2_len, Initiator, Responder};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

const PROLOGUE: &str = "4a6f686e2047616c74";
const PSK: &str = "54686973206973206d7920417573747269616e20706572737065637469766521";
const INIT_STATIC: &str = "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
const INIT_EPHEMERAL: &str = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
const RESP_STATIC: &str = "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
const RESP_EPHEMERAL: &str = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
const HANDSHAKE_HASH: &str = "8310f86394dc0dabb40beb8210031556db4403ab1202db7034c526232147a700";
/// (payload, ciphertext): messages 1 and 2 are the handshake, then the
/// transport messages alternate, initiator first.
const MESSAGES: [(&str, &str); 6] = [
    ("4c756477696720766f6e204d69736573", "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79442ec9b09893d0f510791784c10cbc959f25b1766e0def6e301d14fbca1c7790ac829b8b3674f5f649a5f0e98479662cbfbf2b2c47cd4b09fcd266cd29d7cb675f1808849707847840f6d178ec4d3733aa"),
    ("4d757272617920526f746862617264", "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088439a1b3cebf680b2c74217fcb5eba4ff58a9468cd90c4aca6194f57479b379a7"),
    ("462e20412e20486179656b", "a8fde7a0accec190cd306c5950d4fd8e04a205ec288aa747d8b347"),
    ("4361726c204d656e676572", "59caddd9984a3bbe24c4fb31a2bd455b7eba3fa0980674b1a3a5f9"),
    ("4a65616e2d426170746973746520536179", "3b9bfebd210c22ba0cff9de79b4007d7a552fffbf92616881faa8a883e25b80258"),
    ("457567656e2042f6686d20766f6e2042617765726b", "f37512df1043d564d7c46ac85c53d3b6a9a05724bc297e7142808f217561651217fe85b782"),
];

fn seal(k: &[u8; 32], n: u64, plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    let mut buf = plain.to_vec();
    let tag = ChaCha20Poly1305::new_from_slice(k)
        .unwrap()
        .encrypt_in_place_detached(&nonce.into(), &[], &mut buf)
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

#[test]
fn cacophony_ikpsk2_25519_chachapoly_sha256() {
    let prologue = unhex(PROLOGUE);
    let psk = key(PSK);
    let init_s = Identity::from_bytes(key(INIT_STATIC));
    let resp_s = Identity::from_bytes(key(RESP_STATIC));
    let rs: PublicKey = resp_s.public();

    let p1 = unhex(MESSAGES[0].0);
    let mut m1 = vec![0u8; msg1_len(p1.len())];
    let e_i = x25519_dalek::StaticSecret::from(key(INIT_EPHEMERAL));
    let ini = Initiator::write_msg1(&init_s, &rs, &prologue, e_i, &p1, &mut m1).unwrap();
    assert_eq!(m1, unhex(MESSAGES[0].1), "message 1");

    let mut got1 = vec![0u8; p1.len()];
    let resp = Responder::read_msg1(&resp_s, &prologue, &m1, &mut got1).unwrap();
    assert_eq!(got1, p1);
    assert_eq!(resp.remote_static(), init_s.public());

    let p2 = unhex(MESSAGES[1].0);
    let mut m2 = vec![0u8; msg2_len(p2.len())];
    let e_r = x25519_dalek::StaticSecret::from(key(RESP_EPHEMERAL));
    let rsplit = resp.write_msg2(e_r, &psk, &p2, &mut m2).unwrap();
    assert_eq!(m2, unhex(MESSAGES[1].1), "message 2");

    let mut got2 = vec![0u8; p2.len()];
    let isplit = ini.read_msg2(&init_s, &psk, &m2, &mut got2).unwrap();
    assert_eq!(got2, p2);
    assert_eq!(isplit.hash.to_vec(), unhex(HANDSHAKE_HASH));
    assert_eq!(rsplit.hash, isplit.hash);
    assert_eq!(*isplit.i2r, *rsplit.i2r);
    assert_eq!(*isplit.r2i, *rsplit.r2i);

    // transport: initiator's messages under i2r, responder's under r2i,
    // each direction counting from 0
    for (i, (p, c)) in MESSAGES[2..].iter().enumerate() {
        let (k, n) = if i % 2 == 0 {
            (&isplit.i2r, (i / 2) as u64)
        } else {
            (&isplit.r2i, (i / 2) as u64)
        };
        assert_eq!(
            seal(k, n, &unhex(p)),
            unhex(c),
            "transport message {}",
            i + 3
        );
    }
}

#[test]
fn a_wrong_psk_or_responder_or_altered_message_fails() {
    let prologue = b"p";
    let init_s = Identity::from_bytes([1; 32]);
    let resp_s = Identity::from_bytes([2; 32]);
    let other = Identity::from_bytes([3; 32]);
    let mut m1 = vec![0u8; msg1_len(4)];
    let e = x25519_dalek::StaticSecret::from([4; 32]);
    let ini =
        Initiator::write_msg1(&init_s, &resp_s.public(), prologue, e, b"abcd", &mut m1).unwrap();
    let mut p = [0u8; 4];
    assert!(
        Responder::read_msg1(&other, prologue, &m1, &mut p).is_none(),
        "another responder"
    );
    assert!(
        Responder::read_msg1(&resp_s, b"q", &m1, &mut p).is_none(),
        "another prologue"
    );
    for i in [0, 40, m1.len() - 1] {
        let mut bad = m1.clone();
        bad[i] ^= 1;
        assert!(
            Responder::read_msg1(&resp_s, prologue, &bad, &mut p).is_none(),
            "byte {i}"
        );
    }
    let resp = Responder::read_msg1(&resp_s, prologue, &m1, &mut p).unwrap();
    let mut m2 = vec![0u8; msg2_len(0)];
    let e = x25519_dalek::StaticSecret::from([5; 32]);
    resp.write_msg2(e, &[9; 32], &[], &mut m2).unwrap();
    assert!(
        ini.read_msg2(&init_s, &[8; 32], &m2, &mut []).is_none(),
        "wrong psk"
    );
    // the failed attempt left the initiator as it was
    assert!(ini.read_msg2(&init_s, &[9; 32], &m2, &mut []).is_some());
}
