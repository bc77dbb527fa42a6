//! The vde_switch control-socket protocol (protocol spec §1): the request a
//! client sends on `<ctldir>/ctl` and the 110-byte reply naming the
//! switch's data socket. Host byte order (little-endian here).

use crate::core::PortRequest;

/// First four bytes of every request.
pub const MAGIC: u32 = 0xfeed_face;
/// Length of `struct sockaddr_un` (family + 108-byte path).
pub const SOCKADDR_LEN: usize = 110;
/// Length of the path field of `struct sockaddr_un`.
pub const SUN_PATH_LEN: usize = 108;
/// Fixed part of a version 3 request.
pub const V3_HEADER: usize = 122;
/// Fixed part of a version 1 request.
pub const V1_HEADER: usize = 124;
/// The switch reads at most this many bytes of a request.
pub const MAX_REQUEST: usize = 256;
/// Longest description a client sends (libvdeplug's MAXDESCR - 1).
pub const MAX_CLIENT_DESCR: usize = 127;

const AF_UNIX: u16 = 1;

/// A parsed control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: u32,
    pub port: PortRequest,
    /// Path of the client's data socket (empty if the client sent none).
    pub sun_path: Vec<u8>,
    pub description: String,
}

/// Why a request is refused. The connection is closed either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request too short: {0} bytes")]
    Short(usize),
    #[error("V0 request not supported (bad magic {0:#010x})")]
    BadMagic(u32),
    #[error("Request for a version {0} port, which this vde_switch doesn't support")]
    BadVersion(u32),
    #[error("bad request type {0:#x}")]
    BadType(u32),
    #[error("client address family {0} is not AF_UNIX")]
    BadFamily(u16),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// How many bytes a request needs before it can be parsed, given what has
/// arrived so far (the current length if it is already known to be bad).
pub fn needed(buf: &[u8]) -> usize {
    if buf.len() < 8 {
        return 8;
    }
    if u32_at(buf, 0) != MAGIC {
        return buf.len();
    }
    match u32_at(buf, 4) {
        3 => V3_HEADER,
        0 | 1 => V1_HEADER,
        _ => buf.len(),
    }
}

impl Request {
    /// Parses a request of at most [`MAX_REQUEST`] bytes (the rest is the
    /// description, cut at the first NUL).
    pub fn parse(buf: &[u8]) -> Result<Request, RequestError> {
        let buf = &buf[..buf.len().min(MAX_REQUEST)];
        if buf.len() < 8 {
            return Err(RequestError::Short(buf.len()));
        }
        let magic = u32_at(buf, 0);
        if magic != MAGIC {
            return Err(RequestError::BadMagic(magic));
        }
        let v = u32_at(buf, 4);
        let (version, port, addr_at, descr_at) = match v {
            3 => {
                if buf.len() < V3_HEADER {
                    return Err(RequestError::Short(buf.len()));
                }
                let ty = u32_at(buf, 8);
                let port = match (ty & 0xff, ty >> 8) {
                    (0, 0) => PortRequest::Any,
                    (0, n) => PortRequest::Port(n),
                    (1, _) => PortRequest::Port0,
                    _ => return Err(RequestError::BadType(ty)),
                };
                (3, port, 12, V3_HEADER)
            }
            0 | 1 => {
                if buf.len() < V1_HEADER {
                    return Err(RequestError::Short(buf.len()));
                }
                let port = if v == 1 {
                    PortRequest::Port0
                } else {
                    PortRequest::Any
                };
                (1, port, 14, V1_HEADER)
            }
            v => return Err(RequestError::BadVersion(v)),
        };
        let family = u16::from_le_bytes([buf[addr_at], buf[addr_at + 1]]);
        let path = &buf[addr_at + 2..addr_at + 2 + SUN_PATH_LEN];
        // An unnamed or abstract address (first byte NUL) reads as empty.
        let sun_path: Vec<u8> = path.iter().take_while(|&&c| c != 0).copied().collect();
        if family != AF_UNIX && !(family == 0 && sun_path.is_empty()) {
            return Err(RequestError::BadFamily(family));
        }
        let d = &buf[descr_at..];
        let d = &d[..d.iter().position(|&c| c == 0).unwrap_or(d.len())];
        Ok(Request {
            version,
            port,
            sun_path,
            description: String::from_utf8_lossy(d).into_owned(),
        })
    }

    /// Emits a version 3 request, as libvdeplug does (no padding after the
    /// description).
    pub fn emit_v3(port: PortRequest, sun_path: &[u8], descr: &str) -> Vec<u8> {
        let mut b = Vec::with_capacity(V3_HEADER + descr.len());
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        let ty: u32 = match port {
            PortRequest::Any => 0,
            PortRequest::Port0 => 1,
            PortRequest::Port(n) => n << 8,
        };
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&AF_UNIX.to_le_bytes());
        let mut path = [0u8; SUN_PATH_LEN];
        let n = sun_path.len().min(SUN_PATH_LEN - 1);
        path[..n].copy_from_slice(&sun_path[..n]);
        b.extend_from_slice(&path);
        let d = descr.as_bytes();
        b.extend_from_slice(&d[..d.len().min(MAX_CLIENT_DESCR)]);
        b
    }
}

/// The 110-byte reply: AF_UNIX + the NUL-padded data socket path.
pub fn emit_reply(path: &[u8]) -> [u8; SOCKADDR_LEN] {
    let mut r = [0u8; SOCKADDR_LEN];
    r[0..2].copy_from_slice(&AF_UNIX.to_le_bytes());
    let n = path.len().min(SUN_PATH_LEN - 1);
    r[2..2 + n].copy_from_slice(&path[..n]);
    r
}

