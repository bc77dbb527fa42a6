//! wirefilter: the sans-IO channel model (loss, delay, bandwidth, ...).
//!
//! This is the deterministic heart of the `wirefilter` tool. A [`Channel`]
//! owns the per-direction parameters of every Markov node, the Markov chain,
//! the delay queue and a seeded PRNG. It touches no socket and no clock: the
//! IO shell passes `now` in and polls results out, in the style of
//! quinn-proto.
//!
//! # Driving a channel
//!
//! ```
//! use std::time::Instant;
//! use vde::wirefilter::{Channel, Dir, Mode, Param};
//!
//! let start = Instant::now();
//! let mut ch = Channel::new(Mode::Bidirectional, 42, start);
//! ch.set_value_str(Param::Delay, "10").unwrap();
//! ch.handle_frame(Dir::LR, &[0u8; 60], start);
//! // Nothing is due yet; the shell sleeps until `poll_timeout`.
//! assert!(ch.poll_transmit(start).is_none());
//! let wake = ch.poll_timeout().unwrap();
//! ch.handle_timeout(wake);
//! let tx = ch.poll_transmit(wake).unwrap();
//! assert_eq!((tx.dir, tx.frame.len()), (Dir::LR, 60));
//! ```
//!
//! A shell's loop is:
//!
//! 1. write every [`Channel::poll_transmit`] result to the side opposite its
//!    input (an [`Dir::LR`] frame goes out on R), until it returns `None`;
//! 2. read input of direction `d` only while [`Channel::next_accept`]`(d, now)`
//!    is `None` (the `speed` back-pressure);
//! 3. sleep until the earliest of input readiness and
//!    [`Channel::poll_timeout`], then call [`Channel::handle_timeout`] and feed
//!    each frame read to [`Channel::handle_frame`].
//!
//! Markov node changes are reported through [`Channel::poll_event`] once
//! [`Channel::set_report_node_changes`] is on (`markov-debug`).
//!
//! # Differences from the C tool (deliberate)
//!
//! * **Markov timer**: the next step is computed with signed arithmetic and
//!   reported by [`Channel::poll_timeout`], so steps happen on time. C's
//!   unsigned subtraction broke the poll timeout, and steps only happened when
//!   some other event woke the loop. Catch-up after a late call is capped at
//!   [`MAX_MARKOV_CATCHUP`] steps, after which the timer is re-armed.
//! * **Speed gate in R→L**: [`Channel::next_accept`] works in both
//!   directions; C compares an uninitialised timestamp for R→L.
//! * **Noise**: flips are drawn over the frame's own bits. C draws among
//!   size·8 = (len+2)·8 positions and the last 16 fall past the frame, so a
//!   share of the flips was lost. The number of flips is capped at the frame's
//!   bit count, so noise × length ≥ 2²⁰ no longer hangs.
//! * **Dup**: at most [`MAX_COPIES`] copies per frame; C loops forever at
//!   100 %.
//! * **Rates**: speed and bandwidth serialisation times are computed in
//!   floating point nanoseconds. C converts the rate to `unsigned int` (a
//!   rate in (0, 1) divided by zero) and rounds each delay down to whole ms.
//!   Deadlines here keep nanosecond precision and equal deadlines keep arrival
//!   order (C's tie counter could tie with `fifo 0`).
//! * **Bounds**: a total delay is clamped to [`MAX_DELAY`] (C casts to `int`,
//!   undefined beyond 2³¹ ms); the delay queue holds at most
//!   [`Channel::queue_limit`] bytes even with `chanbufsize 0` (C grows without
//!   limit); at most [`MAX_NODES`] Markov nodes; `markov-time` is clamped to
//!   1 µs to [`MAX_DELAY`].
//! * **Parsing**: a malformed value is a [`ValueError`] naming the bad part,
//!   and non-finite numbers (`inf`, `nan`) and a dangling `+` are rejected.
//!   C silently ignores what does not parse (and replies `1000 Success`; a
//!   management layer that wants that reply can map the error to it).
//! * **Normal draws**: the polar method also rejects r² = 0 (C would take
//!   `log(0)`).
//! * **Output**: lines are not truncated at 127 bytes (C's `printoutc`
//!   buffer), which only matters for very long node names.

