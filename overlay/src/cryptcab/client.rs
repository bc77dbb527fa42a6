//! The client end: one cable to one server, which it keeps up by itself.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vde_crypto::{Client, ClientEvent, ClientRecv, Config, KeyId, Psk};

use super::diag::NoReply;
use super::ssh::{self, SshOptions};
use super::LocalSide;
use super::{
    any_v4, any_v6, bind_udp, deliver, id_hex, idle, send_udp, stats_line, wall_nanos, Batch,
    Clock, Control, Link, BATCH,
};

/// Longest wait in the receive loop.
const TICK: Duration = Duration::from_millis(20);

/// Handshakes in a row without an answer before a new key is fetched over ssh.
const REFRESH_AFTER_FAILURES: u32 = 4;

/// Waits between ssh attempts while the server stays unreachable.
const SSH_BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Where the client's key comes from.
pub enum ClientKeys {
    /// `-P keyfile`.
    Psk(Psk),
    /// A fresh key per connection, handed over through ssh.
    Ssh(SshOptions),
}

pub struct ClientOptions {
    /// Server host (name or address) and UDP port.
    pub host: String,
    pub port: u16,
    /// Local UDP port (-p).
    pub local_port: u16,
    pub keys: ClientKeys,
    pub config: Config,
}

/// Why the client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Ssh(#[from] ssh::SshError),
}

struct Shared {
    client: Client,
    link: Option<Arc<dyn Link>>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn random_id() -> io::Result<KeyId> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| io::Error::other("no randomness from the system"))?;
    Ok(id)
}

pub(super) fn resolve(host: &str, port: u16) -> Result<SocketAddr, ClientError> {
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ClientError::Resolve(host.to_string(), e))?;
    addrs.next().ok_or_else(|| {
        ClientError::Resolve(
            host.to_string(),
            io::Error::new(io::ErrorKind::NotFound, "no address"),
        )
    })
}

