//! The initiator: one cable to one server.

use std::time::Duration;

use ring::rand::SystemRandom;

use ring::hmac;

use crate::identity::{Fingerprint, Identity, PublicKey};
use crate::keys::{self, Keypair};
use crate::noise;
use crate::wire::{
    self, COOKIE_LEN, INIT_LEN, INIT_MAC1_OFFSET, INIT_MAC2_OFFSET, INIT_NOISE_OFFSET,
    INIT_PAYLOAD, KEYREQ_LEN, KEYRESP_LEN, MAC_LEN, REJECT_AFTER_MESSAGES, RESP_LEN,
    RESP_NOISE_OFFSET, RESP_PAYLOAD, SUITE_OFFSET, TAG_LEN, TYPE_CLOSE, TYPE_COOKIE, TYPE_DATA,
    TYPE_INIT, TYPE_KEEPALIVE, TYPE_KEYREQ, TYPE_KEYRESP, TYPE_RESP,
};
use crate::{after, Config, Drop, KeyId, Psk, Rng, Stats, Suite, PROTOCOL};

/// How long a cookie from the server stays usable (the server makes new
/// ones every [`crate::COOKIE_SECRET_LIFETIME`]).
const COOKIE_LIFETIME: Duration = Duration::from_secs(115);

/// How the client knows the server it dials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAuth {
    /// ssh (ticket) mode: the server's static key came back from the ssh
    /// exchange, which authenticated it. mac1 is keyed by it alone.
    Ticket(PublicKey),
    /// PSK-file mode: mac1 is keyed by the server's static key and the
    /// PSK. The key is `known` (configured), or asked for with KEYREQ
    /// and trusted when a PSK holder's answer carries it, checked against
    /// `pin` when one is given.
    Psk {
        /// The server's static key, when configured.
        known: Option<PublicKey>,
        /// What the server's key must hash to ([`PublicKey::digest`]).
        pin: Option<Fingerprint>,
    },
}

/// Start a rekey when the send counter reaches this, well before
/// [`REJECT_AFTER_MESSAGES`].
const REKEY_AFTER_MESSAGES: u64 = REJECT_AFTER_MESSAGES - (1 << 32);

/// What a datagram from the server amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientRecv {
    /// `out` holds a frame.
    Frame,
    /// The handshake completed and the cable is up: `poll` now yields the
    /// confirming KEEPALIVE (unless a frame is sealed first).
    Up,
    /// A rekey completed; the cable stays up. `poll` now yields the
    /// confirming KEEPALIVE (unless a frame is sealed first).
    Rekeyed,
    /// An authenticated KEEPALIVE.
    Keepalive,
    /// The server said CLOSE: the cable is down. The client retries after
    /// `handshake_retry`.
    Closed,
    /// PSK-file mode: the server's static key arrived in a KEYRESP and is
    /// now pinned ([`Client::server_identity`]); `poll` sends the INIT.
    ServerKey,
    /// The server is under load and sent a cookie: `poll` now sends a new
    /// INIT that carries it (mac2).
    Cookie,
}

/// What a timer produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// `out` holds a datagram (INIT or KEEPALIVE) to send to the server.
    Send,
    /// Edge event: the cable came up. Not produced by `poll` in this version:
    /// the cable comes up inside `receive`, which reports [`ClientRecv::Up`].
    Up,
    /// Edge event: nothing authenticated arrived for `dead_after`, or the
    /// current keypair reached `reject_after_time` (rekeys kept failing;
    /// [`Client::seal`] then fails with [`Drop::KeyExpired`] until a
    /// handshake completes). The keys are dropped and the client goes back
    /// to handshaking.
    Down,
}

/// A handshake attempt in flight.
struct Handshake {
    sender_index: u32,
    /// The suite proposed in `init`.
    suite: Suite,
    /// The Noise state after INIT (the ephemeral secret in it). Kept until
    /// a RESP naming our sender index verifies: a forged one leaves it
    /// (and the handshake) as it was.
    noise: noise::Initiator,
    init: [u8; INIT_LEN],
    sent_at: Duration,
}

