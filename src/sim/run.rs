//! A scenario: random faults and repairs one after the other, each followed
//! by probing until the overlay has settled, and what each change cost.

use std::time::Duration;

use super::net::{Counters, Net, ProbeResult};
use super::rng::Rng;
use super::topo::Topology;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Params {
    pub nodes: usize,
    /// Mean cables per site (2..=6).
    pub degree: usize,
    /// Faults and repairs after the start.
    pub events: usize,
    pub seed: u64,
    /// A ring instead of a random mesh.
    pub ring: bool,
    /// One broadcast per connected component this often.
    pub probe_every: Duration,
    /// Settled: no port or root change for this long, and the last
    /// probe passed.
    pub quiet: Duration,
    /// Not converged after this long: recorded and moved on.
    pub max_wait: Duration,
}

impl Params {
    pub fn new(nodes: usize, degree: usize, events: usize, seed: u64) -> Params {
        Params {
            nodes,
            degree,
            events,
            seed,
            ring: false,
            probe_every: Duration::from_millis(50),
            quiet: Duration::from_secs(3),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// A fault that is in place (and may be repaired by a later event).
#[derive(Debug, Clone)]
enum Fault {
    Cut(usize),
    Unplug(usize),
    Dead(usize),
    Partition(Vec<usize>),
}

/// One topology change and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened (`cut 12 (3-7)`, `kill 5`, …).
    pub what: String,
    /// Simulated time of the change.
    pub at: Duration,
    /// From the change until the first probe after which every probe
    /// passed (`None`: the last probe failed).
    pub converged: Option<Duration>,
    /// BPDUs sent from the change until convergence (or the end).
    pub bpdus: u64,
    /// BPDUs over the whole window that a switch sent in answer to
    /// something (not from its timers).
    pub triggered: u64,
    /// TC BPDUs over the whole window.
    pub tc: u64,
    /// Over the window: probes, and those with duplicate copies, missing
    /// sites, or a loop.
    pub probes: u32,
    pub duplicates: u32,
    pub missing: u32,
    pub loops: u32,
    /// Loop-freedom after settling: a broadcast from a random site reached
    /// every site of its component exactly once.
    pub final_ok: bool,
    /// Sites that settled on a root other than the best bridge of their
    /// component.
    pub wrong_roots: usize,
    /// How long the window ran.
    pub window: Duration,
}

impl Change {
    /// Whether the change settled correctly: converged, loop-free after
    /// settling, one root per component. (Duplicates and loops while it
    /// reconverged are counted apart.)
    pub fn healthy(&self) -> bool {
        self.converged.is_some() && self.final_ok && self.wrong_roots == 0
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    pub params: Params,
    pub cables: usize,
    pub diameter: usize,
    /// The start (every cable plugged at once), then each event.
    pub changes: Vec<Change>,
    pub counters: Counters,
}

/// Runs the scenario of `p`: deterministic for a given `p`.
pub fn run(p: &Params) -> Report {
    let mut rng = Rng::new(p.seed);
    let topo = if p.ring {
        Topology::ring(&mut rng, p.nodes)
    } else {
        Topology::mesh(&mut rng, p.nodes, p.degree)
    };
    let mut macs: Vec<u16> = (1..=p.nodes as u16).collect();
    rng.shuffle(&mut macs);
    let mut net = Net::new(&topo, &macs);
    let mut changes = vec![settle(&mut net, &mut rng, p, "start".into())];
    let mut faults: Vec<Fault> = Vec::new();
    for _ in 0..p.events {
        let what = next_event(&mut net, &mut rng, &mut faults);
        changes.push(settle(&mut net, &mut rng, p, what));
    }
    Report {
        params: p.clone(),
        cables: topo.cables.len(),
        diameter: topo.diameter(),
        changes,
        counters: net.counters,
    }
}

fn cable_name(net: &Net, c: usize) -> String {
    let k = &net.cables()[c];
    format!("{c} ({}-{})", k.a.site, k.b.site)
}

/// Applies a random fault, or repairs one of those in place (more likely
/// the more there are). Returns what it did.
fn next_event(net: &mut Net, rng: &mut Rng, faults: &mut Vec<Fault>) -> String {
    let heal = !faults.is_empty() && rng.chance(faults.len() as f64 / (faults.len() + 2) as f64);
    if heal {
        let f = faults.swap_remove(rng.below(faults.len()));
        return match f {
            Fault::Cut(c) => {
                net.set_cut(c, false);
                format!("mend {}", cable_name(net, c))
            }
            Fault::Unplug(c) => {
                net.set_unplugged(c, false);
                format!("plug {}", cable_name(net, c))
            }
            Fault::Dead(s) => {
                net.set_alive(s, true);
                format!("revive {s}")
            }
            Fault::Partition(cs) => {
                for &c in &cs {
                    net.set_partitioned(c, false);
                }
                format!("heal ({} cables)", cs.len())
            }
        };
    }
    let clean: Vec<usize> = (0..net.cables().len())
        .filter(|&c| {
            let k = &net.cables()[c];
            !k.cut && !k.unplugged && !k.partitioned
        })
        .collect();
    let alive: Vec<usize> = (0..net.sites()).filter(|&s| net.is_alive(s)).collect();
    let partitioned = faults.iter().any(|f| matches!(f, Fault::Partition(_)));
    loop {
        match rng.below(4) {
            0 if !clean.is_empty() => {
                let c = rng.pick(&clean);
                net.set_cut(c, true);
                faults.push(Fault::Cut(c));
                return format!("cut {}", cable_name(net, c));
            }
            1 if !clean.is_empty() => {
                let c = rng.pick(&clean);
                net.set_unplugged(c, true);
                faults.push(Fault::Unplug(c));
                return format!("unplug {}", cable_name(net, c));
            }
            2 if alive.len() > 2 => {
                let s = rng.pick(&alive);
                net.set_alive(s, false);
                faults.push(Fault::Dead(s));
                return format!("kill {s}");
            }
            3 if !partitioned && net.sites() >= 4 => {
                let cs = partition(net, rng);
                let what = format!("partition ({} cables)", cs.len());
                for &c in &cs {
                    net.set_partitioned(c, true);
                }
                faults.push(Fault::Partition(cs));
                return what;
            }
            _ if clean.is_empty() && alive.len() <= 2 && partitioned => {
                return "nothing".into();
            }
            _ => {}
        }
    }
}

/// The clean cables leaving a region grown from a random site to a
/// quarter to a half of the sites.
fn partition(net: &Net, rng: &mut Rng) -> Vec<usize> {
    let n = net.sites();
    let want = n / 4 + rng.below(n / 4 + 1);
    let mut inside = vec![false; n];
    let start = rng.below(n);
    inside[start] = true;
    let mut frontier = vec![start];
    let mut size = 1;
    while size < want && !frontier.is_empty() {
        let x = frontier.swap_remove(rng.below(frontier.len()));
        for k in net.cables() {
            let y = if k.a.site == x {
                k.b.site
            } else if k.b.site == x {
                k.a.site
            } else {
                continue;
            };
            if !inside[y] && size < want {
                inside[y] = true;
                size += 1;
                frontier.push(y);
            }
        }
    }
    (0..net.cables().len())
        .filter(|&c| {
            let k = &net.cables()[c];
            inside[k.a.site] != inside[k.b.site] && !k.cut && !k.unplugged && !k.partitioned
        })
        .collect()
}

/// Probes after a change until the overlay settles, then checks it.
fn settle(net: &mut Net, rng: &mut Rng, p: &Params, what: String) -> Change {
    let t_e = net.now();
    let c0 = net.counters;
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut results: Vec<ProbeResult> = Vec::new();
    let mut next = t_e;
    let mut last_ok = true;
    loop {
        net.run_until(next);
        let done = net.take_finished();
        if let Some(r) = done.iter().max_by_key(|r| r.injected) {
            last_ok = done
                .iter()
                .filter(|x| x.injected == r.injected)
                .all(ProbeResult::ok);
        }
        results.extend(done);
        samples.push((next, net.counters.bpdus));
        for comp in net.components() {
            if comp.len() >= 2 {
                net.inject(rng.pick(&comp));
            }
        }
        let since = next - t_e;
        let quiet = next.saturating_sub(net.last_change) >= p.quiet;
        if since >= p.quiet && quiet && last_ok && !results.is_empty() {
            break;
        }
        if since >= p.max_wait {
            break;
        }
        next += p.probe_every;
    }
    // let the probes in flight finish (a loop is cut by the cap)
    let limit = net.now() + Duration::from_secs(10);
    while net.probes_in_flight() > 0 && net.now() < limit {
        let t = net.now() + p.probe_every;
        net.run_until(t);
    }
    results.extend(net.take_finished());
    results.sort_by_key(|r| (r.injected, r.id));

    let last_fail = results.iter().rposition(|r| !r.ok());
    let converged = match last_fail {
        None => Some(Duration::ZERO),
        Some(i) => results[i + 1..]
            .iter()
            .find(|r| r.injected > results[i].injected)
            .map(|r| r.injected - t_e),
    };
    let end = converged.map_or(net.now(), |c| t_e + c);
    let bpdus = samples
        .iter()
        .take_while(|(t, _)| *t <= end)
        .last()
        .map_or(0, |(_, b)| b - c0.bpdus);

    // the check after convergence: one broadcast, every site once
    let comps = net.components();
    let biggest = comps.iter().max_by_key(|c| c.len()).cloned();
    let final_ok = match biggest {
        Some(c) if c.len() >= 2 => {
            let id = net.inject(rng.pick(&c));
            let limit = net.now() + Duration::from_secs(10);
            while net.probes_in_flight() > 0 && net.now() < limit {
                let t = net.now() + p.probe_every;
                net.run_until(t);
            }
            let r = net.take_finished();
            r.iter().find(|r| r.id == id).is_some_and(ProbeResult::ok)
        }
        _ => true,
    };
    let c1 = net.counters;
    Change {
        what,
        at: t_e,
        converged,
        bpdus,
        triggered: (c1.bpdus - c1.bpdus_timer) - (c0.bpdus - c0.bpdus_timer),
        tc: c1.tc_bpdus - c0.tc_bpdus,
        probes: results.len() as u32,
        duplicates: results.iter().filter(|r| r.duplicates > 0).count() as u32,
        missing: results.iter().filter(|r| r.missing > 0).count() as u32,
        loops: results.iter().filter(|r| r.looped).count() as u32,
        final_ok,
        wrong_roots: net.wrong_roots().len(),
        window: net.now() - t_e,
    }
}
