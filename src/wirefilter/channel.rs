//! The channel state machine: parameters per Markov node, the per-packet
//! pipeline (core spec §4.3), the delay queue and the Markov timer.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::markov::Weights;
use super::rng::Rng;
use super::value::{ValueError, WireSpec, WireValue};
use super::{Dir, Mode, Param};
use crate::errno::{Errno, EINVAL};

/// Most copies one frame can become through `dup` (C loops forever at 100 %).
pub const MAX_COPIES: u32 = 128;
/// Longest delay a frame can get, and longest Markov period: 2³¹−1 ms, the
/// range of the C tool's `int` milliseconds.
pub const MAX_DELAY: Duration = Duration::from_millis(i32::MAX as u64);
/// Most Markov nodes (`markov-numnodes`); the weight matrix is n².
pub const MAX_NODES: usize = 256;
/// Most Markov steps taken at once to catch up after a late call; beyond it
/// the timer is re-armed one period after `now`.
pub const MAX_MARKOV_CATCHUP: u32 = 100_000;
/// Default bound on the bytes held in the delay queue (see
/// [`Channel::queue_limit`]).
pub const DEFAULT_QUEUE_LIMIT: usize = 64 << 20;

/// Bookkeeping bytes charged per held frame against the queue limit.
const ENTRY_OVERHEAD: usize = 64;
/// Shortest Markov period.
const MIN_MARKOV_PERIOD: Nanos = 1_000;
/// The C tool's default `markov-time`.
const DEFAULT_MARKOV_TIME_MS: f64 = 100.0;
/// Most undelivered Markov node-change events kept.
const MAX_EVENTS: usize = 1024;
/// Most recycled buffers kept.
const MAX_SPARE: usize = 64;
/// The C tool's internal length header, counted in every size.
const HEADER: usize = 2;

/// Nanoseconds since the channel's epoch.
type Nanos = u64;

const MAX_DELAY_NS: Nanos = i32::MAX as u64 * 1_000_000;

fn ms_to_nanos(ms: f64) -> Nanos {
    // `as` saturates (and maps NaN to 0); then clamp.
    ((ms * 1e6) as Nanos).min(MAX_DELAY_NS)
}

/// Serialisation time of `size` bytes at `rate` bytes/s (rate > 0).
fn tx_nanos(size: usize, rate: f64) -> Nanos {
    ((size as f64 * 1e9 / rate) as Nanos).min(MAX_DELAY_NS)
}

/// Why a frame (or one of its copies) was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Longer than the MTU (length + 2 > mtu − plus).
    Mtu,
    /// Lost (Bernoulli or Gilbert model, or loss ≥ 100).
    Loss,
    /// The direction's delay queue would exceed `chanbufsize`.
    ChanBuf,
    /// The speed randomised to ≤ 0.
    Speed,
    /// The bandwidth randomised to ≤ 0.
    Bandwidth,
    /// The queue's hard bound ([`Channel::queue_limit`]) was reached.
    QueueLimit,
}

/// What [`Channel::handle_frame`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameOutcome {
    /// Copies accepted for delivery (queued or ready at once); 0 or 1 unless
    /// `dup` is set.
    pub sent: u32,
    /// Set when the frame or one of its copies was dropped. A drop while
    /// handling copies also drops the copies not yet handled, as in C.
    pub dropped: Option<DropReason>,
}

impl FrameOutcome {
    fn drop(mut self, reason: DropReason) -> FrameOutcome {
        self.dropped = Some(reason);
        self
    }
}

/// A frame whose time has come, from [`Channel::poll_transmit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The direction it travels: an L→R frame leaves on the right plug.
    pub dir: Dir,
    /// The frame (without any length header), noise already applied.
    pub frame: Vec<u8>,
}

impl Transmit {
    /// The size the C tool reports (blink messages): length + 2.
    pub fn size(&self) -> usize {
        self.frame.len() + HEADER
    }
}

/// A Markov node change, reported to `markov-debug` sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeChange {
    /// The node left.
    pub from: usize,
    /// The node entered.
    pub to: usize,
    /// Its name at that time ("" if none).
    pub from_name: String,
    /// Its name at that time ("" if none).
    pub to_name: String,
}

