//! Ethernet frames as checked views over byte slices, in the style of
//! smoltcp's `wire` module: validate once in `new_checked`, then read fields
//! without further bounds checks on the hot path.

use std::fmt;
use std::str::FromStr;

/// Length of the Ethernet header (dst, src, EtherType).
pub const HEADER_LEN: usize = 14;
/// Largest frame the switch forwards: 14 header + 4 tag + 1500 payload.
/// The C switch receives into a buffer of this size.
pub const MAX_FRAME: usize = 1518;
/// Largest frame any VDE tool carries (libvdeplug's VDE_ETHBUFSIZE).
pub const MAX_JUMBO: usize = 9234;
/// EtherType of an IEEE 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Length of an 802.1Q tag.
pub const TAG_LEN: usize = 4;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// Group (multicast or broadcast) bit set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// The MAC as the low 48 bits of a u64, byte 0 least significant
    /// (the C switch's little-endian key layout).
    pub fn to_u64_le(self) -> u64 {
        let b = self.0;
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error for a MAC address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex bytes separated by ':' or '.'")]
pub struct BadMac(pub String);

impl FromStr for Mac {
    type Err = BadMac;

    /// Accepts `xx:xx:xx:xx:xx:xx` and `x.x.x.x.x.x` (one or two hex digits
    /// per byte), as the C switch's `--macaddr` and `hash/find` do.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMac(s.to_string());
        let sep = if s.contains(':') { ':' } else { '.' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(sep) {
            if n == 6 || part.is_empty() || part.len() > 2 {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            n += 1;
        }
        if n != 6 {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

/// A read-only view of an Ethernet frame of at least [`HEADER_LEN`] bytes.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    buf: &'a [u8],
}

/// Why a buffer is not a frame the switch accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("runt frame: {0} bytes, shorter than the 14-byte Ethernet header")]
    Runt(usize),
    #[error("oversized frame: {0} bytes, longer than {MAX_FRAME}")]
    Oversized(usize),
}

impl<'a> Frame<'a> {
    /// Checks the size rules of the switch: at least 14 bytes, at most 1518.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, FrameError> {
        if buf.len() < HEADER_LEN {
            Err(FrameError::Runt(buf.len()))
        } else if buf.len() > MAX_FRAME {
            Err(FrameError::Oversized(buf.len()))
        } else {
            Ok(Frame { buf })
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    pub fn dst(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[0..6]);
        Mac(m)
    }

    pub fn src(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[6..12]);
        Mac(m)
    }

    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.buf[12], self.buf[13]])
    }

    /// The 802.1Q TCI when the EtherType is exactly 0x8100 and the tag is
    /// complete. A truncated tag (frame of 14 or 15 bytes) reads as TCI 0
    /// being absent: such a frame is treated as tagged with VID 0 by the C
    /// switch only when the bytes exist, so we report `None` and let the
    /// caller drop it.
    pub fn tci(&self) -> Option<u16> {
        if self.ethertype() == ETHERTYPE_VLAN && self.buf.len() >= HEADER_LEN + 2 {
            Some(u16::from_be_bytes([self.buf[14], self.buf[15]]))
        } else {
            None
        }
    }

    pub fn is_tagged(&self) -> bool {
        self.ethertype() == ETHERTYPE_VLAN
    }
}

/// What to do to a frame's 802.1Q tag on its way out of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    /// Send the bytes as received.
    Keep,
    /// Remove the 4-byte tag after the source MAC.
    Strip,
    /// Insert `81 00` + this TCI after the source MAC.
    Insert(u16),
}

