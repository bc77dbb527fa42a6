//! dpipe end to end: chains of real commands exchanging data both ways,
//! exit status, the ALTERNATE_* descriptors of a middle command,
//! one-directional filters, options and signals — each run with our dpipe
//! and, where installed, the Debian C dpipe (vdeplug4) on the same command
//! line, comparing what the commands saw — and real peers: two switches
//! joined by `dpipe vde_plug SW1 = [wirefilter =] vde_plug SW2`.

mod common;

use common::*;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const OURS_DPIPE: &str = env!("CARGO_BIN_EXE_dpipe");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dp {
    Ours,
    C,
}

impl Dp {
    fn bin(self) -> &'static str {
        match self {
            Dp::Ours => OURS_DPIPE,
            Dp::C => "dpipe",
        }
    }
}

/// Ours, plus the C dpipe when installed (CI requires it).
fn impls() -> Vec<Dp> {
    if have("dpipe") {
        vec![Dp::Ours, Dp::C]
    } else {
        vec![Dp::Ours]
    }
}

/// Sends a signal to a process (or, with a negative id, a group) with
/// kill(1) (dash's builtin takes neither `--` nor negative ids).
fn kill(target: i64, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", &target.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Kills whatever is left of a dpipe's process group when dropped (its
/// group id is its pid: both dpipes make their own group).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        kill(-(self.0 as i64), "KILL");
    }
}

/// A dpipe started in `dir`, stdin/stdout on /dev/null, stderr to a file.
struct Run {
    bin: &'static str,
    child: Child,
    group: Group,
    stderr: std::path::PathBuf,
}

