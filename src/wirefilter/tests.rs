//! Behaviour and statistics of the channel model, on a simulated clock with
//! fixed seeds. Bounds are several standard deviations wide, so they hold
//! for any seed, yet a wrong model (wrong formula, missing +2, lost FIFO
//! coupling, …) falls outside them.

use std::time::{Duration, Instant};

use super::*;

/// A delivered frame.
#[derive(Debug, Clone)]
struct Delivered {
    /// Time since the simulation start.
    at: Duration,
    dir: Dir,
    frame: Vec<u8>,
}

impl Delivered {
    fn ms(&self) -> f64 {
        self.at.as_secs_f64() * 1e3
    }
    fn id(&self) -> u64 {
        frame_id(&self.frame)
    }
}

/// A minimal IO shell on a simulated clock.
struct Sim {
    ch: Channel,
    t0: Instant,
    now: Instant,
    out: Vec<Delivered>,
}

fn frame(id: u64, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    let n = len.min(8);
    f[..n].copy_from_slice(&id.to_le_bytes()[..n]);
    f
}

fn frame_id(f: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = f.len().min(8);
    b[..n].copy_from_slice(&f[..n]);
    u64::from_le_bytes(b)
}

impl Sim {
    fn new(mode: Mode, seed: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            ch: Channel::new(mode, seed, t0),
            t0,
            now: t0,
            out: Vec::new(),
        }
    }

    fn bi(seed: u64) -> Sim {
        Sim::new(Mode::Bidirectional, seed)
    }

    fn set(&mut self, p: Param, v: &str) {
        self.ch.set_value_str(p, v).unwrap();
    }

    fn at_ms(&self, ms: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(ms / 1e3)
    }

    fn elapsed_ms(&self) -> f64 {
        (self.now - self.t0).as_secs_f64() * 1e3
    }

    fn drain(&mut self) {
        while let Some(tx) = self.ch.poll_transmit(self.now) {
            self.out.push(Delivered {
                at: self.now - self.t0,
                dir: tx.dir,
                frame: tx.frame,
            });
        }
    }

    /// Runs the clock to `until`, waking at every timeout.
    fn run_until(&mut self, until: Instant) {
        loop {
            self.drain();
            match self.ch.poll_timeout() {
                Some(t) if t <= until => {
                    assert!(t > self.now, "poll_timeout did not move forward");
                    self.now = t;
                    self.ch.handle_timeout(t);
                }
                _ => break,
            }
        }
        if until > self.now {
            self.now = until;
        }
        self.ch.handle_timeout(self.now);
        self.drain();
    }

    fn run_ms(&mut self, ms: f64) {
        let t = self.at_ms(ms);
        self.run_until(t);
    }

    fn send(&mut self, dir: Dir, f: &[u8]) -> FrameOutcome {
        let out = self.ch.handle_frame(dir, f, self.now);
        self.drain();
        out
    }

    /// Runs until everything queued has left.
    fn flush(&mut self) {
        while self.ch.queued_frames() > 0 {
            let t = self
                .ch
                .poll_timeout()
                .expect("queued frames need a timeout");
            self.run_until(t);
        }
    }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol
}

// ---- loss -------------------------------------------------------------------

#[test]
fn bernoulli_loss_rate() {
    let mut sim = Sim::bi(1);
    sim.set(Param::Loss, "30");
    let n = 100_000;
    let mut lost = 0;
    for i in 0..n {
        let out = sim.send(Dir::LR, &frame(i, 60));
        match out.dropped {
            Some(DropReason::Loss) => lost += 1,
            None => assert_eq!(out.sent, 1),
            other => panic!("unexpected {other:?}"),
        }
    }
    let rate = f64::from(lost) / n as f64;
    assert!(close(rate, 0.30, 0.01), "loss rate {rate}");
    assert_eq!(sim.out.len(), n as usize - lost as usize);
    // Only L->R is lossy when set with a prefix.
    let mut sim = Sim::bi(2);
    sim.set(Param::Loss, "LR50");
    let lost_rl = (0..1000)
        .filter(|&i| sim.send(Dir::RL, &frame(i, 60)).dropped.is_some())
        .count();
    assert_eq!(lost_rl, 0);
}

#[test]
fn gilbert_loss_rate_and_burst_length() {
    let mut sim = Sim::bi(3);
    sim.set(Param::Loss, "30");
    sim.set(Param::LostBurst, "5");
    let n = 200_000;
    let lost: Vec<bool> = (0..n)
        .map(|i| sim.send(Dir::LR, &frame(i, 60)).dropped.is_some())
        .collect();
    let rate = lost.iter().filter(|&&l| l).count() as f64 / n as f64;
    let mut runs = Vec::new();
    let mut run = 0u32;
    for &l in &lost {
        if l {
            run += 1;
        } else if run > 0 {
            runs.push(f64::from(run));
            run = 0;
        }
    }
    let (burst, _) = mean_sd(&runs);
    assert!(close(rate, 0.30, 0.015), "gilbert loss {rate}");
    assert!(close(burst, 5.0, 0.3), "mean burst {burst}");
    // Bernoulli loss at the same rate has bursts of 1/(1-p) ≈ 1.43.
    assert!(burst > 3.0);
}

