//! vxvde: a distributed Ethernet switch over UDP multicast, byte-compatible
//! with libvdeplug4's vxvde plugin (protocol spec §3).
//!
//! Every datagram is the 8-byte VXLAN header (`08 00 00 00 VNI VNI VNI 00`)
//! followed by one raw Ethernet frame. An endpoint has two sockets:
//!
//! * the *multicast* socket, bound to GROUP:port with SO_REUSEADDR (so many
//!   endpoints of one host share the port) and joined to the group;
//! * the *unicast* socket, bound to `bind=` (default: any) port 0. Every
//!   datagram leaves from it, so peers learn our (IP, ephemeral port).
//!
//! Frames for a destination learned from a received frame go by unicast to
//! that peer; everything else (group-bit destinations, unknown or expired
//! ones) goes to the group. A header-only datagram is the goodbye: sent to
//! the group on close, it makes the receivers forget the sender.
//!
//! The parts that decide (header, learning table and hash, routing, the
//! receive verdict, the own-copy test) are sans-IO and tested with a
//! simulated clock; [`Vxvde`] is the thin socket shell around them.

use std::ffi::CString;
use std::io::{self, IoSlice};
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys::sockaddr_to_std;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

/// Length of the VXLAN header in front of every frame.
pub const HEADER_LEN: usize = 8;
/// Length of an Ethernet header: received frames must be longer, shorter
/// ones are not sent.
pub const ETH_HEADER_LEN: usize = 14;
/// The VXLAN flags byte: only the I bit (VNI valid).
pub const VXLAN_FLAGS: u8 = 0x08;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;
/// The VLAN part of learning keys: libvdeplug always uses 1.
pub const VLAN_KEY: u16 = 1;
/// The hash seed libvdeplug's vxvde uses for its table.
pub const HASH_SEED: u64 = 0;

/// Multicast UDP port (not VXLAN's 4789).
pub const DEFAULT_PORT: u16 = 14789;
/// Group when none is given.
pub const DEFAULT_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 0, 0, 1);
/// Group when none is given and `v6` is.
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff05, 0x56de, 0, 0, 0, 0, 0, 1);
/// VNI when neither `vni=` nor `grp=` is given.
pub const DEFAULT_VNI: u32 = 1;
/// Multicast TTL (and IPv4 unicast TTL).
pub const DEFAULT_TTL: u32 = 1;
/// Learning-table size.
pub const DEFAULT_HASHSIZE: usize = 1024;
/// Largest learning table this implementation allocates.
pub const MAX_HASHSIZE: usize = 1 << 20;
/// Age after which a learned peer is no longer used.
pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(128);

// ---------------------------------------------------------------------------
// Wire format

/// The header this endpoint sends and expects, for a VNI (the low 24 bits).
pub fn header(vni: u32) -> [u8; HEADER_LEN] {
    let v = vni & MAX_VNI;
    [
        VXLAN_FLAGS,
        0,
        0,
        0,
        (v >> 16) as u8,
        (v >> 8) as u8,
        v as u8,
        0,
    ]
}

