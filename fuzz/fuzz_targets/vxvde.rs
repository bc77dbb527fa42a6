//! vxvde datagrams: the VXLAN header and the receive verdict of an
//! endpoint (learning, goodbyes) for a sequence of datagrams from a few
//! senders, then routing frames with what was learned. Nothing panics, a
//! header that parses is the one `header` writes for its VNI, and a
//! delivered frame is never longer than the datagram.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vde_fuzz::messages;
use vde_overlay::vxvde::{header, header_vni, Core, Verdict, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let vni = u32::from(mode) << 4 | 1;
    // hashsize 0 (no learning) or a small table that collides often
    let hashsize = if mode & 1 != 0 { 0 } else { 16 };
    let mut core = Core::new(vni, hashsize, Duration::from_secs(10));
    assert_eq!(header_vni(&core.header()), Some(vni));
    let t0 = Instant::now();
    let mut now = t0;
    for m in messages(rest) {
        if let Some(v) = header_vni(m) {
            assert_eq!(header(v), m[..HEADER_LEN]);
        }
        let Some((&who, dgram)) = m.split_first() else {
            continue;
        };
        let from = SocketAddr::from(([198, 51, 100, who & 7], 5000 + u16::from(who >> 3)));
        let cut = dgram.len().min(HEADER_LEN);
        let (hdr, frame) = dgram.split_at(cut);
        match core.receive(hdr, frame, from, || who & 0x80 != 0, now) {
            Verdict::Frame(n) => assert!(n == frame.len() && n > 14),
            Verdict::Goodbye(_) => assert!(frame.is_empty()),
            Verdict::Short | Verdict::BadHeader | Verdict::OwnCopy => {}
        }
        let _ = core.route(frame, now);
        let _ = core.route(dgram, now);
        now += Duration::from_millis(u64::from(who & 0x0f) * 500);
    }
    let _ = t0;
});
