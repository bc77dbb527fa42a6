//! The FSTP BPDU of vde_switch (core spec §1.2, §1.3): an 802.1w RST BPDU
//! with vde's own role encoding and little-endian timer seconds. Parsed
//! into a value once, emitted byte-exactly (53 bytes untagged, 57 tagged).
//!
//! This is the wire layer of the spanning tree; the protocol machine that
//! uses it comes with the loop-free overlay work.

use crate::frame::{Mac, ETHERTYPE_VLAN, HEADER_LEN, TAG_LEN};

/// Destination of every BPDU.
pub const BPDU_DST: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);
/// Untagged BPDU length.
pub const BPDU_LEN: usize = 53;
/// 802.3 length field: LLC + BPDU = 39 bytes.
const LLC_LEN: u16 = 39;
/// Shortest frame (after removing a tag) the C switch parses as a BPDU.
pub const MIN_LEN: usize = 51;

/// Flag bits as vde_switch sends them (§1.3).
pub mod flags {
    /// Topology change.
    pub const TC: u8 = 0x01;
    /// Set when the port is blocked (802.1w reads it as Proposal).
    pub const BLOCKED: u8 = 0x02;
    /// Role field, two bits.
    pub const ROLE_MASK: u8 = 0x0c;
    /// vde's root port (802.1w: Alternate/Backup).
    pub const ROLE_ROOT: u8 = 0x04;
    /// vde's blocked port (802.1w: Root), always with [`BLOCKED`].
    pub const ROLE_BLOCKED: u8 = 0x08;
    /// Designated.
    pub const ROLE_DESIGNATED: u8 = 0x0c;
    /// Port state << 4: forwarding (learning + forwarding bits).
    pub const FORWARDING: u8 = 0x30;
    /// Agreement: always set in periodic hellos.
    pub const AGREEMENT: u8 = 0x40;
    /// TC acknowledgement: never sent by vde.
    pub const TC_ACK: u8 = 0x80;
}

/// Port role as vde encodes it in the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Root,
    Designated,
    Blocked,
    /// Role bits 00: not sent by vde.
    Unknown,
}

impl Role {
    pub fn from_flags(f: u8) -> Role {
        match f & flags::ROLE_MASK {
            flags::ROLE_ROOT => Role::Root,
            flags::ROLE_DESIGNATED => Role::Designated,
            flags::ROLE_BLOCKED => Role::Blocked,
            _ => Role::Unknown,
        }
    }

    /// The role bits (and the blocked bit) vde sends for this role.
    pub fn to_flags(self) -> u8 {
        match self {
            Role::Root => flags::ROLE_ROOT,
            Role::Designated => flags::ROLE_DESIGNATED,
            Role::Blocked => flags::ROLE_BLOCKED | flags::BLOCKED,
            Role::Unknown => 0,
        }
    }
}

/// A bridge identifier: priority (big-endian) then MAC. Lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BridgeId(pub [u8; 8]);

impl BridgeId {
    pub fn new(priority: u16, mac: Mac) -> BridgeId {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&priority.to_be_bytes());
        b[2..].copy_from_slice(&mac.0);
        BridgeId(b)
    }

    pub fn priority(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}

impl std::fmt::Display for BridgeId {
    /// `80:00:00:ff:a0:4f:5f:52`, as fstp/print shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

/// vde's port identifier bytes: `0x80 | (port >> 4)`, `port & 0xff` (sic:
/// the nibbles overlap, and ports from 2048 on collide).
pub fn port_id(port: u32) -> [u8; 2] {
    [0x80 | ((port >> 4) & 0x7f) as u8, (port & 0xff) as u8]
}

/// The fields of a BPDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpdu {
    pub flags: u8,
    pub root: BridgeId,
    pub root_cost: u32,
    pub bridge: BridgeId,
    pub port: [u8; 2],
    /// Timers in whole seconds.
    pub message_age: u16,
    pub max_age: u16,
    pub hello: u16,
    pub forward_delay: u16,
}

