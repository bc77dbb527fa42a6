//! The VNL (Virtual Network Locator) grammar of libvdeplug4 (protocol spec
//! §6): scheme split, path-style and address-style arguments, options with
//! abbreviated keys, quoting, `%HH` escapes and nested `{...}` locators.

use std::fmt;

/// Why a locator does not parse, naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VnlError {
    #[error("unknown VNL scheme {scheme:?} in {vnl:?} (known: {known})")]
    UnknownScheme {
        scheme: String,
        vnl: String,
        known: String,
    },
    #[error("unknown key: {key} (in {vnl:?}; keys of {scheme}:// are {keys})")]
    UnknownKey {
        key: String,
        scheme: String,
        vnl: String,
        keys: String,
    },
    #[error("unterminated quote {quote} in {vnl:?}")]
    Unterminated { quote: char, vnl: String },
    #[error("unbalanced {0:?} in {1:?}")]
    Unbalanced(char, String),
    #[error("bad value {value:?} for {key} in {vnl:?}: {why}")]
    BadValue {
        key: String,
        value: String,
        vnl: String,
        why: String,
    },
    #[error("bad address {addr:?} in {vnl:?}: {why}")]
    BadAddress {
        addr: String,
        vnl: String,
        why: String,
    },
}

/// A locator split at its first `://` (no scheme: the `vde` plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    pub scheme: String,
    pub rest: String,
    /// The locator as written, for error messages.
    pub text: String,
}

impl Locator {
    pub fn split(vnl: &str) -> Locator {
        match vnl.find("://") {
            Some(i) => Locator {
                scheme: vnl[..i].to_string(),
                rest: vnl[i + 3..].to_string(),
                text: vnl.to_string(),
            },
            None => Locator {
                scheme: "vde".to_string(),
                rest: vnl.to_string(),
                text: vnl.to_string(),
            },
        }
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parsed options: (key from the plugin's table, value; `None` for a bare
/// key). The bare token that is not a key is stored under the key "".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub items: Vec<(&'static str, Option<String>)>,
}

impl Options {
    /// The last value given for `key` (Some(None) for a bare flag).
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.items
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_deref())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key`, if given with one.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).flatten()
    }
}

/// Positions of the characters of `s` that are not inside quotes or after
/// a backslash, for finding structural characters.
fn unquoted(s: &str, vnl: &str) -> Result<Vec<(usize, char)>, VnlError> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => esc = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => out.push((i, c)),
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Err(VnlError::Unterminated {
            quote: q,
            vnl: vnl.to_string(),
        });
    }
    Ok(out)
}

/// Removes quotes and backslashes and decodes `%HH`.
pub fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match (quote, c) {
            (_, b'\\') if i + 1 < b.len() => {
                out.push(b[i + 1]);
                i += 2;
                continue;
            }
            (None, b'\'' | b'"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, b'%') if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(c),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits off a nested locator: `OUTER{INNER}` gives (OUTER, Some(INNER)),
/// INNER between the first unquoted `{` and the last unquoted `}`.
pub fn split_nested(s: &str, vnl: &str) -> Result<(String, Option<String>), VnlError> {
    let u = unquoted(s, vnl)?;
    let open = u.iter().find(|(_, c)| *c == '{').map(|(i, _)| *i);
    let close = u.iter().rev().find(|(_, c)| *c == '}').map(|(i, _)| *i);
    match (open, close) {
        (None, None) => Ok((s.to_string(), None)),
        (Some(o), Some(c)) if c > o => Ok((
            format!("{}{}", &s[..o], &s[c + 1..]),
            Some(s[o + 1..c].to_string()),
        )),
        (Some(_), _) => Err(VnlError::Unbalanced('{', vnl.to_string())),
        (None, Some(_)) => Err(VnlError::Unbalanced('}', vnl.to_string())),
    }
}

/// Matches a key against a plugin's table: the first key of which the
/// given one is a prefix. A token that matches no key is the bare value
/// (key "") if the table has "", else an error.
fn resolve_key(
    key: &str,
    value: Option<String>,
    keys: &[&'static str],
    scheme: &str,
    vnl: &str,
) -> Result<(&'static str, Option<String>), VnlError> {
    if let Some(k) = keys.iter().find(|k| !k.is_empty() && k.starts_with(key)) {
        return Ok((k, value));
    }
    if value.is_none() && keys.contains(&"") {
        return Ok(("", Some(key.to_string())));
    }
    Err(VnlError::UnknownKey {
        key: key.to_string(),
        scheme: scheme.to_string(),
        vnl: vnl.to_string(),
        keys: keys
            .iter()
            .filter(|k| !k.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn parse_options(
    list: &str,
    keys: &[&'static str],
    paths: &[&str],
    scheme: &str,
    vnl: &str,
) -> Result<Options, VnlError> {
    let u = unquoted(list, vnl)?;
    let mut cuts: Vec<usize> = u
        .iter()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| *i)
        .collect();
    cuts.push(list.len());
    let mut items: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut start = 0;
    for end in cuts {
        let opt = &list[start..end];
        start = end + 1;
        if opt.is_empty() {
            // inside a path's value an empty segment is a doubled slash
            // (base64 fingerprints have them: `pin=SHA256:ab//cd`)
            if end < list.len() {
                if let Some((key, Some(value))) = items.last_mut() {
                    if paths.contains(key) {
                        value.push('/');
                    }
                }
            }
            continue;
        }
        let eq = u
            .iter()
            .find(|(i, c)| *c == '=' && *i >= end - opt.len() && *i < end)
            .map(|(i, _)| *i);
        let (k, v) = match eq {
            Some(i) => (
                unescape(&list[end - opt.len()..i]),
                Some(unescape(&list[i + 1..end])),
            ),
            None => (unescape(opt), None),
        };
        if k.is_empty() {
            continue;
        }
        // a path's value goes on past its slashes (`psk=/etc/vde/key`) up
        // to the next KEY=VALUE
        if v.is_none() {
            if let Some((key, Some(value))) = items.last_mut() {
                if paths.contains(key) {
                    value.push('/');
                    value.push_str(&unescape(opt));
                    continue;
                }
            }
        }
        items.push(resolve_key(&k, v, keys, scheme, vnl)?);
    }
    Ok(Options { items })
}

