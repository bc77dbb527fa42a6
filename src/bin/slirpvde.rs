//! slirpvde: plugs a slirp router into a switch (Debian vde2's tool, with
//! slirpvde6's IPv6 options): DHCP for the guests, NAT of their TCP and
//! UDP to the host's network with user privileges, a DNS forwarder, and
//! host ports forwarded into the virtual network. Needs the `slirp` cargo
//! feature; without it the tool says so.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

use vde::slirp::options::{self, IpNet, Settings};
use vde::slirp::{self, Port, Router};
use vde::vnl::{self, OpenArgs, Plug};

#[derive(Parser, Debug)]
#[command(
    name = "slirpvde",
    version = vde::VERSION,
    about = "Connect a slirp router (DHCP, NAT, DNS, port forwards) to a VDE switch",
    after_help = "Examples:\n  slirpvde -s /tmp/vde.ctl -D                    DHCP on 10.0.2.0/24, router 10.0.2.2, DNS 10.0.2.3\n  slirpvde -s /tmp/vde.ctl -D -L 2222:10.0.2.15:22   host port 2222 to the first guest's ssh\n  slirpvde -s /tmp/vde.ctl -D -H 10.0.2.2/24 -H fd00::2/64   IPv4 and IPv6 (router advertisements)\n  dpipe vde_plug = ssh host slirpvde -           a remote host's network, over ssh"
)]
struct Args {
    /// Switch (control directory or VNL); `-` is stdin/stdout (2-byte length framing).
    #[arg(short = 's', long = "sock", visible_aliases = ["socket", "vdesock", "unix"], value_name = "SWITCH", help = sock_help())]
    sock: Option<String>,
    /// Switch, as a positional argument.
    #[arg(value_name = "SWITCH", conflicts_with = "sock")]
    switch: Option<String>,
    /// The router's address and subnet (default 10.0.2.2/24); repeat to mix IPv4 and IPv6 (slirpvde6). A host part of 0 means .2.
    #[arg(
        short = 'H',
        long = "host",
        visible_alias = "network",
        short_alias = 'n',
        value_name = "ADDR[/LEN]"
    )]
    host: Vec<String>,
    /// The DNS forwarder's address (default: network|3); one per family.
    #[arg(
        short = 'N',
        long = "dns",
        visible_alias = "nameserver",
        value_name = "ADDR"
    )]
    dns: Vec<IpAddr>,
    /// Serve DHCP (off by default), from START (default network|15).
    #[arg(short = 'D', long = "dhcp", value_name = "START", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    dhcp: Option<String>,
    /// Forward host TCP port HOSTPORT to GUESTADDR:GUESTPORT ([HOSTADDR:] first to bind one address; IPv6 in brackets); repeatable.
    #[arg(
        short = 'L',
        long = "tcp-forward",
        value_name = "HOSTPORT:GUESTADDR:GUESTPORT"
    )]
    tcp_forward: Vec<String>,
    /// Forward host UDP port HOSTPORT to GUESTADDR:GUESTPORT; repeatable.
    #[arg(
        short = 'U',
        long = "udp-forward",
        value_name = "HOSTPORT:GUESTADDR:GUESTPORT"
    )]
    udp_forward: Vec<String>,
    /// Join TCP PORT of the virtual network's address .4 ([ADDR:] to choose another) to a host unix stream socket (`-x 6000:/tmp/.X11-unix/X0`); repeatable.
    #[arg(short = 'x', long = "unix-forward", value_name = "PORT:PATH")]
    unix_forward: Vec<String>,
    /// Read-only TFTP server on this directory.
    #[arg(short = 't', long = "tftp", value_name = "DIR")]
    tftp: Option<String>,
    /// Boot file name given by DHCP (with -t).
    #[arg(short = 'b', long = "bootfile", value_name = "FILE")]
    bootfile: Option<String>,
    /// Announce IPv6 with router advertisements (slirpvde6): fd00::2/64 unless -H gives an IPv6 prefix.
    #[arg(short = 'r', long = "router-advertisements")]
    ra: bool,
    /// Refuse every connection of the guests to the outside (port forwards still work).
    #[arg(long)]
    restricted: bool,
    /// Guests cannot reach the host's 127.0.0.1 through the router's address.
    #[arg(long = "no-host-loopback")]
    no_host_loopback: bool,
    /// MTU of the virtual interface.
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// Switch port (> 0).
    #[arg(short = 'P', long, value_name = "N")]
    port: Option<i64>,
    /// Group of the data socket.
    #[arg(short = 'g', long, value_name = "GROUP")]
    group: Option<String>,
    /// Mode of the data socket (octal, default 0700).
    #[arg(short = 'm', long = "mod", value_name = "OCT", value_parser = vde::parse_mode)]
    mode: Option<u32>,
    /// Run in the background.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Write the pid to FILE.
    #[arg(short = 'p', long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// No start-up banner and no counters at exit.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the whole configuration table at start.
    #[arg(short = 'v', long)]
    verbose: bool,
}

