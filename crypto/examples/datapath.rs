//! The data path of vde-crypto alone, for instruction counts under
//! callgrind (repeatable whatever else the machine does) and a rough time:
//! one handshake, then N rounds of a DATA each way (seal and open on both
//! ends) with frames of LEN bytes.
//!
//! ```text
//! cargo build --release -p vde-crypto --example datapath
//! valgrind --tool=callgrind target/release/examples/datapath 20000 1400
//! valgrind --tool=callgrind target/release/examples/datapath 40000 1400
//! ```
//!
//! The difference of the two totals over 40000 (20000 more rounds, two
//! seal+open pairs each) is the cost of one seal+open; the rest is the
//! handshake and start-up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vde_crypto::{
    Client, ClientEvent, Config, Identity, KeySource, Psk, Server, ServerAuth, ServerRecv, Suite,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20000);
    let len: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1400);
    let suite = match args.next().as_deref() {
        Some("aes") => Suite::Aes256Gcm,
        _ => Suite::ChaCha20Poly1305,
    };
    let psk = Psk::from_bytes([7; 32]);
    let config = Config {
        suite,
        ..Config::default()
    };
    let server_id = Identity::from_bytes([1; 32]);
    let auth = ServerAuth::Psk {
        known: Some(server_id.public()),
        pin: None,
    };
    let mut c = Client::new(
        config.clone(),
        Identity::from_bytes([2; 32]),
        auth,
        *b"cable-01",
        psk.clone(),
        1,
        Duration::ZERO,
    );
    let mut s = Server::new(config, server_id, KeySource::Psk(psk));
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
    let now = Duration::from_millis(1);
    let (mut a, mut b, mut o) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(ClientEvent::Send) = c.poll(now, &mut a) {
        if let Ok(ServerRecv::Reply(_)) = s.receive(&a, addr, now, &mut b) {
            let _ = c.receive(&b, now, &mut o);
        }
    }
    let Some((peer, ..)) = s.peers().next() else {
        eprintln!("no cable came up");
        std::process::exit(1);
    };
    let frame = vec![0x5a; len];
    let mut opened = 0u64;
    let t = Instant::now();
    for _ in 0..rounds {
        if c.seal(&frame, now, &mut a).is_ok() && s.receive(&a, addr, now, &mut b).is_ok() {
            opened += 1;
        }
        if s.seal(peer, &frame, now, &mut a).is_ok() && c.receive(&a, now, &mut o).is_ok() {
            opened += 1;
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (2 * rounds).max(1) as f64;
    println!("{opened} frames of {len} bytes ({suite}) sealed and opened, {per:.0} ns each");
}