/// The VNI of a header, if it has the vxvde shape (flags 0x08, reserved 0).
pub fn header_vni(h: &[u8]) -> Option<u32> {
    match h {
        [VXLAN_FLAGS, 0, 0, 0, a, b, c, 0] => {
            Some(u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Learning table (libvdeplug's vde_hashtable)

/// The table key of a MAC on a VLAN: the MAC read little-endian into the
/// low 48 bits, the VLAN above (libvdeplug's `extmac` on x86).
pub fn mac_key(mac: &[u8; 6], vlan: u16) -> u64 {
    u64::from(u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]))
        | u64::from(u16::from_le_bytes([mac[4], mac[5]])) << 32
        | u64::from(vlan) << 48
}

/// libvdeplug's `calc_hash` (murmur3's finaliser, seeded), masked.
pub fn hash_index(key: u64, mask: usize, seed: u64) -> usize {
    let mut k = key;
    k ^= (k >> 33) ^ seed;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    (k as usize) & mask
}

/// Number of slots for a `hashsize=`: rounded up to a power of two; 0
/// means no table (nothing is learned, everything goes to the group).
pub fn table_size(hashsize: usize) -> usize {
    match hashsize {
        0 => 0,
        n => n.next_power_of_two(),
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    /// `None` once forgotten (libvdeplug zeroes `last_seen`).
    last_seen: Option<Instant>,
    peer: SocketAddr,
}

/// Direct-mapped MAC → peer table: one entry per slot, a colliding MAC
/// overwrites it, entries older than the expiry are ignored.
#[derive(Debug, Clone)]
pub struct LearningTable {
    slots: Vec<Option<Entry>>,
    expire: Duration,
    seed: u64,
}

fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

impl LearningTable {
    /// A table of [`table_size`]`(hashsize)` slots.
    pub fn new(hashsize: usize, expire: Duration) -> LearningTable {
        LearningTable {
            slots: vec![None; table_size(hashsize)],
            expire,
            seed: HASH_SEED,
        }
    }

    /// Number of slots (0: learning is off).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, key: u64) -> Option<usize> {
        match self.slots.len() {
            0 => None,
            n => Some(hash_index(key, n - 1, self.seed)),
        }
    }

    /// Remembers that `src` (a unicast MAC) is behind `peer`.
    pub fn learn(&mut self, src: &[u8; 6], peer: SocketAddr, now: Instant) {
        if is_group(src) {
            return;
        }
        let key = mac_key(src, VLAN_KEY);
        if let Some(i) = self.slot(key) {
            self.slots[i] = Some(Entry {
                key,
                last_seen: Some(now),
                peer,
            });
        }
    }

    /// The peer `dst` was last seen behind, unless it is a group address,
    /// unknown, overwritten, forgotten or older than the expiry.
    pub fn lookup(&self, dst: &[u8; 6], now: Instant) -> Option<SocketAddr> {
        if is_group(dst) {
            return None;
        }
        let key = mac_key(dst, VLAN_KEY);
        let e = self.slots[self.slot(key)?]?;
        let fresh = e
            .last_seen
            .is_some_and(|t| now.saturating_duration_since(t) <= self.expire);
        (e.key == key && fresh).then_some(e.peer)
    }

    /// Forgets every entry pointing at `peer` (a goodbye); returns how many.
    pub fn forget(&mut self, peer: SocketAddr) -> usize {
        let mut n = 0;
        for e in self.slots.iter_mut().flatten() {
            if e.peer == peer && e.last_seen.is_some() {
                e.last_seen = None;
                n += 1;
            }
        }
        n
    }
}

// ---------------------------------------------------------------------------
// The sans-IO endpoint

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To the multicast group.
    Group,
    /// By unicast to a learned peer.
    Peer(SocketAddr),
}

/// What became of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A frame of this length, to deliver (its source was learned).
    Frame(usize),
    /// A goodbye from the sender: this many entries were forgotten.
    Goodbye(usize),
    /// Not longer than an Ethernet header (or than the VXLAN header).
    Short,
    /// Wrong flags, VNI or reserved bytes.
    BadHeader,
    /// One of our own multicast datagrams, looped back.
    OwnCopy,
}

/// The decisions of a vxvde endpoint, without sockets or clock.
#[derive(Debug, Clone)]
pub struct Core {
    header: [u8; HEADER_LEN],
    table: LearningTable,
}

impl Core {
    pub fn new(vni: u32, hashsize: usize, expire: Duration) -> Core {
        Core {
            header: header(vni),
            table: LearningTable::new(hashsize, expire),
        }
    }

    pub fn header(&self) -> [u8; HEADER_LEN] {
        self.header
    }

    pub fn table(&self) -> &LearningTable {
        &self.table
    }

    /// Where to send `frame`; `None` when it is shorter than an Ethernet
    /// header (libvdeplug drops those silently).
    pub fn route(&self, frame: &[u8], now: Instant) -> Option<Route> {
        let dst: &[u8; 6] = frame.get(..6)?.try_into().ok()?;
        if frame.len() < ETH_HEADER_LEN {
            return None;
        }
        Some(match self.table.lookup(dst, now) {
            Some(peer) => Route::Peer(peer),
            None => Route::Group,
        })
    }

    /// Judges a datagram: `hdr` is what was received of the header (shorter
    /// than 8 bytes if the datagram was), `frame` the rest, `from` the
    /// sender. `own_copy` is asked only for well-formed frames, as
    /// libvdeplug does, and says whether it is our own looped-back copy.
    pub fn receive(
        &mut self,
        hdr: &[u8],
        frame: &[u8],
        from: SocketAddr,
        own_copy: impl FnOnce() -> bool,
        now: Instant,
    ) -> Verdict {
        if hdr.len() < HEADER_LEN {
            return Verdict::Short;
        }
        if frame.is_empty() {
            return if hdr == self.header {
                Verdict::Goodbye(self.table.forget(from))
            } else {
                Verdict::BadHeader
            };
        }
        if frame.len() <= ETH_HEADER_LEN {
            return Verdict::Short;
        }
        if hdr != self.header {
            return Verdict::BadHeader;
        }
        if own_copy() {
            return Verdict::OwnCopy;
        }
        let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
        self.table.learn(&src, from, now);
        Verdict::Frame(frame.len())
    }
}

/// The IPv4 own-copy test: a datagram on the multicast socket is ours when
/// it comes from our unicast port and from the local address it arrived on
/// (`ipi_spec_dst` of IP_PKTINFO).
pub fn own_copy_v4(from: SocketAddrV4, uniport: u16, spec_dst: Option<Ipv4Addr>) -> bool {
    from.port() == uniport && spec_dst == Some(*from.ip())
}

/// The group address with its last three bytes replaced by a gid
/// (big-endian), as `grp=` does: gid 1000 and 239.0.0.1 give 239.0.3.232.
pub fn group_with_gid(group: IpAddr, gid: u32) -> IpAddr {
    let g = [(gid >> 16) as u8, (gid >> 8) as u8, gid as u8];
    match group {
        IpAddr::V4(a) => {
            let mut o = a.octets();
            o[1..].copy_from_slice(&g);
            IpAddr::V4(o.into())
        }
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[13..].copy_from_slice(&g);
            IpAddr::V6(o.into())
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration

/// Address family restriction (`v4`, `v6`; both or neither: any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

/// An endpoint's settings: the locator's address and options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxvdeConfig {
    /// Multicast group, a literal or a name; empty: the default of the
    /// family (239.0.0.1, or ff05:56de::1 for `v6`).
    pub group: String,
    pub port: u16,
    pub vni: u32,
    /// gid of `grp=`: its low 24 bits replace the group's last 3 bytes.
    pub grp: Option<u32>,
    pub ttl: u32,
    pub family: Family,
    /// Interface for membership and sending (`if=`).
    pub interface: Option<String>,
    /// Local address of the unicast socket (`bind=`).
    pub bind: Option<String>,
    /// SO_RCVBUF of the unicast socket.
    pub rcvbuf: Option<usize>,
    /// Learning-table size (0: no learning).
    pub hashsize: usize,
    pub expire: Duration,
}

impl Default for VxvdeConfig {
    fn default() -> Self {
        VxvdeConfig {
            group: String::new(),
            port: DEFAULT_PORT,
            vni: DEFAULT_VNI,
            grp: None,
            ttl: DEFAULT_TTL,
            family: Family::Any,
            interface: None,
            bind: None,
            rcvbuf: None,
            hashsize: DEFAULT_HASHSIZE,
            expire: DEFAULT_EXPIRE,
        }
    }
}

impl VxvdeConfig {
    /// The group to resolve: the configured one or the family's default.
    pub fn group_host(&self) -> String {
        match (self.group.is_empty(), self.family) {
            (false, _) => self.group.clone(),
            (true, Family::V6) => DEFAULT_GROUP_V6.to_string(),
            (true, _) => DEFAULT_GROUP_V4.to_string(),
        }
    }

    fn wants(&self, a: &SocketAddr) -> bool {
        match self.family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        }
    }
}

// ---------------------------------------------------------------------------
// Syscall boundary

fn setsockopt<T>(sock: &Socket, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live, initialised T and the length passed is
    // its size; the kernel only reads it during the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} contains a NUL"),
        )
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {name:?} (if={name})"),
        ));
    }
    Ok(i)
}

