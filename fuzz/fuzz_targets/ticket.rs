//! The ticket line a cryptcab client sends through ssh
//! (`vde-crypto/2 <cable id> <key> <client identity>`): parsing never panics, and a ticket
//! that parses prints as a line that parses to the same ticket.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde_overlay::cryptcab::ticket::Ticket;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Ticket::parse(line) {
        let again = Ticket::parse(&t.line()).expect("a printed ticket parses");
        assert_eq!(
            (again.key_id, again.key, again.client),
            (t.key_id, t.key, t.client)
        );
    }
});
