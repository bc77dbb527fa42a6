//! The overlay at scale, simulated (issue #12): N switch cores over a
//! random mesh of cables, in one process, on a simulated clock.
//!
//! The switch core and its spanning tree are sans-IO, so a whole overlay
//! is just data here: [`topo`] draws a seeded random mesh (or ring) with a
//! latency per cable, [`net`] moves frames along cables in simulated time
//! and runs each switch's timers at its `poll_timeout`, and [`run`] applies
//! random faults and repairs (silent cable cuts, unplugged cables, site
//! deaths, partitions, and their repairs). After every change it
//! broadcasts probes from each connected component until the overlay
//! settles, counting duplicates and loops on the way, and checks that a
//! final broadcast reaches every site of its component exactly once and
//! that every site agrees on the best root. [`Summary`] reduces a run to
//! the figures of `BENCHMARKS.md`.
//!
//! `cargo run --release --example overlay_sim -- --nodes 200 --seed 1`
//! runs the large versions.

pub mod net;
pub mod rng;
pub mod run;
pub mod topo;

pub use run::{run, Change, Params, Report};

use std::time::Duration;

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Changes (the start excluded).
    pub changes: usize,
    /// Convergence times of the changes that converged.
    pub median: Duration,
    pub max: Duration,
    pub not_converged: usize,
    /// BPDUs until convergence per change (mean), and over the window
    /// those sent in answer to something, and TC BPDUs.
    pub bpdus: f64,
    pub triggered: f64,
    pub tc: f64,
    /// Probes with a duplicate copy, with a loop; changes whose final
    /// broadcast failed; sites with a wrong root after settling.
    pub duplicates: u32,
    pub loops: u32,
    pub final_failures: usize,
    pub wrong_roots: usize,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let ch = &self.changes[1.min(self.changes.len())..];
        let mut conv: Vec<Duration> = ch.iter().filter_map(|c| c.converged).collect();
        conv.sort();
        let n = ch.len().max(1) as f64;
        Summary {
            changes: ch.len(),
            median: conv.get(conv.len() / 2).copied().unwrap_or_default(),
            max: conv.last().copied().unwrap_or_default(),
            not_converged: ch.len() - conv.len(),
            bpdus: ch.iter().map(|c| c.bpdus as f64).sum::<f64>() / n,
            triggered: ch.iter().map(|c| c.triggered as f64).sum::<f64>() / n,
            tc: ch.iter().map(|c| c.tc as f64).sum::<f64>() / n,
            duplicates: ch.iter().map(|c| c.duplicates).sum(),
            loops: ch.iter().map(|c| c.loops).sum(),
            final_failures: ch.iter().filter(|c| !c.final_ok).count(),
            wrong_roots: ch.iter().map(|c| c.wrong_roots).sum(),
        }
    }
}

#[cfg(test)]
mod tests;