impl TagOp {
    /// Writes the frame as it leaves with this tag operation into `out`
    /// (which must hold at least `frame.len() + 4` bytes) and returns the
    /// length written. `Keep` copies; callers avoid calling it on the hot path.
    pub fn apply(self, frame: &[u8], out: &mut [u8]) -> usize {
        match self {
            TagOp::Keep => {
                out[..frame.len()].copy_from_slice(frame);
                frame.len()
            }
            TagOp::Strip => {
                if frame.len() < HEADER_LEN + TAG_LEN {
                    // Cannot strip a tag that is not complete: nothing is sent.
                    return 0;
                }
                out[..12].copy_from_slice(&frame[..12]);
                let rest = &frame[16..];
                out[12..12 + rest.len()].copy_from_slice(rest);
                frame.len() - TAG_LEN
            }
            TagOp::Insert(tci) => {
                out[..12].copy_from_slice(&frame[..12]);
                out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                out[14..16].copy_from_slice(&tci.to_be_bytes());
                let rest = &frame[12..];
                out[16..16 + rest.len()].copy_from_slice(rest);
                frame.len() + TAG_LEN
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse_and_print() {
        let m: Mac = "02:00:0a:ff:1:9".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0x0a, 0xff, 1, 9]);
        assert_eq!(m.to_string(), "02:00:0a:ff:01:09");
        let d: Mac = "2.0.a.ff.1.9".parse().unwrap();
        assert_eq!(d, m);
        for bad in [
            "",
            "1:2:3:4:5",
            "1:2:3:4:5:6:7",
            "01:02:03:04:05:xyz",
            "1::3:4:5:6",
            "100:0:0:0:0:0",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert!(Mac::BROADCAST.is_multicast());
        assert!(!m.is_multicast());
        assert_eq!(Mac([1, 2, 3, 4, 5, 6]).to_u64_le(), 0x060504030201);
    }

    #[test]
    fn frame_size_rules() {
        assert_eq!(
            Frame::new_checked(&[0; 13]).err(),
            Some(FrameError::Runt(13))
        );
        assert!(Frame::new_checked(&[0; 14]).is_ok());
        assert!(Frame::new_checked(&[0; 1518]).is_ok());
        assert_eq!(
            Frame::new_checked(&[0; 1519]).err(),
            Some(FrameError::Oversized(1519))
        );
    }

    #[test]
    fn frame_fields_and_tags() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x81, 0x00, 0xa0, 0x0a, 0x08, 0x00, 0xde, 0xad]);
        let v = Frame::new_checked(&f).unwrap();
        assert_eq!(v.dst(), Mac::BROADCAST);
        assert_eq!(v.src(), Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(v.tci(), Some(0xa00a));
        let mut out = [0u8; 64];
        let n = TagOp::Strip.apply(&f, &mut out);
        assert_eq!(n, f.len() - 4);
        assert_eq!(&out[12..n], &[0x08, 0x00, 0xde, 0xad]);
        // round trip: insert the tag back
        let stripped = out[..n].to_vec();
        let m = TagOp::Insert(0xa00a).apply(&stripped, &mut out);
        assert_eq!(&out[..m], &f[..]);
        let k = TagOp::Keep.apply(&f, &mut out);
        assert_eq!(&out[..k], &f[..]);
        // a 14-byte "tagged" frame has no TCI and cannot be stripped
        let short = Frame::new_checked(&f[..14]).unwrap();
        assert_eq!(short.tci(), None);
        assert_eq!(TagOp::Strip.apply(&f[..14], &mut out), 0);
    }
}

/// Property tests: inserting and stripping an 802.1Q tag.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn insert_then_strip_gives_the_frame_back(
            frame in proptest::collection::vec(any::<u8>(), HEADER_LEN..=MAX_FRAME - TAG_LEN),
            tci in any::<u16>(),
        ) {
            let mut tagged = vec![0u8; frame.len() + TAG_LEN];
            let n = TagOp::Insert(tci).apply(&frame, &mut tagged);
            prop_assert_eq!(n, frame.len() + TAG_LEN);
            let view = Frame::new_checked(&tagged[..n]).unwrap();
            prop_assert_eq!(view.tci(), Some(tci));
            prop_assert_eq!((view.dst(), view.src()), {
                let f = Frame::new_checked(&frame).unwrap();
                (f.dst(), f.src())
            });
            let mut back = vec![0u8; n + TAG_LEN];
            let k = TagOp::Strip.apply(&tagged[..n], &mut back);
            prop_assert_eq!(&back[..k], &frame[..]);
            let k = TagOp::Keep.apply(&frame, &mut back);
            prop_assert_eq!(&back[..k], &frame[..]);
        }

        #[test]
        fn mac_display_parse(m in any::<[u8; 6]>()) {
            prop_assert_eq!(Mac(m).to_string().parse::<Mac>(), Ok(Mac(m)));
        }
    }
}
