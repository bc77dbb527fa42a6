//! The responder: many cables, one per key id.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ring::hmac;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::client::prologue;
use crate::identity::{Identity, PublicKey};
use crate::keys::{self, Keypair};
use crate::noise;
use crate::wire::{
    self, COOKIE_LEN, INIT_LEN, INIT_MAC1_OFFSET, INIT_MAC2_OFFSET, INIT_NOISE_OFFSET,
    INIT_PAYLOAD, KEYREQ_LEN, KEYRESP_LEN, MAC_LEN, RESP_LEN, RESP_NOISE_OFFSET, RESP_PAYLOAD,
    SUITE_OFFSET, TYPE_CLOSE, TYPE_COOKIE, TYPE_DATA, TYPE_INIT, TYPE_KEEPALIVE, TYPE_KEYREQ,
    TYPE_KEYRESP, TYPE_RESP,
};
use crate::{after, Config, Drop, KeyId, Psk, Rng, Stats, Suite, COOKIE_SECRET_LIFETIME};

/// A cable, as the server tells cables apart: the client's static key and
/// the cable id it chose. Only the holder of the static secret can
/// handshake for it, so a holder of the PSK cannot take over another
/// client's cable by naming its cable id.
type PeerKey = (PublicKey, KeyId);

/// A peer of the server, stable per key id while the peer exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Where the server's PSKs come from.
pub enum KeySource {
    /// PSK-file mode: one PSK for every key id and every client identity.
    Psk(Psk),
    /// Ticket mode: a table filled by [`Server::add_ticket`], each ticket
    /// naming the one client identity that may use it.
    Tickets,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Psk(_) => f.write_str("Psk(..)"),
            KeySource::Tickets => f.write_str("Tickets"),
        }
    }
}

/// What a datagram amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRecv {
    /// `out` holds a RESP to send to this address.
    Reply(SocketAddr),
    /// `out` holds a frame from the peer.
    Frame(PeerId),
    /// A new peer: its first packet (a KEEPALIVE) confirmed the handshake.
    PeerUp(PeerId, KeyId, SocketAddr),
    /// A new peer whose confirming packet was DATA: `out` holds the frame.
    PeerUpFrame(PeerId, KeyId, SocketAddr),
    /// An existing peer's keys rotated (confirmed by a KEEPALIVE).
    Rekeyed(PeerId),
    /// An existing peer's keys rotated, confirmed by DATA: `out` holds the
    /// frame.
    RekeyedFrame(PeerId),
    /// An authenticated KEEPALIVE.
    Keepalive(PeerId),
    /// The peer said CLOSE and was removed.
    PeerClosed(PeerId),
}

impl ServerRecv {
    /// Whether `out` holds a frame.
    pub fn has_frame(&self) -> bool {
        matches!(
            self,
            ServerRecv::Frame(_) | ServerRecv::PeerUpFrame(..) | ServerRecv::RekeyedFrame(_)
        )
    }

    /// The peer concerned, if any.
    pub fn peer(&self) -> Option<PeerId> {
        match *self {
            ServerRecv::Reply(_) => None,
            ServerRecv::Frame(p)
            | ServerRecv::PeerUp(p, ..)
            | ServerRecv::PeerUpFrame(p, ..)
            | ServerRecv::Rekeyed(p)
            | ServerRecv::RekeyedFrame(p)
            | ServerRecv::Keepalive(p)
            | ServerRecv::PeerClosed(p) => Some(p),
        }
    }
}

/// What a timer produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// `out` holds a KEEPALIVE to send to this address.
    Send(SocketAddr),
    /// Nothing authenticated came from the peer for `dead_after`, or its
    /// current keypair reached `reject_after_time` (the client's rekeys kept
    /// failing): it was removed.
    PeerDown(PeerId),
}

enum Keys {
    Single(Box<Psk>),
    Tickets(HashMap<KeyId, (Psk, PublicKey)>),
}

/// A handshake answered with RESP, awaiting the client's first packet.
struct Pending {
    key: PeerKey,
    keypair: Keypair,
    created: Duration,
}