fn start_in(dp: Dp, dir: &TempDir, args: &[&str], own_group: bool) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let stderr = dir.path(&format!(
        "stderr.{}",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let mut cmd = Command::new(dp.bin());
    cmd.arg0("dpipe")
        .args(args)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap());
    if own_group {
        // the C dpipe's usage_and_exit signals its caller's process group
        // when it runs before its own setpgrp (-h): keep that away from us
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", dp.bin()));
    let group = Group(child.id());
    Run {
        bin: dp.bin(),
        child,
        group,
        stderr,
    }
}

fn start(dp: Dp, dir: &TempDir, args: &[&str]) -> Run {
    start_in(dp, dir, args, false)
}

impl Run {
    fn wait(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > end {
                kill(-(self.group.0 as i64), "KILL");
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {secs} s", self.bin);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Runs a dpipe to its end (bounded) and returns its status.
fn dpipe(dp: Dp, dir: &TempDir, args: &[&str]) -> ExitStatus {
    let mut r = start(dp, dir, args);
    r.wait(20)
}

fn read(dir: &TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .trim_end()
        .to_string()
}

/// The processes of a process group: (pid, state, argv joined by spaces).
fn members(pgid: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        if f.len() < 3 || f[2] != pgid.to_string() {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let argv = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        out.push((pid, f[0].chars().next().unwrap_or('?'), argv));
    }
    out
}

fn running(pgid: u32, argv: &str) -> bool {
    members(pgid)
        .iter()
        .any(|(_, state, a)| a == argv && *state != 'Z')
}

/// Left end of the test chains: says hello, closes its output, records
/// what comes back.
const HELLO: &str = "echo hello; exec 1>&-; cat > a";
/// Right end: records what arrives until end of input, then answers.
const BACK: &str = "cat > b; echo back";
/// A middle command relaying both ways: stdin -> ALTERNATE_STDOUT and
/// ALTERNATE_STDIN -> stdout.
/// (The background cat reads ALTERNATE_STDIN: a background job's stdin
/// would be /dev/null.)
const RELAY: &str = "i=$ALTERNATE_STDIN o=$ALTERNATE_STDOUT; \
    eval \"cat <&$i $i<&- $o>&- &\"; eval \"exec cat >&$o $o>&- $i<&-\"";

#[test]
fn two_commands_talk_both_ways() {
    let mut seen = Vec::new();
    for dp in impls() {
        let dir = TempDir::new("dpipe-two");
        let s = dpipe(
            dp,
            &dir,
            &[
                "sh",
                "-c",
                "echo ping; read r; echo \"$r\" > left",
                "=",
                "sh",
                "-c",
                "read x; echo \"$x\" > right; echo pong",
            ],
        );
        assert_eq!(s.code(), Some(0), "{dp:?}");
        let got = (read(&dir, "left"), read(&dir, "right"));
        assert_eq!(got, ("pong".to_string(), "ping".to_string()), "{dp:?}");
        seen.push(got);
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "ours and C differ: {seen:?}");
}

#[test]
fn exit_status_is_the_last_commands() {
    let cases: &[(&[&str], i32)] = &[
        (&["sh", "-c", "exit 3", "=", "sh", "-c", "exit 5"], 5),
        (&["sh", "-c", "exit 9", "=", "true"], 0),
        // killed by a signal: WEXITSTATUS, i.e. 0
        (&["sh", "-c", "exit 3", "=", "sh", "-c", "kill -9 $$"], 0),
        // cannot be started: 127, like a failed execvp in the C child
        (&["sh", "-c", "exit 3", "=", "/nonexistent/dpipe-test"], 127),
        (&["/nonexistent/dpipe-test", "=", "sh", "-c", "exit 4"], 4),
        (
            &[
                "sh", "-c", "exit 1", "=", "sh", "-c", "exit 2", "=", "sh", "-c", "exit 6",
            ],
            6,
        ),
    ];
    for dp in impls() {
        for (args, want) in cases {
            let dir = TempDir::new("dpipe-status");
            let s = dpipe(dp, &dir, args);
            assert_eq!(s.code(), Some(*want), "{dp:?} {args:?}");
        }
        // dpipe ends when every command has ended, not just the last
        let dir = TempDir::new("dpipe-wait");
        let s = dpipe(
            dp,
            &dir,
            &["sh", "-c", "sleep 0.5; echo done > first", "=", "true"],
        );
        assert_eq!(s.code(), Some(0));
        assert!(
            dir.path("first").exists(),
            "{dp:?} returned before the first command ended"
        );
    }
}

/// `ls -l /proc/PID/fd` lines as (fd, mode, target) with pipe inodes and
/// the per-run stderr file name blanked, sorted by fd.
fn fd_table(listing: &str) -> Vec<(u32, String, String)> {
    let mut t: Vec<(u32, String, String)> = listing
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            let mode = left.get(..4)?.to_string();
            let target = if target.starts_with("pipe:") {
                "pipe".to_string()
            } else if target.contains("/stderr.") {
                "stderr".to_string()
            } else {
                target.to_string()
            };
            Some((fd, mode, target))
        })
        .collect();
    t.sort();
    t
}

#[test]
fn middle_command_gets_the_alternate_descriptors() {
    let middle = format!(
        "sh -c 'ls -l /proc/$1/fd > fds; grep -E \"^Sig(Blk|Ign)\" /proc/$1/status > sig' sh $$; \
         env | grep ^ALTERNATE_ | sort > env; {RELAY}"
    );
    let mut seen = Vec::new();
    for dp in impls() {
        let dir = TempDir::new("dpipe-middle");
        let s = dpipe(
            dp,
            &dir,
            &[
                "sh", "-c", HELLO, "=", "sh", "-c", &middle, "=", "sh", "-c", BACK,
            ],
        );
        assert_eq!(s.code(), Some(0), "{dp:?}: {}", read(&dir, "env"));
        assert_eq!(read(&dir, "b"), "hello", "{dp:?}");
        assert_eq!(read(&dir, "a"), "back", "{dp:?}");

        let env = read(&dir, "env");
        let num = |name: &str| -> u32 {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{dp:?}: no {name} in {env}"))
                .parse()
                .unwrap()
        };
        let (alt_in, alt_out) = (num("ALTERNATE_STDIN"), num("ALTERNATE_STDOUT"));
        assert!(3 <= alt_in && alt_in < alt_out, "{env}");
        let fds = fd_table(&read(&dir, "fds"));
        let entry = |fd: u32| {
            fds.iter()
                .find(|e| e.0 == fd)
                .map(|e| (e.1.as_str(), e.2.as_str()))
                .unwrap_or_else(|| panic!("{dp:?}: fd {fd} not open: {fds:?}"))
        };
        assert_eq!(entry(0), ("lr-x", "pipe"), "{dp:?}");
        assert_eq!(entry(1), ("l-wx", "pipe"), "{dp:?}");
        assert_eq!(entry(alt_in), ("lr-x", "pipe"), "{dp:?}");
        assert_eq!(entry(alt_out), ("l-wx", "pipe"), "{dp:?}");
        // the two lowest descriptors free in dpipe (normally 3 and 4):
        // every lower one is open (stdio or inherited)
        for fd in 0..alt_out {
            entry(fd);
        }

        let sig = read(&dir, "sig");
        let mask = |name: &str| -> u64 {
            let l = sig.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{dp:?}: no signal stays blocked");
        // SIGPIPE, SIGALRM, SIGUSR1/2, SIGPROF, SIGVTALRM, SIGIO, SIGSTKFLT,
        // SIGPWR are ignored in the commands, as the C dpipe leaves them
        assert_eq!(mask("SigIgn:") & 0x3600_ba00, 0x3600_ba00, "{dp:?}: {sig}");
        seen.push((env, fds, sig));
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "ours and C differ: {seen:#?}");
}

/// Runs one chain with both dpipes; returns what the left end and the
/// right end received.
fn ends_of(chain: &[&str]) -> (String, String) {
    let mut seen = Vec::new();
    for dp in impls() {
        let dir = TempDir::new("dpipe-chain");
        let s = dpipe(dp, &dir, chain);
        assert_eq!(s.code(), Some(0), "{dp:?} {chain:?}");
        seen.push((read(&dir, "a"), read(&dir, "b")));
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "ours and C differ on {chain:?}: {seen:?}");
    seen.remove(0)
}

#[test]
fn one_directional_filters() {
    let up = "tr a-z A-Z";
    // =} f }= : only the left-to-right traffic crosses f
    assert_eq!(
        ends_of(&["sh", "-c", HELLO, "=}", "sh", "-c", up, "}=", "sh", "-c", BACK]),
        ("back".into(), "HELLO".into())
    );
    // ={ f {= : only the right-to-left traffic
    assert_eq!(
        ends_of(&["sh", "-c", HELLO, "={", "sh", "-c", up, "{=", "sh", "-c", BACK]),
        ("BACK".into(), "hello".into())
    );
    // two filters chained inside one bracket
    assert_eq!(
        ends_of(&[
            "sh", "-c", HELLO, "=}", "sh", "-c", up, "=", "sed", "s/^/x:/", "}=", "sh", "-c", BACK
        ]),
        ("back".into(), "x:HELLO".into())
    );
}

#[test]
fn mixed_chain_from_the_man_page() {
    // a =} b }={ c {= d = e : a -> b -> d -> c -> a, d's alternate pair <-> e
    assert_eq!(
        ends_of(&[
            "sh", "-c", HELLO, "=}", "tr", "a-z", "A-Z", "}={", "sed", "s/^/r:/", "{=", "sh", "-c",
            RELAY, "=", "sh", "-c", BACK,
        ]),
        ("r:back".into(), "HELLO".into())
    );
    // a chain of relays
    assert_eq!(
        ends_of(&[
            "sh", "-c", HELLO, "=", "sh", "-c", RELAY, "=", "sh", "-c", RELAY, "=", "sh", "-c",
            RELAY, "=", "sh", "-c", BACK,
        ]),
        ("back".into(), "hello".into())
    );
}

#[test]
fn arguments_options_and_stray_brackets_reach_the_commands() {
    let mut seen = Vec::new();
    for dp in impls() {
        let dir = TempDir::new("dpipe-args");
        // options end at the first command; `{=`/`}=` that close nothing
        // and `--` after it are plain arguments
        let s = dpipe(
            dp,
            &dir,
            &[
                "--",
                "sh",
                "-c",
                "echo \"$*\" > a",
                "sh",
                "-p",
                "x",
                "{=",
                "}=",
                "--",
                "=",
                "sh",
                "-c",
                "echo \"$*\" > b",
                "sh",
                "-n",
                "-h",
                "}=",
            ],
        );
        assert_eq!(s.code(), Some(0), "{dp:?}");
        let got = (read(&dir, "a"), read(&dir, "b"));
        assert_eq!(got, ("-p x {= }= --".into(), "-n -h }=".into()), "{dp:?}");
        seen.push(got);
    }
    seen.dedup();
    assert_eq!(seen.len(), 1);
}

#[test]
fn bad_chains_and_help_print_the_usage() {
    let usage = vde::dpipe::usage("dpipe");
    let bad: &[&[&str]] = &[
        &["-h"],
        &["--help", "sh", "-c", "touch ran", "=", "true"],
        &["sh", "-c", "touch ran"],
        &["sh", "-c", "touch ran", "="],
        &["sh", "-c", "touch ran", "=", "=", "true"],
        &["sh", "-c", "touch ran", "={", "true"],
        &["sh", "-c", "touch ran", "=}", "cat", "=", "true"],
    ];
    for dp in impls() {
        for args in bad {
            let dir = TempDir::new("dpipe-usage");
            // own group: the C dpipe signals its whole process group here
            let mut r = start_in(dp, &dir, args, true);
            let s = r.wait(10);
            assert_eq!(r.stderr(), usage, "{dp:?} {args:?}");
            if dp == Dp::Ours {
                // (the C dpipe exits 0 through its own SIGTERM handler, or
                // dies of that SIGTERM for -h; we exit(-1) as it means to)
                assert_eq!(s.code(), Some(255), "{args:?}");
                // nothing was started: the chain is checked first
                assert!(!dir.path("ran").exists(), "{args:?}");
            }
        }
    }
    // our option errors come from clap
    let dir = TempDir::new("dpipe-usage");
    let s = dpipe(Dp::Ours, &dir, &["--bogus", "true", "=", "true"]);
    assert_eq!(s.code(), Some(2));
}

#[test]
fn pid_and_pgrp_files() {
    for dp in impls() {
        let dir = TempDir::new("dpipe-pidfile");
        let mut r = start(
            dp,
            &dir,
            &[
                "-p",
                "pf",
                "--pgrpfile",
                "pg",
                "sh",
                "-c",
                "cat pf pg > files; echo $PPID > ppid; cut -d' ' -f5 /proc/$$/stat > pgid",
                "=",
                "sh",
                "-c",
                "sleep 0.2",
            ],
        );
        let pid = r.pid();
        assert_eq!(r.wait(10).code(), Some(0));
        assert_eq!(read(&dir, "files"), format!("{pid}\n-{pid}"), "{dp:?}");
        assert_eq!(read(&dir, "ppid"), pid.to_string(), "{dp:?}: parent");
        assert_eq!(read(&dir, "pgid"), pid.to_string(), "{dp:?}: own group");
        assert!(
            !dir.path("pf").exists() && !dir.path("pg").exists(),
            "{dp:?}"
        );
    }
}

#[test]
fn nowrap_makes_dpipe_the_last_command() {
    for dp in impls() {
        let dir = TempDir::new("dpipe-nowrap");
        let mut r = start(
            dp,
            &dir,
            &[
                "-n",
                "-p",
                "pf",
                "sh",
                "-c",
                "sleep 0.3",
                "=",
                "sh",
                "-c",
                "echo $$ > last; cat pf > seen; sleep 0.3; exit 7",
            ],
        );
        let pid = r.pid();
        assert_eq!(r.wait(10).code(), Some(7), "{dp:?}");
        assert_eq!(read(&dir, "last"), pid.to_string(), "{dp:?}");
        assert_eq!(read(&dir, "seen"), pid.to_string(), "{dp:?}");
        // a cleanup process removes the pid file once the last command ended
        assert!(
            wait_for(5, || !dir.path("pf").exists()),
            "{dp:?}: pid file left"
        );

        // -N: no cleanup process, the file stays
        let dir = TempDir::new("dpipe-nowrap");
        let mut r = start(
            dp,
            &dir,
            &["-N", "-p", "pf", "true", "=", "sh", "-c", "exit 3"],
        );
        let pid = r.pid();
        assert_eq!(r.wait(10).code(), Some(3), "{dp:?}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(read(&dir, "pf"), pid.to_string(), "{dp:?}");
    }
}

#[test]
fn daemon_mode() {
    for dp in impls() {
        let dir = TempDir::new("dpipe-daemon");
        let p = |n: &str| dir.path(n).display().to_string();
        let first = format!("pwd > {}; sleep 0.5", p("cwd"));
        let last = format!("sleep 0.5; echo done > {}", p("done"));
        let mut r = start(
            dp,
            &dir,
            &[
                "-d",
                "-p",
                &p("pf"),
                "sh",
                "-c",
                &first,
                "=",
                "sh",
                "-c",
                &last,
            ],
        );
        let parent = r.pid();
        // the caller's process returns at once
        assert_eq!(r.wait(5).code(), Some(0), "{dp:?}");
        assert!(
            wait_for(5, || dir.path("pf").exists()),
            "{dp:?}: no pid file"
        );
        let daemon: u32 = read(&dir, "pf").parse().unwrap();
        let _group = Group(daemon);
        assert_ne!(daemon, parent, "{dp:?}");
        assert!(wait_for(5, || dir.path("done").exists()), "{dp:?}");
        assert_eq!(read(&dir, "cwd"), "/", "{dp:?}: daemon(0, 0) changes to /");
        assert!(
            wait_for(5, || !dir.path("pf").exists()),
            "{dp:?}: pid file not removed"
        );
    }
}

#[test]
fn sigterm_stops_the_last_command_and_sigint_the_group() {
    for dp in impls() {
        // SIGTERM: remove the pid file, SIGTERM the last command, exit 0
        let dir = TempDir::new("dpipe-term");
        let mut r = start(dp, &dir, &["-p", "pf", "sleep", "31", "=", "sleep", "32"]);
        let pid = r.pid();
        assert!(wait_for(5, || running(pid, "sleep 31") && running(pid, "sleep 32")));
        assert!(dir.path("pf").exists());
        kill(pid as i64, "TERM");
        assert_eq!(r.wait(5).code(), Some(0), "{dp:?}");
        assert!(!dir.path("pf").exists(), "{dp:?}");
        assert!(wait_for(5, || !running(pid, "sleep 32")), "{dp:?}");
        // as with C, the other commands are left to notice on their own
        assert!(running(pid, "sleep 31"), "{dp:?}");
        drop(r);

        // SIGINT: the whole group, dpipe included, dies of it
        let dir = TempDir::new("dpipe-int");
        let mut r = start(dp, &dir, &["-p", "pf", "sleep", "31", "=", "sleep", "32"]);
        let pid = r.pid();
        assert!(wait_for(5, || running(pid, "sleep 31") && running(pid, "sleep 32")));
        kill(pid as i64, "INT");
        assert_eq!(r.wait(5).signal(), Some(2), "{dp:?}");
        assert!(!dir.path("pf").exists(), "{dp:?}");
        assert!(
            wait_for(5, || !running(pid, "sleep 31") && !running(pid, "sleep 32")),
            "{dp:?}"
        );
    }
}

fn cable_ports(sw: &Switch) -> usize {
    sw.cmd("port/print").matches(": vdeplug:").count()
}

/// Joins our switch and the C switch with `dpipe vde_plug SW1 = [middle =]
/// vde_plug SW2`; checks frames cross both ways (or, with `blocked`, that
/// none do), then that SIGTERM to dpipe takes the cable down.
fn join_switches(dp: Dp, middle: &[&str], blocked: bool) {
    let dir = TempDir::new("dpipe-join");
    let sw1 = Switch::start(Impl::Ours, &dir, "one", &["--nostdin"]);
    let sw2 = Switch::start(Impl::C, &dir, "two", &[]);
    let ctl1 = sw1.ctl.display().to_string();
    let ctl2 = sw2.ctl.display().to_string();
    let mut args = vec!["vde_plug", &ctl1, "="];
    if !middle.is_empty() {
        args.extend_from_slice(middle);
        args.push("=");
    }
    args.extend(["vde_plug", &ctl2]);
    let mut r = start(dp, &dir, &args);
    assert!(
        wait_for(10, || cable_ports(&sw1) == 1 && cable_ports(&sw2) == 1),
        "{dp:?}: the cable did not reach both switches: {}",
        r.stderr()
    );
    let mut p1 = Plug::start(&["-D", "left-plug", &ctl1]);
    let mut p2 = Plug::start(&["-D", "right-plug", &ctl2]);
    assert!(wait_for(5, || sw1.cmd("port/print").contains("left-plug")
        && sw2.cmd("port/print").contains("right-plug")));
    if blocked {
        for i in 0..3 {
            p1.send(&frame(BCAST, mac(1), 60, i));
            p2.send(&frame(BCAST, mac(2), 60, i));
        }
        assert!(
            p1.drain(500).is_empty() && p2.drain(300).is_empty(),
            "{dp:?}"
        );
    } else {
        for (i, len) in [60usize, 64, 500, 1000, 1514].into_iter().enumerate() {
            let f = frame(BCAST, mac(1), len, i as u8);
            p1.send(&f);
            assert_eq!(
                p2.recv(3000).as_ref(),
                Some(&f),
                "{dp:?}: {len} bytes left to right"
            );
            let g = frame(mac(1), mac(2), len, 100 + i as u8);
            p2.send(&g);
            assert_eq!(
                p1.recv(3000).as_ref(),
                Some(&g),
                "{dp:?}: {len} bytes right to left"
            );
        }
        assert!(
            p1.drain(200).is_empty() && p2.drain(200).is_empty(),
            "{dp:?}: extra frames"
        );
    }
    kill(r.pid() as i64, "TERM");
    assert_eq!(r.wait(5).code(), Some(0), "{dp:?}");
    assert!(
        wait_for(10, || cable_ports(&sw1) == 0 && cable_ports(&sw2) == 0),
        "{dp:?}: the cable stayed up after SIGTERM"
    );
}

#[test]
fn dpipe_joins_two_switches_with_vde_plug() {
    if !have("vde_plug") || !have("vde_switch") {
        return;
    }
    for dp in impls() {
        join_switches(dp, &[], false);
    }
}

#[test]
fn wirefilter_in_the_middle_uses_the_alternate_descriptors() {
    if !have("vde_plug") || !have("vde_switch") || !have("wirefilter") {
        return;
    }
    for dp in impls() {
        join_switches(dp, &["wirefilter"], false);
        // 100% loss in the middle: the frames do go through wirefilter
        join_switches(dp, &["wirefilter", "-l", "100"], true);
    }
}

/// Our dpipe drops its own stdout once the commands run (the C one closes
/// it), so a reader of dpipe's output sees its end at once.
#[test]
fn dpipe_does_not_hold_its_own_stdout() {
    for dp in impls() {
        let dir = TempDir::new("dpipe-stdout");
        let mut child = Command::new(dp.bin())
            .args(["sleep", "2", "=", "sleep", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .current_dir(&dir.0)
            .spawn()
            .unwrap();
        let _group = Group(child.id());
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut s);
            let _ = tx.send(s);
        });
        let got = rx.recv_timeout(Duration::from_millis(1500));
        assert_eq!(got, Ok(Vec::new()), "{dp:?}: stdout still open");
        assert!(child.try_wait().unwrap().is_none(), "{dp:?}");
        drop(_group);
        let _ = child.wait();
    }
}

#[test]
fn dash_capital_v_prints_the_version() {
    // The C dpipe has no version option (-V, -v, --version: "invalid
    // option", the usage, exit 1); ours prints it as our other tools do.
    for flag in ["-V", "--version"] {
        let out = Command::new(OURS_DPIPE).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("dpipe {}\n", vde::VERSION),
            "{flag}"
        );
    }
    // after the first command, -V belongs to the command
    let dir = TempDir::new("dpipe-version");
    let s = dpipe(
        Dp::Ours,
        &dir,
        &["sh", "-c", "echo \"$*\" > a", "sh", "-V", "=", "true"],
    );
    assert_eq!(s.code(), Some(0));
    assert_eq!(read(&dir, "a"), "-V");
}