fn sock_help() -> String {
    format!(
        "Switch (control directory or VNL); `-` is stdin/stdout [default: {}]",
        vnl::DEFAULT_NETWORK
    )
}

fn main() {
    vde::init_logging();
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("slirpvde: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The settings the flags ask for (C slirpvde's defaults: IPv4 only, DHCP
/// off), every error naming its flag.
fn settings(a: &Args) -> Result<Settings> {
    let mut s = Settings {
        v4: None,
        v6: None,
        dhcp: false,
        ..Settings::default()
    };
    for h in &a.host {
        match options::parse_net(h).map_err(|e| anyhow!("-H {h}: {e}"))? {
            IpNet::V4(n) => s.v4 = Some(n),
            IpNet::V6(n) => s.v6 = Some(n),
        }
    }
    if a.host.is_empty() {
        s.v4 = Some(options::DEFAULT_V4);
    }
    if a.ra && s.v6.is_none() {
        s.v6 = Some(options::DEFAULT_V6);
    }
    for d in &a.dns {
        match d {
            IpAddr::V4(v) => s.vnameserver = Some(*v),
            IpAddr::V6(v) => s.vnameserver6 = Some(*v),
        }
    }
    if let Some(d) = &a.dhcp {
        s.dhcp = true;
        if !d.is_empty() {
            s.dhcp_start = Some(
                d.parse::<Ipv4Addr>()
                    .map_err(|_| anyhow!("--dhcp={d}: not an IPv4 address"))?,
            );
        }
        if s.v4.is_none() {
            bail!("-D/--dhcp: DHCP needs an IPv4 subnet (-H a.b.c.d/len)");
        }
    }
    for (list, udp, flag) in [(&a.tcp_forward, false, "-L"), (&a.udp_forward, true, "-U")] {
        for f in list {
            s.forwards
                .push(options::parse_forward(f, udp).map_err(|e| anyhow!("{flag} {f}: {e}"))?);
        }
    }
    // libslirp refuses the router's own address: guests reach it at network|4
    let host4 = s.v4.unwrap_or(options::DEFAULT_V4).nth(4);
    for x in &a.unix_forward {
        s.guestfwds
            .push(options::parse_guestfwd(x, host4, false).map_err(|e| anyhow!("-x {x}: {e}"))?);
    }
    s.tftp_path = a.tftp.clone();
    s.bootfile = a.bootfile.clone();
    s.restricted = a.restricted;
    s.disable_host_loopback = a.no_host_loopback;
    s.mtu = a.mtu;
    s.verbose = a.verbose;
    s.check(|k| {
        match k {
            "dhcp" => "-D/--dhcp",
            "vnameserver" => "-N/--dns",
            "mtu" | "mru" => "--mtu",
            "tcpfwd" => "-L",
            "udpfwd" => "-U",
            "unixfwd" => "-x",
            k => k,
        }
        .to_string()
    })
    .map_err(|e| anyhow!(e))?;
    Ok(s)
}

/// The C tool's banner.
fn banner(s: &Settings, switch: &str) -> String {
    let mut b = String::new();
    let mut first = true;
    let mut line = |k: &str, v: String| {
        if first {
            b.push_str(&format!("Starting slirpvde: {k}={v}\n"));
            first = false;
        } else {
            b.push_str(&format!("                   {k:<12}={v}\n"));
        }
    };
    if let Some((n, start, dns)) = s.v4_addrs() {
        line("virtual_host", format!("{}/{}", n.host, n.len));
        line("DNS", dns.to_string());
        if s.dhcp {
            line("dhcp_start", start.to_string());
        }
    }
    if let Some((n, dns)) = s.v6_addrs() {
        line("virtual_host6", format!("{}/{}", n.host, n.len));
        line("DNS6", dns.to_string());
    }
    line("vde switch", switch.to_string());
    for f in &s.forwards {
        let a = |ip: &IpAddr| match ip {
            IpAddr::V6(v) => format!("[{v}]"),
            IpAddr::V4(v) => v.to_string(),
        };
        let host = match f.host_addr {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED) | IpAddr::V6(Ipv6Addr::UNSPECIFIED) => String::new(),
            h => format!("{}:", a(&h)),
        };
        line(
            if f.udp { "redir UDP" } else { "redir TCP" },
            format!(
                "{host}{}:{}:{}",
                f.host_port,
                a(&f.guest_addr),
                f.guest_port
            ),
        );
    }
    if s.restricted {
        line("restricted", "yes".into());
    }
    b
}

/// The C tool parses with getopt_long_only: `-sock`, `-dhcp`, `-daemon`,
/// `-network` … are its long options. They become `--sock` … here.
const C_LONG: &[&str] = &[
    "sock",
    "socket",
    "vdesock",
    "unix",
    "host",
    "network",
    "dns",
    "nameserver",
    "dhcp",
    "tftp",
    "mod",
    "group",
    "port",
    "pidfile",
    "daemon",
    "quiet",
];

fn c_style(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        let name = a
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map(|r| r.split('=').next().unwrap_or(r));
        match name {
            Some(n) if n.len() > 1 && C_LONG.contains(&n) => format!("-{a}"),
            _ => a,
        }
    })
    .collect()
}

