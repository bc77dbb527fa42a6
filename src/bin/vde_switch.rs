//! vde_switch: a drop-in replacement for the VDE 2 switch.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use vde::core::{mactable, Config};
use vde::frame::Mac;
use vde::server::{setup, Options, Server};
use vde::users;

/// Default control directory (always /tmp/vde.ctl, also for root, so that
/// `qemu -netdev vde,sock=/tmp/vde.ctl` finds it).
const DEFAULT_SOCK: &str = "/tmp/vde.ctl";

#[derive(Parser, Debug)]
#[command(
    name = "vde_switch",
    version = vde::VERSION,
    about = "Virtual Distributed Ethernet switch (drop-in for the C vde_switch)",
    after_help = "Single-dash long options (-sock, -numports) work as with the C switch."
)]
struct Args {
    /// Control directory (the C switch's --sock/--vdesock/--unix).
    #[arg(short = 's', long = "sock", visible_aliases = ["vdesock", "unix"], value_name = "DIR", default_value = DEFAULT_SOCK)]
    sock: PathBuf,
    /// Number of ports: ports 1..N are usable.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 32)]
    numports: u32,
    /// Hub mode: every frame goes to every other port.
    #[arg(short = 'x', long)]
    hub: bool,
    /// Fast spanning tree.
    #[arg(short = 'F', long)]
    fstp: bool,
    /// With -F: speak standard IEEE 802.1w RSTP BPDUs on every port (for
    /// standard bridges; 802.1D bridges are still detected per port).
    #[arg(long)]
    rstp: bool,
    /// With -F: root guard on every port that is not a cable the switch
    /// runs itself (--cable, --listen): hosts cannot become root. Per port:
    /// fstp/rootguard PORT 0/1.
    #[arg(long)]
    guard: bool,
    /// Management socket.
    #[arg(short = 'M', long, value_name = "PATH")]
    mgmt: Option<PathBuf>,
    /// Mode of the management socket (octal).
    #[arg(long, value_name = "OCT", value_parser = vde::parse_mode)]
    mgmtmode: Option<u32>,
    /// Group owner of the management socket.
    #[arg(long, value_name = "GROUP")]
    mgmtgroup: Option<String>,
    /// Mode of the control and data sockets (octal, default 0600).
    #[arg(short = 'm', long = "mode", visible_alias = "mod", value_name = "OCT", value_parser = vde::parse_mode)]
    mode: Option<u32>,
    /// Mode of the control directory (octal, default 02700).
    #[arg(long, value_name = "OCT", value_parser = vde::parse_mode)]
    dirmode: Option<u32>,
    /// Group owner of the control directory and sockets.
    #[arg(short = 'g', long, value_name = "GROUP")]
    group: Option<String>,
    /// Run in the background (no console).
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Write the pid to FILE (must not exist).
    #[arg(short = 'p', long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Startup command script (default ~/.vde2/vde_switch.rc, then /etc/vde2/vde_switch.rc).
    #[arg(short = 'f', long, value_name = "FILE")]
    rcfile: Option<PathBuf>,
    /// Switch MAC address (xx:xx:xx:xx:xx:xx).
    #[arg(long, value_name = "MAC")]
    macaddr: Option<Mac>,
    /// Spanning-tree bridge priority.
    #[arg(long, value_name = "N", value_parser = c_int)]
    priority: Option<i64>,
    /// MAC table buckets (rounded up to a power of two).
    #[arg(long, value_name = "N", default_value_t = 128)]
    hashsize: usize,
    /// Attach a Linux tap interface (repeatable).
    #[arg(short = 't', long, value_name = "IF")]
    tap: Vec<String>,
    /// Accepted and ignored, as by the C switch.
    #[arg(short = 'D', long, value_name = "N", hide = true)]
    debugclients: Option<String>,
    /// Do not read commands from stdin (for service managers).
    #[arg(long)]
    nostdin: bool,
    /// Open a cable to another switch at start (repeatable; any VNL, e.g.
    /// cryptcab://HOST:7667/psk=KEYFILE). It is a port while it is up.
    #[arg(long = "cable", value_name = "VNL")]
    cable: Vec<String>,
    /// Accept cables (repeatable; e.g. cryptcab://:7667/psk=KEYFILE): each
    /// peer gets its own port.
    #[arg(long = "listen", value_name = "VNL")]
    listen: Vec<String>,
}

fn c_int(s: &str) -> Result<i64, String> {
    vde::mgmt::scan_int(s)
        .map(|(v, _)| v)
        .ok_or_else(|| format!("{s:?} is not a number"))
}

