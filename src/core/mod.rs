//! The switch core: ports, endpoints, VLAN membership, the MAC table and
//! forwarding. A deterministic state machine in the style of quinn-proto:
//! it touches no socket and no clock. Callers pass frames and `now`, and
//! read back where each frame goes (`ingress` returns a slice of [`Out`])
//! and what else happened (`poll_event`).
//!
//! Nothing here allocates per forwarded frame: the output list is a vector
//! reused across calls and the MAC table is a fixed slab.

pub mod bitset;
pub mod bpdu;
pub mod fstp;
pub mod mactable;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::errno::*;
use crate::frame::{Frame, FrameError, Mac, TagOp, HEADER_LEN, TAG_LEN};
use bitset::PortSet;
use bpdu::{Bpdu, BridgeId, BPDU_DST};
use mactable::{Learn, MacTable};

/// A port number (0 is the management port).
pub type PortId = u32;
/// An endpoint id chosen by the IO shell; the C switch uses the control
/// connection's file descriptor, and prints it in `port/print`.
pub type EndpointId = u32;

/// VLAN number meaning "no untagged VLAN".
pub const NO_VLAN: u16 = 4095;
/// Highest VLAN that can be created.
pub const MAX_VLAN: u16 = 4093;

/// The most ports a switch has. Each port costs memory in every VLAN's
/// port sets whether it is used or not, so a `port/setnumports` far above
/// this would make the switch allocate gigabytes and abort (found by
/// fuzzing management lines); the C switch's own limit is its memory.
pub const MAX_PORTS: u32 = 65535;

/// Static configuration of a switch.
#[derive(Debug, Clone)]
pub struct Config {
    /// Usable ports are 1..=numports, at most [`MAX_PORTS`].
    pub numports: u32,
    pub hub: bool,
    pub hashsize: usize,
    pub mac: Mac,
    pub priority: u16,
    /// Fast spanning tree on (`-F`).
    pub fstp: bool,
    /// New ports speak standard 802.1w BPDUs instead of vde's (`--rstp`).
    pub rstp: bool,
    /// Root guard on every port that is not a cable the switch runs itself
    /// (endpoint module `cable`), unless set per port (`--guard`).
    pub guard: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            numports: 32,
            hub: false,
            hashsize: 128,
            mac: Mac([0x00, 0xff, 0, 0, 0, 1]),
            priority: 0x8000,
            fstp: false,
            rstp: false,
            guard: false,
        }
    }
}

/// Per-port traffic counters, as `port/print` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub pkts_in: u64,
    pub bytes_in: u64,
    pub pkts_out: u64,
    pub bytes_out: u64,
}

/// Switch-wide counts of frames dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Shorter than the Ethernet header.
    pub runt: u64,
    /// Longer than 1518 bytes.
    pub oversized: u64,
    /// Arrived on a port that has no endpoint (a race with a disconnect).
    pub no_port: u64,
    /// 802.1Q EtherType with the tag cut off.
    pub bad_tag: u64,
    /// VLAN the port is not a member of, VID 4095, or no untagged VLAN.
    pub vlan: u64,
    /// Port not forwarding in the frame's VLAN.
    pub not_forwarding: u64,
    /// Known destination is the ingress port.
    pub same_port: u64,
    /// Source not learned because the MAC table is at its bound.
    pub table_full: u64,
    /// Frames to the BPDU address that are not BPDUs we take (with FSTP on).
    pub bad_bpdu: u64,
    /// BPDUs on a BPDU-guarded port (whose endpoints were closed).
    pub bpdu_guard: u64,
    /// New source MACs on a port at its MAC limit (port/maclimit).
    pub mac_limit: u64,
    /// Source MACs still held by another port (port/movedamp).
    pub mac_move: u64,
    /// Flooded frames over a port's storm limit (port/stormlimit).
    pub storm: u64,
}

/// Port security and storm control of one port (kept by port number, like
/// [`Guards`]). Zero means off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Security {
    /// Most MAC addresses learned on the port (`port/maclimit N MAX`).
    pub mac_limit: u32,
    /// A MAC seen on another port less than this many seconds ago is
    /// pinned there: frames from it here are dropped (`port/movedamp`).
    pub move_damp: u64,
    /// Broadcast, multicast and unknown-unicast frames per second
    /// (`port/stormlimit N PPS`).
    pub storm_pps: u32,
    pub mac_limit_drops: u64,
    pub mac_move_drops: u64,
    pub storm_drops: u64,
    /// Storm control token bucket (frames, in 1/1000) and its last refill.
    tokens: u64,
    refilled: Option<Instant>,
    /// Last warning logged for this port (one per 5 s at most).
    logged: Option<Instant>,
}

impl Security {
    pub fn is_set(&self) -> bool {
        self.mac_limit > 0 || self.move_damp > 0 || self.storm_pps > 0
    }

    /// Takes one flooded frame from the bucket (burst: one second's worth).
    fn storm_ok(&mut self, now: Instant) -> bool {
        if self.storm_pps == 0 {
            return true;
        }
        let cap = u64::from(self.storm_pps) * 1000;
        let add = match self.refilled {
            None => cap,
            Some(t) => {
                let us = now.saturating_duration_since(t).as_micros() as u64;
                us.saturating_mul(u64::from(self.storm_pps)) / 1000
            }
        };
        if add > 0 {
            self.tokens = (self.tokens + add).min(cap);
            self.refilled = Some(now);
        }
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Whether a warning may be logged now (and notes that it was).
    fn may_log(&mut self, now: Instant) -> bool {
        if self
            .logged
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(5))
        {
            return false;
        }
        self.logged = Some(now);
        true
    }
}

/// Switch-wide counts of guard events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Root-inconsistent episodes (a root-guarded port heard superior
    /// information and was held discarding), over all VLANs.
    pub root_inconsistent: u64,
    /// Ports closed by BPDU guard.
    pub bpdu_closed: u64,
}

/// Per-port guard settings, kept by port number whether or not the port
/// exists (so rc files can set them before clients come).
#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// Root guard set on (`fstp/rootguard N 1`).
    pub root_on: PortSet,
    /// Root guard set off (`fstp/rootguard N 0`), overriding `--guard`.
    pub root_off: PortSet,
    /// BPDU guard (`fstp/bpduguard N 1`).
    pub bpdu: PortSet,
}

