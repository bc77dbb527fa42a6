//! Attacks on the handshake by someone on the path (issue #10): each test
//! plays the attacker with the messages it can see, and fails if the
//! attack works.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client_addr, psk, KEY_ID, WALL};
use vde_crypto::wire::{INIT_LEN, RESP_LEN};
use vde_crypto::{Client, ClientEvent, ClientRecv, Config, Drop, KeySource, Server, ServerRecv};

fn client() -> Client {
    Client::new(Config::default(), KEY_ID, psk(), WALL, Duration::ZERO)
}

fn server() -> Server {
    Server::new(Config::default(), KeySource::Psk(psk()))
}

/// The client's next INIT.
fn init_of(c: &mut Client, now: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match c.poll(now, &mut out) {
            Some(ClientEvent::Send) if out.len() == INIT_LEN => return out,
            Some(_) => continue,
            None => panic!("no INIT"),
        }
    }
}

/// A RESP an attacker makes from a seen INIT: the right indexes and
/// suite, a valid-looking public key, a confirm MAC it cannot compute.
fn forged_resp(init: &[u8], fill: u8) -> Vec<u8> {
    let mut r = vec![fill; RESP_LEN];
    r[0] = 0x02;
    r[1] = init[1];
    r[2] = 0;
    r[3] = 0;
    r[8..12].copy_from_slice(&init[4..8]);
    // the base point times something: a point of full order
    r[12] = 9;
    r[13..44].fill(0);
    r
}

#[test]
fn a_forged_resp_does_not_spend_the_handshake() {
    let (mut c, mut s) = (client(), server());
    let now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    let mut out = Vec::new();
    // the attacker answers first, from the server's address
    for fill in [0u8, 0x55, 0xff] {
        let r = c.receive(&forged_resp(&init, fill), now, &mut out);
        assert_eq!(r, Err(Drop::BadMac), "a forged RESP is refused");
    }
    assert_eq!(c.stats().count(Drop::BadMac), 3, "and counted");
    // the genuine answer still completes the handshake
    let addr: SocketAddr = client_addr();
    let mut resp = Vec::new();
    assert_eq!(
        s.receive(&init, addr, now, &mut resp),
        Ok(ServerRecv::Reply(addr))
    );
    assert_eq!(
        c.receive(&resp, now, &mut out),
        Ok(ClientRecv::Up),
        "the genuine RESP after forged ones brings the cable up"
    );
    assert!(c.is_up());
}

#[test]
fn forged_resps_during_a_rekey_leave_the_cable_up_and_the_rekey_possible() {
    let config = Config {
        rekey_after_time: Duration::from_millis(50),
        dead_after: Duration::from_secs(10),
        ..Config::default()
    };
    let mut c = Client::new(config.clone(), KEY_ID, psk(), WALL, Duration::ZERO);
    let mut s = Server::new(config.clone(), KeySource::Psk(psk()));
    let addr = client_addr();
    let mut now = Duration::from_millis(1);
    let (mut out, mut resp) = (Vec::new(), Vec::new());
    let init = init_of(&mut c, now);
    s.receive(&init, addr, now, &mut resp).unwrap();
    assert_eq!(c.receive(&resp, now, &mut out), Ok(ClientRecv::Up));
    // up; time passes until the client rekeys
    now += config.rekey_after_time + Duration::from_millis(1);
    let init2 = init_of(&mut c, now);
    for fill in 0..20u8 {
        assert_eq!(
            c.receive(&forged_resp(&init2, fill), now, &mut out),
            Err(Drop::BadMac)
        );
        assert!(c.is_up(), "forged answers do not take the cable down");
    }
    s.receive(&init2, addr, now, &mut resp).unwrap();
    assert_eq!(c.receive(&resp, now, &mut out), Ok(ClientRecv::Rekeyed));
    assert_eq!(c.stats().rekeys, 1);
}

