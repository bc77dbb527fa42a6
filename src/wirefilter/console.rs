//! The wirefilter management console (protocol spec §5.6): the same
//! response grammar as the switch's (`0000 DATA END WITH '.'`, `1000
//! Success`, `1NNN text`), its own command table and prompt.

use std::fmt::Write as _;
use std::time::Instant;

use super::{Channel, Param};
use crate::errno::{Errno, EINVAL, ENOENT, ENOSYS};
use crate::mgmt::{atoi, render, status, END_OF_SESSION};

/// The prompt after every reply.
pub const PROMPT: &str = "\nVDEwf$ ";

/// The banner written to a new session (note the leading newline).
pub fn banner() -> String {
    format!(
        "\nVDE wirefilter V.{} (vde-rs)\n(C) vde contributors, after R. Davoli's VDE - GPLv2\n",
        crate::VERSION
    )
}

/// `help`, as the C tool prints it.
const HELP: &str = "COMMAND      HELP
------------ ------------
help         print a summary of mgmt commands
load         load a configuration file
showinfo     show status and parameter values
loss         set loss percentage
lostburst    mean length of lost packet bursts
delay        set delay ms
dup          set dup packet percentage
bandwidth    set channel bandwidth bytes/sec
speed        set interface speed bytes/sec
noise        set noise factor bits/Mbyte
mtu          set channel MTU (bytes)
chanbufsize  set channel buffer size (bytes)
fifo         set channel fifoness
shutdown     shut the channel down
logout       log out from this mgmt session
markov-numnodes n  markov mode: set number of states
markov-setnode n   markov mode: set current state
markov-name n,name markov mode: set state's name
markov-time ms     markov mode: transition period
setedge n1,n2,w    markov mode: set edge weight
showinfo n         markov mode: show parameter values
showedges n        markov mode: show edge weights
showcurrent        markov mode: show current state
markov-debug n     markov mode: set debug level
";

/// What the shell must do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    None,
    Logout,
    Shutdown,
}

/// A session's state: whether it wants Markov node-change lines.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub markov_debug: bool,
    depth: u32,
}

type Handler = fn(&mut Channel, &mut Session, Instant, &str, &mut String) -> Result<Action, Errno>;

/// (name, prints a data block, handler), in the C tool's order: the first
/// name that is a prefix of the input runs.
const TABLE: &[(&str, bool, Handler)] = &[
    ("help", true, |_, _, _, _, o| {
        o.push_str(HELP);
        Ok(Action::None)
    }),
    ("showinfo", true, |ch, _, _, a, o| {
        o.push_str(&ch.showinfo(node_arg(a)).map_err(|e| e.errno())?);
        Ok(Action::None)
    }),
    ("load", true, load),
    ("delay", false, |ch, _, _, a, _| set(ch, Param::Delay, a)),
    ("loss", false, |ch, _, _, a, _| set(ch, Param::Loss, a)),
    ("lostburst", false, |ch, _, _, a, _| {
        set(ch, Param::LostBurst, a)
    }),
    ("dup", false, |ch, _, _, a, _| set(ch, Param::Dup, a)),
    ("bandwidth", false, |ch, _, _, a, _| {
        set(ch, Param::Bandwidth, a)
    }),
    ("band", false, |ch, _, _, a, _| set(ch, Param::Bandwidth, a)),
    ("speed", false, |ch, _, _, a, _| set(ch, Param::Speed, a)),
    ("chanbufsize", false, |ch, _, _, a, _| {
        set(ch, Param::ChanBufSize, a)
    }),
    ("capacity", false, |ch, _, _, a, _| {
        set(ch, Param::ChanBufSize, a)
    }),
    ("noise", false, |ch, _, _, a, _| set(ch, Param::Noise, a)),
    ("mtu", false, |ch, _, _, a, _| set(ch, Param::Mtu, a)),
    ("fifo", false, |ch, _, _, a, _| {
        ch.set_fifo(atoi(a) != 0);
        Ok(Action::None)
    }),
    ("markov-numnodes", false, |ch, _, now, a, _| {
        let n = usize::try_from(atoi(a)).map_err(|_| EINVAL)?;
        ch.set_numnodes(n, now).map_err(|e| e.errno())?;
        Ok(Action::None)
    }),
    ("markov-setnode", false, |ch, _, _, a, _| {
        let n = usize::try_from(atoi(a)).map_err(|_| EINVAL)?;
        ch.set_current_node(n).map_err(|e| e.errno())?;
        Ok(Action::None)
    }),
    ("markov-name", false, |ch, _, _, a, _| {
        let (n, name) = a.split_once(',').ok_or(EINVAL)?;
        let n = usize::try_from(atoi(n)).map_err(|_| EINVAL)?;
        ch.set_node_name(n, name).map_err(|e| e.errno())?;
        Ok(Action::None)
    }),
    ("markov-time", false, |ch, _, now, a, _| {
        let ms: f64 = a.trim().parse().map_err(|_| EINVAL)?;
        ch.set_markov_time(ms, now).map_err(|e| e.errno())?;
        Ok(Action::None)
    }),
    ("setedge", false, |ch, _, _, a, _| {
        let mut it = a.split(',');
        let mut next = || it.next().map(str::trim).ok_or(EINVAL);
        let from = usize::try_from(atoi(next()?)).map_err(|_| EINVAL)?;
        let to = usize::try_from(atoi(next()?)).map_err(|_| EINVAL)?;
        let w: f64 = next()?.parse().map_err(|_| EINVAL)?;
        ch.set_edge(from, to, w).map_err(|e| e.errno())?;
        Ok(Action::None)
    }),
    ("showedges", true, |ch, _, _, a, o| {
        o.push_str(&ch.showedges(node_arg(a)).map_err(|e| e.errno())?);
        Ok(Action::None)
    }),
    ("showcurrent", true, |ch, _, _, _, o| {
        o.push_str(&ch.showcurrent());
        Ok(Action::None)
    }),
    ("markov-debug", false, |ch, s, _, a, _| {
        s.markov_debug = atoi(a) > 0;
        ch.set_report_node_changes(s.markov_debug);
        Ok(Action::None)
    }),
    ("logout", false, |_, _, _, _, _| Ok(Action::Logout)),
    ("shutdown", false, |_, _, _, _, _| Ok(Action::Shutdown)),
];