#[test]
fn total_loss_and_minimum() {
    let mut sim = Sim::bi(4);
    sim.set(Param::Loss, "100");
    assert!((0..1000).all(|i| sim.send(Dir::LR, &frame(i, 60)).dropped == Some(DropReason::Loss)));
    // loss 90+20: the minimum is 70, so not everything is lost.
    sim.set(Param::Loss, "90+20");
    let passed = (0..10_000)
        .filter(|&i| sim.send(Dir::LR, &frame(i, 60)).dropped.is_none())
        .count();
    let rate = passed as f64 / 10_000.0;
    assert!(close(rate, 0.10, 0.02), "pass rate {rate}");
}

// ---- dup --------------------------------------------------------------------

#[test]
fn dup_rate_is_geometric() {
    let mut sim = Sim::bi(5);
    sim.set(Param::Dup, "20");
    let n = 100_000;
    let mut copies = Vec::new();
    for i in 0..n {
        let out = sim.send(Dir::LR, &frame(i, 60));
        assert!(out.dropped.is_none());
        copies.push(f64::from(out.sent));
    }
    let (mean, _) = mean_sd(&copies);
    // 1/(1-p) copies on average.
    assert!(close(mean, 1.25, 0.01), "mean copies {mean}");
    assert_eq!(sim.out.len() as f64, copies.iter().sum::<f64>());
    // Every copy is the same frame.
    assert!(sim.out.windows(2).all(|w| w[0].id() <= w[1].id()));
}

#[test]
fn dup_100_terminates() {
    let mut sim = Sim::bi(6);
    sim.set(Param::Dup, "100");
    let out = sim.send(Dir::LR, &frame(1, 60));
    assert_eq!(out.sent, MAX_COPIES);
    assert_eq!(sim.out.len(), MAX_COPIES as usize);
}

// ---- delay ------------------------------------------------------------------

/// Sends one frame per `gap_ms` (far apart, so frames never interact) and
/// returns each frame's delay in ms.
fn delays(sim: &mut Sim, n: u64, gap_ms: f64) -> Vec<f64> {
    let mut sent_at = Vec::new();
    for i in 0..n {
        sim.run_ms(i as f64 * gap_ms);
        sent_at.push(sim.elapsed_ms());
        sim.send(Dir::LR, &frame(i, 100));
    }
    sim.flush();
    assert_eq!(sim.out.len() as u64, n);
    sim.out
        .iter()
        .map(|d| d.ms() - sent_at[d.id() as usize])
        .collect()
}

#[test]
fn fixed_delay_is_exact() {
    let mut sim = Sim::bi(7);
    sim.set(Param::Delay, "200");
    let d = delays(&mut sim, 10, 1000.0);
    assert!(d.iter().all(|&x| close(x, 200.0, 1e-6)), "{d:?}");
}

#[test]
fn uniform_delay_distribution() {
    let mut sim = Sim::bi(8);
    sim.ch.set_fifo(false);
    sim.set(Param::Delay, "100+20");
    let d = delays(&mut sim, 20_000, 500.0);
    let (mean, sd) = mean_sd(&d);
    assert!(close(mean, 100.0, 0.5), "mean {mean}");
    // sd of U(-20, 20) is 20/sqrt(3).
    assert!(close(sd, 20.0 / 3f64.sqrt(), 0.3), "sd {sd}");
    let lo = d.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = d.iter().cloned().fold(0.0, f64::max);
    assert!(
        (80.0..81.0).contains(&lo) && hi <= 120.0 && hi > 119.0,
        "{lo}..{hi}"
    );
}

#[test]
fn normal_delay_distribution_unclamped() {
    let mut sim = Sim::bi(9);
    sim.ch.set_fifo(false);
    sim.set(Param::Delay, "100+30N");
    let d = delays(&mut sim, 40_000, 500.0);
    let (mean, sd) = mean_sd(&d);
    assert!(close(mean, 100.0, 0.3), "mean {mean}");
    // sigma = plus/3.
    assert!(close(sd, 10.0, 0.2), "sd {sd}");
    // About 0.27 % fall outside ±plus: not clamped.
    let outside = d.iter().filter(|&&x| (x - 100.0).abs() > 30.0).count();
    assert!((50..170).contains(&outside), "outside ±3σ: {outside}");
}

#[test]
fn negative_delay_means_no_delay() {
    let mut sim = Sim::bi(10);
    sim.set(Param::Delay, "-50");
    sim.send(Dir::LR, &frame(1, 60));
    // Sent at once.
    assert_eq!(sim.out.len(), 1);
    assert_eq!(sim.ch.poll_timeout(), None);
}

