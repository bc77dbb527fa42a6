//! The three BPDU formats a switch reads: vde's FSTP BPDU, 802.1D
//! configuration BPDUs and 802.1w RST BPDUs, tagged or not. Parsing never
//! panics, and what parses is emitted again and parses back to the same
//! fields (vde's format exactly; the standard ones as their emitters
//! normalise the flags and timers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde::core::bpdu::{config, flags, rstp, Bpdu};
use vde::frame::Mac;

const SRC: Mac = Mac([2, 0, 0, 0, 0, 9]);

fuzz_target!(|data: &[u8]| {
    let mut out = [0u8; 64];
    if let Ok((b, tci)) = Bpdu::parse(data) {
        let n = b.emit(SRC, tci, &mut out);
        assert_eq!(Bpdu::parse(&out[..n]), Ok((b, tci)));
    }
    if let Ok((b, tci)) = config::parse(data) {
        let n = config::emit(&b, SRC, tci, &mut out);
        let (c, t) = config::parse(&out[..n]).expect("emitted 802.1D BPDU parses");
        assert_eq!(t, tci);
        assert_eq!(
            (c.root, c.root_cost, c.bridge, c.port),
            (b.root, b.root_cost, b.bridge, b.port)
        );
        assert_eq!(c.flags, b.flags);
        assert_eq!(c.message_age, b.message_age.min(20));
    }
    if let Ok((b, tci)) = rstp::parse(data) {
        let n = rstp::emit(&b, SRC, tci, &mut out);
        let (r, t) = rstp::parse(&out[..n]).expect("emitted RST BPDU parses");
        assert_eq!(t, tci);
        assert_eq!(
            (r.root, r.root_cost, r.bridge, r.port),
            (b.root, b.root_cost, b.bridge, b.port)
        );
        assert_eq!(r.flags, rstp::flags_from_std(rstp::flags_to_std(b.flags)));
        assert_eq!(r.message_age, b.message_age.min(19));
        assert!(r.flags & flags::TC_ACK == 0);
    }
});
