//! vde_plug2tap: joins a switch to a Linux tap interface (Debian vde2's
//! tool; the same as `vde_plug SWITCH tap://IFNAME`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use vde::vnl::{self, OpenArgs, Plug};

#[derive(Parser, Debug)]
#[command(name = "vde_plug2tap", version = vde::VERSION, about = "Connect a VDE switch to a tap interface")]
struct Args {
    /// Switch port (> 0).
    #[arg(short = 'p', long, value_name = "N")]
    port: Option<i64>,
    /// Group of the data socket.
    #[arg(short = 'g', long, value_name = "GROUP")]
    group: Option<String>,
    /// Mode of the data socket (octal, default 0700).
    #[arg(short = 'm', long = "mod", value_name = "OCT", value_parser = vde::parse_mode)]
    mode: Option<u32>,
    /// Switch (control directory or VNL).
    #[arg(short = 's', long, value_name = "SWITCH", help = sock_help())]
    sock: Option<String>,
    /// Run in the background.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Write the pid to FILE.
    #[arg(short = 'P', long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Tap interface (created if it does not exist).
    #[arg(value_name = "TAPNAME")]
    tap: String,
}

/// libvdeplug's default, as vde_plug2tap gets it from an empty locator.
fn sock_help() -> String {
    format!(
        "Switch (control directory or VNL) [default: {}]",
        vnl::DEFAULT_NETWORK
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("vde_plug2tap: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let open_args = OpenArgs {
        descr: "vde_plug2tap:".into(),
        port: args.port,
        group: args.group.clone(),
        mode: args.mode,
    };
    let sw: Arc<dyn Plug> =
        Arc::from(vnl::open(args.sock.as_deref().unwrap_or(""), &open_args).context("vde_open")?);
    let tap: Arc<dyn Plug> =
        Arc::from(vnl::open(&format!("tap://{}", args.tap), &OpenArgs::default()).context("tap")?);
    if args.daemon {
        vde::sys::daemonize().context("cannot become a daemon")?;
    }
    if let Some(p) = &args.pidfile {
        let mut f = std::fs::File::create(p)
            .with_context(|| format!("cannot write pid file {}", p.display()))?;
        writeln!(f, "{}", std::process::id())?;
    }
    vde::cable::plug_to_plug(sw, tap);
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