// ---- bandwidth and speed ----------------------------------------------------

#[test]
fn bandwidth_spaces_frames_by_serialisation_time() {
    // The spec's measurement: 998-byte frames (size 1000) at 10000 B/s.
    let mut sim = Sim::bi(11);
    sim.set(Param::Bandwidth, "10000");
    for i in 0..5 {
        assert_eq!(sim.send(Dir::LR, &frame(i, 998)).sent, 1);
    }
    // The sender is never blocked by bandwidth.
    assert_eq!(sim.ch.next_accept(Dir::LR, sim.now), None);
    sim.flush();
    let at: Vec<f64> = sim.out.iter().map(Delivered::ms).collect();
    for (k, t) in at.iter().enumerate() {
        assert!(close(*t, 100.0 * (k + 1) as f64, 1e-3), "{at:?}");
    }
    // R->L has its own line.
    sim.send(Dir::RL, &frame(9, 998));
    let start = sim.elapsed_ms();
    sim.flush();
    assert!(close(sim.out.last().unwrap().ms() - start, 100.0, 1e-3));
}

#[test]
fn bandwidth_limits_long_run_throughput() {
    let mut sim = Sim::bi(12);
    sim.set(Param::Bandwidth, "100K");
    // Offer twice the bandwidth for 20 s: 200 KiB/s of 1000-byte frames.
    let rate = 100.0 * 1024.0;
    let n = 4000;
    let gap_ms = 1000.0 * 1002.0 / (2.0 * rate);
    for i in 0..n {
        sim.run_ms(i as f64 * gap_ms);
        sim.send(Dir::LR, &frame(i, 1000));
    }
    sim.flush();
    let bytes = sim.out.len() as f64 * 1002.0;
    let secs = sim.out.last().unwrap().ms() / 1e3;
    let got = bytes / secs;
    assert!(close(got, rate, rate * 0.002), "throughput {got}");
}

#[test]
fn capacity_drops_what_does_not_fit_the_queue() {
    // bandwidth + capacity 3000: 3 of 6 frames delivered.
    let mut sim = Sim::bi(13);
    sim.set(Param::Bandwidth, "10000");
    sim.set(Param::ChanBufSize, "3000");
    let outcomes: Vec<FrameOutcome> = (0..6).map(|i| sim.send(Dir::LR, &frame(i, 998))).collect();
    assert_eq!(sim.ch.queued_bytes(Dir::LR), 3000);
    assert_eq!(sim.ch.queued_bytes(Dir::RL), 0);
    assert!(outcomes[..3].iter().all(|o| o.sent == 1));
    assert!(outcomes[3..]
        .iter()
        .all(|o| o.dropped == Some(DropReason::ChanBuf)));
    sim.flush();
    assert_eq!(sim.out.len(), 3);
    assert_eq!(sim.ch.queued_bytes(Dir::LR), 0);
}

#[test]
fn capacity_with_delay_bounds_the_queue() {
    let mut sim = Sim::bi(14);
    sim.set(Param::Delay, "100");
    sim.set(Param::ChanBufSize, "10K");
    let mut max_queued = 0;
    let mut dropped = 0;
    for i in 0..2000u64 {
        sim.run_ms(i as f64 * 0.5);
        if sim.send(Dir::LR, &frame(i, 510)).dropped == Some(DropReason::ChanBuf) {
            dropped += 1;
        }
        max_queued = max_queued.max(sim.ch.queued_bytes(Dir::LR));
    }
    assert!(max_queued <= 10 * 1024, "{max_queued}");
    // 100 ms of delay holds 200 frames of 512 bytes; only 20 fit.
    assert!(dropped > 1500, "{dropped}");
}

/// A shell that reads from an endless source whenever `next_accept`
/// allows, for `ms` of simulated time. Returns the read times.
fn read_while_allowed(sim: &mut Sim, dir: Dir, ms: f64, len: usize) -> Vec<f64> {
    let end = sim.at_ms(ms);
    let mut reads = Vec::new();
    let mut id = 0;
    while sim.now < end {
        match sim.ch.next_accept(dir, sim.now) {
            None => {
                reads.push(sim.elapsed_ms());
                sim.send(dir, &frame(id, len));
                id += 1;
            }
            Some(t) => {
                assert!(t > sim.now);
                assert!(sim.ch.poll_timeout().is_some_and(|p| p <= t));
                sim.run_until(t.min(end));
            }
        }
    }
    reads
}

#[test]
fn speed_throttles_input_and_delays_by_tx_time() {
    for dir in Dir::BOTH {
        let mut sim = Sim::bi(15);
        sim.set(Param::Speed, "10000");
        let reads = read_while_allowed(&mut sim, dir, 10_000.0, 998);
        sim.flush();
        // One read per 100 ms (size 1000 at 10000 B/s), in both directions.
        assert_eq!(reads.len(), 100, "{dir:?}");
        for (k, t) in reads.iter().enumerate() {
            assert!(close(*t, 100.0 * k as f64, 1e-3), "{dir:?} {reads:?}");
        }
        // Each frame arrives one tx time after it was read.
        for d in &sim.out {
            assert!(close(d.ms(), 100.0 * (d.id() + 1) as f64, 1e-3));
            assert_eq!(d.dir, dir);
        }
    }
}

