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
use vde_crypto::PublicKey;

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
    /// The program run on the server host is not our vde_cryptcab (it
    /// does not know `--ticket`): what it is and what to do.
    NotOurs(String),
    /// Something local (no runtime, no randomness).
    Local(String),
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::Ssh(m) => write!(f, "ssh failed: {m}"),
            SshError::Rejected(m) => write!(f, "key rejected by the server host: {m}"),
            SshError::NotOurs(m) => write!(f, "{m}"),
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

/// What a key exchange yields: the ticket, the server's static key (as
/// the ssh login authenticated it) and the rest of its answer.
pub type Exchanged = (Ticket, PublicKey, String);

/// Makes a new ticket for the client identity `client`, gives it to the
/// server on UDP `port` of the ssh destination, and returns it with the
/// server's static key and answer.
pub fn exchange(opts: &SshOptions, port: u16, client: PublicKey) -> Result<Exchanged, SshError> {
    let ticket = Ticket::generate(client).map_err(|e| SshError::Local(e.to_string()))?;
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
    let (key, text) = answer.split_once(' ').unwrap_or((&answer, ""));
    let server = PublicKey::from_hex(key).ok_or_else(|| {
        SshError::Rejected(format!(
            "{} did not answer with its identity (an older vde_cryptcab there?): {answer:?}",
            opts.dest
        ))
    })?;
    Ok((ticket, server, text.to_string()))
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
            _ if not_our_helper(&stdout, &stderr).is_some() => Err(SshError::NotOurs(
                not_ours_message(&opts.remote_cmd, &opts.dest, &stdout, &stderr),
            )),
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

/// What ran on the server host instead of our helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// The Debian (C) vde_cryptcab: getopt's complaint and its usage text.
    DebianC,
    /// Some program that does not know `--ticket` (an old vde_cryptcab of
    /// ours, or another program of that name).
    Unknown,
}

/// Whether the remote command's output (it failed) says that it does not
/// know our `--ticket` option, and what it is.
pub fn not_our_helper(stdout: &str, stderr: &str) -> Option<Foreign> {
    let text = format!("{stderr}\n{stdout}");
    // the C tool's usage line: "Usage: vde_cryptcab [-s socketname] [-c
    // [remoteuser@]remotehost[:remoteport]] ..."
    let c_usage = text.lines().any(|l| {
        l.trim_start().starts_with("Usage:")
            && l.contains("vde_cryptcab")
            && l.contains("socketname")
            && l.contains("remoteuser@")
    });
    if c_usage {
        return Some(Foreign::DebianC);
    }
    let refused = text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("--ticket")
            && [
                "unrecognized",
                "unrecognised",
                "unknown",
                "unexpected",
                "invalid",
            ]
            .iter()
            .any(|w| l.contains(w))
    });
    refused.then_some(Foreign::Unknown)
}

/// The message for a remote command that is not our helper: what ran,
/// why, and the two ways out.
pub fn not_ours_message(remote_cmd: &str, dest: &str, stdout: &str, stderr: &str) -> String {
    let host = dest.rsplit_once('@').map_or(dest, |(_, h)| h);
    let what = if remote_cmd.contains('/') {
        format!("{remote_cmd} on {host}")
    } else {
        format!("the {remote_cmd} that ssh finds in the PATH on {host}")
    };
    // a non-interactive ssh session reads no ~/.profile: its PATH is the
    // system's, where /usr/bin comes before ~/.cargo/bin (if that is there)
    let fix = if remote_cmd.contains('/') {
        format!(
            "give the full path of ours with --remote-cmd PATH, or install ours on {host} \
             and leave --remote-cmd out"
        )
    } else {
        format!(
            "give the full path of ours on {host} with --remote-cmd PATH, or install ours \
             on {host} first in the PATH of a non-interactive ssh session (e.g. in \
             /usr/local/bin, which comes before /usr/bin; ~/.cargo/bin is not in it)"
        )
    };
    match not_our_helper(stdout, stderr) {
        Some(Foreign::DebianC) => format!(
            "{what} is the Debian (C) vde_cryptcab, which has no --ticket to receive \
             the key: {fix}"
        ),
        _ => {
            let said = stderr
                .lines()
                .chain(stdout.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            format!(
                "{what} does not know --ticket (it said: {said}); it is not our \
                 vde_cryptcab, or an old one: {fix}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Debian vde_cryptcab (vde2 2.3.3) prints for `--ticket -p
    /// 7667` (exit status 1, all on stderr).
    const DEBIAN: &str = "vde_cryptcab: unrecognized option '--ticket'\n\
        Usage: vde_cryptcab [-s socketname] [-c [remoteuser@]remotehost[:remoteport]] \
        [-p localport] [-P pre-shared/key/path] [-d] [-x] [-v]\n";

    #[test]
    fn the_debian_vde_cryptcab_is_recognised() {
        assert_eq!(not_our_helper("", DEBIAN), Some(Foreign::DebianC));
        // run by its full path, the usage names it so
        let full = DEBIAN.replace("vde_cryptcab", "/usr/bin/vde_cryptcab");
        assert_eq!(not_our_helper("", &full), Some(Foreign::DebianC));
        // an older getopt quotes with a backquote
        let old = DEBIAN.replace("'--ticket'", "`--ticket'");
        assert_eq!(not_our_helper("", &old), Some(Foreign::DebianC));
        // printed on stdout instead
        assert_eq!(not_our_helper(DEBIAN, ""), Some(Foreign::DebianC));
    }

    #[test]
    fn other_programs_without_ticket_are_recognised() {
        let clap = "error: unexpected argument '--ticket' found\n\nUsage: vde_cryptcab [OPTIONS]";
        assert_eq!(not_our_helper("", clap), Some(Foreign::Unknown));
        let getopt = "foo: unrecognized option '--ticket'\nTry 'foo --help'";
        assert_eq!(not_our_helper("", getopt), Some(Foreign::Unknown));
    }

    #[test]
    fn our_own_refusals_are_not_taken_for_a_foreign_program() {
        for err in [
            "vde_cryptcab: uid 4242 may not attach cables to the server on UDP port 7667",
            "vde_cryptcab: no vde_cryptcab server on UDP port 7667",
            "vde_cryptcab: cable id 0011223344556677 is already in use",
            "vde_cryptcab: bad ticket line",
            "",
        ] {
            assert_eq!(not_our_helper("", err), None, "{err}");
        }
    }

    #[test]
    fn the_message_names_the_program_and_both_fixes() {
        let m = not_ours_message("vde_cryptcab", "alice@srv", "", DEBIAN);
        assert!(
            m.starts_with(
                "the vde_cryptcab that ssh finds in the PATH on srv is the Debian (C) \
                 vde_cryptcab"
            ),
            "{m}"
        );
        assert!(
            m.contains("--remote-cmd PATH") && m.contains("install ours"),
            "{m}"
        );
        assert!(!m.contains("Usage"), "{m}");
        let m = not_ours_message("/usr/bin/vde_cryptcab", "srv", "", DEBIAN);
        assert!(
            m.starts_with("/usr/bin/vde_cryptcab on srv is the Debian (C) vde_cryptcab"),
            "{m}"
        );
        let m = not_ours_message(
            "/opt/x/vde_cryptcab",
            "srv",
            "",
            "error: unexpected argument '--ticket' found\n\nUsage: vde_cryptcab [OPTIONS]",
        );
        assert!(
            m.contains(
                "does not know --ticket (it said: error: unexpected argument '--ticket' found)"
            ),
            "{m}"
        );
        assert!(m.contains("--remote-cmd PATH"), "{m}");
    }
}