/// Path-style arguments (vde, hub, switch, ...): `PATH[OPT/OPT=VAL/...]`.
/// PATH ends at the first unquoted `[`, the options at the last unquoted `]`.
pub fn path_style(
    rest: &str,
    keys: &[&'static str],
    scheme: &str,
    vnl: &str,
) -> Result<(String, Options), VnlError> {
    let u = unquoted(rest, vnl)?;
    let open = u.iter().find(|(_, c)| *c == '[').map(|(i, _)| *i);
    let Some(o) = open else {
        return Ok((unescape(rest), Options::default()));
    };
    let close = u.iter().rev().find(|(_, c)| *c == ']').map(|(i, _)| *i);
    let c = match close {
        Some(c) if c > o => c,
        _ => return Err(VnlError::Unbalanced('[', vnl.to_string())),
    };
    let opts = parse_options(&rest[o + 1..c], keys, &[], scheme, vnl)?;
    Ok((unescape(&rest[..o]), opts))
}

/// Address-style arguments (vxvde, vxlan): `ADDRESS/OPT/OPT=VAL/...`.
pub fn addr_style(
    rest: &str,
    keys: &[&'static str],
    scheme: &str,
    vnl: &str,
) -> Result<(String, Options), VnlError> {
    addr_style_paths(rest, keys, &[], scheme, vnl)
}

/// [`addr_style`] where the values of the keys in `paths` are file paths
/// that may hold slashes: `ADDRESS/psk=/etc/vde/key/OPT=VAL`.
pub fn addr_style_paths(
    rest: &str,
    keys: &[&'static str],
    paths: &[&str],
    scheme: &str,
    vnl: &str,
) -> Result<(String, Options), VnlError> {
    let u = unquoted(rest, vnl)?;
    match u.iter().find(|(_, c)| *c == '/') {
        None => Ok((unescape(rest), Options::default())),
        Some(&(i, _)) => Ok((
            unescape(&rest[..i]),
            parse_options(&rest[i + 1..], keys, paths, scheme, vnl)?,
        )),
    }
}

/// Parses a size with an optional k/m/g/t suffix (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VDE: &[&str] = &["", "port", "portgroup", "group", "mode"];
    const VX: &[&str] = &[
        "port",
        "vni",
        "grp",
        "ttl",
        "v4",
        "v6",
        "if",
        "bind",
        "rcvbuf",
        "hashsize",
        "expiretime",
    ];

    fn path(s: &str) -> (String, Options) {
        path_style(s, VDE, "vde", s).unwrap()
    }

    #[test]
    fn scheme_split() {
        let l = Locator::split("vxvde://239.0.0.1/vni=3");
        assert_eq!(
            (l.scheme.as_str(), l.rest.as_str()),
            ("vxvde", "239.0.0.1/vni=3")
        );
        let l = Locator::split("/tmp/sw[3]");
        assert_eq!((l.scheme.as_str(), l.rest.as_str()), ("vde", "/tmp/sw[3]"));
        let l = Locator::split("cmd://ssh h vde_plug vxvde://");
        assert_eq!(
            (l.scheme.as_str(), l.rest.as_str()),
            ("cmd", "ssh h vde_plug vxvde://")
        );
    }

    #[test]
    fn path_style_as_observed() {
        let (p, o) = path("/tmp/sw[3]");
        assert_eq!(p, "/tmp/sw");
        assert_eq!(o.value(""), Some("3"));
        let (_, o) = path("/tmp/sw[port=3]");
        assert_eq!(o.value("port"), Some("3"));
        // abbreviated keys: the first match in table order wins
        let (_, o) = path("/tmp/sw[p=14]");
        assert_eq!(o.value("port"), Some("14"));
        let (_, o) = path("/tmp/sw[po=1/m=0660/g=users]");
        assert_eq!(
            (o.value("port"), o.value("mode"), o.value("group")),
            (Some("1"), Some("0660"), Some("users"))
        );
        // the option list ends at the last ]
        let (p, o) = path("/tmp/sw[3][4]");
        assert_eq!(p, "/tmp/sw");
        assert_eq!(o.value(""), Some("3][4"));
        // %HH and quotes
        let (p, o) = path("/tmp/my%20sw[3]");
        assert_eq!((p.as_str(), o.value("")), ("/tmp/my sw", Some("3")));
        let (p, o) = path("'/tmp/a[b'[7]");
        assert_eq!((p.as_str(), o.value("")), ("/tmp/a[b", Some("7")));
        let (_, o) = path("/x[port=\"a/b\"]");
        assert_eq!(o.value("port"), Some("a/b"));
        let (p, o) = path("/plain/path");
        assert_eq!((p.as_str(), o.items.len()), ("/plain/path", 0));
        let (p, _) = path(r"/tmp/back\[slash");
        assert_eq!(p, "/tmp/back[slash");
    }

    #[test]
    fn addr_style_options() {
        let s = "239.0.0.1/v=7/if=lo/v4";
        let (a, o) = addr_style(s, VX, "vxvde", s).unwrap();
        assert_eq!(a, "239.0.0.1");
        assert_eq!(o.value("vni"), Some("7"));
        assert_eq!(o.value("if"), Some("lo"));
        assert!(o.has("v4") && !o.has("v6"));
        let (a, o) = addr_style("", VX, "vxvde", "").unwrap();
        assert_eq!((a.as_str(), o.items.len()), ("", 0));
    }

    #[test]
    fn errors_name_the_part() {
        let e = addr_style("1.2.3.4/bogus=1", VX, "vxvde", "vxvde://1.2.3.4/bogus=1").unwrap_err();
        assert!(e.to_string().starts_with("unknown key: bogus"), "{e}");
        assert!(matches!(
            path_style("/x['3]", VDE, "vde", "v"),
            Err(VnlError::Unterminated { quote: '\'', .. })
        ));
        assert!(matches!(
            path_style("/x[3", VDE, "vde", "v"),
            Err(VnlError::Unbalanced('[', _))
        ));
        // a bare token in a table without "" is an unknown key
        assert!(addr_style("a/zz", VX, "vxvde", "v").is_err());
    }

    #[test]
    fn nested_locators() {
        let (o, i) = split_nested("3{vde:///tmp/sw}", "v").unwrap();
        assert_eq!((o.as_str(), i.as_deref()), ("3", Some("vde:///tmp/sw")));
        let (o, i) = split_nested("3[untag=4/trunk]{vde:///tmp/sw{x}}", "v").unwrap();
        assert_eq!(
            (o.as_str(), i.as_deref()),
            ("3[untag=4/trunk]", Some("vde:///tmp/sw{x}"))
        );
        assert_eq!(split_nested("plain", "v").unwrap(), ("plain".into(), None));
        assert!(split_nested("a{b", "v").is_err());
        assert!(split_nested("a}b", "v").is_err());
    }

    #[test]
    fn unescape_and_sizes() {
        assert_eq!(unescape("a%41%4a%zz%"), "aAJ%zz%");
        assert_eq!(unescape("'q u'\"o\""), "q uo");
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = [
            '[', ']', '{', '}', '/', '=', '\'', '"', '\\', '%', 'a', '1', ':',
        ];
        let mut x = 12345u64;
        for _ in 0..5000 {
            let n = (x % 12) as usize;
            let s: String = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(x >> 33) as usize % alphabet.len()]
                })
                .collect();
            let _ = path_style(&s, VDE, "vde", &s);
            let _ = addr_style(&s, VX, "vxvde", &s);
            let _ = split_nested(&s, &s);
            let _ = unescape(&s);
        }
    }
}
