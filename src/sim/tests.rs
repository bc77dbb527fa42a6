//! Small overlays under random faults: loop-free after every change, and
//! converged within a generous bound.

use super::*;

fn check(p: &Params) -> Report {
    let r = run(p);
    for (i, c) in r.changes.iter().enumerate() {
        assert!(
            c.healthy(),
            "seed {} N={} change {i} ({}): {c:?}",
            p.seed,
            p.nodes,
            c.what
        );
        assert!(
            c.converged.is_some_and(|t| t < Duration::from_secs(10)),
            "seed {} N={} change {i} ({}) slow: {c:?}",
            p.seed,
            p.nodes,
            c.what
        );
    }
    r
}

#[test]
fn ten_sites_stay_loop_free() {
    for seed in 1..=3 {
        check(&Params::new(10, 3, 8, seed));
    }
}

#[test]
fn thirty_sites_stay_loop_free() {
    check(&Params::new(30, 4, 6, 7));
}

/// Found by this simulator: seed 7, N = 30, the first event a partition
/// that leaves the root on the other side. The bridges cut off kept
/// relaying the lost root's information to each other around the loops
/// of their side (count to infinity, costs saturating), and 13 of them
/// still had the phantom root 60 s later. Fixed by the hop count in the
/// message age (`core::fstp::MAX_AGE`).
#[test]
fn partition_that_cuts_off_the_root_elects_a_new_one() {
    let r = check(&Params::new(30, 4, 1, 7));
    assert!(r.changes[1].what.starts_with("partition"));
}

#[test]
fn same_seed_same_run() {
    let p = Params::new(10, 3, 4, 11);
    assert_eq!(run(&p).changes, run(&p).changes);
}

#[test]
fn meshes_are_connected_within_degree_bounds() {
    let mut rng = rng::Rng::new(5);
    for n in [10, 50, 200] {
        let t = topo::Topology::mesh(&mut rng, n, 4);
        assert!(t.degrees().iter().all(|&d| (2..=6).contains(&d)));
        let net = net::Net::new(&t, &(1..=n as u16).collect::<Vec<_>>());
        assert_eq!(net.components().len(), 1);
    }
}
