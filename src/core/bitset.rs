//! A small growable bit set over port numbers.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    words: Vec<u64>,
}

impl PortSet {
    pub fn with_ports(n: usize) -> Self {
        PortSet {
            words: vec![0; n.div_ceil(64).max(1)],
        }
    }

    /// Makes room for ports `0..n`, keeping the members below `n`.
    pub fn resize(&mut self, n: usize) {
        self.words.resize(n.div_ceil(64).max(1), 0);
        let rem = n % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    pub fn contains(&self, p: u32) -> bool {
        let (w, b) = ((p / 64) as usize, p % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn insert(&mut self, p: u32) {
        let (w, b) = ((p / 64) as usize, p % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    pub fn remove(&mut self, p: u32) {
        let (w, b) = ((p / 64) as usize, p % 64);
        if let Some(x) = self.words.get_mut(w) {
            *x &= !(1 << b);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_iter_resize() {
        let mut s = PortSet::with_ports(10);
        for p in [0, 3, 63, 64, 130] {
            s.insert(p);
        }
        assert!(s.contains(130) && s.contains(0) && !s.contains(1));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 130]);
        s.remove(63);
        s.resize(65);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 64]);
        s.remove(0);
        s.remove(3);
        s.remove(64);
        assert!(s.is_empty());
        assert!(!s.contains(100_000));
    }
}
