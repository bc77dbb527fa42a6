//! wirefilter: a cable that loses, delays, duplicates, shapes and corrupts
//! frames, drop-in for the VDE 2 tool. Between two switches:
//! `wirefilter -v SW1:SW2 -l 5 -d 20` (or `wirefilter SW1 SW2`), or in a
//! dpipe chain: `dpipe vde_plug SW1 = wirefilter -d 20 = vde_plug SW2`.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use vde::vnl::{self, OpenArgs, Plug};
use vde::wirefilter::shell::{self, Input, Output};
use vde::wirefilter::{console, Channel};

#[derive(Parser, Debug)]
#[command(name = "wirefilter", version = vde::VERSION, about = "Wire emulator for VDE cables")]
struct Args {
    /// Management commands to run at start.
    #[arg(short = 'f', long, value_name = "FILE")]
    rcfile: Option<PathBuf>,
    /// Loss percentage.
    #[arg(short = 'l', long, value_name = "VALUE", allow_hyphen_values = true)]
    loss: Option<String>,
    /// Mean length of lost bursts (Gilbert model).
    #[arg(short = 'L', long, value_name = "VALUE")]
    lostburst: Option<String>,
    /// Delay in ms.
    #[arg(short = 'd', long, value_name = "VALUE")]
    delay: Option<String>,
    /// Duplication percentage.
    #[arg(short = 'D', long, value_name = "VALUE")]
    dup: Option<String>,
    /// Channel bandwidth in bytes/s.
    #[arg(
        short = 'b',
        long = "band",
        visible_alias = "bandwidth",
        value_name = "VALUE"
    )]
    band: Option<String>,
    /// Interface speed in bytes/s.
    #[arg(short = 's', long, value_name = "VALUE")]
    speed: Option<String>,
    /// Channel buffer size in bytes.
    #[arg(
        short = 'c',
        long = "chanbufsize",
        visible_alias = "capacity",
        value_name = "VALUE"
    )]
    chanbufsize: Option<String>,
    /// Damaged bits per MiB.
    #[arg(short = 'n', long, value_name = "VALUE")]
    noise: Option<String>,
    /// MTU in bytes (longer frames are dropped).
    #[arg(short = 'm', long, value_name = "VALUE")]
    mtu: Option<String>,
    /// Allow reordering.
    #[arg(short = 'N', long)]
    nofifo: bool,
    /// Management socket.
    #[arg(short = 'M', long, value_name = "PATH")]
    mgmt: Option<PathBuf>,
    /// Mode of the management socket (octal, default 0700).
    #[arg(long, value_name = "OCT", value_parser = vde::parse_mode)]
    mgmtmode: Option<u32>,
    /// Two switches, `LEFT:RIGHT` (`-` = stdin/stdout for that side).
    #[arg(short = 'v', long = "vde-plug", value_name = "VNL:VNL")]
    vde_plug: Option<String>,
    /// Run in the background.
    #[arg(long)]
    daemon: bool,
    /// Write the pid to FILE.
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Send `ID DIR LEN` datagrams per packet to this unix socket.
    #[arg(long, value_name = "PATH")]
    blink: Option<PathBuf>,
    /// Id in blink messages (default: the pid).
    #[arg(long, value_name = "ID")]
    blinkid: Option<String>,
    /// Seed of the random generator (default: from the clock).
    #[arg(long, value_name = "N", hide = true)]
    seed: Option<u64>,
    /// Left and right locators (instead of -v).
    #[arg(value_name = "VNL")]
    vnls: Vec<String>,
}

fn main() {
    // info by default: why the filter stopped is worth a line
    vde::init_logging_at(tracing::Level::INFO);
    if let Err(e) = run() {
        eprintln!("wirefilter: {e:#}");
        std::process::exit(1);
    }
}

fn plug(vnl: &str) -> Result<Arc<dyn Plug>> {
    let args = OpenArgs {
        descr: "vde_crosscable".into(),
        ..OpenArgs::default()
    };
    Ok(Arc::from(
        vnl::open(vnl, &args).with_context(|| format!("vde_open {vnl}"))?,
    ))
}

