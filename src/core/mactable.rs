//! The MAC learning table: keyed by (MAC, VLAN), chained buckets numbered
//! exactly as the C switch numbers them (so `hash/print` matches), with
//! expiry, minimum persistence and a hard bound on the number of entries.
//!
//! Entries live in a slab allocated once (and again only on `hash/setsize`),
//! so learning and lookup never allocate.

use crate::frame::Mac;

const NIL: u32 = u32::MAX;

/// Smallest bound on the number of entries, whatever the bucket count.
pub const MIN_MAX_ENTRIES: usize = 1024;
/// Entries allowed per bucket before learning is refused.
pub const ENTRIES_PER_BUCKET: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: Mac,
    vlan: u16,
    port: u32,
    last_seen: u64,
    next: u32,
}

/// Result of a learning attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// New entry created.
    New,
    /// Known on the same port; refreshed.
    Refreshed,
    /// Moved from the given port (the old station had been quiet long enough).
    Moved { from: u32 },
    /// Seen on another port too soon after the stored one: kept where it was.
    MoveRefused { stays: u32 },
    /// The table is at its bound: not learned.
    TableFull,
}

/// One table entry as shown by `hash/print`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView {
    pub bucket: usize,
    pub mac: Mac,
    pub vlan: u16,
    pub port: u32,
    pub last_seen: u64,
}

pub struct MacTable {
    buckets: Vec<u32>,
    slab: Vec<Entry>,
    free: u32,
    len: usize,
    max_entries: usize,
    /// Entries per port (grown on demand), for port security.
    per_port: Vec<u32>,
}

/// The C switch's bucket function: MurmurHash3's fmix64 without its final
/// xor-shift, over `mac (little-endian, bits 0..47) | vlan << 48`.
pub fn bucket_of(mac: Mac, vlan: u16, size: usize) -> usize {
    let mut k = mac.to_u64_le() | (u64::from(vlan) << 48);
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ceb9fe1a85ec53);
    (k & (size as u64 - 1)) as usize
}

/// Rounds a requested hash size up to a power of two (at least 1), as the
/// C switch does. Returns the size and whether it was changed.
pub fn round_hash_size(n: usize) -> (usize, bool) {
    let p = n.max(1).checked_next_power_of_two().unwrap_or(1 << 30);
    (p, p != n)
}

impl MacTable {
    /// A table with `size` buckets (must be a power of two).
    pub fn new(size: usize) -> Self {
        assert!(size.is_power_of_two());
        let max_entries = (size * ENTRIES_PER_BUCKET).max(MIN_MAX_ENTRIES);
        let mut slab = Vec::with_capacity(max_entries);
        for i in 0..max_entries {
            let next = if i + 1 < max_entries {
                (i + 1) as u32
            } else {
                NIL
            };
            slab.push(Entry {
                mac: Mac::default(),
                vlan: 0,
                port: 0,
                last_seen: 0,
                next,
            });
        }
        MacTable {
            buckets: vec![NIL; size],
            slab,
            free: 0,
            len: 0,
            max_entries,
            per_port: Vec::new(),
        }
    }

