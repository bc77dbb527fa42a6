//! The client's key exchange over ssh, through the `openssh` crate: the
//! system `ssh` runs, so `~/.ssh/config`, agents, known_hosts and
//! ProxyJump work as they do for the user's own ssh. ssh authenticates
//! both hosts; the ticket travels inside the ssh channel to
//! `vde_cryptcab --ticket` on the server host (see [`super::ticket`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use openssh::{KnownHosts, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroize;

use super::ticket::Ticket;

/// How to reach the server host with ssh.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// `[user@]host` as given to `-c` (without the UDP port).
    pub dest: String,
    /// An ssh config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// The program run on the server host.
    pub remote_cmd: String,
    pub connect_timeout: Duration,
}

impl SshOptions {
    pub fn new(dest: &str) -> SshOptions {
        SshOptions {
            dest: dest.to_string(),
            config_file: None,
            remote_cmd: "vde_cryptcab".into(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a key exchange failed, in words for the log.
#[derive(Debug)]
pub enum SshError {
    /// ssh itself failed: refused, unreachable, unknown host key, …
    Ssh(String),
    /// The server host ran the helper and it, or the server, said no.
    Rejected(String),
    /// Something local (no runtime, no randomness).
    Local(String),
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::Ssh(m) => write!(f, "ssh failed: {m}"),
            SshError::Rejected(m) => write!(f, "key rejected by the server host: {m}"),
            SshError::Local(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SshError {}

/// The error and all its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        let t = t.trim();
        if !t.is_empty() && !s.contains(t) {
            s.push_str(": ");
            s.push_str(t);
        }
        src = c.source();
    }
    s
}

/// Makes a new ticket, gives it to the server on UDP `port` of the ssh
/// destination, and returns it with the server's answer.
pub fn exchange(opts: &SshOptions, port: u16) -> Result<(Ticket, String), SshError> {
    let ticket = Ticket::generate().map_err(|e| SshError::Local(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SshError::Local(format!("cannot start the ssh runtime: {e}")))?;
    // bounded: a stuck ssh must not hold the cable's thread for ever
    let limit = opts.connect_timeout * 3;
    let answer = rt
        .block_on(async { tokio::time::timeout(limit, run(opts, port, &ticket)).await })
        .map_err(|_| {
            SshError::Ssh(format!(
                "{}: no answer within {} s",
                opts.dest,
                limit.as_secs()
            ))
        })??;
    Ok((ticket, answer))
}

async fn run(opts: &SshOptions, port: u16, ticket: &Ticket) -> Result<String, SshError> {
    let mut b = SessionBuilder::default();
    b.known_hosts_check(KnownHosts::Strict)
        .connect_timeout(opts.connect_timeout)
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(std::env::temp_dir());
    if let Some(f) = &opts.config_file {
        b.config_file(f);
    }
    let session = b
        .connect(&opts.dest)
        .await
        .map_err(|e| SshError::Ssh(format!("{}: {}", opts.dest, chain(&e))))?;
    let result = async {
        let mut child = session
            .command(&opts.remote_cmd)
            .arg("--ticket")
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| SshError::Ssh(format!("{}: {}", opts.dest, chain(&e))))?;
        if let Some(mut stdin) = child.stdin().take() {
            let mut line = ticket.line();
            let w = stdin.write_all(line.as_bytes()).await;
            line.zeroize();
            w.map_err(|e| SshError::Ssh(format!("sending the key: {e}")))?;
            let _ = stdin.shutdown().await;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| SshError::Ssh(format!("{}: {}", opts.dest, chain(&e))))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match out.status.code() {
            Some(0) => Ok(stdout),
            Some(127) => Err(SshError::Rejected(format!(
                "{} is not installed on {} (or not in the ssh user's PATH): {stderr}",
                opts.remote_cmd, opts.dest
            ))),
            _ => Err(SshError::Rejected(if stderr.is_empty() {
                format!("{} exited with {}", opts.remote_cmd, out.status)
            } else {
                stderr
                    .strip_prefix("vde_cryptcab: ")
                    .unwrap_or(&stderr)
                    .to_string()
            })),
        }
    }
    .await;
    let _ = session.close().await;
    result
}