struct Peer {
    key_id: KeyId,
    identity: PublicKey,
    addr: SocketAddr,
    current: Keypair,
    previous: Option<(Keypair, Duration)>,
    last_recv: Duration,
    last_sent: Duration,
}

/// Many cables, responder side. See the crate documentation for the
/// protocol.
pub struct Server {
    config: Config,
    rng: Rng,
    identity: Identity,
    keys: Keys,
    mac1: hmac::Key,
    /// PSK-file mode: the key of KEYREQ/KEYRESP.
    keyreq: Option<hmac::Key>,
    cookie_seal: Zeroizing<[u8; 32]>,
    /// The secret cookies are made with, and when it was drawn.
    cookie_secret: Option<(hmac::Key, Duration)>,
    /// Greatest INIT timestamp accepted per cable.
    timestamps: HashMap<PeerKey, u64>,
    /// Unconfirmed handshakes by our sender index.
    pending: HashMap<u32, Pending>,
    pending_by_key: HashMap<PeerKey, u32>,
    peers: BTreeMap<PeerId, Peer>,
    peer_by_key: HashMap<PeerKey, PeerId>,
    /// Sender indices of the peers' current and previous keypairs.
    index: HashMap<u32, PeerId>,
    next_peer: u64,
    down_queue: VecDeque<PeerId>,
    /// Peers removed because their keypair expired (not silence), until
    /// asked with [`Server::take_expired`].
    expired_down: std::collections::HashSet<PeerId>,
    keepalive_queue: VecDeque<PeerId>,
    stats: Stats,
}

impl Server {
    /// A server with the long-term `identity`, using the system RNG.
    pub fn new(config: Config, identity: Identity, keys: KeySource) -> Server {
        Server::with_rng(config, identity, keys, Box::new(SystemRandom::new()))
    }

