//! The QUIC cable's datagram framing (overlay/src/quic/frag.rs): any
//! datagram a peer sends, parsed and, when it is a piece, fed to one
//! link's reassembly table with time moving by the input. It must never
//! panic, never hand out a frame longer than MAX_FRAME or of another
//! length than its header said, and a datagram that does not parse must
//! change nothing.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vde_fuzz::messages;
use vde_overlay::quic::frag::{self, Datagram, Reassembly, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembly::new();
    let start = Instant::now();
    let mut now = start;
    for d in messages(data) {
        now += Duration::from_millis(u64::from(d.len() as u8 & 0x3f) * 8);
        match frag::parse(d) {
            Ok(Datagram::Whole(_)) => {}
            Ok(Datagram::Piece {
                id,
                index,
                count,
                total,
                piece,
            }) => {
                if let Some(f) = r.add(id, index, count, total, piece, now) {
                    assert_eq!(f.len(), usize::from(total));
                    assert!(f.len() <= MAX_FRAME);
                }
            }
            Err(_) => {}
        }
        assert!(r.pending() <= frag::SLOTS);
    }
});
