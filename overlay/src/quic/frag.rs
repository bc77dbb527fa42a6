//! The wire format of a QUIC cable's datagrams, and the reassembly of
//! frames split over several of them.
//!
//! A QUIC DATAGRAM (RFC 9221) must fit one packet: about 1434 bytes on a
//! 1500-byte path once MTU discovery is done, 1162 before it. A 1514-byte
//! Ethernet frame does not fit, so it travels in pieces:
//!
//! ```text
//! whole frame:  0x00 | frame
//! fragment:     0x01 | id (u32) | index (u8) | count (u8) | total (u16) | piece
//! ```
//!
//! (integers big-endian). A frame of `total` bytes split in `count`
//! pieces has pieces of `ceil(total / count)` bytes, the last one shorter:
//! every piece's place follows from its header, and a piece whose length
//! does not match it is refused. `count` is 2..=[`MAX_PIECES`]; `id`
//! numbers the split frames of one direction of one connection.
//!
//! The receiver keeps [`SLOTS`] frames in reassembly per link: a frame
//! whose pieces did not all come within [`TIMEOUT`], or that is pushed out
//! by newer ones, is dropped and counted (a lost piece loses the frame, as
//! a lost IP fragment does).

use std::time::{Duration, Instant};

/// The first byte of a datagram carrying a whole frame.
pub const WHOLE: u8 = 0x00;
/// The first byte of a datagram carrying a piece of a frame.
pub const FRAGMENT: u8 = 0x01;
/// Header of a whole frame.
pub const WHOLE_HEADER: usize = 1;
/// Header of a piece.
pub const FRAGMENT_HEADER: usize = 9;
/// Most pieces a frame is split into.
pub const MAX_PIECES: usize = 16;
/// Largest frame carried (jumbo frames fit).
pub const MAX_FRAME: usize = 9216;
/// Frames in reassembly at once, per link.
pub const SLOTS: usize = 8;
/// A frame not complete this long after its first piece is dropped.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    UnknownType(u8),
    ShortHeader,
    BadCount,
    BadIndex,
    BadTotal,
    BadPieceLength,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Empty => write!(f, "empty datagram"),
            Malformed::UnknownType(t) => write!(f, "unknown datagram type {t:#04x}"),
            Malformed::ShortHeader => write!(f, "fragment header cut short"),
            Malformed::BadCount => write!(f, "fragment count out of range"),
            Malformed::BadIndex => write!(f, "fragment index past its count"),
            Malformed::BadTotal => write!(f, "fragmented frame length out of range"),
            Malformed::BadPieceLength => write!(f, "fragment length does not match its header"),
        }
    }
}

/// A parsed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    Whole(&'a [u8]),
    Piece {
        id: u32,
        index: u8,
        count: u8,
        total: u16,
        piece: &'a [u8],
    },
}

/// The length of every piece but the last of a frame of `total` bytes in
/// `count` pieces.
fn stride(total: usize, count: usize) -> usize {
    total.div_ceil(count)
}

/// The byte range of piece `index`.
fn range(total: usize, count: usize, index: usize) -> (usize, usize) {
    let s = stride(total, count);
    let start = (index * s).min(total);
    (start, ((index + 1) * s).min(total))
}

/// Parses and checks a datagram.
pub fn parse(d: &[u8]) -> Result<Datagram<'_>, Malformed> {
    let (&kind, rest) = d.split_first().ok_or(Malformed::Empty)?;
    match kind {
        WHOLE => Ok(Datagram::Whole(rest)),
        FRAGMENT => {
            if d.len() < FRAGMENT_HEADER {
                return Err(Malformed::ShortHeader);
            }
            let id = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
            let (index, count) = (d[5], d[6]);
            let total = u16::from_be_bytes([d[7], d[8]]);
            let piece = &d[FRAGMENT_HEADER..];
            if !(2..=MAX_PIECES).contains(&usize::from(count)) {
                return Err(Malformed::BadCount);
            }
            if index >= count {
                return Err(Malformed::BadIndex);
            }
            let t = usize::from(total);
            if t > MAX_FRAME || t < usize::from(count) {
                return Err(Malformed::BadTotal);
            }
            let (a, b) = range(t, usize::from(count), usize::from(index));
            if b <= a || piece.len() != b - a {
                return Err(Malformed::BadPieceLength);
            }
            Ok(Datagram::Piece {
                id,
                index,
                count,
                total,
                piece,
            })
        }
        other => Err(Malformed::UnknownType(other)),
    }
}

