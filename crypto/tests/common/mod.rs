//! Shared helpers of the integration tests: a deterministic PRNG for test
//! data and a simulated network with simulated time.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Drop, Identity, KeyId, KeySource, PeerId, Psk,
    PublicKey, Server, ServerAuth, ServerEvent, ServerRecv,
};

/// xorshift64*: reproducible test data (not for keys).
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

pub const MS: Duration = Duration::from_millis(1);
pub const KEY_ID: KeyId = *b"cable-01";
pub const WALL: u64 = 1_700_000_000_000_000_000;

pub fn psk() -> Psk {
    Psk::from_bytes([0x5a; 32])
}

/// The test client's long-term identity.
pub fn client_identity() -> Identity {
    Identity::from_bytes([0xc1; 32])
}

/// The test server's long-term identity.
pub fn server_identity() -> Identity {
    Identity::from_bytes([0x5e; 32])
}

/// The test client's public key.
pub fn client_pub() -> PublicKey {
    client_identity().public()
}

/// The test server's public key.
pub fn server_pub() -> PublicKey {
    server_identity().public()
}

/// PSK-file mode with the server's key configured (no KEYREQ round).
pub fn psk_auth() -> ServerAuth {
    ServerAuth::Psk {
        known: Some(server_pub()),
        pin: None,
    }
}

/// Ticket (ssh) mode: the server's key came with the ticket.
pub fn ticket_auth() -> ServerAuth {
    ServerAuth::Ticket(server_pub())
}

/// How a client talks to a server of `keys`.
pub fn auth_for(keys: &KeySource) -> ServerAuth {
    match keys {
        KeySource::Psk(_) => psk_auth(),
        KeySource::Tickets => ticket_auth(),
    }
}

/// The test client (identity 0xc1) for cable `key_id`, at `now`.
pub fn new_client(config: &Config, auth: ServerAuth, key_id: KeyId, now: Duration) -> Client {
    Client::new(
        config.clone(),
        client_identity(),
        auth,
        key_id,
        psk(),
        WALL,
        now,
    )
}

/// The test server (identity 0x5e).
pub fn new_server(config: &Config, keys: KeySource) -> Server {
    Server::new(config.clone(), server_identity(), keys)
}

/// Opens an INIT as the test server does (the Noise message to its static
/// key): the client's static key, the cable id and the timestamp inside.
pub fn open_init(init: &[u8]) -> Option<(PublicKey, KeyId, u64)> {
    use vde_crypto::wire::{INIT_MAC1_OFFSET, INIT_NOISE_OFFSET, INIT_PAYLOAD};
    let mut prologue = vde_crypto::PROTOCOL.as_bytes().to_vec();
    prologue.extend_from_slice(init.get(..INIT_NOISE_OFFSET)?);
    let mut payload = [0u8; INIT_PAYLOAD];
    let r = vde_crypto::noise::Responder::read_msg1(
        &server_identity(),
        &prologue,
        init.get(INIT_NOISE_OFFSET..INIT_MAC1_OFFSET)?,
        &mut payload,
    )?;
    let key_id: KeyId = payload[..8].try_into().ok()?;
    let ts = u64::from_be_bytes(payload[8..].try_into().ok()?);
    Some((r.remote_static(), key_id, ts))
}

pub fn client_addr() -> SocketAddr {
    "198.51.100.7:40000".parse().unwrap()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Client(ClientEvent),
    ClientRecv(ClientRecv),
    ClientDrop(Drop),
    Server(ServerEvent),
    ServerRecv(ServerRecv),
    ServerDrop(Drop),
}

