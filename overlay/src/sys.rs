//! The few syscalls the transports need that std does not wrap.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Most datagrams moved by one batched call.
pub const BATCH: usize = 64;

/// Credentials (pid, uid, gid) of the process at the other end of a unix
/// stream socket, as the kernel recorded them at connect time
/// (SO_PEERCRED): they cannot be forged by the peer.
pub fn peer_cred(fd: &impl AsRawFd) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` holds its size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.gid))
}

/// Keeps secrets out of core files: no core dumps (RLIMIT_CORE 0) and not
/// dumpable (PR_SET_DUMPABLE 0, which also keeps other processes of the
/// same user from attaching to read its memory). For processes that hold
/// cable keys.
pub fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid rlimit that lives across the call.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Receives up to `bufs.len()` datagrams in one call, without waiting.
/// Each buffer gets one datagram; `lens[i]` is its length (capped at the
/// buffer size: a larger datagram is truncated, so callers size buffers
/// one past the largest frame they accept). Returns how many were received.
pub fn recv_batch<const N: usize>(
    fd: RawFd,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
) -> io::Result<usize> {
    recv_mmsg(fd, bufs, lens, None, libc::MSG_DONTWAIT)
}

/// Like [`recv_batch`] on an unconnected socket, also giving each sender.
/// With `wait`, blocks (up to the socket's receive timeout) for the first
/// datagram and then takes what else is queued (MSG_WAITFORONE).
pub fn recv_from_batch<const N: usize>(
    fd: RawFd,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
    from: &mut [Option<SocketAddr>],
    wait: bool,
) -> io::Result<usize> {
    let flags = if wait {
        libc::MSG_WAITFORONE
    } else {
        libc::MSG_DONTWAIT
    };
    recv_mmsg(fd, bufs, lens, Some(from), flags)
}

fn recv_mmsg<const N: usize>(
    fd: RawFd,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
    mut from: Option<&mut [Option<SocketAddr>]>,
    flags: libc::c_int,
) -> io::Result<usize> {
    let mut n = bufs.len().min(lens.len()).min(BATCH);
    if let Some(f) = &from {
        n = n.min(f.len());
    }
    // SAFETY: iovec, mmsghdr and sockaddr_storage are plain C structs for
    // which all-zero bytes are a valid value.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        iov[i].iov_base = bufs[i].as_mut_ptr().cast();
        iov[i].iov_len = N;
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
        if from.is_some() {
            hdr[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdr[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
    }
    // SAFETY: `hdr[..n]` point at `iov[..n]` (into `bufs[..n]`, N writable
    // bytes each) and, when asked, at `names[..n]`; all live until the call
    // returns.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            hdr.as_mut_ptr(),
            n as libc::c_uint,
            flags,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = r as usize;
    for i in 0..r {
        lens[i] = hdr[i].msg_len as usize;
        if let Some(f) = from.as_deref_mut() {
            f[i] = sockaddr_to_std(&names[i], hdr[i].msg_hdr.msg_namelen);
        }
    }
    Ok(r)
}

/// Sends each slice as one datagram on a connected socket, in one call,
/// without waiting. Returns how many were sent (an error only if the first
/// one failed).
pub fn send_batch(fd: RawFd, frames: &[&[u8]]) -> io::Result<usize> {
    send_mmsg(fd, frames, None, libc::MSG_DONTWAIT)
}

/// Sends each slice as one datagram to `to`, in one call. Returns how many
/// were sent (an error only if the first one failed).
pub fn send_to_batch(fd: RawFd, frames: &[&[u8]], to: SocketAddr) -> io::Result<usize> {
    send_mmsg(fd, frames, Some(to), 0)
}

/// Like [`send_to_batch`], without waiting for room in the socket.
pub fn send_to_batch_nowait(fd: RawFd, frames: &[&[u8]], to: SocketAddr) -> io::Result<usize> {
    send_mmsg(fd, frames, Some(to), libc::MSG_DONTWAIT)
}

fn send_mmsg(
    fd: RawFd,
    frames: &[&[u8]],
    to: Option<SocketAddr>,
    flags: libc::c_int,
) -> io::Result<usize> {
    let n = frames.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let addr = to.map(socket2::SockAddr::from);
    // SAFETY: all-zero iovec/mmsghdr are valid values.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        iov[i].iov_base = frames[i].as_ptr() as *mut libc::c_void;
        iov[i].iov_len = frames[i].len();
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
        if let Some(a) = &addr {
            hdr[i].msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
            hdr[i].msg_hdr.msg_namelen = a.len();
        }
    }
    // SAFETY: the headers point at iovecs describing live, readable slices
    // and at `addr`, alive for the call; sendmmsg only reads them (and
    // writes msg_len into `hdr`).
    let r = unsafe { libc::sendmmsg(fd, hdr.as_mut_ptr(), n as libc::c_uint, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

// UDP segmentation offload (linux/udp.h).
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;

/// The largest UDP datagram, and so the largest coalesced one.
pub const GRO_BUF: usize = 65535;
/// Most segments one GSO send may carry (the kernel's UDP_MAX_SEGMENTS).
pub const MAX_SEGMENTS: usize = 64;

/// Asks the kernel to hand datagrams of one flow over coalesced (UDP GRO):
/// a receive may then hold several, all of the size
/// [`recv_gro_batch`] reports but the last. False where it cannot.
pub fn enable_gro(fd: RawFd) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int that lives across the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_UDP,
            UDP_GRO,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Sends `segs` in one call as one datagram each (UDP GSO): all but the
/// last have the same length, the last may be shorter; at most
/// [`MAX_SEGMENTS`] and [`GRO_BUF`] bytes in all. Without waiting.
pub fn send_gso(fd: RawFd, segs: &[&[u8]], to: Option<SocketAddr>) -> io::Result<()> {
    let n = segs.len().min(MAX_SEGMENTS);
    let Some(first) = segs.first() else {
        return Ok(());
    };
    let addr = to.map(socket2::SockAddr::from);
    // SAFETY: all-zero iovecs are valid values.
    let mut iov: [libc::iovec; MAX_SEGMENTS] = unsafe { std::mem::zeroed() };
    for (v, s) in iov.iter_mut().zip(&segs[..n]) {
        v.iov_base = s.as_ptr() as *mut libc::c_void;
        v.iov_len = s.len();
    }
    // room for one cmsg holding a u16, 8-byte aligned
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n;
    if let Some(a) = &addr {
        msg.msg_name = a.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = a.len();
    }
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    // SAFETY: msg_control points at `control`, which is at least
    // CMSG_SPACE(2) bytes and aligned for a cmsghdr: CMSG_FIRSTHDR returns
    // a pointer into it, and CMSG_DATA a pointer to its data (2 bytes fit).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), first.len() as u16);
    }
    // SAFETY: `msg` points at iovecs over live slices, at `addr` and at
    // `control`, all alive for the call; sendmsg only reads them.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives up to `bufs.len()` datagrams without waiting, from a socket
/// with [`enable_gro`]: `lens[i]` is the length of message i and `segs[i]`
/// the size of the datagrams coalesced in it (its length when it holds
/// one), `from[i]` its sender.
pub fn recv_gro_batch(
    fd: RawFd,
    bufs: &mut [[u8; GRO_BUF]],
    lens: &mut [usize],
    segs: &mut [usize],
    from: &mut [Option<SocketAddr>],
) -> io::Result<usize> {
    const N: usize = 16;
    let n = bufs
        .len()
        .min(lens.len())
        .min(segs.len())
        .min(from.len())
        .min(N);
    // SAFETY: iovec, mmsghdr and sockaddr_storage are plain C structs for
    // which all-zero bytes are a valid value.
    let mut iov: [libc::iovec; N] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdr: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut names: [libc::sockaddr_storage; N] = unsafe { std::mem::zeroed() };
    let mut control = [[0u64; 4]; N];
    for i in 0..n {
        iov[i].iov_base = bufs[i].as_mut_ptr().cast();
        iov[i].iov_len = GRO_BUF;
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
        hdr[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        hdr[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr[i].msg_hdr.msg_control = control[i].as_mut_ptr().cast();
        hdr[i].msg_hdr.msg_controllen = size_of::<[u64; 4]>();
    }
    // SAFETY: `hdr[..n]` point at `iov[..n]` (into `bufs[..n]`, GRO_BUF
    // writable bytes each), `names[..n]` and `control[..n]`, all alive
    // until the call returns.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            hdr.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = r as usize;
    for i in 0..r {
        lens[i] = hdr[i].msg_len as usize;
        from[i] = sockaddr_to_std(&names[i], hdr[i].msg_hdr.msg_namelen);
        segs[i] = lens[i];
        let m = &hdr[i].msg_hdr;
        // SAFETY: the kernel filled `control[i]` and set msg_controllen;
        // CMSG_FIRSTHDR/CMSG_NXTHDR walk only within it, and a UDP_GRO
        // cmsg carries one int.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(m);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let size = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    if size > 0 {
                        segs[i] = size as usize;
                    }
                }
                c = libc::CMSG_NXTHDR(m, c);
            }
        }
    }
    Ok(r)
}

/// A socket address from the kernel, as std's type.
pub(crate) fn sockaddr_to_std(
    sa: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(sa.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let s = unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)),
                u16::from_be(s.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let s = unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(s.sin6_addr.s6_addr),
                u16::from_be(s.sin6_port),
                u32::from_be(s.sin6_flowinfo),
                s.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