fn node_arg(a: &str) -> Option<usize> {
    let a = a.trim();
    (!a.is_empty()).then(|| usize::try_from(atoi(a)).unwrap_or(usize::MAX))
}

fn set(ch: &mut Channel, p: Param, a: &str) -> Result<Action, Errno> {
    ch.set_value_str(p, a.trim()).map_err(|e| e.errno())?;
    Ok(Action::None)
}

fn load(
    ch: &mut Channel,
    s: &mut Session,
    now: Instant,
    a: &str,
    o: &mut String,
) -> Result<Action, Errno> {
    if s.depth >= 16 {
        return Err(EINVAL);
    }
    let text = std::fs::read_to_string(a.trim()).map_err(|_| ENOENT)?;
    s.depth += 1;
    let mut action = Action::None;
    for line in text.lines() {
        let (reply, act) = execute(ch, s, now, line);
        o.push_str(&reply);
        if act != Action::None {
            action = act;
            break;
        }
    }
    s.depth -= 1;
    Ok(action)
}

/// Runs one command line; returns the reply (without the prompt) and
/// what the shell must do.
pub fn execute(ch: &mut Channel, s: &mut Session, now: Instant, line: &str) -> (String, Action) {
    let line = line
        .trim_end_matches(['\n', '\r', ' ', '\t'])
        .trim_start_matches([' ', '\t']);
    let mut out = String::new();
    if line.is_empty() || line.starts_with('#') {
        return (out, Action::None);
    }
    let Some(&(name, with_file, handler)) = TABLE.iter().find(|(n, _, _)| line.starts_with(n))
    else {
        status(&mut out, Err(ENOSYS));
        return (out, Action::None);
    };
    let args = line[name.len()..].trim_start_matches([' ', '\t']);
    let mut data = String::new();
    let r = handler(ch, s, now, args, &mut data);
    render(&mut out, with_file, &data);
    match r {
        Ok(Action::None) => {
            status(&mut out, Ok(()));
            (out, Action::None)
        }
        Ok(a) => {
            if a == Action::Logout {
                out.push_str(END_OF_SESSION);
            }
            (out, a)
        }
        Err(e) => {
            status(&mut out, Err(e));
            (out, Action::None)
        }
    }
}

/// The names of the commands, for a usage message.
pub fn command_names() -> String {
    let mut s = String::new();
    for (n, _, _) in TABLE {
        let _ = write!(s, "{n} ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wirefilter::Mode;

    fn run(ch: &mut Channel, line: &str) -> String {
        let mut s = Session::default();
        execute(ch, &mut s, Instant::now(), line).0
    }

    #[test]
    fn grammar_and_outputs() {
        let mut ch = Channel::new(Mode::Bidirectional, 1, Instant::now());
        let h = run(&mut ch, "help");
        assert!(h.starts_with(
            "0000 DATA END WITH '.'\nCOMMAND      HELP\n------------ ------------\nhelp "
        ));
        assert!(h.ends_with("markov-debug n     markov mode: set debug level\n.\n1000 Success\n"));
        assert_eq!(run(&mut ch, "delay 20+5N"), "1000 Success\n");
        assert_eq!(run(&mut ch, "loss RL3"), "1000 Success\n");
        assert_eq!(run(&mut ch, "band 1M"), "1000 Success\n");
        assert_eq!(run(&mut ch, "mtu 1500"), "1000 Success\n");
        let info = run(&mut ch, "showinfo");
        assert!(info.contains("Delay  L->R 20+5N   R->L 20+5N\n"), "{info}");
        assert!(info.contains("Loss   L->R 0+0U   R->L 3+0U\n"), "{info}");
        assert!(
            info.contains("Bandw  L->R 1.04858e+06+0U   R->L 1.04858e+06+0U\n"),
            "{info}"
        );
        assert_eq!(run(&mut ch, "bogus"), "1038 Function not implemented\n");
        assert_eq!(run(&mut ch, "delay abc"), "1022 Invalid argument\n");
        assert_eq!(
            run(&mut ch, "load /nonexistent"),
            "0000 DATA END WITH '.'\n.\n1002 No such file or directory\n"
        );
        assert_eq!(run(&mut ch, "markov-numnodes 2"), "1000 Success\n");
        assert_eq!(run(&mut ch, "markov-name 1,bad"), "1000 Success\n");
        assert!(run(&mut ch, "showinfo 1").contains("Node 1 \"bad\" (0,..,1) Markov-time 100\n"));
        assert_eq!(run(&mut ch, "setedge 0,1,50"), "1000 Success\n");
        assert_eq!(run(&mut ch, "setedge 0,x"), "1022 Invalid argument\n");
        let mut s = Session::default();
        let (r, a) = execute(&mut ch, &mut s, Instant::now(), "logout");
        assert_eq!((r.as_str(), a), ("9999 END OF SESSION", Action::Logout));
        assert_eq!(
            execute(&mut ch, &mut s, Instant::now(), "shutdown").1,
            Action::Shutdown
        );
        assert!(command_names().starts_with("help showinfo load delay"));
    }
}