/// A client and a server joined by a lossless zero-latency link that can be
/// cut, driven in 1 ms steps.
pub struct Net {
    pub now: Duration,
    pub client: Client,
    pub server: Server,
    pub addr: SocketAddr,
    /// When false, every datagram is lost.
    pub link: bool,
    /// When true, every INIT is lost (transport packets still pass): no
    /// handshake, hence no rekey, can complete.
    pub drop_inits: bool,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    pub log: Vec<(Duration, Ev)>,
    pub client_frames: Vec<Vec<u8>>,
    pub server_frames: Vec<(PeerId, Vec<u8>)>,
    /// Every datagram the client sent, as an eavesdropper near it sees
    /// them (whether or not the link delivers them).
    pub client_sent: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl Net {
    pub fn new(config: Config, keys: KeySource) -> Net {
        let now = Duration::from_secs(100);
        let auth = auth_for(&keys);
        Net {
            now,
            client: new_client(&config, auth, KEY_ID, now),
            server: new_server(&config, keys),
            addr: client_addr(),
            link: true,
            drop_inits: false,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            log: Vec::new(),
            client_frames: Vec::new(),
            server_frames: Vec::new(),
            client_sent: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// PSK-file mode with the default config.
    pub fn psk_mode(config: Config) -> Net {
        Net::new(config, KeySource::Psk(psk()))
    }

    pub fn send_to_server(&mut self, d: Vec<u8>) {
        self.client_sent.push(d.clone());
        if self.link && !(self.drop_inits && d.first() == Some(&0x01)) {
            self.to_server.push_back(d);
        }
    }

    pub fn send_to_client(&mut self, d: Vec<u8>) {
        if self.link {
            self.to_client.push_back(d);
        }
    }

    /// Processes everything due at `now` (timers and deliveries), then
    /// advances time by 1 ms.
    pub fn step(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            // The deadlines must be honest: before them, poll does nothing.
            let cd = self.client.next_deadline();
            let mut out = Vec::new();
            while let Some(ev) = self.client.poll(now, &mut out) {
                assert!(
                    now >= cd,
                    "client poll acted at {now:?} before deadline {cd:?}"
                );
                progress = true;
                self.log.push((now, Ev::Client(ev)));
                if ev == ClientEvent::Send {
                    assert!(!out.is_empty());
                    self.send_to_server(out.clone());
                }
            }
            let sd = self.server.next_deadline();
            while let Some(ev) = self.server.poll(now, &mut out) {
                assert!(
                    now >= sd,
                    "server poll acted at {now:?} before deadline {sd:?}"
                );
                progress = true;
                self.log.push((now, Ev::Server(ev)));
                if let ServerEvent::Send(to) = ev {
                    assert_eq!(to, self.addr);
                    self.send_to_client(out.clone());
                }
            }
            while let Some(d) = self.to_server.pop_front() {
                progress = true;
                match self.server.receive(&d, self.addr, now, &mut out) {
                    Ok(r) => {
                        self.log.push((now, Ev::ServerRecv(r)));
                        match r {
                            ServerRecv::Reply(to) => {
                                assert_eq!(to, self.addr);
                                self.send_to_client(out.clone());
                            }
                            r if r.has_frame() => {
                                self.server_frames.push((r.peer().unwrap(), out.clone()))
                            }
                            _ => assert!(out.is_empty()),
                        }
                    }
                    Err(e) => {
                        assert!(out.is_empty());
                        self.log.push((now, Ev::ServerDrop(e)));
                    }
                }
            }
            while let Some(d) = self.to_client.pop_front() {
                progress = true;
                match self.client.receive(&d, now, &mut out) {
                    Ok(r) => {
                        self.log.push((now, Ev::ClientRecv(r)));
                        if r == ClientRecv::Frame {
                            self.client_frames.push(out.clone());
                        } else {
                            assert!(out.is_empty());
                        }
                    }
                    Err(e) => {
                        assert!(out.is_empty());
                        self.log.push((now, Ev::ClientDrop(e)));
                    }
                }
            }
            if !progress {
                break;
            }
        }
        self.now += MS;
    }

    /// Steps for `d`.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Steps until `pred` holds (checked after each step), at most `limit`;
    /// returns the time it took.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Net) -> bool) -> Duration {
        let start = self.now;
        while self.now < start + limit {
            self.step();
            if pred(self) {
                return self.now - start;
            }
        }
        panic!("condition not reached within {limit:?}");
    }

    /// Client sends a frame through the link.
    pub fn client_send(&mut self, frame: &[u8]) {
        let mut out = std::mem::take(&mut self.buf);
        self.client.seal(frame, self.now, &mut out).unwrap();
        self.send_to_server(out.clone());
        self.buf = out;
    }

    /// Server sends a frame to its only peer through the link.
    pub fn server_send(&mut self, frame: &[u8]) {
        let peer = self.only_peer();
        let mut out = Vec::new();
        let to = self.server.seal(peer, frame, self.now, &mut out).unwrap();
        assert_eq!(to, self.addr);
        self.send_to_client(out);
    }

    pub fn only_peer(&self) -> PeerId {
        let peers: Vec<_> = self.server.peers().collect();
        assert_eq!(peers.len(), 1, "{peers:?}");
        peers[0].0
    }

    /// Events since `t`.
    pub fn events_since(&self, t: Duration) -> impl Iterator<Item = &(Duration, Ev)> {
        self.log.iter().filter(move |(at, _)| *at >= t)
    }

    pub fn count(&self, ev: &Ev) -> usize {
        self.log.iter().filter(|(_, e)| e == ev).count()
    }
}