#[test]
fn a_key_that_expires_is_told_apart_from_silence() {
    // rekeys are blocked (every INIT after the first is lost), the rest
    // flows: both ends drop the keypair at its hard lifetime and say so
    let config = Config {
        rekey_after_time: Duration::from_millis(500),
        reject_after_time: Duration::from_millis(1500),
        dead_after: Duration::from_secs(100),
        ..Config::default()
    };
    let mut c = Client::new(config.clone(), KEY_ID, psk(), WALL, Duration::ZERO);
    let mut s = Server::new(config.clone(), KeySource::Psk(psk()));
    let addr = client_addr();
    let (mut out, mut back, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    s.receive(&init, addr, now, &mut back).unwrap();
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    let (mut client_down, mut server_down) = (None, None);
    while now < Duration::from_secs(5) && (client_down.is_none() || server_down.is_none()) {
        now += Duration::from_millis(10);
        while let Some(ev) = c.poll(now, &mut out) {
            match ev {
                ClientEvent::Send if out.len() == INIT_LEN => {} // lost
                ClientEvent::Send => {
                    let _ = s.receive(&out, addr, now, &mut scratch);
                }
                ClientEvent::Down => client_down = Some(c.key_expired()),
                ClientEvent::Up => {}
            }
        }
        while let Some(ev) = s.poll(now, &mut back) {
            match ev {
                vde_crypto::ServerEvent::Send(_) => {
                    let _ = c.receive(&back, now, &mut scratch);
                }
                vde_crypto::ServerEvent::PeerDown(p) => server_down = Some(s.take_expired(p)),
            }
        }
    }
    assert_eq!(client_down, Some(true), "the client says its key expired");
    assert_eq!(server_down, Some(true), "the server says the key expired");
    assert!(
        now < Duration::from_secs(3),
        "at the hard lifetime: {now:?}"
    );
}

#[test]
fn silence_is_not_reported_as_an_expired_key() {
    let (mut c, mut s) = (client(), server());
    let addr = client_addr();
    let (mut out, mut back) = (Vec::new(), Vec::new());
    let mut now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    assert!(matches!(
        s.receive(&init, addr, now, &mut back),
        Ok(ServerRecv::Reply(_))
    ));
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    // the confirming keepalive makes the server's peer
    let _ = c.poll(now, &mut out);
    let _ = s.receive(&out, addr, now, &mut back);
    let (mut cd, mut sd) = (None, None);
    while now < Duration::from_secs(3) && (cd.is_none() || sd.is_none()) {
        now += Duration::from_millis(10);
        while let Some(ev) = c.poll(now, &mut out) {
            if ev == ClientEvent::Down {
                cd = Some(c.key_expired());
            }
        }
        while let Some(ev) = s.poll(now, &mut back) {
            if let vde_crypto::ServerEvent::PeerDown(p) = ev {
                sd = Some(s.take_expired(p));
            }
        }
    }
    assert_eq!((cd, sd), (Some(false), Some(false)));
}

#[test]
fn a_full_pending_table_does_not_refuse_a_live_cables_rekey() {
    let config = Config {
        max_pending: 4,
        rekey_after_time: Duration::from_millis(200),
        dead_after: Duration::from_secs(100),
        ..Config::default()
    };
    let mut c = Client::new(config.clone(), KEY_ID, psk(), WALL, Duration::ZERO);
    let mut s = Server::new(config.clone(), KeySource::Psk(psk()));
    let addr = client_addr();
    let (mut out, mut back) = (Vec::new(), Vec::new());
    let mut now = Duration::from_millis(1);
    let init = init_of(&mut c, now);
    s.receive(&init, addr, now, &mut back).unwrap();
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Up));
    let _ = c.poll(now, &mut out);
    assert!(matches!(
        s.receive(&out, addr, now, &mut back),
        Ok(ServerRecv::PeerUp(..))
    ));
    // INITs of other cable ids (recorded elsewhere, replayed after a
    // restart, or made by another key holder) fill the pending table
    for i in 0..10u8 {
        let mut other = Client::new(
            config.clone(),
            [b'x', i, 0, 0, 0, 0, 0, 0],
            psk(),
            WALL,
            Duration::ZERO,
        );
        let from: SocketAddr = format!("192.0.2.{}:9", i + 1).parse().unwrap();
        let _ = s.receive(&init_of(&mut other, now), from, now, &mut back);
    }
    assert_eq!(s.pending_handshakes(), 4);
    // the live cable rekeys all the same
    now += Duration::from_millis(250);
    let init2 = init_of(&mut c, now);
    assert!(
        matches!(
            s.receive(&init2, addr, now, &mut back),
            Ok(ServerRecv::Reply(_))
        ),
        "the live cable's rekey is answered"
    );
    assert_eq!(c.receive(&back, now, &mut out), Ok(ClientRecv::Rekeyed));
    // and an unknown cable id is still refused while the table is full
    let mut late = Client::new(config, *b"late-one", psk(), WALL, Duration::ZERO);
    assert_eq!(
        s.receive(&init_of(&mut late, now), addr, now, &mut back),
        Err(Drop::TooManyPending)
    );
}
