//! The simulated network: one [`Switch`] per site, cables with a latency
//! each, and one queue of what happens next in simulated time (frames on
//! cables, switch timers). Everything runs in this process; the switches
//! only ever see `now` from here.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::core::bpdu::{flags, Bpdu, BridgeId};
use crate::core::{
    Config, Endpoint, Event, PortId, PortRequest, Switch, DBG_FSTP_ROOT, DBG_FSTP_STATUS,
};
use crate::frame::{Mac, TagOp};

use super::topo::Topology;

/// Every site's host (where probes start and are counted) is on port 1;
/// its cables take ports 2 and up.
pub const HOST_PORT: PortId = 1;
const FIRST_CABLE_PORT: PortId = 2;
/// The local experimental EtherType, for probe frames.
const PROBE_TYPE: [u8; 2] = [0x88, 0xb5];

/// One end of a cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub site: usize,
    pub port: PortId,
}

/// A cable. It carries frames when none of its faults is set and both its
/// sites are alive.
#[derive(Debug, Clone)]
pub struct Cable {
    pub a: End,
    pub b: End,
    pub latency: Duration,
    /// Silent: frames are lost, the ports stay up (FSTP ages the peer out).
    pub cut: bool,
    /// Unplugged: both ports are detached at once.
    pub unplugged: bool,
    /// Across a partition (silent, like `cut`).
    pub partitioned: bool,
    /// Bumped whenever the cable stops or starts carrying: frames sent in
    /// another epoch are lost.
    epoch: u64,
}

struct Site {
    sw: Switch,
    alive: bool,
    mac: Mac,
    host: Mac,
    /// Cable of port `FIRST_CABLE_PORT + i`.
    cables: Vec<usize>,
    timer_at: Option<Duration>,
    timer_gen: u64,
}

/// Running totals over the whole simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// BPDUs the switches sent (they never forward one).
    pub bpdus: u64,
    /// Of those, sent while a switch ran its timers (hellos, ageing).
    pub bpdus_timer: u64,
    /// Of those, with the TC flag.
    pub tc_bpdus: u64,
    /// Port state changes (forwarding/discarding) and root changes.
    pub state_changes: u64,
    pub root_changes: u64,
    /// Frames delivered to a switch port.
    pub frames: u64,
    /// Frames lost on a cable that did not carry.
    pub lost: u64,
}

/// How one broadcast probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub id: u64,
    pub src: usize,
    pub injected: Duration,
    /// Copies beyond the first at any site (the source's own host
    /// receiving it back counts too).
    pub duplicates: u32,
    /// Sites connected to the source (at injection) that got nothing.
    pub missing: u32,
    /// Copies sent on cables; over the cap the probe is a loop and is
    /// stopped.
    pub transmissions: u32,
    pub looped: bool,
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        !self.looped && self.duplicates == 0 && self.missing == 0
    }
}

struct Probe {
    src: usize,
    injected: Duration,
    inflight: u32,
    tx: u32,
    looped: bool,
    seen: Vec<u16>,
    reachable: Vec<bool>,
}

enum Ev {
    Deliver {
        cable: usize,
        to_b: bool,
        epoch: u64,
        frame: Vec<u8>,
        probe: Option<u64>,
    },
    Timer {
        site: usize,
        gen: u64,
    },
}

