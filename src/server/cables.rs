//! The cables a switch hosts: frame endpoints (`--cable`, `--listen`,
//! `cable/add`, `cable/listen`) polled by the switch's own loop, each of
//! their links on a port of its own while it is up. The shell attaches and
//! detaches those ports ([`super::Server::service_cables`]); this module
//! keeps the endpoints, their links and the console's view of them.

use std::fmt::Write as _;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use vde_overlay::endpoint::{EndpointStatus, FrameEndpoint, LinkId};

use crate::core::{EndpointId, PortId, Switch};
use crate::errno::*;
use crate::mgmt::CableHost;
use crate::vnl::{self, Locator, OpenArgs, OpenError, VnlError};

/// Tokens of cable endpoints start here (connections use the ones below).
pub const TOKENS: usize = 1 << 40;

/// Endpoint ids of cable ports start here (client endpoints are named by
/// their file descriptors, which stay far below).
pub const FIRST_ID: EndpointId = 1 << 24;

/// One link of a cable and its port.
#[derive(Debug, Clone)]
pub struct LinkPort {
    pub link: LinkId,
    pub peer: String,
    /// The port while the link is up and has one.
    pub port: Option<PortId>,
    /// The connection slot of the port's endpoint.
    pub conn: Option<usize>,
    /// The endpoint id the core knows the port's endpoint by.
    pub id: EndpointId,
    /// The port it had last, asked for again when it comes back.
    pub last_port: Option<PortId>,
    pub up: bool,
}

pub struct Cable {
    pub ep: Box<dyn FrameEndpoint>,
    pub vnl: String,
    pub listen: bool,
    /// Shown by `cable/print`.
    pub number: u32,
    pub links: Vec<LinkPort>,
    /// `cable/del` or the end of the switch: its ports come down, then it
    /// goes.
    pub removed: bool,
    /// A cable whose endpoint closed for good (a plug whose command or
    /// switch went away) is opened again at this time; and how many
    /// times in a row that failed.
    pub reopen_at: Option<Instant>,
    pub reopen_tries: u32,
}

impl Cable {
    /// The port of a link, if it has one.
    pub fn port_of(&self, link: LinkId) -> Option<PortId> {
        self.links.iter().find(|l| l.link == link)?.port
    }
}

/// The cables of a switch.
pub struct Cables {
    pub slots: Vec<Option<Cable>>,
    registry: Registry,
    next_number: u32,
}

fn errno_of(e: &OpenError) -> Errno {
    match e {
        OpenError::Vnl(_) => EINVAL,
        OpenError::Io { err, .. } => match err.kind() {
            std::io::ErrorKind::NotFound => ENOENT,
            std::io::ErrorKind::PermissionDenied => EACCES,
            std::io::ErrorKind::AddrInUse => EADDRINUSE,
            std::io::ErrorKind::ConnectionRefused => ECONNREFUSED,
            _ => {
                let t = err.to_string();
                if t.contains("Permission denied") || t.contains("rejected") {
                    EACCES
                } else if t.contains("resolve") || t.contains("unreachable") {
                    EHOSTUNREACH
                } else if t.contains("in use") {
                    EADDRINUSE
                } else {
                    EIO
                }
            }
        },
    }
}

/// Whether a locator listens (only `cryptcab://` and `quic://` without a
/// host do).
fn listens(vnl: &str) -> Result<bool, VnlError> {
    let loc = Locator::split(vnl);
    match loc.scheme.as_str() {
        "cryptcab" => Ok(vnl::cryptcab::spec(&loc)?.listens()),
        "quic" => Ok(vnl::quic::spec(&loc)?.listens()),
        _ => Ok(false),
    }
}

impl Cables {
    pub fn new(registry: Registry) -> Cables {
        Cables {
            slots: Vec::new(),
            registry,
            next_number: 1,
        }
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Cable> {
        self.slots.get_mut(i)?.as_mut()
    }

    pub fn get(&self, i: usize) -> Option<&Cable> {
        self.slots.get(i)?.as_ref()
    }

    /// The slots in use.
    pub fn indices(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .collect()
    }

    /// The earliest deadline of any cable.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .flat_map(|c| [c.ep.poll_timeout(), c.reopen_at])
            .flatten()
            .min()
    }

    /// A dialed cable whose endpoint is down for good (not one that
    /// reconnects by itself) is opened again after a pause that grows
    /// with the failures (1, 2, 5, 10 s).
    pub fn schedule_reopen(&mut self, i: usize, now: Instant) {
        let Some(c) = self.get_mut(i) else { return };
        if c.listen || c.removed || c.reopen_at.is_some() || c.ep.status(now).state != "down" {
            return;
        }
        let wait = [1, 2, 5, 10][(c.reopen_tries as usize).min(3)];
        c.reopen_at = Some(now + std::time::Duration::from_secs(wait));
    }