/// Whether an IPv6 address is configured on an interface of this host
/// (libvdeplug's getifaddrs test).
fn is_local_v6(ip: &Ipv6Addr) -> bool {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs stores a list head in `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut p = list;
    while !p.is_null() && !found {
        // SAFETY: `p` is a node of the list getifaddrs returned, alive
        // until freeifaddrs; an AF_INET6 ifa_addr is a sockaddr_in6.
        unsafe {
            let ifa = &*p;
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET6 {
                let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                found = Ipv6Addr::from(sa.sin6_addr.s6_addr) == *ip;
            }
            p = ifa.ifa_next;
        }
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Waits until one of `fds` is readable or the timeout (ms, -1: none)
/// passes. An interrupted wait reports nothing ready.
fn poll_in(fds: [RawFd; 2], timeout_ms: libc::c_int) -> io::Result<[bool; 2]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `p` is an array of 2 initialised pollfd, alive for the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::Interrupted => Ok([false; 2]),
            _ => Err(e),
        };
    }
    Ok([p[0].revents != 0, p[1].revents != 0])
}

/// One datagram as recvmsg delivered it.
struct Received {
    len: usize,
    from: Option<SocketAddr>,
    /// `ipi_spec_dst` of IP_PKTINFO, when present.
    spec_dst: Option<Ipv4Addr>,
}

/// Non-blocking recvmsg of one datagram: the VXLAN header into `hdr`, the
/// frame into `buf`. `Ok(None)` when nothing was waiting.
fn recv_datagram(
    fd: RawFd,
    hdr: &mut [u8; HEADER_LEN],
    buf: &mut [u8],
) -> io::Result<Option<Received>> {
    let mut iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut name: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    // 128 bytes, aligned for cmsghdr: room for IP_PKTINFO or IPV6_PKTINFO.
    let mut control = [0u64; 16];
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` refers to a live local buffer of the
    // stated length (`hdr` and `buf` are exclusive borrows), for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    let mut spec_dst = None;
    // SAFETY: `msg` was filled by recvmsg; the CMSG_* walk stays within
    // msg_control/msg_controllen, which point at `control`, still alive.
    // The payload of an IP_PKTINFO message is an in_pktinfo, read
    // unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let info: libc::in_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                spec_dst = Some(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Some(Received {
        len: n as usize,
        from: sockaddr_to_std(&name, msg.msg_namelen),
        spec_dst,
    }))
}

// ---------------------------------------------------------------------------
// The IO shell

