//! vde-crypto's server fed arbitrary datagrams (INIT, RESP, DATA,
//! KEEPALIVE, CLOSE and garbage) in one of four states: fresh, holding a
//! pending handshake, or with a confirmed peer (PSK-file or ticket mode).
//! It must never panic, and it must accept nothing: every datagram the
//! fuzzer makes is unauthenticated, so any `Ok` (a reply to an INIT, a
//! frame, a peer up, a keepalive, a close) is an accepted forgery.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vde_fuzz::{client_addr, client_of, handshake, messages, server, steer, T0};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut s = server(mode & 1 != 0);
    let mut index = None;
    if mode & 6 != 0 {
        let mut c = client_of(mode & 1 != 0);
        let confirm = mode & 4 != 0;
        index = Some(handshake(&mut c, &mut s, confirm).server_index);
    }
    let steer_to = index.filter(|_| mode & 8 != 0);
    let mut now = T0;
    let mut out = Vec::new();
    for m in messages(rest) {
        let mut d = m.to_vec();
        if let Some(i) = steer_to {
            steer(&mut d, i);
        }
        match s.receive(&d, client_addr(), now, &mut out) {
            Ok(r) => panic!("accepted forgery: {r:?} from {d:02x?}"),
            Err(_) => assert!(out.is_empty(), "output on a drop"),
        }
        // time moves a little between datagrams; the timers run
        now += Duration::from_millis(u64::from(d.len() as u8 & 0x0f));
        while s.poll(now, &mut out).is_some() {}
    }
});