    /// Opens a cable's locator again if its time has come.
    pub fn reopen_if_due(&mut self, i: usize, now: Instant) {
        let Some(c) = self.get_mut(i) else { return };
        if c.reopen_at.is_none_or(|t| t > now) {
            return;
        }
        c.reopen_at = None;
        let args = OpenArgs {
            descr: "vde_switch cable".into(),
            ..OpenArgs::default()
        };
        match vnl::open_endpoint(&c.vnl, &args) {
            Ok(ep) => {
                let (old, new) = (c.ep.fd(), ep.fd());
                let _ = self.registry.deregister(&mut SourceFd(&old));
                let c = self.get_mut(i).expect("checked above");
                c.ep = ep;
                c.reopen_tries = 0;
                tracing::info!("cable {}: {} opened again", c.number, c.vnl);
                if let Err(e) = self.registry.register(
                    &mut SourceFd(&new),
                    Token(TOKENS + i),
                    Interest::READABLE,
                ) {
                    tracing::warn!("cannot watch a cable again: {e}");
                }
            }
            Err(e) => {
                c.reopen_tries += 1;
                tracing::warn!("cable {}: cannot open {} again: {e}", c.number, c.vnl);
                self.schedule_reopen(i, now);
            }
        }
    }

    /// Opens a cable and watches its socket; its ports come with its links.
    pub fn open(&mut self, vnl: &str, listen: bool) -> Result<(usize, u32), (Errno, String)> {
        match listens(vnl) {
            Err(e) => return Err((EINVAL, e.to_string())),
            Ok(true) if !listen => {
                return Err((
                    EINVAL,
                    format!("{vnl} listens (no host): use cable/listen or --listen"),
                ))
            }
            Ok(false) if listen => {
                return Err((
                    EINVAL,
                    format!(
                    "{vnl} does not listen: a listening locator is cryptcab://[:PORT][/OPTIONS] \
                         or quic://[:PORT][/OPTIONS]"
                ),
                ))
            }
            Ok(_) => {}
        }
        let args = OpenArgs {
            descr: "vde_switch cable".into(),
            ..OpenArgs::default()
        };
        let ep = vnl::open_endpoint(vnl, &args).map_err(|e| (errno_of(&e), e.to_string()))?;
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let fd = ep.fd();
        self.registry
            .register(&mut SourceFd(&fd), Token(TOKENS + i), Interest::READABLE)
            .map_err(|e| (EIO, format!("cannot watch {vnl}: {e}")))?;
        let number = self.next_number;
        self.next_number += 1;
        tracing::info!(
            "cable {number}: {} {vnl}",
            if listen { "listening on" } else { "opened" }
        );
        self.slots[i] = Some(Cable {
            ep,
            vnl: vnl.to_string(),
            listen,
            number,
            links: Vec::new(),
            removed: false,
            reopen_at: None,
            reopen_tries: 0,
        });
        Ok((i, number))
    }

    /// Forgets a cable whose ports are down.
    pub fn remove(&mut self, i: usize) {
        if let Some(c) = self.slots.get_mut(i).and_then(Option::take) {
            let fd = c.ep.fd();
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }

    /// The cable and link on `port`.
    fn on_port(&self, port: PortId) -> Option<(usize, LinkId)> {
        self.slots.iter().enumerate().find_map(|(i, c)| {
            let c = c.as_ref()?;
            let l = c.links.iter().find(|l| l.port == Some(port))?;
            Some((i, l.link))
        })
    }

    fn status_line(c: &Cable, st: &EndpointStatus, out: &mut String) {
        let _ = write!(out, "Cable {} {} {}", c.number, st.role, c.vnl);
        if let Some(a) = st.local {
            let _ = write!(out, " local {a}");
        }
        let _ = writeln!(out, " -- {}", st.state);
        if !st.drops.is_empty() {
            let _ = writeln!(out, " dropped before a link: {}", drops_text(&st.drops));
        }
    }
}

fn drops_text(d: &[(String, u64)]) -> String {
    d.iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("null".into(), |v| json_str(&v.to_string()))
}

fn json_drops(d: &[(String, u64)]) -> String {
    let items: Vec<String> = d
        .iter()
        .map(|(r, n)| format!("{}:{n}", json_str(r)))
        .collect();
    format!("{{{}}}", items.join(","))
}

impl CableHost for Cables {
    fn add(
        &mut self,
        sw: &Switch,
        vnl: &str,
        listen: bool,
        _now: Instant,
    ) -> Result<String, (Errno, String)> {
        let free = (1..=sw.numports()).any(|p| {
            sw.port(p)
                .is_none_or(|port| !port.is_active() && port.allocatable)
        });
        if !free {
            return Err((
                ENOSPC,
                format!("no free port for a cable (all {} in use)", sw.numports()),
            ));
        }
        let (_, number) = self.open(vnl, listen)?;
        Ok(format!(
            "cable {number}: {} {vnl}",
            if listen { "listening on" } else { "opened" }
        ))
    }