/// How a frame of `len` bytes goes out in datagrams of at most `max`
/// bytes: `Some(1)` whole, `Some(n)` in n pieces, `None` when it cannot
/// (too long for [`MAX_PIECES`] pieces, or longer than [`MAX_FRAME`]).
pub fn pieces(len: usize, max: usize) -> Option<usize> {
    if len > MAX_FRAME {
        return None;
    }
    if len + WHOLE_HEADER <= max {
        return Some(1);
    }
    let room = max.checked_sub(FRAGMENT_HEADER).filter(|r| *r > 0)?;
    let count = len.div_ceil(room).max(2);
    (count <= MAX_PIECES && len >= count).then_some(count)
}

/// The header of piece `index` of `count` of a frame of `total` bytes,
/// and the piece's byte range in the frame.
pub fn piece_header(
    id: u32,
    index: usize,
    count: usize,
    total: usize,
) -> ([u8; FRAGMENT_HEADER], (usize, usize)) {
    let mut h = [0u8; FRAGMENT_HEADER];
    h[0] = FRAGMENT;
    h[1..5].copy_from_slice(&id.to_be_bytes());
    h[5] = index as u8;
    h[6] = count as u8;
    h[7..9].copy_from_slice(&(total as u16).to_be_bytes());
    (h, range(total, count, index))
}

/// Drops counted by a [`Reassembly`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyDrops {
    /// Frames whose pieces did not all come within [`TIMEOUT`].
    pub timed_out: u64,
    /// Frames pushed out of a full table by newer ones.
    pub evicted: u64,
    /// Pieces seen twice, or disagreeing with the first piece of their id.
    pub inconsistent: u64,
}

struct Slot {
    busy: bool,
    id: u32,
    count: u8,
    total: u16,
    /// Pieces received, one bit each.
    have: u16,
    started: Instant,
    buf: Vec<u8>,
}

/// Frames in reassembly for one link: a fixed table of [`SLOTS`]
/// buffers, made once.
pub struct Reassembly {
    slots: Vec<Slot>,
    pub drops: ReassemblyDrops,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly::new()
    }
}

