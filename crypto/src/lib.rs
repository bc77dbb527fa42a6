//! vde-crypto: the sans-IO secure-cable protocol of vde, `vde-crypto/2`.
//!
//! This crate holds the handshake messages, key schedule, seal/open, replay
//! window and timers of the secure cable. It touches no socket and no clock:
//! the caller passes every datagram in, sends every datagram the state
//! machines write into its `out` buffer, and passes time in as `now`, a
//! monotonic [`Duration`] since an arbitrary epoch of its choosing. The two
//! state machines are [`Client`] (one cable, the initiator) and [`Server`]
//! (many cables, the responder). Each call returns an enum telling the caller
//! what to do next.
//!
//! The handshake is Noise `IKpsk2` with X25519, ChaCha20-Poly1305 and
//! SHA-256 ([`noise`], checked against the Noise test vectors), the pattern
//! WireGuard uses. Primitives: X25519 from `x25519-dalek`; HMAC, HKDF,
//! SHA-256 and the transport AEADs (ChaCha20-Poly1305, AES-256-GCM) from
//! `ring`; the handshake's and the cookies' ChaCha20-Poly1305 from
//! RustCrypto (whose keys are wiped on drop).
//!
//! # Wire format of `vde-crypto/2`
//!
//! All integers are little-endian unless said otherwise. Every datagram
//! starts with a type byte and three more header bytes. In INIT and RESP
//! byte 1 is the AEAD suite id (see [`Suite::id`]) and bytes 2..4 are
//! reserved; in the other messages bytes 1..4 are reserved. Reserved bytes
//! are zero on send, and a datagram with a nonzero reserved byte is dropped.
//!
//! | type | name      | direction        | length      |
//! |------|-----------|------------------|-------------|
//! | 0x01 | INIT      | client -> server | 152         |
//! | 0x02 | RESP      | server -> client | 72          |
//! | 0x03 | COOKIE    | server -> client | 52          |
//! | 0x04 | DATA      | both             | 32 + frame  |
//! | 0x05 | KEEPALIVE | both             | 32          |
//! | 0x06 | CLOSE     | both             | 32          |
//! | 0x07 | KEYREQ    | client -> server | 52          |
//! | 0x08 | KEYRESP   | server -> client | 52          |
//!
//! ## Keys
//!
//! Every node has a long-term X25519 key pair, its [`Identity`]. Every
//! cable has a 32-byte pre-shared key ([`Psk`]), the Noise PSK, named by
//! an 8-byte [`KeyId`] chosen by the client (the cable id). In ticket mode
//! the server holds a table `KeyId -> (Psk, client's static key)` filled
//! through an authenticated side channel (ssh), and the client knows the
//! server's static key from it ([`ServerAuth::Ticket`]); in PSK-file mode
//! the server holds a single PSK used for every key id and every client
//! identity ([`ServerAuth::Psk`]). A PSK file is turned into a PSK by
//! `HKDF-SHA256(salt = "vde-crypto/1 psk", ikm = file bytes, info = "psk",
//! L = 32)`; files shorter than 32 bytes or with fewer than 16 distinct
//! byte values are refused. The server tells cables apart by `(client
//! static key, key id)`.
//!
//! ```text
//! mac1_key    = SHA-256("vde-crypto/2 mac1" || S_server || psk)   (psk only in PSK-file mode)
//! cookie_key  = SHA-256("vde-crypto/2 cookie" || S_server)
//! keyreq_key  = HKDF-SHA256(salt = "vde-crypto/2 keyreq", ikm = psk, info = "keyreq", 32)
//! ```
//!
//! ## KEYREQ, KEYRESP (PSK-file mode, server key not known)
//!
//! ```text
//! KEYREQ:  [0] 0x07  [1..4] 0  [4..36] nonce (random)  [36..52] HMAC(keyreq_key, bytes[0..36])[..16]
//! KEYRESP: [0] 0x08  [1..4] 0  [4..36] S_server  [36..52] HMAC(keyreq_key, nonce || bytes[0..36])[..16]
//! ```
//!
//! The client takes `S_server` from the first KEYRESP that verifies
//! against its outstanding nonce and, when it was given a pin
//! ([`Fingerprint`], the SHA-256 of `"vde-crypto/2 identity" || S_server`),
//! matches it (else [`Drop::BadIdentity`]). A server in ticket mode drops
//! KEYREQ.
//!
//! ## INIT (152 bytes, client -> server)
//!
//! ```text
//! [0]        0x01
//! [1]        suite proposed (0x00 ChaCha20-Poly1305, 0x01 AES-256-GCM)
//! [2..4]     0
//! [4..8]     client sender index (u32, random)
//! [8..120]   Noise message 1 (-> e, es, s, ss): e (32), encrypted s (32 + 16),
//!            encrypted payload (16 + 16): key id (8) || timestamp (u64 BIG-endian, ns)
//! [120..136] mac1 = HMAC(mac1_key, bytes[0..120])[..16]
//! [136..152] mac2 = HMAC(cookie, bytes[0..136])[..16], or zeros without a cookie
//! ```
//!
//! The Noise prologue is `"vde-crypto/2" || bytes[0..8]`, and the responder's
//! static key is the pre-message. The server checks, in this order: exact
//! length, mac1 (constant time), then, when it is under load (see
//! COOKIE), mac2 (else it answers a COOKIE and does nothing else); the suite (a known id that
//! the server's [`Config::accept`] contains; else dropped unanswered as
//! [`Drop::BadSuite`]); the Noise message (else [`Drop::BadMac`]); in
//! ticket mode, the key id's ticket ([`Drop::UnknownKey`]) and that the
//! client's static key is the one the ticket names
//! ([`Drop::BadIdentity`]); the timestamp, strictly greater than any
//! accepted for that (client key, key id) ([`Drop::StaleTimestamp`]); room
//! for one more pending handshake (a new INIT for a cable replaces that
//! cable's older pending handshake, and a cable that is up is never
//! refused for the pending table). Every INIT dropped is dropped without an
//! answer. The client's timestamp is `max(wall_clock_at_start + (now -
//! start), previous + 1)` in nanoseconds.
//!
//! ## COOKIE (52 bytes, server -> client)
//!
//! ```text
//! [0] 0x03  [1..4] 0  [4..8] receiver index (the INIT's sender index)
//! [8..20]  nonce (random)
//! [20..52] ChaCha20-Poly1305(cookie_key, nonce, aad = the INIT's mac1, cookie (16))
//! cookie = HMAC(secret, source IPv6 or v4-mapped address (16) || port (2, BE))[..16]
//! ```
//!
//! The server draws `secret` afresh every [`COOKIE_SECRET_LIFETIME`]. The
//! client keeps the cookie for a little less than that and puts mac2 in
//! its next INIT, when the attempt in flight times out (it does not cancel
//! that attempt: the cookie key and the mac1 are public, so anyone could
//! make a COOKIE). The server is under load when it holds
//! [`Config::cookie_threshold`] or more unconfirmed handshakes, or when
//! four times that many INITs reached the key exchange within the current
//! second (INITs that fail after it, for an unknown ticket or identity,
//! take no handshake slot but cost X25519). Under load, once its address
//! is proven by mac2, a source address gets its share only: 20 INITs or
//! KEYREQs a second (a burst of 5; [`Drop::RateLimited`]) and 4 unconfirmed
//! handshakes (a live cable's rekey excepted), so that INITs replayed with
//! the replayer's own mac2, or made by a key holder, cannot fill the table
//! from one place.
//!
//! ## RESP (72 bytes, server -> client)
//!
//! ```text
//! [0]       0x02
//! [1]       suite chosen (= the one the INIT proposed)
//! [2..4]    0
//! [4..8]    server sender index (random u32, unique among the server's sessions)
//! [8..12]   receiver index (the client's sender index)
//! [12..72]  Noise message 2 (<- e, ee, se, psk): e (32), encrypted payload
//!           (12 + 16): a copy of bytes[0..12]
//! ```
//!
//! The client accepts a RESP of exactly 72 bytes whose receiver index is
//! its pending handshake's, whose suite byte is the one it proposed (else
//! [`Drop::BadSuite`], before any X25519), whose Noise message verifies and
//! whose payload equals its header (else [`Drop::BadMac`]; the handshake
//! state is left as it was, so a forged RESP costs the genuine one
//! nothing). Then, from the Noise split `(k_i2r, k_r2i)`:
//!
//! ```text
//! k_c2s = HKDF-SHA256(salt = "vde-crypto/2 transport", ikm = k_i2r, info = suite name, 32)
//! k_s2c = HKDF-SHA256(salt = "vde-crypto/2 transport", ikm = k_r2i, info = suite name, 32)
//! ```
//!
//! (suite names `"chacha20-poly1305"`, `"aes-256-gcm"`). The new keypair
//! becomes current for sending and the client sends a KEEPALIVE at once.
//! The server holds the new keypair as pending until the first
//! authenticated transport packet under it arrives: that packet confirms
//! the handshake, creating the peer (a new cable) or rotating the peer's
//! keys (rekey). RESP is smaller than INIT, and COOKIE and KEYRESP are no
//! larger than what they answer, so the server never amplifies.
//!
//! ## DATA, KEEPALIVE, CLOSE (transport, 32 bytes of overhead)
//!
//! ```text
//! [0]      type (0x04, 0x05 or 0x06)
//! [1..4]   0
//! [4..8]   receiver index (the peer's sender index)
//! [8..16]  counter (u64)
//! [16..]   AEAD(payload) || 16-byte tag, AAD = bytes[0..16],
//!          nonce = 4 zero bytes || counter (8 bytes, little-endian)
//! ```
//!
//! KEEPALIVE and CLOSE carry an empty payload. Each direction of each keypair
//! counts from 0 and never reuses a counter; no keypair seals more than
//! [`REJECT_AFTER_MESSAGES`] messages. The receiver finds the keypair by
//! receiver index (current, previous, or a server's pending one), rejects a
//! counter the replay window has already seen (a fast reject before
//! decrypting), opens the AEAD, and only then marks the counter as seen. The
//! replay window accepts, exactly once, any counter within the last 4032
//! of the highest seen. An authenticated packet under the current keypair
//! whose counter is higher than every one before updates the peer's
//! address (roaming); an older one, or one under the previous keypair,
//! even genuine, does not.
//!
//! ## Suite negotiation
//!
//! The AEAD is [`Suite::ChaCha20Poly1305`] or [`Suite::Aes256Gcm`],
//! negotiated by every handshake (rekeys included): the client proposes
//! [`Config::suite`] (by default [`Suite::preferred`], AES-256-GCM on CPUs
//! with AES and carry-less multiply instructions, else ChaCha20-Poly1305),
//! and the server accepts it if its [`Config::accept`] set contains it
//! (default: both), echoing it in RESP; otherwise it drops the INIT
//! unanswered and the client's attempts time out. There is no fallback to
//! another suite. Transport packets do not name their suite: each keypair
//! knows its own ([`Client::suite`], [`Server::peer_suite`]).
//!
//! ## Timers (see [`Config`])
//!
//! Only the client starts handshakes, also to rekey (after
//! `rekey_after_time`, `rekey_after_bytes` or near counter exhaustion); the
//! old keypair keeps working meanwhile, and after the switch it stays valid
//! for receiving during `old_key_keep`. Both ends send a KEEPALIVE when they
//! have sent nothing for `keepalive_interval` while up, and declare the other
//! end down when nothing authenticated arrived for `dead_after`.
//!
//! A keypair also has a hard lifetime, `reject_after_time` (by default three
//! times the default `rekey_after_time`), counted from when it became
//! current (client: the RESP that completed its handshake; server: the
//! packet that confirmed it). Past it neither end seals with it nor accepts
//! packets under it ([`Drop::KeyExpired`]), and a previous keypair is
//! forgotten then at the latest, even within `old_key_keep`. This bounds the
//! life of every key when rekeys keep failing: when the current keypair
//! expires the client declares the cable down ([`ClientEvent::Down`]) and
//! goes back to handshaking, and the server removes the peer
//! ([`ServerEvent::PeerDown`]), exactly as if it had died.
//!
//! A client whose cable is down retries INIT every `handshake_retry`, each
//! time with a fresh ephemeral key and timestamp, and counts failed attempts
//! so that its IO shell can refresh the PSK ([`Client::failed_attempts`],
//! [`Client::set_key`]). The server forgets unconfirmed handshakes after
//! `pending_timeout`, holds at most `max_pending` of them and at most
//! `max_peers` peers, and removes a peer at once on CLOSE.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod identity;
mod keys;
pub mod noise;
mod replay;
mod server;
pub mod wire;

