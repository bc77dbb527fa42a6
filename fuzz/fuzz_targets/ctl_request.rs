//! The control socket: a client's request (any version) and the switch's
//! reply. Parsing never panics; `needed` never asks for more than a
//! request can hold; a parsed v3 request emitted again parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde::ctl::{needed, parse_reply, Request, MAX_CLIENT_DESCR, MAX_REQUEST, SUN_PATH_LEN};

fuzz_target!(|data: &[u8]| {
    let n = needed(data);
    assert!(n <= MAX_REQUEST.max(data.len()));
    let _ = parse_reply(data);
    if let Ok(r) = Request::parse(data) {
        assert!(data.len() >= n.min(MAX_REQUEST), "parsed before {n} bytes");
        assert!(r.sun_path.len() <= SUN_PATH_LEN && !r.sun_path.contains(&0));
        if r.sun_path.len() < SUN_PATH_LEN && r.description.len() <= MAX_CLIENT_DESCR {
            let again = Request::parse(&Request::emit_v3(r.port, &r.sun_path, &r.description))
                .expect("an emitted request parses");
            assert_eq!((again.port, &again.sun_path), (r.port, &r.sun_path));
            assert_eq!(again.description, r.description);
        }
    }
});