impl NodeChange {
    /// The reply code, 3800 + the new node.
    pub fn code(&self) -> usize {
        3800 + self.to
    }
}

/// `3801 Node 0 "good" -> 1 "bad"` (without a newline), as C prints it.
impl fmt::Display for NodeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04} Node {} \"{}\" -> {} \"{}\"",
            self.code(),
            self.from,
            self.from_name,
            self.to,
            self.to_name
        )
    }
}

/// A rejected management change. Every variant maps to `EINVAL`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ChannelError {
    /// The value argument did not parse. (C ignores such values and replies
    /// `1000 Success`; a compatible console may do the same.)
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A node number beyond the chain.
    #[error("Markov node {node} does not exist (nodes are 0..={last})", last = .count - 1)]
    NoSuchNode {
        /// The node asked for.
        node: usize,
        /// The number of nodes.
        count: usize,
    },
    /// `markov-numnodes` outside 1..=[`MAX_NODES`].
    #[error("bad number of Markov nodes {0}: must be 1..={MAX_NODES}")]
    BadNodeCount(usize),
    /// `markov-time` that is not a positive number.
    #[error("bad Markov time {0} ms: must be a positive number")]
    BadMarkovTime(f64),
    /// A non-finite edge weight.
    #[error("bad edge weight {0}")]
    BadWeight(f64),
    /// A non-finite parameter value.
    #[error("value is not a finite number")]
    NotFinite,
}

impl ChannelError {
    /// The errno a management reply carries (`1022 Invalid argument`).
    pub fn errno(&self) -> Errno {
        EINVAL
    }
}

/// One Markov node: a name and every parameter in both directions.
#[derive(Debug, Clone)]
struct Node {
    name: Option<String>,
    params: [[WireValue; 2]; Param::COUNT],
}