#[test]
fn speed_plus_delay() {
    let mut sim = Sim::bi(16);
    sim.set(Param::Speed, "10000");
    sim.set(Param::Delay, "100");
    read_while_allowed(&mut sim, Dir::LR, 250.0, 998);
    sim.flush();
    let at: Vec<f64> = sim.out.iter().map(Delivered::ms).collect();
    assert_eq!(at.len(), 3);
    for (k, t) in at.iter().enumerate() {
        assert!(close(*t, 200.0 + 100.0 * k as f64, 1e-3), "{at:?}");
    }
}

#[test]
fn rate_randomised_to_zero_drops() {
    let mut sim = Sim::bi(17);
    sim.set(Param::Bandwidth, "0+100");
    let dropped = (0..10_000)
        .filter(|&i| sim.send(Dir::LR, &frame(i, 60)).dropped == Some(DropReason::Bandwidth))
        .count();
    assert!(close(dropped as f64 / 10_000.0, 0.5, 0.03), "{dropped}");
    let mut sim = Sim::bi(18);
    sim.set(Param::Speed, "-5");
    // max = -5 ≤ 0: speed is off, nothing dropped or paused.
    assert_eq!(sim.send(Dir::LR, &frame(1, 60)).sent, 1);
    sim.set(Param::Speed, "-5+10");
    let dropped = (0..1000)
        .filter(|&i| sim.send(Dir::LR, &frame(i, 60)).dropped == Some(DropReason::Speed))
        .count();
    assert!(dropped > 600, "{dropped}");
}

// ---- MTU --------------------------------------------------------------------

#[test]
fn mtu_counts_the_two_byte_header() {
    let mut sim = Sim::bi(19);
    sim.set(Param::Mtu, "100");
    assert_eq!(sim.send(Dir::LR, &frame(0, 98)).sent, 1);
    assert_eq!(
        sim.send(Dir::LR, &frame(1, 99)).dropped,
        Some(DropReason::Mtu)
    );
    assert_eq!(
        sim.send(Dir::LR, &frame(2, 100)).dropped,
        Some(DropReason::Mtu)
    );
    // MTU uses value − plus, without randomness.
    sim.set(Param::Mtu, "1500+10");
    assert_eq!(sim.send(Dir::LR, &frame(3, 1488)).sent, 1);
    assert_eq!(
        sim.send(Dir::LR, &frame(4, 1489)).dropped,
        Some(DropReason::Mtu)
    );
    // Per direction.
    sim.set(Param::Mtu, "RL0");
    assert_eq!(sim.send(Dir::RL, &frame(5, 1500)).sent, 1);
    assert_eq!(sim.out.len(), 3);
}

// ---- FIFO -------------------------------------------------------------------

fn inversions(out: &[Delivered]) -> usize {
    out.windows(2).filter(|w| w[0].id() > w[1].id()).count()
}

#[test]
fn fifo_keeps_order_nofifo_reorders() {
    for fifo in [true, false] {
        let mut sim = Sim::bi(20);
        sim.ch.set_fifo(fifo);
        sim.set(Param::Delay, "200+100");
        for i in 0..1000 {
            sim.run_ms(i as f64);
            sim.send(Dir::LR, &frame(i, 60));
        }
        sim.flush();
        assert_eq!(sim.out.len(), 1000);
        let inv = inversions(&sim.out);
        if fifo {
            assert_eq!(inv, 0);
            // No frame leaves before its own random delay could have ended.
            for d in &sim.out {
                assert!(d.ms() >= d.id() as f64 + 100.0);
            }
        } else {
            assert!(inv > 100, "nofifo inversions {inv}");
        }
    }
}

#[test]
fn fifo_couples_the_two_directions() {
    let mut sim = Sim::bi(21);
    sim.set(Param::Delay, "LR300");
    sim.set(Param::Delay, "RL10");
    sim.send(Dir::LR, &frame(1, 60));
    sim.send(Dir::RL, &frame(2, 60));
    sim.flush();
    let at: Vec<(Dir, f64)> = sim.out.iter().map(|d| (d.dir, d.ms())).collect();
    assert_eq!(at.len(), 2);
    assert!(at.iter().all(|(_, t)| close(*t, 300.0, 1e-6)), "{at:?}");
    assert_eq!(at[0].0, Dir::LR);

    // Without FIFO, or alone, R->L takes its own 10 ms.
    let mut sim = Sim::bi(21);
    sim.ch.set_fifo(false);
    sim.set(Param::Delay, "LR300");
    sim.set(Param::Delay, "RL10");
    sim.send(Dir::LR, &frame(1, 60));
    sim.send(Dir::RL, &frame(2, 60));
    sim.flush();
    assert_eq!(sim.out[0].dir, Dir::RL);
    assert!(close(sim.out[0].ms(), 10.0, 1e-6));
}