#[cfg(test)]
mod kat_tests;
#[cfg(test)]
mod noise_tests;

use core::fmt;
use std::time::Duration;

use ring::rand::SecureRandom;
use zeroize::Zeroize;

pub use client::{Client, ClientEvent, ClientRecv, ServerAuth};
pub use identity::{Fingerprint, Identity, PublicKey};
pub use replay::ReplayWindow;
pub use server::{KeySource, PeerId, Server, ServerEvent, ServerRecv};
pub use wire::{OVERHEAD, REJECT_AFTER_MESSAGES};

/// Name and version of the cable protocol, as it appears in handshakes.
pub const PROTOCOL: &str = "vde-crypto/2";

/// How long the server keeps the secret its cookies are made with.
pub const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);

/// Names a cable's pre-shared key; chosen by the client (the cable id).
pub type KeyId = [u8; 8];

/// A random number generator the state machines own (boxed so that tests can
/// inject a deterministic one).
pub type Rng = Box<dyn SecureRandom + Send + Sync>;

/// A 32-byte pre-shared key. Its bytes are zeroized on drop and never
/// printed.
#[derive(Clone)]
pub struct Psk([u8; 32]);

impl Psk {
    /// Salt of the PSK-file derivation.
    const FILE_SALT: &'static [u8] = b"vde-crypto/1 psk";

