//! Thin wrappers over the `ring` primitives (and X25519 from `x25519-dalek`,
//! whose secrets zeroize on drop), the key schedule, and keypairs.
//!
//! Every derivation goes through these functions, and the known-answer tests
//! exercise them directly.

use std::time::Duration;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hkdf, hmac};
use zeroize::Zeroizing;

use crate::replay::ReplayWindow;
use crate::wire::{self, HEADER_LEN, MAC_LEN, REJECT_AFTER_MESSAGES, TAG_LEN};
use crate::{after, Drop, Psk, Suite, PROTOCOL};

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

/// A fresh X25519 ephemeral key (32 bytes from `rng`) and its public key.
pub(crate) fn x25519_ephemeral(
    rng: &dyn ring::rand::SecureRandom,
) -> Option<(Ephemeral, [u8; 32])> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill(&mut bytes[..]).ok()?;
    let private = Ephemeral::from(*bytes);
    let public = x25519_dalek::PublicKey::from(&private).to_bytes();
    Some((private, public))
}

/// X25519 agreement; `kdf` gets the shared secret (wiped afterwards).
/// `None` for a malformed or low-order peer key (no contribution of ours
/// in the result). The private key stays usable.
pub(crate) fn x25519_agree<R>(
    private: &Ephemeral,
    peer_public: &[u8],
    kdf: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let peer: [u8; 32] = peer_public.try_into().ok()?;
    let shared = private.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if !shared.was_contributory() {
        return None;
    }
    Some(kdf(shared.as_bytes()))
}

/// What a PSK yields: the mac1 key and the handshake salt `ck`.
pub(crate) struct PskKeys {
    mac1: hmac::Key,
    ck: hkdf::Salt,
}

impl PskKeys {
    pub(crate) fn new(psk: &Psk) -> PskKeys {
        let ck0 = extract(PROTOCOL.as_bytes(), psk.as_bytes());
        let mut mac1 = Zeroizing::new([0u8; 32]);
        expand(&ck0, b"mac1", &mut mac1[..]);
        let mut ck = Zeroizing::new([0u8; 32]);
        expand(&ck0, b"ck", &mut ck[..]);
        PskKeys {
            mac1: hmac::Key::new(hmac::HMAC_SHA256, &mac1[..]),
            ck: hkdf::Salt::new(hkdf::HKDF_SHA256, &ck[..]),
        }
    }

    /// mac1 of the first 56 bytes of an INIT.
    pub(crate) fn mac1(&self, init_head: &[u8]) -> [u8; MAC_LEN] {
        mac16(&self.mac1, &[init_head])
    }

    /// Constant-time check of an INIT's mac1.
    pub(crate) fn verify_mac1(&self, init_head: &[u8], mac: &[u8; MAC_LEN]) -> bool {
        verify_mac16(&self.mac1, &[init_head], mac)
    }

    /// The session keys of `suite` from the shared secret and the transcript
    /// hash. `None` when `dh` is not 32 bytes.
    pub(crate) fn session(&self, suite: Suite, dh: &[u8], th: &[u8; 32]) -> Option<SessionKeys> {
        let mut ikm = Zeroizing::new([0u8; 64]);
        let (d, t) = ikm.split_at_mut(32);
        if dh.len() != d.len() {
            return None;
        }
        d.copy_from_slice(dh);
        t.copy_from_slice(th);
        let prk = self.ck.extract(&ikm[..]);
        let mut bytes = Zeroizing::new([0u8; 32]);
        expand(&prk, b"confirm", &mut bytes[..]);
        let confirm = hmac::Key::new(hmac::HMAC_SHA256, &bytes[..]);
        let key_len = suite.algorithm().key_len();
        let bytes = bytes.get_mut(..key_len)?;
        expand(&prk, b"c2s", bytes);
        let c2s = aead_key(suite, bytes)?;
        expand(&prk, b"s2c", bytes);
        let s2c = aead_key(suite, bytes)?;
        Some(SessionKeys { confirm, c2s, s2c })
    }
}

/// The outcome of a handshake's key schedule.
pub(crate) struct SessionKeys {
    pub confirm: hmac::Key,
    pub c2s: LessSafeKey,
    pub s2c: LessSafeKey,
}

impl SessionKeys {
    /// The confirm field of a RESP.
    pub(crate) fn confirm(&self, th: &[u8; 32], resp_head: &[u8]) -> [u8; MAC_LEN] {
        mac16(&self.confirm, &[th, resp_head])
    }
}

/// Transcript hash of a handshake.
pub(crate) fn transcript(init: &[u8], resp_head: &[u8]) -> [u8; 32] {
    sha256(&[init, resp_head])
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
    /// as `counter`; the payload is left in `out`.
    pub(crate) fn open(
        &mut self,
        datagram: &[u8],
        counter: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), Drop> {
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
        if !self.replay.update(counter) {
            out.clear();
            return Err(Drop::Replay);
        }
        Ok(())
    }
}
