//! wirefilter's value syntax `[LR|RL]VALUE[+PLUS][K|M|G][U|N][[NODE]]`:
//! parsing never panics and gives finite numbers, and a value printed the
//! way `showinfo` prints it (`%g+%g%c`, 6 significant digits) parses back
//! to the same distribution and to numbers within that precision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vde::wirefilter::value::parse;

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-5 * a.abs().max(b.abs())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = parse(text) {
        let v = spec.value;
        assert!(v.is_finite());
        let shown = v.to_string();
        let again = parse(&shown).unwrap_or_else(|e| panic!("{shown:?} does not parse: {e}"));
        assert_eq!(again.value.dist, v.dist);
        assert!(close(again.value.value, v.value), "{shown} vs {v:?}");
        assert!(close(again.value.plus, v.plus), "{shown} vs {v:?}");
    }
});