/// A client endpoint attached to a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    /// `unix prog` for control-socket clients, `tuntap` for tap devices.
    pub module: &'static str,
    pub descr: String,
    /// The client's uid, from the kernel's peer credentials.
    pub uid: Option<u32>,
    /// The groups the client's user is in (its primary group from the
    /// peer credentials, and the groups that list it as a member).
    pub gids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Port {
    /// Whether "any port" requests may take this port while it is inactive.
    pub allocatable: bool,
    /// Endpoints in attach order (printed newest first).
    pub endpoints: Vec<Endpoint>,
    pub untagged_vlan: u16,
    pub counters: Counters,
    /// Owner of the current endpoints.
    pub cur_user: Option<u32>,
    /// Access control (set with port/setuser, port/setgroup).
    pub ac_user: Option<u32>,
    pub ac_group: Option<u32>,
    /// Times BPDU guard closed this port's endpoints.
    pub bpdu_guard_closes: u64,
}

impl Port {
    fn new(allocatable: bool) -> Self {
        Port {
            allocatable,
            endpoints: Vec::new(),
            untagged_vlan: 0,
            counters: Counters::default(),
            cur_user: None,
            ac_user: None,
            ac_group: None,
            bpdu_guard_closes: 0,
        }
    }

    pub fn is_active(&self) -> bool {
        !self.endpoints.is_empty()
    }
}

/// Membership of one VLAN.
#[derive(Debug, Clone, Default)]
pub struct Vlan {
    /// Untagged members (ports whose untagged VLAN this is).
    pub untagged: PortSet,
    /// Tagged members.
    pub tagged: PortSet,
    /// Members that forward: active members (spanning tree permitting).
    pub fwd: PortSet,
    /// Edge ports of this VLAN's spanning tree (fstp/setedge).
    pub edge: PortSet,
    /// Bonus port and cost (fstp/bonus).
    pub bonus: Option<(PortId, i64)>,
}

impl Vlan {
    fn with_ports(n: usize) -> Self {
        Vlan {
            untagged: PortSet::with_ports(n),
            tagged: PortSet::with_ports(n),
            fwd: PortSet::with_ports(n),
            edge: PortSet::with_ports(n),
            bonus: None,
        }
    }

    pub fn is_member(&self, p: PortId) -> bool {
        self.untagged.contains(p) || self.tagged.contains(p)
    }

    /// All members (untagged and tagged) in port order.
    pub fn members(&self) -> impl Iterator<Item = (PortId, bool)> + '_ {
        let mut all = self.untagged.clone();
        for p in self.tagged.iter() {
            all.insert(p);
        }
        let tagged = &self.tagged;
        all.iter()
            .map(move |p| (p, tagged.contains(p)))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// Which port a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    Any,
    Port0,
    Port(u32),
}

/// Something that happened in the core that the shell or the management
/// sessions need to know about. Debug events are only produced for the
/// categories switched on with [`Switch::set_debug_mask`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The shell must close this endpoint's sockets (port/epclose, port/remove).
    CloseEndpoint(EndpointId),
    /// A debug line for subscribers of `category` (see [`crate::mgmt::debug`]).
    Debug { category: usize, text: String },
    /// A frame the switch itself sends (a BPDU) to every endpoint of `port`.
    Frame { port: PortId, frame: Vec<u8> },
}

/// Debug categories, in the order the C switch lists them.
pub const DBG_HASH_NEW: usize = 0;
pub const DBG_HASH_DEL: usize = 1;
pub const DBG_FSTP_STATUS: usize = 2;
pub const DBG_FSTP_ROOT: usize = 3;
pub const DBG_FSTP_UP: usize = 4;
pub const DBG_FSTP_DOWN: usize = 5;
pub const DBG_PORT_NEW: usize = 6;
pub const DBG_PORT_DEL: usize = 7;
pub const DBG_PORT_DESCR: usize = 8;
pub const DBG_EP_NEW: usize = 9;
pub const DBG_EP_DEL: usize = 10;

/// Where a frame goes: a port and the tag change on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Out {
    pub port: PortId,
    pub op: TagOp,
}

/// Tunables of the MAC table, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTimers {
    pub gc_interval: u64,
    pub expire: u64,
    pub min_persistence: u64,
}

impl Default for HashTimers {
    fn default() -> Self {
        HashTimers {
            gc_interval: 2,
            expire: 100,
            min_persistence: 3,
        }
    }
}

pub struct Switch {
    cfg: Config,
    start: Instant,
    ports: Vec<Option<Port>>,
    /// Indexed by VID; boxed so the 4096 slots cost little when empty.
    vlans: Vec<Option<Box<Vlan>>>,
    macs: MacTable,
    pub timers: HashTimers,
    next_gc: u64,
    out: Vec<Out>,
    events: VecDeque<Event>,
    debug_mask: u64,
    pub drops: Drops,
    /// Spanning-tree instances by VLAN (only while FSTP is on).
    instances: Vec<Option<Box<fstp::Instance>>>,
    /// Timers of new spanning-tree instances.
    pub fstp_timers: fstp::Timers,
    /// Ports where a standard (802.1D) bridge was heard: BPDUs go out there
    /// as 802.1D configuration BPDUs.
    std_bpdu: PortSet,
    /// Ports set to the standard 802.1w encoding (`--rstp`, `fstp/setrstp`).
    rstp_ports: PortSet,
    /// The latest time the shell told us (for changes made by commands).
    now: Instant,
    guards: Guards,
    pub guard_stats: GuardStats,
    /// Port security and storm control, by port number.
    security: Vec<Security>,
}