#[test]
fn zero_delay_bypasses_the_queue() {
    // As in C: an undelayed frame is written at once, even behind a queue.
    let mut sim = Sim::bi(22);
    sim.set(Param::Delay, "300");
    sim.send(Dir::LR, &frame(1, 60));
    sim.set(Param::Delay, "0");
    sim.send(Dir::LR, &frame(2, 60));
    assert_eq!(sim.out.len(), 1);
    assert_eq!(sim.out[0].id(), 2);
    assert_eq!(sim.ch.queued_frames(), 1);
}

// ---- noise ------------------------------------------------------------------

#[test]
fn noise_flips_the_expected_number_of_bits() {
    let mut sim = Sim::bi(23);
    sim.set(Param::Noise, "1000");
    let len = 500;
    let n = 40_000;
    let clean = vec![0u8; len];
    let mut flips = Vec::new();
    let mut tail_flips = 0;
    for _ in 0..n {
        sim.send(Dir::LR, &clean);
        let d = sim.out.pop().unwrap();
        assert_eq!(d.frame.len(), len);
        flips.push(f64::from(
            d.frame.iter().map(|b| b.count_ones()).sum::<u32>(),
        ));
        tail_flips += d.frame[len - 2..]
            .iter()
            .map(|b| b.count_ones())
            .sum::<u32>();
    }
    let (mean, _) = mean_sd(&flips);
    // q = len·noise/2^20, flips geometric with mean q/(1−q).
    let q = len as f64 * 1000.0 / 1_048_576.0;
    let want = q / (1.0 - q);
    assert!(close(mean, want, 0.03), "mean flips {mean}, want {want}");
    // Flips cover the whole frame, the last two bytes included.
    let share = f64::from(tail_flips) / flips.iter().sum::<f64>();
    assert!(close(share, 2.0 / len as f64, 0.002), "tail share {share}");
}

#[test]
fn huge_noise_terminates() {
    let mut sim = Sim::bi(24);
    sim.set(Param::Noise, "1G");
    sim.send(Dir::LR, &[0u8; 1514]);
    let d = sim.out.pop().unwrap();
    let flipped: u32 = d.frame.iter().map(|b| b.count_ones()).sum();
    assert!(flipped > 0 && flipped <= 1514 * 8);
    // Empty frames pass untouched.
    sim.send(Dir::LR, &[]);
    assert!(sim.out.pop().unwrap().frame.is_empty());
}

#[test]
fn noise_uses_the_node_current_at_send_time() {
    let mut sim = Sim::bi(25);
    sim.set(Param::Delay, "10");
    sim.send(Dir::LR, &[0u8; 1000]);
    sim.set(Param::Noise, "1G");
    sim.flush();
    assert!(sim.out[0].frame.iter().any(|&b| b != 0));
}

// ---- Markov -----------------------------------------------------------------

#[test]
fn markov_transitions_follow_weights() {
    let mut sim = Sim::bi(26);
    sim.ch.set_numnodes(2, sim.now).unwrap();
    sim.ch.set_edge(0, 1, 25.0).unwrap();
    sim.ch.set_edge(1, 0, 50.0).unwrap();
    sim.ch.set_report_node_changes(true);
    // A step is due every 100 ms.
    let first = sim.ch.poll_timeout().unwrap();
    assert_eq!(first - sim.now, Duration::from_millis(100));

    let steps = 40_000;
    let mut in_node = [0u32; 2];
    let mut leave = [0u32; 2];
    let mut prev = sim.ch.current_node();
    for k in 1..=steps {
        sim.run_ms(k as f64 * 100.0);
        let cur = sim.ch.current_node();
        in_node[prev] += 1;
        if cur != prev {
            leave[prev] += 1;
            let ev = sim.ch.poll_event().unwrap();
            assert_eq!((ev.from, ev.to), (prev, cur));
        }
        assert!(sim.ch.poll_event().is_none());
        prev = cur;
    }
    let p01 = f64::from(leave[0]) / f64::from(in_node[0]);
    let p10 = f64::from(leave[1]) / f64::from(in_node[1]);
    let pi0 = f64::from(in_node[0]) / steps as f64;
    assert!(close(p01, 0.25, 0.015), "p01 {p01}");
    assert!(close(p10, 0.50, 0.02), "p10 {p10}");
    // Stationary: pi0 = p10/(p01+p10) = 2/3.
    assert!(close(pi0, 2.0 / 3.0, 0.02), "pi0 {pi0}");
}