/// A key request in flight (PSK-file mode).
struct KeyRequest {
    nonce: [u8; 32],
    sent_at: Duration,
}

/// One cable, initiator side. See the crate documentation for the protocol.
pub struct Client {
    config: Config,
    rng: Rng,
    key_id: KeyId,
    identity: Identity,
    psk: Psk,
    /// PSK-file mode (mac1 keyed by the PSK too, KEYREQ allowed).
    psk_mode: bool,
    pin: Option<Fingerprint>,
    /// The server's static key, once known.
    server: Option<PublicKey>,
    /// mac1 key, once the server's key is known.
    mac1: Option<hmac::Key>,
    keyreq: Option<KeyRequest>,
    /// The last cookie from the server, and when it came.
    cookie: Option<([u8; MAC_LEN], Duration)>,
    wall_start: u64,
    start: Duration,
    last_timestamp: Option<u64>,
    handshake: Option<Handshake>,
    /// Earliest time a new handshake attempt may start (when one is needed).
    retry_at: Duration,
    current: Option<Keypair>,
    previous: Option<(Keypair, Duration)>,
    up: bool,
    /// The cable went down because its keypair reached `reject_after_time`
    /// (and no handshake completed since).
    expired: bool,
    closed: bool,
    /// A confirming KEEPALIVE is owed to the server.
    confirm_owed: bool,
    last_recv: Duration,
    last_sent: Duration,
    /// Bytes in both directions under the current keypair.
    bytes_current: u64,
    failed: u32,
    stats: Stats,
}

impl Client {
    /// A client with the long-term `identity`, dialing the server `server`
    /// names, using the system RNG. `wall_nanos` is the wall clock (ns
    /// since the Unix epoch) at `now`; INIT timestamps are derived from it.
    /// The first `poll` sends an INIT (or a KEYREQ while the server's key
    /// is not known).
    pub fn new(
        config: Config,
        identity: Identity,
        server: ServerAuth,
        key_id: KeyId,
        psk: Psk,
        wall_nanos: u64,
        now: Duration,
    ) -> Client {
        Client::with_rng(
            config,
            identity,
            server,
            key_id,
            psk,
            wall_nanos,
            now,
            Box::new(SystemRandom::new()),
        )
    }

    /// Like [`Client::new`] with an injected RNG. Every draw fills 32 bytes
    /// (the sender index is the first 4 of them, little-endian).
    #[allow(clippy::too_many_arguments)]
    pub fn with_rng(
        config: Config,
        identity: Identity,
        server: ServerAuth,
        key_id: KeyId,
        psk: Psk,
        wall_nanos: u64,
        now: Duration,
        rng: Rng,
    ) -> Client {
        let mut c = Client {
            config,
            rng,
            key_id,
            identity,
            psk,
            psk_mode: false,
            pin: None,
            server: None,
            mac1: None,
            keyreq: None,
            cookie: None,
            wall_start: wall_nanos,
            start: now,
            last_timestamp: None,
            handshake: None,
            retry_at: now,
            current: None,
            previous: None,
            up: false,
            expired: false,
            closed: false,
            confirm_owed: false,
            last_recv: now,
            last_sent: now,
            bytes_current: 0,
            failed: 0,
            stats: Stats::default(),
        };
        c.set_server(server);
        c
    }

    fn set_server(&mut self, server: ServerAuth) {
        let (psk_mode, known, pin) = match server {
            ServerAuth::Ticket(k) => (false, Some(k), None),
            ServerAuth::Psk { known, pin } => (true, known, pin),
        };
        self.psk_mode = psk_mode;
        self.pin = pin;
        self.server = None;
        self.mac1 = None;
        self.keyreq = None;
        if let Some(k) = known {
            self.learn_server(k);
        }
    }

    fn learn_server(&mut self, key: PublicKey) {
        self.mac1 = Some(keys::mac1_key(&key, self.psk_mode.then_some(&self.psk)));
        self.server = Some(key);
        self.keyreq = None;
    }