impl Reassembly {
    pub fn new() -> Reassembly {
        Reassembly {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    busy: false,
                    id: 0,
                    count: 0,
                    total: 0,
                    have: 0,
                    started: Instant::now(),
                    buf: vec![0u8; MAX_FRAME],
                })
                .collect(),
            drops: ReassemblyDrops::default(),
        }
    }

    /// Frames waiting for pieces.
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.busy).count()
    }

    /// Takes a piece (as [`parse`] returned it); returns the whole frame
    /// when this piece completed it.
    pub fn add(
        &mut self,
        id: u32,
        index: u8,
        count: u8,
        total: u16,
        piece: &[u8],
        now: Instant,
    ) -> Option<&[u8]> {
        for s in self.slots.iter_mut() {
            if s.busy && now.saturating_duration_since(s.started) > TIMEOUT {
                s.busy = false;
                self.drops.timed_out += 1;
            }
        }
        let i = match self.slots.iter().position(|s| s.busy && s.id == id) {
            Some(i) => {
                let s = &self.slots[i];
                if s.count != count || s.total != total || s.have & (1 << index) != 0 {
                    self.slots[i].busy = false;
                    self.drops.inconsistent += 1;
                    return None;
                }
                i
            }
            None => {
                let i = match self.slots.iter().position(|s| !s.busy) {
                    Some(i) => i,
                    None => {
                        self.drops.evicted += 1;
                        self.slots
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, s)| s.started)
                            .map_or(0, |(i, _)| i)
                    }
                };
                let s = &mut self.slots[i];
                s.busy = true;
                s.id = id;
                s.count = count;
                s.total = total;
                s.have = 0;
                s.started = now;
                i
            }
        };
        let s = &mut self.slots[i];
        let (a, b) = range(usize::from(total), usize::from(count), usize::from(index));
        s.buf[a..b].copy_from_slice(piece);
        s.have |= 1 << index;
        if u32::from(s.have) == (1u32 << count) - 1 {
            s.busy = false;
            return Some(&s.buf[..usize::from(total)]);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a frame the way the sender does.
    fn split(frame: &[u8], max: usize, id: u32) -> Vec<Vec<u8>> {
        let n = pieces(frame.len(), max).expect("fits");
        if n == 1 {
            let mut d = vec![WHOLE];
            d.extend_from_slice(frame);
            return vec![d];
        }
        (0..n)
            .map(|i| {
                let (h, (a, b)) = piece_header(id, i, n, frame.len());
                let mut d = h.to_vec();
                d.extend_from_slice(&frame[a..b]);
                assert!(d.len() <= max);
                d
            })
            .collect()
    }

    fn feed(r: &mut Reassembly, d: &[u8], now: Instant) -> Option<Vec<u8>> {
        match parse(d).unwrap() {
            Datagram::Whole(f) => Some(f.to_vec()),
            Datagram::Piece {
                id,
                index,
                count,
                total,
                piece,
            } => r
                .add(id, index, count, total, piece, now)
                .map(<[u8]>::to_vec),
        }
    }

    fn frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + len) as u8).collect()
    }

    #[test]
    fn round_trips_every_length_in_order_and_reversed() {
        let now = Instant::now();
        for max in [1162usize, 1200, 1434, 600] {
            for len in [
                14usize, 60, 1000, 1153, 1161, 1162, 1433, 1434, 1514, 9000, 9216,
            ] {
                let f = frame(len);
                let Some(_) = pieces(len, max) else {
                    assert!(max == 600 && len > 9000, "{len} in {max}");
                    continue;
                };
                let ds = split(&f, max, len as u32);
                assert!(ds.iter().all(|d| d.len() <= max), "{len} in {max}");
                let mut r = Reassembly::new();
                let got: Vec<_> = ds.iter().filter_map(|d| feed(&mut r, d, now)).collect();
                assert_eq!(got, vec![f.clone()], "{len} in {max}");
                let got: Vec<_> = ds
                    .iter()
                    .rev()
                    .filter_map(|d| feed(&mut r, d, now))
                    .collect();
                assert_eq!(got, vec![f], "reversed {len} in {max}");
                assert_eq!(r.pending(), 0);
            }
        }
    }

    #[test]
    fn a_1514_byte_frame_in_a_1434_byte_datagram_is_two_pieces() {
        assert_eq!(pieces(1514, 1434), Some(2));
        assert_eq!(pieces(1433, 1434), Some(1));
        assert_eq!(pieces(1434, 1434), Some(2));
        assert_eq!(pieces(9217, 1434), None, "longer than a jumbo frame");
        assert_eq!(pieces(9216, 200), None, "more than 16 pieces");
        assert_eq!(pieces(100, 5), None, "no room for a piece");
    }

    #[test]
    fn interleaved_frames_reassemble_apart() {
        let now = Instant::now();
        let (a, b) = (frame(3000), frame(2500));
        let (da, db) = (split(&a, 1200, 1), split(&b, 1200, 2));
        let mut r = Reassembly::new();
        let mut got = Vec::new();
        for i in 0..3 {
            for ds in [&da, &db] {
                if let Some(d) = ds.get(i) {
                    got.extend(feed(&mut r, d, now));
                }
            }
        }
        assert_eq!(got, vec![a, b]);
    }

    #[test]
    fn malformed_datagrams_are_named() {
        let (h, _) = piece_header(9, 0, 2, 100);
        let mut ok = h.to_vec();
        ok.extend_from_slice(&[0u8; 50]);
        assert!(parse(&ok).is_ok());
        let cases: Vec<(Vec<u8>, Malformed)> = vec![
            (vec![], Malformed::Empty),
            (vec![7, 1, 2], Malformed::UnknownType(7)),
            (vec![FRAGMENT, 0, 0, 0, 1, 0, 2], Malformed::ShortHeader),
            (
                {
                    let mut d = ok.clone();
                    d[6] = 1;
                    d
                },
                Malformed::BadCount,
            ),
            (
                {
                    let mut d = ok.clone();
                    d[6] = 17;
                    d
                },
                Malformed::BadCount,
            ),
            (
                {
                    let mut d = ok.clone();
                    d[5] = 2;
                    d
                },
                Malformed::BadIndex,
            ),
            (
                {
                    let mut d = ok.clone();
                    d[7..9].copy_from_slice(&9217u16.to_be_bytes());
                    d
                },
                Malformed::BadTotal,
            ),
            (ok[..ok.len() - 1].to_vec(), Malformed::BadPieceLength),
            (
                {
                    let mut d = ok.clone();
                    d.push(0);
                    d
                },
                Malformed::BadPieceLength,
            ),
        ];
        for (d, want) in cases {
            assert_eq!(parse(&d), Err(want), "{d:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn lost_pieces_time_out_or_are_evicted_and_counted() {
        let t0 = Instant::now();
        let mut r = Reassembly::new();
        // the first piece of SLOTS + 1 frames: the oldest is pushed out
        for id in 0..=SLOTS as u32 {
            let d = &split(&frame(2000), 1200, id)[0];
            assert!(feed(&mut r, d, t0).is_none());
        }
        assert_eq!(r.drops.evicted, 1);
        assert_eq!(r.pending(), SLOTS);
        // after the timeout a new piece clears them all
        let later = t0 + TIMEOUT + Duration::from_millis(1);
        let d = &split(&frame(2000), 1200, 99)[0];
        assert!(feed(&mut r, d, later).is_none());
        assert_eq!(r.drops.timed_out, SLOTS as u64);
        assert_eq!(r.pending(), 1);
        // a duplicate piece, or one that disagrees with its id's first
        let ds = split(&frame(2000), 1200, 99);
        assert!(feed(&mut r, &ds[0], later).is_none());
        assert_eq!(r.drops.inconsistent, 1);
        let other = split(&frame(3000), 1200, 5);
        assert!(feed(&mut r, &other[0], later).is_none());
        // id 5 again, but from a frame of another length
        let wrong = split(&frame(2000), 1200, 5);
        assert!(feed(&mut r, &wrong[1], later).is_none());
        assert_eq!(r.drops.inconsistent, 2);
        assert_eq!(r.pending(), 0, "both refused ids were let go");
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly() {
        // a cheap fuzz: every datagram of up to 12 bytes over a few values
        let vals = [0u8, 1, 2, 3, 0x10, 0xff];
        let mut r = Reassembly::new();
        let now = Instant::now();
        for len in 0..12usize {
            for seed in 0..vals.len().pow(3) {
                let d: Vec<u8> = (0..len)
                    .map(|i| vals[(seed / vals.len().pow((i % 3) as u32)) % vals.len()])
                    .collect();
                if let Ok(Datagram::Piece {
                    id,
                    index,
                    count,
                    total,
                    piece,
                }) = parse(&d)
                {
                    let _ = r.add(id, index, count, total, piece, now);
                }
            }
        }
    }
}