/// Runs a client until `ctl.stop`. Fails at start when the server cannot
/// be resolved or the first ssh exchange fails; after that it reconnects
/// by itself for as long as it runs.
pub fn connect(
    opts: ClientOptions,
    local: Arc<dyn LocalSide>,
    ctl: Arc<Control>,
) -> Result<(), ClientError> {
    let server = resolve(&opts.host, opts.port)?;
    let sock = bind_udp(
        if server.is_ipv6() { any_v6() } else { any_v4() },
        opts.local_port,
    )?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(TICK))?;
    let sock = Arc::new(sock);
    let clock = Clock::new();
    let (key_id, psk) = match &opts.keys {
        ClientKeys::Psk(p) => (random_id()?, p.clone()),
        ClientKeys::Ssh(o) => {
            let (t, answer) = ssh::exchange(o, opts.port)?;
            tracing::info!("key handed to {} over ssh: {answer}", o.dest);
            (t.key_id, t.psk())
        }
    };
    tracing::info!(
        "vde_cryptcab client: cable {} to {server} for switch {}",
        id_hex(&key_id),
        local.name()
    );
    let dead_after = opts.config.dead_after;
    let shared = Arc::new(Mutex::new(Shared {
        client: Client::new(opts.config, key_id, psk, wall_nanos(), clock.now()),
        link: None,
    }));
    let mut b = Batch::new();
    let mut out = Vec::with_capacity(2048);
    let mut deadline = Duration::ZERO;
    let mut next_ssh = Duration::ZERO;
    let mut ssh_tries = 0usize;
    let mut said_unreachable = false;
    let mut no_reply = NoReply::default();
    let mut frames = [0usize; BATCH];
    while !ctl.stopping() {
        if ctl.take_report() {
            tracing::info!("stats: {}", stats_line(lock(&shared).client.stats()));
        }
        match b.recv_udp(&sock) {
            Ok(k) => {
                let now = clock.now();
                let mut nf = 0;
                let mut s = lock(&shared);
                for i in 0..k {
                    let input = &b.bufs[i][..b.lens[i].min(super::SLOT)];
                    let r = s.client.receive(input, now, &mut b.outs[i]);
                    match r {
                        Ok(ClientRecv::Frame) => {
                            frames[nf] = i;
                            nf += 1;
                        }
                        Ok(ClientRecv::Up) => {
                            said_unreachable = false;
                            ssh_tries = 0;
                            drop(s);
                            link_up(&shared, &sock, &*local, server, clock);
                            s = lock(&shared);
                        }
                        Ok(ClientRecv::Closed) => {
                            drop(s);
                            tracing::warn!("cable to {server} closed by the server");
                            link_down(&shared);
                            s = lock(&shared);
                        }
                        Ok(_) => {}
                        Err(d) => tracing::debug!("dropped a datagram from {server}: {d}"),
                    }
                }
                // the confirming keepalive of a new session goes out at once
                deadline = s.client.next_deadline();
                let link = s.link.clone();
                drop(s);
                if let (Some(l), true) = (link, nf > 0) {
                    deliver(&*l, &b.outs, &frames[..nf]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                if !said_unreachable {
                    tracing::warn!(
                        "{server}: UDP port closed (no vde_cryptcab server there?); retrying"
                    );
                    said_unreachable = true;
                }
            }
            Err(e) if idle(&e) => {}
            Err(e) => {
                if !said_unreachable {
                    tracing::warn!("{server}: {e}; retrying");
                    said_unreachable = true;
                }
            }
        }
        let now = clock.now();
        if now >= deadline {
            let mut s = lock(&shared);
            while let Some(ev) = s.client.poll(now, &mut out) {
                match ev {
                    ClientEvent::Send => {
                        if let Err(e) = sock.send(&out) {
                            if !said_unreachable {
                                tracing::warn!("cannot send to {server}: {e}; retrying");
                                said_unreachable = true;
                            }
                        }
                    }
                    ClientEvent::Up => {}
                    ClientEvent::Down => {
                        tracing::warn!(
                            "cable to {server} down: nothing heard for {:.1} s",
                            dead_after.as_secs_f64()
                        );
                        let link = s.link.take();
                        if let Some(l) = link {
                            l.close();
                        }
                    }
                }
            }
            deadline = s.client.next_deadline().min(now + Duration::from_secs(1));
            let refresh = !s.client.is_up()
                && s.client.failed_attempts() >= REFRESH_AFTER_FAILURES
                && now >= next_ssh;
            // up, but the switch refused a port earlier: try again
            let reattach = s.client.is_up() && s.link.is_none();
            let unanswered = no_reply.update(s.client.failed_attempts(), s.client.is_up(), now);
            drop(s);
            if let Some(n) = unanswered {
                tracing::warn!(
                    "no reply from {server} — wrong key, or no server? ({n} handshakes unanswered)"
                );
            }
            if reattach {
                link_up(&shared, &sock, &*local, server, clock);
            }
            if let (true, ClientKeys::Ssh(o)) = (refresh, &opts.keys) {
                next_ssh = now + SSH_BACKOFF[ssh_tries.min(SSH_BACKOFF.len() - 1)];
                ssh_tries += 1;
                match ssh::exchange(o, opts.port) {
                    Ok((t, answer)) => {
                        tracing::info!("new key handed to {} over ssh: {answer}", o.dest);
                        lock(&shared).client.set_key(t.key_id, t.psk());
                    }
                    Err(e) => tracing::warn!("reconnecting to {}: {e}", o.dest),
                }
            }
        }
    }
    let now = clock.now();
    let mut s = lock(&shared);
    if s.client.close(now, &mut out).is_some() {
        let _ = sock.send(&out);
    }
    tracing::info!("stats: {}", stats_line(s.client.stats()));
    if let Some(l) = s.link.take() {
        l.close();
    }
    Ok(())
}

fn link_up(
    shared: &Arc<Mutex<Shared>>,
    sock: &Arc<UdpSocket>,
    local: &dyn LocalSide,
    server: SocketAddr,
    clock: Clock,
) {
    if lock(shared).link.is_some() {
        tracing::debug!("cable to {server} rekeyed");
        return;
    }
    let link: Arc<dyn Link> = match local.attach() {
        Ok(l) => Arc::from(l),
        Err(e) => {
            tracing::error!(
                "cannot attach to switch {}: {e}; trying again in a second",
                local.name()
            );
            return;
        }
    };
    let suite = lock(shared).client.suite().map_or("?", |s| s.name());
    tracing::info!("cable to {server} up on switch {} ({suite})", local.name());
    lock(shared).link = Some(link.clone());
    let shared = shared.clone();
    let sock = sock.clone();
    let spawned = std::thread::Builder::new()
        .name("cable".into())
        .spawn(move || pump(link, shared, sock, clock));
    if let Err(e) = spawned {
        tracing::error!("cannot start the cable thread: {e}");
    }
}

fn link_down(shared: &Arc<Mutex<Shared>>) {
    let link = lock(shared).link.take();
    if let Some(l) = link {
        l.close();
    }
}

/// Switch port → cable, until the port closes.
fn pump(link: Arc<dyn Link>, shared: Arc<Mutex<Shared>>, sock: Arc<UdpSocket>, clock: Clock) {
    let mut b = Batch::new();
    let mut idx = [0usize; BATCH];
    while let Ok(k) = link.recv_batch(&mut b.bufs, &mut b.lens) {
        let mut m = 0;
        {
            let mut s = lock(&shared);
            if !s.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, &link)) {
                break;
            }
            let now = clock.now();
            for i in 0..k {
                if b.lens[i] > super::MAX_FRAME {
                    tracing::debug!(
                        "dropped a {}-byte frame (longer than {})",
                        b.lens[i],
                        super::MAX_FRAME
                    );
                    continue;
                }
                let frame = &b.bufs[i][..b.lens[i]];
                if s.client.seal(frame, now, &mut b.outs[i]).is_ok() {
                    idx[m] = i;
                    m += 1;
                }
            }
        }
        send_udp(&sock, &b.outs, &idx[..m], None);
    }
    link.close();
}