    /// Like [`Server::new`] with an injected RNG. Every draw fills 32 bytes
    /// (a sender index is the first 4 of them, little-endian).
    pub fn with_rng(config: Config, identity: Identity, keys: KeySource, rng: Rng) -> Server {
        let public = identity.public();
        let (keys, mac1, keyreq) = match keys {
            KeySource::Psk(psk) => {
                let mac1 = keys::mac1_key(&public, Some(&psk));
                let keyreq = keys::keyreq_key(&psk);
                (Keys::Single(Box::new(psk)), mac1, Some(keyreq))
            }
            KeySource::Tickets => (
                Keys::Tickets(HashMap::new()),
                keys::mac1_key(&public, None),
                None,
            ),
        };
        Server {
            config,
            rng,
            identity,
            keys,
            mac1,
            keyreq,
            cookie_seal: keys::cookie_seal_key(&public),
            cookie_secret: None,
            timestamps: HashMap::new(),
            pending: HashMap::new(),
            pending_by_key: HashMap::new(),
            peers: BTreeMap::new(),
            peer_by_key: HashMap::new(),
            index: HashMap::new(),
            next_peer: 1,
            down_queue: VecDeque::new(),
            expired_down: Default::default(),
            keepalive_queue: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// This server's static public key.
    pub fn identity(&self) -> PublicKey {
        self.identity.public()
    }

    /// Ticket mode: installs (or replaces) the PSK of `key_id`, for the
    /// client whose static key is `client` only. An existing peer of that
    /// key id keeps its session keys; the next handshake uses the new PSK.
    /// Ignored in PSK-file mode.
    pub fn add_ticket(&mut self, key_id: KeyId, psk: Psk, client: PublicKey, now: Duration) {
        let _ = now;
        if let Keys::Tickets(table) = &mut self.keys {
            table.insert(key_id, (psk, client));
        }
    }

    /// Ticket mode: forgets the PSK of `key_id` and its unconfirmed
    /// handshake. An existing peer keeps its session until it closes, dies
    /// or its keypair reaches `reject_after_time` (no rekey can succeed
    /// without the ticket).
    pub fn remove_ticket(&mut self, key_id: &KeyId) {
        if let Keys::Tickets(table) = &mut self.keys {
            if let Some((_, client)) = table.remove(key_id) {
                if let Some(idx) = self.pending_by_key.remove(&(client, *key_id)) {
                    self.pending.remove(&idx);
                }
            }
        }
    }

    /// A datagram arrived from `from`. See [`ServerRecv`] for what `out`
    /// holds; on `Err` it is empty and nothing must be sent.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        out.clear();
        let r = self.receive_inner(datagram, from, now, out);
        match r {
            Ok(r) => {
                self.stats.received(datagram.len());
                if let ServerRecv::Reply(_) = r {
                    self.stats.sent(out.len());
                }
            }
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
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        match wire::check_header(datagram)? {
            TYPE_INIT => self.on_init(datagram, from, now, out),
            TYPE_KEYREQ => self.on_keyreq(datagram, from, out),
            TYPE_DATA | TYPE_KEEPALIVE | TYPE_CLOSE => self.on_transport(datagram, from, now, out),
            _ => Err(Drop::BadType),
        }
    }

    /// PSK-file mode: a client asks for our static key. The answer is no
    /// longer than the request.
    fn on_keyreq(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        let key = self.keyreq.as_ref().ok_or(Drop::BadType)?;
        let p: &[u8; KEYREQ_LEN] = datagram.try_into().map_err(|_| Drop::BadLength)?;
        let (head, mac) = p.split_at(36);
        let mac: &[u8; MAC_LEN] = mac.try_into().map_err(|_| Drop::BadLength)?;
        if !keys::verify_mac16(key, &[head], mac) {
            return Err(Drop::BadMac);
        }
        let mut resp = [0u8; KEYRESP_LEN];
        resp[0] = TYPE_KEYRESP;
        resp[4..36].copy_from_slice(self.identity.public().as_bytes());
        let mac = keys::mac16(key, &[&head[4..36], &resp[..36]]);
        resp[36..].copy_from_slice(&mac);
        out.clear();
        out.extend_from_slice(&resp);
        Ok(ServerRecv::Reply(from))
    }

    /// The cookie of `from`: a MAC of its address under a secret drawn
    /// afresh every [`COOKIE_SECRET_LIFETIME`].
    fn cookie(&mut self, from: SocketAddr, now: Duration) -> Option<[u8; MAC_LEN]> {
        let fresh = self
            .cookie_secret
            .as_ref()
            .is_some_and(|(_, at)| now < after(*at, COOKIE_SECRET_LIFETIME));
        if !fresh {
            let mut secret = Zeroizing::new([0u8; 32]);
            self.rng.fill(&mut secret[..]).ok()?;
            self.cookie_secret = Some((hmac::Key::new(hmac::HMAC_SHA256, &secret[..]), now));
        }
        let (secret, _) = self.cookie_secret.as_ref()?;
        let (ip, port) = (from.ip(), from.port().to_be_bytes());
        let ip = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        Some(keys::mac16(secret, &[&ip, &port]))
    }

    /// Under load: whether the INIT's mac2 is the one `from`'s cookie
    /// makes.
    fn mac2_valid(&mut self, p: &[u8; INIT_LEN], from: SocketAddr, now: Duration) -> bool {
        let Some(cookie) = self.cookie(from, now) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &cookie);
        let Ok(mac2) = <&[u8; MAC_LEN]>::try_from(&p[INIT_MAC2_OFFSET..]) else {
            return false;
        };
        keys::verify_mac16(&key, &[&p[..INIT_MAC2_OFFSET]], mac2)
    }

    /// Writes the COOKIE answering `p` from `from` into `out`.
    fn write_cookie(
        &mut self,
        p: &[u8; INIT_LEN],
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        let mut cookie = self.cookie(from, now).ok_or(Drop::Internal)?;
        let mut draw = [0u8; 32];
        self.rng.fill(&mut draw).map_err(|_| Drop::Internal)?;
        let nonce: [u8; 12] = draw[..12].try_into().map_err(|_| Drop::Internal)?;
        let aad = &p[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET];
        let tag =
            keys::cookie_seal(&self.cookie_seal, &nonce, aad, &mut cookie).ok_or(Drop::Internal)?;
        let mut c = [0u8; COOKIE_LEN];
        c[0] = TYPE_COOKIE;
        c[4..8].copy_from_slice(&p[4..8]);
        c[8..20].copy_from_slice(&nonce);
        c[20..36].copy_from_slice(&cookie);
        c[36..52].copy_from_slice(&tag);
        out.clear();
        out.extend_from_slice(&c);
        self.stats.cookies_sent += 1;
        Ok(ServerRecv::Reply(from))
    }

    fn on_init(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        let p: &[u8; INIT_LEN] = datagram.try_into().map_err(|_| Drop::BadLength)?;
        let mac1: &[u8; MAC_LEN] = p[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET]
            .try_into()
            .map_err(|_| Drop::BadLength)?;
        // Cheap checks first: mac1 names this server (and, in PSK-file
        // mode, the PSK); under load the sender must prove its address
        // with a cookie before any X25519 is done for it.
        if !keys::verify_mac16(&self.mac1, &[&p[..INIT_MAC1_OFFSET]], mac1) {
            return Err(Drop::BadMac);
        }
        if self.pending.len() >= self.config.cookie_threshold && !self.mac2_valid(p, from, now) {
            return self.write_cookie(p, from, now, out);
        }
        // After mac1: an unauthenticated sender learns nothing of `accept`
        // (and no INIT that fails is ever answered).
        let suite = Suite::from_id(p[SUITE_OFFSET])
            .filter(|s| self.config.accept.contains(*s))
            .ok_or(Drop::BadSuite)?;
        let mut payload = Zeroizing::new([0u8; INIT_PAYLOAD]);
        let hs = noise::Responder::read_msg1(
            &self.identity,
            &prologue(p),
            &p[INIT_NOISE_OFFSET..INIT_MAC1_OFFSET],
            &mut payload[..],
        )
        .ok_or(Drop::BadMac)?;
        let client = hs.remote_static();
        let key_id: KeyId = payload[..8].try_into().map_err(|_| Drop::BadLength)?;
        let timestamp = u64::from_be_bytes(payload[8..16].try_into().map_err(|_| Drop::BadLength)?);
        let psk = match &self.keys {
            Keys::Single(psk) => psk,
            Keys::Tickets(table) => {
                let (psk, owner) = table.get(&key_id).ok_or(Drop::UnknownKey)?;
                if *owner != client {
                    return Err(Drop::BadIdentity);
                }
                psk
            }
        };
        let key = (client, key_id);
        if let Some(&last) = self.timestamps.get(&key) {
            if timestamp <= last {
                return Err(Drop::StaleTimestamp);
            }
        }
        let replaces = self.pending_by_key.get(&key).copied();
        // A live cable's rekey is never refused for the pending table: INITs
        // replayed (or made with the key) for other cables may fill it, but
        // not lock out cables that are up. (Bounded: one pending each.)
        let live = self.peer_by_key.contains_key(&key);
        if replaces.is_none() && !live && self.pending.len() >= self.config.max_pending {
            return Err(Drop::TooManyPending);
        }
        if !live && self.peers.len() >= self.config.max_peers {
            return Err(Drop::TooManyPeers);
        }
        let server_index = self.fresh_index(replaces).ok_or(Drop::Internal)?;
        let ephemeral = keys::x25519_ephemeral(&*self.rng).ok_or(Drop::Internal)?;
        let mut resp = [0u8; RESP_LEN];
        resp[0] = TYPE_RESP;
        resp[SUITE_OFFSET] = suite.id();
        resp[4..8].copy_from_slice(&server_index.to_le_bytes());
        resp[8..12].copy_from_slice(&p[4..8]);
        let head: [u8; RESP_PAYLOAD] = resp[..RESP_NOISE_OFFSET]
            .try_into()
            .map_err(|_| Drop::Internal)?;
        let split = hs
            .write_msg2(
                ephemeral,
                psk.as_bytes(),
                &head,
                &mut resp[RESP_NOISE_OFFSET..],
            )
            .ok_or(Drop::BadKey)?;
        let send = keys::transport_key(suite, &split.r2i).ok_or(Drop::Internal)?;
        let recv = keys::transport_key(suite, &split.i2r).ok_or(Drop::Internal)?;
        let client_index = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let keypair = Keypair::new(suite, send, recv, server_index, client_index, now);

        // Commit.
        self.record_timestamp(key, timestamp);
        if let Some(old) = replaces {
            self.pending.remove(&old);
        }
        self.pending.insert(
            server_index,
            Pending {
                key,
                keypair,
                created: now,
            },
        );
        self.pending_by_key.insert(key, server_index);
        out.clear();
        out.extend_from_slice(&resp);
        Ok(ServerRecv::Reply(from))
    }

    fn record_timestamp(&mut self, key_id: PeerKey, timestamp: u64) {
        if !self.timestamps.contains_key(&key_id) {
            // In PSK-file mode any key id is valid, so bound the table: keep
            // the key ids that have a peer or a pending handshake.
            let cap = 2 * (self.config.max_peers + self.config.max_pending).max(64);
            if self.timestamps.len() >= cap {
                let peers = &self.peer_by_key;
                let pending = &self.pending_by_key;
                self.timestamps
                    .retain(|k, _| peers.contains_key(k) || pending.contains_key(k));
            }
        }
        self.timestamps.insert(key_id, timestamp);
    }

    /// A random sender index used by no session. `reusable` is the index of
    /// a pending handshake about to be replaced.
    fn fresh_index(&self, reusable: Option<u32>) -> Option<u32> {
        let taken = |i: u32| {
            Some(i) != reusable && (self.pending.contains_key(&i) || self.index.contains_key(&i))
        };
        let mut draw = [0u8; 32];
        let mut idx = 0;
        for _ in 0..8 {
            self.rng.fill(&mut draw).ok()?;
            idx = u32::from_le_bytes([draw[0], draw[1], draw[2], draw[3]]);
            if !taken(idx) {
                return Some(idx);
            }
        }
        // A poor RNG (or a test's fixed one): probe linearly. There are far
        // fewer sessions than indices, so this ends.
        for _ in 0..=u32::MAX {
            idx = idx.wrapping_add(1);
            if !taken(idx) {
                return Some(idx);
            }
        }
        None
    }

    fn on_transport(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        let t = wire::parse_transport(datagram)?;
        if let Some(pending) = self.pending.get_mut(&t.receiver) {
            pending.keypair.open(datagram, t.counter, out)?;
            return self.confirm(t.receiver, t.ty, from, now, out);
        }
        let id = *self.index.get(&t.receiver).ok_or(Drop::UnknownIndex)?;
        let peer = self.peers.get_mut(&id).ok_or(Drop::UnknownIndex)?;
        let kp = if peer.current.local_index == t.receiver {
            if peer.current.expired(now, self.config.reject_after_time) {
                return Err(Drop::KeyExpired);
            }
            &mut peer.current
        } else {
            // (`expires` already includes the keypair's lifetime.)
            match &mut peer.previous {
                Some((kp, expires)) if kp.local_index == t.receiver && now < *expires => kp,
                _ => return Err(Drop::UnknownIndex),
            }
        };
        // Only the newest packet moves the peer (roaming): a genuine packet
        // held back and released later from elsewhere does not.
        if kp.open(datagram, t.counter, out)? {
            peer.addr = from;
        }
        peer.last_recv = now;
        match t.ty {
            TYPE_DATA => Ok(ServerRecv::Frame(id)),
            TYPE_KEEPALIVE => Ok(ServerRecv::Keepalive(id)),
            _ => {
                self.remove_peer(id);
                Ok(ServerRecv::PeerClosed(id))
            }
        }
    }

    /// The first authenticated packet under a pending handshake's keypair.
    fn confirm(
        &mut self,
        index: u32,
        ty: u8,
        from: SocketAddr,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<ServerRecv, Drop> {
        let Some(pending) = self.pending.remove(&index) else {
            return Err(Drop::UnknownIndex);
        };
        let key = pending.key;
        let (identity, key_id) = key;
        if self.pending_by_key.get(&key) == Some(&index) {
            self.pending_by_key.remove(&key);
        }
        let existing = self.peer_by_key.get(&key).copied();
        if ty == TYPE_CLOSE {
            out.clear();
            return match existing {
                Some(id) => {
                    self.remove_peer(id);
                    Ok(ServerRecv::PeerClosed(id))
                }
                // Closed before it was ever up.
                None => Err(Drop::NotUp),
            };
        }
        if ty == TYPE_KEEPALIVE {
            out.clear();
        }
        let frame = ty == TYPE_DATA;
        self.stats.handshakes_completed += 1;
        let mut keypair = pending.keypair;
        // Its lifetime counts from now, when it becomes current.
        keypair.created = now;
        if let Some(id) = existing {
            if let Some(peer) = self.peers.get_mut(&id) {
                let old = core::mem::replace(&mut peer.current, keypair);
                if let Some((prev, _)) = peer.previous.take() {
                    self.index.remove(&prev.local_index);
                }
                // Kept for `old_key_keep`, but never past its hard lifetime.
                let expires = after(now, self.config.old_key_keep)
                    .min(old.expires_at(self.config.reject_after_time));
                peer.previous = Some((old, expires));
                peer.addr = from;
                peer.last_recv = now;
                self.index.insert(index, id);
                self.stats.rekeys += 1;
                return Ok(if frame {
                    ServerRecv::RekeyedFrame(id)
                } else {
                    ServerRecv::Rekeyed(id)
                });
            }
        }
        if self.peers.len() >= self.config.max_peers {
            self.stats.handshakes_completed -= 1;
            out.clear();
            return Err(Drop::TooManyPeers);
        }
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.peers.insert(
            id,
            Peer {
                key_id,
                identity,
                addr: from,
                current: keypair,
                previous: None,
                last_recv: now,
                last_sent: now,
            },
        );
        self.peer_by_key.insert(key, id);
        self.index.insert(index, id);
        Ok(if frame {
            ServerRecv::PeerUpFrame(id, key_id, from)
        } else {
            ServerRecv::PeerUp(id, key_id, from)
        })
    }

    fn remove_peer(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.remove(&id) {
            self.index.remove(&peer.current.local_index);
            if let Some((prev, _)) = &peer.previous {
                self.index.remove(&prev.local_index);
            }
            let key = (peer.identity, peer.key_id);
            if self.peer_by_key.get(&key) == Some(&id) {
                self.peer_by_key.remove(&key);
            }
        }
    }

    /// Encrypts `frame` for `peer` into `out` (cleared first); returns the
    /// address to send it to. `Err(Drop::NotUp)` for an unknown peer,
    /// `Err(Drop::KeyExpired)` when its keypair reached `reject_after_time`
    /// (the next `poll` removes it).
    pub fn seal(
        &mut self,
        peer: PeerId,
        frame: &[u8],
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Result<SocketAddr, Drop> {
        out.clear();
        let p = self.peers.get_mut(&peer).ok_or(Drop::NotUp)?;
        if p.current.expired(now, self.config.reject_after_time) {
            return Err(Drop::KeyExpired);
        }
        p.current.seal(TYPE_DATA, frame, out)?;
        p.last_sent = now;
        self.stats.sent(out.len());
        Ok(p.addr)
    }

    /// Closes the cable of `peer`: writes a CLOSE into `out`, removes the
    /// peer and returns the address to send the CLOSE to. `None` for an
    /// unknown peer (`out` then stays empty).
    pub fn close_peer(
        &mut self,
        peer: PeerId,
        now: Duration,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        out.clear();
        let p = self.peers.get_mut(&peer)?;
        let addr = p.addr;
        let sealed = !p.current.expired(now, self.config.reject_after_time)
            && p.current.seal(TYPE_CLOSE, &[], out).is_ok();
        p.last_sent = now;
        self.remove_peer(peer);
        if sealed {
            self.stats.sent(out.len());
        }
        Some(addr)
    }

    /// Runs the timers. Call until it returns `None`.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<ServerEvent> {
        out.clear();
        for swept in [false, true] {
            if let Some(id) = self.down_queue.pop_front() {
                return Some(ServerEvent::PeerDown(id));
            }
            while let Some(id) = self.keepalive_queue.pop_front() {
                let Some(peer) = self.peers.get_mut(&id) else {
                    continue;
                };
                if now < after(peer.last_sent, self.config.keepalive_interval) {
                    continue;
                }
                // Whether or not sealing works, do not retry before the
                // next interval.
                peer.last_sent = now;
                if !peer.current.expired(now, self.config.reject_after_time)
                    && peer.current.seal(TYPE_KEEPALIVE, &[], out).is_ok()
                {
                    self.stats.sent(out.len());
                    return Some(ServerEvent::Send(peer.addr));
                }
            }
            if swept {
                break;
            }
            self.sweep(now);
        }
        None
    }

    /// Expires what is due and queues the events of `now`.
    fn sweep(&mut self, now: Duration) {
        let timeout = self.config.pending_timeout;
        let pending_by_key = &mut self.pending_by_key;
        self.pending.retain(|idx, p| {
            let keep = now < after(p.created, timeout);
            if !keep && pending_by_key.get(&p.key) == Some(idx) {
                pending_by_key.remove(&p.key);
            }
            keep
        });
        let mut dead = Vec::new();
        for (&id, peer) in self.peers.iter_mut() {
            if let Some((prev, expires)) = &peer.previous {
                if now >= *expires {
                    self.index.remove(&prev.local_index);
                    peer.previous = None;
                }
            }
            if peer.current.expired(now, self.config.reject_after_time) {
                self.expired_down.insert(id);
                dead.push(id);
            } else if now >= after(peer.last_recv, self.config.dead_after) {
                dead.push(id);
            } else if now >= after(peer.last_sent, self.config.keepalive_interval) {
                self.keepalive_queue.push_back(id);
            }
        }
        for id in dead {
            self.remove_peer(id);
            self.down_queue.push_back(id);
        }
    }

    /// The absolute time at which `poll` must be called next (a time in the
    /// past means at once; `Duration::MAX` means never).
    pub fn next_deadline(&self) -> Duration {
        if !self.down_queue.is_empty() || !self.keepalive_queue.is_empty() {
            return Duration::ZERO;
        }
        let mut d = Duration::MAX;
        for p in self.pending.values() {
            d = d.min(after(p.created, self.config.pending_timeout));
        }
        for peer in self.peers.values() {
            d = d
                .min(after(peer.last_recv, self.config.dead_after))
                .min(after(peer.last_sent, self.config.keepalive_interval))
                .min(peer.current.expires_at(self.config.reject_after_time));
            if let Some((_, expires)) = &peer.previous {
                d = d.min(*expires);
            }
        }
        d
    }

    /// The peers: id, key id, current address.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, KeyId, SocketAddr)> + '_ {
        self.peers.iter().map(|(&id, p)| (id, p.key_id, p.addr))
    }

    /// The suite negotiated for `peer`'s current keypair (the one frames to
    /// it are sealed with), `None` for an unknown peer.
    pub fn peer_suite(&self, peer: PeerId) -> Option<Suite> {
        self.peers.get(&peer).map(|p| p.current.suite)
    }

    /// The peer of cable `key_id` from the client `identity`, if up.
    pub fn peer_by_key(&self, identity: &PublicKey, key_id: &KeyId) -> Option<PeerId> {
        self.peer_by_key.get(&(*identity, *key_id)).copied()
    }

    /// The static key of `peer`'s client, as its handshake proved.
    pub fn peer_identity(&self, peer: PeerId) -> Option<PublicKey> {
        self.peers.get(&peer).map(|p| p.identity)
    }

    /// How many handshakes await confirmation.
    pub fn pending_handshakes(&self) -> usize {
        self.pending.len()
    }

    /// Whether a peer reported by [`ServerEvent::PeerDown`] went down
    /// because its keypair expired (the client's rekeys kept failing)
    /// rather than because nothing was heard. Asked once per Down.
    pub fn take_expired(&mut self, peer: PeerId) -> bool {
        self.expired_down.remove(&peer)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    #[cfg(test)]
    pub(crate) fn peer_keypair_mut(&mut self, id: PeerId) -> Option<&mut Keypair> {
        self.peers.get_mut(&id).map(|p| &mut p.current)
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("peers", &self.peers.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}