#[test]
fn markov_nodes_carry_their_own_parameters() {
    let mut sim = Sim::bi(27);
    sim.ch.set_numnodes(2, sim.now).unwrap();
    sim.set(Param::Loss, "100[1]");
    sim.ch.set_edge(0, 1, 50.0).unwrap();
    sim.ch.set_edge(1, 0, 50.0).unwrap();
    let mut lost_in = [0, 0];
    let mut seen_in = [0, 0];
    for i in 0..5000u64 {
        sim.run_ms(i as f64 * 37.0);
        let node = sim.ch.current_node();
        seen_in[node] += 1;
        if sim.send(Dir::LR, &frame(i, 60)).dropped.is_some() {
            lost_in[node] += 1;
        }
    }
    assert_eq!(lost_in[0], 0);
    assert_eq!(lost_in[1], seen_in[1]);
    assert!(seen_in[0] > 1500 && seen_in[1] > 1500, "{seen_in:?}");
}

#[test]
fn markov_resize_and_node_commands() {
    let mut sim = Sim::bi(28);
    let now = sim.now;
    assert_eq!(sim.ch.numnodes(), 1);
    assert_eq!(sim.ch.poll_timeout(), None);
    assert!(matches!(
        sim.ch.set_numnodes(0, now),
        Err(ChannelError::BadNodeCount(0))
    ));
    assert!(sim.ch.set_numnodes(MAX_NODES + 1, now).is_err());
    sim.ch.set_numnodes(3, now).unwrap();
    sim.ch.set_current_node(2).unwrap();
    assert!(sim.ch.set_current_node(3).is_err());
    sim.ch.set_value_str(Param::Delay, "5[2]").unwrap();
    assert!(matches!(
        sim.ch.set_value_str(Param::Delay, "5[3]"),
        Err(ChannelError::NoSuchNode { node: 3, count: 3 })
    ));
    assert!(matches!(
        sim.ch.set_value_str(Param::Delay, "5+"),
        Err(ChannelError::Value(ValueError::BadPlus(_)))
    ));
    assert_eq!(
        sim.ch.value(2, Param::Delay, Dir::RL),
        Some(WireValue::fixed(5.0))
    );
    sim.ch.set_edge(0, 2, 30.0).unwrap();
    assert!(sim.ch.set_edge(0, 3, 1.0).is_err());
    assert!(sim.ch.set_edge(0, 1, f64::NAN).is_err());
    sim.ch.set_numnodes(2, now).unwrap();
    // The current node went away; its edge went back to the self-loop.
    assert_eq!(sim.ch.current_node(), 0);
    assert_eq!(sim.ch.weights().weight(0, 0), Some(100.0));
    assert_eq!(sim.ch.value(2, Param::Delay, Dir::LR), None);
    assert!(sim.ch.set_markov_time(0.0, now).is_err());
    assert!(sim.ch.set_markov_time(f64::INFINITY, now).is_err());
    sim.ch.set_markov_time(250.0, now).unwrap();
    assert_eq!(
        sim.ch.poll_timeout(),
        Some(now + Duration::from_millis(250))
    );
    sim.ch.set_numnodes(1, now).unwrap();
    assert_eq!(sim.ch.poll_timeout(), None);
    assert_eq!(ChannelError::BadNodeCount(0).errno(), crate::errno::EINVAL);
}

#[test]
fn markov_catch_up_is_bounded() {
    let mut sim = Sim::bi(29);
    sim.ch.set_numnodes(2, sim.now).unwrap();
    sim.ch.set_edge(0, 1, 50.0).unwrap();
    sim.ch.set_markov_time(1e-9, sim.now).unwrap();
    // Hours late at a 1 µs period: capped, re-armed after now.
    let late = sim.now + Duration::from_secs(3600);
    sim.ch.handle_timeout(late);
    let next = sim.ch.poll_timeout().unwrap();
    assert!(next > late && next - late <= Duration::from_micros(1));
}

// ---- output texts -----------------------------------------------------------

#[test]
fn showinfo_matches_protocols_example() {
    // `-d 10 -l LR5`, then `delay 20+5N`, `loss RL3`, `mtu 1500`, `band 1M`.
    let mut sim = Sim::bi(30);
    for (p, v) in [
        (Param::Delay, "10"),
        (Param::Loss, "LR5"),
        (Param::Delay, "20+5N"),
        (Param::Loss, "RL3"),
        (Param::Mtu, "1500"),
        (Param::Bandwidth, "1M"),
    ] {
        sim.set(p, v);
    }
    let want = "WireFilter: bidirectional\n\
                Loss   L->R 5+0U   R->L 3+0U\n\
                Lburst L->R 0+0U   R->L 0+0U\n\
                Delay  L->R 20+5N   R->L 20+5N\n\
                Dup    L->R 0+0U   R->L 0+0U\n\
                Bandw  L->R 1.04858e+06+0U   R->L 1.04858e+06+0U\n\
                Speed  L->R 0+0U   R->L 0+0U\n\
                Noise  L->R 0+0U   R->L 0+0U\n\
                MTU    L->R 1500     R->L 1500   \n\
                Cap.   L->R 0+0U   R->L 0+0U\n\
                Current Delay Queue size:   L->R 0      R->L 0   \n\
                Fifoness TRUE\n\
                Waiting packets in delay queues 0\n";
    assert_eq!(sim.ch.showinfo(None).unwrap(), want);
}