    /// Replaces the key id, the PSK and what the client knows of the
    /// server (e.g. after refreshing the ticket). Any handshake in flight
    /// is abandoned and a new one starts at the next `poll` when the cable
    /// is down or a rekey is due; an established keypair keeps working
    /// (the next rekey uses the new key).
    /// [`failed_attempts`](Client::failed_attempts) restarts from 0.
    pub fn set_key(&mut self, key_id: KeyId, psk: Psk, server: ServerAuth) {
        self.key_id = key_id;
        self.psk = psk;
        self.set_server(server);
        self.cookie = None;
        self.handshake = None;
        self.retry_at = Duration::ZERO;
        self.failed = 0;
    }

    /// The server's static key, once known (configured, from the ticket
    /// exchange, or pinned from a KEYRESP).
    pub fn server_identity(&self) -> Option<PublicKey> {
        self.server
    }

    /// This client's static public key.
    pub fn identity(&self) -> PublicKey {
        self.identity.public()
    }

    /// The key id in use.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// A datagram arrived from the server. On `Ok(ClientRecv::Frame)` `out`
    /// holds the frame; otherwise it is left empty.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ClientRecv, Drop> {
        out.clear();
        let r = self.receive_inner(datagram, now, out);
        match r {
            Ok(_) => self.stats.received(datagram.len()),
            Err(reason) => {
                out.clear();
                self.stats.dropped(reason);
            }
        }
        r
    }

    fn receive_inner(
        &mut self,
        datagram: &[u8],
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ClientRecv, Drop> {
        let ty = wire::check_header(datagram)?;
        if self.closed {
            return Err(Drop::NotUp);
        }
        match ty {
            TYPE_RESP => self.on_resp(datagram, now),
            TYPE_COOKIE => self.on_cookie(datagram, now),
            TYPE_KEYRESP => self.on_keyresp(datagram),
            TYPE_DATA | TYPE_KEEPALIVE | TYPE_CLOSE => self.on_transport(datagram, now, out),
            _ => Err(Drop::BadType),
        }
    }

    fn on_keyresp(&mut self, datagram: &[u8]) -> Result<ClientRecv, Drop> {
        let p: &[u8; KEYRESP_LEN] = datagram.try_into().map_err(|_| Drop::BadLength)?;
        let req = self.keyreq.as_ref().ok_or(Drop::UnknownIndex)?;
        let (head, mac) = p.split_at(36);
        let mac: &[u8; MAC_LEN] = mac.try_into().map_err(|_| Drop::BadLength)?;
        if !keys::verify_mac16(&keys::keyreq_key(&self.psk), &[&req.nonce, head], mac) {
            return Err(Drop::BadMac);
        }
        let key = PublicKey(
            head.get(4..36)
                .and_then(|k| k.try_into().ok())
                .ok_or(Drop::BadLength)?,
        );
        if self.pin.is_some_and(|pin| pin != key.digest()) {
            return Err(Drop::BadIdentity);
        }
        self.learn_server(key);
        self.failed = 0;
        self.retry_at = Duration::ZERO;
        Ok(ClientRecv::ServerKey)
    }

    fn on_cookie(&mut self, datagram: &[u8], now: Duration) -> Result<ClientRecv, Drop> {
        let p: &[u8; COOKIE_LEN] = datagram.try_into().map_err(|_| Drop::BadLength)?;
        let receiver = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let hs = self
            .handshake
            .as_ref()
            .filter(|hs| hs.sender_index == receiver)
            .ok_or(Drop::UnknownIndex)?;
        let server = self.server.as_ref().ok_or(Drop::UnknownIndex)?;
        let nonce: [u8; 12] = p[8..20].try_into().map_err(|_| Drop::BadLength)?;
        let mut cookie: [u8; MAC_LEN] = p[20..36].try_into().map_err(|_| Drop::BadLength)?;
        let tag: [u8; TAG_LEN] = p[36..52].try_into().map_err(|_| Drop::BadLength)?;
        let aad = &hs.init[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET];
        keys::cookie_open(
            &keys::cookie_seal_key(server),
            &nonce,
            aad,
            &mut cookie,
            &tag,
        )
        .ok_or(Drop::BadMac)?;
        self.cookie = Some((cookie, now));
        // A new INIT with mac2 at the next poll.
        self.handshake = None;
        self.retry_at = now;
        Ok(ClientRecv::Cookie)
    }

    fn on_resp(&mut self, datagram: &[u8], now: Duration) -> Result<ClientRecv, Drop> {
        let p: &[u8; RESP_LEN] = datagram.try_into().map_err(|_| Drop::BadLength)?;
        let server_index = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let receiver = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
        let hs = self
            .handshake
            .as_ref()
            .filter(|hs| hs.sender_index == receiver)
            .ok_or(Drop::UnknownIndex)?;
        // Checked before any X25519: the server must echo the proposal
        // (which the INIT's prologue binds).
        let suite = hs.suite;
        if p[SUITE_OFFSET] != suite.id() {
            return Err(Drop::BadSuite);
        }
        let (head, msg) = p.split_at(RESP_NOISE_OFFSET);
        let mut payload = [0u8; RESP_PAYLOAD];
        // `read_msg2` leaves the handshake as it was when it fails.
        let split = hs
            .noise
            .read_msg2(&self.identity, self.psk.as_bytes(), msg, &mut payload)
            .ok_or(Drop::BadMac)?;
        // The payload authenticates the cleartext header (indices, suite).
        if payload[..] != head[..] {
            return Err(Drop::BadMac);
        }
        let send = keys::transport_key(suite, &split.i2r).ok_or(Drop::Internal)?;
        let recv = keys::transport_key(suite, &split.r2i).ok_or(Drop::Internal)?;
        let keypair = Keypair::new(suite, send, recv, receiver, server_index, now);
        self.handshake = None;
        self.failed = 0;
        self.stats.handshakes_completed += 1;
        self.bytes_current = 0;
        self.confirm_owed = true;
        self.last_recv = now;
        let old = self.current.replace(keypair);
        self.expired = false;
        if self.up {
            if let Some(old) = old {
                // Kept for `old_key_keep`, but never past its hard lifetime.
                let expires = after(now, self.config.old_key_keep)
                    .min(old.expires_at(self.config.reject_after_time));
                self.previous = Some((old, expires));
            }
            self.stats.rekeys += 1;
            Ok(ClientRecv::Rekeyed)
        } else {
            self.previous = None;
            self.up = true;
            Ok(ClientRecv::Up)
        }
    }

    fn on_transport(
        &mut self,
        datagram: &[u8],
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ClientRecv, Drop> {
        let t = wire::parse_transport(datagram)?;
        let on_current = match (&self.current, &self.previous) {
            (Some(kp), _) if kp.local_index == t.receiver => true,
            (_, Some((kp, expires))) if kp.local_index == t.receiver && now < *expires => false,
            _ => return Err(Drop::UnknownIndex),
        };
        let kp = if on_current {
            self.current.as_mut()
        } else {
            self.previous.as_mut().map(|(kp, _)| kp)
        }
        .ok_or(Drop::UnknownIndex)?;
        // (A previous keypair's `expires` already includes its lifetime.)
        if on_current && kp.expired(now, self.config.reject_after_time) {
            return Err(Drop::KeyExpired);
        }
        kp.open(datagram, t.counter, out)?;
        self.last_recv = now;
        if on_current {
            self.bytes_current = self.bytes_current.saturating_add(datagram.len() as u64);
        }
        match t.ty {
            TYPE_DATA => Ok(ClientRecv::Frame),
            TYPE_KEEPALIVE => Ok(ClientRecv::Keepalive),
            _ => {
                self.go_down();
                self.handshake = None;
                self.retry_at = after(now, self.config.handshake_retry);
                Ok(ClientRecv::Closed)
            }
        }
    }

    /// Drops all keys and marks the cable down.
    fn go_down(&mut self) {
        self.up = false;
        self.expired = false;
        self.current = None;
        self.previous = None;
        self.confirm_owed = false;
        self.bytes_current = 0;
    }

    /// Encrypts `frame` into `out` (cleared first) as a DATA packet for the
    /// server. `Err(Drop::NotUp)` when the cable is not up;
    /// `Err(Drop::KeyExpired)` when the current keypair reached
    /// `reject_after_time`, and after that while the cable is down because
    /// of it (until a handshake completes).
    pub fn seal(&mut self, frame: &[u8], now: Duration, out: &mut Vec<u8>) -> Result<(), Drop> {
        out.clear();
        if self.closed {
            return Err(Drop::NotUp);
        }
        if !self.up {
            return Err(if self.expired {
                Drop::KeyExpired
            } else {
                Drop::NotUp
            });
        }
        let kp = self.current.as_mut().ok_or(Drop::NotUp)?;
        if kp.expired(now, self.config.reject_after_time) {
            return Err(Drop::KeyExpired);
        }
        kp.seal(TYPE_DATA, frame, out)?;
        self.sent(now, out.len());
        self.bytes_current = self.bytes_current.saturating_add(out.len() as u64);
        Ok(())
    }

    fn sent(&mut self, now: Duration, len: usize) {
        self.last_sent = now;
        self.confirm_owed = false;
        self.stats.sent(len);
    }

    /// Runs the timers. Call until it returns `None`; on
    /// `Some(ClientEvent::Send)` `out` holds a datagram to send.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<ClientEvent> {
        out.clear();
        if self.closed {
            return None;
        }
        if let Some((_, expires)) = &self.previous {
            if now >= *expires {
                self.previous = None;
            }
        }
        let reject_after = self.config.reject_after_time;
        if self.up
            && self
                .current
                .as_ref()
                .is_some_and(|kp| kp.expired(now, reject_after))
        {
            // Rekeys kept failing: the keypair must not be used any more.
            // Down as if dead; handshakes go on (an attempt in flight too).
            self.go_down();
            self.expired = true;
            self.retry_at = now;
            return Some(ClientEvent::Down);
        }
        if self.confirm_owed && self.up {
            if self.send_keepalive(now, out) {
                return Some(ClientEvent::Send);
            }
            self.confirm_owed = false;
        }
        if self.up && now >= after(self.last_recv, self.config.dead_after) {
            self.go_down();
            self.retry_at = now;
            return Some(ClientEvent::Down);
        }
        if let Some(hs) = &self.handshake {
            if now >= after(hs.sent_at, self.config.handshake_retry) {
                self.failed = self.failed.saturating_add(1);
                self.handshake = None;
                self.retry_at = now;
            }
        }
        if let Some(req) = &self.keyreq {
            if now >= after(req.sent_at, self.config.handshake_retry) {
                self.failed = self.failed.saturating_add(1);
                self.keyreq = None;
                self.retry_at = now;
            }
        }
        if self.handshake.is_none() && self.keyreq.is_none() && self.handshake_due(now) {
            let sent = if self.server.is_some() {
                self.start_handshake(now, out)
            } else {
                self.send_keyreq(now, out)
            };
            if sent {
                return Some(ClientEvent::Send);
            }
            self.retry_at = after(now, self.config.handshake_retry);
        }
        if self.up && now >= after(self.last_sent, self.config.keepalive_interval) {
            if self.send_keepalive(now, out) {
                return Some(ClientEvent::Send);
            }
            // Exhausted keypair: a rekey is due; try again later.
            self.last_sent = now;
        }
        None
    }

    fn send_keepalive(&mut self, now: Duration, out: &mut Vec<u8>) -> bool {
        let Some(kp) = self.current.as_mut() else {
            return false;
        };
        if kp.expired(now, self.config.reject_after_time)
            || kp.seal(TYPE_KEEPALIVE, &[], out).is_err()
        {
            return false;
        }
        self.sent(now, out.len());
        true
    }

    /// When a new handshake becomes due (ignoring `retry_at`), if one is
    /// needed at all.
    fn handshake_needed_at(&self) -> Option<Duration> {
        if !self.up {
            return Some(Duration::ZERO);
        }
        let kp = self.current.as_ref()?;
        if self.bytes_current >= self.config.rekey_after_bytes
            || kp.send_counter() >= REKEY_AFTER_MESSAGES
        {
            return Some(Duration::ZERO);
        }
        Some(after(kp.created, self.config.rekey_after_time))
    }

    fn handshake_due(&self, now: Duration) -> bool {
        match self.handshake_needed_at() {
            Some(at) => now >= at.max(self.retry_at),
            None => false,
        }
    }

    fn timestamp(&mut self, now: Duration) -> u64 {
        let elapsed = now.saturating_sub(self.start).as_nanos();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        let mut ts = self.wall_start.saturating_add(elapsed);
        if let Some(last) = self.last_timestamp {
            ts = ts.max(last.saturating_add(1));
        }
        self.last_timestamp = Some(ts);
        ts
    }

    /// Writes a KEYREQ into `out` (PSK-file mode, server key unknown).
    /// False when the RNG failed or there is nobody to ask.
    fn send_keyreq(&mut self, now: Duration, out: &mut Vec<u8>) -> bool {
        if !self.psk_mode {
            return false;
        }
        let mut nonce = [0u8; 32];
        if self.rng.fill(&mut nonce).is_err() {
            return false;
        }
        let mut req = [0u8; KEYREQ_LEN];
        req[0] = TYPE_KEYREQ;
        req[4..36].copy_from_slice(&nonce);
        let mac = keys::mac16(&keys::keyreq_key(&self.psk), &[&req[..36]]);
        req[36..].copy_from_slice(&mac);
        out.clear();
        out.extend_from_slice(&req);
        self.stats.sent(out.len());
        self.keyreq = Some(KeyRequest {
            nonce,
            sent_at: now,
        });
        true
    }

    /// Writes a fresh INIT into `out`. False when the RNG failed or the
    /// server's key is not known.
    fn start_handshake(&mut self, now: Duration, out: &mut Vec<u8>) -> bool {
        let (Some(server), true) = (self.server, self.mac1.is_some()) else {
            return false;
        };
        let mut draw = [0u8; 32];
        if self.rng.fill(&mut draw).is_err() {
            return false;
        }
        let sender_index = u32::from_le_bytes([draw[0], draw[1], draw[2], draw[3]]);
        let Some(ephemeral) = keys::x25519_ephemeral(&*self.rng) else {
            return false;
        };
        let ts = self.timestamp(now);
        let suite = self.config.suite;
        let mut init = [0u8; INIT_LEN];
        init[0] = TYPE_INIT;
        init[SUITE_OFFSET] = suite.id();
        init[4..8].copy_from_slice(&sender_index.to_le_bytes());
        let mut payload = [0u8; INIT_PAYLOAD];
        payload[..8].copy_from_slice(&self.key_id);
        payload[8..].copy_from_slice(&ts.to_be_bytes());
        let prologue = prologue(&init);
        let Some(noise) = noise::Initiator::write_msg1(
            &self.identity,
            &server,
            &prologue,
            ephemeral,
            &payload,
            &mut init[INIT_NOISE_OFFSET..INIT_MAC1_OFFSET],
        ) else {
            return false;
        };
        let Some(mac1) = self.mac1.as_ref() else {
            return false;
        };
        let mac = keys::mac16(mac1, &[&init[..INIT_MAC1_OFFSET]]);
        init[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&mac);
        if let Some((cookie, at)) = &self.cookie {
            if now < after(*at, COOKIE_LIFETIME) {
                let key = hmac::Key::new(hmac::HMAC_SHA256, cookie);
                let mac2 = keys::mac16(&key, &[&init[..INIT_MAC2_OFFSET]]);
                init[INIT_MAC2_OFFSET..].copy_from_slice(&mac2);
            }
        }
        out.clear();
        out.extend_from_slice(&init);
        self.stats.sent(out.len());
        self.handshake = Some(Handshake {
            sender_index,
            suite,
            noise,
            init,
            sent_at: now,
        });
        true
    }

    /// The absolute time at which `poll` must be called next (a time in the
    /// past means at once; `Duration::MAX` means never).
    pub fn next_deadline(&self) -> Duration {
        if self.closed {
            return Duration::MAX;
        }
        let mut d = Duration::MAX;
        if self.up {
            if self.confirm_owed {
                return Duration::ZERO;
            }
            d = d
                .min(after(self.last_recv, self.config.dead_after))
                .min(after(self.last_sent, self.config.keepalive_interval));
            if let Some(kp) = &self.current {
                d = d.min(kp.expires_at(self.config.reject_after_time));
            }
        }
        if let Some((_, expires)) = &self.previous {
            d = d.min(*expires);
        }
        match (&self.handshake, &self.keyreq) {
            (Some(hs), _) => d = d.min(after(hs.sent_at, self.config.handshake_retry)),
            (None, Some(req)) => d = d.min(after(req.sent_at, self.config.handshake_retry)),
            (None, None) => {
                if let Some(at) = self.handshake_needed_at() {
                    d = d.min(at.max(self.retry_at));
                }
            }
        }
        d
    }

    /// Closes the cable: writes a CLOSE into `out` and returns `Some(())`
    /// when the cable was up (send it), `None` otherwise. Either way the
    /// client is closed for good: keys are dropped, no more handshakes.
    pub fn close(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        if self.closed {
            return None;
        }
        let mut wrote = false;
        if self.up {
            if let Some(kp) = self.current.as_mut() {
                wrote = !kp.expired(now, self.config.reject_after_time)
                    && kp.seal(TYPE_CLOSE, &[], out).is_ok();
            }
        }
        if wrote {
            self.sent(now, out.len());
        }
        self.go_down();
        self.handshake = None;
        self.keyreq = None;
        self.closed = true;
        wrote.then_some(())
    }

    /// Whether the cable is up (a keypair to send with).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The suite negotiated for the current keypair (the one frames are
    /// sealed with), `None` while the cable is not up.
    pub fn suite(&self) -> Option<Suite> {
        self.current.as_ref().map(|kp| kp.suite)
    }

    /// Whether the cable is down because its keypair reached its hard
    /// lifetime (rekeys kept failing), rather than because nothing was
    /// heard: for the message that reports the Down.
    pub fn key_expired(&self) -> bool {
        self.expired
    }

    /// Whether [`close`](Client::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Handshake attempts that timed out in a row (reset when a handshake
    /// completes or the key is replaced).
    pub fn failed_attempts(&self) -> u32 {
        self.failed
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    #[cfg(test)]
    pub(crate) fn current_keypair_mut(&mut self) -> Option<&mut Keypair> {
        self.current.as_mut()
    }

    #[cfg(test)]
    pub(crate) fn handshake_in_flight(&self) -> bool {
        self.handshake.is_some()
    }
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("key_id", &self.key_id)
            .field("up", &self.up)
            .field("suite", &self.suite())
            .field("closed", &self.closed)
            .field("handshaking", &self.handshake.is_some())
            .field("failed_attempts", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The prologue of a handshake: the protocol name and the INIT's
/// cleartext header (type, suite, sender index), so that both are
/// authenticated by the handshake.
pub(crate) fn prologue(init: &[u8; INIT_LEN]) -> [u8; PROTOCOL.len() + INIT_NOISE_OFFSET] {
    let mut p = [0u8; PROTOCOL.len() + INIT_NOISE_OFFSET];
    p[..PROTOCOL.len()].copy_from_slice(PROTOCOL.as_bytes());
    p[PROTOCOL.len()..].copy_from_slice(&init[..INIT_NOISE_OFFSET]);
    p
}
