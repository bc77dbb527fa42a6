//! Helpers shared by the fuzz targets: splitting one input into several
//! messages, and the vde-crypto ends whose keys the fuzzer does not know.
#![allow(deprecated)] // ring::test::rand::FixedSliceRandom: deterministic runs

use std::net::SocketAddr;
use std::time::Duration;

use ring::test::rand::FixedSliceRandom;
use vde_crypto::{
    Client, ClientEvent, ClientRecv, Config, Identity, KeyId, KeySource, Psk, Server, ServerAuth,
    ServerRecv,
};

/// Splits an input into messages: a length byte, then that many bytes
/// (fewer at the end of the input); the length 255 takes everything left.
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&n, rest) = data.split_first()?;
        let n = if n == 255 {
            rest.len()
        } else {
            usize::from(n).min(rest.len())
        };
        let (m, rest) = rest.split_at(n);
        data = rest;
        Some(m)
    })
}

/// The pre-shared key of both ends. The fuzzer only mutates bytes: it can
/// not compute an HMAC or an AEAD tag under keys derived from it, so any
/// datagram it makes that an end accepts is a forgery.
pub const PSK: [u8; 32] = *b"fuzz: the fuzzer never sees this";
/// The cable id of the client.
pub const KEY_ID: KeyId = *b"fuzzcab1";
/// Wall clock of the client (INIT timestamps), nanoseconds.
pub const WALL: u64 = 1_700_000_000_000_000_000;
/// Monotonic time when the ends start.
pub const T0: Duration = Duration::from_secs(100);

/// The static secrets of both ends (the fuzzer does not know them either).
const CLIENT_STATIC: [u8; 32] = *b"fuzz client static secret bytes!";
const SERVER_STATIC: [u8; 32] = *b"fuzz server static secret bytes!";

static CLIENT_RNG: [u8; 32] = *b"client ephemeral and index bytes";
static SERVER_RNG: [u8; 32] = *b"server ephemeral and index bytes";

/// Address of the client as the server sees it.
pub fn client_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 40000))
}

/// A client with a deterministic RNG (every draw gives the same bytes), of
/// a server in PSK-file mode.
pub fn client() -> Client {
    client_of(false)
}

/// A client of a server in PSK-file mode (`tickets` false: mac1 keyed by
/// the PSK too) or ticket mode (the server's key came with the ticket).
pub fn client_of(tickets: bool) -> Client {
    let server = Identity::from_bytes(SERVER_STATIC).public();
    let auth = if tickets {
        ServerAuth::Ticket(server)
    } else {
        ServerAuth::Psk {
            known: Some(server),
            pin: None,
        }
    };
    Client::with_rng(
        Config::default(),
        Identity::from_bytes(CLIENT_STATIC),
        auth,
        KEY_ID,
        Psk::from_bytes(PSK),
        WALL,
        T0,
        Box::new(FixedSliceRandom { bytes: &CLIENT_RNG }),
    )
}

/// A server with a deterministic RNG: PSK-file mode, or ticket mode with
/// a ticket for [`KEY_ID`].
pub fn server(tickets: bool) -> Server {
    let keys = if tickets {
        KeySource::Tickets
    } else {
        KeySource::Psk(Psk::from_bytes(PSK))
    };
    let mut s = Server::with_rng(
        Config::default(),
        Identity::from_bytes(SERVER_STATIC),
        keys,
        Box::new(FixedSliceRandom { bytes: &SERVER_RNG }),
    );
    s.add_ticket(
        KEY_ID,
        Psk::from_bytes(PSK),
        Identity::from_bytes(CLIENT_STATIC).public(),
        T0,
    );
    s
}

/// What a real handshake left behind, for steering fuzzed datagrams at
/// the sessions that exist.
pub struct Session {
    /// The client's sender index (the receiver index of packets to it).
    pub client_index: [u8; 4],
    /// The server's sender index (the receiver index of packets to it).
    pub server_index: [u8; 4],
}

/// Runs a real handshake between `c` and `s`: INIT, RESP and, if
/// `confirm`, the client's first KEEPALIVE that makes the server's peer.
/// Without `confirm` the server keeps a pending handshake.
pub fn handshake(c: &mut Client, s: &mut Server, confirm: bool) -> Session {
    let mut init = Vec::new();
    assert_eq!(c.poll(T0, &mut init), Some(ClientEvent::Send));
    let mut resp = Vec::new();
    assert_eq!(
        s.receive(&init, client_addr(), T0, &mut resp),
        Ok(ServerRecv::Reply(client_addr()))
    );
    let mut out = Vec::new();
    assert_eq!(c.receive(&resp, T0, &mut out), Ok(ClientRecv::Up));
    if confirm {
        assert_eq!(c.poll(T0, &mut out), Some(ClientEvent::Send));
        let mut f = Vec::new();
        let r = s.receive(&out, client_addr(), T0, &mut f);
        assert!(matches!(r, Ok(ServerRecv::PeerUp(..))), "{r:?}");
    }
    Session {
        client_index: init[4..8].try_into().unwrap(),
        server_index: resp[4..8].try_into().unwrap(),
    }
}

/// Writes `index` as the receiver index of a datagram, where its type
/// byte says the receiver index is (RESP: bytes 8..12; COOKIE and
/// transport packets: bytes 4..8), so that fuzzed datagrams reach the AEAD and the replay
/// window instead of stopping at an unknown index.
pub fn steer(datagram: &mut [u8], index: [u8; 4]) {
    let at = match datagram.first() {
        Some(0x02) => 8,
        Some(0x03..=0x06) => 4,
        _ => return,
    };
    if let Some(field) = datagram.get_mut(at..at + 4) {
        field.copy_from_slice(&index);
    }
}