/// Why a frame sent to 01:80:c2:00:00:00 is not a BPDU we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BpduError {
    #[error("BPDU too short: {0} bytes")]
    Short(usize),
    #[error("not a BPDU destination")]
    NotBpdu,
    #[error("BPDU version {version} type {kind} ignored (only RST: 2/2)")]
    Unsupported { version: u8, kind: u8 },
    #[error("cut 802.1Q tag")]
    BadTag,
}

fn le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Checks the destination and removes an 802.1Q tag. The slice returned is
/// indexed with the untagged offsets: for a tagged frame it starts 4 bytes
/// in (its first 12 bytes are then not the addresses, which nobody reads).
fn untag(frame: &[u8]) -> Result<(&[u8], Option<u16>), BpduError> {
    if frame.len() < HEADER_LEN {
        return Err(BpduError::Short(frame.len()));
    }
    if frame[..6] != BPDU_DST.0 {
        return Err(BpduError::NotBpdu);
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_VLAN {
        return Ok((frame, None));
    }
    if frame.len() < HEADER_LEN + TAG_LEN {
        return Err(BpduError::BadTag);
    }
    Ok((
        &frame[TAG_LEN..],
        Some(u16::from_be_bytes([frame[14], frame[15]])),
    ))
}

/// Root, root path cost, bridge and port, at the same offsets in both BPDU
/// formats (the caller has checked the length).
fn vector(b: &[u8]) -> (BridgeId, u32, BridgeId, [u8; 2]) {
    let mut root = [0u8; 8];
    root.copy_from_slice(&b[22..30]);
    let mut bridge = [0u8; 8];
    bridge.copy_from_slice(&b[34..42]);
    let cost = u32::from_be_bytes([b[30], b[31], b[32], b[33]]);
    (BridgeId(root), cost, BridgeId(bridge), [b[42], b[43]])
}

/// Writes the addresses and the optional tag; returns where the 802.3
/// length field goes.
fn write_header(src: Mac, tci: Option<u16>, out: &mut [u8]) -> usize {
    out[..6].copy_from_slice(&BPDU_DST.0);
    out[6..12].copy_from_slice(&src.0);
    match tci {
        Some(t) => {
            out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            out[14..16].copy_from_slice(&t.to_be_bytes());
            16
        }
        None => 12,
    }
}

impl Bpdu {
    /// Parses a frame (tagged or not) with the C switch's validation: the
    /// destination, at least 51 bytes after the tag, version 2 and type 2.
    /// Returns the BPDU and the frame's VLAN tag, if any.
    pub fn parse(frame: &[u8]) -> Result<(Bpdu, Option<u16>), BpduError> {
        let (b, tci) = untag(frame)?;
        if b.len() < MIN_LEN {
            return Err(BpduError::Short(b.len()));
        }
        let (version, kind) = (b[19], b[20]);
        if version != 2 || kind != 2 {
            return Err(BpduError::Unsupported { version, kind });
        }
        let (root, root_cost, bridge, port) = vector(b);
        // the forward delay and v1 length may be missing in a 51-byte BPDU
        let opt = |o: usize| if b.len() >= o + 2 { le(b, o) } else { 0 };
        Ok((
            Bpdu {
                flags: b[21],
                root,
                root_cost,
                bridge,
                port,
                message_age: le(b, 44),
                max_age: le(b, 46),
                hello: le(b, 48),
                forward_delay: opt(50),
            },
            tci,
        ))
    }

    /// Writes the BPDU as vde_switch sends it, from `src`, tagged with
    /// `tci` if given. Returns the length (53 or 57); `out` must hold 57.
    pub fn emit(&self, src: Mac, tci: Option<u16>, out: &mut [u8]) -> usize {
        let o = write_header(src, tci, out);
        let b = &mut out[o..o + 41];
        b[0..2].copy_from_slice(&LLC_LEN.to_be_bytes());
        b[2..5].copy_from_slice(&[0x42, 0x42, 0x03]);
        b[5..7].copy_from_slice(&[0, 0]);
        b[7] = 2;
        b[8] = 2;
        b[9] = self.flags;
        b[10..18].copy_from_slice(&self.root.0);
        b[18..22].copy_from_slice(&self.root_cost.to_be_bytes());
        b[22..30].copy_from_slice(&self.bridge.0);
        b[30..32].copy_from_slice(&self.port);
        b[32..34].copy_from_slice(&self.message_age.to_le_bytes());
        b[34..36].copy_from_slice(&self.max_age.to_le_bytes());
        b[36..38].copy_from_slice(&self.hello.to_le_bytes());
        b[38..40].copy_from_slice(&self.forward_delay.to_le_bytes());
        b[40] = 0;
        o + 41
    }
}

/// IEEE 802.1D configuration BPDUs, spoken to standard bridges (a Linux
/// kernel bridge with STP on): version 0, type 0, timers in big-endian
/// 1/256 s, no role bits (only designated ports send them).
pub mod config {
    use super::*;

    /// LLC + 35-byte configuration BPDU.
    const LLC_LEN: u16 = 38;
    /// Timers we advertise to standard bridges (seconds): they adopt the
    /// root's, and 802.1D needs max age >= 2 * (hello + 1).
    const MAX_AGE: u16 = 20;
    const HELLO: u16 = 2;
    const FORWARD_DELAY: u16 = 4;

    fn be256(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]]) / 256
    }

    /// Parses an 802.1D configuration BPDU into the same fields, with the
    /// flags of a designated forwarding port (where standard bridges send
    /// them from) and the TC bit kept.
    pub fn parse(frame: &[u8]) -> Result<(Bpdu, Option<u16>), BpduError> {
        let (b, tci) = untag(frame)?;
        if b.len() < 52 {
            return Err(BpduError::Short(b.len()));
        }
        let (version, kind) = (b[19], b[20]);
        if version != 0 || kind != 0 || b[17..19] != [0, 0] {
            return Err(BpduError::Unsupported { version, kind });
        }
        let (root, root_cost, bridge, port) = vector(b);
        Ok((
            Bpdu {
                flags: flags::ROLE_DESIGNATED | flags::FORWARDING | (b[21] & flags::TC),
                root,
                root_cost,
                bridge,
                port,
                message_age: be256(b, 44),
                max_age: be256(b, 46),
                hello: be256(b, 48).max(1),
                forward_delay: be256(b, 50),
            },
            tci,
        ))
    }

    /// Writes `b` as an 802.1D configuration BPDU (60 bytes untagged, padded;
    /// 64 tagged). `out` must hold 64 bytes.
    pub fn emit(b: &Bpdu, src: Mac, tci: Option<u16>, out: &mut [u8]) -> usize {
        out[..64].fill(0);
        let o = write_header(src, tci, out);
        let p = &mut out[o..o + 40];
        p[0..2].copy_from_slice(&LLC_LEN.to_be_bytes());
        p[2..5].copy_from_slice(&[0x42, 0x42, 0x03]);
        // protocol 0, version 0, type 0 at p[5..9]
        p[9] = b.flags & flags::TC;
        p[10..18].copy_from_slice(&b.root.0);
        p[18..22].copy_from_slice(&b.root_cost.to_be_bytes());
        p[22..30].copy_from_slice(&b.bridge.0);
        p[30..32].copy_from_slice(&b.port);
        p[32..34].copy_from_slice(&(b.message_age.min(MAX_AGE) * 256).to_be_bytes());
        p[34..36].copy_from_slice(&(MAX_AGE * 256).to_be_bytes());
        p[36..38].copy_from_slice(&(HELLO * 256).to_be_bytes());
        p[38..40].copy_from_slice(&(FORWARD_DELAY * 256).to_be_bytes());
        if tci.is_some() {
            64
        } else {
            60
        }
    }
}