    /// The shortest PSK file accepted, in bytes (`head -c 32 /dev/urandom`
    /// makes a good one).
    pub const MIN_FILE_LEN: usize = 32;

    /// The fewest distinct byte values a PSK file must hold: random bytes
    /// have about 30 in 32, a repeated pattern or a short word repeated
    /// far fewer.
    pub const MIN_FILE_DISTINCT: usize = 16;

    /// A PSK from raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Psk {
        Psk(bytes)
    }

    /// A PSK from the contents of a key file: `HKDF-SHA256(salt =
    /// "vde-crypto/1 psk", ikm = contents, info = "psk")`. Files shorter
    /// than [`Psk::MIN_FILE_LEN`] bytes, or with fewer than
    /// [`Psk::MIN_FILE_DISTINCT`] distinct byte values, are refused.
    pub fn from_file_contents(contents: &[u8]) -> Result<Psk, Error> {
        if contents.len() < Self::MIN_FILE_LEN {
            return Err(Error::PskFileTooShort);
        }
        let mut seen = [false; 256];
        for &b in contents {
            seen[usize::from(b)] = true;
        }
        if seen.iter().filter(|&&s| s).count() < Self::MIN_FILE_DISTINCT {
            return Err(Error::PskFileWeak);
        }
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, Self::FILE_SALT).extract(contents);
        let mut psk = Psk([0; 32]);
        keys::expand(&prk, b"psk", &mut psk.0);
        Ok(psk)
    }

    /// A fresh random PSK.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Psk, Error> {
        let mut psk = Psk([0; 32]);
        rng.fill(&mut psk.0).map_err(|_| Error::Rng)?;
        Ok(psk)
    }

    /// The key bytes (for handing the key to the peer over the side channel).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::ops::Drop for Psk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// Errors outside the datagram path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A PSK file shorter than [`Psk::MIN_FILE_LEN`] bytes.
    PskFileTooShort,
    /// A PSK file that is not random enough (too few distinct bytes).
    PskFileWeak,
    /// The random number generator failed.
    Rng,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PskFileTooShort => write!(
                f,
                "PSK file shorter than {} bytes (make one with: head -c 32 /dev/urandom > FILE; chmod 600 FILE)",
                Psk::MIN_FILE_LEN
            ),
            Error::PskFileWeak => write!(
                f,
                "PSK file not random enough: fewer than {} distinct bytes (make one with: head -c 32 /dev/urandom > FILE; chmod 600 FILE)",
                Psk::MIN_FILE_DISTINCT
            ),
            Error::Rng => f.write_str("random number generator failed"),
        }
    }
}

