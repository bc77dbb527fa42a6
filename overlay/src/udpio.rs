//! Datagrams in and out of a UDP socket in batches, with the kernel's
//! segmentation offload where it has it (UDP GSO out, UDP GRO in): what
//! the cables that carry frames in UDP (cryptcab, udp://) share.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

/// Messages taken by one receive call (each up to 64 KiB when the kernel
/// coalesced several datagrams into it).
const RX_MSGS: usize = 8;

/// Datagrams in and out of a cable's UDP socket, with segmentation offload
/// where the kernel has it: a run of sealed datagrams of one size leaves
/// in one send (UDP GSO), and a run that arrives together is read in one
/// message (UDP GRO). Where a path refuses a size (GSO segments must fit
/// its MTU), that size and larger go one datagram each from then on.
pub(crate) struct UdpIo {
    fd: RawFd,
    bufs: Vec<[u8; crate::sys::GRO_BUF]>,
    lens: [usize; RX_MSGS],
    segs: [usize; RX_MSGS],
    from: [Option<SocketAddr>; RX_MSGS],
    /// Messages read, the one being taken apart, and the offset in it.
    k: usize,
    i: usize,
    off: usize,
    /// Largest datagram GSO may carry on this socket's path.
    gso_max: usize,
}

/// One received datagram: where it lies in [`UdpIo`]'s buffers.
#[derive(Clone, Copy)]
pub(crate) struct Datagram {
    msg: usize,
    off: usize,
    pub(crate) len: usize,
    pub(crate) from: Option<SocketAddr>,
}

impl UdpIo {
    pub(crate) fn new(sock: &UdpSocket) -> UdpIo {
        let fd = sock.as_raw_fd();
        let gro = crate::sys::enable_gro(fd);
        UdpIo {
            fd,
            bufs: vec![[0u8; crate::sys::GRO_BUF]; RX_MSGS],
            lens: [0; RX_MSGS],
            segs: [0; RX_MSGS],
            from: [None; RX_MSGS],
            k: 0,
            i: 0,
            off: 0,
            gso_max: if gro { usize::MAX } else { 0 },
        }
    }

