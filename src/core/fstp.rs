//! The fast spanning tree of one VLAN instance (core spec §1), as a sans-IO
//! state machine in the style of quinn-proto: inputs carry `now`
//! ([`Instance::port_up`], [`Instance::handle_bpdu`],
//! [`Instance::handle_timeout`], …), and the caller drains
//! [`Instance::poll_output`] (BPDUs to send, port state changes, MAC flushes,
//! root changes) and arms a timer for [`Instance::poll_timeout`].
//!
//! # Wire compatibility with vde_switch
//!
//! BPDUs use the vde encoding of [`super::bpdu`]: role bits swapped against
//! 802.1w (root port `0x04`, blocked `0x08|0x02`), designated forwarding
//! hellos `0x7c`, root-port hellos `0x74`, blocked hellos `0x4a`, timers in
//! little-endian seconds, forward delay 0, max age 40, vde port IDs. A C
//! switch reads everything it needs (root, cost, sender role, TC).
//!
//! Two deliberate extensions, both invisible to a C switch (which only looks
//! at the role bits and TC):
//! * a designated port that is still discarding sends `0x0e` (designated +
//!   the 0x02 bit, which 802.1w reads as *Proposal*);
//! * a TC BPDU from a root port keeps its Agreement bit (`0x75` instead of
//!   C's `0x35`), so a TC never hides an agreement.
//!
//! # Algorithm (RSTP-like, vde-compatible)
//!
//! * Only BPDUs with the *designated* role are stored as a port's
//!   information (C switches also send hellos from root and blocked ports;
//!   those only carry the peer's role). The root port is the port whose
//!   stored vector plus the local port cost (20,000,000 minus the bonus) is
//!   lowest; the vector is compared bytewise like the C switch (root ID,
//!   cost, designated bridge, designated port; ties by lower local port).
//!   Information sent by this bridge itself (a looped cable or a hub) makes
//!   a *Backup* port; better information from another bridge makes an
//!   *Alternate* port. Everything else is *Designated*.
//! * **Sync.** When the root port or root ID changes, or the root cost
//!   grows, every designated port that is not an edge goes discarding at
//!   once and sends a proposal; the root port then forwards immediately and
//!   answers with Agreement. A designated port goes forwarding when the peer
//!   answers with a root-role BPDU carrying Agreement (for our root, at a
//!   higher cost), or with a blocked-role BPDU (its end is discarding): one
//!   round trip per hop, no timers. Because a designated port never
//!   forwards before the far end is either synced or discarding, the
//!   forwarding ports never form a cycle.
//! * **Fallback.** A designated port that has not heard any BPDU since it
//!   came up (a host or a switch without FSTP behind a port not marked
//!   edge) forwards after [`Timers::forward_delay`], and from then on is
//!   treated like an edge port (no TC, not synced) until it hears a BPDU.
//!   A port that *has* heard BPDUs keeps waiting for an answer for as long
//!   as it stays up, so a silent cable between two FSTP bridges stays
//!   blocked however long it is silent (802.1Q's loop guard). Until
//!   issue #12 such a port fell back after 30 s of silence; the overlay
//!   simulator showed the cost: when the cable carried again, both ends
//!   were forwarding and broadcasts looped until the first hello crossed.
//!
//! # Timer defaults and why
//!
//! * `hello` = **500 ms**: hellos go out on every non-edge port (blocked
//!   ones too, like the C switch). The advertised hello field is rounded up
//!   to whole seconds (1).
//! * `missed_hellos` = **3**: stored information expires after 3 × the
//!   sender's hello. A peer that advertises hello ≤ 1 s is one of ours, and
//!   its information expires after 3 × our own hello = **1.5 s**, well under
//!   3 s. A peer that advertises hello ≥ 2 s (a C vde_switch advertises 4)
//!   gets 3 × its hello (capped at 10 s): **12 s** for the C switch, which
//!   is exactly the C switch's own root timeout, so its 4-s hellos never
//!   make us flap. The cap keeps a forged hello field from making stale
//!   information live forever.
//! * `forward_delay` = **2 s**: only used by the fallback above.
//! * `tc_window` = **1 s** (2 hellos): after a topology change the forwarding
//!   root/designated ports carry TC in an immediate BPDU and in their hellos
//!   for this long, so about 3 TC BPDUs per port per change. A TC received
//!   on a port is acted on at most once per `tc_window + hello` on that port,
//!   and only on a forwarding root/designated port, so TCs follow the tree
//!   and never circulate (no C-style TC storm).
//! * `tx_hold` = **10** BPDUs per port per hello besides the hello itself:
//!   a BPDU storm on input cannot make us storm on output.
//!
//! # Topology change and flushing (RSTP rules, not the C switch's)
//!
//! A non-edge port that starts forwarding is a topology change: the MAC
//! entries of every other non-edge port are flushed and TC is sent for
//! `tc_window`. A received TC flushes every non-edge port but the receiving
//! one and is propagated on the other forwarding ports. A port that stops
//! forwarding has its own entries flushed. Edge ports are never flushed.
//!
//! Divergences from the C switch worth knowing: costs add with saturation
//! instead of wrapping; the bonus may be negative (adds cost), clamped to the
//! `u32` range; received timers other than hello and message age are ignored.
//! The message age counts hops, as in RSTP (the C switch sends the seconds
//! since it last heard its root, and never reads the field): information
//! at [`MAX_AGE`] (40) hops is discarded, so the count to infinity after a
//! root is lost ends within 40 hops of relaying, and a site more than 39
//! bridges from the root is cut off (it elects a root of its own, behind
//! ports that stay discarding).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::bpdu::{flags, port_id, Bpdu, BridgeId, Role};
use super::PortId;