impl std::error::Error for Error {}

/// The AEAD of the transport packets, negotiated by each handshake: the
/// client proposes one, the server accepts it or drops the INIT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Suite {
    /// ChaCha20-Poly1305 (RFC 8439), wire id 0x00. `Suite::default()`; note
    /// that [`Config::default`] uses [`Suite::preferred`] instead.
    #[default]
    ChaCha20Poly1305,
    /// AES-256-GCM, wire id 0x01.
    Aes256Gcm,
}

impl Suite {
    /// Every suite, by wire id.
    pub const ALL: [Suite; 2] = [Suite::ChaCha20Poly1305, Suite::Aes256Gcm];

    /// The wire id (byte 1 of INIT and RESP).
    pub const fn id(self) -> u8 {
        match self {
            Suite::ChaCha20Poly1305 => 0x00,
            Suite::Aes256Gcm => 0x01,
        }
    }

    /// The suite of a wire id, `None` for an unknown id.
    pub const fn from_id(id: u8) -> Option<Suite> {
        match id {
            0x00 => Some(Suite::ChaCha20Poly1305),
            0x01 => Some(Suite::Aes256Gcm),
            _ => None,
        }
    }

    /// The lowercase name: `"chacha20-poly1305"` or `"aes-256-gcm"`.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::ChaCha20Poly1305 => "chacha20-poly1305",
            Suite::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// The faster suite on this CPU: AES-256-GCM when it has hardware AES
    /// and carry-less multiplication (x86/x86_64: AES-NI and PCLMULQDQ;
    /// aarch64: the AES extension, which includes PMULL), else
    /// ChaCha20-Poly1305. Detected at run time.
    pub fn preferred() -> Suite {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            if std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
            {
                return Suite::Aes256Gcm;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("aes") {
                return Suite::Aes256Gcm;
            }
        }
        Suite::ChaCha20Poly1305
    }