impl Node {
    fn new() -> Node {
        Node {
            name: None,
            params: [[WireValue::ZERO; 2]; Param::COUNT],
        }
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// A frame in the delay queue, ordered by (deadline, arrival).
#[derive(Debug)]
struct Queued {
    deadline: Nanos,
    seq: u64,
    dir: Dir,
    frame: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// The wirefilter channel model. See the [module docs](super) for how a
/// shell drives it.
#[derive(Debug)]
pub struct Channel {
    mode: Mode,
    epoch: Instant,
    /// Latest time seen; time never goes backwards inside the model.
    now: Nanos,
    rng: Rng,

    nodes: Vec<Node>,
    weights: Weights,
    current: usize,
    markov_time_ms: f64,
    markov_next: Nanos,
    report_changes: bool,
    events: VecDeque<NodeChange>,

    fifo: bool,
    gilbert_bad: [bool; 2],
    next_band: [Nanos; 2],
    next_speed: [Nanos; 2],

    heap: BinaryHeap<Reverse<Queued>>,
    ready: VecDeque<(Dir, Vec<u8>)>,
    /// Bytes (length + 2) in the delay queue per direction: `chanbufsize`.
    queued_bytes: [usize; 2],
    /// Bytes held in the heap and the ready list, with overhead.
    held: usize,
    queue_limit: usize,
    /// Latest deadline ever scheduled, both directions (FIFO coupling).
    max_when: Nanos,
    seq: u64,
    spare: Vec<Vec<u8>>,
}

impl Channel {
    /// A channel with every parameter 0, one Markov node, FIFO on and a
    /// 100 ms Markov time. `seed` fixes every random decision; `now` is the
    /// channel's epoch.
    pub fn new(mode: Mode, seed: u64, now: Instant) -> Channel {
        Channel {
            mode,
            epoch: now,
            now: 0,
            rng: Rng::new(seed),
            nodes: vec![Node::new()],
            weights: Weights::new(1),
            current: 0,
            markov_time_ms: DEFAULT_MARKOV_TIME_MS,
            markov_next: 0,
            report_changes: false,
            events: VecDeque::new(),
            fifo: true,
            gilbert_bad: [false; 2],
            next_band: [0; 2],
            next_speed: [0; 2],
            heap: BinaryHeap::new(),
            ready: VecDeque::new(),
            queued_bytes: [0; 2],
            held: 0,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            max_when: 0,
            seq: 0,
            spare: Vec::new(),
        }
    }

    // ---- time -------------------------------------------------------------

    fn nanos(&self, t: Instant) -> Nanos {
        Nanos::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(Nanos::MAX)
    }

    fn instant(&self, ns: Nanos) -> Instant {
        // Every time the model produces is at most MAX_DELAY past a time the
        // shell passed in, so this addition does not overflow in practice.
        self.epoch
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or(self.epoch)
    }

    fn observe(&mut self, now: Instant) {
        self.now = self.now.max(self.nanos(now));
    }

    // ---- the data path ----------------------------------------------------

    /// Runs one frame arriving in direction `dir` at `now` through the
    /// pipeline: MTU, loss, dup, then per copy chanbufsize, speed,
    /// bandwidth and delay. Copies due at once and later ones are both
    /// collected with [`Channel::poll_transmit`].
    pub fn handle_frame(&mut self, dir: Dir, frame: &[u8], now: Instant) -> FrameOutcome {
        self.observe(now);
        self.advance_markov();
        let d = dir.index();
        let p = self.nodes[self.current].params.map(|v| v[d]);
        let get = |param: Param| p[param.index()];
        let size = frame.len().saturating_add(HEADER);
        let out = FrameOutcome::default();

        // MTU: no randomness.
        let mtu = get(Param::Mtu).min();
        if mtu > 0.0 && size as f64 > mtu {
            return out.drop(DropReason::Mtu);
        }

        // Loss.
        let loss = get(Param::Loss);
        if loss.min() >= 100.0 {
            return out.drop(DropReason::Loss);
        }
        let burst = get(Param::LostBurst);
        if burst.max() > 0.0 {
            // Gilbert model: drop if the state is BAD after the transition.
            let p = loss.sample(&mut self.rng) / 100.0;
            let b = burst.sample(&mut self.rng);
            let to_bad = p / (b * (1.0 - p));
            let to_good = 1.0 / b;
            let u = self.rng.f64();
            let recovered = u < to_good;
            self.gilbert_bad[d] = if self.gilbert_bad[d] {
                !recovered
            } else {
                u < to_bad
            };
            if self.gilbert_bad[d] {
                return out.drop(DropReason::Loss);
            }
        } else {
            self.gilbert_bad[d] = false;
            if loss.max() > 0.0 {
                let p = loss.sample(&mut self.rng) / 100.0;
                if self.rng.f64() < p {
                    return out.drop(DropReason::Loss);
                }
            }
        }

        // Dup: one more copy per consecutive success.
        let mut copies = 1;
        let dup = get(Param::Dup);
        if dup.max() > 0.0 {
            let p = dup.sample(&mut self.rng) / 100.0;
            while copies < MAX_COPIES && self.rng.f64() < p {
                copies += 1;
            }
        }

        let mut out = out;
        for _ in 0..copies {
            if let Err(reason) = self.send_copy(dir, frame, size, &p) {
                return out.drop(reason);
            }
            out.sent += 1;
        }
        out
    }

    /// Steps 4.x of the pipeline for one copy.
    fn send_copy(
        &mut self,
        dir: Dir,
        frame: &[u8],
        size: usize,
        p: &[WireValue; Param::COUNT],
    ) -> Result<(), DropReason> {
        let d = dir.index();
        let get = |param: Param| p[param.index()];

        let cap = get(Param::ChanBufSize);
        if cap.max() > 0.0 {
            let cap = cap.sample(&mut self.rng);
            if self.queued_bytes[d].saturating_add(size) as f64 > cap {
                return Err(DropReason::ChanBuf);
            }
        }
        let held = self
            .held
            .saturating_add(size)
            .saturating_add(ENTRY_OVERHEAD);
        if held > self.queue_limit {
            return Err(DropReason::QueueLimit);
        }

        // Speed: the copy gets its own serialisation time, and input in this
        // direction pauses until `next_speed`.
        let mut line: Nanos = 0;
        let speed = get(Param::Speed);
        if speed.max() > 0.0 {
            let rate = speed.sample(&mut self.rng);
            if rate.is_nan() || rate <= 0.0 {
                return Err(DropReason::Speed);
            }
            let tx = tx_nanos(size, rate);
            line = tx;
            let start = self.next_speed[d].max(self.now);
            self.next_speed[d] = start
                .saturating_add(tx)
                .min(self.now.saturating_add(MAX_DELAY_NS));
        }

        // Bandwidth: a virtual serialisation line; replaces the speed delay.
        let band = get(Param::Bandwidth);
        if band.max() > 0.0 {
            let rate = band.sample(&mut self.rng);
            if rate.is_nan() || rate <= 0.0 {
                return Err(DropReason::Bandwidth);
            }
            let tx = tx_nanos(size, rate);
            if self.now > self.next_band[d] {
                self.next_band[d] = self.now;
            }
            line = (self.next_band[d] - self.now).saturating_add(tx);
            self.next_band[d] = self.next_band[d]
                .saturating_add(tx)
                .min(self.now.saturating_add(MAX_DELAY_NS));
        }

        // Delay: a negative random delay leaves only the line delay.
        let delay = get(Param::Delay);
        let total = if line > 0 || delay.max() > 0.0 {
            let ms = delay.sample(&mut self.rng);
            let extra = if ms >= 0.0 { ms_to_nanos(ms) } else { 0 };
            extra.saturating_add(line).min(MAX_DELAY_NS)
        } else {
            0
        };

        let buf = self.buffer(frame);
        self.held = held;
        if total > 0 {
            self.enqueue(dir, buf, total);
        } else {
            // Sent at once, as C does, without FIFO ordering.
            self.ready.push_back((dir, buf));
        }
        Ok(())
    }

    fn enqueue(&mut self, dir: Dir, frame: Vec<u8>, delay: Nanos) {
        let mut when = self.now.saturating_add(delay);
        if when > self.max_when {
            self.max_when = when;
        }
        if self.fifo {
            // Never before the latest deadline of either direction.
            when = self.max_when;
        }
        self.seq += 1;
        self.queued_bytes[dir.index()] += frame.len() + HEADER;
        self.heap.push(Reverse(Queued {
            deadline: when,
            seq: self.seq,
            dir,
            frame,
        }));
    }

    fn buffer(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        buf
    }

    /// The next frame due at `now`, with noise applied, or `None`. Call it
    /// until `None` after every [`handle_frame`](Channel::handle_frame) and
    /// [`handle_timeout`](Channel::handle_timeout). Frames sent without
    /// delay come first, then queued ones by deadline.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.observe(now);
        self.advance_markov();
        let (dir, mut frame) = match self.ready.pop_front() {
            Some(ready) => ready,
            None => {
                if self.heap.peek()?.0.deadline > self.now {
                    return None;
                }
                let Reverse(q) = self.heap.pop()?;
                let d = q.dir.index();
                self.queued_bytes[d] = self.queued_bytes[d].saturating_sub(q.frame.len() + HEADER);
                (q.dir, q.frame)
            }
        };
        self.held = self
            .held
            .saturating_sub(frame.len() + HEADER + ENTRY_OVERHEAD);
        self.add_noise(dir, &mut frame);
        Some(Transmit { dir, frame })
    }

    /// Flips random bits: the count is geometric (one more while
    /// U < len·noise/2²⁰), capped at the frame's bit count; each flip picks
    /// a uniform bit of the frame.
    fn add_noise(&mut self, dir: Dir, frame: &mut [u8]) {
        let noise = self.nodes[self.current].params[Param::Noise.index()][dir.index()];
        if noise.max() <= 0.0 || frame.is_empty() {
            return;
        }
        let per_mib = noise.sample(&mut self.rng);
        let q = frame.len() as f64 * per_mib / 1_048_576.0;
        let bits = frame.len() as u64 * 8;
        let mut flips = 0;
        while flips < bits && self.rng.f64() < q {
            flips += 1;
        }
        for _ in 0..flips {
            let bit = self.rng.below(bits);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
    }

    /// Gives a transmitted frame's buffer back for reuse (optional).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            self.spare.push(buf);
        }
    }

    /// Advances the model to `now`: takes due Markov steps. Call it when
    /// [`poll_timeout`](Channel::poll_timeout) expires.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        self.advance_markov();
    }

