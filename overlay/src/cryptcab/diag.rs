//! Why a cable does not come up, told without flooding the log. IO-free:
//! time is passed in (the cable's monotonic clock), so any shell (the
//! threaded one here, an endpoint in a switch) can use them.
//!
//! - [`NoReply`], client side: fed with the protocol client's count of
//!   unanswered handshakes, says when to warn that the server does not
//!   answer (a wrong key and a missing server look the same from there:
//!   a server never answers an INIT it cannot authenticate).
//! - [`AuthFailures`], server side: reports, at most once per address per
//!   interval, the addresses whose handshakes fail authentication, with
//!   the number of failures left out in between. Fed after the protocol
//!   dropped a datagram for a bad mac, so it adds no work before the mac
//!   check and nothing on the wire.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Unanswered handshakes before a client first warns.
pub const NO_REPLY_AFTER: u64 = 3;

/// Least time between two warnings while the server stays silent.
pub const NO_REPLY_EVERY: Duration = Duration::from_secs(30);

/// Least time between two reports about the same address.
pub const AUTH_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Addresses an [`AuthFailures`] keeps track of at once.
pub const AUTH_TRACKED: usize = 256;

/// Client side: when to say "no reply from the server".
///
/// Call [`NoReply::update`] after the protocol client's timers ran, with
/// its `failed_attempts()` and `is_up()`. Unanswered handshakes add up
/// across key changes (the client's own count restarts when a new ticket
/// is installed) until the cable is up.
#[derive(Debug, Clone)]
pub struct NoReply {
    after: u64,
    every: Duration,
    /// The client's count at the previous update.
    last_failed: u32,
    /// Handshakes unanswered since the cable was last up (or started).
    unanswered: u64,
    warned_at: Option<Duration>,
}

impl Default for NoReply {
    fn default() -> NoReply {
        NoReply::new(NO_REPLY_AFTER, NO_REPLY_EVERY)
    }
}

impl NoReply {
    /// Warns after `after` unanswered handshakes, then at most once per
    /// `every` while no reply comes.
    pub fn new(after: u64, every: Duration) -> NoReply {
        NoReply {
            after: after.max(1),
            every,
            last_failed: 0,
            unanswered: 0,
            warned_at: None,
        }
    }

    /// `failed`: the client's count of handshakes in a row that timed out;
    /// `up`: whether the cable is up. Returns the number of handshakes
    /// unanswered so far when a warning is due now.
    pub fn update(&mut self, failed: u32, up: bool, now: Duration) -> Option<u64> {
        // a count lower than before restarted (new key): all of it is new
        let new = match failed.checked_sub(self.last_failed) {
            Some(d) => d,
            None => failed,
        };
        self.last_failed = failed;
        if up {
            self.unanswered = 0;
            self.warned_at = None;
            return None;
        }
        self.unanswered = self.unanswered.saturating_add(u64::from(new));
        if self.unanswered < self.after {
            return None;
        }
        if let Some(t) = self.warned_at {
            if now < t.saturating_add(self.every) {
                return None;
            }
        }
        self.warned_at = Some(now);
        Some(self.unanswered)
    }

    /// Handshakes unanswered since the cable was last up.
    pub fn unanswered(&self) -> u64 {
        self.unanswered
    }
}

/// One line to log about an address whose handshakes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthReport {
    pub addr: SocketAddr,
    /// Failures from `addr` left out since its previous report.
    pub suppressed: u64,
    /// Failures left out because too many addresses failed at once
    /// (or counted for an address that was forgotten since).
    pub others: u64,
}