const LONG: &[&str] = &[
    "sock",
    "vdesock",
    "unix",
    "numports",
    "hub",
    "fstp",
    "rstp",
    "guard",
    "mgmt",
    "mgmtmode",
    "mgmtgroup",
    "mode",
    "mod",
    "dirmode",
    "group",
    "daemon",
    "pidfile",
    "rcfile",
    "macaddr",
    "priority",
    "hashsize",
    "tap",
    "debugclients",
    "nostdin",
    "cable",
    "listen",
    "help",
    "version",
];

/// getopt_long_only: `-sock X` means `--sock X` when `sock` starts a long
/// option name; otherwise the argument is read as short options.
fn long_only(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            let name = a.strip_prefix('-').unwrap_or("");
            let key = name.split('=').next().unwrap_or("");
            if i > 0
                && !a.starts_with("--")
                && key.len() >= 2
                && LONG.iter().any(|l| l.starts_with(key))
            {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn random_mac() -> Mac {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    Mac([0x00, 0xff, b[0], b[1], b[2], b[3]])
}

fn group(name: &Option<String>) -> Result<Option<u32>> {
    match name {
        None => Ok(None),
        Some(g) => match users::parse_group(g) {
            Some(gid) => Ok(Some(gid)),
            None => bail!("No such group '{g}'"),
        },
    }
}

fn default_rcfile() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".vde2/vde_switch.rc"));
    home.into_iter()
        .chain(std::iter::once(PathBuf::from("/etc/vde2/vde_switch.rc")))
        .find(|p| p.is_file())
}

/// Writes `<pid>\n` to `path`, failing if it exists (as O_EXCL does), and
/// atomically: readers never see an empty file. The content goes to a
/// temporary name first and is then hard-linked into place.
fn write_pidfile(path: &std::path::Path) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    writeln!(f, "{}", std::process::id())?;
    drop(f);
    let r = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    r
}

fn main() {
    vde::init_logging();
    if let Err(e) = run() {
        eprintln!("vde_switch: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse_from(long_only(std::env::args()));
    if args.numports < 1 || args.numports > vde::core::MAX_PORTS {
        bail!("--numports must be from 1 to {}", vde::core::MAX_PORTS);
    }
    let (hashsize, rounded) = mactable::round_hash_size(args.hashsize);
    if rounded {
        eprintln!(
            "vde_switch: Hash size must be a power of 2. {} rounded to {hashsize}",
            args.hashsize
        );
    }
    let (ctl_mode, dir_mode) = setup::derive_modes(args.mode, args.dirmode);
    let pidfile = args.pidfile.as_ref().map(|p| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.clone())
    });
    let opts = Options {
        ctl_dir: args.sock.clone(),
        ctl_mode,
        dir_mode,
        group: group(&args.group)?,
        mgmt: args.mgmt.clone(),
        mgmt_mode: args.mgmtmode.unwrap_or(0o600),
        mgmt_group: group(&args.mgmtgroup)?,
        console: !args.daemon && !args.nostdin,
        rcfile: args.rcfile.clone().or_else(default_rcfile),
        taps: args.tap.clone(),
        cables: args.cable.clone(),
        listens: args.listen.clone(),
        signals: true,
        config: Config {
            numports: args.numports,
            hub: args.hub,
            hashsize,
            mac: args.macaddr.unwrap_or_else(random_mac),
            priority: args.priority.map_or(0x8000, |p| (p & 0xffff) as u16),
            fstp: args.fstp,
            rstp: args.rstp,
            guard: args.guard,
        },
    };
    if let Some(rc) = &opts.rcfile {
        if !rc.is_file() {
            bail!("cannot read rc file {}", rc.display());
        }
    }
    let mut server = Server::bind(opts).context("cannot start the switch")?;
    // Cables open after the fork into the background: they may start
    // threads, which a fork would lose. The parent waits to hear whether
    // they opened, so their errors still reach this terminal.
    let ready = if args.daemon {
        Some(vde::sys::daemonize_ready().context("cannot become a daemon")?)
    } else {
        None
    };
    let started = server
        .open_cables()
        .context("cannot start the switch")
        .and_then(|()| match &pidfile {
            Some(p) => {
                write_pidfile(p).with_context(|| format!("cannot create pid file {}", p.display()))
            }
            None => Ok(()),
        });
    match (started, ready) {
        (Ok(()), Some(ready)) => ready.ok(),
        (Ok(()), None) => {}
        (Err(e), Some(ready)) => {
            ready.fail(&format!("vde_switch: {e:#}"));
            // dropping the server removes what it made; the parent said why
            drop(server);
            std::process::exit(1);
        }
        (Err(e), None) => return Err(e),
    }
    let r = server.run();
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    r.context("switch loop failed")
}