fn run() -> Result<()> {
    // the signals are blocked before any thread starts
    let sigfd = vde::sys::signalfd_for_termination().ok();
    let args = Args::parse_from(c_style(std::env::args()));
    let s = settings(&args)?;
    if !slirp::AVAILABLE {
        bail!("{}", slirp::FEATURE_MISSING);
    }
    let switch = args
        .sock
        .clone()
        .or_else(|| args.switch.clone())
        .unwrap_or_default();
    let stream = switch == "-";
    let open_args = OpenArgs {
        descr: "slirpvde:".into(),
        port: args.port,
        group: args.group.clone(),
        mode: args.mode,
    };
    let plug: Option<Arc<dyn Plug>> = if stream {
        None
    } else {
        Some(Arc::from(
            vnl::open(&switch, &open_args).context("cannot join the switch")?,
        ))
    };
    if args.daemon {
        vde::sys::daemonize().context("cannot become a daemon")?;
    }
    if let Some(p) = &args.pidfile {
        let mut f = std::fs::File::create(p)
            .with_context(|| format!("cannot write pid file {}", p.display()))?;
        writeln!(f, "{}", std::process::id())?;
    }
    if !args.quiet && !args.daemon {
        let shown = if switch.is_empty() {
            "(default)"
        } else {
            &switch
        };
        eprint!("{}", banner(&s, shown));
    }
    if s.verbose {
        eprint!("{}", s.table());
    }
    let (tx, rx) = mpsc::channel::<String>();
    // the router reads the switch's data socket itself when the plug has
    // one (vde://); anything else goes through a seqpacket pair and a cable
    let router: Router = match plug.as_ref().and_then(|p| p.datagram_fd()) {
        Some(fd) => {
            let plug = plug.clone().expect("a plug");
            let router = slirp::start(
                &s,
                Port {
                    fd,
                    seqpacket: false,
                    keep: Box::new(plug.clone()),
                },
            )
            .map_err(|e| anyhow!(e))?;
            let tx = tx.clone();
            std::thread::spawn(move || {
                if plug.wait_hangup() {
                    let _ = tx.send("the switch hung up".into());
                }
            });
            router
        }
        None => {
            let (mine, theirs) = vnl::slirp::seqpacket_pair().context("socketpair")?;
            let fd = theirs.as_raw_fd();
            let router = slirp::start(
                &s,
                Port {
                    fd,
                    seqpacket: true,
                    keep: Box::new(OwnedFd::from(theirs)),
                },
            )
            .map_err(|e| anyhow!(e))?;
            let pair: Arc<dyn Plug> = Arc::new(PairPlug(mine));
            let tx = tx.clone();
            std::thread::spawn(move || {
                let end = match plug {
                    Some(p) => vde::cable::plug_to_plug(p, pair),
                    None => vde::cable::plug_to_stream(
                        pair,
                        std::io::stdin(),
                        std::io::stdout(),
                        Arc::new(vde::cable::Drops::default()),
                    ),
                };
                let _ = tx.send(format!("{end:?}"));
            });
            router
        }
    };
    if let Some(fd) = sigfd {
        let tx = tx.clone();
        std::thread::spawn(move || loop {
            vde::sys::wait_readable(fd.as_raw_fd(), std::time::Duration::from_secs(3600));
            if let Some(sig) = vde::sys::read_signal(&fd) {
                let _ = tx.send(format!("signal {sig}"));
                return;
            }
        });
    }
    let why = rx.recv().unwrap_or_default();
    tracing::debug!("stopping: {why}");
    if !args.quiet && !args.daemon {
        eprintln!("slirpvde: {}", router.stats);
    }
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    // the router's sockets close with the process
    std::process::exit(0);
}