/// The fixed cost of every port (§1.1).
pub const PORT_COST: u32 = 20_000_000;

/// Most bridges root information may cross: the root sends message age 0,
/// each bridge sends the age it heard on its root port plus one, and
/// information heard at this age or more is discarded (802.1D's max age,
/// counted in hops as RSTP does). This ends the count to infinity that
/// stale information of a lost root starts around a loop of the mesh.
pub const MAX_AGE: u16 = 40;

/// Timers and limits of an instance. See the module docs for the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub hello: Duration,
    pub missed_hellos: u32,
    pub forward_delay: Duration,
    pub tc_window: Duration,
    pub tx_hold: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            hello: Duration::from_millis(500),
            missed_hellos: 3,
            forward_delay: Duration::from_secs(2),
            tc_window: Duration::from_secs(1),
            tx_hold: 10,
        }
    }
}

/// The role of a port, as `fstp/print` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRole {
    /// Down (or never brought up).
    Disabled,
    Root,
    Designated,
    Alternate,
    Backup,
    Edge,
}

impl PortRole {
    /// The name `fstp/print` uses.
    pub fn name(self) -> &'static str {
        match self {
            PortRole::Disabled => "Disabled",
            PortRole::Root => "Root",
            PortRole::Designated => "Designated",
            PortRole::Alternate | PortRole::Backup => "Alternate/Backup",
            PortRole::Edge => "Edge",
        }
    }
}

/// What the instance asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this BPDU on the port (tagged with the VLAN if the port is a
    /// tagged member).
    Send { port: PortId, bpdu: Bpdu },
    /// The port starts or stops forwarding in this VLAN.
    State { port: PortId, forwarding: bool },
    /// Forget the MAC entries learned on these ports in this VLAN.
    Flush { ports: Vec<PortId> },
    /// New root bridge or root port (`None`: this bridge is root).
    RootChanged {
        root: BridgeId,
        root_port: Option<PortId>,
    },
    /// A root-guarded port starts (`held`) or stops being held discarding
    /// because it heard information better than ours (root-inconsistent).
    RootGuard { port: PortId, held: bool },
}

/// A priority vector: root, root path cost, designated bridge, designated
/// port. Derived `Ord` is the C switch's bytewise comparison.
type Vector = (BridgeId, u32, BridgeId, [u8; 2]);

#[derive(Debug, Clone, Copy)]
struct Info {
    vector: Vector,
    expires: Instant,
    /// Message age: bridges between the root and the sender.
    age: u16,
}