mod channel;
pub mod console;
pub mod markov;
mod rng;
pub mod shell;
mod show;
pub mod value;

#[cfg(test)]
mod tests;

pub use channel::{
    Channel, ChannelError, DropReason, FrameOutcome, NodeChange, Transmit, DEFAULT_QUEUE_LIMIT,
    MAX_COPIES, MAX_DELAY, MAX_MARKOV_CATCHUP, MAX_NODES,
};
pub use value::{fmt_g, DirSel, Dist, ValueError, WireSpec, WireValue, G};

/// A direction through the filter. L→R frames enter on the left plug (or
/// stdin) and leave on the right; R→L the other way.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Left to right (index 0; the only direction in monodirectional mode).
    LR,
    /// Right to left (index 1).
    RL,
}

impl Dir {
    /// Both directions, L→R first.
    pub const BOTH: [Dir; 2] = [Dir::LR, Dir::RL];

    /// 0 for L→R, 1 for R→L (the C tool's `LR`/`RL` constants).
    pub fn index(self) -> usize {
        match self {
            Dir::LR => 0,
            Dir::RL => 1,
        }
    }

    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::LR => Dir::RL,
            Dir::RL => Dir::LR,
        }
    }

    /// `"LR"` or `"RL"`, as blink messages print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::LR => "LR",
            Dir::RL => "RL",
        }
    }
}

/// Whether the filter carries one direction (stdin→stdout pipes) or two.
/// It only changes the `showinfo` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One direction, L→R only (`WireFilter: monodirectional`).
    Monodirectional,
    /// Both directions (`WireFilter: bidirectional`, always so with `-v`).
    Bidirectional,
}

/// A channel parameter. Each Markov node holds one [`WireValue`] per
/// parameter and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// Loss percentage.
    Loss,
    /// Mean length of loss bursts (Gilbert model when > 0).
    LostBurst,
    /// Extra delay in ms.
    Delay,
    /// Duplication percentage.
    Dup,
    /// Channel bandwidth in bytes/s (delays delivery).
    Bandwidth,
    /// Interface speed in bytes/s (throttles input).
    Speed,
    /// Delay-queue capacity in bytes.
    ChanBufSize,
    /// Damaged bits per MiB.
    Noise,
    /// MTU in bytes (frame length + 2 is compared with value − plus).
    Mtu,
}

impl Param {
    /// Number of parameters.
    pub const COUNT: usize = 9;

    /// Every parameter, in the C tool's internal order.
    pub const ALL: [Param; Param::COUNT] = [
        Param::Loss,
        Param::LostBurst,
        Param::Delay,
        Param::Dup,
        Param::Bandwidth,
        Param::Speed,
        Param::ChanBufSize,
        Param::Noise,
        Param::Mtu,
    ];

    /// Position in [`Param::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The parameter a management command or long option names:
    /// `loss`, `lostburst`, `delay`, `dup`, `bandwidth`/`band`, `speed`,
    /// `chanbufsize`/`capacity`, `noise`, `mtu`.
    pub fn from_name(name: &str) -> Option<Param> {
        Some(match name {
            "loss" => Param::Loss,
            "lostburst" => Param::LostBurst,
            "delay" => Param::Delay,
            "dup" => Param::Dup,
            "bandwidth" | "band" => Param::Bandwidth,
            "speed" => Param::Speed,
            "chanbufsize" | "capacity" => Param::ChanBufSize,
            "noise" => Param::Noise,
            "mtu" => Param::Mtu,
            _ => return None,
        })
    }

    /// The canonical command name.
    pub fn name(self) -> &'static str {
        match self {
            Param::Loss => "loss",
            Param::LostBurst => "lostburst",
            Param::Delay => "delay",
            Param::Dup => "dup",
            Param::Bandwidth => "bandwidth",
            Param::Speed => "speed",
            Param::ChanBufSize => "chanbufsize",
            Param::Noise => "noise",
            Param::Mtu => "mtu",
        }
    }
}