#[test]
fn showinfo_matches_core_example_with_queue() {
    let mut sim = Sim::bi(31);
    for (p, v) in [
        (Param::Loss, "LR1.5"),
        (Param::Delay, "10+5N"),
        (Param::Bandwidth, "RL128+64K"),
        (Param::Mtu, "LR1490"),
        (Param::Mtu, "RL1010+10"),
    ] {
        sim.set(p, v);
    }
    let text = sim.ch.showinfo(None).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "Loss   L->R 1.5+0U   R->L 0+0U");
    assert_eq!(lines[3], "Delay  L->R 10+5N   R->L 10+5N");
    assert_eq!(lines[5], "Bandw  L->R 0+0U   R->L 131072+65536U");
    assert_eq!(lines[8], "MTU    L->R 1490     R->L 1000   ");

    sim.ch.set_fifo(false);
    sim.set(Param::Delay, "100");
    sim.set(Param::Loss, "0");
    sim.set(Param::Mtu, "0");
    sim.set(Param::Bandwidth, "0");
    sim.send(Dir::LR, &frame(1, 60));
    sim.send(Dir::LR, &frame(2, 40));
    sim.send(Dir::RL, &frame(3, 98));
    let text = sim.ch.showinfo(Some(0)).unwrap();
    assert!(text.contains("Current Delay Queue size:   L->R 104      R->L 100   \n"));
    assert!(text.contains("Fifoness FALSE\nWaiting packets in delay queues 3\n"));
}

#[test]
fn showinfo_monodirectional_and_markov_node_line() {
    let t0 = Instant::now();
    let mut ch = Channel::new(Mode::Monodirectional, 32, t0);
    ch.set_value_str(Param::Loss, "5").unwrap();
    ch.set_value_str(Param::Mtu, "1000").unwrap();
    let want = "WireFilter: monodirectional\n\
                Loss   5+0U\n\
                Lburst 0+0U\n\
                Delay  0+0U\n\
                Dup    0+0U\n\
                Bandw  0+0U\n\
                Speed  0+0U\n\
                Noise  0+0U\n\
                MTU    1000\n\
                Cap.   0+0U\n\
                Current Delay Queue size:   0\n\
                Fifoness TRUE\n\
                Waiting packets in delay queues 0\n";
    assert_eq!(ch.showinfo(None).unwrap(), want);

    ch.set_numnodes(2, t0).unwrap();
    ch.set_node_name(1, "bad").unwrap();
    ch.set_value_str(Param::Loss, "50[1]").unwrap();
    let text = ch.showinfo(Some(1)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "WireFilter: monodirectional");
    assert_eq!(lines[1], "Node 1 \"bad\" (0,..,1) Markov-time 100");
    assert_eq!(lines[2], "Loss   50+0U");
    assert!(matches!(
        ch.showinfo(Some(2)),
        Err(ChannelError::NoSuchNode { node: 2, count: 2 })
    ));
}

#[test]
fn showedges_showcurrent_and_debug_line() {
    let t0 = Instant::now();
    let mut ch = Channel::new(Mode::Bidirectional, 33, t0);
    assert_eq!(
        ch.showedges(None).unwrap(),
        "Edge 0 ->0  \"\"->\"\" weigth 100\n"
    );
    assert_eq!(ch.showcurrent(), "Current Markov Node 0 \"\" (0,..,0)\n");

    ch.set_numnodes(3, t0).unwrap();
    ch.set_current_node(0).unwrap();
    ch.set_edge(0, 1, 25.0).unwrap();
    ch.set_edge(0, 2, 12.5).unwrap();
    ch.set_node_name(0, " good").unwrap();
    ch.set_node_name(2, "x").unwrap();
    assert_eq!(
        ch.showedges(Some(0)).unwrap(),
        "Edge 0 ->0  \" good\"->\" good\" weigth 62.5\n\
         Edge 0 ->1  \" good\"->\"\" weigth 25\n\
         Edge 0 ->2  \" good\"->\"x\" weigth 12.5\n"
    );
    assert_eq!(
        ch.showcurrent(),
        "Current Markov Node 0 \" good\" (0,..,2)\n"
    );
    assert!(ch.showedges(Some(3)).is_err());
    ch.set_node_name(2, "").unwrap();
    assert_eq!(ch.node_name(2), Some(""));

    let ev = NodeChange {
        from: 0,
        to: 1,
        from_name: "a".into(),
        to_name: "b".into(),
    };
    assert_eq!(ev.to_string(), "3801 Node 0 \"a\" -> 1 \"b\"");
}

// ---- robustness -------------------------------------------------------------

