//! TCP MSS clamping for frames that leave through a cable, as tinc does
//! (`ClampMSS`): a SYN's MSS option is lowered so that the hosts' full
//! segments fit, with the cable's own headers, in one packet of the path
//! between the sites. Without it every full-size frame of a 1500-byte LAN
//! becomes two IP fragments on a 1500-byte WAN.
//!
//! Only the MSS option of TCP SYN segments (over IPv4 without fragment
//! offset, or IPv6 without extension headers, tagged or not) is touched;
//! the TCP checksum is updated incrementally (RFC 1624). Anything else,
//! malformed or short, passes unchanged.

mod field {
    /// Offset of the EtherType in an untagged frame.
    pub const ETHERTYPE: usize = 12;
    pub const ETH_HEADER: usize = 14;
    pub const VLAN_TAG: usize = 4;
    pub const TPID_8021Q: u16 = 0x8100;
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const IPV6_HEADER: usize = 40;
    pub const TCP: u8 = 6;
    pub const TCP_HEADER: usize = 20;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CHECKSUM: usize = 16;
    pub const SYN: u8 = 0x02;
    pub const OPT_END: u8 = 0;
    pub const OPT_NOP: u8 = 1;
    pub const OPT_MSS: u8 = 2;
}

use field::*;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Where the TCP header of a frame starts and the size of the IP header
/// before it, for a TCP SYN; `None` for anything else.
fn syn_tcp(frame: &[u8]) -> Option<(usize, usize, usize)> {
    let (mut et_at, mut l2) = (ETHERTYPE, ETH_HEADER);
    if frame.len() >= ETH_HEADER && be16(frame, ETHERTYPE) == TPID_8021Q {
        et_at += VLAN_TAG;
        l2 += VLAN_TAG;
    }
    if frame.len() < l2 {
        return None;
    }
    let ip = l2;
    let (tcp, ip_hdr) = match be16(frame, et_at) {
        IPV4 => {
            let v = frame.get(ip)?;
            let ihl = usize::from(v & 0x0f) * 4;
            if v >> 4 != 4 || ihl < 20 || frame.len() < ip + ihl {
                return None;
            }
            let frag = be16(frame, ip + 6) & 0x1fff;
            if frame[ip + 9] != TCP || frag != 0 {
                return None;
            }
            (ip + ihl, ihl)
        }
        IPV6 => {
            if frame.len() < ip + IPV6_HEADER || frame[ip] >> 4 != 6 || frame[ip + 6] != TCP {
                return None;
            }
            (ip + IPV6_HEADER, IPV6_HEADER)
        }
        _ => return None,
    };
    if frame.len() < tcp + TCP_HEADER || frame[tcp + TCP_FLAGS] & SYN == 0 {
        return None;
    }
    Some((l2, tcp, ip_hdr))
}

/// Whether `frame` is a TCP SYN (the only frames [`clamp`] may change).
pub fn is_syn(frame: &[u8]) -> bool {
    syn_tcp(frame).is_some()
}