/// IEEE 802.1w rapid spanning tree BPDUs (802.1D-2004 §9.3.3), spoken on
/// ports set to the standard encoding (`--rstp`, `fstp/setrstp`). The
/// layout is the one vde uses; what differs is the meaning of the flags and
/// of the timers:
/// * role bits: standard Root is `0x08` and Alternate/Backup `0x04`, where
///   vde swaps them (§1.3); an Alternate sends neither Proposal nor the
///   learning/forwarding bits;
/// * Proposal (`0x02`) only from a designated port that is discarding
///   (vde's own extension already means exactly that);
/// * timers in big-endian 1/256 s; we advertise 802.1D's defaults.
///
/// The state machine keeps working in the vde encoding: this module
/// translates at the edge, both ways, so the two are never mixed on a port.
pub mod rstp {
    use super::*;

    /// Standard role field values.
    pub const STD_ALTERNATE: u8 = 0x04;
    pub const STD_ROOT: u8 = 0x08;
    pub const STD_DESIGNATED: u8 = 0x0c;
    const LEARNING_FORWARDING: u8 = 0x30;
    const PROPOSAL: u8 = 0x02;
    /// Advertised timers (seconds): 802.1D-2004's defaults.
    const MAX_AGE: u16 = 20;
    const HELLO: u16 = 2;
    const FORWARD_DELAY: u16 = 15;

