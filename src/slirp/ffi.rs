//! libslirp's C API made safe: the only `unsafe` code of the slirp router.
//!
//! [`Stack`] owns one `Slirp` instance and the state its callbacks reach
//! through libslirp's `opaque` pointer ([`Host`]): the packet socket frames
//! to the guests go to, the timers libslirp asked for, the poll set being
//! filled, and the counters. Nothing here blocks but [`poll`]; the loop
//! that drives a stack is in `engine.rs`.
//!
//! libslirp-sys binds the 4.2 API. Two things are added here: the two
//! callbacks of config version 4 (`init_completed`, `timer_new_opaque`;
//! both left NULL, so libslirp uses `timer_new`), which the binding's
//! `SlirpCb` lacks and libslirp ≥ 4.7 reads at version 4, and the entry
//! points the binding does not declare (`slirp_add_hostxfwd`,
//! `slirp_add_unix`). Version 4 is what makes `disable_dhcp` count.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libslirp_sys as sys;

use super::options::{Forward, GuestFwd, GuestTarget, Settings};
use super::Stats;

extern "C" {
    fn slirp_add_hostxfwd(
        slirp: *mut sys::Slirp,
        haddr: *const libc::sockaddr,
        haddrlen: libc::socklen_t,
        gaddr: *const libc::sockaddr,
        gaddrlen: libc::socklen_t,
        flags: c_int,
    ) -> c_int;
    fn slirp_add_unix(
        slirp: *mut sys::Slirp,
        unixsock: *const c_char,
        guest_addr: *mut sys::in_addr,
        guest_port: c_int,
    ) -> c_int;
}

const SLIRP_HOSTFWD_UDP: c_int = 1;
const SLIRP_HOSTFWD_V6ONLY: c_int = 2;

/// libslirp's `SlirpCb` as of config version 4: the binding's struct
/// followed by the two fields it lacks, laid out as the C struct is.
#[repr(C)]
struct CallbacksV4 {
    base: sys::SlirpCb,
    init_completed: Option<unsafe extern "C" fn(slirp: *mut sys::Slirp, opaque: *mut c_void)>,
    timer_new_opaque: Option<
        unsafe extern "C" fn(id: c_int, cb_opaque: *mut c_void, opaque: *mut c_void) -> *mut c_void,
    >,
}

/// libslirp keeps the pointer to its callbacks: they live for ever.
static CALLBACKS: CallbacksV4 = CallbacksV4 {
    base: sys::SlirpCb {
        send_packet: Some(cb_send_packet),
        guest_error: Some(cb_guest_error),
        clock_get_ns: Some(cb_clock_get_ns),
        timer_new: Some(cb_timer_new),
        timer_free: Some(cb_timer_free),
        timer_mod: Some(cb_timer_mod),
        register_poll_fd: Some(cb_fd_noop),
        unregister_poll_fd: Some(cb_fd_noop),
        notify: Some(cb_notify),
    },
    init_completed: None,
    timer_new_opaque: None,
};

/// A timer libslirp asked for (`timer_new`), armed by `timer_mod`.
struct Timer {
    cb: sys::SlirpTimerCb,
    cb_opaque: *mut c_void,
    /// Expiry in ms of [`Host::now_ms`]'s clock; None: not armed.
    expire_ms: Option<i64>,
}

/// What the callbacks work on (libslirp's `opaque`).
pub struct Host {
    /// The packet socket (datagram or seqpacket) frames to the guests go
    /// to; owned by the engine, which outlives the stack.
    out: RawFd,
    origin: Instant,
    timers: Vec<*mut Timer>,
    /// The poll set of the current iteration: the engine's own entries
    /// first, then libslirp's (`add_poll` returns their indexes).
    pub fds: Vec<libc::pollfd>,
    stats: Arc<Stats>,
}

impl Host {
    fn now_ms(&self) -> i64 {
        self.now_ns() / 1_000_000
    }

    fn now_ns(&self) -> i64 {
        // starts at one second, so that no timer is ever "at 0"
        (self.origin.elapsed() + Duration::from_secs(1)).as_nanos() as i64
    }