#[derive(Debug, Clone)]
struct Port {
    up: bool,
    edge: bool,
    role: PortRole,
    forwarding: bool,
    /// Forwarding by fallback: no FSTP peer, treated as an edge.
    oper_edge: bool,
    /// The peer is a standard 802.1D bridge: no proposal/agreement, so a
    /// designated port forwards after listening and learning
    /// (2 × forward delay), as 802.1D does.
    legacy: bool,
    proposing_since: Option<Instant>,
    info: Option<Info>,
    last_rx: Option<Instant>,
    tc_while: Option<Instant>,
    tc_rx_hold: Option<Instant>,
    tokens: u32,
    need_tx: bool,
    /// Root guard: the port may never become the root port; superior
    /// information heard on it holds it discarding (root-inconsistent).
    root_guard: bool,
    /// Held by root guard now.
    inconsistent: bool,
    /// Root-inconsistent episodes so far.
    guard_episodes: u64,
}

impl Port {
    fn new(tokens: u32) -> Port {
        Port {
            up: false,
            edge: false,
            role: PortRole::Disabled,
            forwarding: false,
            oper_edge: false,
            legacy: false,
            proposing_since: None,
            info: None,
            last_rx: None,
            tc_while: None,
            tc_rx_hold: None,
            tokens,
            need_tx: false,
            root_guard: false,
            inconsistent: false,
            guard_episodes: 0,
        }
    }
}

/// The spanning tree of one VLAN.
#[derive(Debug, Clone)]
pub struct Instance {
    bridge: BridgeId,
    vlan: u16,
    timers: Timers,
    ports: BTreeMap<PortId, Port>,
    root: BridgeId,
    root_cost: u32,
    root_port: Option<PortId>,
    /// Message age heard on the root port (0 on the root).
    root_age: u16,
    designated: Option<(BridgeId, [u8; 2])>,
    root_refreshed: Instant,
    bonus: Option<(PortId, i64)>,
    next_hello: Instant,
    outputs: std::collections::VecDeque<Output>,
    flush: Vec<PortId>,
    tc_origins: Vec<(PortId, bool)>,
}

impl Instance {
    pub fn new(bridge: BridgeId, vlan: u16, timers: Timers, now: Instant) -> Instance {
        Instance {
            bridge,
            vlan,
            timers,
            ports: BTreeMap::new(),
            root: bridge,
            root_cost: 0,
            root_port: None,
            root_age: 0,
            designated: None,
            root_refreshed: now,
            bonus: None,
            next_hello: now + timers.hello,
            outputs: Default::default(),
            flush: Vec::new(),
            tc_origins: Vec::new(),
        }
    }

    // ---- management accessors ----

