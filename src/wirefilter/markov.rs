//! The Markov chain's transition weights (`markov-numnodes`, `setedge`).
//!
//! Weights are percentages. A row's self weight is always
//! 100 − Σ(other weights of the row), recomputed on every change, as in the
//! C tool.

/// The square matrix of edge weights, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    n: usize,
    adj: Vec<f64>,
}

impl Weights {
    /// `n` nodes (at least 1), each with a 100 % self-loop.
    pub fn new(n: usize) -> Weights {
        let n = n.max(1);
        let mut adj = vec![0.0; n * n];
        for i in 0..n {
            adj[i * n + i] = 100.0;
        }
        Weights { n, adj }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a chain has at least one node.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The weight of edge `from → to`, or `None` out of range.
    pub fn weight(&self, from: usize, to: usize) -> Option<f64> {
        (from < self.n && to < self.n).then(|| self.adj[from * self.n + to])
    }

    /// Resizes to `n` nodes (at least 1). New rows get a 100 % self-loop;
    /// weight that pointed to removed nodes goes back into the self-loop.
    pub fn resize(&mut self, n: usize) {
        let n = n.max(1);
        if n == self.n {
            return;
        }
        let mut next = Weights::new(n);
        for i in 0..n.min(self.n) {
            for j in 0..n.min(self.n) {
                if i != j {
                    next.adj[i * n + j] = self.adj[i * self.n + j];
                }
            }
            next.recompute(i);
        }
        *self = next;
    }

    /// Sets the weight of `from → to` and recomputes `from`'s self weight.
    /// Setting a self weight directly is therefore a no-op, as in C.
    /// Returns false (and changes nothing) out of range.
    pub fn set(&mut self, from: usize, to: usize, weight: f64) -> bool {
        if from >= self.n || to >= self.n {
            return false;
        }
        self.adj[from * self.n + to] = weight;
        self.recompute(from);
        true
    }

    fn recompute(&mut self, i: usize) {
        let n = self.n;
        let row = &mut self.adj[i * n..(i + 1) * n];
        let others: f64 = row
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, w)| w)
            .sum();
        row[i] = 100.0 - others;
    }

    /// One step from `from`, given `u` uniform in [0, 100): walks the row
    /// cumulatively starting with the self-loop, then `from+1`, `from+2`, …
    /// (wrapping), as the C tool does.
    pub fn step(&self, from: usize, u: f64) -> usize {
        if from >= self.n {
            return 0;
        }
        let mut num = u;
        let mut fallback = from;
        for j in 0..self.n {
            let k = (from + j) % self.n;
            let w = self.adj[from * self.n + k];
            if num < w {
                return k;
            }
            if w > 0.0 {
                fallback = k;
            }
            num -= w;
        }
        // Rounding left `u` just past the row's sum: the last edge taken.
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_weight_is_the_rest() {
        let mut w = Weights::new(3);
        assert!(w.set(0, 1, 25.0));
        assert!(w.set(0, 2, 10.0));
        assert_eq!(w.weight(0, 0), Some(65.0));
        assert!(w.set(0, 0, 5.0));
        assert_eq!(w.weight(0, 0), Some(65.0));
        assert!(!w.set(3, 0, 1.0));
        assert_eq!(w.weight(0, 3), None);
    }

    #[test]
    fn resize_returns_weight_to_self_loop() {
        let mut w = Weights::new(3);
        w.set(0, 1, 25.0);
        w.set(0, 2, 10.0);
        w.set(2, 0, 40.0);
        w.resize(2);
        assert_eq!(w.len(), 2);
        assert_eq!(w.weight(0, 0), Some(75.0));
        assert_eq!(w.weight(0, 1), Some(25.0));
        w.resize(4);
        assert_eq!(w.weight(0, 1), Some(25.0));
        assert_eq!(w.weight(0, 0), Some(75.0));
        assert_eq!(w.weight(3, 3), Some(100.0));
        assert_eq!(w.weight(2, 2), Some(100.0));
        w.resize(0);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn step_walks_from_the_self_loop() {
        let mut w = Weights::new(3);
        w.set(1, 2, 30.0);
        w.set(1, 0, 20.0);
        // Row 1 walked as 1 (50), 2 (30), 0 (20).
        assert_eq!(w.step(1, 0.0), 1);
        assert_eq!(w.step(1, 49.9), 1);
        assert_eq!(w.step(1, 50.0), 2);
        assert_eq!(w.step(1, 79.9), 2);
        assert_eq!(w.step(1, 80.0), 0);
        assert_eq!(w.step(1, 99.999), 0);
        assert_eq!(w.step(1, 100.5), 0);
        // A zero self weight is never taken.
        w.set(2, 0, 100.0);
        assert_eq!(w.step(2, 0.0), 0);
        assert_eq!(w.step(7, 0.0), 0);
    }
}
