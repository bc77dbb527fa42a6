//! `Noise_IKpsk2_25519_ChaChaPoly_SHA256`: the two handshake messages of
//! the Noise Protocol Framework (revision 34) pattern that WireGuard uses,
//! and the split into transport keys. Checked against the Noise test
//! vectors (cacophony) in `noise_tests.rs`.
//!
//! ```text
//! IKpsk2:
//!   <- s
//!   ...
//!   -> e, es, s, ss
//!   <- e, ee, se, psk
//! ```
//!
//! Secrets held here (chaining key, cipher key, DH outputs, ephemeral
//! keys) are wiped when dropped. HMAC-SHA256 and SHA-256 come from `ring`,
//! X25519 from `x25519-dalek`, ChaCha20-Poly1305 from RustCrypto (whose
//! key is wiped on drop). `ring`'s HMAC keys, made here from the chaining
//! key for each HKDF step, hold the hash states after the padded key and
//! are not wiped by `ring` (they live on the stack for one call).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use ring::hmac;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::identity::{Identity, PublicKey};
use crate::keys::sha256;

/// The protocol name, the first input of the handshake hash.
pub const PROTOCOL_NAME: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256";

const TAG: usize = 16;
const DHLEN: usize = 32;

/// Length of message 1 with a payload of `payload` bytes.
pub const fn msg1_len(payload: usize) -> usize {
    DHLEN + DHLEN + TAG + payload + TAG
}

/// Length of message 2 with a payload of `payload` bytes.
pub const fn msg2_len(payload: usize) -> usize {
    DHLEN + payload + TAG
}

type Key = Zeroizing<[u8; 32]>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// Noise's HKDF with two outputs.
fn hkdf2(ck: &[u8], ikm: &[u8]) -> (Key, Key) {
    let temp = hmac(ck, &[ikm]);
    let o1 = hmac(&temp[..], &[&[1]]);
    let o2 = hmac(&temp[..], &[&o1[..], &[2]]);
    (o1, o2)
}

/// Noise's HKDF with three outputs.
fn hkdf3(ck: &[u8], ikm: &[u8]) -> (Key, Key, Key) {
    let temp = hmac(ck, &[ikm]);
    let o1 = hmac(&temp[..], &[&[1]]);
    let o2 = hmac(&temp[..], &[&o1[..], &[2]]);
    let o3 = hmac(&temp[..], &[&o2[..], &[3]]);
    (o1, o2, o3)
}

/// X25519; `None` for a result of all zeros (a low-order peer key: the
/// result would not depend on our secret).
fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Option<Key> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    if !shared.was_contributory() {
        return None;
    }
    Some(Zeroizing::new(shared.to_bytes()))
}

/// The SymmetricState of the Noise specification.
#[derive(Clone)]
struct Symmetric {
    ck: Key,
    h: [u8; 32],
    k: Option<Key>,
    n: u64,
}

impl Symmetric {
    fn new(prologue: &[u8]) -> Symmetric {
        // the name is longer than HASHLEN: h = HASH(name)
        let h = sha256(&[PROTOCOL_NAME]);
        let mut s = Symmetric {
            ck: Zeroizing::new(h),
            h,
            k: None,
            n: 0,
        };
        s.mix_hash(prologue);
        s
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck[..], ikm);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
    }

    fn mix_key_and_hash(&mut self, ikm: &[u8]) {
        let (ck, th, k) = hkdf3(&self.ck[..], ikm);
        self.ck = ck;
        self.mix_hash(&th[..]);
        self.k = Some(k);
        self.n = 0;
    }

    fn nonce(n: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_le_bytes());
        nonce
    }

    /// Encrypts `plain` into `out` (`plain.len() + TAG` bytes) and mixes
    /// the ciphertext into `h`. Every call here has a key.
    fn encrypt_and_hash(&mut self, plain: &[u8], out: &mut [u8]) -> Option<()> {
        let k = self.k.as_ref()?;
        let (body, tag_out) = out.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let cipher = ChaCha20Poly1305::new_from_slice(&k[..]).ok()?;
        let tag = cipher
            .encrypt_in_place_detached(&Self::nonce(self.n).into(), &self.h, body)
            .ok()?;
        tag_out.copy_from_slice(&tag);
        self.n += 1;
        self.mix_hash(out);
        Some(())
    }

    /// Decrypts `cipher` (ciphertext and tag) into `out` (`cipher.len() -
    /// TAG` bytes) and mixes the ciphertext into `h`. `None` when the tag
    /// does not verify (`out` is then wiped).
    fn decrypt_and_hash(&mut self, cipher: &[u8], out: &mut [u8]) -> Option<()> {
        let k = self.k.as_ref()?;
        let split = cipher.len().checked_sub(TAG)?;
        let (body, tag) = cipher.split_at(split);
        if out.len() != body.len() {
            return None;
        }
        out.copy_from_slice(body);
        let aead = ChaCha20Poly1305::new_from_slice(&k[..]).ok()?;
        if aead
            .decrypt_in_place_detached(&Self::nonce(self.n).into(), &self.h, out, tag.into())
            .is_err()
        {
            out.fill(0);
            return None;
        }
        self.n += 1;
        self.mix_hash(cipher);
        Some(())
    }

    fn split(&self) -> Split {
        let (i2r, r2i) = hkdf2(&self.ck[..], &[]);
        Split {
            i2r,
            r2i,
            hash: self.h,
        }
    }
}