    pub(crate) fn algorithm(self) -> &'static ring::aead::Algorithm {
        match self {
            Suite::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
            Suite::Aes256Gcm => &ring::aead::AES_256_GCM,
        }
    }

    const fn bit(self) -> u8 {
        1 << self.id()
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Suite`]s: the suites a server accepts ([`Config::accept`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suites(u8);

impl Suites {
    /// Every suite.
    pub const ALL: Suites = Suites(Suite::ChaCha20Poly1305.bit() | Suite::Aes256Gcm.bit());
    /// No suite (a server with this set answers no INIT).
    pub const NONE: Suites = Suites(0);

    /// The set of `suite` alone.
    pub const fn only(suite: Suite) -> Suites {
        Suites(suite.bit())
    }

    /// This set with `suite` added.
    pub const fn with(self, suite: Suite) -> Suites {
        Suites(self.0 | suite.bit())
    }

    /// Whether `suite` is in the set.
    pub const fn contains(self, suite: Suite) -> bool {
        self.0 & suite.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The suites of the set, by wire id.
    pub fn iter(self) -> impl Iterator<Item = Suite> {
        Suite::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl Default for Suites {
    /// [`Suites::ALL`].
    fn default() -> Suites {
        Suites::ALL
    }
}

impl From<Suite> for Suites {
    fn from(suite: Suite) -> Suites {
        Suites::only(suite)
    }
}

impl FromIterator<Suite> for Suites {
    fn from_iter<I: IntoIterator<Item = Suite>>(iter: I) -> Suites {
        iter.into_iter().fold(Suites::NONE, Suites::with)
    }
}

impl fmt::Debug for Suites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Suites {
    /// The names, comma-separated (empty for [`Suites::NONE`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s.name())?;
        }
        Ok(())
    }
}

/// Timers and limits of both ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Client: the transport AEAD it proposes in every handshake (default
    /// [`Suite::preferred`]). Not used by the server.
    pub suite: Suite,
    /// Server: the suites it accepts from clients (default
    /// [`Suites::ALL`]). An INIT proposing another suite is dropped as
    /// [`Drop::BadSuite`]. Not used by the client.
    pub accept: Suites,
    /// Send a KEEPALIVE when nothing was sent for this long while up.
    pub keepalive_interval: Duration,
    /// Declare the other end down when nothing authenticated arrived for
    /// this long.
    pub dead_after: Duration,
    /// Client: time between INIT (re)transmissions of a handshake attempt.
    pub handshake_retry: Duration,
    /// Client: start a rekey when the current keypair is this old.
    pub rekey_after_time: Duration,
    /// Both ends: hard lifetime of a keypair, counted from when it became
    /// current. Past it the keypair neither seals nor opens
    /// ([`Drop::KeyExpired`]); if it is the current one, the client declares
    /// the cable down ([`ClientEvent::Down`]) and handshakes again, and the
    /// server removes the peer ([`ServerEvent::PeerDown`]). A previous
    /// keypair is forgotten at this age even within `old_key_keep`. Keep it
    /// well above `rekey_after_time` (default: 3 × the default
    /// `rekey_after_time`, 360 s), so that several rekey attempts fit
    /// before it.
    pub reject_after_time: Duration,
    /// Client: start a rekey after this many bytes (both directions) under
    /// the current keypair.
    pub rekey_after_bytes: u64,
    /// How long the previous keypair still opens packets after a new one
    /// became current.
    pub old_key_keep: Duration,
    /// Server: forget an unconfirmed handshake after this long.
    pub pending_timeout: Duration,
    /// Server: at most this many unconfirmed handshakes.
    pub max_pending: usize,
    /// Server: at most this many peers.
    pub max_peers: usize,
    /// Server: with this many unconfirmed handshakes or more, or four
    /// times this many INITs that reached the key exchange within the
    /// current second, it is under load, and answers an INIT without a
    /// valid mac2 (a cookie bound to the sender's address) with a COOKIE
    /// instead of doing any X25519.
    pub cookie_threshold: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            suite: Suite::preferred(),
            accept: Suites::ALL,
            keepalive_interval: Duration::from_millis(250),
            dead_after: Duration::from_secs(1),
            handshake_retry: Duration::from_millis(500),
            rekey_after_time: Duration::from_secs(120),
            reject_after_time: Duration::from_secs(360),
            rekey_after_bytes: 1 << 30,
            old_key_keep: Duration::from_secs(5),
            pending_timeout: Duration::from_secs(5),
            max_pending: 64,
            max_peers: 1024,
            cookie_threshold: 16,
        }
    }
}

/// Why a datagram was dropped (or, for `seal`, why a frame could not be
/// sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Shorter than the smallest packet of its kind.
    TooShort,
    /// Unknown type byte, or a type this end does not accept.
    BadType,
    /// A reserved byte was not zero.
    BadReserved,
    /// Wrong length for a fixed-length packet.
    BadLength,
    /// INIT for a key id the server has no PSK for.
    UnknownKey,
    /// INIT mac1 or RESP confirm did not verify.
    BadMac,
    /// INIT proposing a suite that is unknown or not in the server's
    /// [`Config::accept`], or RESP whose suite is not the one proposed.
    BadSuite,
    /// INIT timestamp not newer than one already accepted (replay).
    StaleTimestamp,
    /// Too many unconfirmed handshakes (in all, or under load from one
    /// source address).
    TooManyPending,
    /// Under load: the source address sent more INITs or KEYREQs than its
    /// share.
    RateLimited,
    /// Too many peers.
    TooManyPeers,
    /// No keypair or handshake with this receiver index.
    UnknownIndex,
    /// Counter already seen or older than the replay window.
    Replay,
    /// AEAD authentication failed.
    BadTag,
    /// Invalid ephemeral public key.
    BadKey,
    /// A static key that is not the one expected: an INIT whose sender is
    /// not the identity its ticket names, or a KEYRESP whose key does not
    /// match the pinned fingerprint.
    BadIdentity,
    /// The cable is not up (no keypair to send with, or closed).
    NotUp,
    /// The keypair reached [`REJECT_AFTER_MESSAGES`].
    KeyExhausted,
    /// The keypair is older than [`Config::reject_after_time`] (for a
    /// client's `seal`: also while the cable is down because its keypair
    /// expired, until a handshake completes).
    KeyExpired,
    /// The random number generator or a primitive failed.
    Internal,
}

impl Drop {
    /// Every reason, in declaration order.
    pub const ALL: [Drop; 20] = [
        Drop::TooShort,
        Drop::BadType,
        Drop::BadReserved,
        Drop::BadLength,
        Drop::UnknownKey,
        Drop::BadMac,
        Drop::BadSuite,
        Drop::StaleTimestamp,
        Drop::TooManyPending,
        Drop::RateLimited,
        Drop::TooManyPeers,
        Drop::UnknownIndex,
        Drop::Replay,
        Drop::BadTag,
        Drop::BadKey,
        Drop::BadIdentity,
        Drop::NotUp,
        Drop::KeyExhausted,
        Drop::KeyExpired,
        Drop::Internal,
    ];

    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::TooShort => "too short",
            Drop::BadType => "bad type",
            Drop::BadReserved => "nonzero reserved bytes",
            Drop::BadLength => "bad length",
            Drop::UnknownKey => "unknown key id",
            Drop::BadMac => "bad mac",
            Drop::BadSuite => "suite not offered/accepted",
            Drop::StaleTimestamp => "stale timestamp",
            Drop::TooManyPending => "too many pending handshakes",
            Drop::RateLimited => "rate limited (under load)",
            Drop::TooManyPeers => "too many peers",
            Drop::UnknownIndex => "unknown receiver index",
            Drop::Replay => "replayed or too old counter",
            Drop::BadTag => "authentication failed",
            Drop::BadKey => "bad ephemeral key",
            Drop::BadIdentity => "unexpected identity",
            Drop::NotUp => "not up",
            Drop::KeyExhausted => "keypair exhausted",
            Drop::KeyExpired => "keypair expired",
            Drop::Internal => "internal failure",
        }
    }
}

impl fmt::Display for Drop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Drop {}

/// Counters of one end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    dropped: [u64; Drop::ALL.len()],
    /// Handshakes completed (confirmed), rekeys included.
    pub handshakes_completed: u64,
    /// Of those, the ones that replaced an existing keypair.
    pub rekeys: u64,
    /// Datagrams accepted.
    pub packets_in: u64,
    /// Datagrams written for sending.
    pub packets_out: u64,
    /// Bytes of the datagrams accepted.
    pub bytes_in: u64,
    /// Bytes of the datagrams written for sending.
    pub bytes_out: u64,
    /// Server: INITs answered with a COOKIE (under load, no valid mac2).
    pub cookies_sent: u64,
}

impl Stats {
    /// How many received datagrams were dropped for `reason`.
    pub fn count(&self, reason: Drop) -> u64 {
        self.dropped[reason as usize]
    }

    /// How many received datagrams were dropped, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn dropped(&mut self, reason: Drop) {
        self.dropped[reason as usize] += 1;
    }

    pub(crate) fn received(&mut self, len: usize) {
        self.packets_in += 1;
        self.bytes_in += len as u64;
    }

    pub(crate) fn sent(&mut self, len: usize) {
        self.packets_out += 1;
        self.bytes_out += len as u64;
    }
}

/// `t + d`, saturating instead of panicking.
pub(crate) fn after(t: Duration, d: Duration) -> Duration {
    t.saturating_add(d)
}
