//! vde_cryptcab: authenticated, encrypted UDP cables between vde switches,
//! with the C tool's command line.
//!
//! ```text
//! vde_cryptcab [-s SOCK] [-p PORT] [-P KEYFILE]                       # server
//! vde_cryptcab [-s SOCK] [-p PORT] -c [USER@]HOST[:PORT] [-P KEYFILE] # client
//! ```
//!
//! Without -P the client hands a fresh key to the server through ssh
//! (`vde_cryptcab --ticket` runs on the server host); see README.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser};

use vde::cryptcab::relay;
use vde::vnl::cryptcab as vnl_cryptcab;
use vde_overlay::cryptcab::client::{ClientError, ClientKeys};
use vde_overlay::cryptcab::dial::{Dial, DialOptions};
use vde_overlay::cryptcab::listen::{Listen, ListenOptions};
use vde_overlay::cryptcab::server::ServerKeys;
use vde_overlay::cryptcab::ssh::SshOptions;
use vde_overlay::cryptcab::ticket::{self, Allow};
use vde_overlay::cryptcab::{id_hex, stats_line, Config, Control, Psk, DEFAULT_PORT};

#[derive(Parser, Debug)]
#[command(
    name = "vde_cryptcab",
    version = vde::VERSION,
    about = "Encrypted, authenticated UDP cables between vde switches",
    override_usage = "vde_cryptcab [-s SOCK] [-p PORT] [-P KEYFILE]                        (server)\n       vde_cryptcab [-s SOCK] [-p PORT] -c [USER@]HOST[:PORT] [-P KEYFILE] [-k]  (client)"
)]
struct Args {
    /// The switch (or VNL) cables plug into.
    #[arg(short = 's', long = "sock", visible_aliases = ["vdesock", "unix"], value_name = "SOCK", default_value = DEFAULT_SOCK)]
    sock: String,
    /// Local UDP port, on both sides.
    #[arg(short = 'p', long = "localport", value_name = "PORT", default_value_t = DEFAULT_PORT, value_parser = udp_port)]
    port: u16,
    /// Connect to a server (client mode); the UDP port defaults to 7667.
    #[arg(short = 'c', long = "connect", value_name = "[USER@]HOST[:PORT]")]
    connect: Option<String>,
    /// Pre-shared key file instead of the ssh exchange: at least 32 random
    /// bytes, mode 0600 (head -c 32 /dev/urandom > FILE; chmod 600 FILE).
    #[arg(short = 'P', long = "preshared", value_name = "KEYFILE")]
    preshared: Option<PathBuf>,
    /// Refused: cables are always encrypted (use udp:// for a plain cable).
    #[arg(short = 'x', long = "noencrypt")]
    noencrypt: bool,
    /// Client only: accepted for compatibility (keepalives are always on).
    #[arg(short = 'k', long = "keepalive")]
    keepalive: bool,
    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// More log output (-v, -vv).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// Server: also accept cables from this user's ssh logins (repeatable).
    #[arg(long = "allow-user", value_name = "USER")]
    allow_user: Vec<String>,
    /// Server: also accept cables from members of this group (repeatable).
    #[arg(long = "allow-group", value_name = "GROUP")]
    allow_group: Vec<String>,
    /// Client: ssh config file to use instead of ~/.ssh/config (ssh -F).
    #[arg(long = "ssh-config", value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Client: the program ssh runs on the server host (the full path of
    /// ours where the Debian vde_cryptcab comes first in ssh's PATH there).
    #[arg(
        long = "remote-cmd",
        value_name = "CMD",
        default_value = "vde_cryptcab"
    )]
    remote_cmd: String,
    /// AEAD a client proposes: chacha20-poly1305 (the default), aes-256-gcm,
    /// or auto (AES-256-GCM where the CPU has AES instructions). A server
    /// accepts either unless given a name, which restricts it to that one.
    #[arg(long = "cipher", value_name = "NAME")]
    cipher: Option<String>,
    /// Declare a silent cable down after this many seconds.
    #[arg(long = "dead-after", value_name = "SECONDS", default_value_t = 1.0)]
    dead_after: f64,
    /// Rekey after this many seconds.
    #[arg(long = "rekey-after", value_name = "SECONDS", default_value_t = 120.0)]
    rekey_after: f64,
    /// The path MTU between the hosts: TCP SYNs leaving through the cable
    /// get an MSS that fits it (as tinc's ClampMSS); 0 turns that off.
    #[arg(long = "mtu", value_name = "BYTES", default_value_t = vde_overlay::cryptcab::DEFAULT_MTU)]
    mtu: u16,
    /// Write the pid to FILE.
    #[arg(long = "pidfile", value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// This node's long-term key (made on first use, mode 0600). Default:
    /// $VDE_IDENTITY, else ~/.config/vde/identity.
    #[arg(long = "identity", value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Client with -P: the fingerprint (SHA256:…) the server's identity
    /// must have. Without it the first answer from a holder of the key
    /// file is trusted. (With ssh, ssh vouches for the server's identity.)
    #[arg(long = "pin", value_name = "FINGERPRINT")]
    pin: Option<String>,
    /// Print this node's identity fingerprint (making the identity if
    /// there is none) and exit.
    #[arg(long = "fingerprint")]
    fingerprint: bool,
    /// Helper run through ssh on the server host: pass the key read from
    /// stdin to the server on -p.
    #[arg(long = "ticket", hide = true)]
    ticket: bool,
}

