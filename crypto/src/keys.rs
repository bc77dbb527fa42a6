//! Thin wrappers over the `ring` primitives (and X25519 from `x25519-dalek`,
//! whose secrets zeroize on drop, and the cookie AEAD from RustCrypto), the
//! key derivations around the Noise handshake, and keypairs.
//!
//! Every derivation goes through these functions, and the known-answer tests
//! exercise them directly.

use std::time::Duration;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hkdf, hmac};
use zeroize::Zeroizing;

use crate::identity::PublicKey;
use crate::replay::ReplayWindow;
use crate::wire::{self, HEADER_LEN, MAC_LEN, REJECT_AFTER_MESSAGES, TAG_LEN};
use crate::{after, Drop, Psk, Suite};

/// An HKDF output length.
pub(crate) struct Len(pub usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Extract with SHA-256.
pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm)
}

/// HKDF-Expand with SHA-256 into `out`. Every caller in this crate asks for
/// at most 32 bytes, far below HKDF's limit of 255 * 32, so this cannot fail.
pub(crate) fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) {
    let info = [info];
    let done = prk
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out));
    debug_assert!(done.is_ok(), "HKDF output too long");
    if done.is_err() {
        // Unreachable with the lengths used here; never leave garbage.
        out.fill(0);
    }
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sign(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

/// A 16-byte truncated HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn mac16(key: &hmac::Key, parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let tag = hmac_sign(key, parts);
    let mut out = [0u8; MAC_LEN];
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

/// Constant-time equality of two 16-byte values.
pub(crate) fn ct_eq16(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b) {
        acc |= x ^ y;
    }
    core::hint::black_box(acc) == 0
}

/// Verifies a truncated MAC in constant time.
pub(crate) fn verify_mac16(key: &hmac::Key, parts: &[&[u8]], mac: &[u8; MAC_LEN]) -> bool {
    ct_eq16(&mac16(key, parts), mac)
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    for (o, t) in out.iter_mut().zip(d.as_ref()) {
        *o = *t;
    }
    out
}

/// An AEAD key of `suite` from raw bytes (zeroized by the caller).
pub(crate) fn aead_key(suite: Suite, bytes: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(suite.algorithm(), bytes)
        .ok()
        .map(LessSafeKey::new)
}

/// AEAD seal in place with an explicit nonce; returns the tag.
pub(crate) fn aead_seal(
    key: &LessSafeKey,
    nonce: [u8; 12],
    aad: &[u8],
    in_out: &mut [u8],
) -> Option<aead::Tag> {
    key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
        .ok()
}

/// AEAD open in place (`in_out` = ciphertext || tag); returns the plaintext
/// length.
pub(crate) fn aead_open(
    key: &LessSafeKey,
    nonce: [u8; 12],
    aad: &[u8],
    in_out: &mut [u8],
) -> Option<usize> {
    key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
        .ok()
        .map(|p| p.len())
}

/// A handshake's X25519 secret: fresh for every handshake, wiped when
/// dropped. It is not consumed by an agreement, so a response that does
/// not verify leaves it usable for the genuine one.
pub(crate) type Ephemeral = x25519_dalek::StaticSecret;

/// A fresh X25519 ephemeral secret (32 bytes from `rng`).
pub(crate) fn x25519_ephemeral(rng: &dyn ring::rand::SecureRandom) -> Option<Ephemeral> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill(&mut bytes[..]).ok()?;
    Some(Ephemeral::from(*bytes))
}

/// The key of an INIT's mac1: it names the responder (its static public
/// key) and, in PSK-file mode, the PSK, so that an INIT is valid at one
/// server only and a sender without the key file is not answered.
pub(crate) fn mac1_key(server: &PublicKey, psk: Option<&Psk>) -> hmac::Key {
    let mut k = Zeroizing::new(sha256(&[
        b"vde-crypto/2 mac1",
        server.as_bytes(),
        psk.map_or(&[][..], |p| &p.as_bytes()[..]),
    ]));
    let key = hmac::Key::new(hmac::HMAC_SHA256, &k[..]);
    k.fill(0);
    key
}

/// The key that seals cookies for the clients of `server`.
pub(crate) fn cookie_seal_key(server: &PublicKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(sha256(&[b"vde-crypto/2 cookie", server.as_bytes()]))
}

/// Seals a 16-byte cookie (in place, tag appended) under `key`.
pub(crate) fn cookie_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    cookie: &mut [u8; MAC_LEN],
) -> Option<[u8; TAG_LEN]> {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let c = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).ok()?;
    let tag = c
        .encrypt_in_place_detached(nonce.into(), aad, cookie)
        .ok()?;
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&tag);
    Some(t)
}

/// Opens a sealed cookie in place.
pub(crate) fn cookie_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    cookie: &mut [u8; MAC_LEN],
    tag: &[u8; TAG_LEN],
) -> Option<()> {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let c = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).ok()?;
    c.decrypt_in_place_detached(nonce.into(), aad, cookie, tag.into())
        .ok()
}