struct Queued {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The network.
pub struct Net {
    t0: Instant,
    now: Duration,
    numports: u32,
    sites: Vec<Site>,
    cables: Vec<Cable>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    pub counters: Counters,
    probes: BTreeMap<u64, Probe>,
    next_probe: u64,
    finished: Vec<ProbeResult>,
    tx_cap: u32,
    in_timeout: bool,
    /// When a port last changed state or a root changed, anywhere.
    pub last_change: Duration,
}

fn endpoint(port: PortId, module: &'static str) -> Endpoint {
    Endpoint {
        id: port,
        module,
        descr: format!("sim port {port}"),
        uid: None,
        gids: Vec::new(),
    }
}

impl Net {
    /// Every site up and every cable plugged at time zero. `macs[i]` is
    /// the last two bytes of site i's bridge MAC (so the root need not be
    /// site 0).
    pub fn new(topo: &Topology, macs: &[u16]) -> Net {
        let t0 = Instant::now();
        let mut cables = Vec::with_capacity(topo.cables.len());
        let mut site_cables = vec![Vec::new(); topo.sites];
        for (i, c) in topo.cables.iter().enumerate() {
            let end = |s: usize, sc: &mut Vec<Vec<usize>>| {
                sc[s].push(i);
                End {
                    site: s,
                    port: FIRST_CABLE_PORT + sc[s].len() as PortId - 1,
                }
            };
            let a = end(c.a, &mut site_cables);
            let b = end(c.b, &mut site_cables);
            cables.push(Cable {
                a,
                b,
                latency: c.latency,
                cut: false,
                unplugged: false,
                partitioned: false,
                epoch: 0,
            });
        }
        let most = site_cables.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let numports = (most + FIRST_CABLE_PORT).max(8);
        let sites = site_cables
            .into_iter()
            .enumerate()
            .map(|(i, cables)| {
                let [x, y] = macs[i].to_be_bytes();
                Site {
                    sw: Switch::new(Config::default(), t0),
                    alive: true,
                    mac: Mac([0x00, 0xff, 0, 0, x, y]),
                    host: Mac([0x02, 0, 0, 0, x, y]),
                    cables,
                    timer_at: None,
                    timer_gen: 0,
                }
            })
            .collect();
        let tx_cap = (2 * cables.len() + topo.sites) as u32;
        let mut net = Net {
            t0,
            now: Duration::ZERO,
            numports,
            sites,
            cables,
            queue: BinaryHeap::new(),
            seq: 0,
            counters: Counters::default(),
            probes: BTreeMap::new(),
            next_probe: 1,
            finished: Vec::new(),
            tx_cap,
            in_timeout: false,
            last_change: Duration::ZERO,
        };
        for s in 0..net.sites.len() {
            net.boot(s);
        }
        net
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    pub fn sites(&self) -> usize {
        self.sites.len()
    }

    pub fn cables(&self) -> &[Cable] {
        &self.cables
    }

    pub fn is_alive(&self, s: usize) -> bool {
        self.sites[s].alive
    }

    /// The switch of a site (for inspection).
    pub fn switch(&self, s: usize) -> &Switch {
        &self.sites[s].sw
    }

    /// The bridge ID of a site.
    pub fn bridge(&self, s: usize) -> BridgeId {
        BridgeId::new(Config::default().priority, self.sites[s].mac)
    }

    /// A fresh switch for site `s`: host port (edge) and every plugged cable.
    fn boot(&mut self, s: usize) {
        let now = self.instant();
        let cfg = Config {
            numports: self.numports,
            fstp: true,
            mac: self.sites[s].mac,
            ..Config::default()
        };
        let mut sw = Switch::new(cfg, now);
        sw.set_debug_mask(1 << DBG_FSTP_STATUS | 1 << DBG_FSTP_ROOT);
        sw.fstp_setedge(0, i64::from(HOST_PORT), true)
            .expect("host port is in range");
        sw.attach(PortRequest::Port(HOST_PORT), endpoint(HOST_PORT, "tuntap"))
            .expect("host port attaches");
        for (i, &c) in self.sites[s].cables.iter().enumerate() {
            if !self.cables[c].unplugged {
                let p = FIRST_CABLE_PORT + i as PortId;
                sw.attach(PortRequest::Port(p), endpoint(p, "cable"))
                    .expect("cable port attaches");
            }
        }
        self.sites[s].sw = sw;
        self.sites[s].timer_at = None;
        self.drain(s);
        self.reschedule(s);
    }

    /// Whether a cable carries frames now.
    pub fn carries(&self, c: usize) -> bool {
        let k = &self.cables[c];
        !k.cut
            && !k.unplugged
            && !k.partitioned
            && self.sites[k.a.site].alive
            && self.sites[k.b.site].alive
    }

    /// Applies a change to a cable's faults (frames in flight are lost if
    /// it stops or starts carrying).
    fn change_cable(&mut self, c: usize, f: impl FnOnce(&mut Cable)) {
        let before = self.carries(c);
        f(&mut self.cables[c]);
        if before != self.carries(c) {
            self.cables[c].epoch += 1;
        }
    }

    /// Silences a cable (or lets it carry again).
    pub fn set_cut(&mut self, c: usize, cut: bool) {
        self.change_cable(c, |k| k.cut = cut);
    }

    /// Puts a cable on one side of a partition (or heals it).
    pub fn set_partitioned(&mut self, c: usize, on: bool) {
        self.change_cable(c, |k| k.partitioned = on);
    }

    /// Unplugs a cable (both ports detached at once) or plugs it again.
    pub fn set_unplugged(&mut self, c: usize, unplugged: bool) {
        if self.cables[c].unplugged == unplugged {
            return;
        }
        self.change_cable(c, |k| k.unplugged = unplugged);
        let Cable { a, b, .. } = self.cables[c];
        for e in [a, b] {
            if !self.sites[e.site].alive {
                continue;
            }
            let sw = &mut self.sites[e.site].sw;
            if unplugged {
                sw.detach(e.port);
            } else {
                sw.set_now(self.t0 + self.now);
                sw.attach(PortRequest::Port(e.port), endpoint(e.port, "cable"))
                    .expect("cable port attaches");
            }
            self.drain(e.site);
            self.reschedule(e.site);
        }
    }

    /// Kills a site (its switch stops, its cables go silent) or brings it
    /// back with a fresh switch (a reboot).
    pub fn set_alive(&mut self, s: usize, alive: bool) {
        if self.sites[s].alive == alive {
            return;
        }
        self.sites[s].alive = alive;
        for &c in &self.sites[s].cables {
            // frames in flight to or from the site are lost
            self.cables[c].epoch += 1;
        }
        if alive {
            self.boot(s);
        }
    }

    /// Sites of each connected component (alive sites, carrying cables).
    pub fn components(&self) -> Vec<Vec<usize>> {
        let mut comp = vec![usize::MAX; self.sites.len()];
        let mut out = Vec::new();
        for s in 0..self.sites.len() {
            if !self.sites[s].alive || comp[s] != usize::MAX {
                continue;
            }
            let id = out.len();
            let mut members = vec![s];
            comp[s] = id;
            let mut q = VecDeque::from([s]);
            while let Some(x) = q.pop_front() {
                for &c in &self.sites[x].cables {
                    if !self.carries(c) {
                        continue;
                    }
                    let k = &self.cables[c];
                    let y = if k.a.site == x { k.b.site } else { k.a.site };
                    if comp[y] == usize::MAX {
                        comp[y] = id;
                        members.push(y);
                        q.push_back(y);
                    }
                }
            }
            out.push(members);
        }
        out
    }

    /// Sites whose root is not the best bridge of their component (after
    /// convergence there must be none).
    pub fn wrong_roots(&self) -> Vec<usize> {
        let mut wrong = Vec::new();
        for comp in self.components() {
            let best = comp.iter().map(|&s| self.bridge(s)).min();
            for &s in &comp {
                let root = self.sites[s].sw.fstp_instance(0).map(|i| i.root());
                if root != best {
                    wrong.push(s);
                }
            }
        }
        wrong
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            ev,
        }));
    }

    /// Arms the site's timer at its switch's `poll_timeout`.
    fn reschedule(&mut self, s: usize) {
        let site = &mut self.sites[s];
        if !site.alive {
            return;
        }
        let t = site.sw.poll_timeout().saturating_duration_since(self.t0);
        // never in the past: a timer due now runs after what is queued now
        let t = t.max(self.now + Duration::from_nanos(1));
        if site.timer_at == Some(t) {
            return;
        }
        site.timer_at = Some(t);
        site.timer_gen += 1;
        let gen = site.timer_gen;
        self.push(t, Ev::Timer { site: s, gen });
    }

    /// Handles what the switch of site `s` asks for: BPDUs onto cables,
    /// state changes into the counters.
    fn drain(&mut self, s: usize) {
        while let Some(ev) = self.sites[s].sw.poll_event() {
            match ev {
                Event::Frame { port, frame } => {
                    self.counters.bpdus += 1;
                    if self.in_timeout {
                        self.counters.bpdus_timer += 1;
                    }
                    if Bpdu::parse(&frame).is_ok_and(|(b, _)| b.flags & flags::TC != 0) {
                        self.counters.tc_bpdus += 1;
                    }
                    self.transmit(s, port, frame, None);
                }
                Event::Debug { category, .. } => {
                    if category == DBG_FSTP_STATUS {
                        self.counters.state_changes += 1;
                    } else {
                        self.counters.root_changes += 1;
                    }
                    self.last_change = self.now;
                }
                Event::CloseEndpoint(_) => {}
            }
        }
    }

    /// Sends a frame out of port `port` of site `s`.
    fn transmit(&mut self, s: usize, port: PortId, frame: Vec<u8>, probe: Option<u64>) {
        if port == HOST_PORT {
            if let Some(p) = probe.and_then(|id| self.probes.get_mut(&id)) {
                p.seen[s] += 1;
            }
            return;
        }
        let Some(&c) = self.sites[s]
            .cables
            .get(port.wrapping_sub(FIRST_CABLE_PORT) as usize)
        else {
            return;
        };
        if !self.carries(c) {
            self.counters.lost += 1;
            return;
        }
        if let Some(p) = probe.and_then(|id| self.probes.get_mut(&id)) {
            p.tx += 1;
            if p.tx > self.tx_cap {
                p.looped = true;
            }
            if p.looped {
                return;
            }
            p.inflight += 1;
        }
        let k = &self.cables[c];
        let to_b = k.a == End { site: s, port };
        let (at, epoch) = (self.now + k.latency, k.epoch);
        self.push(
            at,
            Ev::Deliver {
                cable: c,
                to_b,
                epoch,
                frame,
                probe,
            },
        );
    }

    /// A frame arrives on port `port` of site `s`.
    fn receive(&mut self, s: usize, port: PortId, frame: &[u8], probe: Option<u64>) {
        if probe.is_some_and(|id| self.probes.get(&id).is_some_and(|p| p.looped)) {
            return;
        }
        self.counters.frames += 1;
        let now = self.instant();
        let outs = self.sites[s].sw.ingress(port, frame, now).to_vec();
        for o in outs {
            let f = match o.op {
                TagOp::Keep => frame.to_vec(),
                op => {
                    let mut buf = vec![0; frame.len() + 4];
                    let n = op.apply(frame, &mut buf);
                    buf.truncate(n);
                    buf
                }
            };
            self.transmit(s, o.port, f, probe);
        }
        self.drain(s);
        self.reschedule(s);
    }

    fn step(&mut self) {
        let Some(Reverse(q)) = self.queue.pop() else {
            return;
        };
        self.now = self.now.max(q.at);
        match q.ev {
            Ev::Deliver {
                cable,
                to_b,
                epoch,
                frame,
                probe,
            } => {
                let k = &self.cables[cable];
                let end = if to_b { k.b } else { k.a };
                if k.epoch == epoch && self.carries(cable) {
                    self.receive(end.site, end.port, &frame, probe);
                } else {
                    self.counters.lost += 1;
                }
                if let Some(id) = probe {
                    self.settle_probe(id);
                }
            }
            Ev::Timer { site, gen } => {
                let st = &self.sites[site];
                if !st.alive || st.timer_gen != gen {
                    return;
                }
                self.sites[site].timer_at = None;
                self.in_timeout = true;
                let now = self.instant();
                self.sites[site].sw.handle_timeout(now);
                self.drain(site);
                self.in_timeout = false;
                self.reschedule(site);
            }
        }
    }

    /// Runs everything due up to `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Duration) {
        while self.queue.peek().is_some_and(|Reverse(q)| q.at <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Broadcasts a probe from site `s`'s host. Returns its id; its result
    /// comes out of [`Net::take_finished`] once no copy is in flight.
    pub fn inject(&mut self, s: usize) -> u64 {
        let id = self.next_probe;
        self.next_probe += 1;
        let mut reachable = vec![false; self.sites.len()];
        if let Some(comp) = self.components().into_iter().find(|c| c.contains(&s)) {
            for x in comp {
                reachable[x] = true;
            }
        }
        self.probes.insert(
            id,
            Probe {
                src: s,
                injected: self.now,
                inflight: 1,
                tx: 0,
                looped: false,
                seen: vec![0; self.sites.len()],
                reachable,
            },
        );
        let mut frame = Vec::with_capacity(60);
        frame.extend_from_slice(&Mac::BROADCAST.0);
        frame.extend_from_slice(&self.sites[s].host.0);
        frame.extend_from_slice(&PROBE_TYPE);
        frame.extend_from_slice(&id.to_be_bytes());
        frame.resize(60, 0);
        self.receive(s, HOST_PORT, &frame, Some(id));
        self.settle_probe(id);
        id
    }

    /// One copy of probe `id` is done; the probe is finished with the last.
    fn settle_probe(&mut self, id: u64) {
        let Some(p) = self.probes.get_mut(&id) else {
            return;
        };
        p.inflight -= 1;
        if p.inflight > 0 {
            return;
        }
        let p = self.probes.remove(&id).expect("present");
        let mut r = ProbeResult {
            id,
            src: p.src,
            injected: p.injected,
            duplicates: 0,
            missing: 0,
            transmissions: p.tx,
            looped: p.looped,
        };
        for (k, &n) in p.seen.iter().enumerate() {
            let want = u32::from(p.reachable[k] && k != p.src);
            let n = u32::from(n);
            if n > want {
                r.duplicates += n - want;
            } else if n < want {
                r.missing += 1;
            }
        }
        self.finished.push(r);
    }

    /// Probes finished since the last call.
    pub fn take_finished(&mut self) -> Vec<ProbeResult> {
        std::mem::take(&mut self.finished)
    }

    /// Probes with copies still in flight.
    pub fn probes_in_flight(&self) -> usize {
        self.probes.len()
    }
}