/// Counters of an endpoint.
#[derive(Debug, Default)]
pub struct VxvdeStats {
    /// Frames delivered.
    pub received: AtomicU64,
    /// Frames sent to the group.
    pub sent_group: AtomicU64,
    /// Frames sent by unicast to a learned peer.
    pub sent_peer: AtomicU64,
    /// Frames not sent: shorter than an Ethernet header.
    pub not_sent_short: AtomicU64,
    /// Goodbyes received.
    pub goodbyes: AtomicU64,
    /// Datagrams dropped: too short.
    pub dropped_short: AtomicU64,
    /// Datagrams dropped: wrong header.
    pub dropped_header: AtomicU64,
    /// Our own multicast datagrams, looped back and dropped.
    pub dropped_own: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

const MULTI: usize = 0;

/// An open vxvde endpoint. `send` and `recv` take `&self`: one thread may
/// receive while others send. Dropping it (or [`Vxvde::close`]) sends the
/// goodbye to the group.
pub struct Vxvde {
    /// [multicast, unicast]
    socks: [Socket; 2],
    group: SocketAddr,
    group_sa: SockAddr,
    uniport: u16,
    header: [u8; HEADER_LEN],
    core: Mutex<Core>,
    /// IPv6: the local address our own copies were last seen from
    /// (starts as the group address, like libvdeplug).
    local6: Mutex<Ipv6Addr>,
    closed: AtomicBool,
    turn: AtomicUsize,
    stats: VxvdeStats,
}

fn ctx(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

impl Vxvde {
    /// Opens an endpoint: resolves the group (trying each address of the
    /// wanted family in turn), sets up both sockets and joins the group.
    pub fn open(cfg: &VxvdeConfig) -> io::Result<Vxvde> {
        let host = cfg.group_host();
        let ifindex = match cfg.interface.as_deref() {
            Some(name) if !name.is_empty() => if_index(name)?,
            _ => 0,
        };
        let addrs: Vec<SocketAddr> = resolve(&host, cfg.port)
            .map_err(ctx(format!("cannot resolve vxvde group {host:?}")))?
            .into_iter()
            .filter(|a| cfg.wants(a))
            .collect();
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "vxvde group {host:?} has no {} address",
                match cfg.family {
                    Family::V4 => "IPv4",
                    Family::V6 => "IPv6",
                    Family::Any => "IP",
                }
            ),
        );
        for a in addrs {
            let a = match cfg.grp {
                Some(gid) => SocketAddr::new(group_with_gid(a.ip(), gid), a.port()),
                None => a,
            };
            if !a.ip().is_multicast() {
                last = io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("vxvde group {} is not a multicast address", a.ip()),
                );
                continue;
            }
            match Vxvde::open_on(cfg, a, ifindex) {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open_on(cfg: &VxvdeConfig, mut group: SocketAddr, ifindex: u32) -> io::Result<Vxvde> {
        if let SocketAddr::V6(g) = &mut group {
            // link-local multicast needs its interface to be bound to
            if ifindex != 0 && g.ip().segments()[0] & 0x000f <= 2 {
                g.set_scope_id(ifindex);
            }
        }
        let at = |what: &str| ctx(format!("vxvde {group}: {what}"));
        let domain = Domain::for_address(group);
        let multi = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(at("socket"))?;
        let uni = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(at("socket"))?;
        if let Some(size) = cfg.rcvbuf {
            uni.set_recv_buffer_size(size)
                .map_err(at(&format!("rcvbuf={size}")))?;
        }
        let one: libc::c_int = 1;
        match group {
            SocketAddr::V4(_) => {
                uni.set_ttl_v4(cfg.ttl)
                    .map_err(at(&format!("ttl={}", cfg.ttl)))?;
                uni.set_multicast_ttl_v4(cfg.ttl)
                    .map_err(at(&format!("ttl={}", cfg.ttl)))?;
                setsockopt(&multi, libc::IPPROTO_IP, libc::IP_PKTINFO, &one)
                    .map_err(at("IP_PKTINFO"))?;
            }
            SocketAddr::V6(_) => {
                uni.set_multicast_hops_v6(cfg.ttl)
                    .map_err(at(&format!("ttl={}", cfg.ttl)))?;
                setsockopt(&multi, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)
                    .map_err(at("IPV6_RECVPKTINFO"))?;
            }
        }
        multi.set_reuse_address(true).map_err(at("SO_REUSEADDR"))?;
        multi
            .bind(&group.into())
            .map_err(at("cannot bind the multicast socket"))?;
        match group {
            SocketAddr::V4(g) => {
                multi.join_multicast_v4_n(g.ip(), &InterfaceIndexOrAddress::Index(ifindex))
            }
            SocketAddr::V6(g) => multi.join_multicast_v6(g.ip(), ifindex),
        }
        .map_err(at("cannot join the group"))?;
        let local = match cfg.bind.as_deref() {
            Some(b) => resolve(b, 0)
                .map_err(at(&format!("cannot resolve bind={b}")))?
                .into_iter()
                .find(|a| a.is_ipv4() == group.is_ipv4())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("vxvde {group}: bind={b} has no address of the group's family"),
                    )
                })?,
            None if group.is_ipv4() => (Ipv4Addr::UNSPECIFIED, 0).into(),
            None => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        uni.bind(&local.into())
            .map_err(at(&format!("cannot bind the unicast socket to {local}")))?;
        if ifindex != 0 {
            match group {
                SocketAddr::V4(_) => {
                    let req = libc::ip_mreqn {
                        imr_multiaddr: libc::in_addr { s_addr: 0 },
                        imr_address: libc::in_addr { s_addr: 0 },
                        imr_ifindex: ifindex as libc::c_int,
                    };
                    setsockopt(&uni, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &req)
                }
                SocketAddr::V6(_) => uni.set_multicast_if_v6(ifindex),
            }
            .map_err(at("IP_MULTICAST_IF"))?;
        }
        let uniport = uni
            .local_addr()
            .map_err(at("getsockname"))?
            .as_socket()
            .map(|a| a.port())
            .unwrap_or(0);
        let local6 = match group.ip() {
            IpAddr::V6(a) => a,
            IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
        };
        Ok(Vxvde {
            socks: [multi, uni],
            group,
            group_sa: group.into(),
            uniport,
            header: header(cfg.vni),
            core: Mutex::new(Core::new(cfg.vni, cfg.hashsize, cfg.expire)),
            local6: Mutex::new(local6),
            closed: AtomicBool::new(false),
            turn: AtomicUsize::new(0),
            stats: VxvdeStats::default(),
        })
    }

    /// The group address and port datagrams are sent to.
    pub fn group(&self) -> SocketAddr {
        self.group
    }

