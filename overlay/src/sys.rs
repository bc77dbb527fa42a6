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
