//! The 2-byte length stream framing (vde_plug's stdin/stdout, dpipe, ssh
//! and cmd:// cables): a decoder fed the input in reads of fuzzed sizes.
//! It never panics, gives frames no longer than its maximum, and every
//! frame it gives re-encodes to a record that decodes to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde::stream::{encode, Decoder, Item, MAX_RECORD};

fuzz_target!(|data: &[u8]| {
    let Some((&sizes, rest)) = data.split_first() else {
        return;
    };
    // a small maximum too, so that length errors happen often
    let max = if sizes & 0x80 != 0 { 64 } else { MAX_RECORD };
    let mut dec = Decoder::new(max);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut errors = 0u64;
    let step = usize::from(sizes & 0x7f) + 1;
    for read in rest.chunks(step) {
        dec.push(read, |item| match item {
            Item::Frame(f) => {
                assert!(!f.is_empty() && f.len() <= max);
                frames.push(f.to_vec());
            }
            Item::LengthError { len } => {
                assert!(len > max);
                errors += 1;
            }
        });
        assert!(dec.pending() < max + 2);
    }
    assert_eq!(dec.length_errors, errors);
    let mut rec = Vec::new();
    for f in &frames {
        encode(f, &mut rec).expect("a decoded frame fits a record");
        let mut again = Decoder::new(max);
        let mut got = Vec::new();
        again.push(&rec, |item| {
            if let Item::Frame(g) = item {
                got.push(g.to_vec());
            }
        });
        assert_eq!(got, std::slice::from_ref(f));
    }
});
