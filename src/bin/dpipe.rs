//! dpipe: bidirectional pipes between commands (drop-in for vdeplug4's
//! dpipe). `dpipe [OPTIONS] cmd1 [args] = cmd2 [args] [= cmd3 …]`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::exit;

use clap::Parser;

use vde::dpipe::{self, Error, Options};

#[derive(Parser, Debug)]
#[command(
    name = "dpipe",
    version = vde::VERSION,
    about = "Bidirectional pipe: cmd1's stdout to cmd2's stdin and back",
    disable_help_flag = true,
    args_override_self = true,
    infer_long_args = true
)]
struct Args {
    /// Write the process id to PIDFILE.
    #[arg(short = 'p', long, value_name = "PIDFILE")]
    pidfile: Option<PathBuf>,
    /// Write the process group id (negated) to PGRPFILE.
    #[arg(short = 'P', long, value_name = "PGRPFILE")]
    pgrpfile: Option<PathBuf>,
    /// Daemonize the process group.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Do not create the dpipe parent process.
    #[arg(short = 'n', long)]
    nowrapproc: bool,
    /// -n and do not remove the pid/pgrp files.
    #[arg(short = 'N', long)]
    nowrapnoclean: bool,
    /// Show the usage summary.
    #[arg(short = 'h', long)]
    help: bool,
    /// The chain: cmd1 [args] = cmd2 [args] [= cmd3 …], with =} cmd }= or
    /// ={ cmd {= for one-directional filters. Options end at cmd1.
    #[arg(trailing_var_arg = true, value_name = "CHAIN")]
    chain: Vec<OsString>,
}

fn main() {
    let progname = std::env::args_os()
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dpipe".into());
    let args = Args::parse();
    if args.help {
        eprint!("{}", dpipe::usage(&progname));
        exit(255);
    }
    let opts = Options {
        pidfile: args.pidfile,
        pgrpfile: args.pgrpfile,
        daemon: args.daemon,
        nowrap: args.nowrapproc,
        noclean: args.nowrapnoclean,
    };
    match dpipe::run(&opts, &args.chain) {
        Ok(status) => exit(status),
        Err(Error::Syntax(_)) => {
            eprint!("{}", dpipe::usage(&progname));
            exit(255);
        }
        Err(e) => {
            eprintln!("{progname}: {:#}", anyhow::Error::from(e));
            exit(1);
        }
    }
}