/// The HMAC key of KEYREQ and KEYRESP (PSK-file mode).
pub(crate) fn keyreq_key(psk: &Psk) -> hmac::Key {
    let prk = extract(b"vde-crypto/2 keyreq", psk.as_bytes());
    let mut k = Zeroizing::new([0u8; 32]);
    expand(&prk, b"keyreq", &mut k[..]);
    hmac::Key::new(hmac::HMAC_SHA256, &k[..])
}

/// A transport key of `suite` from one direction of the handshake's
/// split: `HKDF-SHA256(salt = "vde-crypto/2 transport", ikm = key, info =
/// suite name)`, so each suite has its own key.
pub(crate) fn transport_key(suite: Suite, split: &[u8; 32]) -> Option<LessSafeKey> {
    let prk = extract(b"vde-crypto/2 transport", split);
    let mut bytes = Zeroizing::new([0u8; 32]);
    let len = suite.algorithm().key_len();
    let bytes = bytes.get_mut(..len)?;
    expand(&prk, suite.name().as_bytes(), bytes);
    aead_key(suite, bytes)
}

/// One direction pair of transport keys with its counters.
pub(crate) struct Keypair {
    /// The negotiated AEAD of `send` and `recv`.
    pub suite: Suite,
    send: LessSafeKey,
    recv: LessSafeKey,
    /// Our sender index: the receiver index of packets sent to us.
    pub local_index: u32,
    /// The peer's sender index: the receiver index of packets we send.
    pub remote_index: u32,
    send_counter: u64,
    replay: ReplayWindow,
    /// When this keypair became current (client: when its handshake
    /// completed; server: made when the INIT was answered, then reset when
    /// the handshake is confirmed). Its age for `rekey_after_time` and
    /// `reject_after_time` counts from here.
    pub created: Duration,
}

impl Keypair {
    pub(crate) fn new(
        suite: Suite,
        send: LessSafeKey,
        recv: LessSafeKey,
        local_index: u32,
        remote_index: u32,
        created: Duration,
    ) -> Keypair {
        Keypair {
            suite,
            send,
            recv,
            local_index,
            remote_index,
            send_counter: 0,
            replay: ReplayWindow::new(),
            created,
        }
    }

    /// When this keypair stops sealing and opening: `created +
    /// reject_after`.
    pub(crate) fn expires_at(&self, reject_after: Duration) -> Duration {
        after(self.created, reject_after)
    }

    /// Whether this keypair is past its hard lifetime at `now`.
    pub(crate) fn expired(&self, now: Duration, reject_after: Duration) -> bool {
        now >= self.expires_at(reject_after)
    }

    /// The next counter to be used for sending.
    pub(crate) fn send_counter(&self) -> u64 {
        self.send_counter
    }

    #[cfg(test)]
    pub(crate) fn set_send_counter(&mut self, counter: u64) {
        self.send_counter = counter;
    }

    /// Writes a transport packet of type `ty` carrying `payload` into `out`
    /// (cleared first).
    pub(crate) fn seal(&mut self, ty: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Drop> {
        out.clear();
        let counter = self.send_counter;
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(Drop::KeyExhausted);
        }
        let header = wire::transport_header(ty, self.remote_index, counter);
        out.reserve(HEADER_LEN + payload.len() + TAG_LEN);
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
        let (aad, body) = out.split_at_mut(HEADER_LEN);
        let Some(tag) = aead_seal(&self.send, wire::nonce_bytes(counter), aad, body) else {
            out.clear();
            return Err(Drop::Internal);
        };
        out.extend_from_slice(tag.as_ref());
        self.send_counter = counter + 1;
        Ok(())
    }

    /// Authenticates and decrypts a transport packet whose header was parsed
    /// as `counter`; the payload is left in `out`. `Ok(true)` when the
    /// counter is the highest yet (only such a packet may move the peer's
    /// address: a genuine packet held back and released later from
    /// elsewhere must not).
    pub(crate) fn open(
        &mut self,
        datagram: &[u8],
        counter: u64,
        out: &mut Vec<u8>,
    ) -> Result<bool, Drop> {
        out.clear();
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(Drop::KeyExhausted);
        }
        if !self.replay.check(counter) {
            return Err(Drop::Replay);
        }
        let (Some(aad), Some(body)) = (datagram.get(..HEADER_LEN), datagram.get(HEADER_LEN..))
        else {
            return Err(Drop::TooShort);
        };
        out.extend_from_slice(body);
        let Some(len) = aead_open(&self.recv, wire::nonce_bytes(counter), aad, out) else {
            out.clear();
            return Err(Drop::BadTag);
        };
        out.truncate(len);
        let newest = self.replay.highest().is_none_or(|top| counter > top);
        if !self.replay.update(counter) {
            out.clear();
            return Err(Drop::Replay);
        }
        Ok(newest)
    }
}
