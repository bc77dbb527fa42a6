//! Moving frames between two ends, one thread per direction: a plug and a
//! byte stream (vde_plug's stdin/stdout or a command's pipes), or two
//! plugs (vde_plug's two-locator form). The first direction to end (end of
//! stream, closed plug, hang-up of a switch) ends the cable.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::Arc;

use crate::frame::{HEADER_LEN, MAX_JUMBO};
use crate::stream::{self, Decoder, Item};
use crate::vnl::Plug;

/// Why a cable stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// End of the input stream.
    StreamEof,
    /// The output stream is closed.
    StreamClosed,
    /// A plug closed or failed (which one, and how).
    Plug(usize, String),
    /// A switch hung up its control connection.
    Hangup(usize),
}

/// Counters of what a cable dropped.
#[derive(Debug, Default)]
pub struct Drops {
    /// Stream records with a bad length (the rest of that read is lost).
    pub length_errors: std::sync::atomic::AtomicU64,
    /// Frames from the network shorter than an Ethernet header.
    pub runts: std::sync::atomic::AtomicU64,
    /// Frames the plug refused to send.
    pub send_errors: std::sync::atomic::AtomicU64,
}

fn spawn_hangup(plug: Arc<dyn Plug>, which: usize, tx: mpsc::Sender<End>) {
    std::thread::spawn(move || {
        if plug.wait_hangup() {
            let _ = tx.send(End::Hangup(which));
        }
    });
}

/// Joins a plug to a byte stream with the 2-byte length framing. Returns
/// when either side ends.
pub fn plug_to_stream(
    plug: Arc<dyn Plug>,
    mut input: impl Read + Send + 'static,
    mut output: impl Write + Send + 'static,
    drops: Arc<Drops>,
) -> End {
    let (tx, rx) = mpsc::channel();
    {
        let (plug, tx, drops) = (plug.clone(), tx.clone(), drops.clone());
        std::thread::spawn(move || {
            let mut dec = Decoder::default();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                dec.push(&buf[..n], |item| match item {
                    Item::Frame(f) => {
                        // A frame the destination refuses (full, down, gone)
                        // is dropped; the end of a plug shows on its receive
                        // side or as a hang-up.
                        if plug.send(f).is_err() {
                            drops
                                .send_errors
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Item::LengthError { len } => {
                        drops
                            .length_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            "Packet length error size {len} expected size at most {}",
                            stream::MAX_RECORD
                        );
                    }
                });
            }
            let _ = tx.send(End::StreamEof);
        });
    }
    {
        let (plug, tx, drops) = (plug.clone(), tx.clone(), drops.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_JUMBO + 1];
            let mut rec = Vec::with_capacity(MAX_JUMBO + 2);
            loop {
                let n = match plug.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(End::Plug(0, e.to_string()));
                        return;
                    }
                };
                if n < HEADER_LEN {
                    drops
                        .runts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                if stream::encode(&buf[..n.min(MAX_JUMBO)], &mut rec).is_some()
                    && (output.write_all(&rec).is_err() || output.flush().is_err())
                {
                    let _ = tx.send(End::StreamClosed);
                    return;
                }
            }
        });
    }
    spawn_hangup(plug, 0, tx.clone());
    drop(tx);
    rx.recv().unwrap_or(End::StreamEof)
}

/// Joins two plugs; returns when either ends.
pub fn plug_to_plug(a: Arc<dyn Plug>, b: Arc<dyn Plug>) -> End {
    let (tx, rx) = mpsc::channel();
    for (from, to, which) in [(a.clone(), b.clone(), 0usize), (b.clone(), a.clone(), 1)] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_JUMBO + 1];
            loop {
                match from.recv(&mut buf) {
                    Ok(n) => {
                        // refused frames (a full socket, a tap that is down)
                        // are dropped, as libvdeplug's tools do
                        let _ = to.send(&buf[..n.min(MAX_JUMBO)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(End::Plug(which, e.to_string()));
                        return;
                    }
                }
            }
        });
    }
    spawn_hangup(a, 0, tx.clone());
    spawn_hangup(b, 1, tx.clone());
    drop(tx);
    rx.recv().unwrap_or(End::StreamEof)
}