    pub fn size(&self) -> usize {
        self.buckets.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Entries learned on `port`.
    pub fn port_count(&self, port: u32) -> u32 {
        self.per_port.get(port as usize).copied().unwrap_or(0)
    }

    fn count(&mut self, port: u32, up: bool) {
        let i = port as usize;
        if i >= self.per_port.len() {
            self.per_port.resize(i + 1, 0);
        }
        let c = &mut self.per_port[i];
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }

    fn find(&self, mac: Mac, vlan: u16) -> Option<u32> {
        let mut i = self.buckets[bucket_of(mac, vlan, self.buckets.len())];
        while i != NIL {
            let e = &self.slab[i as usize];
            if e.mac == mac && e.vlan == vlan {
                return Some(i);
            }
            i = e.next;
        }
        None
    }

    /// Port of a live entry (one not older than `expire` seconds at `now`).
    pub fn lookup(&self, mac: Mac, vlan: u16, now: u64, expire: u64) -> Option<u32> {
        let i = self.find(mac, vlan)?;
        let e = &self.slab[i as usize];
        if e.last_seen + expire < now {
            None
        } else {
            Some(e.port)
        }
    }

    /// The entry for (mac, vlan), for `hash/find`.
    pub fn get(&self, mac: Mac, vlan: u16) -> Option<EntryView> {
        let i = self.find(mac, vlan)?;
        let e = &self.slab[i as usize];
        Some(EntryView {
            bucket: bucket_of(mac, vlan, self.buckets.len()),
            mac,
            vlan,
            port: e.port,
            last_seen: e.last_seen,
        })
    }

    /// Learns that `mac` in `vlan` was seen on `port` at `now` (seconds).
    pub fn learn(&mut self, mac: Mac, vlan: u16, port: u32, now: u64, min_pers: u64) -> Learn {
        if let Some(i) = self.find(mac, vlan) {
            let e = &mut self.slab[i as usize];
            if e.port == port {
                e.last_seen = now;
                return Learn::Refreshed;
            }
            if now.saturating_sub(e.last_seen) > min_pers {
                let from = e.port;
                e.port = port;
                e.last_seen = now;
                self.count(from, false);
                self.count(port, true);
                return Learn::Moved { from };
            }
            return Learn::MoveRefused { stays: e.port };
        }
        if self.free == NIL {
            return Learn::TableFull;
        }
        let i = self.free;
        let b = bucket_of(mac, vlan, self.buckets.len());
        let e = &mut self.slab[i as usize];
        self.free = e.next;
        *e = Entry {
            mac,
            vlan,
            port,
            last_seen: now,
            next: self.buckets[b],
        };
        self.buckets[b] = i;
        self.len += 1;
        self.count(port, true);
        Learn::New
    }

    /// Removes every entry for which `dead` is true; calls `gone` for each.
    pub fn retain(
        &mut self,
        mut dead: impl FnMut(&EntryView) -> bool,
        mut gone: impl FnMut(EntryView),
    ) {
        for b in 0..self.buckets.len() {
            let mut prev = NIL;
            let mut i = self.buckets[b];
            while i != NIL {
                let e = self.slab[i as usize];
                let view = EntryView {
                    bucket: b,
                    mac: e.mac,
                    vlan: e.vlan,
                    port: e.port,
                    last_seen: e.last_seen,
                };
                let next = e.next;
                if dead(&view) {
                    if prev == NIL {
                        self.buckets[b] = next;
                    } else {
                        self.slab[prev as usize].next = next;
                    }
                    self.slab[i as usize].next = self.free;
                    self.free = i;
                    self.len -= 1;
                    self.count(view.port, false);
                    gone(view);
                } else {
                    prev = i;
                }
                i = next;
            }
        }
    }

    /// Every entry in bucket order, then chain order (newest first).
    pub fn entries(&self) -> impl Iterator<Item = EntryView> + '_ {
        self.buckets.iter().enumerate().flat_map(move |(b, &head)| {
            let mut i = head;
            std::iter::from_fn(move || {
                if i == NIL {
                    return None;
                }
                let e = &self.slab[i as usize];
                i = e.next;
                Some(EntryView {
                    bucket: b,
                    mac: e.mac,
                    vlan: e.vlan,
                    port: e.port,
                    last_seen: e.last_seen,
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, last])
    }

    #[test]
    fn buckets_match_the_c_switch() {
        // Values observed on the Debian vde_switch with 128 buckets.
        assert_eq!(bucket_of(mac(1), 0, 128), 43);
        assert_eq!(bucket_of(mac(2), 0, 128), 60);
        assert_eq!(bucket_of(mac(0x0a), 0, 128), 9);
        assert_eq!(bucket_of(mac(0x0b), 0, 128), 26);
        assert_eq!(bucket_of(Mac([0x0a, 0, 0, 0, 0, 5]), 10, 128), 28);
    }

    #[test]
    fn rounding() {
        assert_eq!(round_hash_size(100), (128, true));
        assert_eq!(round_hash_size(128), (128, false));
        assert_eq!(round_hash_size(0), (1, true));
    }

    #[test]
    fn learn_refresh_move_and_min_persistence() {
        let mut t = MacTable::new(128);
        assert_eq!(t.learn(mac(1), 0, 1, 10, 3), Learn::New);
        assert_eq!(t.learn(mac(1), 0, 1, 11, 3), Learn::Refreshed);
        // seen on port 2 within min persistence: stays, last_seen not refreshed
        assert_eq!(
            t.learn(mac(1), 0, 2, 14, 3),
            Learn::MoveRefused { stays: 1 }
        );
        assert_eq!(t.get(mac(1), 0).unwrap().last_seen, 11);
        // quiet for more than 3 s: moves
        assert_eq!(t.learn(mac(1), 0, 2, 15, 3), Learn::Moved { from: 1 });
        assert_eq!(t.lookup(mac(1), 0, 15, 100), Some(2));
        // same MAC, other VLAN: a separate entry
        assert_eq!(t.learn(mac(1), 5, 3, 15, 3), Learn::New);
        assert_eq!(t.lookup(mac(1), 5, 15, 100), Some(3));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn expiry_is_strict() {
        let mut t = MacTable::new(128);
        t.learn(mac(1), 0, 1, 0, 3);
        assert_eq!(t.lookup(mac(1), 0, 100, 100), Some(1));
        assert_eq!(t.lookup(mac(1), 0, 101, 100), None);
    }

    #[test]
    fn retain_removes_and_reuses_slots() {
        let mut t = MacTable::new(4);
        for i in 0..20 {
            t.learn(mac(i), 0, u32::from(i % 3), 0, 3);
        }
        let mut gone = 0;
        t.retain(|e| e.port == 1, |_| gone += 1);
        assert_eq!(gone, 7);
        assert_eq!(t.len(), 13);
        assert!(t.entries().all(|e| e.port != 1));
        assert_eq!(t.entries().count(), 13);
        for i in 100..107 {
            assert_eq!(t.learn(mac(i), 0, 1, 0, 3), Learn::New);
        }
        assert_eq!(t.len(), 20);
    }

    #[test]
    fn table_is_bounded() {
        let mut t = MacTable::new(2);
        let max = t.max_entries();
        assert_eq!(max, MIN_MAX_ENTRIES);
        let mut full = 0;
        for i in 0..(max as u32 + 500) {
            let b = i.to_le_bytes();
            let m = Mac([2, b[0], b[1], b[2], b[3], 0]);
            if t.learn(m, 0, 1, 0, 3) == Learn::TableFull {
                full += 1;
            }
        }
        assert_eq!(t.len(), max);
        assert_eq!(full, 500);
        // expiring the entries makes room again
        t.retain(|_| true, |_| {});
        assert_eq!(t.learn(mac(1), 0, 1, 0, 3), Learn::New);
    }

    #[test]
    fn print_order_is_bucket_then_newest_first() {
        let mut t = MacTable::new(1);
        t.learn(mac(1), 0, 1, 0, 3);
        t.learn(mac(2), 0, 2, 0, 3);
        let v: Vec<_> = t.entries().map(|e| e.mac).collect();
        assert_eq!(v, vec![mac(2), mac(1)]);
    }
}
