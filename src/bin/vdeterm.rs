//! vdeterm (also installed as unixterm): a terminal for the management
//! socket of vde_switch (`-M`) or wirefilter, with history and tab
//! completion — drop-in for the C tool. Without a terminal on stdin it runs
//! the commands read from stdin, like unixcmd.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use vde::term::{self, Mode, Options, Style};

#[derive(Parser, Debug)]
#[command(
    name = "vdeterm",
    version = vde::VERSION,
    about = "Terminal for VDE management sockets (vde_switch -M, wirefilter -M)",
    long_about = "Terminal for VDE management sockets (vde_switch -M, wirefilter -M).\n\n\
        On a terminal: an interactive session with line editing, history (Up/Down) and tab \
        completion of the console's commands; `logout`, `shutdown` or Ctrl-D end it. \
        Replies are shown like the C vdeterm: data blocks unwrapped, status lines without \
        their code, debug events as `** DBG MSG: ...`.\n\n\
        With -c, or when stdin is not a terminal: runs the given commands (or one command \
        per line of stdin; blank lines and # comments are skipped), prints the replies and \
        exits with status 0 if every command answered `1000 Success`, 1 otherwise.",
    after_help = "Examples:\n  vdeterm /tmp/vde.mgmt\n  vdeterm /tmp/vde.mgmt -c port/print -c hash/print\n  printf 'port/create 5\\nport/print\\n' | vdeterm --raw /tmp/vde.mgmt"
)]
struct Args {
    /// Management socket (vde_switch -M, wirefilter -M).
    #[arg(value_name = "SOCKET")]
    sock: PathBuf,
    /// Run COMMAND and exit (repeatable; stdin is not read).
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    commands: Vec<String>,
    /// Print the console's reply lines unmodified (codes, data block markers).
    #[arg(short = 'r', long)]
    raw: bool,
    /// Seconds to wait for the prompt after connecting and for each reply.
    #[arg(short = 't', long, value_name = "SECS", default_value = "5", value_parser = secs)]
    timeout: Duration,
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("timeout must be positive, not `{s}`"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn main() {
    let prog = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "vdeterm".into());
    let args = Args::parse();
    let opts = Options {
        prog: prog.clone(),
        sock: args.sock,
        style: if args.raw { Style::Raw } else { Style::Vdeterm },
        timeout: args.timeout,
    };
    let mode = if !args.commands.is_empty() {
        Mode::Commands(args.commands)
    } else if std::io::stdin().is_terminal() {
        Mode::Interactive
    } else {
        Mode::Stdin
    };
    match term::run(&opts, mode) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{prog}: {e:#}");
            std::process::exit(1);
        }
    }
}