/// The switch of the C tool's default.
const DEFAULT_SOCK: &str = "/tmp/vde.ctl";

/// A UDP port: 1..65535, said so when it is out of range.
fn udp_port(p: &str) -> Result<u16, String> {
    vnl_cryptcab::parse_port(p, false)
}

/// `[user@]host[:port]`, with `[v6]:port` or a bare IPv6 literal (the
/// `cryptcab://` locator's grammar).
fn split_connect(s: &str) -> Result<(Option<String>, String, u16)> {
    let (user, host, port) = vnl_cryptcab::split_dest(s).map_err(|e| {
        if e.starts_with("port ") {
            anyhow::anyhow!("bad UDP port in -c {s}: {e}")
        } else {
            anyhow::anyhow!("-c {s}: {e}")
        }
    })?;
    let host = host.with_context(|| format!("no host in -c {s}"))?;
    Ok((user, host, port))
}

fn config(args: &Args) -> Result<Config> {
    vnl_cryptcab::config(args.cipher.as_deref(), args.dead_after, args.rekey_after).map_err(|e| {
        let e = e
            .replace("unknown cipher", "unknown --cipher")
            .replace("the dead-after time", "--dead-after")
            .replace("the rekey time", "--rekey-after");
        anyhow::anyhow!(e)
    })
}

fn read_psk(path: &std::path::Path) -> Result<Psk> {
    Ok(vnl_cryptcab::read_psk(path)?)
}

/// SIGTERM/SIGINT/SIGHUP stop the cable (clients say goodbye); SIGUSR1
/// logs the counters.
fn watch_signals(fd: Option<std::os::fd::OwnedFd>, ctl: Arc<Control>) {
    let Some(fd) = fd else { return };
    std::thread::spawn(move || loop {
        match vde::sys::read_signal(&fd) {
            Some(s) if s == libc::SIGUSR1 as u32 => ctl.report.store(true, Ordering::Relaxed),
            Some(_) => ctl.stop.store(true, Ordering::Relaxed),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    });
}

fn run() -> Result<i32> {
    let sigfd =
        vde::sys::signalfd(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1]).ok();
    let args = Args::parse();
    if args.ticket {
        return Ok(
            match ticket::hand_over(args.port, std::io::stdin().lock()) {
                Ok(text) => {
                    println!("{text}");
                    0
                }
                Err(e) => {
                    eprintln!("vde_cryptcab: {e}");
                    1
                }
            },
        );
    }
    vde::init_logging_at(match args.verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    });
    let identity = vde_overlay::cryptcab::identity::load_or_create(args.identity.as_deref())
        .context("identity")?;
    if args.fingerprint {
        println!("{}", identity.public().fingerprint());
        return Ok(0);
    }
    let pin = match &args.pin {
        None => None,
        Some(_) if args.connect.is_none() || args.preshared.is_none() => {
            bail!("--pin is for a client with -P (ssh pins the server's identity itself)")
        }
        Some(p) => Some(
            vde_overlay::cryptcab::Fingerprint::parse(p).with_context(|| {
                format!("--pin {p}: not a fingerprint (SHA256: and 43 base64 characters)")
            })?,
        ),
    };
    if args.noencrypt {
        bail!("-x (no encryption) is not supported: vde_cryptcab always encrypts; use a udp:// cable (vde_plug) for an unencrypted one");
    }
    if args.keepalive && args.connect.is_none() {
        bail!("-k/--keepalive is for clients (-c) only");
    }
    let cfg = config(&args)?;
    // keys live in this process: keep them out of core files
    vde_overlay::sys::no_core_dumps();
    let psk = args.preshared.as_deref().map(read_psk).transpose()?;
    // fail early if the switch is not there (without taking a port: ports
    // appear only with cables)
    check_switch(&args.sock)?;
    let ctl = Arc::new(Control::default());
    if args.daemon {
        vde::sys::daemonize().context("cannot become a daemon")?;
    }
    watch_signals(sigfd, ctl.clone());
    if let Some(p) = &args.pidfile {
        write_pidfile(p).with_context(|| format!("cannot write pid file {}", p.display()))?;
    }
    match &args.connect {
        Some(c) => {
            let (user, host, port) = split_connect(c)?;
            let keys = match psk {
                Some(psk) => ClientKeys::Psk { psk, pin },
                None => {
                    let dest = match &user {
                        Some(u) => format!("{u}@{host}"),
                        None => host.clone(),
                    };
                    let mut o = SshOptions::new(&dest);
                    o.config_file = args.ssh_config.clone();
                    o.remote_cmd = args.remote_cmd.clone();
                    ClientKeys::Ssh(o)
                }
            };
            let opts = DialOptions {
                host,
                port,
                local_port: args.port,
                keys,
                identity,
                config: cfg,
                mtu: args.mtu,
            };
            let mut cable = match Dial::open(opts) {
                Ok(c) => c,
                Err(e @ ClientError::Ssh(_)) => {
                    eprintln!("vde_cryptcab: {e}");
                    return Ok(253);
                }
                Err(e) => return Err(e.into()),
            };
            tracing::info!(
                "vde_cryptcab client: cable {} to {} for switch {}",
                id_hex(&cable.key_id()),
                cable.server(),
                local_name(&args.sock)
            );
            relay(&mut cable, &args.sock, &ctl, |c| stats_line(c.stats()))?;
            Ok(0)
        }
        None => {
            let keys = match psk {
                Some(p) => ServerKeys::Psk(p),
                None => {
                    let mut allow = Allow::default();
                    for u in &args.allow_user {
                        allow.uids.push(
                            vde::users::parse_user(u)
                                .with_context(|| format!("--allow-user {u}: no such user"))?,
                        );
                    }
                    for g in &args.allow_group {
                        allow.gids.push(
                            vde::users::parse_group(g)
                                .with_context(|| format!("--allow-group {g}: no such group"))?,
                        );
                    }
                    ServerKeys::Ssh {
                        allow,
                        // supplementary groups; the primary one comes from
                        // the helper's credentials
                        groups_of: Box::new(|uid| {
                            let mut g = vde::users::groups_of(uid, u32::MAX);
                            g.retain(|&x| x != u32::MAX);
                            g
                        }),
                    }
                }
            };
            let opts = ListenOptions {
                port: args.port,
                keys,
                identity,
                config: cfg,
                mtu: args.mtu,
            };
            let mut cable = Listen::open(opts)?;
            tracing::info!(
                "vde_cryptcab server on UDP port {} for switch {}",
                cable.port(),
                local_name(&args.sock)
            );
            relay(&mut cable, &args.sock, &ctl, |c| stats_line(c.stats()))?;
            Ok(0)
        }
    }
}

