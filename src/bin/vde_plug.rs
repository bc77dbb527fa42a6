//! vde_plug: connects a VDE locator to stdin/stdout (stream framing), to
//! another locator (a cable), or to a command — like vdeplug4's vde_plug.
//!
//! ```text
//! vde_plug [OPTIONS] [VNL]              # VNL <-> stdin/stdout
//! vde_plug [OPTIONS] VNL VNL            # cable between two VNLs
//! vde_plug [OPTIONS] [VNL] = CMD ARGS…  # VNL <-> a command's stdin/stdout
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use vde::cable::{self, Drops};
use vde::vnl::{self, OpenArgs, Plug};

#[derive(Parser, Debug)]
#[command(
    name = "vde_plug",
    version = vde::VERSION,
    about = "Plug into a VDE network: stdin/stdout, a second locator, or a command",
    override_usage = "vde_plug [OPTIONS] [VNL]\n       vde_plug [OPTIONS] VNL VNL\n       vde_plug [OPTIONS] [VNL] = COMMAND [ARGS]...",
    after_help = after_help()
)]
struct Args {
    /// Run in the background.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Write the pid to FILE.
    #[arg(short = 'p', long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Log start and stop (to stderr).
    #[arg(short = 'l', long)]
    log: bool,
    /// Also log IP addresses seen (accepted; not implemented).
    #[arg(short = 'L', long)]
    iplog: bool,
    /// Group of the (first) plug's socket.
    #[arg(short = 'g', long, value_name = "GROUP")]
    group: Option<String>,
    /// Group of the second plug's socket.
    #[arg(short = 'G', long, value_name = "GROUP")]
    group2: Option<String>,
    /// Mode of the (first) plug's socket (octal, default 0700).
    #[arg(short = 'm', long = "mod", value_name = "OCT", value_parser = vde::parse_mode)]
    mode: Option<u32>,
    /// Mode of the second plug's socket.
    #[arg(short = 'M', long = "mod2", value_name = "OCT", value_parser = vde::parse_mode)]
    mode2: Option<u32>,
    /// Port of the (first) switch (obsolete: use VNL[N]).
    #[arg(long, value_name = "N", value_parser = positive)]
    port: Option<i64>,
    /// Port of the second switch.
    #[arg(long, value_name = "N", value_parser = positive)]
    port2: Option<i64>,
    /// Description shown by the switch.
    #[arg(
        short = 'D',
        long = "descr",
        value_name = "DESCR",
        default_value = "vdeplug:"
    )]
    descr: String,
    /// Login-shell mode: `-c vde_plug [ARGS]` (for `ssh host vde_plug`).
    #[arg(short = 'c', value_name = "COMMAND", hide = true)]
    command: Option<String>,
    /// Locators, then optionally `=` and a command.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "VNL"
    )]
    rest: Vec<String>,
}

/// The schemes this build knows (from the registry, so it stays true) and
/// the three forms.
fn after_help() -> String {
    format!(
        "{}\nExamples:\n  \
         vde_plug /tmp/vde.ctl                          the switch <-> stdin/stdout\n  \
         vde_plug /tmp/sw1.ctl vde:///tmp/sw2.ctl       a cable between two switches\n  \
         vde_plug /tmp/vde.ctl = ssh host vde_plug      a cable to the default switch of host\n\n\
         An empty VNL is the default network: {}.",
        vnl::schemes_help(),
        vnl::DEFAULT_NETWORK
    )
}

fn positive(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?}: the port must be a number > 0")),
    }
}

const BROKER: &str = "This is a Virtual Distributed Ethernet (vde) tunnel broker.\n\
This is not a login shell, only vde_plug can be executed";

fn main() {
    vde::init_logging();
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    }
}

fn open(
    vnl: &str,
    descr: &str,
    port: Option<i64>,
    group: &Option<String>,
    mode: Option<u32>,
) -> Result<Arc<dyn Plug>> {
    let args = OpenArgs {
        descr: descr.to_string(),
        port,
        group: group.clone(),
        mode,
    };
    let name = if vnl.is_empty() {
        "default switch"
    } else {
        vnl
    };
    let plug: Arc<dyn Plug> =
        Arc::from(vnl::open(vnl, &args).with_context(|| format!("vde_open {name}"))?);
    OPEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(plug.clone());
    Ok(plug)
}