    fn be256(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]]) / 256
    }

    /// Standard flags -> the vde flags the state machine reads.
    pub fn flags_from_std(f: u8) -> u8 {
        let keep = f & (flags::TC | flags::FORWARDING | flags::AGREEMENT);
        match f & flags::ROLE_MASK {
            STD_ROOT => keep | flags::ROLE_ROOT,
            STD_ALTERNATE => (keep & !flags::FORWARDING) | Role::Blocked.to_flags(),
            STD_DESIGNATED => keep | flags::ROLE_DESIGNATED | (f & PROPOSAL),
            _ => keep,
        }
    }

    /// vde flags -> standard flags (TC Ack is never sent: TCs are
    /// repeated for `tc_window` instead).
    pub fn flags_to_std(f: u8) -> u8 {
        let keep = f & (flags::TC | flags::FORWARDING | flags::AGREEMENT);
        match Role::from_flags(f) {
            Role::Root => keep | STD_ROOT,
            Role::Blocked => (keep & !LEARNING_FORWARDING) | STD_ALTERNATE,
            Role::Designated => keep | STD_DESIGNATED | (f & PROPOSAL),
            Role::Unknown => keep,
        }
    }

    /// Parses an RST BPDU (version 2, type 2, at least 36 bytes).
    pub fn parse(frame: &[u8]) -> Result<(Bpdu, Option<u16>), BpduError> {
        let (b, tci) = untag(frame)?;
        if b.len() < 53 {
            return Err(BpduError::Short(b.len()));
        }
        let (version, kind) = (b[19], b[20]);
        if version < 2 || kind != 2 || b[17..19] != [0, 0] {
            return Err(BpduError::Unsupported { version, kind });
        }
        let (root, root_cost, bridge, port) = vector(b);
        Ok((
            Bpdu {
                flags: flags_from_std(b[21]),
                root,
                root_cost,
                bridge,
                port,
                message_age: be256(b, 44),
                max_age: be256(b, 46),
                hello: be256(b, 48).max(1),
                forward_delay: be256(b, 50),
            },
            tci,
        ))
    }

    /// Writes `b` as a standard RST BPDU; `out` must hold 57 bytes.
    pub fn emit(b: &Bpdu, src: Mac, tci: Option<u16>, out: &mut [u8]) -> usize {
        let std = Bpdu {
            flags: flags_to_std(b.flags),
            message_age: b.message_age.min(MAX_AGE - 1),
            max_age: MAX_AGE,
            hello: HELLO,
            forward_delay: FORWARD_DELAY,
            ..*b
        };
        let n = std.emit(src, tci, out);
        // vde writes little-endian whole seconds; the standard wants
        // big-endian 1/256 s: the same bytes for values below 256, but
        // write them explicitly
        let o = n - 41;
        for (i, v) in [std.message_age, MAX_AGE, HELLO, FORWARD_DELAY]
            .into_iter()
            .enumerate()
        {
            out[o + 32 + 2 * i..o + 34 + 2 * i].copy_from_slice(&(v * 256).to_be_bytes());
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hello observed from a root switch (core spec §1.2).
    const OBSERVED: [u8; 53] = [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x03, 0x00, 0x27, 0x42,
        0x42, 0x03, 0x00, 0x00, 0x02, 0x02, 0x7c, 0x10, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x03, 0x81, 0x11, 0x00,
        0x00, 0x28, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
    ];

    fn observed_bpdu() -> Bpdu {
        let me = BridgeId::new(0x1000, Mac([0, 0xff, 0, 0, 0, 3]));
        Bpdu {
            flags: 0x7c,
            root: me,
            root_cost: 0,
            bridge: me,
            port: port_id(17),
            message_age: 0,
            max_age: 40,
            hello: 4,
            forward_delay: 0,
        }
    }

    #[test]
    fn emits_the_observed_hello_byte_for_byte() {
        let mut out = [0u8; 57];
        let n = observed_bpdu().emit(Mac([0, 0xff, 0, 0, 0, 3]), None, &mut out);
        assert_eq!(n, BPDU_LEN);
        assert_eq!(&out[..n], &OBSERVED[..]);
    }

    #[test]
    fn parse_round_trip_untagged_and_tagged() {
        let (b, tci) = Bpdu::parse(&OBSERVED).unwrap();
        assert_eq!((b, tci), (observed_bpdu(), None));
        assert_eq!(b.root.priority(), 0x1000);
        assert_eq!(b.root.to_string(), "10:00:00:ff:00:00:00:03");
        let mut out = [0u8; 57];
        let n = b.emit(Mac([0, 0xff, 0, 0, 0, 3]), Some(10), &mut out);
        assert_eq!(n, 57);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x0a]);
        assert_eq!(&out[16..57], &OBSERVED[12..53]);
        assert_eq!(Bpdu::parse(&out[..n]).unwrap(), (b, Some(10)));
    }

    #[test]
    fn validation_as_the_c_switch() {
        assert_eq!(Bpdu::parse(&OBSERVED[..50]), Err(BpduError::Short(50)));
        assert!(Bpdu::parse(&OBSERVED[..51]).is_ok(), "51 bytes are enough");
        let mut cfg = OBSERVED;
        cfg[19] = 0; // config BPDU (version 0)
        assert!(matches!(
            Bpdu::parse(&cfg),
            Err(BpduError::Unsupported { version: 0, .. })
        ));
        let mut mst = OBSERVED;
        mst[19] = 3;
        assert!(Bpdu::parse(&mst).is_err());
        let mut other = OBSERVED;
        other[5] = 1;
        assert_eq!(Bpdu::parse(&other), Err(BpduError::NotBpdu));
        let mut cut = OBSERVED[..15].to_vec();
        cut[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(Bpdu::parse(&cut), Err(BpduError::BadTag));
        // garbage of every length never panics
        for n in 0..80 {
            let mut g: Vec<u8> = (0..n).map(|i| (i * 97 + 13) as u8).collect();
            if g.len() >= 6 {
                g[..6].copy_from_slice(&BPDU_DST.0);
            }
            let _ = Bpdu::parse(&g);
            if g.len() >= 16 {
                g[12..14].copy_from_slice(&[0x81, 0x00]);
                let _ = Bpdu::parse(&g);
            }
        }
    }

    #[test]
    fn standard_config_bpdus_round_trip() {
        let mut b = observed_bpdu();
        b.flags = flags::TC | flags::ROLE_DESIGNATED;
        b.message_age = 3;
        let mut out = [0u8; 64];
        let n = config::emit(&b, Mac([0, 0xff, 0, 0, 0, 3]), None, &mut out);
        assert_eq!(n, 60);
        assert_eq!(
            &out[12..22],
            &[0x00, 0x26, 0x42, 0x42, 0x03, 0, 0, 0, 0, 0x01]
        );
        assert_eq!(&out[22..30], &b.root.0);
        assert_eq!(
            &out[44..52],
            &[0x03, 0x00, 0x14, 0x00, 0x02, 0x00, 0x04, 0x00]
        );
        let (p, tci) = config::parse(&out[..n]).unwrap();
        assert_eq!(
            (p.root, p.bridge, p.root_cost, p.port, tci),
            (b.root, b.bridge, 0, b.port, None)
        );
        assert_eq!(
            (p.message_age, p.max_age, p.hello, p.forward_delay),
            (3, 20, 2, 4)
        );
        assert_eq!(Role::from_flags(p.flags), Role::Designated);
        assert_eq!(p.flags & flags::TC, flags::TC);
        // the vde RST BPDU is not a config BPDU, and the other way round
        assert!(config::parse(&OBSERVED).is_err());
        assert!(matches!(
            Bpdu::parse(&out[..n]),
            Err(BpduError::Unsupported {
                version: 0,
                kind: 0
            })
        ));
        for len in 0..64 {
            let _ = config::parse(&out[..len]);
        }
    }

    #[test]
    fn flags_and_port_ids() {
        // observed flag bytes
        assert_eq!(Role::from_flags(0x7c), Role::Designated);
        assert_eq!(Role::from_flags(0x3c), Role::Designated);
        assert_eq!(Role::from_flags(0x74), Role::Root);
        assert_eq!(Role::from_flags(0x4a), Role::Blocked);
        assert_eq!(0x3d & flags::TC, flags::TC);
        assert_eq!(Role::from_flags(0x35), Role::Root);
        assert_eq!(
            flags::AGREEMENT | flags::FORWARDING | Role::Designated.to_flags(),
            0x7c
        );
        assert_eq!(
            flags::AGREEMENT | flags::FORWARDING | Role::Root.to_flags(),
            0x74
        );
        assert_eq!(flags::AGREEMENT | Role::Blocked.to_flags(), 0x4a);
        assert_eq!(port_id(2), [0x80, 0x02]);
        assert_eq!(port_id(17), [0x81, 0x11]);
        assert!(BridgeId::new(0x1000, Mac([0xff; 6])) < BridgeId::new(0x8000, Mac([0; 6])));
    }

    /// An RST BPDU as 802.1D-2004 §9.3.3 lays it out, written by hand.
    fn std_rst(flags: u8, root_prio: u16, cost: u32, times: [u16; 4]) -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x09];
        f.extend_from_slice(&39u16.to_be_bytes());
        f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 2, 2, flags]);
        f.extend_from_slice(&root_prio.to_be_bytes());
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x09]);
        f.extend_from_slice(&cost.to_be_bytes());
        f.extend_from_slice(&[0x80, 0, 0x02, 0, 0, 0, 0, 0x09, 0x80, 0x01]);
        for t in times {
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.push(0); // version 1 length
        f
    }

    #[test]
    fn rstp_roles_follow_the_standard_not_vde() {
        // a standard root port: Root role, learning, forwarding, agreement
        let (b, tci) = rstp::parse(&std_rst(0x78, 0x1000, 0, [0, 0x1400, 0x200, 0xf00])).unwrap();
        assert_eq!(tci, None);
        assert_eq!(Role::from_flags(b.flags), Role::Root);
        assert_eq!(b.flags & flags::AGREEMENT, flags::AGREEMENT);
        assert_eq!((b.max_age, b.hello, b.forward_delay), (20, 2, 15));
        // a standard alternate: vde's blocked role, not forwarding
        let (b, _) = rstp::parse(&std_rst(0x44, 0x1000, 0, [0, 0x1400, 0x200, 0xf00])).unwrap();
        assert_eq!(Role::from_flags(b.flags), Role::Blocked);
        assert_eq!(b.flags & flags::FORWARDING, 0);
        // a proposing designated port: designated, proposal kept
        let (b, _) = rstp::parse(&std_rst(0x0e, 0x1000, 0, [0x180, 0x1400, 0x200, 0xf00])).unwrap();
        assert_eq!(Role::from_flags(b.flags), Role::Designated);
        assert_eq!(b.flags & 0x02, 0x02);
        assert_eq!(b.message_age, 1, "1.5 s in 1/256 s units");
        // TC ack is dropped, TC kept
        let (b, _) = rstp::parse(&std_rst(0xfd, 0x1000, 0, [0, 0x1400, 0x200, 0xf00])).unwrap();
        assert_eq!(b.flags & (flags::TC | flags::TC_ACK), flags::TC);
        // and the MSTP/STP versions are not taken as RST here
        let mut v3 = std_rst(0x7c, 0x1000, 0, [0, 0x1400, 0x200, 0xf00]);
        v3[19] = 0;
        assert!(rstp::parse(&v3).is_err());
    }

    #[test]
    fn rstp_emit_is_the_standard_layout() {
        let b = Bpdu {
            flags: flags::ROLE_ROOT | flags::FORWARDING | flags::AGREEMENT,
            root: BridgeId::new(0x1000, Mac([2, 0, 0, 0, 0, 9])),
            root_cost: 20_000_000,
            bridge: BridgeId::new(0x8000, Mac([0, 0xff, 0, 0, 0, 1])),
            port: port_id(3),
            message_age: 1,
            max_age: 40,
            hello: 1,
            forward_delay: 0,
        };
        let mut out = [0u8; 64];
        let n = rstp::emit(&b, Mac([0, 0xff, 0, 0, 0, 1]), None, &mut out);
        assert_eq!(n, 53);
        let f = &out[..n];
        assert_eq!(&f[14..17], &[0x42, 0x42, 0x03]);
        assert_eq!(&f[17..21], &[0, 0, 2, 2]);
        assert_eq!(f[21] & 0x0c, rstp::STD_ROOT, "root port says Root");
        assert_eq!(f[21], 0x78);
        assert_eq!(
            &f[44..52],
            &[0x01, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00]
        );
        assert_eq!(f[52], 0, "version 1 length");
        // round trip through the parser gives the vde flags back
        let (back, _) = rstp::parse(f).unwrap();
        assert_eq!(back.flags, b.flags);
        assert_eq!(
            (back.root, back.root_cost, back.bridge),
            (b.root, b.root_cost, b.bridge)
        );
        for (vde, std) in [
            (0x4a, 0x44),
            (0x0e, 0x0e),
            (0x7c, 0x7c),
            (0x3d, 0x3d),
            (0x75, 0x79),
        ] {
            assert_eq!(rstp::flags_to_std(vde), std, "vde {vde:#x}");
        }
    }
}

