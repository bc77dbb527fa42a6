//! Sliding anti-replay window over 64-bit message counters.
//!
//! A ring of [`ReplayWindow::BITS`] bits kept as `u64` words (the scheme of
//! RFC 6479, as WireGuard uses it). Bit `c mod BITS` stands for counter `c`.
//! When a counter newer than the highest seen arrives, the words between the
//! old and the new highest are cleared. One word of the ring is always being
//! reused, so the window that is actually guaranteed is
//! [`ReplayWindow::WINDOW`] counters behind the highest seen.

/// Number of 64-bit words in the ring.
const WORDS: usize = 64;

/// Anti-replay window. [`check`](ReplayWindow::check) is a cheap test that
/// may run before authentication; [`update`](ReplayWindow::update) marks a
/// counter as seen and must only run after authentication.
#[derive(Clone)]
pub struct ReplayWindow {
    /// The highest counter marked so far (meaningful when `any`).
    top: u64,
    /// Whether any counter was marked.
    any: bool,
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .field("any", &self.any)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// Bits in the ring.
    pub const BITS: u64 = (WORDS as u64) * 64;
    /// Counters this far behind the highest seen (exclusive) are still
    /// accepted once; older ones are rejected.
    pub const WINDOW: u64 = Self::BITS - 64;

    /// An empty window: every counter is acceptable.
    pub fn new() -> Self {
        ReplayWindow {
            top: 0,
            any: false,
            bits: [0; WORDS],
        }
    }

    fn word(counter: u64) -> usize {
        ((counter >> 6) as usize) & (WORDS - 1)
    }

    fn mask(counter: u64) -> u64 {
        1u64 << (counter & 63)
    }

    /// Whether `counter` would be accepted (not seen, not too old). Does not
    /// change the window.
    pub fn check(&self, counter: u64) -> bool {
        if !self.any || counter > self.top {
            return true;
        }
        if self.top - counter >= Self::WINDOW {
            return false;
        }
        self.bits[Self::word(counter)] & Self::mask(counter) == 0
    }

    /// Marks `counter` as seen. Returns false (and changes nothing) when it
    /// was already seen or is too old.
    pub fn update(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if !self.any {
            self.any = true;
            self.top = counter;
        } else if counter > self.top {
            let old_word = self.top >> 6;
            let new_word = counter >> 6;
            let advance = (new_word - old_word).min(WORDS as u64);
            for i in 1..=advance {
                self.bits[((old_word + i) as usize) & (WORDS - 1)] = 0;
            }
            self.top = counter;
        }
        self.bits[Self::word(counter)] |= Self::mask(counter);
        true
    }

    /// The highest counter seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.any.then_some(self.top)
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayWindow;

    #[test]
    fn in_order() {
        let mut w = ReplayWindow::new();
        for c in 0..20_000u64 {
            assert!(w.check(c));
            assert!(w.update(c), "counter {c}");
            assert!(!w.check(c));
        }
        assert_eq!(w.highest(), Some(19_999));
    }

    #[test]
    fn duplicate_rejected() {
        let mut w = ReplayWindow::new();
        assert!(w.update(0));
        assert!(!w.update(0));
        assert!(w.update(5));
        assert!(!w.update(5));
        assert!(!w.update(0));
        assert!(w.update(3));
        assert!(!w.update(3));
    }

    #[test]
    fn reordered_within_window_accepted_once() {
        let mut w = ReplayWindow::new();
        // Blocks of 2048 counters, each delivered in a scrambled order: every
        // counter arrives at most 2047 behind the highest one seen.
        let n = 3 * 2048u64;
        let order: Vec<u64> = (0..n)
            .map(|i| (i / 2048) * 2048 + (i * 1237) % 2048)
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len() as u64, n, "a permutation");
        for &c in &order {
            assert!(w.update(c), "counter {c}");
        }
        for c in 0..n {
            assert!(!w.update(c), "second time {c}");
        }
    }

    #[test]
    fn full_window_of_2048_reversed() {
        let mut w = ReplayWindow::new();
        assert!(w.update(5000));
        for c in (5000 - 2048..5000).rev() {
            assert!(w.update(c), "counter {c}");
        }
        for c in 5000 - 2048..=5000 {
            assert!(!w.update(c));
        }
    }

    #[test]
    fn too_old_rejected() {
        let mut w = ReplayWindow::new();
        assert!(w.update(10_000));
        assert!(!w.check(10_000 - ReplayWindow::WINDOW));
        assert!(!w.update(10_000 - ReplayWindow::WINDOW));
        assert!(!w.update(0));
        assert!(w.update(10_000 - ReplayWindow::WINDOW + 1));
    }

    #[test]
    fn huge_jumps() {
        let mut w = ReplayWindow::new();
        assert!(w.update(1));
        assert!(w.update(1 << 40));
        assert!(!w.update(1));
        assert!(!w.update(1 << 40));
        assert!(w.update((1 << 40) - 1));
        assert!(w.update((1 << 40) + 100_000));
        // Bits of the old region must have been cleared, not aliased.
        assert!(w.update((1 << 40) + 100_000 - 64));
        assert!(w.update((1 << 40) + 100_000 - 4000));
        assert!(!w.update((1 << 40) + 100_000 - 4000));
        // A jump of exactly one ring's worth of counters.
        let top = (1u64 << 40) + 100_000;
        assert!(w.update(top + ReplayWindow::BITS));
        assert!(w.update(top + ReplayWindow::BITS - 1));
    }

    #[test]
    fn near_u64_max() {
        let mut w = ReplayWindow::new();
        assert!(w.update(u64::MAX - 10));
        assert!(w.update(u64::MAX));
        assert!(!w.update(u64::MAX));
        assert!(w.update(u64::MAX - 1));
        assert!(!w.update(u64::MAX - 10));
        assert!(w.update(u64::MAX - 11));
        assert!(!w.update(0));
        assert!(!w.update(u64::MAX - ReplayWindow::WINDOW));
        assert!(w.update(u64::MAX - ReplayWindow::WINDOW + 1));
    }

    #[test]
    fn window_is_at_least_2048() {
        const { assert!(ReplayWindow::WINDOW >= 2048) };
    }
}
