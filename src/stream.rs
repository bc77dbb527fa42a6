//! Stream framing (protocol spec §2): a 2-byte big-endian length, then the
//! frame. Used by vde_plug on stdin/stdout, dpipe cables, ssh cables and
//! cmd://. Sans-IO: bytes in, frames out.

/// Largest record libvdestream accepts (VDE_ETHBUFSIZE + 2).
pub const MAX_RECORD: usize = crate::frame::MAX_JUMBO + 2;

/// What the decoder found in the bytes pushed into it.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Frame(&'a [u8]),
    /// A length over the maximum: the rest of that read was discarded
    /// (libvdestream does the same; the stream may have lost sync).
    LengthError {
        len: usize,
    },
}

/// Reassembles records split across reads and splits reads holding
/// several records. Zero-length records are skipped.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    /// Records refused for their length.
    pub length_errors: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_RECORD)
    }
}

impl Decoder {
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::with_capacity(2 * (max + 2)),
            start: 0,
            max,
            length_errors: 0,
        }
    }

    /// Feeds one read's worth of bytes and calls `f` for every complete
    /// record (the bytes of a partial record are kept for the next call).
    pub fn push(&mut self, data: &[u8], mut f: impl FnMut(Item<'_>)) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        loop {
            let avail = &self.buf[self.start..];
            if avail.len() < 2 {
                break;
            }
            let len = u16::from_be_bytes([avail[0], avail[1]]) as usize;
            if len > self.max {
                self.length_errors += 1;
                f(Item::LengthError { len });
                self.buf.clear();
                self.start = 0;
                return;
            }
            if avail.len() < 2 + len {
                break;
            }
            let rec = self.start + 2;
            self.start += 2 + len;
            if len > 0 {
                f(Item::Frame(&self.buf[rec..rec + len]));
            }
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes of an incomplete record waiting for the rest.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Writes the record for `frame` into `out` (cleared first); `None` if the
/// frame is too long for the stream.
pub fn encode(frame: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if frame.len() > u16::MAX as usize || frame.len() + 2 > MAX_RECORD + 2 {
        return None;
    }
    out.clear();
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(d: &mut Decoder, data: &[u8]) -> Vec<Result<Vec<u8>, usize>> {
        let mut v = Vec::new();
        d.push(data, |i| match i {
            Item::Frame(f) => v.push(Ok(f.to_vec())),
            Item::LengthError { len } => v.push(Err(len)),
        });
        v
    }

    #[test]
    fn observed_record_and_round_trip() {
        let frame = vec![0xabu8; 22];
        let mut rec = Vec::new();
        encode(&frame, &mut rec).unwrap();
        assert_eq!(&rec[..2], &[0x00, 0x16]);
        let mut d = Decoder::default();
        assert_eq!(collect(&mut d, &rec), vec![Ok(frame)]);
    }

    #[test]
    fn split_and_merged_records() {
        let mut all = Vec::new();
        let mut rec = Vec::new();
        for n in [14usize, 60, 1518, 9234] {
            encode(&vec![n as u8; n], &mut rec).unwrap();
            all.extend_from_slice(&rec);
        }
        // byte by byte
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &all {
            got.extend(collect(&mut d, std::slice::from_ref(b)));
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].as_ref().unwrap().len(), 9234);
        assert_eq!(d.pending(), 0);
        // all at once
        let mut d = Decoder::default();
        assert_eq!(collect(&mut d, &all).len(), 4);
        // in odd chunks
        let mut d = Decoder::default();
        let n: usize = all.chunks(777).map(|c| collect(&mut d, c).len()).sum();
        assert_eq!(n, 4);
    }

    #[test]
    fn zero_length_skipped_and_oversized_refused() {
        let mut d = Decoder::default();
        let mut data = vec![0, 0];
        data.extend_from_slice(&[0, 14]);
        data.extend_from_slice(&[1; 14]);
        assert_eq!(collect(&mut d, &data), vec![Ok(vec![1; 14])]);
        // a length over the maximum drops the rest of that read
        let mut bad = vec![0x24, 0x15]; // 9237
        bad.extend_from_slice(&[0, 14]);
        bad.extend_from_slice(&[2; 14]);
        assert_eq!(collect(&mut d, &bad), vec![Err(9237)]);
        assert_eq!(d.length_errors, 1);
        // the next read decodes normally
        let mut ok = vec![0, 14];
        ok.extend_from_slice(&[3; 14]);
        assert_eq!(collect(&mut d, &ok), vec![Ok(vec![3; 14])]);
        let mut rec = Vec::new();
        assert!(encode(&vec![0; 9237], &mut rec).is_none());
        assert!(encode(&vec![0; 9236], &mut rec).is_some());
    }
}

/// Property tests: records encoded and cut into arbitrary reads decode to
/// the same frames.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_decode_across_any_reads(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1600), 0..8),
            cuts in proptest::collection::vec(1usize..3000, 0..16),
        ) {
            let mut stream = Vec::new();
            let mut rec = Vec::new();
            for f in &frames {
                encode(f, &mut rec).unwrap();
                prop_assert_eq!(rec.len(), f.len() + 2);
                stream.extend_from_slice(&rec);
            }
            let mut d = Decoder::default();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let (read, more) = rest.split_at((*c).min(rest.len()));
                d.push(read, |i| match i {
                    Item::Frame(f) => got.push(f.to_vec()),
                    Item::LengthError { len } => panic!("length error {len}"),
                });
                rest = more;
            }
            // zero-length records are skipped
            let want: Vec<Vec<u8>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(d.pending(), 0);
        }

        #[test]
        fn encode_refuses_only_what_does_not_fit(len in MAX_RECORD - 4..MAX_RECORD + 4) {
            let mut rec = Vec::new();
            prop_assert_eq!(encode(&vec![7; len], &mut rec).is_some(), len <= MAX_RECORD);
        }
    }
}