#[test]
fn queue_limit_bounds_memory() {
    let mut sim = Sim::bi(34);
    sim.ch.set_queue_limit(10_000);
    sim.set(Param::Delay, "1000");
    let mut drops = 0;
    for i in 0..100 {
        if sim.send(Dir::LR, &frame(i, 1000)).dropped == Some(DropReason::QueueLimit) {
            drops += 1;
        }
    }
    // 1000 + 2 + 64 bytes each: 9 fit.
    assert_eq!(sim.ch.queued_frames(), 9);
    assert_eq!(drops, 91);
    sim.flush();
    assert_eq!(sim.out.len(), 9);
    assert_eq!(sim.ch.queued_bytes(Dir::LR), 0);
    // Freed room is usable again.
    assert_eq!(sim.send(Dir::LR, &frame(0, 1000)).sent, 1);
}

#[test]
fn recycled_buffers_are_reused() {
    let mut sim = Sim::bi(35);
    let buf = Vec::with_capacity(2048);
    let ptr = buf.as_ptr();
    sim.ch.recycle(buf);
    sim.ch.handle_frame(Dir::LR, &[1, 2, 3], sim.now);
    let tx = sim.ch.poll_transmit(sim.now).unwrap();
    assert_eq!(tx.frame, [1, 2, 3]);
    assert_eq!(tx.size(), 5);
    assert_eq!(tx.frame.as_ptr(), ptr);
}

#[test]
fn time_going_backwards_is_harmless() {
    let mut sim = Sim::bi(36);
    sim.set(Param::Delay, "100");
    let later = sim.at_ms(500.0);
    sim.ch.handle_frame(Dir::LR, &frame(1, 60), later);
    // An earlier `now` is treated as the latest one seen.
    sim.ch.handle_frame(Dir::LR, &frame(2, 60), sim.t0);
    assert!(sim.ch.poll_transmit(sim.t0).is_none());
    assert_eq!(sim.ch.poll_timeout(), Some(sim.at_ms(600.0)));
    assert_eq!(
        sim.ch
            .poll_transmit(sim.at_ms(600.0))
            .map(|t| frame_id(&t.frame)),
        Some(1)
    );
    assert_eq!(
        sim.ch
            .poll_transmit(sim.at_ms(600.0))
            .map(|t| frame_id(&t.frame)),
        Some(2)
    );
}

#[test]
fn random_parameters_never_panic_and_accounting_balances() {
    let values = [
        "0", "1", "-1", "50", "99.9", "100", "150", "1e9", "1e300", "-1e300", "5+5", "5+100N",
        "0+1e300", "1e-300", "3+3", "1G", "LR7", "RL0+2N",
    ];
    let mut pick = super::rng::Rng::new(37);
    for round in 0..40 {
        let mut sim = Sim::bi(1000 + round);
        sim.ch
            .set_numnodes(1 + pick.below(3) as usize, sim.now)
            .unwrap();
        sim.ch.set_fifo(pick.below(2) == 0);
        for node in 0..sim.ch.numnodes() {
            for p in Param::ALL {
                let v = values[pick.below(values.len() as u64) as usize];
                let spec = format!("{v}[{node}]");
                sim.ch.set_value_str(p, &spec).unwrap();
            }
            for to in 0..sim.ch.numnodes() {
                sim.ch.set_edge(node, to, pick.below(60) as f64).unwrap();
            }
        }
        let mut sent = 0u64;
        for i in 0..300u64 {
            sim.run_ms(i as f64 * pick.below(50) as f64);
            let len = pick.below(1600) as usize;
            let dir = if pick.below(2) == 0 { Dir::LR } else { Dir::RL };
            sent += u64::from(sim.ch.handle_frame(dir, &frame(i, len), sim.now).sent);
            let _ = sim.ch.next_accept(dir, sim.now);
            let _ = sim.ch.showinfo(None).unwrap();
        }
        // Deliver everything, however far out it is scheduled (one node, so
        // that weeks of 100 ms Markov steps need not be simulated).
        sim.ch.set_numnodes(1, sim.now).unwrap();
        while let Some(t) = sim.ch.poll_timeout() {
            if sim.ch.queued_frames() == 0 {
                break;
            }
            sim.run_until(t);
        }
        sim.drain();
        assert_eq!(sim.out.len() as u64, sent, "round {round}");
        assert_eq!(sim.ch.queued_bytes(Dir::LR), 0);
        assert_eq!(sim.ch.queued_bytes(Dir::RL), 0);
    }
}

#[test]
fn param_names_round_trip() {
    for p in Param::ALL {
        assert_eq!(Param::from_name(p.name()), Some(p));
        assert_eq!(Param::ALL[p.index()], p);
    }
    assert_eq!(Param::from_name("band"), Some(Param::Bandwidth));
    assert_eq!(Param::from_name("capacity"), Some(Param::ChanBufSize));
    assert_eq!(Param::from_name("nope"), None);
    assert_eq!(Dir::LR.reverse(), Dir::RL);
    assert_eq!(Dir::RL.as_str(), "RL");
}
