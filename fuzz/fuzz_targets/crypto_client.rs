//! vde-crypto's client fed arbitrary datagrams while handshaking (its
//! INIT sent) or up (handshake done). It must never panic and accept
//! nothing: without the key the fuzzer cannot make a RESP whose confirm
//! verifies nor a transport packet whose tag does, so any `Ok` (Up, a
//! frame, a keepalive, a close) is an accepted forgery.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vde_crypto::ClientEvent;
use vde_fuzz::{client, handshake, messages, server, steer, T0};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut c = client();
    let mut out = Vec::new();
    let index = if mode & 1 != 0 {
        let mut s = server(false);
        handshake(&mut c, &mut s, false).client_index
    } else {
        assert_eq!(c.poll(T0, &mut out), Some(ClientEvent::Send));
        out[4..8].try_into().unwrap()
    };
    let steer_to = (mode & 2 != 0).then_some(index);
    let mut now = T0;
    for m in messages(rest) {
        let mut d = m.to_vec();
        if let Some(i) = steer_to {
            steer(&mut d, i);
        }
        match c.receive(&d, now, &mut out) {
            Ok(r) => panic!("accepted forgery: {r:?} from {d:02x?}"),
            Err(_) => assert!(out.is_empty(), "output on a drop"),
        }
        now += Duration::from_millis(u64::from(d.len() as u8 & 0x0f));
        while c.poll(now, &mut out).is_some() {}
    }
});