/// A plain control directory must hold a `ctl` socket; other VNLs are
/// checked when the first cable opens them.
fn check_switch(sock: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Some((scheme, _)) = sock.split_once("://") {
        // a cable's port must go away when the cable does; only a switch
        // (vde://) ends a port at once when it is closed
        if scheme != "vde" {
            bail!("-s {sock}: vde_cryptcab plugs into a switch: give its directory or a vde:// locator");
        }
        return Ok(());
    }
    let dir = local_name(sock).split('[').next().unwrap_or_default();
    let ctl = std::path::Path::new(dir).join("ctl");
    match std::fs::metadata(&ctl) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => bail!(
            "cannot attach to switch {dir}: {} is not a socket",
            ctl.display()
        ),
        Err(e) => bail!("cannot attach to switch {dir}: {}: {e}", ctl.display()),
    }
}

fn local_name(sock: &str) -> &str {
    if sock.is_empty() {
        DEFAULT_SOCK
    } else {
        sock
    }
}

/// Writes `<pid>\n` to `path` through a temporary file that is created,
/// never followed: O_CREAT|O_EXCL|O_NOFOLLOW on a name with the pid in it
/// (a symlink planted there is refused, not written through), then
/// renamed into place.
fn write_pidfile(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&tmp)?;
    let r = writeln!(f, "{}", std::process::id()).and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("vde_cryptcab: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_forms() {
        let c = |s| split_connect(s).unwrap();
        assert_eq!(c("host"), (None, "host".into(), 7667));
        assert_eq!(c("u@host:12000"), (Some("u".into()), "host".into(), 12000));
        assert_eq!(c("::1"), (None, "::1".into(), 7667));
        assert_eq!(c("u@[::1]:9"), (Some("u".into()), "::1".into(), 9));
        assert_eq!(c("[fe80::1]"), (None, "fe80::1".into(), 7667));
        assert!(split_connect("host:x").is_err());
        let e = split_connect("host:70000").unwrap_err().to_string();
        assert!(e.contains("port 70000: must be 1..65535"), "{e}");
        assert!(split_connect("host:0").is_err());
        assert!(split_connect("host:").is_err());
        assert!(split_connect("@:1").is_err());
        assert!(split_connect("[::1").is_err());
    }
}