/// The plugs to close when the process ends (normally or on a signal).
static OPEN: std::sync::Mutex<Vec<Arc<dyn Plug>>> = std::sync::Mutex::new(Vec::new());

fn close_all() {
    // held to the end: a second caller waits for the first to finish
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    for p in open.drain(..) {
        p.close();
    }
    vde::vnl::node::shutdown_all();
}

/// SIGINT/SIGTERM/SIGHUP close the plugs (vxvde's goodbye, node
/// directories) before the process ends, as the C vde_plug does.
fn watch_signals(fd: Option<std::os::fd::OwnedFd>) {
    let Some(fd) = fd else { return };
    std::thread::spawn(move || loop {
        if vde::sys::read_signal(&fd).is_some() {
            close_all();
            std::process::exit(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    });
}

fn run() -> Result<i32> {
    // Block the signals before any thread starts; they are read after the
    // (optional) fork of -d.
    let sigfd = vde::sys::signalfd_for_termination().ok();
    let argv0 = std::env::args().next().unwrap_or_default();
    let mut args = Args::parse();
    if argv0.starts_with('-') {
        println!("{BROKER}");
        return Ok(1);
    }
    if let Some(c) = args.command.take() {
        let words = vde::vnl::cmd::split_words(&c).unwrap_or_default();
        if words.first().map(String::as_str) != Some("vde_plug") {
            println!("{BROKER}");
            return Ok(1);
        }
        let mut again = vec!["vde_plug".to_string()];
        again.extend(words.into_iter().skip(1));
        args = Args::parse_from(again);
    }
    let (vnls, cmd) = match args.rest.iter().position(|a| a == "=") {
        Some(i) => (args.rest[..i].to_vec(), Some(args.rest[i + 1..].to_vec())),
        None => (args.rest.clone(), None),
    };
    if vnls.len() > 2 || (cmd.is_some() && vnls.len() > 1) {
        bail!("usage: vde_plug [OPTIONS] [VNL] | VNL VNL | [VNL] = COMMAND [ARGS]... (see --help)");
    }
    if args.iplog {
        tracing::info!("-L/--iplog is accepted but IP logging is not implemented");
    }
    let first = vnls.first().cloned().unwrap_or_default();
    let plug = open(&first, &args.descr, args.port, &args.group, args.mode)?;
    let second = match vnls.get(1) {
        Some(v) => Some(open(v, &args.descr, args.port2, &args.group2, args.mode2)?),
        None => None,
    };
    if args.daemon {
        vde::sys::daemonize().context("cannot become a daemon")?;
    }
    watch_signals(sigfd);
    if let Some(p) = &args.pidfile {
        let mut f = std::fs::File::create(p)
            .with_context(|| format!("cannot write pid file {}", p.display()))?;
        writeln!(f, "{}", std::process::id())?;
    }
    if args.log {
        eprintln!("vde_plug: START {}", vnls.join(" "));
    }
    let drops = Arc::new(Drops::default());
    let end = match (second, cmd) {
        (Some(b), _) => cable::plug_to_plug(plug, b),
        (None, Some(cmd)) => {
            let Some((prog, cargs)) = cmd.split_first() else {
                bail!("no command after '='");
            };
            let mut child = Command::new(prog)
                .args(cargs)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {prog:?}"))?;
            let (cin, cout) = (
                child.stdin.take().expect("piped"),
                child.stdout.take().expect("piped"),
            );
            let end = cable::plug_to_stream(plug, cout, cin, drops.clone());
            let _ = child.kill();
            let _ = child.wait();
            end
        }
        (None, None) => {
            cable::plug_to_stream(plug, std::io::stdin(), std::io::stdout(), drops.clone())
        }
    };
    if args.log {
        eprintln!("vde_plug: STOP {}", vnls.join(" "));
    }
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    tracing::debug!("cable ended: {end:?}");
    close_all();
    Ok(0)
}
