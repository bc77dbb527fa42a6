//! The few system calls std does not wrap: batched datagram IO
//! (`recvmmsg`/`sendmmsg`), peer credentials, signalfd and daemon(3).
//! Every `unsafe` block of the crate lives here, each with its SAFETY note.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub use vde_overlay::sys::{recv_batch, send_batch};

/// The uid of the process at the other end of a unix stream socket.
pub fn peer_uid(fd: &impl AsRawFd) -> io::Result<u32> {
    peer_cred(fd).map(|(u, _)| u)
}

pub use vde_overlay::sys::{euid, peer_cred};

/// Blocks SIGINT, SIGTERM and SIGHUP for this thread (and the threads it
/// starts afterwards) and returns a non-blocking signalfd that reports them.
pub fn signalfd_for_termination() -> io::Result<OwnedFd> {
    signalfd(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
}

/// Blocks `signals` for this thread (and the threads it starts afterwards)
/// and returns a non-blocking signalfd that reports them.
pub fn signalfd(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the calls only modify it and the
    // calling thread's signal mask.
    let fd = unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal number from a signalfd, if any.
pub fn read_signal(fd: &OwnedFd) -> Option<u32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is a writable buffer of `size` bytes.
    let r = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (r == size as isize).then_some(info.ssi_signo)
}

/// Detaches from the terminal like daemon(0, 0): fork, setsid, chdir /,
/// stdio to /dev/null. Must be called before any thread is started.
/// The child's side of [`daemonize_ready`]: says the parent whether the
/// start-up that comes after the fork worked.
pub struct Ready {
    fd: Option<OwnedFd>,
}

impl Ready {
    /// Start-up worked: the parent exits 0; stdin, stdout and stderr go to
    /// /dev/null as with daemon(3).
    pub fn ok(mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = write_fd(&fd, b"ok");
        }
        to_dev_null();
    }

    /// Start-up failed: the parent prints `why` on its stderr and exits 1.
    pub fn fail(mut self, why: &str) {
        if let Some(fd) = self.fd.take() {
            let _ = write_fd(&fd, format!("ERR {why}").as_bytes());
        }
    }
}

fn write_fd(fd: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: writes from a live buffer to a descriptor we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn to_dev_null() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
}

/// Forks into the background like daemon(3) (a new session, the working
/// directory `/`), but the parent waits until the child says whether its
/// start-up worked ([`Ready`]) and exits 0 or 1 with the child's error, so
/// that what fails after the fork is still reported where the command was
/// run. Call while the process is single-threaded; the child goes on.
pub fn daemonize_ready() -> io::Result<Ready> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: called while the process is single-threaded (the caller's
    // contract), so the child may run on.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(rd);
            // SAFETY: plain system calls on this process.
            unsafe {
                libc::setsid();
                libc::chdir(c"/".as_ptr());
            }
            Ok(Ready { fd: Some(wr) })
        }
        _ => {
            drop(wr);
            let mut answer = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                // SAFETY: reads into a live buffer from a descriptor we own.
                let n = unsafe { libc::read(rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    answer.extend_from_slice(&buf[..n as usize]);
                } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted
                {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&answer);
            if text == "ok" {
                std::process::exit(0);
            }
            let why = text
                .strip_prefix("ERR ")
                .unwrap_or("the background process died while starting");
            eprintln!("{why}");
            std::process::exit(1);
        }
    }
}

pub fn daemonize() -> io::Result<()> {
    // SAFETY: called while the process is single-threaded, so forking is
    // sound; daemon(3) has no other preconditions.
    if unsafe { libc::daemon(0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens (creating if needed) the Linux tap interface `name` with
/// IFF_TAP | IFF_NO_PI: one read or write is one raw Ethernet frame.
/// Returns the device and the interface's name as the kernel set it.
pub fn open_tap(name: &str, nonblocking: bool) -> io::Result<(std::fs::File, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    if name.len() > 15 || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?} (at most 15 bytes)"),
        ));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if nonblocking { libc::O_NONBLOCK } else { 0 })
        .open("/dev/net/tun")?;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq; `req` has its
    // layout (16-byte name, short flags, padding to 40 bytes) and lives
    // across the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = req
        .name
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(req.name.len());
    Ok((f, String::from_utf8_lossy(&req.name[..n]).into_owned()))
}

/// Reads up to `bufs.len()` frames from a non-socket descriptor (a tap
/// device: one read, one frame) until it would block.
pub fn read_frames<const N: usize>(
    fd: RawFd,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
) -> io::Result<usize> {
    let mut n = 0;
    while n < bufs.len().min(lens.len()) {
        // SAFETY: `bufs[n]` is valid for writes of N bytes.
        let r = unsafe { libc::read(fd, bufs[n].as_mut_ptr().cast(), N) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if n > 0 && e.kind() == io::ErrorKind::WouldBlock {
                break;
            }
            return Err(e);
        }
        if r == 0 {
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            break;
        }
        lens[n] = r as usize;
        n += 1;
    }
    Ok(n)
}

/// Writes each frame with one write() to a non-socket descriptor (a tap
/// device). Returns how many were written (an error only for the first).
pub fn write_frames(fd: RawFd, frames: &[&[u8]]) -> io::Result<usize> {
    for (i, f) in frames.iter().enumerate() {
        // SAFETY: `f` is a live, readable slice of f.len() bytes.
        let r = unsafe { libc::write(fd, f.as_ptr().cast(), f.len()) };
        if r < 0 {
            if i == 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(i);
        }
    }
    Ok(frames.len())
}

/// Waits until `fd` is readable (or hung up) or `timeout` passes.
pub fn wait_readable(fd: RawFd, timeout: std::time::Duration) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `p` is one valid pollfd that lives across the call.
    unsafe {
        libc::poll(&mut p, 1, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixDatagram, UnixStream};

    #[test]
    fn batch_send_and_receive() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let frames: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 20 + i]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_eq!(send_batch(a.as_raw_fd(), &refs).unwrap(), 5);
        let mut bufs = [[0u8; 24]; 8];
        let mut lens = [0usize; 8];
        assert_eq!(recv_batch(b.as_raw_fd(), &mut bufs, &mut lens).unwrap(), 5);
        assert_eq!(&lens[..5], &[20, 21, 22, 23, 24]);
        assert_eq!(&bufs[3][..23], &frames[3][..]);
        // truncated datagrams report the buffer size
        a.send(&[7u8; 100]).unwrap();
        assert_eq!(recv_batch(b.as_raw_fd(), &mut bufs, &mut lens).unwrap(), 1);
        assert_eq!(lens[0], 24);
        let e = recv_batch(b.as_raw_fd(), &mut bufs, &mut lens).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn peer_credentials() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), euid());
    }
}
