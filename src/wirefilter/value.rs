//! The wirefilter value syntax `[LR|RL]VALUE[+PLUS][K|M|G][U|N][[NODE]]`
//! and the C `%g` formatter `showinfo` prints values with.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use thiserror::Error;

use super::rng::Rng;
use super::Dir;

/// How a value is randomised around its centre on every use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dist {
    /// value + plus × U(−1, 1) (`U`, the default).
    #[default]
    Uniform,
    /// value + (plus/3) × N(0, 1), unclamped (`N`).
    Normal,
}

impl Dist {
    /// The letter `showinfo` prints: `U` or `N`.
    pub fn letter(self) -> char {
        match self {
            Dist::Uniform => 'U',
            Dist::Normal => 'N',
        }
    }
}

/// One parameter value: a centre, a variation and a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WireValue {
    /// Centre value.
    pub value: f64,
    /// Variation ("plus"); 0 means no randomness.
    pub plus: f64,
    /// Distribution of the variation.
    pub dist: Dist,
}

impl WireValue {
    /// The all-zero value every parameter starts with (`0+0U`).
    pub const ZERO: WireValue = WireValue {
        value: 0.0,
        plus: 0.0,
        dist: Dist::Uniform,
    };

    /// A value without variation.
    pub fn fixed(value: f64) -> WireValue {
        WireValue {
            value,
            ..WireValue::ZERO
        }
    }

    /// A value with a variation.
    pub fn new(value: f64, plus: f64, dist: Dist) -> WireValue {
        WireValue { value, plus, dist }
    }

    /// value + plus (the C tool's `max_wirevalue`).
    pub fn max(&self) -> f64 {
        self.value + self.plus
    }

    /// value − plus (the C tool's `min_wirevalue`).
    pub fn min(&self) -> f64 {
        self.value - self.plus
    }

    /// True if both numbers are finite.
    pub fn is_finite(&self) -> bool {
        self.value.is_finite() && self.plus.is_finite()
    }

    /// One random draw (the C tool's `compute_wirevalue`).
    pub(crate) fn sample(&self, rng: &mut Rng) -> f64 {
        if self.plus == 0.0 {
            return self.value;
        }
        match self.dist {
            Dist::Uniform => self.value + self.plus * (rng.f64() * 2.0 - 1.0),
            Dist::Normal => self.value + self.plus / 3.0 * rng.std_normal(),
        }
    }
}

/// Prints `%g+%g%c`, e.g. `20+5N`, as `showinfo` does.
impl fmt::Display for WireValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}{}",
            G(self.value),
            G(self.plus),
            self.dist.letter()
        )
    }
}

/// Which directions a value applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirSel {
    /// No prefix: both directions.
    Both,
    /// `LR` or `RL` prefix: one direction.
    Only(Dir),
}

impl DirSel {
    /// True if the selection includes `dir`.
    pub fn includes(self, dir: Dir) -> bool {
        match self {
            DirSel::Both => true,
            DirSel::Only(d) => d == dir,
        }
    }
}

/// A parsed value argument: which directions, the value, which Markov node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireSpec {
    /// `LR`, `RL` or both.
    pub dirs: DirSel,
    /// The value, already multiplied by K/M/G.
    pub value: WireValue,
    /// The `[n]` Markov node (0 when absent). Checked against the number of
    /// nodes when applied, not when parsed.
    pub node: usize,
}

/// Why a value argument did not parse. Each variant carries the offending
/// text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// Nothing but blanks.
    #[error("empty value")]
    Empty,
    /// The `[n]` suffix is not a node number.
    #[error("bad Markov node \"{0}\": expected [N] with N a node number")]
    BadNode(String),
    /// The centre value is not a finite number (carries the whole text).
    #[error("bad number in \"{0}\"")]
    BadValue(String),
    /// The text after `+` is not a finite number.
    #[error("bad variation \"{0}\" after '+'")]
    BadPlus(String),
    /// Something follows the number(s) that is no K/M/G, U/N or `[n]`.
    #[error("unexpected \"{0}\" after the number")]
    Trailing(String),
}

impl FromStr for WireSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<WireSpec, ValueError> {
        parse(s)
    }
}