/// The fd named by a dpipe environment variable, reopened through /proc.
fn env_fd(var: &str) -> Option<File> {
    let n: u32 = std::env::var(var).ok()?.trim().parse().ok()?;
    let path = format!("/proc/self/fd/{n}");
    let f = std::fs::OpenOptions::new()
        .read(var.ends_with("STDIN"))
        .write(var.ends_with("STDOUT"))
        .open(path)
        .ok()?;
    Some(f)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let sides: Option<(String, String)> = match (&args.vde_plug, args.vnls.as_slice()) {
        (Some(v), []) => {
            let (l, r) = v.split_once(':').context("-v takes LEFT:RIGHT")?;
            Some((l.to_string(), r.to_string()))
        }
        (None, [l, r]) => Some((l.clone(), r.clone())),
        (None, []) => None,
        _ => bail!("give the two sides either as -v LEFT:RIGHT or as two locators"),
    };
    let side = |v: &str| -> Result<Option<Arc<dyn Plug>>> {
        if v == "-" {
            Ok(None)
        } else {
            plug(v).map(Some)
        }
    };
    let stdin_in = || Input::Stream(Box::new(std::io::stdin()), "stdin");
    let stdout_out = || Output::Stream(Box::new(std::io::stdout()));
    let (lr, rl, console) = match sides {
        Some((l, r)) => {
            let (lp, rp) = (side(&l)?, side(&r)?);
            let lin = lp.clone().map_or_else(stdin_in, Input::Plug);
            let lout = lp.map_or_else(stdout_out, Output::Plug);
            let rin = rp.clone().map_or_else(stdin_in, Input::Plug);
            let rout = rp.map_or_else(stdout_out, Output::Plug);
            let console = l != "-" && r != "-";
            ((lin, rout), Some((rin, lout)), console)
        }
        None => {
            // dpipe: stdin/stdout, plus the other side on ALTERNATE_* fds
            match (env_fd("ALTERNATE_STDIN"), env_fd("ALTERNATE_STDOUT")) {
                (Some(ain), Some(aout)) => (
                    (stdin_in(), Output::Stream(Box::new(aout))),
                    Some((
                        Input::Stream(Box::new(ain), "ALTERNATE_STDIN"),
                        stdout_out(),
                    )),
                    false,
                ),
                _ => ((stdin_in(), stdout_out()), None, false),
            }
        }
    };
    // Check the CLI values now, so a typo is an error at start.
    let mut probe = Channel::new(
        vde::wirefilter::Mode::Bidirectional,
        0,
        std::time::Instant::now(),
    );
    let mut rc = Vec::new();
    for (cmd, v) in [
        ("loss", &args.loss),
        ("lostburst", &args.lostburst),
        ("delay", &args.delay),
        ("dup", &args.dup),
        ("bandwidth", &args.band),
        ("speed", &args.speed),
        ("chanbufsize", &args.chanbufsize),
        ("noise", &args.noise),
        ("mtu", &args.mtu),
    ] {
        if let Some(v) = v {
            let line = format!("{cmd} {v}");
            let (reply, _) = console::execute(
                &mut probe,
                &mut console::Session::default(),
                std::time::Instant::now(),
                &line,
            );
            if !reply.starts_with("1000") {
                bail!("bad value for {cmd}: {v:?}");
            }
            rc.push(line);
        }
    }
    if args.nofifo {
        rc.push("fifo 0".into());
    }
    if let Some(user) = &args.rcfile {
        if !user.is_file() {
            bail!("cannot read rc file {}", user.display());
        }
        rc.push(format!("load {}", user.display()));
    }
    // Bound before the fork of --daemon, so that a refusal is seen.
    let mgmt = match &args.mgmt {
        Some(p) => Some(
            shell::bind_mgmt(p, args.mgmtmode.unwrap_or(0o700))
                .with_context(|| format!("cannot bind management socket {}", p.display()))?,
        ),
        None => None,
    };
    if args.daemon {
        vde::sys::daemonize().context("cannot become a daemon")?;
    }
    if let Some(p) = &args.pidfile {
        let mut f =
            File::create(p).with_context(|| format!("cannot write pid file {}", p.display()))?;
        writeln!(f, "{}", std::process::id())?;
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id())
    });
    let cfg = shell::Config {
        lr,
        rl,
        mgmt,
        console: console && !args.daemon,
        startup: rc,
        blink: args.blink.clone().map(|p| {
            let id = args
                .blinkid
                .clone()
                .unwrap_or_else(|| format!("{:06}", std::process::id()));
            (p, id)
        }),
    };
    let r = shell::run(cfg, seed);
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    r.context("wirefilter loop failed")
}