impl Switch {
    pub fn new(cfg: Config, now: Instant) -> Self {
        let (hashsize, _) = mactable::round_hash_size(cfg.hashsize);
        let nslots = cfg.numports as usize + 1;
        let mut vlans: Vec<Option<Box<Vlan>>> = vec![None; 4096];
        vlans[0] = Some(Box::new(Vlan::with_ports(nslots)));
        let timers = HashTimers::default();
        Switch {
            ports: vec![None; nslots],
            vlans,
            macs: MacTable::new(hashsize),
            next_gc: timers.gc_interval,
            timers,
            out: Vec::with_capacity(nslots),
            events: VecDeque::new(),
            debug_mask: 0,
            drops: Drops::default(),
            instances: (0..4096).map(|_| None).collect(),
            fstp_timers: fstp::Timers::default(),
            std_bpdu: PortSet::with_ports(nslots),
            rstp_ports: PortSet::with_ports(nslots),
            now,
            guards: Guards::default(),
            guard_stats: GuardStats::default(),
            security: vec![Security::default(); nslots],
            start: now,
            cfg: Config { hashsize, ..cfg },
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whole seconds since the switch started (the C switch's "qtime").
    pub fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    pub fn numports(&self) -> u32 {
        self.cfg.numports
    }

    pub fn is_hub(&self) -> bool {
        self.cfg.hub
    }

    pub fn port(&self, p: PortId) -> Option<&Port> {
        self.ports.get(p as usize).and_then(|x| x.as_ref())
    }

    /// Allocated ports in order.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, &Port)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i as PortId, p)))
    }

    pub fn vlan(&self, v: u16) -> Option<&Vlan> {
        self.vlans.get(v as usize).and_then(|x| x.as_deref())
    }

    pub fn vlans(&self) -> impl Iterator<Item = (u16, &Vlan)> {
        self.vlans
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_deref().map(|v| (i as u16, v)))
    }

    pub fn mac_table(&self) -> &MacTable {
        &self.macs
    }

    /// Switches debug event production on for the categories whose bits
    /// are set (the union of every session's subscriptions).
    pub fn set_debug_mask(&mut self, mask: u64) {
        self.debug_mask = mask;
    }

    /// Whether [`Switch::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Next thing the shell must act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn debug(&mut self, category: usize, text: impl FnOnce() -> String) {
        if self.debug_mask & (1 << category) != 0 {
            self.events.push_back(Event::Debug {
                category,
                text: text(),
            });
        }
    }

    // ---------------------------------------------------------------
    // Timers

