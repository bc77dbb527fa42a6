//! The topology file: TOML read with serde, then checked, every problem
//! named with the file and line it comes from.

use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    name: Spanned<String>,
    fstp: Option<bool>,
    wan: Option<Spanned<String>>,
    dead: Option<Spanned<f64>>,
    #[serde(default)]
    site: Vec<Spanned<RawSite>>,
    #[serde(default)]
    cable: Vec<Spanned<RawCable>>,
    #[serde(default)]
    cloud: Vec<Spanned<RawCloud>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Spanned<String>,
    switch: Option<Spanned<String>>,
    fstp: Option<bool>,
    trunk: Option<Spanned<Vec<u16>>>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    addr: Spanned<String>,
    vlan: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCable {
    name: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<String>,
    kind: Option<Spanned<String>>,
    keys: Option<Spanned<String>>,
    dead: Option<Spanned<f64>>,
    delay: Option<Spanned<f64>>,
    loss: Option<Spanned<f64>>,
    bandwidth: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    name: Spanned<String>,
    sites: Spanned<Vec<Spanned<String>>>,
}

/// A checked topology.
#[derive(Debug, Clone)]
pub struct Lab {
    pub name: String,
    /// The first three octets of the WAN /24; site i is `.i+1`.
    pub wan: [u8; 3],
    pub sites: Vec<Site>,
    pub cables: Vec<Cable>,
    pub clouds: Vec<Cloud>,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    /// Debian's C `vde_switch` instead of ours (its cables then run as
    /// processes of their own).
    pub debian: bool,
    pub fstp: bool,
    /// VLANs carried tagged on every cable port of the site.
    pub trunk: Vec<u16>,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub addr: String,
    pub vlan: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cryptcab,
    Udp,
    Wirefilter,
}

#[derive(Debug, Clone)]
pub struct Cable {
    pub name: String,
    /// Site index that dials.
    pub from: usize,
    /// Site index that listens.
    pub to: usize,
    pub kind: Kind,
    /// A cryptcab cable whose keys go over ssh (`keys = "ssh"`): the
    /// runner starts an sshd in the listening site; otherwise a
    /// pre-shared key file it makes.
    pub ssh: bool,
    pub dead: f64,
    pub delay: f64,
    pub loss: f64,
    pub bandwidth: Option<u64>,
    /// The UDP port of both ends (cryptcab, udp).
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Cloud {
    pub name: String,
    pub sites: Vec<usize>,
    pub group: String,
    pub port: u16,
}

/// First UDP port of the cables (cable i uses `CABLE_PORT + i`).
pub const CABLE_PORT: u16 = 7701;
/// First vxvde port of the clouds.
pub const CLOUD_PORT: u16 = 14801;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn err<T>(&self, at: &Spanned<T>, why: impl std::fmt::Display) -> String {
        format!("{}:{}: {why}", self.file, self.line(at.span().start))
    }
}

fn check_name(c: &Ctx, n: &Spanned<String>, what: &str, max: usize) -> Result<String, String> {
    let s = n.get_ref();
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !s.starts_with('-');
    if !ok {
        return Err(c.err(
            n,
            format!("{what} name {s:?}: use 1 to {max} of a-z, 0-9 and '-'"),
        ));
    }
    Ok(s.clone())
}

fn check_addr(c: &Ctx, a: &Spanned<String>) -> Result<String, String> {
    let s = a.get_ref();
    let ok = s.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
    });
    if !ok {
        return Err(c.err(
            a,
            format!("host address {s:?}: expected IPv4/prefix, e.g. 10.0.0.1/24"),
        ));
    }
    Ok(s.clone())
}

fn check_vlan(c: &Ctx, at: &Spanned<impl Sized>, v: u16) -> Result<u16, String> {
    if !(1..=4094).contains(&v) {
        return Err(c.err(at, format!("VLAN {v}: must be 1..4094")));
    }
    Ok(v)
}

fn nonneg(c: &Ctx, v: &Option<Spanned<f64>>, what: &str, default: f64) -> Result<f64, String> {
    match v {
        None => Ok(default),
        Some(x) if x.get_ref().is_finite() && *x.get_ref() >= 0.0 => Ok(*x.get_ref()),
        Some(x) => Err(c.err(x, format!("{what} must be a number >= 0"))),
    }
}

/// Reads and checks the topology file at `path`.
pub fn load(path: &Path) -> Result<Lab, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