/// Parses `[LR|RL]VALUE[+PLUS][K|M|G][U|N][[NODE]]`.
///
/// Surrounding blanks are ignored, as are blanks between the parts. K/M/G
/// (either case) are binary (2¹⁰, 2²⁰, 2³⁰) and scale both VALUE and PLUS;
/// U/N (either case) must come last before `[n]`; `LR`/`RL` are upper case.
pub fn parse(s: &str) -> Result<WireSpec, ValueError> {
    let whole = s.trim();
    let mut rest = whole;
    if rest.is_empty() {
        return Err(ValueError::Empty);
    }

    let mut node = 0;
    if let Some(inner) = rest.strip_suffix(']') {
        let open = inner
            .rfind('[')
            .ok_or_else(|| ValueError::BadNode(rest.to_owned()))?;
        let idx = inner[open + 1..].trim();
        if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::BadNode(rest[open..].to_owned()));
        }
        node = idx
            .parse()
            .map_err(|_| ValueError::BadNode(rest[open..].to_owned()))?;
        rest = inner[..open].trim_end();
    }

    let mut dist = Dist::Uniform;
    if let Some(r) = rest.strip_suffix(['u', 'U']) {
        rest = r;
    } else if let Some(r) = rest.strip_suffix(['n', 'N']) {
        dist = Dist::Normal;
        rest = r;
    }

    let mut mult = 1.0;
    for (letters, m) in [
        (['k', 'K'], 1024.0),
        (['m', 'M'], 1_048_576.0),
        (['g', 'G'], 1_073_741_824.0),
    ] {
        if let Some(r) = rest.strip_suffix(letters) {
            mult = m;
            rest = r;
            break;
        }
    }
    rest = rest.trim_end();

    let mut dirs = DirSel::Both;
    if let Some(r) = rest.strip_prefix("LR") {
        dirs = DirSel::Only(Dir::LR);
        rest = r.trim_start();
    } else if let Some(r) = rest.strip_prefix("RL") {
        dirs = DirSel::Only(Dir::RL);
        rest = r.trim_start();
    }

    let (value, used) = scan_number(rest).ok_or_else(|| ValueError::BadValue(whole.to_owned()))?;
    rest = rest[used..].trim_start();
    let mut plus = 0.0;
    if let Some(r) = rest.strip_prefix('+') {
        let r = r.trim_start();
        let (p, used) = scan_number(r).ok_or_else(|| ValueError::BadPlus(r.to_owned()))?;
        plus = p;
        rest = r[used..].trim_start();
    }
    if !rest.is_empty() {
        return Err(ValueError::Trailing(rest.to_owned()));
    }
    let value = WireValue::new(value * mult, plus * mult, dist);
    if !value.is_finite() {
        return Err(ValueError::BadValue(whole.to_owned()));
    }
    Ok(WireSpec { dirs, value, node })
}

/// Scans a decimal floating-point number at the start of `s` the way
/// `strtod` does (sign, digits, optional fraction, optional exponent that is
/// only taken when complete). Returns the value and the bytes used.
fn scan_number(s: &str) -> Option<(f64, usize)> {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - start)
    };
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let (after_int, n_int) = digits(i);
    i = after_int;
    let mut n_frac = 0;
    if b.get(i) == Some(&b'.') {
        let (after_frac, n) = digits(i + 1);
        n_frac = n;
        i = after_frac;
    }
    if n_int + n_frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let (after_exp, n_exp) = digits(j);
        if n_exp > 0 {
            i = after_exp;
        }
    }
    let v: f64 = s[..i].parse().ok()?;
    v.is_finite().then_some((v, i))
}

/// Formats like C's `printf("%g", v)`: 6 significant digits, fixed notation
/// for exponents −4..=5 and `d.ddddde±XX` otherwise, trailing zeros removed.
///
/// ```
/// use vde::wirefilter::G;
/// assert_eq!(G(1048576.0).to_string(), "1.04858e+06");
/// assert_eq!(G(0.0001).to_string(), "0.0001");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct G(pub f64);

impl fmt::Display for G {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const P: i32 = 6;
        let v = self.0;
        let sign = if v.is_sign_negative() { "-" } else { "" };
        if v.is_nan() {
            return write!(f, "{sign}nan");
        }
        if v.is_infinite() {
            return write!(f, "{sign}inf");
        }
        if v == 0.0 {
            return write!(f, "{sign}0");
        }
        // Rust's `{:.5e}` rounds the exact binary value half-to-even, as
        // glibc does; it gives the digits and the exponent X of `%e`.
        let sci = format!("{:.*e}", (P - 1) as usize, v.abs());
        let (mantissa, exp) = sci.split_once('e').ok_or(fmt::Error)?;
        let x: i32 = exp.parse().map_err(|_| fmt::Error)?;
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        f.write_str(sign)?;
        if (-4..P).contains(&x) {
            // %f with precision P-1-X, from the same rounded digits.
            let (int, frac) = if x >= 0 {
                let point = (x + 1) as usize;
                (digits[..point].to_owned(), digits[point..].to_owned())
            } else {
                let zeros = "0".repeat((-x - 1) as usize);
                ("0".to_owned(), zeros + &digits)
            };
            let frac = frac.trim_end_matches('0');
            f.write_str(&int)?;
            if !frac.is_empty() {
                f.write_char('.')?;
                f.write_str(frac)?;
            }
            Ok(())
        } else {
            let (first, tail) = digits.split_at(1);
            let tail = tail.trim_end_matches('0');
            f.write_str(first)?;
            if !tail.is_empty() {
                f.write_char('.')?;
                f.write_str(tail)?;
            }
            let esign = if x < 0 { '-' } else { '+' };
            write!(f, "e{esign}{:02}", x.abs())
        }
    }
}