/// Property tests: each of the three formats parses what it emits.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn bpdu() -> impl Strategy<Value = Bpdu> {
        (
            any::<u8>(),
            any::<[u8; 8]>(),
            any::<u32>(),
            any::<[u8; 8]>(),
            any::<[u8; 2]>(),
            any::<[u16; 4]>(),
        )
            .prop_map(|(flags, root, root_cost, bridge, port, t)| Bpdu {
                flags,
                root: BridgeId(root),
                root_cost,
                bridge: BridgeId(bridge),
                port,
                message_age: t[0],
                max_age: t[1],
                hello: t[2],
                forward_delay: t[3],
            })
    }

    proptest! {
        #[test]
        fn vde_format_round_trip(b in bpdu(), src in any::<[u8; 6]>(), tci in any::<Option<u16>>()) {
            let mut out = [0u8; 57];
            let n = b.emit(Mac(src), tci, &mut out);
            prop_assert_eq!(n, if tci.is_some() { 57 } else { BPDU_LEN });
            prop_assert_eq!(Bpdu::parse(&out[..n]), Ok((b, tci)));
        }

        #[test]
        fn config_format_round_trip(b in bpdu(), src in any::<[u8; 6]>(), tci in any::<Option<u16>>()) {
            let mut out = [0u8; 64];
            let n = config::emit(&b, Mac(src), tci, &mut out);
            // 802.1D carries no role, and we advertise our own timers
            let want = Bpdu {
                flags: flags::ROLE_DESIGNATED | flags::FORWARDING | (b.flags & flags::TC),
                message_age: b.message_age.min(20),
                max_age: 20,
                hello: 2,
                forward_delay: 4,
                ..b
            };
            prop_assert_eq!(config::parse(&out[..n]), Ok((want, tci)));
        }

        #[test]
        fn rstp_format_round_trip(b in bpdu(), src in any::<[u8; 6]>(), tci in any::<Option<u16>>()) {
            let mut out = [0u8; 57];
            let n = rstp::emit(&b, Mac(src), tci, &mut out);
            let want = Bpdu {
                flags: rstp::flags_from_std(rstp::flags_to_std(b.flags)),
                message_age: b.message_age.min(19),
                max_age: 20,
                hello: 2,
                forward_delay: 15,
                ..b
            };
            prop_assert_eq!(rstp::parse(&out[..n]), Ok((want, tci)));
        }

        /// Flags read from a standard BPDU survive being sent on again.
        #[test]
        fn rstp_flags_are_stable(f in any::<u8>()) {
            let vde = rstp::flags_from_std(f);
            prop_assert_eq!(rstp::flags_from_std(rstp::flags_to_std(vde)), vde);
        }
    }
}