/// Parses a reply; `None` unless it is 110 bytes of AF_UNIX with a path.
pub fn parse_reply(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() != SOCKADDR_LEN || u16::from_le_bytes([b[0], b[1]]) != AF_UNIX {
        return None;
    }
    let p: Vec<u8> = b[2..].iter().take_while(|&&c| c != 0).copied().collect();
    (!p.is_empty()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request the Debian vde_plug sent (protocol spec §1.3).
    fn observed() -> Vec<u8> {
        let mut b = vec![0xce, 0xfa, 0xed, 0xfe, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let mut path = b"/tmp/sw1/.05909-00000".to_vec();
        path.resize(108, 0);
        b.extend_from_slice(&path);
        b.extend_from_slice(b"myplug user=root pid=5909");
        assert_eq!(b.len(), 147);
        b
    }

    #[test]
    fn parses_the_observed_request() {
        let r = Request::parse(&observed()).unwrap();
        assert_eq!(r.version, 3);
        assert_eq!(r.port, PortRequest::Any);
        assert_eq!(r.sun_path, b"/tmp/sw1/.05909-00000");
        assert_eq!(r.description, "myplug user=root pid=5909");
    }

    #[test]
    fn emit_parse_round_trip() {
        for port in [
            PortRequest::Any,
            PortRequest::Port0,
            PortRequest::Port(12),
            PortRequest::Port(70000),
        ] {
            let b = Request::emit_v3(port, b"/tmp/x/.1-2", "QEMU");
            let r = Request::parse(&b).unwrap();
            assert_eq!(r.port, port);
            assert_eq!(r.sun_path, b"/tmp/x/.1-2");
            assert_eq!(r.description, "QEMU");
        }
        let b = Request::emit_v3(PortRequest::Port(12), b"/p", "");
        assert_eq!(&b[8..12], &[0, 0x0c, 0, 0]);
        let b = Request::emit_v3(PortRequest::Port0, b"/p", "");
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(
            Request::emit_v3(PortRequest::Any, b"/p", &"x".repeat(300)).len(),
            V3_HEADER + 127
        );
    }

    #[test]
    fn version_1_requests() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0; 6]);
        b.extend_from_slice(&1u16.to_le_bytes());
        let mut path = b"/tmp/c".to_vec();
        path.resize(108, 0);
        b.extend_from_slice(&path);
        b.extend_from_slice(b"old\0junk");
        let r = Request::parse(&b).unwrap();
        assert_eq!((r.version, r.port), (1, PortRequest::Port0));
        assert_eq!(r.description, "old");
        b[4] = 0;
        assert_eq!(Request::parse(&b).unwrap().port, PortRequest::Any);
    }

    #[test]
    fn bad_requests() {
        let mut b = observed();
        assert_eq!(Request::parse(&b[..7]), Err(RequestError::Short(7)));
        assert_eq!(Request::parse(&b[..121]), Err(RequestError::Short(121)));
        b[4] = 2;
        assert_eq!(Request::parse(&b), Err(RequestError::BadVersion(2)));
        b[4] = 4;
        assert_eq!(Request::parse(&b), Err(RequestError::BadVersion(4)));
        b[4] = 3;
        b[8] = 7;
        assert_eq!(Request::parse(&b), Err(RequestError::BadType(7)));
        b[8] = 0;
        b[12] = 2;
        assert_eq!(Request::parse(&b), Err(RequestError::BadFamily(2)));
        b[0] = 0;
        assert!(matches!(Request::parse(&b), Err(RequestError::BadMagic(_))));
        // an all-garbage buffer of any size never panics
        for n in 0..300 {
            let g: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = Request::parse(&g);
            let _ = needed(&g);
        }
    }

    #[test]
    fn needed_bytes() {
        let b = observed();
        assert_eq!(needed(&b[..3]), 8);
        assert_eq!(needed(&b[..8]), V3_HEADER);
    }

    #[test]
    fn reply_round_trip() {
        let r = emit_reply(b"/tmp/sw1/001.6");
        assert_eq!(r.len(), 110);
        assert_eq!(&r[..4], &[1, 0, b'/', b't']);
        assert_eq!(parse_reply(&r).unwrap(), b"/tmp/sw1/001.6");
        assert_eq!(parse_reply(&r[..100]), None);
    }
}

/// Property tests: every request and reply emitted parses back.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn port() -> impl Strategy<Value = PortRequest> {
        prop_oneof![
            Just(PortRequest::Any),
            Just(PortRequest::Port0),
            (1u32..1 << 24).prop_map(PortRequest::Port),
        ]
    }

    proptest! {
        #[test]
        fn request_emit_parse(
            port in port(),
            path in proptest::collection::vec(1u8..=255, 0..SUN_PATH_LEN),
            descr in "[^\\x00]{0,30}",
        ) {
            let r = Request::parse(&Request::emit_v3(port, &path, &descr)).unwrap();
            prop_assert_eq!(r, Request { version: 3, port, sun_path: path, description: descr });
        }

        #[test]
        fn request_emit_cuts_long_fields(
            path in proptest::collection::vec(1u8..=255, SUN_PATH_LEN..300),
            descr in "[a-z ]{128,200}",
        ) {
            let r = Request::parse(&Request::emit_v3(PortRequest::Any, &path, &descr)).unwrap();
            prop_assert_eq!(&r.sun_path[..], &path[..SUN_PATH_LEN - 1]);
            prop_assert_eq!(&r.description[..], &descr[..MAX_CLIENT_DESCR]);
        }

        #[test]
        fn reply_emit_parse(path in proptest::collection::vec(1u8..=255, 1..SUN_PATH_LEN)) {
            prop_assert_eq!(parse_reply(&emit_reply(&path)), Some(path));
        }
    }
}