    /// Sends a frame to the guests; a full socket is waited on briefly,
    /// then the frame is dropped (TCP retransmits, as on a real wire).
    fn send_frame(&self, frame: &[u8]) {
        let mut waited = false;
        loop {
            match send(self.out, frame) {
                Ok(_) => {
                    self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .bytes_out
                        .fetch_add(frame.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if !waited
                        && (e.kind() == io::ErrorKind::WouldBlock
                            || e.raw_os_error() == Some(libc::ENOBUFS)) =>
                {
                    waited = true;
                    let mut p = [libc::pollfd {
                        fd: self.out,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    let _ = poll(&mut p, 20);
                }
                Err(_) => {
                    self.stats.dropped_out.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// Borrows the [`Host`] behind libslirp's opaque pointer.
///
/// # Safety
/// `opaque` must be the pointer a [`Stack`] gave libslirp, and no other
/// reference to that Host may be live (callbacks run only inside the
/// stack's calls into libslirp, which hold none).
unsafe fn host<'a>(opaque: *mut c_void) -> &'a mut Host {
    // SAFETY: per this function's contract.
    unsafe { &mut *(opaque as *mut Host) }
}

unsafe extern "C" fn cb_send_packet(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize {
    // SAFETY: libslirp passes our opaque and a frame of `len` readable
    // bytes that stays valid during the call.
    let (h, frame) = unsafe {
        (
            host(opaque),
            std::slice::from_raw_parts(buf as *const u8, len),
        )
    };
    h.send_frame(frame);
    len as isize
}

unsafe extern "C" fn cb_guest_error(msg: *const c_char, opaque: *mut c_void) {
    // SAFETY: our opaque; `msg` is a NUL-terminated string or NULL.
    let h = unsafe { host(opaque) };
    h.stats.guest_errors.fetch_add(1, Ordering::Relaxed);
    if !msg.is_null() {
        // SAFETY: checked non-NULL; libslirp passes a C string.
        let m = unsafe { CStr::from_ptr(msg) };
        tracing::debug!("slirp: guest error: {}", m.to_string_lossy());
    }
}

unsafe extern "C" fn cb_clock_get_ns(opaque: *mut c_void) -> i64 {
    // SAFETY: our opaque.
    unsafe { host(opaque) }.now_ns()
}

unsafe extern "C" fn cb_timer_new(
    cb: sys::SlirpTimerCb,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    // SAFETY: our opaque.
    let h = unsafe { host(opaque) };
    let t = Box::into_raw(Box::new(Timer {
        cb,
        cb_opaque,
        expire_ms: None,
    }));
    h.timers.push(t);
    t as *mut c_void
}

unsafe extern "C" fn cb_timer_free(timer: *mut c_void, opaque: *mut c_void) {
    // SAFETY: our opaque.
    let h = unsafe { host(opaque) };
    let t = timer as *mut Timer;
    if let Some(i) = h.timers.iter().position(|x| *x == t) {
        h.timers.swap_remove(i);
        // SAFETY: `t` came from Box::into_raw in cb_timer_new and was still
        // in the list, so it is freed exactly once.
        drop(unsafe { Box::from_raw(t) });
    }
}

unsafe extern "C" fn cb_timer_mod(timer: *mut c_void, expire_ms: i64, opaque: *mut c_void) {
    // SAFETY: our opaque.
    let h = unsafe { host(opaque) };
    let t = timer as *mut Timer;
    if h.timers.contains(&t) {
        // SAFETY: a live timer of ours (it is in the list).
        unsafe { (*t).expire_ms = Some(expire_ms) };
    }
}

unsafe extern "C" fn cb_fd_noop(_fd: c_int, _opaque: *mut c_void) {}

/// Kicks the loop: ours calls `pollfds_fill` again before it sleeps, so
/// there is nothing to do.
unsafe extern "C" fn cb_notify(_opaque: *mut c_void) {}

unsafe extern "C" fn cb_add_poll(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: our opaque (passed to slirp_pollfds_fill).
    let h = unsafe { host(opaque) };
    let mut ev = 0;
    for (s, p) in [
        (sys::SLIRP_POLL_IN, libc::POLLIN),
        (sys::SLIRP_POLL_OUT, libc::POLLOUT),
        (sys::SLIRP_POLL_PRI, libc::POLLPRI),
        (sys::SLIRP_POLL_ERR, libc::POLLERR),
        (sys::SLIRP_POLL_HUP, libc::POLLHUP),
    ] {
        if events & s != 0 {
            ev |= p;
        }
    }
    h.fds.push(libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    });
    (h.fds.len() - 1) as c_int
}

unsafe extern "C" fn cb_get_revents(idx: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: our opaque (passed to slirp_pollfds_poll).
    let h = unsafe { host(opaque) };
    let Some(p) = usize::try_from(idx).ok().and_then(|i| h.fds.get(i)) else {
        return 0;
    };
    let mut r = 0;
    for (s, p2) in [
        (sys::SLIRP_POLL_IN, libc::POLLIN),
        (sys::SLIRP_POLL_OUT, libc::POLLOUT),
        (sys::SLIRP_POLL_PRI, libc::POLLPRI),
        (sys::SLIRP_POLL_ERR, libc::POLLERR),
        (sys::SLIRP_POLL_HUP, libc::POLLHUP),
    ] {
        if p.revents & p2 != 0 {
            r |= s;
        }
    }
    r
}

/// The C strings and arrays a config points to, kept alive with the stack.
struct CStrings {
    _strings: Vec<CString>,
    _search: Vec<*const c_char>,
}

fn cstring(s: &str, what: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what}: {s:?} holds a NUL byte"))
}

/// One libslirp instance and its callback state. Not `Send`: it lives and
/// dies on the thread that made it.
pub struct Stack {
    slirp: NonNull<sys::Slirp>,
    host: NonNull<Host>,
    _strings: CStrings,
}

impl Stack {
    /// Makes a stack for `settings` whose frames to the guests go to the
    /// packet socket `out` (which must stay open while the stack lives).
    pub fn new(settings: &Settings, out: RawFd, stats: Arc<Stats>) -> Result<Stack, String> {
        let mut strings = Vec::new();
        let mut opt = |o: &Option<String>, what: &str| -> Result<*const c_char, String> {
            match o {
                None => Ok(std::ptr::null()),
                Some(s) => {
                    let c = cstring(s, what)?;
                    let p = c.as_ptr();
                    strings.push(c);
                    Ok(p)
                }
            }
        };
        let vhostname = opt(&settings.hostname, "hostname")?;
        let tftp_server_name = opt(&settings.tftp_server_name, "tftp_server_name")?;
        let tftp_path = opt(&settings.tftp_path, "tftp_path")?;
        let bootfile = opt(&settings.bootfile, "bootfile")?;
        let vdomainname = opt(&settings.domainname, "vdomainname")?;
        let mut search: Vec<*const c_char> = Vec::new();
        for d in &settings.dnssearch {
            let c = cstring(d, "vdnssearch")?;
            search.push(c.as_ptr());
            strings.push(c);
        }
        if !search.is_empty() {
            search.push(std::ptr::null());
        }
        let (n4, start, dns) = settings.v4_addrs().unwrap_or((
            super::options::DEFAULT_V4,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
        ));
        let (n6, dns6) = settings
            .v6_addrs()
            .unwrap_or((super::options::DEFAULT_V6, Ipv6Addr::UNSPECIFIED));
        let cfg = sys::SlirpConfig {
            version: 4,
            restricted: c_int::from(settings.restricted),
            in_enabled: settings.v4.is_some(),
            vnetwork: n4.network().into(),
            vnetmask: n4.mask().into(),
            vhost: n4.host.into(),
            in6_enabled: settings.v6.is_some(),
            vprefix_addr6: n6.prefix().into(),
            vprefix_len: n6.len,
            vhost6: n6.host.into(),
            vhostname,
            tftp_server_name,
            tftp_path,
            bootfile,
            vdhcp_start: start.into(),
            vnameserver: dns.into(),
            vnameserver6: dns6.into(),
            vdnssearch: if search.is_empty() {
                std::ptr::null_mut()
            } else {
                search.as_mut_ptr()
            },
            vdomainname,
            if_mtu: settings.mtu.unwrap_or(0),
            if_mru: settings.mru.unwrap_or(0),
            disable_host_loopback: settings.disable_host_loopback,
            enable_emu: false,
            outbound_addr: std::ptr::null(),
            outbound_addr6: std::ptr::null(),
            disable_dns: false,
            disable_dhcp: !settings.dhcp,
        };
        let host = Box::into_raw(Box::new(Host {
            out,
            origin: Instant::now(),
            timers: Vec::new(),
            fds: Vec::new(),
            stats,
        }));
        // SAFETY: `cfg` is a complete version-4 config whose pointers are
        // NULL or point into `strings`/`search`, which the stack keeps;
        // CALLBACKS is a static laid out as libslirp's version-4 SlirpCb;
        // `host` is a live heap pointer the stack frees after cleanup.
        let slirp = unsafe {
            sys::slirp_new(
                &cfg,
                &CALLBACKS.base as *const sys::SlirpCb,
                host as *mut c_void,
            )
        };
        // SAFETY: Box::into_raw never returns NULL.
        let host = unsafe { NonNull::new_unchecked(host) };
        let Some(slirp) = NonNull::new(slirp) else {
            // SAFETY: libslirp did not keep the pointer (it failed).
            drop(unsafe { Box::from_raw(host.as_ptr()) });
            return Err("libslirp refused the configuration".into());
        };
        Ok(Stack {
            slirp,
            host,
            _strings: CStrings {
                _strings: strings,
                _search: search,
            },
        })
    }

    fn opaque(&self) -> *mut c_void {
        self.host.as_ptr() as *mut c_void
    }

    /// The callback state, between calls into libslirp.
    pub fn host(&mut self) -> &mut Host {
        // SAFETY: no call into libslirp is running (we hold &mut self), so
        // no callback holds a reference to the Host.
        unsafe { self.host.as_mut() }
    }

    /// Adds a host port forward.
    pub fn add_forward(&mut self, f: &Forward) -> Result<(), String> {
        let r = match (f.host_addr, f.guest_addr) {
            (IpAddr::V4(h), IpAddr::V4(g)) => {
                // SAFETY: a live stack; plain values.
                unsafe {
                    sys::slirp_add_hostfwd(
                        self.slirp.as_ptr(),
                        c_int::from(f.udp),
                        h.into(),
                        c_int::from(f.host_port),
                        g.into(),
                        c_int::from(f.guest_port),
                    )
                }
            }
            (IpAddr::V6(h), IpAddr::V6(g)) => {
                let sa = |a: Ipv6Addr, port: u16| libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: port.to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.octets(),
                    },
                    sin6_scope_id: 0,
                };
                let (hs, gs) = (sa(h, f.host_port), sa(g, f.guest_port));
                let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                let flags = SLIRP_HOSTFWD_V6ONLY | if f.udp { SLIRP_HOSTFWD_UDP } else { 0 };
                // SAFETY: a live stack; both addresses are valid
                // sockaddr_in6 of `len` bytes for the call's duration.
                unsafe {
                    slirp_add_hostxfwd(
                        self.slirp.as_ptr(),
                        (&hs as *const libc::sockaddr_in6).cast(),
                        len,
                        (&gs as *const libc::sockaddr_in6).cast(),
                        len,
                        flags,
                    )
                }
            }
            _ => return Err(format!("{f}: mixed address families")),
        };
        if r < 0 {
            return Err(format!(
                "cannot forward {f}: the host port is taken or the address is not this host's"
            ));
        }
        Ok(())
    }

    /// Joins a guest TCP port to a unix socket or a command on the host.
    pub fn add_guestfwd(&mut self, g: &GuestFwd) -> Result<(), String> {
        let mut addr: sys::in_addr = g.addr.into();
        let r = match &g.target {
            GuestTarget::Unix(p) => {
                let c = cstring(p, "unixfwd")?;
                // SAFETY: a live stack; `c` and `addr` live across the call
                // (libslirp copies the path).
                unsafe {
                    slirp_add_unix(
                        self.slirp.as_ptr(),
                        c.as_ptr(),
                        &mut addr,
                        c_int::from(g.port),
                    )
                }
            }
            GuestTarget::Cmd(cmd) => {
                let c = cstring(cmd, "cmdfwd")?;
                // SAFETY: as above (libslirp copies the command line).
                unsafe {
                    sys::slirp_add_exec(
                        self.slirp.as_ptr(),
                        c.as_ptr(),
                        &mut addr,
                        c_int::from(g.port),
                    )
                }
            }
        };
        if r < 0 {
            return Err(format!(
                "cannot forward {}:{}: the address must be in the virtual network, neither the router's nor the DNS's, and not forwarded already",
                g.addr, g.port
            ));
        }
        Ok(())
    }

    /// Hands a frame from the guests to libslirp.
    pub fn input(&mut self, frame: &[u8]) {
        let Ok(len) = c_int::try_from(frame.len()) else {
            return;
        };
        // SAFETY: a live stack; `frame` is readable for `len` bytes during
        // the call (libslirp copies it).
        unsafe { sys::slirp_input(self.slirp.as_ptr(), frame.as_ptr(), len) }
    }

    /// Adds libslirp's sockets to `host().fds` (after what the caller put
    /// there) and returns how long the caller may sleep, in ms: libslirp's
    /// own bound shortened to the next timer, capped at `cap_ms`.
    pub fn fill(&mut self, cap_ms: u32) -> i32 {
        let mut timeout: u32 = cap_ms;
        // SAFETY: a live stack; the callback gets our opaque.
        unsafe {
            sys::slirp_pollfds_fill(
                self.slirp.as_ptr(),
                &mut timeout,
                Some(cb_add_poll),
                self.opaque(),
            )
        };
        let h = self.host();
        let now = h.now_ms();
        for &t in &h.timers {
            // SAFETY: timers in the list are live.
            if let Some(e) = unsafe { (*t).expire_ms } {
                let left = (e - now).clamp(0, i64::from(u32::MAX)) as u32;
                timeout = timeout.min(left);
            }
        }
        timeout.min(i32::MAX as u32) as i32
    }

    /// Lets libslirp act on the poll results in `host().fds`.
    pub fn dispatch(&mut self, poll_failed: bool) {
        // SAFETY: a live stack; the callback gets our opaque.
        unsafe {
            sys::slirp_pollfds_poll(
                self.slirp.as_ptr(),
                c_int::from(poll_failed),
                Some(cb_get_revents),
                self.opaque(),
            )
        }
    }

    /// Runs the timers that are due (each disarmed before its callback,
    /// which may re-arm or free any timer).
    pub fn run_timers(&mut self) {
        for _ in 0..64 {
            let h = self.host();
            let now = h.now_ms();
            // SAFETY: timers in the list are live.
            let due = h
                .timers
                .iter()
                .copied()
                .find(|&t| unsafe { (*t).expire_ms }.is_some_and(|e| e <= now));
            let Some(t) = due else { return };
            // SAFETY: a live timer (found in the list just now).
            let (cb, arg) = unsafe {
                (*t).expire_ms = None;
                ((*t).cb, (*t).cb_opaque)
            };
            if let Some(cb) = cb {
                // SAFETY: the callback and argument libslirp registered
                // with timer_new, called on the stack's thread.
                unsafe { cb(arg) };
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the stack is live and used by no one else; after cleanup
        // libslirp has freed its timers (timer_free) and calls nothing more.
        unsafe { sys::slirp_cleanup(self.slirp.as_ptr()) };
        // SAFETY: the Host came from Box::into_raw in new() and libslirp no
        // longer holds it.
        let host = unsafe { Box::from_raw(self.host.as_ptr()) };
        for t in host.timers {
            // SAFETY: timers libslirp did not free are ours to free.
            drop(unsafe { Box::from_raw(t) });
        }
    }
}

/// libslirp's version string ("4.7.0").
pub fn version() -> String {
    // SAFETY: returns a pointer to a static C string.
    let p = unsafe { sys::slirp_version_string() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL, static, NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// poll(2) over `fds`; `timeout_ms` < 0 waits for ever.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, writable array of fds.len() pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// One non-blocking send of a whole frame on a packet socket.
pub fn send(fd: RawFd, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: `frame` is readable for its length during the call; a bad
    // fd only makes send fail.
    let r = unsafe {
        libc::send(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// One non-blocking receive of a frame from a packet socket.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length during the call.
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Blocks every signal in the calling thread (the router's), so that a
/// SIGTERM meant for the owner's signal handling (a switch, a tool using
/// signalfd) is never delivered here and its default action never kills
/// the process behind the owner's back.
pub fn block_all_signals() {
    // SAFETY: sigset_t is plain data that sigfillset initialises; the call
    // changes only this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
