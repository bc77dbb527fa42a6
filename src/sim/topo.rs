//! Random overlays: which sites a cable joins, and its latency.

use std::collections::HashSet;
use std::time::Duration;

use super::rng::Rng;

/// A cable between sites `a` and `b` (site indices) with a one-way latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CableSpec {
    pub a: usize,
    pub b: usize,
    pub latency: Duration,
}

/// Sites and the cables between them.
#[derive(Debug, Clone)]
pub struct Topology {
    pub sites: usize,
    pub cables: Vec<CableSpec>,
}

/// Fewest and most cables per site in a mesh.
pub const MIN_DEGREE: usize = 2;
pub const MAX_DEGREE: usize = 6;

/// Latency bounds, drawn log-uniformly (as many LAN-like as WAN-like cables).
pub const MIN_LATENCY: Duration = Duration::from_micros(100);
pub const MAX_LATENCY: Duration = Duration::from_millis(50);

fn latency(rng: &mut Rng) -> Duration {
    let (lo, hi) = (
        MIN_LATENCY.as_secs_f64().ln(),
        MAX_LATENCY.as_secs_f64().ln(),
    );
    Duration::from_secs_f64((lo + rng.unit() * (hi - lo)).exp())
}

/// A mesh being built: no duplicate cable, no site above the maximum.
struct Builder {
    deg: Vec<usize>,
    seen: HashSet<(usize, usize)>,
    cables: Vec<CableSpec>,
}

impl Builder {
    fn add(&mut self, a: usize, b: usize, rng: &mut Rng) -> bool {
        if a == b || self.deg[a] >= MAX_DEGREE || self.deg[b] >= MAX_DEGREE {
            return false;
        }
        if !self.seen.insert((a.min(b), a.max(b))) {
            return false;
        }
        self.deg[a] += 1;
        self.deg[b] += 1;
        self.cables.push(CableSpec {
            a,
            b,
            latency: latency(rng),
        });
        true
    }
}

impl Topology {
    /// A random connected mesh of `n` sites: a random tree first (each site
    /// joins an earlier one), then random cables until the mean degree
    /// reaches `degree`, every site having 2..=6 cables where `n` allows.
    pub fn mesh(rng: &mut Rng, n: usize, degree: usize) -> Topology {
        let degree = degree.clamp(MIN_DEGREE, MAX_DEGREE);
        let mut b = Builder {
            deg: vec![0; n],
            seen: HashSet::new(),
            cables: Vec::new(),
        };
        for i in 1..n {
            // a tree on i sites has a site below the maximum degree
            while !b.add(i, rng.below(i), rng) {}
        }
        let target = n * degree / 2;
        let mut tries = 0;
        while tries < 100 * n.max(1) {
            let short: Vec<usize> = (0..n).filter(|&s| b.deg[s] < MIN_DEGREE).collect();
            if short.is_empty() && b.cables.len() >= target {
                break;
            }
            tries += 1;
            let a = if short.is_empty() {
                rng.below(n)
            } else {
                rng.pick(&short)
            };
            b.add(a, rng.below(n), rng);
        }
        let cables = b.cables;
        Topology { sites: n, cables }
    }

    /// A ring of `n` sites (the largest diameter for two cables a site).
    pub fn ring(rng: &mut Rng, n: usize) -> Topology {
        let cables = (0..n)
            .map(|i| CableSpec {
                a: i,
                b: (i + 1) % n,
                latency: latency(rng),
            })
            .collect();
        Topology { sites: n, cables }
    }

    /// Cables of each site.
    pub fn degrees(&self) -> Vec<usize> {
        let mut d = vec![0; self.sites];
        for c in &self.cables {
            d[c.a] += 1;
            d[c.b] += 1;
        }
        d
    }

    /// The largest hop distance between two sites (BFS from every site).
    pub fn diameter(&self) -> usize {
        let mut adj = vec![Vec::new(); self.sites];
        for c in &self.cables {
            adj[c.a].push(c.b);
            adj[c.b].push(c.a);
        }
        let mut best = 0;
        for s in 0..self.sites {
            let mut dist = vec![usize::MAX; self.sites];
            dist[s] = 0;
            let mut q = std::collections::VecDeque::from([s]);
            while let Some(x) = q.pop_front() {
                for &y in &adj[x] {
                    if dist[y] == usize::MAX {
                        dist[y] = dist[x] + 1;
                        best = best.max(dist[y]);
                        q.push_back(y);
                    }
                }
            }
        }
        best
    }
}
