//! Long-term identities: a node's static X25519 key pair, and how a public
//! key is shown to people (a fingerprint, as ssh shows host keys).

use core::fmt;

use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::keys::sha256;
use crate::Error;

/// A node's long-term X25519 key pair. The secret is wiped when dropped and
/// never printed.
#[derive(Clone)]
pub struct Identity {
    secret: x25519_dalek::StaticSecret,
    public: PublicKey,
}

impl Identity {
    /// The identity of a 32-byte secret (clamped as X25519 does).
    pub fn from_bytes(bytes: [u8; 32]) -> Identity {
        let bytes = Zeroizing::new(bytes);
        let secret = x25519_dalek::StaticSecret::from(*bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Identity { secret, public }
    }

    /// A fresh random identity.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Identity, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(&mut bytes[..]).map_err(|_| Error::Rng)?;
        Ok(Identity::from_bytes(*bytes))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret bytes, for writing the identity file (wipe the copy).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    pub(crate) fn secret(&self) -> &x25519_dalek::StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public.fingerprint())
    }
}

/// A node's public X25519 key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in 64 lowercase hex digits (as the ticket line carries it).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A key from 64 hex digits.
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(PublicKey(out))
    }

    /// The SHA-256 of the key: what a fingerprint shows, and what a pin
    /// holds.
    pub fn digest(&self) -> Fingerprint {
        Fingerprint(sha256(&[b"vde-crypto/2 identity", &self.0]))
    }

    /// The fingerprint people compare: `SHA256:` and the digest in
    /// unpadded base64, as ssh shows host keys.
    pub fn fingerprint(&self) -> String {
        self.digest().to_string()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

/// The digest of a public key ([`PublicKey::digest`]); shown as
/// `SHA256:<base64>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses `SHA256:<43 base64 characters>` (the `SHA256:` may be left
    /// out).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let b64 = s.strip_prefix("SHA256:").unwrap_or(s);
        let bytes = base64_decode(b64)?;
        Some(Fingerprint(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", base64_encode(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 without padding.
fn base64_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            s.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    s
}

/// Decodes standard base64, padded or not; `None` for anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // leftover bits must be zero padding, and a lone 6-bit group is no byte
    (acc == 0 && bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        // RFC 4648 section 10, without padding
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zh").is_none(), "nonzero padding bits");
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn fingerprints_round_trip_and_differ() {
        let a = Identity::from_bytes([1; 32]).public();
        let b = Identity::from_bytes([2; 32]).public();
        let fa = a.fingerprint();
        assert!(fa.starts_with("SHA256:") && fa.len() == 7 + 43, "{fa}");
        assert_eq!(Fingerprint::parse(&fa), Some(a.digest()));
        assert_eq!(Fingerprint::parse(&fa[7..]), Some(a.digest()));
        assert_ne!(fa, b.fingerprint());
        assert_eq!(PublicKey::from_hex(&a.to_hex()), Some(a));
        assert!(PublicKey::from_hex(&a.to_hex()[1..]).is_none());
        assert!(Fingerprint::parse("SHA256:short").is_none());
    }

    #[test]
    fn the_public_key_is_x25519_of_the_secret() {
        // RFC 7748 section 6.1: Alice's key pair
        let mut sk = [0u8; 32];
        let hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        for (i, b) in sk.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        assert_eq!(
            Identity::from_bytes(sk).public().to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }
}
