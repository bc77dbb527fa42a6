//! TCP MSS clamping of frames leaving through a cable: any frame (tagged
//! or not, IPv4 or IPv6) with any limit. It never panics, keeps the
//! length, changes at most the MSS value and the TCP checksum, keeps the
//! ones' complement sum of the TCP segment (so a valid checksum stays
//! valid), and clamping twice changes nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde_overlay::mss::{clamp, is_syn};

/// The ones' complement sum of `data` (16-bit big-endian words), folded,
/// with 0xffff and 0 the same value.
fn sum16(data: &[u8]) -> u16 {
    let mut s: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    if s == 0xffff {
        0
    } else {
        s as u16
    }
}

/// Where the TCP segment starts, as the clamp reads it.
fn tcp_start(f: &[u8]) -> Option<usize> {
    let mut l2 = 14;
    if f.get(12..14)? == [0x81, 0x00] {
        l2 += 4;
    }
    match f.get(l2 - 2..l2)? {
        [0x08, 0x00] => Some(l2 + usize::from(f.get(l2)? & 0x0f) * 4),
        [0x86, 0xdd] => Some(l2 + 40),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((limit, frame)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame = usize::from(u16::from_be_bytes(*limit));
    let mut f = frame.to_vec();
    let changed = clamp(&mut f, max_frame);
    assert_eq!(f.len(), frame.len());
    if !changed {
        assert_eq!(f, frame);
        return;
    }
    assert!(is_syn(frame) && is_syn(&f));
    let diff = f.iter().zip(frame).filter(|(a, b)| a != b).count();
    assert!(diff <= 4, "{diff} bytes changed");
    let tcp = tcp_start(frame).expect("a clamped frame has a TCP segment");
    assert_eq!(sum16(&f[tcp..]), sum16(&frame[tcp..]), "checksum not kept");
    let mut g = f.clone();
    assert!(!clamp(&mut g, max_frame), "clamped twice");
    assert_eq!(g, f);
});