/// The outcome of a handshake: one key per direction, and the handshake
/// hash.
pub struct Split {
    /// Initiator to responder.
    pub i2r: Zeroizing<[u8; 32]>,
    /// Responder to initiator.
    pub r2i: Zeroizing<[u8; 32]>,
    /// The handshake hash (not secret).
    #[cfg_attr(not(test), allow(dead_code))]
    pub hash: [u8; 32],
}

/// The initiator after sending message 1.
#[derive(Clone)]
pub struct Initiator {
    sym: Symmetric,
    e: StaticSecret,
}

impl Initiator {
    /// Writes message 1 (`-> e, es, s, ss` and `payload`) to `rs` into
    /// `out`, which must be [`msg1_len`]`(payload.len())` bytes. `e` is the
    /// fresh ephemeral secret. `None` when `rs` is a low-order key.
    pub fn write_msg1(
        s: &Identity,
        rs: &PublicKey,
        prologue: &[u8],
        e: StaticSecret,
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<Initiator> {
        if out.len() != msg1_len(payload.len()) {
            return None;
        }
        let mut sym = Symmetric::new(prologue);
        sym.mix_hash(rs.as_bytes());
        let e_pub = x25519_dalek::PublicKey::from(&e).to_bytes();
        let (oe, rest) = out.split_at_mut(DHLEN);
        oe.copy_from_slice(&e_pub);
        sym.mix_hash(&e_pub);
        sym.mix_key(&e_pub);
        sym.mix_key(&dh(&e, rs.as_bytes())?[..]);
        let (os, op) = rest.split_at_mut(DHLEN + TAG);
        sym.encrypt_and_hash(s.public().as_bytes(), os)?;
        sym.mix_key(&dh(s.secret(), rs.as_bytes())?[..]);
        sym.encrypt_and_hash(payload, op)?;
        Some(Initiator { sym, e })
    }

    /// Reads message 2 (`<- e, ee, se, psk` and its payload, put in
    /// `payload`, which must be `msg.len() - 48` bytes). `self` is left as
    /// it was whatever the outcome, so a forged message 2 costs the
    /// genuine one nothing.
    pub fn read_msg2(
        &self,
        s: &Identity,
        psk: &[u8; 32],
        msg: &[u8],
        payload: &mut [u8],
    ) -> Option<Split> {
        let mut sym = self.sym.clone();
        let re: [u8; 32] = msg.get(..DHLEN)?.try_into().ok()?;
        sym.mix_hash(&re);
        sym.mix_key(&re);
        sym.mix_key(&dh(&self.e, &re)?[..]);
        sym.mix_key(&dh(s.secret(), &re)?[..]);
        sym.mix_key_and_hash(psk);
        sym.decrypt_and_hash(msg.get(DHLEN..)?, payload)?;
        Some(sym.split())
    }
}

/// The responder after reading message 1.
pub struct Responder {
    sym: Symmetric,
    rs: PublicKey,
    re: [u8; 32],
}

impl Responder {
    /// Reads message 1 addressed to `s`; its payload goes to `payload`,
    /// which must be `msg.len() - 96` bytes. `None` when it does not
    /// decrypt (not for us, or altered).
    pub fn read_msg1(
        s: &Identity,
        prologue: &[u8],
        msg: &[u8],
        payload: &mut [u8],
    ) -> Option<Responder> {
        if msg.len() != msg1_len(payload.len()) {
            return None;
        }
        let mut sym = Symmetric::new(prologue);
        sym.mix_hash(s.public().as_bytes());
        let re: [u8; 32] = msg.get(..DHLEN)?.try_into().ok()?;
        sym.mix_hash(&re);
        sym.mix_key(&re);
        sym.mix_key(&dh(s.secret(), &re)?[..]);
        let mut rs = [0u8; 32];
        sym.decrypt_and_hash(msg.get(DHLEN..2 * DHLEN + TAG)?, &mut rs)?;
        let rs = PublicKey(rs);
        sym.mix_key(&dh(s.secret(), rs.as_bytes())?[..]);
        sym.decrypt_and_hash(msg.get(2 * DHLEN + TAG..)?, payload)?;
        Some(Responder { sym, rs, re })
    }

    /// The initiator's static key, as message 1 proved.
    pub fn remote_static(&self) -> PublicKey {
        self.rs
    }

    /// Writes message 2 into `out` ([`msg2_len`]`(payload.len())` bytes)
    /// with the fresh ephemeral secret `e` and the pre-shared key.
    pub fn write_msg2(
        mut self,
        e: StaticSecret,
        psk: &[u8; 32],
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<Split> {
        if out.len() != msg2_len(payload.len()) {
            return None;
        }
        let e_pub = x25519_dalek::PublicKey::from(&e).to_bytes();
        let (oe, op) = out.split_at_mut(DHLEN);
        oe.copy_from_slice(&e_pub);
        self.sym.mix_hash(&e_pub);
        self.sym.mix_key(&e_pub);
        self.sym.mix_key(&dh(&e, &self.re)?[..]);
        self.sym.mix_key(&dh(&e, self.rs.as_bytes())?[..]);
        self.sym.mix_key_and_hash(psk);
        self.sym.encrypt_and_hash(payload, op)?;
        Some(self.sym.split())
    }
}