    fn del(&mut self, sw: &Switch, port: i64, now: Instant) -> Result<String, (Errno, String)> {
        if port < 1 || port > i64::from(sw.numports()) {
            return Err((EINVAL, format!("no port {port}")));
        }
        let Some((i, link)) = self.on_port(port as PortId) else {
            return Err((ENXIO, format!("no cable on port {port}")));
        };
        let c = self.get_mut(i).expect("found above");
        if c.listen {
            c.ep.close_link(link, now);
            Ok(format!(
                "cable {} link {link} on port {port} closed",
                c.number
            ))
        } else {
            c.ep.close(now);
            c.removed = true;
            Ok(format!("cable {} ({}) closed", c.number, c.vnl))
        }
    }

    fn print(
        &self,
        _sw: &Switch,
        port: Option<i64>,
        json: bool,
        now: Instant,
        out: &mut String,
    ) -> Result<(), Errno> {
        if let Some(p) = port {
            if p < 0 || p > PortId::MAX as i64 || self.on_port(p as PortId).is_none() {
                return Err(ENXIO);
            }
        }
        let mut cables_json = Vec::new();
        for c in self.slots.iter().flatten() {
            let st = c.ep.status(now);
            let on = |l: LinkId| c.links.iter().find(|x| x.link == l);
            let wanted =
                |l: LinkId| port.is_none_or(|p| on(l).and_then(|x| x.port) == Some(p as PortId));
            if port.is_some() && !st.links.iter().any(|l| wanted(l.link)) {
                continue;
            }
            if !json {
                Cables::status_line(c, &st, out);
            }
            let mut links_json = Vec::new();
            for l in st.links.iter().filter(|l| wanted(l.link)) {
                let p = on(l.link).and_then(|x| x.port);
                if json {
                    links_json.push(format!(
                        "{{\"link\":{},\"port\":{},\"up\":{},\"peer\":{},\"name\":{},\"cipher\":{},\
                         \"identity\":{},\"last_heard_ms\":{},\"rtt_us\":{},\"rekeys\":{},\"frames_in\":{},\
                         \"frames_out\":{},\"bytes_in\":{},\"bytes_out\":{},\"drops\":{}}}",
                        l.link,
                        p.map_or("null".into(), |p| p.to_string()),
                        l.up,
                        json_opt(l.peer),
                        json_opt(l.name.as_deref()),
                        json_opt(l.cipher.as_deref()),
                        json_opt(l.identity.as_deref()),
                        l.last_heard
                            .map_or("null".into(), |d| d.as_millis().to_string()),
                        l.rtt.map_or("null".into(), |d| d.as_micros().to_string()),
                        l.rekeys,
                        l.frames_in,
                        l.frames_out,
                        l.bytes_in,
                        l.bytes_out,
                        json_drops(&l.drops),
                    ));
                    continue;
                }
                let _ = write!(
                    out,
                    " port {} {}",
                    p.map_or("-".into(), |p| format!("{p:02}")),
                    if l.up { "UP" } else { "DOWN" }
                );
                if let Some(a) = l.peer {
                    let _ = write!(out, " peer {a}");
                }
                if let Some(n) = &l.name {
                    let _ = write!(out, " id {n}");
                }
                if let Some(cph) = &l.cipher {
                    let _ = write!(out, " cipher {cph}");
                }
                if let Some(i) = &l.identity {
                    let _ = write!(out, " identity {i}");
                }
                if let Some(h) = l.last_heard {
                    let _ = write!(out, " heard {:.1}s ago", h.as_secs_f64());
                }
                if let Some(r) = l.rtt {
                    let _ = write!(out, " rtt {:.3}ms", r.as_secs_f64() * 1e3);
                }
                let _ = writeln!(out, " rekeys {}", l.rekeys);
                let _ = writeln!(
                    out,
                    "  frames in {} out {}, bytes in {} out {}{}",
                    l.frames_in,
                    l.frames_out,
                    l.bytes_in,
                    l.bytes_out,
                    if l.drops.is_empty() {
                        String::new()
                    } else {
                        format!(", dropped: {}", drops_text(&l.drops))
                    }
                );
            }
            if json {
                cables_json.push(format!(
                    "{{\"cable\":{},\"vnl\":{},\"role\":{},\"local\":{},\"state\":{},\"drops\":{},\"links\":[{}]}}",
                    c.number,
                    json_str(&c.vnl),
                    json_str(st.role),
                    json_opt(st.local),
                    json_str(&st.state),
                    json_drops(&st.drops),
                    links_json.join(",")
                ));
            }
        }
        if json {
            let _ = writeln!(out, "[{}]", cables_json.join(","));
        }
        Ok(())
    }
}