    /// When [`Switch::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        let gc = self.start + Duration::from_secs(self.next_gc);
        self.instances
            .iter()
            .flatten()
            .filter_map(|i| i.poll_timeout())
            .fold(gc, |a, b| a.min(b))
    }

    /// Runs the MAC table garbage collector if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        for v in 0..self.instances.len() {
            if let Some(inst) = self.instances[v].as_mut() {
                if inst.poll_timeout().is_some_and(|t| t <= now) {
                    inst.handle_timeout(now);
                    self.drain_fstp(v as u16);
                }
            }
        }
        let t = self.secs(now);
        if t < self.next_gc {
            return;
        }
        self.next_gc = t + self.timers.gc_interval.max(1);
        let expire = self.timers.expire;
        self.flush_macs(move |e| e.last_seen + expire < t);
    }

    fn flush_macs(&mut self, dead: impl FnMut(&mactable::EntryView) -> bool) {
        let mut gone = Vec::new();
        let want = self.debug_mask & (1 << DBG_HASH_DEL) != 0;
        self.macs.retain(dead, |e| {
            if want {
                gone.push(e)
            }
        });
        for e in gone {
            self.debug(DBG_HASH_DEL, || hash_dbg(e.mac, e.vlan, e.port));
        }
    }

    /// Flushes every MAC learned in the VLANs `port` belongs to (the C
    /// switch's topology-change pseudo event on join, leave and setvlan).
    fn flush_port_vlans(&mut self, port: PortId) {
        let vl: Vec<u16> = self
            .vlans()
            .filter(|(_, v)| v.is_member(port))
            .map(|(n, _)| n)
            .collect();
        if !vl.is_empty() {
            self.flush_macs(|e| vl.contains(&e.vlan));
        }
    }

    // ---------------------------------------------------------------
    // Forwarding

    /// Takes a frame that arrived on `port` and returns where it goes.
    /// Counters are updated as the C switch does: IN before any VLAN
    /// check, OUT once per destination port with the length sent.
    pub fn ingress(&mut self, port: PortId, buf: &[u8], now: Instant) -> &[Out] {
        self.out.clear();
        let frame = match Frame::new_checked(buf) {
            Ok(f) => f,
            Err(FrameError::Runt(_)) => {
                self.drops.runt += 1;
                return &self.out;
            }
            Err(FrameError::Oversized(_)) => {
                self.drops.oversized += 1;
                return &self.out;
            }
        };
        let len = frame.len() as u64;
        let Some(p) = self.ports.get_mut(port as usize).and_then(|p| p.as_mut()) else {
            self.drops.no_port += 1;
            return &self.out;
        };
        p.counters.pkts_in += 1;
        p.counters.bytes_in += len;
        let untagged_vlan = p.untagged_vlan;
        if frame.dst() == BPDU_DST && self.guards.bpdu.contains(port) {
            self.bpdu_guard_trip(port);
            return &self.out;
        }

        if self.cfg.hub {
            for (i, q) in self.ports.iter_mut().enumerate().skip(1) {
                if let Some(q) = q {
                    if i as PortId != port {
                        q.counters.pkts_out += 1;
                        q.counters.bytes_out += len;
                        self.out.push(Out {
                            port: i as PortId,
                            op: TagOp::Keep,
                        });
                    }
                }
            }
            return &self.out;
        }

        let tagged_in = frame.is_tagged();
        let vid = if tagged_in {
            let Some(tci) = frame.tci() else {
                self.drops.bad_tag += 1;
                return &self.out;
            };
            let vid = tci & 0x0fff;
            match self.vlans[vid as usize].as_ref() {
                Some(v) if vid != NO_VLAN && v.is_member(port) => vid,
                _ => {
                    self.drops.vlan += 1;
                    return &self.out;
                }
            }
        } else {
            if untagged_vlan == NO_VLAN {
                self.drops.vlan += 1;
                return &self.out;
            }
            untagged_vlan
        };
        if tagged_in && frame.len() < HEADER_LEN + TAG_LEN {
            self.drops.bad_tag += 1;
            return &self.out;
        }
        if self.fstp_on() && frame.dst() == BPDU_DST {
            let parsed = match if self.rstp_ports.contains(port) {
                bpdu::rstp::parse(buf)
            } else {
                Bpdu::parse(buf)
            } {
                Err(bpdu::BpduError::Unsupported {
                    version: 0,
                    kind: 0,
                }) => {
                    // a standard 802.1D bridge: answer it in its own format
                    let r = bpdu::config::parse(buf);
                    if r.is_ok() {
                        self.std_bpdu.insert(port);
                    }
                    r
                }
                r => r,
            };
            match parsed {
                Ok((b, _)) => {
                    self.set_now(now);
                    let legacy = self.std_bpdu.contains(port);
                    if let Some(inst) = self.instances[vid as usize].as_mut() {
                        inst.set_legacy(port, legacy);
                        inst.handle_bpdu(port, &b, now);
                        self.drain_fstp(vid);
                    }
                }
                Err(_) => self.drops.bad_bpdu += 1,
            }
            self.out.clear();
            return &self.out;
        }
        let Some(vlan) = self.vlans[vid as usize].as_ref() else {
            self.drops.vlan += 1;
            return &self.out;
        };
        if !vlan.fwd.contains(port) {
            self.drops.not_forwarding += 1;
            return &self.out;
        }

        let t = self.secs(now);
        let src = frame.src();
        if !src.is_multicast() && !self.port_security(port, src, vid, t, now) {
            return &self.out;
        }
        if !src.is_multicast() {
            match self
                .macs
                .learn(src, vid, port, t, self.timers.min_persistence)
            {
                Learn::New => self.debug(DBG_HASH_NEW, || hash_dbg(src, vid, port)),
                Learn::Moved { from } | Learn::MoveRefused { stays: from } => {
                    tracing::info!("MAC {src} moved from port {from} to port {port}");
                }
                Learn::TableFull => self.drops.table_full += 1,
                Learn::Refreshed => {}
            }
        }

        let dst = frame.dst();
        let known = if dst.is_multicast() {
            None
        } else {
            self.macs.lookup(dst, vid, t, self.timers.expire)
        };
        let direct = known.is_some_and(|q| {
            q == port
                || self.vlans[vid as usize]
                    .as_ref()
                    .is_some_and(|v| v.fwd.contains(q))
        });
        if !direct {
            if let Some(sec) = self.security.get_mut(port as usize) {
                if !sec.storm_ok(now) {
                    sec.storm_drops += 1;
                    self.drops.storm += 1;
                    if sec.may_log(now) {
                        tracing::warn!(
                            "storm control: port {port} over {} flooded frames/s, dropping",
                            sec.storm_pps
                        );
                    }
                    return &self.out;
                }
            }
        }
        let vlan = self.vlans[vid as usize].as_ref().expect("checked above");
        let op_for = |q: PortId| match (tagged_in, vlan.tagged.contains(q)) {
            (true, true) | (false, false) => TagOp::Keep,
            (true, false) => TagOp::Strip,
            (false, true) => TagOp::Insert(vid),
        };
        match known {
            Some(q) if q == port => self.drops.same_port += 1,
            Some(q) if vlan.fwd.contains(q) => self.out.push(Out {
                port: q,
                op: op_for(q),
            }),
            _ => {
                for q in vlan.fwd.iter() {
                    if q != port {
                        self.out.push(Out {
                            port: q,
                            op: op_for(q),
                        });
                    }
                }
            }
        }
        for o in &self.out {
            if let Some(Some(q)) = self.ports.get_mut(o.port as usize) {
                q.counters.pkts_out += 1;
                q.counters.bytes_out += match o.op {
                    TagOp::Keep => len,
                    TagOp::Strip => len - TAG_LEN as u64,
                    TagOp::Insert(_) => len + TAG_LEN as u64,
                };
            }
        }
        &self.out
    }

    /// Port security for a frame from `src` on `port`: false (dropped and
    /// counted) when the port is at its MAC limit and `src` is new to it,
    /// or when `src` is pinned to another port by move damping.
    fn port_security(&mut self, port: PortId, src: Mac, vid: u16, t: u64, now: Instant) -> bool {
        let Some(sec) = self.security.get_mut(port as usize) else {
            return true;
        };
        if sec.mac_limit == 0 && sec.move_damp == 0 {
            return true;
        }
        let held = self.macs.get(src, vid);
        if let Some(e) = held {
            if e.port == port {
                return true;
            }
            if sec.move_damp > 0 && t.saturating_sub(e.last_seen) < sec.move_damp {
                sec.mac_move_drops += 1;
                self.drops.mac_move += 1;
                if sec.may_log(now) {
                    tracing::warn!(
                        "MAC move damping: {src} VLAN {vid} is pinned to port {}; \
                         frames from it on port {port} dropped",
                        e.port
                    );
                }
                return false;
            }
        }
        if sec.mac_limit > 0 && self.macs.port_count(port) >= sec.mac_limit {
            sec.mac_limit_drops += 1;
            self.drops.mac_limit += 1;
            if sec.may_log(now) {
                tracing::warn!(
                    "port security: port {port} is at its limit of {} MACs; \
                     frames from {src} dropped",
                    sec.mac_limit
                );
            }
            return false;
        }
        true
    }

    /// Port security and storm control of a port (defaults if never set).
    pub fn security(&self, port: PortId) -> Security {
        self.security
            .get(port as usize)
            .copied()
            .unwrap_or_default()
    }

    fn security_mut(&mut self, port: i64) -> Result<&mut Security, Errno> {
        let p = self.check_port(port)?;
        if p == 0 {
            return Err(EINVAL);
        }
        Ok(&mut self.security[p as usize])
    }

    /// `port/maclimit N MAX` (0: no limit). Hidden: not a C command.
    pub fn port_maclimit(&mut self, port: i64, max: i64) -> Result<(), Errno> {
        let max = u32::try_from(max).map_err(|_| EINVAL)?;
        self.security_mut(port)?.mac_limit = max;
        Ok(())
    }

    /// `port/movedamp N SECS` (0: off). Hidden: not a C command.
    pub fn port_movedamp(&mut self, port: i64, secs: i64) -> Result<(), Errno> {
        let secs = u64::try_from(secs).map_err(|_| EINVAL)?;
        self.security_mut(port)?.move_damp = secs;
        Ok(())
    }

    /// `port/stormlimit N PPS` (0: off). Hidden: not a C command.
    pub fn port_stormlimit(&mut self, port: i64, pps: i64) -> Result<(), Errno> {
        let pps = u32::try_from(pps).map_err(|_| EINVAL)?;
        let s = self.security_mut(port)?;
        s.storm_pps = pps;
        s.tokens = 0;
        s.refilled = None;
        Ok(())
    }

    // ---------------------------------------------------------------
    // Endpoints

    /// Attaches a new endpoint. Returns the port it got.
    pub fn attach(&mut self, req: PortRequest, ep: Endpoint) -> Result<PortId, Errno> {
        if self
            .ports
            .iter()
            .flatten()
            .any(|p| p.endpoints.iter().any(|e| e.id == ep.id))
        {
            return Err(EEXIST);
        }
        let port = match req {
            PortRequest::Port0 => 0,
            PortRequest::Port(n) => {
                if n == 0 || n > self.cfg.numports {
                    return Err(EINVAL);
                }
                n
            }
            PortRequest::Any => (1..=self.cfg.numports)
                .find(|&i| match &self.ports[i as usize] {
                    None => true,
                    Some(p) => !p.is_active() && p.allocatable,
                })
                .ok_or(ENOSPC)?,
        };
        if self.ports[port as usize].is_none() {
            self.alloc_port(port, true);
        }
        let p = self.ports[port as usize].as_mut().expect("allocated above");
        if p.is_active() {
            if p.cur_user != ep.uid {
                return Err(EADDRINUSE);
            }
        } else {
            let allowed = access_allowed(p.ac_user, p.ac_group, ep.uid, &ep.gids);
            if !allowed {
                return Err(EPERM);
            }
            p.cur_user = ep.uid;
        }
        let first = !p.is_active();
        let id = ep.id;
        let descr = ep.descr.clone();
        p.endpoints.push(ep);
        if first {
            self.set_active(port, true);
        }
        self.debug(DBG_EP_NEW, || format!("Port {port:02} FD {id:2}"));
        self.debug(DBG_PORT_DESCR, || {
            format!("Port {port:02} FD {id:2} -> \"{descr}\"")
        });
        Ok(port)
    }

    /// Detaches an endpoint (its client went away). Returns its port.
    pub fn detach(&mut self, id: EndpointId) -> Option<PortId> {
        let (port, p) = self.ports.iter_mut().enumerate().find_map(|(i, p)| {
            p.as_mut()
                .filter(|p| p.endpoints.iter().any(|e| e.id == id))
                .map(|p| (i, p))
        })?;
        p.endpoints.retain(|e| e.id != id);
        let last = p.endpoints.is_empty();
        if last {
            p.cur_user = None;
        }
        let port = port as PortId;
        self.debug(DBG_EP_DEL, || format!("Port {port:02} FD {id:2}"));
        if last {
            self.debug(DBG_PORT_DEL, || format!("{port:02}"));
            self.set_active(port, false);
            self.flush_macs(|e| e.port == port);
        }
        Some(port)
    }

    fn alloc_port(&mut self, port: PortId, allocatable: bool) {
        self.ports[port as usize] = Some(Port::new(allocatable));
        if self.cfg.rstp {
            self.rstp_ports.insert(port);
        } else {
            self.rstp_ports.remove(port);
        }
        if let Some(v) = self.vlans[0].as_mut() {
            v.untagged.insert(port);
        }
        self.debug(DBG_PORT_NEW, || format!("{port:02}"));
    }

    /// Marks a port active or inactive in the forwarding sets of its VLANs,
    /// flushing their MAC tables as the C switch does on join and leave.
    fn set_active(&mut self, port: PortId, active: bool) {
        self.flush_port_vlans(port);
        if !active {
            self.std_bpdu.remove(port);
        }
        let stp = self.fstp_on();
        for v in self.vlans.iter_mut().flatten() {
            if active && v.is_member(port) && !stp {
                v.fwd.insert(port);
            } else if !active {
                v.fwd.remove(port);
            }
        }
        self.reconcile_all();
    }

    // ---------------------------------------------------------------
    // Fast spanning tree

    /// Tells the core the time (for changes made by commands).
    pub fn set_now(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// Whether the spanning tree runs (never in hub mode).
    pub fn fstp_on(&self) -> bool {
        self.cfg.fstp && !self.cfg.hub
    }

    pub fn fstp_instance(&self, vlan: u16) -> Option<&fstp::Instance> {
        self.instances.get(vlan as usize).and_then(|i| i.as_deref())
    }

    /// `fstp/setfstp`: starts or stops the spanning tree of every VLAN.
    pub fn set_fstp(&mut self, on: bool) {
        self.cfg.fstp = on;
        if !self.fstp_on() {
            for i in self.instances.iter_mut() {
                *i = None;
            }
            // without the tree every active member forwards
            let active: Vec<PortId> = self
                .ports()
                .filter(|(_, p)| p.is_active())
                .map(|(i, _)| i)
                .collect();
            for v in self.vlans.iter_mut().flatten() {
                for &p in &active {
                    if v.is_member(p) {
                        v.fwd.insert(p);
                    }
                }
            }
        } else {
            self.reconcile_all();
        }
    }

    /// Brings each VLAN's instance in line with the active members.
    fn reconcile_all(&mut self) {
        for v in 0..4096u16 {
            if self.vlans[v as usize].is_some() {
                self.reconcile(v);
            } else {
                self.instances[v as usize] = None;
            }
        }
    }

    /// Creates the VLAN's instance if needed and tells it which ports are
    /// up (active members); ports going down stop forwarding at once.
    fn reconcile(&mut self, vid: u16) {
        if !self.fstp_on() {
            return;
        }
        let Some(vlan) = self.vlans[vid as usize].as_ref() else {
            return;
        };
        let want: Vec<PortId> = vlan
            .members()
            .map(|(p, _)| p)
            .filter(|&p| self.port(p).is_some_and(|x| x.is_active()))
            .collect();
        let (edge, bonus) = (vlan.edge.clone(), vlan.bonus);
        let guarded: Vec<PortId> = want
            .iter()
            .copied()
            .filter(|&p| self.root_guarded(p))
            .collect();
        let now = self.now;
        let created = self.instances[vid as usize].is_none();
        if created {
            let id = BridgeId::new(self.cfg.priority, self.cfg.mac);
            let mut inst = fstp::Instance::new(id, vid, self.fstp_timers, now);
            inst.set_bonus(bonus, now);
            self.instances[vid as usize] = Some(Box::new(inst));
            if let Some(v) = self.vlans[vid as usize].as_mut() {
                v.fwd = PortSet::with_ports(self.ports.len());
            }
        }
        let inst = self.instances[vid as usize]
            .as_mut()
            .expect("created above");
        let had: Vec<PortId> = inst.up_ports().collect();
        let mut changed = Vec::new();
        for &p in had.iter().filter(|p| !want.contains(p)) {
            inst.port_down(p, now);
            changed.push((p, false));
        }
        for &p in &want {
            inst.set_root_guard(p, guarded.contains(&p), now);
        }
        for &p in want.iter().filter(|p| !had.contains(p)) {
            if edge.contains(p) {
                inst.set_edge(p, true, now);
            }
            inst.port_up(p, now);
            changed.push((p, true));
        }
        for (p, up) in changed {
            if !up {
                if let Some(v) = self.vlans[vid as usize].as_mut() {
                    v.fwd.remove(p);
                }
            }
            let cat = if up { DBG_FSTP_UP } else { DBG_FSTP_DOWN };
            self.debug(cat, || {
                format!("Port {p:04} VLAN {:02x}:{:02x}", vid >> 8, vid & 0xff)
            });
        }
        self.drain_fstp(vid);
    }

    /// Acts on what a VLAN's instance asks for.
    fn drain_fstp(&mut self, vid: u16) {
        let Some(mut inst) = self.instances[vid as usize].take() else {
            return;
        };
        while let Some(out) = inst.poll_output() {
            match out {
                fstp::Output::Send { port, bpdu } => self.send_bpdu(vid, port, &bpdu),
                fstp::Output::State { port, forwarding } => {
                    let active = self.port(port).is_some_and(|p| p.is_active());
                    if let Some(v) = self.vlans[vid as usize].as_mut() {
                        if forwarding && active && v.is_member(port) {
                            v.fwd.insert(port);
                        } else {
                            v.fwd.remove(port);
                        }
                    }
                    let st = if forwarding {
                        "learning+forwarding"
                    } else {
                        "discarding"
                    };
                    self.debug(DBG_FSTP_STATUS, || {
                        format!(
                            "Port {port:04} VLAN {:02x}:{:02x} {st}",
                            vid >> 8,
                            vid & 0xff
                        )
                    });
                }
                fstp::Output::Flush { ports } => {
                    self.flush_macs(|e| e.vlan == vid && ports.contains(&e.port));
                }
                fstp::Output::RootGuard { port, held } => {
                    if held {
                        self.guard_stats.root_inconsistent += 1;
                        tracing::warn!(
                            "root guard: port {port} VLAN {vid} heard a better root; \
                             held discarding (root-inconsistent)"
                        );
                    } else {
                        tracing::warn!("root guard: port {port} VLAN {vid} recovered");
                    }
                }
                fstp::Output::RootChanged { root, root_port } => {
                    let rp = root_port.unwrap_or(0);
                    self.debug(DBG_FSTP_ROOT, || {
                        format!(
                            "Port {rp:04} VLAN {:02x}:{:02x} -> {root}",
                            vid >> 8,
                            vid & 0xff
                        )
                    });
                }
            }
        }
        self.instances[vid as usize] = Some(inst);
    }

    /// Queues a BPDU for every endpoint of `port`, tagged on tagged members.
    fn send_bpdu(&mut self, vid: u16, port: PortId, b: &Bpdu) {
        let tagged = self.vlans[vid as usize]
            .as_ref()
            .is_some_and(|v| v.tagged.contains(port));
        let mut buf = [0u8; 64];
        let n = if self.std_bpdu.contains(port) {
            bpdu::config::emit(b, self.cfg.mac, tagged.then_some(vid), &mut buf)
        } else if self.rstp_ports.contains(port) {
            bpdu::rstp::emit(b, self.cfg.mac, tagged.then_some(vid), &mut buf)
        } else {
            b.emit(self.cfg.mac, tagged.then_some(vid), &mut buf)
        };
        if let Some(Some(p)) = self.ports.get_mut(port as usize) {
            p.counters.pkts_out += 1;
            p.counters.bytes_out += n as u64;
        }
        self.events.push_back(Event::Frame {
            port,
            frame: buf[..n].to_vec(),
        });
    }

    /// `fstp/setedge VLAN PORT 0|1`
    pub fn fstp_setedge(&mut self, vlan: i64, port: i64, edge: bool) -> Result<(), Errno> {
        if !(0..=i64::from(MAX_VLAN)).contains(&vlan) {
            return Err(EINVAL);
        }
        let p = self.check_port(port)?;
        let v = self.vlans[vlan as usize].as_mut().ok_or(ENXIO)?;
        if edge {
            v.edge.insert(p);
        } else {
            v.edge.remove(p);
        }
        let now = self.now;
        if let Some(inst) = self.instances[vlan as usize].as_mut() {
            inst.set_edge(p, edge, now);
            self.drain_fstp(vlan as u16);
        }
        Ok(())
    }

    /// Whether root guard is on for `port`: set per port, or by `--guard`
    /// on a port that is not a cable the switch runs itself.
    pub fn root_guarded(&self, port: PortId) -> bool {
        if self.guards.root_on.contains(port) {
            return true;
        }
        if self.guards.root_off.contains(port) {
            return false;
        }
        self.cfg.guard
            && !self
                .port(port)
                .is_some_and(|p| p.endpoints.iter().any(|e| e.module == "cable"))
    }

    /// Whether BPDU guard is on for `port`.
    pub fn bpdu_guarded(&self, port: PortId) -> bool {
        self.guards.bpdu.contains(port)
    }

    /// `fstp/rootguard PORT 0|1` (hidden: not a C command).
    pub fn fstp_rootguard(&mut self, port: i64, on: bool) -> Result<(), Errno> {
        let p = self.check_port(port)?;
        if p == 0 {
            return Err(EINVAL);
        }
        if on {
            self.guards.root_on.insert(p);
            self.guards.root_off.remove(p);
        } else {
            self.guards.root_on.remove(p);
            self.guards.root_off.insert(p);
        }
        self.reconcile_all();
        Ok(())
    }

    /// `fstp/bpduguard PORT 0|1` (hidden: not a C command).
    pub fn fstp_bpduguard(&mut self, port: i64, on: bool) -> Result<(), Errno> {
        let p = self.check_port(port)?;
        if p == 0 {
            return Err(EINVAL);
        }
        if on {
            self.guards.bpdu.insert(p);
        } else {
            self.guards.bpdu.remove(p);
        }
        Ok(())
    }

    /// A BPDU arrived on a BPDU-guarded port: every endpoint of the port
    /// is detached and the shell told to close it; the port stays, free
    /// for the next client.
    fn bpdu_guard_trip(&mut self, port: PortId) {
        self.drops.bpdu_guard += 1;
        let Some(p) = self.ports.get_mut(port as usize).and_then(|p| p.as_mut()) else {
            return;
        };
        p.bpdu_guard_closes += 1;
        let ids: Vec<EndpointId> = p.endpoints.iter().map(|e| e.id).collect();
        if ids.is_empty() {
            return;
        }
        self.guard_stats.bpdu_closed += 1;
        tracing::warn!("BPDU guard: port {port} heard a BPDU; closing its endpoints {ids:?}");
        for id in ids {
            self.detach(id);
            self.events.push_back(Event::CloseEndpoint(id));
        }
    }

    /// `fstp/bonus VLAN PORT COST`
    /// `fstp/setrstp PORT 0|1`: the port speaks standard 802.1w (1) or
    /// vde's FSTP encoding (0). Hidden from `help` (not a C command).
    pub fn fstp_setrstp(&mut self, port: i64, on: bool) -> Result<(), Errno> {
        let p = self.check_port(port)?;
        if on {
            self.rstp_ports.insert(p);
        } else {
            self.rstp_ports.remove(p);
        }
        Ok(())
    }

    /// Whether a port speaks standard 802.1w BPDUs.
    pub fn is_rstp(&self, port: PortId) -> bool {
        self.rstp_ports.contains(port)
    }

    pub fn fstp_bonus(&mut self, vlan: i64, port: i64, cost: i64) -> Result<(), Errno> {
        if !(0..=i64::from(MAX_VLAN)).contains(&vlan) {
            return Err(EINVAL);
        }
        let p = self.check_port(port)?;
        let v = self.vlans[vlan as usize].as_mut().ok_or(ENXIO)?;
        v.bonus = Some((p, cost));
        let now = self.now;
        if let Some(inst) = self.instances[vlan as usize].as_mut() {
            inst.set_bonus(Some((p, cost)), now);
            self.drain_fstp(vlan as u16);
        }
        Ok(())
    }

    // ---------------------------------------------------------------
    // Management operations (each returns the C switch's errno on failure)

    fn check_port(&self, p: i64) -> Result<PortId, Errno> {
        if p < 0 || p > i64::from(self.cfg.numports) {
            return Err(EINVAL);
        }
        Ok(p as PortId)
    }

    /// `port/create N` (N = 0 picks the lowest free port, as in C).
    pub fn port_create(&mut self, n: i64) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        if p == 0 {
            return self.port_createauto().map(|_| ());
        }
        if self.ports[p as usize].is_some() {
            return Err(EEXIST);
        }
        self.alloc_port(p, false);
        Ok(())
    }

    /// `port/createauto`: the lowest free port, not allocatable.
    pub fn port_createauto(&mut self) -> Result<PortId, Errno> {
        let p = (1..=self.cfg.numports)
            .find(|&i| self.ports[i as usize].is_none())
            .ok_or(ENOSPC)?;
        self.alloc_port(p, false);
        Ok(p)
    }

    /// `port/remove N`
    pub fn port_remove(&mut self, n: i64) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        match &self.ports[p as usize] {
            None => return Err(ENXIO),
            Some(port) if port.is_active() => return Err(EADDRINUSE),
            Some(_) => {}
        }
        self.ports[p as usize] = None;
        for v in self.vlans.iter_mut().flatten() {
            v.untagged.remove(p);
            v.tagged.remove(p);
            v.fwd.remove(p);
        }
        self.reconcile_all();
        Ok(())
    }

    /// `port/allocatable N 0|1`
    pub fn port_allocatable(&mut self, n: i64, flag: bool) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        let port = self.ports[p as usize].as_mut().ok_or(ENXIO)?;
        port.allocatable = flag;
        Ok(())
    }

    /// `port/epclose N ID`: detaches the endpoint and asks the shell to
    /// close its sockets.
    pub fn port_epclose(&mut self, n: i64, id: i64) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        let port = self.ports[p as usize].as_ref().ok_or(ENXIO)?;
        let id = u32::try_from(id).map_err(|_| ENXIO)?;
        if !port.endpoints.iter().any(|e| e.id == id) {
            return Err(ENXIO);
        }
        self.detach(id);
        self.events.push_back(Event::CloseEndpoint(id));
        Ok(())
    }

    /// `port/resetcounter [N]`
    pub fn port_resetcounter(&mut self, n: Option<i64>) -> Result<(), Errno> {
        match n {
            None => {
                for p in self.ports.iter_mut().flatten() {
                    p.counters = Counters::default();
                }
                Ok(())
            }
            Some(n) => {
                let p = self.check_port(n)?;
                let port = self.ports[p as usize].as_mut().ok_or(ENXIO)?;
                port.counters = Counters::default();
                Ok(())
            }
        }
    }

    /// `port/sethub 0|1`
    pub fn set_hub(&mut self, hub: bool) {
        self.cfg.hub = hub;
    }

    /// `port/setnumports N`: usable ports become 1..=N (at most
    /// [`MAX_PORTS`]).
    pub fn set_numports(&mut self, n: i64) -> Result<(), Errno> {
        if n < 1 || n > i64::from(MAX_PORTS) {
            return Err(EINVAL);
        }
        let n = n as u32;
        if self
            .ports
            .iter()
            .enumerate()
            .skip(n as usize + 1)
            .any(|(_, p)| p.is_some())
        {
            return Err(EADDRINUSE);
        }
        let slots = n as usize + 1;
        self.ports.resize(slots, None);
        self.security.resize(slots, Security::default());
        for v in self.vlans.iter_mut().flatten() {
            v.untagged.resize(slots);
            v.tagged.resize(slots);
            v.fwd.resize(slots);
        }
        self.out = Vec::with_capacity(slots);
        self.cfg.numports = n;
        Ok(())
    }

    /// `port/setvlan N VLAN`: moves the port's untagged membership.
    pub fn port_setvlan(&mut self, n: i64, vlan: i64) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        if !(0..=i64::from(NO_VLAN)).contains(&vlan) {
            return Err(EINVAL);
        }
        let vlan = vlan as u16;
        let port = self.ports[p as usize].as_ref().ok_or(ENXIO)?;
        if vlan != NO_VLAN && self.vlans[vlan as usize].is_none() {
            return Err(ENXIO);
        }
        let active = port.is_active();
        let old = port.untagged_vlan;
        self.flush_macs(|e| e.port == p);
        if old != NO_VLAN {
            if let Some(v) = self.vlans[old as usize].as_mut() {
                v.untagged.remove(p);
                if !v.tagged.contains(p) {
                    v.fwd.remove(p);
                }
            }
        }
        if vlan != NO_VLAN {
            let v = self.vlans[vlan as usize].as_mut().expect("checked above");
            v.tagged.remove(p);
            v.untagged.insert(p);
            if active {
                v.fwd.insert(p);
            }
        }
        if let Some(port) = self.ports[p as usize].as_mut() {
            port.untagged_vlan = vlan;
        }
        self.reconcile_all();
        Ok(())
    }

    /// `vlan/create N`
    pub fn vlan_create(&mut self, n: i64) -> Result<(), Errno> {
        if !(1..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        let slot = &mut self.vlans[n as usize];
        if slot.is_some() {
            return Err(EEXIST);
        }
        *slot = Some(Box::new(Vlan::with_ports(self.ports.len())));
        self.reconcile(n as u16);
        Ok(())
    }

    /// `vlan/remove N`
    pub fn vlan_remove(&mut self, n: i64) -> Result<(), Errno> {
        if !(0..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        let v = self.vlans[n as usize].as_ref().ok_or(ENXIO)?;
        if !v.untagged.is_empty() || !v.tagged.is_empty() {
            return Err(EADDRINUSE);
        }
        self.vlans[n as usize] = None;
        self.instances[n as usize] = None;
        Ok(())
    }

    /// `vlan/addport N PORT`: a tagged member.
    pub fn vlan_addport(&mut self, n: i64, port: i64) -> Result<(), Errno> {
        if !(0..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        let p = self.check_port(port)?;
        let active = self.ports[p as usize].as_ref().ok_or(ENXIO)?.is_active();
        let v = self.vlans[n as usize].as_mut().ok_or(ENXIO)?;
        if v.is_member(p) {
            return Err(EEXIST);
        }
        v.tagged.insert(p);
        if active {
            v.fwd.insert(p);
        }
        let n = n as u16;
        self.flush_macs(|e| e.vlan == n);
        self.reconcile(n);
        Ok(())
    }

    /// `vlan/delport N PORT`
    pub fn vlan_delport(&mut self, n: i64, port: i64) -> Result<(), Errno> {
        if !(0..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        let p = self.check_port(port)?;
        let untagged = self.ports[p as usize].as_ref().ok_or(ENXIO)?.untagged_vlan;
        let v = self.vlans[n as usize].as_mut().ok_or(ENXIO)?;
        if untagged == n as u16 {
            return Err(EADDRINUSE);
        }
        if !v.tagged.contains(p) {
            return Err(ENXIO);
        }
        v.tagged.remove(p);
        v.fwd.remove(p);
        self.flush_macs(|e| e.port == p);
        self.reconcile(n as u16);
        Ok(())
    }

    /// `hash/setsize N`: rebuilds (and so flushes) the table. Returns the
    /// size used and whether it had to be rounded up.
    pub fn hash_setsize(&mut self, n: i64) -> Result<(usize, bool), Errno> {
        if !(1..=1 << 24).contains(&n) {
            return Err(EINVAL);
        }
        let (size, rounded) = mactable::round_hash_size(n as usize);
        self.macs = MacTable::new(size);
        self.cfg.hashsize = size;
        Ok((size, rounded))
    }

    /// `port/setuser N uid|NONE` (None = unrestricted).
    pub fn port_setuser(&mut self, n: i64, uid: Option<u32>) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        self.ports[p as usize].as_mut().ok_or(ENXIO)?.ac_user = uid;
        Ok(())
    }

    /// `port/setgroup N gid|NONE` (None = unrestricted).
    pub fn port_setgroup(&mut self, n: i64, gid: Option<u32>) -> Result<(), Errno> {
        let p = self.check_port(n)?;
        self.ports[p as usize].as_mut().ok_or(ENXIO)?.ac_group = gid;
        Ok(())
    }
}

/// Port access control (port/setuser, port/setgroup). An unrestricted port
/// takes anyone; a restricted one takes root, its user, and members of its
/// group. A client whose uid is unknown is refused on a restricted port
/// (the C switch let unnamed sockets through: core spec §2.2).
pub fn access_allowed(
    user: Option<u32>,
    group: Option<u32>,
    uid: Option<u32>,
    gids: &[u32],
) -> bool {
    if user.is_none() && group.is_none() {
        return true;
    }
    let Some(uid) = uid else { return false };
    uid == 0 || user == Some(uid) || group.is_some_and(|g| gids.contains(&g))
}

/// The text of a hash/+ or hash/- debug line: VLAN printed low:high byte.
fn hash_dbg(mac: Mac, vlan: u16, port: PortId) -> String {
    format!(
        "{mac} VLAN {:02x}:{:02x} Port {port}",
        vlan & 0xff,
        vlan >> 8
    )
}

#[cfg(test)]
mod tests;