    pub fn bridge(&self) -> BridgeId {
        self.bridge
    }
    pub fn vlan(&self) -> u16 {
        self.vlan
    }
    pub fn timers(&self) -> &Timers {
        &self.timers
    }
    pub fn is_root(&self) -> bool {
        self.root_port.is_none()
    }
    pub fn root(&self) -> BridgeId {
        self.root
    }
    pub fn root_cost(&self) -> u32 {
        self.root_cost
    }
    /// The root port, `None` on the root bridge (`fstp/print` shows 0000).
    pub fn root_port(&self) -> Option<PortId> {
        self.root_port
    }
    /// The designated bridge heard on the root port (`None` on the root,
    /// which `fstp/print` shows as ff:ff:…).
    pub fn designated(&self) -> Option<BridgeId> {
        self.designated.map(|d| d.0)
    }
    /// Seconds since the root information was last refreshed.
    pub fn age(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.root_refreshed).as_secs()
    }
    pub fn bonus(&self) -> Option<(PortId, i64)> {
        self.bonus
    }
    pub fn port_role(&self, port: PortId) -> PortRole {
        self.ports.get(&port).map_or(PortRole::Disabled, |p| p.role)
    }
    pub fn is_forwarding(&self, port: PortId) -> bool {
        self.ports.get(&port).is_some_and(|p| p.forwarding)
    }
    pub fn is_edge(&self, port: PortId) -> bool {
        self.ports.get(&port).is_some_and(|p| p.edge)
    }
    /// Whether root guard is on for the port.
    pub fn is_root_guard(&self, port: PortId) -> bool {
        self.ports.get(&port).is_some_and(|p| p.root_guard)
    }
    /// Whether root guard holds the port (root-inconsistent).
    pub fn is_root_inconsistent(&self, port: PortId) -> bool {
        self.ports.get(&port).is_some_and(|p| p.inconsistent)
    }
    /// Root-inconsistent episodes of the port so far.
    pub fn guard_episodes(&self, port: PortId) -> u64 {
        self.ports.get(&port).map_or(0, |p| p.guard_episodes)
    }
    /// Ports known to the instance (up or configured).
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.keys().copied()
    }

    /// Marks the port as facing a standard 802.1D bridge (heard from it) or
    /// not: such a port goes forwarding by timer, not by agreement.
    pub fn set_legacy(&mut self, port: PortId, legacy: bool) {
        if let Some(p) = self.ports.get_mut(&port) {
            p.legacy = legacy;
        }
    }

    /// Ports that are up.
    pub fn up_ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.iter().filter(|(_, p)| p.up).map(|(&n, _)| n)
    }
    /// The cost added to BPDUs received on `port` (20,000,000 minus the
    /// bonus if it is the bonus port).
    pub fn port_cost(&self, port: PortId) -> u32 {
        match self.bonus {
            Some((p, b)) if p == port => {
                (i64::from(PORT_COST) - b).clamp(0, i64::from(u32::MAX)) as u32
            }
            _ => PORT_COST,
        }
    }

    // ---- inputs ----

    pub fn port_up(&mut self, port: PortId, now: Instant) {
        let tokens = self.timers.tx_hold;
        let p = self.ports.entry(port).or_insert_with(|| Port::new(tokens));
        if p.up {
            return;
        }
        p.up = true;
        p.info = None;
        p.last_rx = None;
        p.oper_edge = false;
        p.legacy = false;
        p.role = PortRole::Disabled;
        self.update_roles(now);
        self.finish(now);
    }

    pub fn port_down(&mut self, port: PortId, now: Instant) {
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        if !p.up {
            return;
        }
        p.up = false;
        p.info = None;
        p.tc_while = None;
        p.need_tx = false;
        self.update_roles(now);
        self.finish(now);
    }

    /// Marks the port edge (forwarding at once, no BPDUs in or out) or not
    /// (the port restarts as a designated port that proposes).
    pub fn set_edge(&mut self, port: PortId, edge: bool, now: Instant) {
        let tokens = self.timers.tx_hold;
        let p = self.ports.entry(port).or_insert_with(|| Port::new(tokens));
        if p.edge == edge {
            return;
        }
        p.edge = edge;
        p.info = None;
        p.tc_while = None;
        if !edge {
            // restart as a fresh designated port
            p.role = PortRole::Disabled;
            p.last_rx = None;
            self.set_forwarding(port, false);
        }
        self.update_roles(now);
        self.finish(now);
    }

    /// Root guard on or off for the port (802.1Q's *restrictedRole*): the
    /// port is never selected as root port, and while the information it
    /// holds is better than what this bridge would send on it, it is an
    /// Alternate port (discarding), "root-inconsistent". It recovers by
    /// itself when that information ages out (the BPDUs stopped).
    pub fn set_root_guard(&mut self, port: PortId, on: bool, now: Instant) {
        let tokens = self.timers.tx_hold;
        let p = self.ports.entry(port).or_insert_with(|| Port::new(tokens));
        if p.root_guard == on {
            return;
        }
        p.root_guard = on;
        self.update_roles(now);
        self.finish(now);
    }

    /// Makes `port` the bonus port (one per instance) with `cost` taken off
    /// its port cost; `None` clears it.
    pub fn set_bonus(&mut self, bonus: Option<(PortId, i64)>, now: Instant) {
        self.bonus = bonus;
        self.update_roles(now);
        self.finish(now);
    }

    /// A BPDU received on `port` for this instance.
    pub fn handle_bpdu(&mut self, port: PortId, b: &Bpdu, now: Instant) {
        let limit = self.age_limit(b.hello);
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        if !p.up || p.edge {
            return;
        }
        p.last_rx = Some(now);
        p.oper_edge = false;
        let role = Role::from_flags(b.flags);
        let peer_forwarding = b.flags & flags::FORWARDING == flags::FORWARDING;
        let msg: Vector = (b.root, b.root_cost, b.bridge, b.port);
        let stale = b.message_age >= MAX_AGE;
        if role == Role::Designated && !stale {
            let replace = match &p.info {
                None => true,
                Some(i) => msg <= i.vector || (i.vector.2, i.vector.3) == (b.bridge, b.port),
            };
            if replace {
                p.info = Some(Info {
                    vector: msg,
                    expires: now + limit,
                    age: b.message_age,
                });
            }
        } else if p
            .info
            .is_some_and(|i| (i.vector.2, i.vector.3) == (b.bridge, b.port))
        {
            // the sender no longer claims to be designated on this segment,
            // or its information has crossed too many bridges
            p.info = None;
        }
        if Some(port) == self.root_port && p.info.is_some_and(|i| i.vector == msg) {
            self.root_refreshed = now;
        }
        self.update_roles(now);

        let (root, root_cost) = (self.root, self.root_cost);
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        match (role, p.role) {
            // an inferior designated peer must learn our information; a
            // proposal is answered (agreement from root, blocked otherwise)
            (Role::Designated, PortRole::Designated) => p.need_tx = true,
            (Role::Designated, _) if !peer_forwarding => p.need_tx = true,
            _ => {}
        }
        if p.role == PortRole::Designated && !p.forwarding {
            let agreed = match role {
                Role::Blocked => !peer_forwarding,
                Role::Root => {
                    b.flags & flags::AGREEMENT != 0 && b.root == root && b.root_cost > root_cost
                }
                _ => false,
            };
            if agreed {
                p.proposing_since = None;
                self.set_forwarding(port, true);
                self.tc_origins.push((port, false));
            }
        }
        if b.flags & flags::TC != 0 {
            self.receive_tc(port, now);
        }
        self.finish(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut changed = false;
        let mut fallback = Vec::new();
        for (&n, p) in self.ports.iter_mut() {
            if p.info.is_some_and(|i| i.expires <= now) {
                p.info = None;
                changed = true;
            }
            if p.tc_while.is_some_and(|t| t <= now) {
                p.tc_while = None;
            }
            if p.tc_rx_hold.is_some_and(|t| t <= now) {
                p.tc_rx_hold = None;
            }
            if p.role == PortRole::Designated
                && !p.forwarding
                && p.proposing_since
                    .is_some_and(|t| t + self.timers.forward_delay <= now)
                && p.last_rx.is_none()
            {
                fallback.push(n);
            }
            if p.legacy
                && p.role == PortRole::Designated
                && !p.forwarding
                && p.proposing_since
                    .is_some_and(|t| t + 2 * self.timers.forward_delay <= now)
            {
                fallback.push(n);
            }
        }
        if changed {
            self.update_roles(now);
        }
        for n in fallback {
            if let Some(p) = self.ports.get_mut(&n) {
                if p.role == PortRole::Designated && !p.forwarding {
                    p.oper_edge = !p.legacy;
                    p.proposing_since = None;
                    self.set_forwarding(n, true);
                }
            }
        }
        if now >= self.next_hello {
            self.next_hello += self.timers.hello;
            if self.next_hello <= now {
                self.next_hello = now + self.timers.hello;
            }
            let hold = self.timers.tx_hold;
            for p in self.ports.values_mut() {
                if p.up && !p.edge {
                    p.need_tx = true;
                    // the hello itself is free
                    p.tokens = hold + 1;
                }
            }
        }
        self.finish(now);
    }

    /// When [`Instance::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_hello;
        for p in self.ports.values() {
            let cands = [
                p.info.map(|i| i.expires),
                p.tc_while,
                p.tc_rx_hold,
                p.proposing_since.filter(|_| !p.forwarding).and_then(|s| {
                    if p.legacy {
                        Some(s + 2 * self.timers.forward_delay)
                    } else {
                        // no fallback once an FSTP peer was heard
                        p.last_rx.is_none().then_some(s + self.timers.forward_delay)
                    }
                }),
            ];
            for c in cands.into_iter().flatten() {
                t = t.min(c);
            }
        }
        Some(t)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---- internals ----

    fn age_limit(&self, hello_field: u16) -> Duration {
        let own = self.timers.hello * self.timers.missed_hellos;
        if hello_field >= 2 {
            let peer = Duration::from_secs(u64::from(hello_field.min(10)));
            own.max(peer * self.timers.missed_hellos)
        } else {
            own
        }
    }

    /// Port role selection and the state transitions it implies.
    fn update_roles(&mut self, now: Instant) {
        let me = self.bridge;
        let mut best: Vector = (me, 0, me, [0, 0]);
        let mut best_port = None;
        let mut best_age = 0;
        for (&n, p) in &self.ports {
            if !p.up || p.edge || p.root_guard {
                continue;
            }
            let Some(i) = p.info else { continue };
            let (root, cost, bridge, pid) = i.vector;
            if bridge == me || root == me {
                continue;
            }
            let v = (root, cost.saturating_add(self.port_cost(n)), bridge, pid);
            if v < best {
                best = v;
                best_port = Some(n);
                best_age = i.age;
            }
        }
        let sync = best_port != self.root_port || best.0 != self.root || best.1 > self.root_cost;
        if best_port != self.root_port || best.0 != self.root {
            self.outputs.push_back(Output::RootChanged {
                root: best.0,
                root_port: best_port,
            });
        }
        if (best.0, best.1, best_port) != (self.root, self.root_cost, self.root_port) {
            self.root_refreshed = now;
        }
        self.root = best.0;
        self.root_cost = best.1;
        self.root_port = best_port;
        self.root_age = best_age;
        self.designated = best_port.map(|_| (best.2, best.3));

        let ours = |n: PortId| -> Vector { (best.0, best.1, me, port_id(n)) };
        let keys: Vec<PortId> = self.ports.keys().copied().collect();
        // non-root ports first: the root port forwards once they are synced
        for &n in keys.iter().filter(|&&n| Some(n) != best_port) {
            let p = &self.ports[&n];
            let role = if !p.up {
                PortRole::Disabled
            } else if p.edge {
                PortRole::Edge
            } else {
                match p.info {
                    Some(i) if i.vector < ours(n) => {
                        if i.vector.2 == me {
                            PortRole::Backup
                        } else {
                            PortRole::Alternate
                        }
                    }
                    _ => PortRole::Designated,
                }
            };
            let old = p.role;
            let resync = sync && !(p.forwarding && p.oper_edge);
            let held = p.root_guard && role == PortRole::Alternate;
            let p = self.ports.get_mut(&n).expect("port");
            p.role = role;
            if held != p.inconsistent {
                p.inconsistent = held;
                if held {
                    p.guard_episodes += 1;
                } else {
                    // what it heard was the rogue's: wait no longer for an
                    // FSTP peer than for a host
                    p.last_rx = None;
                }
                self.outputs.push_back(Output::RootGuard { port: n, held });
            }
            match role {
                PortRole::Disabled | PortRole::Alternate | PortRole::Backup => {
                    p.proposing_since = None;
                    if old != role {
                        p.need_tx = p.up;
                    }
                    self.set_forwarding(n, false);
                }
                PortRole::Edge => {
                    p.proposing_since = None;
                    self.set_forwarding(n, true);
                }
                PortRole::Designated => {
                    if old != PortRole::Designated || resync {
                        p.proposing_since = Some(now);
                        p.oper_edge = false;
                        p.need_tx = true;
                        self.set_forwarding(n, false);
                    }
                }
                PortRole::Root => unreachable!(),
            }
        }
        if let Some(n) = best_port {
            let p = self.ports.get_mut(&n).expect("root port");
            if p.role != PortRole::Root {
                p.role = PortRole::Root;
                p.need_tx = true;
            }
            p.proposing_since = None;
            p.oper_edge = false;
            if sync {
                // agreement to the upstream designated port
                p.need_tx = true;
            }
            if !p.forwarding {
                self.set_forwarding(n, true);
                self.tc_origins.push((n, false));
            }
        }
    }

    fn set_forwarding(&mut self, n: PortId, forwarding: bool) {
        let Some(p) = self.ports.get_mut(&n) else {
            return;
        };
        if p.forwarding == forwarding {
            return;
        }
        p.forwarding = forwarding;
        if !forwarding && !p.edge {
            self.flush.push(n);
        }
        self.outputs.push_back(Output::State {
            port: n,
            forwarding,
        });
    }

    fn receive_tc(&mut self, n: PortId, now: Instant) {
        let hold = self.timers.tc_window + self.timers.hello;
        let Some(p) = self.ports.get_mut(&n) else {
            return;
        };
        let active = p.forwarding && matches!(p.role, PortRole::Root | PortRole::Designated);
        if !active || p.tc_rx_hold.is_some_and(|t| t > now) {
            return;
        }
        p.tc_rx_hold = Some(now + hold);
        self.tc_origins.push((n, true));
    }

    /// Runs the pending topology changes, emits the flush and the BPDUs.
    fn finish(&mut self, now: Instant) {
        for (origin, received) in std::mem::take(&mut self.tc_origins) {
            for (&n, p) in self.ports.iter_mut() {
                if n == origin || !p.up || p.edge || p.oper_edge {
                    continue;
                }
                self.flush.push(n);
                let carries =
                    p.forwarding && matches!(p.role, PortRole::Root | PortRole::Designated);
                if carries {
                    if p.tc_while.is_none_or(|t| t <= now) {
                        p.need_tx = true;
                    }
                    p.tc_while = Some(now + self.timers.tc_window);
                }
            }
            if !received {
                if let Some(p) = self.ports.get_mut(&origin) {
                    if p.tc_while.is_none_or(|t| t <= now) {
                        p.need_tx = true;
                    }
                    p.tc_while = Some(now + self.timers.tc_window);
                }
            }
        }
        if !self.flush.is_empty() {
            let mut ports = std::mem::take(&mut self.flush);
            ports.sort_unstable();
            ports.dedup();
            self.outputs.push_back(Output::Flush { ports });
        }
        let keys: Vec<PortId> = self.ports.keys().copied().collect();
        for n in keys {
            let p = &self.ports[&n];
            if !p.need_tx || !p.up || p.edge || p.tokens == 0 {
                continue;
            }
            let bpdu = self.make_bpdu(n, p, now);
            let p = self.ports.get_mut(&n).expect("port");
            p.need_tx = false;
            p.tokens -= 1;
            self.outputs.push_back(Output::Send { port: n, bpdu });
        }
    }

    /// The BPDU this instance would send on port `n` now (`None` for a port
    /// it does not know).
    pub fn bpdu_for(&self, n: PortId, now: Instant) -> Option<Bpdu> {
        self.ports.get(&n).map(|p| self.make_bpdu(n, p, now))
    }

    fn make_bpdu(&self, n: PortId, p: &Port, now: Instant) -> Bpdu {
        let mut f = match p.role {
            PortRole::Root if p.forwarding => {
                Role::Root.to_flags() | flags::FORWARDING | flags::AGREEMENT
            }
            PortRole::Root => Role::Root.to_flags(),
            PortRole::Designated if p.forwarding => {
                Role::Designated.to_flags() | flags::FORWARDING | flags::AGREEMENT
            }
            // proposal
            PortRole::Designated => Role::Designated.to_flags() | flags::BLOCKED,
            _ => Role::Blocked.to_flags() | flags::AGREEMENT,
        };
        if p.tc_while.is_some_and(|t| t > now) {
            f |= flags::TC;
            if p.role != PortRole::Root {
                f &= !flags::AGREEMENT;
            }
        }
        // hops from the root, not seconds (see MAX_AGE)
        let age = if self.root_port.is_some() {
            self.root_age.saturating_add(1)
        } else {
            0
        };
        Bpdu {
            flags: f,
            root: self.root,
            root_cost: self.root_cost,
            bridge: self.bridge,
            port: port_id(n),
            message_age: age,
            max_age: 40,
            hello: self.timers.hello.as_secs_f64().ceil().max(1.0) as u16,
            forward_delay: 0,
        }
    }
}

#[cfg(test)]
mod tests;