/// Lowers the MSS option of a TCP SYN so that a full segment's frame is
/// at most `max_frame` bytes. Returns true if the frame was changed.
pub fn clamp(frame: &mut [u8], max_frame: usize) -> bool {
    let Some((l2, tcp, ip_hdr)) = syn_tcp(frame) else {
        return false;
    };
    let Some(limit) = max_frame.checked_sub(l2 + ip_hdr + TCP_HEADER) else {
        return false;
    };
    let limit = limit.min(usize::from(u16::MAX)) as u16;
    let doff = usize::from(frame[tcp + 12] >> 4) * 4;
    if doff < TCP_HEADER || frame.len() < tcp + doff {
        return false;
    }
    let mut at = tcp + TCP_HEADER;
    let end = tcp + doff;
    while at < end {
        match frame[at] {
            OPT_END => break,
            OPT_NOP => at += 1,
            kind => {
                let Some(&len) = frame.get(at + 1) else { break };
                let len = usize::from(len);
                if len < 2 || at + len > end {
                    break;
                }
                if kind == OPT_MSS && len == 4 {
                    let old = be16(frame, at + 2);
                    if old <= limit {
                        return false;
                    }
                    frame[at + 2..at + 4].copy_from_slice(&limit.to_be_bytes());
                    // RFC 1624: HC' = ~(~HC + ~m + m'), m the 16-bit word
                    // of the segment that changed. An MSS value at an odd
                    // offset (options need no alignment) straddles two
                    // words, where it counts byte-swapped.
                    let (m, m2) = match (at + 2 - tcp) % 2 {
                        0 => (old, limit),
                        _ => (old.swap_bytes(), limit.swap_bytes()),
                    };
                    let hc = be16(frame, tcp + TCP_CHECKSUM);
                    let mut sum = u32::from(!hc) + u32::from(!m) + u32::from(m2);
                    while sum > 0xffff {
                        sum = (sum & 0xffff) + (sum >> 16);
                    }
                    let new = !(sum as u16);
                    frame[tcp + TCP_CHECKSUM..tcp + TCP_CHECKSUM + 2]
                        .copy_from_slice(&new.to_be_bytes());
                    return true;
                }
                at += len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ones' complement sum over `data` (for checking checksums).
    fn sum16(data: &[u8]) -> u32 {
        let mut s = 0u32;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += u32::from(w);
        }
        s
    }

    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// A TCP checksum over the IPv4 pseudo header, computed from scratch.
    fn tcp4_checksum_ok(frame: &[u8], ip: usize) -> bool {
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        let tcp = &frame[ip + ihl..];
        let mut s = sum16(&frame[ip + 12..ip + 20]);
        s += 6 + tcp.len() as u32;
        s += sum16(tcp);
        fold(s) == 0xffff
    }

    /// An Ethernet + IPv4 + TCP SYN with MSS 1460, window scale and SACK
    /// permitted, its checksum right.
    fn syn4(tagged: bool) -> Vec<u8> {
        syn4_with(tagged, [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0])
    }

    /// The same SYN with these 12 bytes of options.
    fn syn4_with(tagged: bool, options: [u8; 12]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if tagged {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let ip = f.len();
        let tcp_len = 32;
        let total = 20 + tcp_len;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let tcp = f.len();
        f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0]);
        f.extend_from_slice(&[0x80, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
        f.extend_from_slice(&options);
        let mut s = sum16(&f[ip + 12..ip + 20]) + 6 + tcp_len as u32;
        s += sum16(&f[tcp..]);
        let c = !fold(s);
        f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
        assert!(tcp4_checksum_ok(&f, ip));
        f
    }

    #[test]
    fn a_syn_gets_the_lower_mss_and_a_right_checksum() {
        for tagged in [false, true] {
            let mut f = syn4(tagged);
            let ip = if tagged { 18 } else { 14 };
            assert!(is_syn(&f));
            // frames of at most 1440 bytes: MSS 1440 - 14 (- 4) - 20 - 20
            assert!(clamp(&mut f, 1440));
            let tcp = ip + 20;
            let mss = u16::from_be_bytes([f[tcp + 22], f[tcp + 23]]);
            assert_eq!(usize::from(mss), 1440 - ip - 40);
            assert!(tcp4_checksum_ok(&f, ip), "checksum after clamping");
            // already low enough: unchanged
            let before = f.clone();
            assert!(!clamp(&mut f, 1500));
            assert_eq!(f, before);
        }
    }

    /// Found by the fuzzer (fuzz/fuzz_targets/mss.rs): an MSS option at an
    /// odd offset of the segment (after one NOP) got a wrong checksum.
    #[test]
    fn an_mss_option_at_an_odd_offset_keeps_the_checksum_right() {
        for tagged in [false, true] {
            let mut f = syn4_with(tagged, [1, 2, 4, 0x05, 0xb4, 3, 3, 7, 4, 2, 0, 0]);
            let ip = if tagged { 18 } else { 14 };
            assert!(clamp(&mut f, 1440));
            let tcp = ip + 20;
            let mss = u16::from_be_bytes([f[tcp + 23], f[tcp + 24]]);
            assert_eq!(usize::from(mss), 1440 - ip - 40);
            assert!(tcp4_checksum_ok(&f, ip), "checksum after clamping");
        }
    }

    #[test]
    fn ipv6_syns_are_clamped_too() {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 6, 64]);
        f.extend_from_slice(&[0u8; 32]);
        f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0]);
        f.extend_from_slice(&[0x60, 0x02, 0xfa, 0xf0, 0x12, 0x34, 0, 0]);
        f.extend_from_slice(&[2, 4, 0x05, 0xa0]);
        let before_sum = fold(sum16(&f[54..]));
        assert!(clamp(&mut f, 1440));
        assert_eq!(u16::from_be_bytes([f[76], f[77]]), 1440 - 14 - 40 - 20);
        // the segment's sum is unchanged by a right incremental update
        assert_eq!(fold(sum16(&f[54..])), before_sum);
    }

    #[test]
    fn other_frames_and_garbage_pass_unchanged() {
        let mut not_syn = syn4(false);
        not_syn[14 + 20 + 13] = 0x10; // ACK only
        let mut frag = syn4(false);
        frag[14 + 7] = 8; // a fragment offset
        let mut udp = syn4(false);
        udp[14 + 9] = 17;
        let mut bad_opt = syn4(false);
        bad_opt[14 + 20 + 21] = 40; // an option longer than the header
        for f in [not_syn, frag, udp, bad_opt] {
            let mut g = f.clone();
            assert!(!clamp(&mut g, 1000));
            assert_eq!(g, f);
        }
        // every truncation of a SYN, and short junk: no panic, no change
        let f = syn4(true);
        for n in 0..f.len() {
            let mut g = f[..n].to_vec();
            let _ = clamp(&mut g, 1000);
            assert_eq!(&g[..], &f[..n].to_vec()[..], "truncated at {n}");
        }
        let mut tiny = [0u8; 3];
        assert!(!clamp(&mut tiny, 0));
    }
}