    /// The earliest time the shell must call back: a queued frame's
    /// deadline, the next Markov step, the end of a speed pause, or the
    /// latest `now` when frames are ready at once. `None` when idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Nanos> = None;
        let mut consider = |t: Nanos| next = Some(next.map_or(t, |n| n.min(t)));
        if !self.ready.is_empty() {
            consider(self.now);
        }
        if let Some(Reverse(q)) = self.heap.peek() {
            consider(q.deadline);
        }
        if self.nodes.len() > 1 {
            consider(self.markov_next);
        }
        for dir in Dir::BOTH {
            if let Some(t) = self.speed_pause(dir, self.now) {
                consider(t);
            }
        }
        next.map(|t| self.instant(t))
    }

    fn speed_pause(&self, dir: Dir, now: Nanos) -> Option<Nanos> {
        let d = dir.index();
        // The gate tests the node's base speed, not a random draw.
        let base = self.nodes[self.current].params[Param::Speed.index()][d].value;
        (base > 0.0 && self.next_speed[d] > now).then_some(self.next_speed[d])
    }

    /// `None` if input in `dir` may be read at `now`; otherwise the time the
    /// `speed` pause ends. Frames handed over during a pause are still
    /// processed; pausing the reads is what throttles the sender.
    pub fn next_accept(&self, dir: Dir, now: Instant) -> Option<Instant> {
        let now = self.now.max(self.nanos(now));
        self.speed_pause(dir, now).map(|t| self.instant(t))
    }

    // ---- Markov chain -----------------------------------------------------

    fn period(&self) -> Nanos {
        ms_to_nanos(self.markov_time_ms).max(MIN_MARKOV_PERIOD)
    }

    fn advance_markov(&mut self) {
        if self.nodes.len() <= 1 {
            return;
        }
        let mut steps = 0;
        while self.markov_next <= self.now {
            if steps == MAX_MARKOV_CATCHUP {
                self.markov_next = self.now.saturating_add(self.period());
                break;
            }
            self.markov_step();
            steps += 1;
        }
    }

    fn markov_step(&mut self) {
        self.markov_next = self.markov_next.saturating_add(self.period());
        let from = self.current;
        let to = self.weights.step(from, self.rng.f64() * 100.0);
        if to != from {
            self.current = to;
            if self.report_changes {
                if self.events.len() == MAX_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(NodeChange {
                    from,
                    to,
                    from_name: self.nodes[from].name().to_owned(),
                    to_name: self.nodes[to].name().to_owned(),
                });
            }
        }
    }

    /// Restarts the Markov timer at `now` with an immediate step, as C's
    /// `markov_start`.
    fn markov_start(&mut self) {
        if self.nodes.len() > 1 {
            self.markov_next = self.now;
            self.advance_markov();
        }
    }

    /// The next Markov node change, when reporting is on.
    pub fn poll_event(&mut self) -> Option<NodeChange> {
        self.events.pop_front()
    }

    /// Turns node-change reporting on or off (on while any management
    /// session has `markov-debug` > 0). Turning it off drops pending events.
    pub fn set_report_node_changes(&mut self, on: bool) {
        self.report_changes = on;
        if !on {
            self.events.clear();
        }
    }

    // ---- configuration ----------------------------------------------------

    fn check_node(&self, node: usize) -> Result<(), ChannelError> {
        if node < self.nodes.len() {
            Ok(())
        } else {
            Err(ChannelError::NoSuchNode {
                node,
                count: self.nodes.len(),
            })
        }
    }

    /// Sets `param` from a parsed value (its node and directions).
    pub fn set_value(&mut self, param: Param, spec: &WireSpec) -> Result<(), ChannelError> {
        self.check_node(spec.node)?;
        if !spec.value.is_finite() {
            return Err(ChannelError::NotFinite);
        }
        let slot = &mut self.nodes[spec.node].params[param.index()];
        for dir in Dir::BOTH {
            if spec.dirs.includes(dir) {
                slot[dir.index()] = spec.value;
            }
        }
        Ok(())
    }

    /// Parses `text` with the value syntax and sets `param` (what the
    /// command-line options and management commands do).
    pub fn set_value_str(&mut self, param: Param, text: &str) -> Result<(), ChannelError> {
        let spec: WireSpec = text.parse()?;
        self.set_value(param, &spec)
    }

    /// A parameter of a node, or `None` if the node does not exist.
    pub fn value(&self, node: usize, param: Param, dir: Dir) -> Option<WireValue> {
        self.nodes
            .get(node)
            .map(|n| n.params[param.index()][dir.index()])
    }

    /// `fifo 1` (no reordering, the default) or `fifo 0` (`-N`).
    pub fn set_fifo(&mut self, fifo: bool) {
        self.fifo = fifo;
    }

    /// Whether FIFO ordering is on.
    pub fn fifo(&self) -> bool {
        self.fifo
    }

    /// Mono- or bidirectional.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `markov-numnodes n`: resizes the chain (new nodes have every
    /// parameter 0 and a 100 % self-loop; node 0 becomes current if the
    /// current one goes) and restarts the Markov timer with a step at `now`.
    pub fn set_numnodes(&mut self, n: usize, now: Instant) -> Result<(), ChannelError> {
        if n == 0 || n > MAX_NODES {
            return Err(ChannelError::BadNodeCount(n));
        }
        self.observe(now);
        self.advance_markov();
        self.nodes.resize_with(n, Node::new);
        self.weights.resize(n);
        if self.current >= n {
            self.current = 0;
        }
        self.markov_start();
        Ok(())
    }

    /// The number of Markov nodes.
    pub fn numnodes(&self) -> usize {
        self.nodes.len()
    }

    /// `markov-setnode n`.
    pub fn set_current_node(&mut self, node: usize) -> Result<(), ChannelError> {
        self.check_node(node)?;
        self.current = node;
        Ok(())
    }

    /// The current Markov node.
    pub fn current_node(&self) -> usize {
        self.current
    }

    /// `markov-name n,name`: an empty name clears it. The text is kept as
    /// given (C keeps a blank after the comma).
    pub fn set_node_name(&mut self, node: usize, name: &str) -> Result<(), ChannelError> {
        self.check_node(node)?;
        self.nodes[node].name = (!name.is_empty()).then(|| name.to_owned());
        Ok(())
    }

    /// A node's name ("" if unnamed), or `None` if the node does not exist.
    pub fn node_name(&self, node: usize) -> Option<&str> {
        self.nodes.get(node).map(Node::name)
    }

    /// `markov-time ms`: sets the step period and restarts the timer with a
    /// step at `now`. Periods are clamped to 1 µs to [`MAX_DELAY`]; the value
    /// given is what `showinfo` prints.
    pub fn set_markov_time(&mut self, ms: f64, now: Instant) -> Result<(), ChannelError> {
        if !ms.is_finite() || ms <= 0.0 {
            return Err(ChannelError::BadMarkovTime(ms));
        }
        self.observe(now);
        self.advance_markov();
        self.markov_time_ms = ms;
        self.markov_start();
        Ok(())
    }

    /// The Markov step period in ms.
    pub fn markov_time(&self) -> f64 {
        self.markov_time_ms
    }

    /// `setedge from,to,weight` (percent); `from`'s self weight becomes
    /// 100 − Σ(others).
    pub fn set_edge(&mut self, from: usize, to: usize, weight: f64) -> Result<(), ChannelError> {
        self.check_node(from)?;
        self.check_node(to)?;
        if !weight.is_finite() {
            return Err(ChannelError::BadWeight(weight));
        }
        self.weights.set(from, to, weight);
        Ok(())
    }

    /// The edge weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    // ---- queue state ------------------------------------------------------

    /// Bytes (each frame's length + 2) waiting in `dir`'s delay queue; what
    /// `chanbufsize` limits and `showinfo` prints.
    pub fn queued_bytes(&self, dir: Dir) -> usize {
        self.queued_bytes[dir.index()]
    }

    /// Frames waiting in the delay queue, both directions.
    pub fn queued_frames(&self) -> usize {
        self.heap.len()
    }

    /// The hard bound on bytes held (delay queue and frames ready to send,
    /// each charged length + 2 + 64), which applies even with
    /// `chanbufsize 0`. Frames beyond it are dropped with
    /// [`DropReason::QueueLimit`].
    pub fn queue_limit(&self) -> usize {
        self.queue_limit
    }

    /// Sets [`queue_limit`](Channel::queue_limit).
    pub fn set_queue_limit(&mut self, bytes: usize) {
        self.queue_limit = bytes;
    }
}