/// `%g` of `v` as a `String` (see [`G`]).
pub fn fmt_g(v: f64) -> String {
    G(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dirs: DirSel, value: f64, plus: f64, dist: Dist, node: usize) -> WireSpec {
        WireSpec {
            dirs,
            value: WireValue::new(value, plus, dist),
            node,
        }
    }

    #[test]
    fn parses_every_form() {
        use DirSel::*;
        use Dist::*;
        let cases: &[(&str, WireSpec)] = &[
            ("5", spec(Both, 5.0, 0.0, Uniform, 0)),
            ("1.5", spec(Both, 1.5, 0.0, Uniform, 0)),
            ("LR5", spec(Only(Dir::LR), 5.0, 0.0, Uniform, 0)),
            ("RL3", spec(Only(Dir::RL), 3.0, 0.0, Uniform, 0)),
            ("20+5N", spec(Both, 20.0, 5.0, Normal, 0)),
            ("20+5n", spec(Both, 20.0, 5.0, Normal, 0)),
            ("20+5u", spec(Both, 20.0, 5.0, Uniform, 0)),
            ("100+20KN", spec(Both, 102400.0, 20480.0, Normal, 0)),
            ("1M", spec(Both, 1048576.0, 0.0, Uniform, 0)),
            ("1m", spec(Both, 1048576.0, 0.0, Uniform, 0)),
            ("2g", spec(Both, 2147483648.0, 0.0, Uniform, 0)),
            (
                "RL128+64K",
                spec(Only(Dir::RL), 131072.0, 65536.0, Uniform, 0),
            ),
            (
                "LR10+2ku[3]",
                spec(Only(Dir::LR), 10240.0, 2048.0, Uniform, 3),
            ),
            ("7[12]", spec(Both, 7.0, 0.0, Uniform, 12)),
            ("  30+5 \n", spec(Both, 30.0, 5.0, Uniform, 0)),
            ("LR 5 + 2 N [ 1 ]", spec(Only(Dir::LR), 5.0, 2.0, Normal, 1)),
            ("1e3", spec(Both, 1000.0, 0.0, Uniform, 0)),
            ("1.5E+2+1e-1", spec(Both, 150.0, 0.1, Uniform, 0)),
            ("-10+20", spec(Both, -10.0, 20.0, Uniform, 0)),
            ("+5", spec(Both, 5.0, 0.0, Uniform, 0)),
            (".5", spec(Both, 0.5, 0.0, Uniform, 0)),
            ("5.", spec(Both, 5.0, 0.0, Uniform, 0)),
            ("5+-2", spec(Both, 5.0, -2.0, Uniform, 0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{text:?}");
            assert_eq!(text.parse::<WireSpec>().as_ref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn rejects_bad_input_naming_the_part() {
        let cases: &[(&str, ValueError)] = &[
            ("", ValueError::Empty),
            ("  \t", ValueError::Empty),
            ("abc", ValueError::BadValue("abc".into())),
            ("LR", ValueError::BadValue("LR".into())),
            ("lr5", ValueError::BadValue("lr5".into())),
            ("5+", ValueError::BadPlus("".into())),
            ("5+x", ValueError::BadPlus("x".into())),
            ("5 6", ValueError::Trailing("6".into())),
            ("5x", ValueError::Trailing("x".into())),
            ("5NU", ValueError::Trailing("N".into())),
            ("5[x]", ValueError::BadNode("[x]".into())),
            ("5[-1]", ValueError::BadNode("[-1]".into())),
            ("5[]", ValueError::BadNode("[]".into())),
            ("5]", ValueError::BadNode("5]".into())),
            ("5[1", ValueError::Trailing("[1".into())),
            ("1e", ValueError::Trailing("e".into())),
            ("inf", ValueError::BadValue("inf".into())),
            ("nan", ValueError::BadValue("nan".into())),
            ("1e308G", ValueError::BadValue("1e308G".into())),
            ("0x10", ValueError::Trailing("x10".into())),
            (
                "5[99999999999999999999999]",
                ValueError::BadNode("[99999999999999999999999]".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Err(want), "{text:?}");
        }
        // The message names the offending text.
        let msg = parse("5+zz").unwrap_err().to_string();
        assert!(msg.contains("zz"), "{msg}");
    }

    #[test]
    fn g_matches_c_examples() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (5.0, "5"),
            (1.5, "1.5"),
            (-3.25, "-3.25"),
            (100.0, "100"),
            (1490.0, "1490"),
            (102400.0, "102400"),
            (131072.0, "131072"),
            (999999.0, "999999"),
            (999999.5, "1e+06"),
            (1048576.0, "1.04858e+06"),
            (1234567.0, "1.23457e+06"),
            (1073741824.0, "1.07374e+09"),
            (0.0001, "0.0001"),
            (0.00012345678, "0.000123457"),
            (0.00001, "1e-05"),
            (0.1 + 0.2, "0.3"),
            (123456.5, "123456"),
            (0.125, "0.125"),
            (1e100, "1e+100"),
            (2.5e-300, "2.5e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (v, want) in cases {
            assert_eq!(fmt_g(*v), *want, "{v:e}");
        }
        assert_eq!(WireValue::new(20.0, 5.0, Dist::Normal).to_string(), "20+5N");
        assert_eq!(WireValue::fixed(1048576.0).to_string(), "1.04858e+06+0U");
    }

    /// An exact hexadecimal rendering, so `printf` sees the same double.
    fn hex_float(v: f64) -> String {
        let bits = v.to_bits();
        let sign = if bits >> 63 == 1 { "-" } else { "" };
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        if exp == 0 {
            format!("{sign}0x0.{frac:013x}p-1022")
        } else {
            format!("{sign}0x1.{frac:013x}p{}", exp - 1023)
        }
    }

    /// Compares with the system's `printf %g` on many values, when a
    /// `printf` binary is available.
    #[test]
    fn g_matches_system_printf() {
        let mut rng = Rng::new(7);
        let mut values = vec![0.5, 2.5, 0.125, 1e-4, 9.999995e-5, 999999.5, 99999.95];
        for _ in 0..2000 {
            let mantissa = (rng.next_u64() >> 11) as f64;
            let scale = 2f64.powi((rng.next_u64() % 120) as i32 - 80);
            let v = (mantissa * scale).max(f64::MIN_POSITIVE);
            values.push(if rng.next_u64() & 1 == 0 { v } else { -v });
            // Short decimal values, which hit the rounding boundaries.
            let short =
                (rng.next_u64() % 10_000_000) as f64 / 10f64.powi((rng.next_u64() % 12) as i32);
            values.push(short);
        }
        let args: Vec<String> = values.iter().map(|v| hex_float(*v)).collect();
        let Ok(out) = std::process::Command::new("printf")
            .arg("%g\\n")
            .args(&args)
            .env("LC_ALL", "C")
            .output()
        else {
            eprintln!("no printf binary; skipping");
            return;
        };
        if !out.status.success() {
            eprintln!("printf failed; skipping");
            return;
        }
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), values.len());
        for (v, want) in values.iter().zip(lines) {
            assert_eq!(fmt_g(*v), want, "{v:e} = {}", hex_float(*v));
        }
    }
}

/// Property tests: a value printed as `showinfo` prints it parses back.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A number `%g` prints exactly: at most 6 significant digits.
    fn six_digits() -> impl Strategy<Value = f64> {
        (-999_999i64..=999_999, -9i32..=9).prop_map(|(m, e)| format!("{m}e{e}").parse().unwrap())
    }

    fn dist() -> impl Strategy<Value = Dist> {
        prop_oneof![Just(Dist::Uniform), Just(Dist::Normal)]
    }

    proptest! {
        #[test]
        fn display_parse(value in six_digits(), plus in six_digits(), dist in dist()) {
            let v = WireValue::new(value, plus, dist);
            let spec = parse(&v.to_string()).unwrap();
            prop_assert_eq!(spec, WireSpec { dirs: DirSel::Both, value: v, node: 0 });
        }

        #[test]
        fn display_parse_with_direction_and_node(
            value in six_digits(),
            dist in dist(),
            dir in prop_oneof![Just(DirSel::Both), Just(DirSel::Only(Dir::LR)), Just(DirSel::Only(Dir::RL))],
            node in 0usize..1000,
        ) {
            let v = WireValue::new(value, 0.0, dist);
            let prefix = match dir {
                DirSel::Both => "",
                DirSel::Only(d) => d.as_str(),
            };
            let spec = parse(&format!("{prefix}{v}[{node}]")).unwrap();
            prop_assert_eq!(spec, WireSpec { dirs: dir, value: v, node });
        }

        /// Any finite value prints to within `%g`'s precision.
        #[test]
        fn display_parse_is_close(value in -1e300f64..1e300, plus in -1e300f64..1e300) {
            let v = WireValue::new(value, plus, Dist::Uniform);
            let back = parse(&v.to_string()).unwrap().value;
            for (a, b) in [(back.value, value), (back.plus, plus)] {
                prop_assert!((a - b).abs() <= 5e-6 * b.abs(), "{a} vs {b}");
            }
        }
    }
}
