//! vde_cryptcab's loop: one cryptcab endpoint (dialing or listening, from
//! vde-overlay, the same code a switch hosts in process) and, for each of
//! its links, a port of a switch opened through a VNL with the description
//! `vde_cryptcab`, as the C tool does. One thread, one mio poll loop; a
//! small thread per port only waits for the switch to hang up.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use vde_overlay::cryptcab::Control;
use vde_overlay::endpoint::{EndpointEvent, FrameEndpoint, LinkId, RxBatch};

use crate::sys;
use crate::vnl::{self, OpenArgs, Plug};

const CABLE: Token = Token(0);
const WAKE: Token = Token(1);
/// Port data sockets use tokens from here on.
const PORTS: usize = 16;
/// Frames moved per system call.
const BATCH: usize = 32;
/// Room for a frame (jumbo frames fit) and one byte to see a longer one.
const SLOT: usize = vde_overlay::cryptcab::MAX_FRAME + 1;
/// Longest wait: the stop and report flags are looked at this often.
const TICK: Duration = Duration::from_millis(100);
/// How often a link without a port tries the switch again.
const RETRY: Duration = Duration::from_secs(1);

/// A switch port carrying one link.
struct Port {
    plug: Arc<dyn Plug>,
    fd: RawFd,
    token: usize,
}

/// Runs until `ctl.stop`: frames between the cable's links and their
/// switch ports. `switch` is the VNL of the switch; `stats` formats the
/// cable's counters for SIGUSR1 and the end.
pub fn relay<E: FrameEndpoint>(
    ep: &mut E,
    switch: &str,
    ctl: &Control,
    stats: impl Fn(&E) -> String,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let fd = ep.fd();
    poll.registry()
        .register(&mut SourceFd(&fd), CABLE, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (hung_tx, hung_rx) = mpsc::channel::<usize>();
    let name = if switch.is_empty() {
        "/tmp/vde.ctl"
    } else {
        switch
    };
    let listening = ep.status(Instant::now()).role == "listen";
    let mut ports: HashMap<LinkId, Port> = HashMap::new();
    // links that are up but have no port (the switch refused one)
    let mut waiting: HashMap<LinkId, (String, Instant)> = HashMap::new();
    let mut next_token = PORTS;
    let mut rx = vec![0u8; BATCH * SLOT];
    let mut lens = [0usize; BATCH];
    let mut links = [0 as LinkId; BATCH];
    let mut bufs = vec![[0u8; SLOT]; BATCH];
    let mut events = Events::with_capacity(64);
    while !ctl.stopping() {
        if ctl.take_report() {
            tracing::info!("stats: {}", stats(ep));
        }
        let now = Instant::now();
        let timeout = ep
            .poll_timeout()
            .map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            match ev.token() {
                CABLE => loop {
                    let mut b = RxBatch {
                        buf: &mut rx,
                        stride: SLOT,
                        lens: &mut lens,
                        links: &mut links,
                    };
                    let n = match ep.recv_batch(&mut b, Instant::now()) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!("receiving on the cable: {e}");
                            break;
                        }
                    };
                    // runs of frames of one link go to its port in one call
                    let mut i = 0;
                    while i < n {
                        let link = links[i];
                        let run = links[i..n].iter().take_while(|&&l| l == link).count();
                        if let Some(p) = ports.get(&link) {
                            let frames: Vec<&[u8]> = (i..i + run)
                                .map(|k| &rx[k * SLOT..k * SLOT + lens[k]])
                                .collect();
                            deliver(p, &frames);
                        }
                        i += run;
                    }
                },
                WAKE => {}
                Token(t) => {
                    let Some((&link, p)) = ports.iter().find(|(_, p)| p.token == t) else {
                        continue;
                    };
                    while let Ok(n) = sys::recv_batch(p.fd, &mut bufs, &mut lens) {
                        let frames: Vec<&[u8]> = (0..n)
                            .filter(|&k| lens[k] < SLOT)
                            .map(|k| &bufs[k][..lens[k]])
                            .collect();
                        if n > frames.len() {
                            tracing::debug!("dropped a frame longer than {}", SLOT - 1);
                        }
                        ep.send_batch(link, &frames, Instant::now());
                        if n < BATCH {
                            break;
                        }
                    }
                }
            }
        }
        let now = Instant::now();
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
        // the switch hung up a port: a listener's peer is told (no port, no
        // cable); a dialed cable tries for a port again
        while let Ok(token) = hung_rx.try_recv() {
            let Some((&link, _)) = ports.iter().find(|(_, p)| p.token == token) else {
                continue;
            };
            if let Some(p) = ports.remove(&link) {
                let _ = poll.registry().deregister(&mut SourceFd(&p.fd));
                tracing::warn!("switch {name} closed the port of link {link}");
                if listening {
                    ep.close_link(link, now);
                } else {
                    waiting.insert(link, (String::new(), now + RETRY));
                }
            }
        }
        while let Some(ev) = ep.poll_event() {
            match ev {
                EndpointEvent::Up { link, peer } => {
                    waiting.insert(link, (peer, now));
                }
                EndpointEvent::Down { link, .. } => {
                    waiting.remove(&link);
                    if let Some(p) = ports.remove(&link) {
                        let _ = poll.registry().deregister(&mut SourceFd(&p.fd));
                        p.plug.close();
                    }
                }
            }
        }
        let due: Vec<LinkId> = waiting
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(l, _)| *l)
            .collect();
        for link in due {
            let Some((peer, _)) = waiting.remove(&link) else {
                continue;
            };
            let args = OpenArgs {
                descr: "vde_cryptcab".into(),
                ..OpenArgs::default()
            };
            let plug: Arc<dyn Plug> = match vnl::open(switch, &args) {
                Ok(p) => Arc::from(p),
                Err(e) => {
                    tracing::error!(
                        "cannot attach to switch {name}: {e}; trying again in a second"
                    );
                    waiting.insert(link, (peer, now + RETRY));
                    continue;
                }
            };
            let Some(fd) = plug.datagram_fd() else {
                tracing::error!("{name} is not a switch: vde_cryptcab needs one");
                continue;
            };
            let token = next_token;
            next_token += 1;
            poll.registry()
                .register(&mut SourceFd(&fd), Token(token), Interest::READABLE)?;
            {
                let (plug, tx, waker) = (plug.clone(), hung_tx.clone(), waker.clone());
                std::thread::Builder::new()
                    .name("port-hangup".into())
                    .spawn(move || {
                        plug.wait_hangup();
                        let _ = tx.send(token);
                        let _ = waker.wake();
                    })?;
            }
            if peer.is_empty() {
                tracing::info!("cable link {link} up on switch {name}");
            } else {
                tracing::info!("cable from {peer} up on switch {name}");
            }
            ports.insert(link, Port { plug, fd, token });
        }
    }
    ep.close(Instant::now());
    tracing::info!("stats: {}", stats(ep));
    for (_, p) in ports.drain() {
        p.plug.close();
    }
    Ok(())
}

/// Hands frames to a switch port: batched while the socket takes them,
/// then one by one, waiting (the switch slows the cable down rather than
/// losing frames it could take a moment later).
fn deliver(p: &Port, frames: &[&[u8]]) {
    let mut rest = frames;
    while !rest.is_empty() {
        match sys::send_batch(p.fd, rest) {
            Ok(k) if k > 0 => rest = &rest[k..],
            _ => {
                for f in rest {
                    let _ = p.plug.send(f);
                }
                return;
            }
        }
    }
}