impl fmt::Display for AuthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handshake from {} failed authentication", self.addr)?;
        match (self.suppressed, self.others) {
            (0, 0) => Ok(()),
            (n, 0) => write!(f, " ({n} more from it since the last report)"),
            (0, m) => write!(f, " ({m} from other addresses not reported)"),
            (n, m) => write!(
                f,
                " ({n} more from it since the last report, {m} from other addresses not reported)"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Reported {
    at: Duration,
    since: u64,
}

/// Server side: rate-limited reports of failed handshakes, by address.
///
/// [`AuthFailures::failed`] returns a report for the first failure of an
/// address and then for the first one at least `every` after its previous
/// report, counting those in between. At most `cap` addresses are tracked,
/// so a flood from many (spoofed) addresses costs bounded memory and at
/// most `cap` lines per `every`.
#[derive(Debug, Clone)]
pub struct AuthFailures {
    every: Duration,
    cap: usize,
    by_addr: HashMap<SocketAddr, Reported>,
    others: u64,
}

impl Default for AuthFailures {
    fn default() -> AuthFailures {
        AuthFailures::new(AUTH_REPORT_EVERY, AUTH_TRACKED)
    }
}

impl AuthFailures {
    pub fn new(every: Duration, cap: usize) -> AuthFailures {
        AuthFailures {
            every,
            cap: cap.max(1),
            by_addr: HashMap::new(),
            others: 0,
        }
    }

    /// A handshake from `addr` failed authentication at `now`: the line to
    /// log, if one is due.
    pub fn failed(&mut self, addr: SocketAddr, now: Duration) -> Option<AuthReport> {
        let every = self.every;
        let due = |r: &Reported| now >= r.at.saturating_add(every);
        if let Some(r) = self.by_addr.get_mut(&addr) {
            if !due(r) {
                r.since = r.since.saturating_add(1);
                return None;
            }
            let suppressed = std::mem::take(&mut r.since);
            r.at = now;
            return Some(self.report(addr, suppressed));
        }
        if self.by_addr.len() >= self.cap {
            // forget the addresses whose window is over; what they had
            // left out is told with the next report
            let mut forgotten = 0u64;
            self.by_addr.retain(|_, r| {
                let keep = !due(r);
                if !keep {
                    forgotten = forgotten.saturating_add(r.since);
                }
                keep
            });
            self.others = self.others.saturating_add(forgotten);
            if self.by_addr.len() >= self.cap {
                self.others = self.others.saturating_add(1);
                return None;
            }
        }
        self.by_addr.insert(addr, Reported { at: now, since: 0 });
        Some(self.report(addr, 0))
    }

    fn report(&mut self, addr: SocketAddr, suppressed: u64) -> AuthReport {
        AuthReport {
            addr,
            suppressed,
            others: std::mem::take(&mut self.others),
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The client's counter as the protocol keeps it: one more per
    /// handshake that timed out, every 0.5 s.
    fn feed(n: &mut NoReply, from: u32, to: u32, t: &mut f64) -> Vec<(f64, u64)> {
        let mut warned = Vec::new();
        for failed in from..=to {
            if let Some(k) = n.update(failed, false, s(*t)) {
                warned.push((*t, k));
            }
            *t += 0.5;
        }
        warned
    }

    #[test]
    fn no_reply_warns_after_three_then_every_thirty_seconds() {
        let mut n = NoReply::default();
        let mut t = 0.0;
        let warned = feed(&mut n, 0, 200, &mut t);
        // 3 unanswered at t = 1.5 s, then 30 s later each time
        assert_eq!(warned, vec![(1.5, 3), (31.5, 63), (61.5, 123), (91.5, 183)]);
    }

    #[test]
    fn no_reply_is_quiet_while_the_cable_is_up_and_starts_over_after() {
        let mut n = NoReply::default();
        assert_eq!(n.update(0, false, s(0.0)), None);
        assert_eq!(n.update(1, false, s(0.5)), None);
        assert_eq!(n.update(2, false, s(1.0)), None);
        // a reply: the cable comes up, the client's count restarts
        assert_eq!(n.update(0, true, s(1.2)), None);
        assert_eq!(n.unanswered(), 0);
        // a failing rekey while up is not "no reply"
        assert_eq!(n.update(5, true, s(10.0)), None);
        // down again: three more unanswered before a warning
        assert_eq!(n.update(5, false, s(11.0)), None);
        assert_eq!(n.update(6, false, s(11.5)), None);
        assert_eq!(n.update(7, false, s(12.0)), None);
        assert_eq!(n.update(8, false, s(12.5)), Some(3));
        // and after an up, a warning can come at once again
        assert_eq!(n.update(0, true, s(13.0)), None);
        let mut t = 14.0;
        assert_eq!(feed(&mut n, 0, 3, &mut t), vec![(15.5, 3)]);
    }

    #[test]
    fn no_reply_counts_across_new_keys() {
        // ssh mode: a new ticket after 4 failures restarts the client's
        // count; the unanswered handshakes still add up, and the warning
        // is not repeated by each restart
        let mut n = NoReply::default();
        let mut t = 0.0;
        let mut warned = Vec::new();
        for _ in 0..20 {
            warned.extend(feed(&mut n, 0, 4, &mut t));
        }
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert_eq!(warned[0], (1.5, 3));
        assert!(warned[1].0 >= 31.5 && warned[1].1 > 40, "{warned:?}");
    }

    #[test]
    fn no_reply_counts_jumps() {
        // polled less often than handshakes time out
        let mut n = NoReply::new(3, s(30.0));
        assert_eq!(n.update(2, false, s(1.0)), None);
        assert_eq!(n.update(5, false, s(2.5)), Some(5));
        assert_eq!(n.update(70, false, s(32.4)), None);
        assert_eq!(n.update(71, false, s(32.5)), Some(71));
    }

    #[test]
    fn one_report_per_address_per_interval_with_the_count_left_out() {
        let mut a = AuthFailures::default();
        let (x, y) = (addr(1000), addr(2000));
        let mut lines = Vec::new();
        // x fails every 0.5 s for 35 s, y once at 3 s
        for i in 0..=70u32 {
            let t = f64::from(i) * 0.5;
            if let Some(r) = a.failed(x, s(t)) {
                lines.push((t, r));
            }
            if i == 6 {
                lines.push((t, a.failed(y, s(t)).unwrap()));
            }
        }
        let r = |addr, suppressed| AuthReport {
            addr,
            suppressed,
            others: 0,
        };
        assert_eq!(
            lines,
            vec![
                (0.0, r(x, 0)),
                (3.0, r(y, 0)),
                (10.0, r(x, 19)),
                (20.0, r(x, 19)),
                (30.0, r(x, 19)),
            ]
        );
        assert_eq!(
            lines[2].1.to_string(),
            "handshake from 127.0.0.1:1000 failed authentication \
             (19 more from it since the last report)"
        );
        assert_eq!(
            lines[0].1.to_string(),
            "handshake from 127.0.0.1:1000 failed authentication"
        );
    }

    #[test]
    fn many_addresses_cost_bounded_memory_and_lines() {
        let mut a = AuthFailures::new(s(10.0), 4);
        let mut lines = Vec::new();
        // 100 addresses within one second
        for p in 0..100u16 {
            if let Some(r) = a.failed(addr(p), s(f64::from(p) / 100.0)) {
                lines.push(r);
            }
        }
        assert_eq!(lines.len(), 4);
        assert_eq!(a.tracked(), 4);
        // the next report, once room is made, tells how many were left out
        let r = a.failed(addr(500), s(11.0)).unwrap();
        assert_eq!(r.others, 96);
        assert_eq!(
            r.to_string(),
            "handshake from 127.0.0.1:500 failed authentication \
             (96 from other addresses not reported)"
        );
        assert_eq!(a.tracked(), 1);
        // counted and then forgotten failures of a tracked address too
        assert_eq!(a.failed(addr(500), s(12.0)), None);
        for p in 1..4 {
            assert!(a.failed(addr(600 + p), s(12.0)).is_some());
        }
        let r = a.failed(addr(700), s(30.0)).unwrap();
        assert_eq!((r.suppressed, r.others), (0, 1));
    }
}
