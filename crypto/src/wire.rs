//! Packet layout constants of `vde-crypto/2` and bounds-safe parsing helpers.

use crate::Drop;

/// Type byte of INIT.
pub const TYPE_INIT: u8 = 0x01;
/// Type byte of RESP.
pub const TYPE_RESP: u8 = 0x02;
/// Type byte of COOKIE (server -> client, under load).
pub const TYPE_COOKIE: u8 = 0x03;
/// Type byte of DATA.
pub const TYPE_DATA: u8 = 0x04;
/// Type byte of KEEPALIVE.
pub const TYPE_KEEPALIVE: u8 = 0x05;
/// Type byte of CLOSE.
pub const TYPE_CLOSE: u8 = 0x06;
/// Type byte of KEYREQ (client -> server, PSK-file mode).
pub const TYPE_KEYREQ: u8 = 0x07;
/// Type byte of KEYRESP (server -> client, PSK-file mode).
pub const TYPE_KEYRESP: u8 = 0x08;

/// Bytes of INIT's encrypted payload: the cable id and the timestamp.
pub const INIT_PAYLOAD: usize = 16;
/// Offset of the Noise message in INIT.
pub const INIT_NOISE_OFFSET: usize = 8;
/// Offset of mac1 in INIT (mac1 covers the bytes before it).
pub const INIT_MAC1_OFFSET: usize = INIT_NOISE_OFFSET + crate::noise::msg1_len(INIT_PAYLOAD);
/// Offset of mac2 in INIT (mac2 covers the bytes before it).
pub const INIT_MAC2_OFFSET: usize = INIT_MAC1_OFFSET + MAC_LEN;
/// Length of INIT.
pub const INIT_LEN: usize = INIT_MAC2_OFFSET + MAC_LEN;
/// Bytes of RESP's encrypted payload: a copy of its first 12 bytes.
pub const RESP_PAYLOAD: usize = 12;
/// Offset of the Noise message in RESP.
pub const RESP_NOISE_OFFSET: usize = 12;
/// Length of RESP.
pub const RESP_LEN: usize = RESP_NOISE_OFFSET + crate::noise::msg2_len(RESP_PAYLOAD);
/// Length of COOKIE.
pub const COOKIE_LEN: usize = 8 + 12 + MAC_LEN + TAG_LEN;
/// Length of KEYREQ.
pub const KEYREQ_LEN: usize = 4 + 32 + MAC_LEN;
/// Length of KEYRESP.
pub const KEYRESP_LEN: usize = 4 + 32 + MAC_LEN;
/// Length of the truncated MACs (mac1, mac2, the key request's).
pub const MAC_LEN: usize = 16;
/// Length of the transport header (the AAD).
pub const HEADER_LEN: usize = 16;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// Bytes a transport packet adds to its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// A keypair never seals a message with a counter at or above this.
pub const REJECT_AFTER_MESSAGES: u64 = 1 << 60;

/// Offset of the suite id in INIT and RESP.
pub const SUITE_OFFSET: usize = 1;

/// Checks the type byte and the reserved bytes (bytes 2..4 of INIT and
/// RESP, whose byte 1 is the suite id checked later; bytes 1..4 of transport
/// packets); returns the type.
pub(crate) fn check_header(datagram: &[u8]) -> Result<u8, Drop> {
    match datagram {
        [ty, r1, r2, r3, ..] => {
            let r1 = match *ty {
                TYPE_INIT | TYPE_RESP => 0,
                TYPE_COOKIE | TYPE_DATA | TYPE_KEEPALIVE | TYPE_CLOSE | TYPE_KEYREQ
                | TYPE_KEYRESP => *r1,
                _ => return Err(Drop::BadType),
            };
            if (r1 | *r2 | *r3) != 0 {
                return Err(Drop::BadReserved);
            }
            Ok(*ty)
        }
        _ => Err(Drop::TooShort),
    }
}

/// A parsed transport header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transport {
    pub ty: u8,
    pub receiver: u32,
    pub counter: u64,
}

/// Parses the header of a transport packet whose type byte was already
/// checked by [`check_header`].
pub(crate) fn parse_transport(datagram: &[u8]) -> Result<Transport, Drop> {
    if datagram.len() < OVERHEAD {
        return Err(Drop::TooShort);
    }
    let h: &[u8; HEADER_LEN] = datagram
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(Drop::TooShort)?;
    let ty = h[0];
    if ty != TYPE_DATA && datagram.len() != OVERHEAD {
        return Err(Drop::BadLength);
    }
    Ok(Transport {
        ty,
        receiver: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        counter: u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
    })
}

/// Writes a transport header.
pub(crate) fn transport_header(ty: u8, receiver: u32, counter: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = ty;
    h[4..8].copy_from_slice(&receiver.to_le_bytes());
    h[8..16].copy_from_slice(&counter.to_le_bytes());
    h
}

/// The AEAD nonce of a counter: 4 zero bytes, then the counter little-endian.
pub(crate) fn nonce_bytes(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Property tests: transport headers parse back, with the length rules.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn transport_header_parse(
            ty in prop_oneof![Just(TYPE_DATA), Just(TYPE_KEEPALIVE), Just(TYPE_CLOSE)],
            receiver in any::<u32>(),
            counter in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), TAG_LEN..200),
        ) {
            let mut d = transport_header(ty, receiver, counter).to_vec();
            d.extend_from_slice(&body);
            prop_assert_eq!(check_header(&d), Ok(ty));
            let r = parse_transport(&d);
            if ty == TYPE_DATA || d.len() == OVERHEAD {
                let t = r.unwrap();
                prop_assert_eq!((t.ty, t.receiver, t.counter), (ty, receiver, counter));
            } else {
                prop_assert_eq!(r.unwrap_err(), Drop::BadLength);
            }
            prop_assert_eq!(parse_transport(&d[..OVERHEAD - 1]).unwrap_err(), Drop::TooShort);
        }

        #[test]
        fn nonce_is_the_counter(counter in any::<u64>()) {
            let n = nonce_bytes(counter);
            prop_assert_eq!(&n[..4], &[0u8; 4]);
            prop_assert_eq!(u64::from_le_bytes(n[4..].try_into().unwrap()), counter);
        }
    }
}
