//! The overlay simulator (issue #12) at scale: N switch cores over a random
//! mesh, random faults and repairs, a table of convergence and BPDU cost.
//!
//! ```sh
//! cargo run --release --example overlay_sim -- --nodes 10,25,50,100,200 --degree 4 --events 50 --seed 1
//! ```

use std::time::Duration;

use clap::Parser;
use vde::sim::{run, Params};

#[derive(Parser)]
#[command(about = "Simulate an FSTP overlay of N switches under random faults")]
struct Args {
    /// Sites, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,25,50")]
    nodes: Vec<usize>,
    /// Mean cables per site (2..=6).
    #[arg(long, default_value_t = 4)]
    degree: usize,
    /// Faults and repairs after the start.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Seeds, one run each per N (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    seed: Vec<u64>,
    /// A ring instead of a mesh (the longest paths for N sites).
    #[arg(long)]
    ring: bool,
    /// Print every change, not just the table.
    #[arg(long, short)]
    verbose: bool,
    /// Also a table per kind of change (cut, unplug, kill, partition and
    /// their repairs), over every seed, per N.
    #[arg(long)]
    by_kind: bool,
}

/// Changes of one kind over the seeds of one N.
#[derive(Default)]
struct Kind {
    conv: Vec<Duration>,
    never: usize,
    bpdus: u64,
    tc: u64,
    dup: u32,
    loops: u32,
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let a = Args::parse();
    println!(
        "| N | seed | cables | diameter | changes | conv. median ms | conv. max ms | not conv. | BPDUs to conv. | triggered BPDUs | TC BPDUs | dup probes | loops | final fail | wrong roots | wall s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut kinds: Vec<(usize, std::collections::BTreeMap<String, Kind>)> = Vec::new();
    for &n in &a.nodes {
        let mut by: std::collections::BTreeMap<String, Kind> = Default::default();
        for &seed in &a.seed {
            let mut p = Params::new(n, a.degree, a.events, seed);
            p.ring = a.ring;
            let t = std::time::Instant::now();
            let r = run(&p);
            let wall = t.elapsed().as_secs_f64();
            if a.verbose {
                for c in &r.changes {
                    println!(
                        "  t={:>8.3}s {:<28} conv={:>7} bpdus={:>6} trig={:>6} tc={:>5} probes={:>4} dup={} miss={} loop={} final={} wrongroot={}",
                        c.at.as_secs_f64(),
                        c.what,
                        c.converged.map_or("never".into(), ms),
                        c.bpdus,
                        c.triggered,
                        c.tc,
                        c.probes,
                        c.duplicates,
                        c.missing,
                        c.loops,
                        if c.final_ok { "ok" } else { "FAIL" },
                        c.wrong_roots
                    );
                }
            }
            for c in &r.changes[1..] {
                let name = c.what.split(' ').next().unwrap_or("").to_string();
                let k = by.entry(name).or_default();
                match c.converged {
                    Some(t) => k.conv.push(t),
                    None => k.never += 1,
                }
                k.bpdus += c.bpdus;
                k.tc += c.tc;
                k.dup += c.duplicates;
                k.loops += c.loops;
            }
            let s = r.summary();
            println!(
                "| {n} | {seed} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {wall:.1} |",
                r.cables,
                r.diameter,
                s.changes,
                ms(s.median),
                ms(s.max),
                s.not_converged,
                s.bpdus,
                s.triggered,
                s.tc,
                s.duplicates,
                s.loops,
                s.final_failures,
                s.wrong_roots
            );
        }
        kinds.push((n, by));
    }
    if a.by_kind {
        println!();
        println!("| N | change | count | conv. median ms | conv. max ms | not conv. | BPDUs to conv. (mean) | TC BPDUs (mean) | dup probes | loops |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (n, by) in kinds {
            for (name, mut k) in by {
                k.conv.sort();
                let count = k.conv.len() + k.never;
                println!(
                    "| {n} | {name} | {count} | {} | {} | {} | {:.0} | {:.0} | {} | {} |",
                    ms(k.conv.get(k.conv.len() / 2).copied().unwrap_or_default()),
                    ms(k.conv.last().copied().unwrap_or_default()),
                    k.never,
                    k.bpdus as f64 / count as f64,
                    k.tc as f64 / count as f64,
                    k.dup,
                    k.loops
                );
            }
        }
    }
}