/// Parses and checks a topology given as text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Lab, String> {
    let c = Ctx { file, text };
    let raw: RawLab = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| c.line(s.start)).unwrap_or(0);
        format!("{file}:{line}: {}", e.message())
    })?;
    let name = check_name(&c, &raw.name, "lab", 12)?;
    let wan = match &raw.wan {
        None => [10, 99, 0],
        Some(w) => {
            let s = w.get_ref();
            let ip = s
                .strip_suffix(".0/24")
                .and_then(|p| format!("{p}.0").parse::<std::net::Ipv4Addr>().ok());
            match ip {
                Some(ip) => {
                    let o = ip.octets();
                    [o[0], o[1], o[2]]
                }
                None => return Err(c.err(w, format!("wan {s:?}: expected A.B.C.0/24"))),
            }
        }
    };
    let lab_fstp = raw.fstp.unwrap_or(true);
    let lab_dead = nonneg(&c, &raw.dead, "dead", 0.3)?;
    if raw.site.is_empty() {
        return Err(format!("{file}: no [[site]]"));
    }
    if raw.site.len() > 200 {
        return Err(c.err(&raw.site[200], "at most 200 sites"));
    }
    // every VLAN a host uses: the default trunk of every site
    let mut all_vlans: Vec<u16> = Vec::new();
    for s in &raw.site {
        for h in &s.get_ref().host {
            if let Some(v) = &h.get_ref().vlan {
                let v = check_vlan(&c, v, *v.get_ref())?;
                if !all_vlans.contains(&v) {
                    all_vlans.push(v);
                }
            }
        }
    }
    all_vlans.sort_unstable();
    let mut sites: Vec<Site> = Vec::new();
    for s in &raw.site {
        let r = s.get_ref();
        let sname = check_name(&c, &r.name, "site", 10)?;
        if sname == "wan" {
            return Err(c.err(&r.name, "site name \"wan\" is the runner's own"));
        }
        if sites.iter().any(|o| o.name == sname) {
            return Err(c.err(&r.name, format!("site {sname:?} defined twice")));
        }
        let debian = match r.switch.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("rust") => false,
            Some("debian") => true,
            Some(other) => {
                return Err(c.err(
                    r.switch.as_ref().expect("some"),
                    format!("switch {other:?}: expected \"rust\" or \"debian\""),
                ))
            }
        };
        let trunk = match &r.trunk {
            None => all_vlans.clone(),
            Some(t) => t
                .get_ref()
                .iter()
                .map(|&v| check_vlan(&c, t, v))
                .collect::<Result<_, _>>()?,
        };
        let mut hosts: Vec<Host> = Vec::new();
        for h in &r.host {
            let rh = h.get_ref();
            let hname = check_name(&c, &rh.name, "host", 10)?;
            if hosts.iter().any(|o| o.name == hname) {
                return Err(c.err(
                    &rh.name,
                    format!("host {hname:?} defined twice on site {sname:?}"),
                ));
            }
            hosts.push(Host {
                name: hname,
                addr: check_addr(&c, &rh.addr)?,
                vlan: rh.vlan.as_ref().map(|v| *v.get_ref()),
            });
        }
        if hosts.len() > 8 {
            return Err(c.err(&r.name, "at most 8 hosts per site"));
        }
        sites.push(Site {
            name: sname,
            debian,
            fstp: r.fstp.unwrap_or(lab_fstp),
            trunk,
            hosts,
        });
    }
    let site_index = |n: &Spanned<String>| -> Result<usize, String> {
        sites
            .iter()
            .position(|s| &s.name == n.get_ref())
            .ok_or_else(|| c.err(n, format!("no site named {:?}", n.get_ref())))
    };
    let mut names: Vec<String> = Vec::new();
    let mut cables = Vec::new();
    for (i, k) in raw.cable.iter().enumerate() {
        let r = k.get_ref();
        let cname = check_name(&c, &r.name, "cable", 12)?;
        if names.contains(&cname) {
            return Err(c.err(&r.name, format!("cable or cloud {cname:?} defined twice")));
        }
        names.push(cname.clone());
        let (from, to) = (site_index(&r.from)?, site_index(&r.to)?);
        if from == to {
            return Err(c.err(&r.to, "a cable joins two different sites"));
        }
        let kind = match r.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("cryptcab") => Kind::Cryptcab,
            Some("udp") => Kind::Udp,
            Some("wirefilter") => Kind::Wirefilter,
            Some(other) => {
                return Err(c.err(
                    r.kind.as_ref().expect("some"),
                    format!("cable kind {other:?}: expected cryptcab, udp or wirefilter"),
                ))
            }
        };
        let ssh = match r.keys.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("psk") => false,
            Some("ssh") => true,
            Some(other) => {
                return Err(c.err(
                    r.keys.as_ref().expect("some"),
                    format!("keys {other:?}: expected \"psk\" or \"ssh\""),
                ))
            }
        };
        if let (Some(keys), true) = (&r.keys, kind != Kind::Cryptcab) {
            return Err(c.err(keys, "keys is for kind = \"cryptcab\""));
        }
        if ssh && sites[from].debian {
            return Err(c.err(
                &r.from,
                format!(
                    "keys = \"ssh\": the dialing site {:?} must run our switch, not \
                     switch = \"debian\" (only a listening site may be Debian's)",
                    sites[from].name
                ),
            ));
        }
        let impairs = r.delay.is_some() || r.loss.is_some() || r.bandwidth.is_some();
        if impairs && kind != Kind::Wirefilter {
            return Err(c.err(k, "delay, loss and bandwidth are for kind = \"wirefilter\""));
        }
        let loss = nonneg(&c, &r.loss, "loss", 0.0)?;
        if loss > 100.0 {
            return Err(c.err(
                r.loss.as_ref().expect("some"),
                "loss is a percentage (0..100)",
            ));
        }
        let dead = nonneg(&c, &r.dead, "dead", lab_dead)?;
        if dead < 0.1 {
            return Err(c.err(
                r.dead.as_ref().or(raw.dead.as_ref()).expect("set"),
                "dead must be at least 0.1 s",
            ));
        }
        cables.push(Cable {
            name: cname,
            from,
            to,
            kind,
            ssh,
            dead,
            delay: nonneg(&c, &r.delay, "delay", 0.0)?,
            loss,
            bandwidth: r.bandwidth.as_ref().map(|b| *b.get_ref()),
            port: CABLE_PORT + i as u16,
        });
    }
    let mut clouds = Vec::new();
    for (j, k) in raw.cloud.iter().enumerate() {
        let r = k.get_ref();
        let cname = check_name(&c, &r.name, "cloud", 12)?;
        if names.contains(&cname) {
            return Err(c.err(&r.name, format!("cable or cloud {cname:?} defined twice")));
        }
        names.push(cname.clone());
        let mut members = Vec::new();
        for s in r.sites.get_ref() {
            let i = site_index(s)?;
            if members.contains(&i) {
                return Err(c.err(s, format!("site {:?} twice in the cloud", s.get_ref())));
            }
            members.push(i);
        }
        if members.len() < 2 {
            return Err(c.err(&r.sites, "a cloud needs at least two sites"));
        }
        clouds.push(Cloud {
            name: cname,
            sites: members,
            group: format!("239.255.77.{}", j + 1),
            port: CLOUD_PORT + j as u16,
        });
    }
    if cables.len() > 200 || clouds.len() > 50 {
        return Err(format!("{file}: at most 200 cables and 50 clouds"));
    }
    Ok(Lab {
        name,
        wan,
        sites,
        cables,
        clouds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[[site]]
name = "a"
[[site.host]]
name = "h1"
addr = "10.0.0.1/24"
vlan = 10
[[site]]
name = "b"
switch = "debian"
[[cable]]
name = "ab"
from = "a"
to = "b"
"#;

    #[test]
    fn a_good_file_is_read() {
        let lab = parse("t.toml", GOOD).unwrap();
        assert_eq!(lab.sites.len(), 2);
        assert!(lab.sites[1].debian);
        assert_eq!(lab.sites[0].trunk, vec![10], "hosts' VLANs are trunked");
        assert_eq!(lab.cables[0].kind, Kind::Cryptcab);
        assert_eq!((lab.cables[0].from, lab.cables[0].to), (0, 1));
    }

    #[test]
    fn keys_over_ssh_are_for_cryptcab_cables_dialed_by_our_switch() {
        // a Debian site may listen on an ssh cable (its vde_cryptcab does)
        let ssh = GOOD.replace("to = \"b\"", "to = \"b\"\nkeys = \"ssh\"");
        let lab = parse("t.toml", &ssh).unwrap();
        assert!(lab.cables[0].ssh);
        assert!(
            !parse("t.toml", GOOD).unwrap().cables[0].ssh,
            "psk by default"
        );
        let cases = [
            (
                ssh.replace("\"ssh\"", "\"rsa\""),
                16,
                "keys \"rsa\": expected",
            ),
            (
                ssh.replace("keys", "kind = \"udp\"\nkeys"),
                17,
                "keys is for kind = \"cryptcab\"",
            ),
            (
                // b dials the Debian site... the other way round
                ssh.replace("from = \"a\"\nto = \"b\"", "from = \"b\"\nto = \"a\""),
                14,
                "the dialing site \"b\" must run our switch",
            ),
        ];
        for (text, line, what) in cases {
            let e = parse("lab.toml", &text).unwrap_err();
            assert!(
                e.starts_with(&format!("lab.toml:{line}: ")) && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            (
                GOOD.replace("to = \"b\"", "to = \"z\""),
                15,
                "no site named \"z\"",
            ),
            (GOOD.replace("10.0.0.1/24", "10.0.0/24"), 7, "host address"),
            (GOOD.replace("vlan = 10", "vlan = 5000"), 8, "VLAN 5000"),
            (
                GOOD.replace("switch = \"debian\"", "switch = \"c\""),
                11,
                "switch \"c\"",
            ),
            (
                GOOD.replace("name = \"b\"", "name = \"a\""),
                10,
                "defined twice",
            ),
            (
                GOOD.replace("from = \"a\"", "form = \"a\""),
                14,
                "unknown field",
            ),
            (GOOD.replace("[[cable]]", "[[cable]"), 12, ""),
        ];
        for (text, line, what) in cases {
            let e = parse("lab.toml", &text).unwrap_err();
            assert!(
                e.starts_with(&format!("lab.toml:{line}: ")) && e.contains(what),
                "{e}"
            );
        }
    }
}