    /// The local address of the unicast socket (every datagram's source).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socks[1]
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("unicast socket has no IP address"))
    }

    /// The header this endpoint sends and accepts.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        self.header
    }

    pub fn stats(&self) -> &VxvdeStats {
        &self.stats
    }

    /// Where a frame to `dst` would go now (for inspection).
    pub fn route_of(&self, dst: [u8; 6]) -> Route {
        let mut f = [0u8; ETH_HEADER_LEN];
        f[..6].copy_from_slice(&dst);
        lock(&self.core)
            .route(&f, Instant::now())
            .unwrap_or(Route::Group)
    }

    /// Sends one frame: unicast to its learned peer, else to the group.
    /// Frames shorter than an Ethernet header are dropped silently.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("vxvde {}: endpoint closed", self.group),
            ));
        }
        let route = lock(&self.core).route(frame, Instant::now());
        let peer_sa;
        let dest = match route {
            None => {
                bump(&self.stats.not_sent_short);
                return Ok(());
            }
            Some(Route::Group) => {
                bump(&self.stats.sent_group);
                &self.group_sa
            }
            Some(Route::Peer(p)) => {
                bump(&self.stats.sent_peer);
                peer_sa = SockAddr::from(p);
                &peer_sa
            }
        };
        let bufs = [IoSlice::new(&self.header), IoSlice::new(frame)];
        self.socks[1].send_to_vectored(&bufs, dest).map(|_| ())
    }

    /// Receives the next frame into `buf` (blocking); returns its length.
    /// Bad datagrams, goodbyes and our own copies are handled and skipped.
    /// After [`Vxvde::close`], fails with `UnexpectedEof`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.recv_timeout(buf, None)? {
                return Ok(n);
            }
        }
    }

    /// Like [`Vxvde::recv`], giving up after `timeout` (`None`: never)
    /// with `Ok(None)`.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<Option<usize>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let fds = [self.socks[0].as_raw_fd(), self.socks[1].as_raw_fd()];
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("vxvde {}: endpoint closed", self.group),
                ));
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
                }
            };
            let ready = poll_in(fds, ms)?;
            let first = self.turn.fetch_add(1, Ordering::Relaxed) % 2;
            for which in [first, 1 - first] {
                if ready[which] {
                    if let Some(n) = self.recv_one(which, buf)? {
                        return Ok(Some(n));
                    }
                }
            }
        }
    }

    fn recv_one(&self, which: usize, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut hdr = [0u8; HEADER_LEN];
        let Some(r) = recv_datagram(self.socks[which].as_raw_fd(), &mut hdr, buf)? else {
            return Ok(None);
        };
        let Some(from) = r.from else {
            bump(&self.stats.dropped_short);
            return Ok(None);
        };
        let hlen = r.len.min(HEADER_LEN);
        let flen = r.len.saturating_sub(HEADER_LEN).min(buf.len());
        let own = || which == MULTI && self.own_copy(from, r.spec_dst);
        let verdict =
            lock(&self.core).receive(&hdr[..hlen], &buf[..flen], from, own, Instant::now());
        match verdict {
            Verdict::Frame(n) => {
                bump(&self.stats.received);
                return Ok(Some(n));
            }
            Verdict::Goodbye(_) => bump(&self.stats.goodbyes),
            Verdict::Short => bump(&self.stats.dropped_short),
            Verdict::BadHeader => bump(&self.stats.dropped_header),
            Verdict::OwnCopy => bump(&self.stats.dropped_own),
        }
        Ok(None)
    }

    /// Whether a datagram that reached the multicast socket is our own.
    fn own_copy(&self, from: SocketAddr, spec_dst: Option<Ipv4Addr>) -> bool {
        match from {
            SocketAddr::V4(f) => own_copy_v4(f, self.uniport, spec_dst),
            SocketAddr::V6(f) => {
                if f.port() != self.uniport {
                    return false;
                }
                // there is no IPv6 ipi_spec_dst: remember the last local
                // address our copies came from, check others with getifaddrs
                let mut local = lock(&self.local6);
                if *f.ip() == *local {
                    return true;
                }
                if is_local_v6(f.ip()) {
                    *local = *f.ip();
                    return true;
                }
                false
            }
        }
    }

    /// Sends the goodbye (header only) to the group, once, and shuts the
    /// sockets down: a thread blocked in `recv` returns `UnexpectedEof`.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.socks[1].send_to(&self.header, &self.group_sa);
        for s in &self.socks {
            // unconnected UDP sockets report ENOTCONN but still wake pollers
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Vxvde {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Vxvde {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vxvde")
            .field("group", &self.group)
            .field("uniport", &self.uniport)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    fn peer(n: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], port))
    }

    fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
        let mut f = vec![0x55; len.max(14)];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f.truncate(len);
        f
    }

    #[test]
    fn header_bytes_as_observed() {
        assert_eq!(header(42), [0x08, 0, 0, 0, 0, 0, 0x2a, 0]);
        assert_eq!(header(1), [0x08, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(header(0x123456), [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        // only 24 bits go on the wire
        assert_eq!(header(0x0100_0001), header(1));
        assert_eq!(header_vni(&header(0xabcdef)), Some(0xabcdef));
        assert_eq!(header_vni(&[0x08, 0, 0, 1, 0, 0, 1, 0]), None);
        assert_eq!(header_vni(&[0x0c, 0, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(header_vni(&[0x08, 0, 0, 0, 0, 0, 1, 9]), None);
        assert_eq!(header_vni(&[0x08, 0, 0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn key_and_hash_match_libvdeplug() {
        // extmac on little-endian: bytes 0..4 low, 4..6 next, VLAN at 48
        assert_eq!(mac_key(&[1, 2, 3, 4, 5, 6], 1), 0x0001_0605_0403_0201);
        assert_eq!(mac_key(&[0; 6], 0), 0);
        // calc_hash by hand for key 1, seed 0 (murmur3 fmix64 of 1)
        let mut k: u64 = 1;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51afd7ed558ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ceb9fe1a85ec53);
        k ^= k >> 33;
        assert_eq!(hash_index(1, 1023, 0), (k & 1023) as usize);
        // known answers from libvdeplug's extmac + calc_hash compiled with gcc
        for (mac, key, i1023, i65535) in [
            ([2, 0, 0, 0, 0, 0x0a], 0x0001_0a00_0000_0002u64, 263, 10503),
            ([0x0a, 0, 0, 0, 0, 1], 0x0001_0100_0000_000a, 552, 35368),
            (
                [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                0x0001_5634_1200_5452,
                993,
                31713,
            ),
            (
                [0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa],
                0x0001_fafb_fcfd_feff,
                944,
                24496,
            ),
        ] {
            assert_eq!(mac_key(&mac, VLAN_KEY), key);
            assert_eq!(hash_index(key, 1023, 0), i1023);
            assert_eq!(hash_index(key, 65535, 0), i65535);
        }
        // the seed is xored in after the first shift
        assert_ne!(hash_index(1, 1023, 7), hash_index(1, 1023, 0));
        assert_eq!(hash_index(0, 0, 0), 0);
    }

    #[test]
    fn table_sizes_round_up() {
        assert_eq!(table_size(1024), 1024);
        assert_eq!(table_size(1000), 1024);
        assert_eq!(table_size(1025), 2048);
        assert_eq!(table_size(3), 4);
        assert_eq!(table_size(2), 2);
        assert_eq!(table_size(1), 1);
        assert_eq!(table_size(0), 0);
        assert_eq!(LearningTable::new(100, DEFAULT_EXPIRE).slots(), 128);
    }

    #[test]
    fn learning_expiry_and_forgetting() {
        let t0 = Instant::now();
        let mut t = LearningTable::new(16, Duration::from_secs(128));
        assert_eq!(t.lookup(&A, t0), None);
        t.learn(&A, peer(1, 5000), t0);
        assert_eq!(t.lookup(&A, t0), Some(peer(1, 5000)));
        assert_eq!(
            t.lookup(&A, t0 + Duration::from_secs(128)),
            Some(peer(1, 5000))
        );
        assert_eq!(t.lookup(&A, t0 + Duration::from_secs(129)), None);
        // relearning moves it
        t.learn(&A, peer(2, 6000), t0 + Duration::from_secs(1));
        assert_eq!(
            t.lookup(&A, t0 + Duration::from_secs(2)),
            Some(peer(2, 6000))
        );
        // group-bit sources are not learned, group destinations not looked up
        let m = [0x01, 0, 0x5e, 0, 0, 1];
        t.learn(&m, peer(3, 1), t0);
        assert_eq!(t.lookup(&m, t0), None);
        // a goodbye forgets exactly the entries of that address and port
        t.learn(&B, peer(2, 6001), t0);
        assert_eq!(t.forget(peer(2, 6000)), 1);
        assert_eq!(t.lookup(&A, t0), None);
        assert_eq!(t.lookup(&B, t0), Some(peer(2, 6001)));
        assert_eq!(t.forget(peer(2, 6000)), 0);
    }

    #[test]
    fn collisions_overwrite() {
        // a one-slot table: every MAC shares the slot
        let t0 = Instant::now();
        let mut t = LearningTable::new(1, DEFAULT_EXPIRE);
        t.learn(&A, peer(1, 1), t0);
        t.learn(&B, peer(2, 2), t0);
        assert_eq!(t.lookup(&A, t0), None);
        assert_eq!(t.lookup(&B, t0), Some(peer(2, 2)));
        // find two MACs that collide in a 1024-slot table
        let mut t = LearningTable::new(1024, DEFAULT_EXPIRE);
        let idx = |m: &[u8; 6]| hash_index(mac_key(m, VLAN_KEY), 1023, 0);
        let other = (0..=u16::MAX)
            .map(|i| [0x02, 0, 0, 0, (i >> 8) as u8, i as u8])
            .find(|m| *m != A && idx(m) == idx(&A))
            .expect("a collision among 65536 MACs");
        t.learn(&A, peer(1, 1), t0);
        t.learn(&other, peer(2, 2), t0);
        assert_eq!(t.lookup(&A, t0), None);
        assert_eq!(t.lookup(&other, t0), Some(peer(2, 2)));
        // no table: nothing learned
        let mut t = LearningTable::new(0, DEFAULT_EXPIRE);
        t.learn(&A, peer(1, 1), t0);
        assert_eq!(t.lookup(&A, t0), None);
    }

    #[test]
    fn routing() {
        let t0 = Instant::now();
        let mut c = Core::new(7, 1024, Duration::from_secs(10));
        assert_eq!(c.route(&frame(A, B, 13), t0), None);
        assert_eq!(c.route(&[], t0), None);
        assert_eq!(c.route(&frame(A, B, 14), t0), Some(Route::Group));
        let h = c.header();
        assert_eq!(
            c.receive(&h, &frame(B, A, 60), peer(1, 4000), || false, t0),
            Verdict::Frame(60)
        );
        assert_eq!(
            c.route(&frame(A, B, 60), t0),
            Some(Route::Peer(peer(1, 4000)))
        );
        assert_eq!(c.route(&frame([0xff; 6], B, 60), t0), Some(Route::Group));
        assert_eq!(
            c.route(&frame(A, B, 60), t0 + Duration::from_secs(11)),
            Some(Route::Group)
        );
    }

    #[test]
    fn receive_verdicts() {
        let t0 = Instant::now();
        let mut c = Core::new(42, 1024, DEFAULT_EXPIRE);
        let h = header(42);
        let f = frame([0xff; 6], A, 60);
        let from = peer(9, 1234);
        let rx = |c: &mut Core, h: &[u8], f: &[u8]| c.receive(h, f, from, || false, t0);
        assert_eq!(rx(&mut c, &h, &f), Verdict::Frame(60));
        // exactly an Ethernet header is dropped, one byte more passes
        assert_eq!(rx(&mut c, &h, &f[..14]), Verdict::Short);
        assert_eq!(rx(&mut c, &h, &f[..15]), Verdict::Frame(15));
        assert_eq!(rx(&mut c, &h, &f[..1]), Verdict::Short);
        // truncated header
        assert_eq!(rx(&mut c, &h[..7], &[]), Verdict::Short);
        assert_eq!(rx(&mut c, &[], &[]), Verdict::Short);
        // the whole header is compared
        for i in 0..8 {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert_eq!(rx(&mut c, &bad, &f), Verdict::BadHeader, "byte {i}");
        }
        assert_eq!(rx(&mut c, &header(43), &f), Verdict::BadHeader);
        // own copies are judged after the header, and not learned
        let mut asked = false;
        let v = c.receive(
            &header(43),
            &f,
            from,
            || {
                asked = true;
                true
            },
            t0,
        );
        assert_eq!((v, asked), (Verdict::BadHeader, false));
        let own = frame([0xff; 6], B, 60);
        assert_eq!(
            c.receive(&h, &own, peer(1, 1), || true, t0),
            Verdict::OwnCopy
        );
        assert_eq!(c.table().lookup(&B, t0), None);
        // learned from the frame's source; a goodbye with a bad header is
        // ignored, a good one forgets the sender
        assert_eq!(c.table().lookup(&A, t0), Some(from));
        assert_eq!(rx(&mut c, &header(41), &[]), Verdict::BadHeader);
        assert_eq!(c.table().lookup(&A, t0), Some(from));
        assert_eq!(
            c.receive(&h, &[], peer(9, 1235), || false, t0),
            Verdict::Goodbye(0)
        );
        assert_eq!(rx(&mut c, &h, &[]), Verdict::Goodbye(1));
        assert_eq!(c.table().lookup(&A, t0), None);
    }

    #[test]
    fn own_copy_rule_v4() {
        let me = Ipv4Addr::new(10, 1, 1, 1);
        let f = SocketAddrV4::new(me, 40000);
        assert!(own_copy_v4(f, 40000, Some(me)));
        assert!(!own_copy_v4(f, 40001, Some(me)));
        assert!(!own_copy_v4(f, 40000, Some(Ipv4Addr::new(10, 1, 1, 2))));
        assert!(!own_copy_v4(f, 40000, None));
    }

    #[test]
    fn grp_rewrites_the_group() {
        let g = group_with_gid(IpAddr::V4(DEFAULT_GROUP_V4), 1000);
        assert_eq!(g, "239.0.3.232".parse::<IpAddr>().unwrap());
        let g = group_with_gid(IpAddr::V4(DEFAULT_GROUP_V4), 0x0102_0304);
        assert_eq!(g, "239.2.3.4".parse::<IpAddr>().unwrap());
        let g = group_with_gid(IpAddr::V6(DEFAULT_GROUP_V6), 1000);
        assert_eq!(g, "ff05:56de::3e8".parse::<IpAddr>().unwrap());
        let g = group_with_gid("ff05:56de::1234:5678".parse().unwrap(), 0xabcdef);
        assert_eq!(g, "ff05:56de::12ab:cdef".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn config_defaults() {
        let c = VxvdeConfig::default();
        assert_eq!((c.port, c.vni, c.ttl, c.hashsize), (14789, 1, 1, 1024));
        assert_eq!(c.expire, Duration::from_secs(128));
        assert_eq!(c.group_host(), "239.0.0.1");
        let c6 = VxvdeConfig {
            family: Family::V6,
            ..VxvdeConfig::default()
        };
        assert_eq!(c6.group_host(), "ff05:56de::1");
    }

    #[test]
    fn open_rejects_what_cannot_work() {
        let e = Vxvde::open(&VxvdeConfig {
            group: "10.1.2.3".into(),
            ..VxvdeConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("not a multicast"), "{e}");
        let e = Vxvde::open(&VxvdeConfig {
            interface: Some("no-such-if0".into()),
            ..VxvdeConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("no-such-if0"), "{e}");
        let e = Vxvde::open(&VxvdeConfig {
            group: "239.1.1.1".into(),
            family: Family::V6,
            ..VxvdeConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("IPv6"), "{e}");
    }

    // -- IO, in a private network namespace of a test thread (root only) --

    /// Runs `f` on a thread with its own network namespace holding a veth
    /// pair `v0`-`v1` (v0: 10.99.0.1/24, fd99::1/64), for endpoints with
    /// `if=v0`. `None` (and a SKIP line) when not root; under CI=true that
    /// is a failure.
    fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "this test needs root under CI=true"
            );
            eprintln!("SKIP: needs root (private network namespace)");
            return None;
        }
        let h = std::thread::spawn(move || {
            // SAFETY: unshare affects only this thread's namespaces.
            let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "unshare: {}", io::Error::last_os_error());
            for cmd in [
                "link set lo up",
                "link add v0 type veth peer name v1",
                "link set v0 up",
                "link set v1 up",
                "addr add 10.99.0.1/24 dev v0",
                "addr add fd99::1/64 dev v0 nodad",
            ] {
                let ok = std::process::Command::new("ip")
                    .args(cmd.split(' '))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "ip {cmd} failed (is iproute2 installed?)");
            }
            f()
        });
        Some(h.join().expect("netns thread"))
    }

    fn veth_cfg(group: &str, vni: u32) -> VxvdeConfig {
        VxvdeConfig {
            group: group.into(),
            vni,
            interface: Some("v0".into()),
            ..VxvdeConfig::default()
        }
    }

    fn io_exchange(group: &'static str) {
        in_private_netns(move || {
            let a = Vxvde::open(&veth_cfg(group, 5)).unwrap();
            let b = Vxvde::open(&veth_cfg(group, 5)).unwrap();
            let other_vni = Vxvde::open(&veth_cfg(group, 6)).unwrap();
            let t = Some(Duration::from_secs(2));
            let short = Some(Duration::from_millis(200));
            let mut buf = [0u8; 2000];
            // broadcast from a reaches b, not a itself nor another VNI
            a.send(&frame([0xff; 6], A, 60)).unwrap();
            assert_eq!(b.recv_timeout(&mut buf, t).unwrap(), Some(60));
            assert_eq!(&buf[6..12], &A);
            assert_eq!(a.recv_timeout(&mut buf, short).unwrap(), None);
            assert!(a.stats().dropped_own.load(Ordering::Relaxed) >= 1);
            assert_eq!(other_vni.recv_timeout(&mut buf, short).unwrap(), None);
            assert!(other_vni.stats().dropped_header.load(Ordering::Relaxed) >= 1);
            // b learned A behind a's unicast port: its reply is unicast
            let a_port = a.local_addr().unwrap().port();
            assert!(
                matches!(b.route_of(A), Route::Peer(p) if p.port() == a_port),
                "{:?}",
                b.route_of(A)
            );
            b.send(&frame(A, B, 100)).unwrap();
            assert_eq!(b.stats().sent_peer.load(Ordering::Relaxed), 1);
            assert_eq!(a.recv_timeout(&mut buf, t).unwrap(), Some(100));
            assert_eq!(&buf[..12], &[A, B].concat()[..]);
            // and a now knows B
            assert!(matches!(a.route_of(B), Route::Peer(_)));
            // short frames are not sent
            a.send(&frame(B, A, 10)).unwrap();
            assert_eq!(a.stats().not_sent_short.load(Ordering::Relaxed), 1);
            // a goodbye from a makes b forget A
            drop(a);
            let deadline = Instant::now() + Duration::from_secs(2);
            while b.route_of(A) != Route::Group && Instant::now() < deadline {
                let _ = b.recv_timeout(&mut buf, Some(Duration::from_millis(50)));
            }
            assert_eq!(b.route_of(A), Route::Group);
            assert_eq!(b.stats().goodbyes.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn io_ipv4_in_a_private_netns() {
        io_exchange("239.9.9.9");
    }

    #[test]
    fn io_ipv6_in_a_private_netns() {
        io_exchange("ff05:56de::99");
    }

    #[test]
    fn io_send_and_recv_from_two_threads_and_close_wakes_recv() {
        in_private_netns(|| {
            let a = std::sync::Arc::new(Vxvde::open(&veth_cfg("239.9.9.8", 1)).unwrap());
            let b = Vxvde::open(&veth_cfg("239.9.9.8", 1)).unwrap();
            let rx = {
                let a = a.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2000];
                    let mut n = 0;
                    loop {
                        match a.recv(&mut buf) {
                            Ok(_) => n += 1,
                            Err(e) => return (n, e.kind()),
                        }
                    }
                })
            };
            for i in 0..50u8 {
                a.send(&frame([0xff; 6], [2, 0, 0, 0, 1, i], 80)).unwrap();
                b.send(&frame([0xff; 6], [2, 0, 0, 0, 2, i], 80)).unwrap();
            }
            let mut buf = [0u8; 2000];
            let mut got = 0;
            while b
                .recv_timeout(&mut buf, Some(Duration::from_millis(500)))
                .unwrap()
                .is_some()
            {
                got += 1;
            }
            assert_eq!(got, 50);
            std::thread::sleep(Duration::from_millis(200));
            a.close();
            let (n, kind) = rx.join().unwrap();
            assert_eq!((n, kind), (50, io::ErrorKind::UnexpectedEof));
            assert!(a.send(&frame([0xff; 6], A, 60)).is_err());
        });
    }
}

/// Property tests: the VXLAN header written for a VNI reads back, and
/// only such headers read.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_emit_parse(vni in any::<u32>()) {
            prop_assert_eq!(header_vni(&header(vni)), Some(vni & MAX_VNI));
        }

        #[test]
        fn only_emitted_headers_parse(h in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Some(vni) = header_vni(&h) {
                prop_assert_eq!(&header(vni)[..], &h[..]);
            }
        }
    }
}