/// Our end of the router's seqpacket pair as a plug (for the cable).
struct PairPlug(std::os::unix::net::UnixDatagram);

impl Plug for PairPlug {
    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        self.0.send(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.recv(buf)? {
            0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_long_options_with_one_dash() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            c_style(
                v(&[
                    "slirpvde",
                    "-sock",
                    "/tmp/s",
                    "-dhcp=10.0.2.20",
                    "-n",
                    "10.1.0.0",
                    "-daemon",
                    "-s",
                    "x",
                    "--dns",
                    "10.0.2.3"
                ])
                .into_iter()
            ),
            v(&[
                "slirpvde",
                "--sock",
                "/tmp/s",
                "--dhcp=10.0.2.20",
                "-n",
                "10.1.0.0",
                "--daemon",
                "-s",
                "x",
                "--dns",
                "10.0.2.3"
            ])
        );
        let a = Args::parse_from(c_style(
            v(&[
                "slirpvde",
                "-socket",
                "/tmp/s",
                "-dhcp",
                "-network",
                "10.1.0.0/16",
                "-L",
                "80:10.1.0.15:80",
            ])
            .into_iter(),
        ));
        let s = settings(&a).unwrap();
        assert_eq!(a.sock.as_deref(), Some("/tmp/s"));
        assert!(s.dhcp);
        assert_eq!(s.v4.unwrap().host, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(s.v4_addrs().unwrap().1, Ipv4Addr::new(10, 1, 0, 15));
        assert!(s.v6.is_none());
        let a = Args::parse_from(v(&[
            "slirpvde",
            "-H",
            "10.0.2.2/24",
            "-H",
            "fd00:1::/64",
            "-D",
        ]));
        let s = settings(&a).unwrap();
        assert_eq!(s.v6.unwrap().host, "fd00:1::2".parse::<Ipv6Addr>().unwrap());
        let a = Args::parse_from(v(&["slirpvde", "-r"]));
        let s = settings(&a).unwrap();
        assert!(s.v4.is_some() && s.v6.is_some() && !s.dhcp);
    }
}
