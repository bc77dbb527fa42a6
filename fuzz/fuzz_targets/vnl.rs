//! Virtual Network Locators: the scheme split, nesting, quoting and
//! escapes, path-style and address-style options, and the parsers of the
//! schemes that take more than a path (cryptcab, quic, slirp, vxvde,
//! udp). Parsing
//! opens nothing and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde::vnl::parse::{
    addr_style, addr_style_paths, parse_size, path_style, split_nested, unescape,
};
use vde::slirp::options as slirp_options;
use vde::vnl::{cryptcab, node, quic, vde as vde_scheme, vxvde, Locator};
use vde_overlay::udp::UdpSpec;

fn group_gid(name: &str) -> Option<u32> {
    (name == "vde").then_some(4242)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loc = Locator::split(text);
    assert_eq!(loc.to_string(), text);
    let _ = unescape(&loc.rest);
    let _ = parse_size(&loc.rest);
    let _ = split_nested(&loc.rest, text);
    let _ = path_style(&loc.rest, vde_scheme::KEYS, "vde", text);
    let _ = path_style(&loc.rest, node::SWITCH_KEYS, "switch", text);
    let _ = addr_style(&loc.rest, vxvde::KEYS, "vxvde", text);
    let _ = addr_style_paths(&loc.rest, vxvde::KEYS, &["psk"], "cryptcab", text);
    if let Ok(spec) = cryptcab::spec(&loc) {
        assert!(spec.mtu == 0 || spec.mtu >= 576);
        assert!(!spec.remote.as_deref().is_some_and(|r| r.starts_with('-')));
    }
    let _ = cryptcab::split_dest(&loc.rest);
    let _ = cryptcab::parse_port(&loc.rest, true);
    if let Ok(cfg) = vxvde::config(&loc, &group_gid, 1000) {
        assert!(cfg.vni <= vde_overlay::vxvde::MAX_VNI);
        assert!(cfg.port > 0 && cfg.ttl <= 255);
    }
    let _ = loc.rest.parse::<UdpSpec>();
    let _ = quic::spec(&loc);
    let _ = slirp_options::from_locator(&loc);
    let _ = slirp_options::parse_net(&loc.rest);
    let _ = slirp_options::parse_forward(&loc.rest, false);
    let _ = slirp_options::parse_forward(&loc.rest, true);
    let _ = slirp_options::parse_guestfwd(&loc.rest, std::net::Ipv4Addr::new(10, 0, 2, 4), true);
});