    /// The next datagram: what is left of the last read, else a new read.
    /// `None` when the socket is empty.
    pub(crate) fn next(&mut self) -> io::Result<Option<Datagram>> {
        loop {
            while self.i < self.k {
                let (i, len, seg) = (self.i, self.lens[self.i], self.segs[self.i].max(1));
                if self.off < len {
                    let d = Datagram {
                        msg: i,
                        off: self.off,
                        len: seg.min(len - self.off),
                        from: self.from[i],
                    };
                    self.off += d.len;
                    return Ok(Some(d));
                }
                if len == 0 && self.off == 0 {
                    // an empty datagram is one too
                    self.off = 1;
                    return Ok(Some(Datagram {
                        msg: i,
                        off: 0,
                        len: 0,
                        from: self.from[i],
                    }));
                }
                self.i += 1;
                self.off = 0;
            }
            self.k = match crate::sys::recv_gro_batch(
                self.fd,
                &mut self.bufs,
                &mut self.lens,
                &mut self.segs,
                &mut self.from,
            ) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.k = 0;
                    return Ok(None);
                }
                Err(e) => {
                    self.k = 0;
                    return Err(e);
                }
            };
            self.i = 0;
            self.off = 0;
            if self.k == 0 {
                return Ok(None);
            }
        }
    }

    pub(crate) fn bytes(&self, d: Datagram) -> &[u8] {
        &self.bufs[d.msg][d.off..d.off + d.len]
    }

    /// Sends datagrams without waiting (to `to`, or on the connected
    /// socket); returns how many left. What a full socket refuses is not
    /// sent (the caller counts it).
    pub(crate) fn send(&mut self, d: &[&[u8]], to: Option<SocketAddr>) -> usize {
        let (n, mut sent, mut i) = (d.len(), 0, 0);
        // datagrams not (yet) sent by GSO: d[plain..i]
        let mut plain = 0;
        while i < n {
            let len = d[i].len();
            let mut j = i + 1;
            if len <= self.gso_max && len > 0 {
                let mut total = len;
                while j < n
                    && j - i < crate::sys::MAX_SEGMENTS
                    && d[j].len() == len
                    && total + len <= crate::sys::GRO_BUF
                {
                    total += len;
                    j += 1;
                }
                if j < n
                    && j - i < crate::sys::MAX_SEGMENTS
                    && d[j].len() < len
                    && total + d[j].len() <= crate::sys::GRO_BUF
                {
                    j += 1;
                }
            }
            if j - i < 2 {
                i = j;
                continue;
            }
            if plain < i {
                let k = self.send_plain(&d[plain..i], to);
                sent += k;
                if k < i - plain {
                    return sent;
                }
            }
            match crate::sys::send_gso(self.fd, &d[i..j], to) {
                Ok(()) => {
                    sent += j - i;
                    plain = j;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sent,
                Err(e) => {
                    // this path does not take segments of this size
                    tracing::debug!("UDP GSO refused for {len}-byte datagrams: {e}");
                    self.gso_max = len - 1;
                    plain = i;
                }
            }
            i = j;
        }
        if plain < n {
            sent += self.send_plain(&d[plain..n], to);
        }
        sent
    }

    fn send_plain(&self, d: &[&[u8]], to: Option<SocketAddr>) -> usize {
        let mut rest = d;
        let mut sent = 0;
        while !rest.is_empty() {
            let r = match to {
                Some(a) => crate::sys::send_to_batch_nowait(self.fd, rest, a),
                None => crate::sys::send_batch(self.fd, rest),
            };
            match r {
                Ok(k) if k > 0 => {
                    sent += k;
                    rest = &rest[k..];
                }
                _ => break,
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        (a, b)
    }

    /// Everything `rx` has, as (bytes, sender).
    fn drain(rx: &mut UdpIo) -> Vec<(Vec<u8>, Option<SocketAddr>)> {
        let mut got = Vec::new();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < end {
            match rx.next().unwrap() {
                Some(d) => got.push((rx.bytes(d).to_vec(), d.from)),
                None if !got.is_empty() => break,
                None => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        got
    }

    #[test]
    fn runs_of_one_size_leave_together_and_arrive_apart_in_order() {
        let (a, b) = pair();
        let (mut tx, mut rx) = (UdpIo::new(&a), UdpIo::new(&b));
        // 40 of one size, a shorter last one, then two lone odd ones: GSO
        // for the run, plain sends for the rest
        let mut sent: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1200]).collect();
        sent.push(vec![0xee; 300]);
        sent.push(vec![0xdd; 77]);
        sent.push(vec![0xcc; 33]);
        let refs: Vec<&[u8]> = sent.iter().map(|v| &v[..]).collect();
        assert_eq!(tx.send(&refs, None), sent.len());
        let got = drain(&mut rx);
        let shape = |v: &[Vec<u8>]| -> Vec<(usize, Option<u8>)> {
            v.iter().map(|d| (d.len(), d.first().copied())).collect()
        };
        let bytes: Vec<Vec<u8>> = got.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(shape(&bytes), shape(&sent), "every datagram once, in order");
        assert_eq!(bytes, sent, "intact");
        assert!(got.iter().all(|(_, f)| *f == Some(a.local_addr().unwrap())));
    }

    #[test]
    fn an_unconnected_socket_sends_runs_to_an_address() {
        let (a, b) = pair();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (mut tx, mut rx) = (UdpIo::new(&c), UdpIo::new(&b));
        let sent: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 100]).collect();
        let refs: Vec<&[u8]> = sent.iter().map(|v| &v[..]).collect();
        assert_eq!(tx.send(&refs, Some(b.local_addr().unwrap())), 64);
        let got = drain(&mut rx);
        assert_eq!(got.len(), 64);
        assert!(got.iter().zip(&sent).all(|((d, _), s)| d == s));
        drop(a);
    }
}
