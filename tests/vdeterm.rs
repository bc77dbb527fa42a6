//! vdeterm: the non-interactive modes (stdin script, `-c`, `--raw`) against
//! our switch and the Debian C switch, errors, and the interactive terminal
//! driven through tmux (prompt, output, completion, async debug messages),
//! compared with the Debian C vdeterm where it matters.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

const VDETERM: &str = env!("CARGO_BIN_EXE_vdeterm");
const WIREFILTER: &str = env!("CARGO_BIN_EXE_wirefilter");

/// Runs our vdeterm with `args`, feeding `stdin`.
fn vdeterm(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(VDETERM)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vdeterm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A script with deterministic output on a fresh switch (no endpoints, so
/// no pids or MACs), with failures in it.
const SCRIPT: &str = "port/showinfo
port/create 9
port/create 9
port/allprint 9

   # a comment
port/print 77
vlan/create 10
vlan/print
bogus command
debug/list
hash/showinfo
";

fn run_script(kind: Impl, raw: bool) -> (String, Option<i32>) {
    let dir = TempDir::new("vdeterm-script");
    let sw = Switch::start(kind, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap();
    let mut args = vec![mgmt];
    if raw {
        args.push("--raw");
    }
    let o = vdeterm(&args, SCRIPT);
    assert!(stderr(&o).is_empty(), "stderr: {}", stderr(&o));
    (stdout(&o).replace(mgmt, "MGMT"), o.status.code())
}

#[test]
fn script_from_stdin_shows_replies_like_vdeterm() {
    let (out, code) = run_script(Impl::Ours, false);
    assert_eq!(code, Some(1), "a command failed, so the status is 1");
    let expected_start = "Numports=32\nHUB=false\ncounters=true\nSuccess\nSuccess\nFile exists\n\
        Port 0009 untagged_vlan=0000 INACTIVE - NOT Unnamed Allocatable\n";
    assert!(out.starts_with(expected_start), "{out}");
    assert!(
        out.contains(
            "\nInvalid argument\nSuccess\nVLAN 0000\nVLAN 0010\nSuccess\nFunction not implemented\nCATEGORY "
        ),
        "{out}"
    );
    assert!(!out.contains("0000 DATA"), "{out}");
    assert!(!out.contains("vde$"), "{out}");
    assert!(out.ends_with("Min persistence 3 secs\nSuccess\n"), "{out}");
}

#[test]
fn raw_script_prints_the_console_lines() {
    let (out, code) = run_script(Impl::Ours, true);
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with(
            "0000 DATA END WITH '.'\nNumports=32\nHUB=false\ncounters=true\n.\n1000 Success\n\
             1000 Success\n1017 File exists\n0000 DATA END WITH '.'\nPort 0009 "
        ),
        "{out}"
    );
    assert!(out.contains("\n1038 Function not implemented\n"), "{out}");
    assert!(!out.contains("vde$"), "{out}");
}

#[test]
fn script_output_is_the_same_on_the_c_switch() {
    if !have("vde_switch") {
        return;
    }
    for raw in [false, true] {
        let (ours, our_code) = run_script(Impl::Ours, raw);
        let (c, c_code) = run_script(Impl::C, raw);
        assert_eq!(ours, c, "raw={raw}");
        assert_eq!(our_code, c_code);
    }
}

#[test]
fn status_is_zero_when_every_command_succeeds() {
    let dir = TempDir::new("vdeterm-ok");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap();
    let o = vdeterm(&[mgmt], "port/create 5\n\nport/setvlan 5 0\n# done\n");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "Success\nSuccess\n");
    // logout ends the script: what follows is not run
    let o = vdeterm(&[mgmt], "port/create 6\nlogout\nport/create 7\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(sw.cmd("port/allprint 6").contains("Port 0006"));
    assert!(
        !sw.cmd("port/allprint 7").contains("Port 0007"),
        "port 7 was made"
    );
}

#[test]
fn command_flags_run_and_exit() {
    let dir = TempDir::new("vdeterm-c");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap();
    // stdin is not read with -c
    let o = vdeterm(
        &[mgmt, "-c", "port/showinfo", "-c", "port/create 5"],
        "bogus\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Numports=32\nHUB=false\ncounters=true\nSuccess\nSuccess\n"
    );
    assert!(sw.cmd("port/allprint 5").contains("Port 0005"));

    let o = vdeterm(&[mgmt, "-c", "port/create 5", "-c", "bogus"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "File exists\nFunction not implemented\n");

    let o = vdeterm(&["--raw", mgmt, "-c", "hash/showinfo"], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("0000 DATA END WITH '.'\nHash size "));
    assert!(stdout(&o).ends_with(".\n1000 Success\n"));

    // async debug lines that come with a reply are shown too
    let o = vdeterm(&[mgmt, "-c", "debug/add port", "-c", "port/create 8"], "");
    assert_eq!(stdout(&o), "Success\n** DBG MSG: port/+ 08\nSuccess\n");
}

#[test]
fn shutdown_ends_the_session_successfully() {
    let dir = TempDir::new("vdeterm-shut");
    let mut sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap().to_string();
    let o = vdeterm(&[&mgmt, "--raw", "-c", "shutdown"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "9999 END OF SESSION\n");
    assert!(wait_for(5, || sw.child.try_wait().unwrap().is_some()));
}

#[test]
fn wirefilter_console() {
    let dir = TempDir::new("vdeterm-wf");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let wf = WireFilter::start(&dir, &s1, &s2);
    let m = wf.mgmt.to_str().unwrap();
    let o = vdeterm(&[m, "-c", "showinfo", "-c", "delay 20"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("WireFilter"), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("Success\nSuccess\n"), "{}", stdout(&o));
}

struct WireFilter {
    child: std::process::Child,
    mgmt: std::path::PathBuf,
}

impl WireFilter {
    fn start(dir: &TempDir, s1: &Switch, s2: &Switch) -> WireFilter {
        let mgmt = dir.path("wf.mgmt");
        let child = Command::new(WIREFILTER)
            .arg("-v")
            .arg(format!("{}:{}", s1.ctl.display(), s2.ctl.display()))
            .arg("-M")
            .arg(&mgmt)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for(5, || std::os::unix::net::UnixStream::connect(&mgmt).is_ok()),
            "wirefilter did not come up"
        );
        WireFilter { child, mgmt }
    }
}

impl Drop for WireFilter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- errors ----

#[test]
fn missing_socket_is_a_clear_error() {
    let dir = TempDir::new("vdeterm-missing");
    let p = dir.path("nothing.mgmt");
    let o = vdeterm(&[p.to_str().unwrap(), "-c", "showinfo"], "");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(p.to_str().unwrap()), "{e}");
    assert!(e.contains("No such file"), "{e}");
    assert!(stdout(&o).is_empty());
    // the switch's control directory instead of its management socket
    let o = vdeterm(&[dir.0.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
}

#[test]
fn a_socket_that_never_speaks_times_out() {
    let dir = TempDir::new("vdeterm-mute");
    let p = dir.path("mute.sock");
    let l = UnixListener::bind(&p).unwrap();
    // accepted connections stay open and silent
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let t = Instant::now();
    let o = vdeterm(&[p.to_str().unwrap(), "-t", "1", "-c", "showinfo"], "");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(p.to_str().unwrap()), "{e}");
    assert!(e.contains("not a VDE management socket"), "{e}");

    // the same with commands from stdin, and the default timeout is finite
    let t = Instant::now();
    let o = vdeterm(&[p.to_str().unwrap()], "showinfo\n");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1));
}

/// A fake console: banner and prompt, then `script` on the connection.
fn fake_console(p: &Path, script: impl FnOnce(std::os::unix::net::UnixStream) + Send + 'static) {
    let l = UnixListener::bind(p).unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            s.write_all(b"fake console\n\nvde$ ").unwrap();
            script(s);
        }
    });
}

#[test]
fn a_console_that_closes_is_a_clear_error() {
    let dir = TempDir::new("vdeterm-close");
    // closes before any prompt
    let p = dir.path("shut.sock");
    let l = UnixListener::bind(&p).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let o = vdeterm(&[p.to_str().unwrap(), "-c", "showinfo"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(p.to_str().unwrap()), "{}", stderr(&o));
    assert!(stderr(&o).contains("closed"), "{}", stderr(&o));

    // closes after reading a command
    let p = dir.path("half.sock");
    fake_console(&p, |mut s| {
        let mut b = [0u8; 128];
        let _ = s.read(&mut b);
    });
    let o = vdeterm(&[p.to_str().unwrap(), "-c", "showinfo", "-c", "x"], "");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("closed"),
        "{e}"
    );

    // answers one command, then never again: a reply timeout
    let p = dir.path("slow.sock");
    fake_console(&p, |mut s| {
        let mut b = [0u8; 128];
        let _ = s.read(&mut b);
        s.write_all(b"1000 Success\n\nvde$ ").unwrap();
        let _ = s.read(&mut b);
        std::thread::sleep(Duration::from_secs(10));
    });
    let t = Instant::now();
    let o = vdeterm(&[p.to_str().unwrap(), "-t", "1", "-c", "a", "-c", "b"], "");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "Success\n");
    let e = stderr(&o);
    assert!(
        e.contains("no reply to `b`") && e.contains(p.to_str().unwrap()),
        "{e}"
    );
}

// ---- interactive, through tmux ----

/// A program running in a detached tmux session of its own server.
struct Tmux {
    server: String,
}

impl Tmux {
    /// Runs `cmd` (a shell command line) in a 120x40 window; when it ends,
    /// the pane shows `EXIT=<status>` and the terminal's `icanon` flag.
    fn start(tag: &str, cmd: &str) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let server = format!(
            "vdeterm-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let line = format!(
            "{cmd}; echo EXIT=$?; stty -a | grep -o -- '-*icanon' | sed 's/^/TTY=/'; sleep 60"
        );
        let ok = Command::new("tmux")
            .args(["-L", &server, "new-session", "-d", "-s", &server])
            .args(["-x", "120", "-y", "40", &line])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { server }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.server, "send-keys", "-t", &self.server])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys failed");
    }

    /// Types literal text.
    fn type_text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args([
                "-L",
                &self.server,
                "send-keys",
                "-t",
                &self.server,
                "-l",
                text,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys failed");
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.server, "capture-pane", "-p", "-t", &self.server])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }

    /// Waits until the screen satisfies `f`; panics with the screen if not.
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut s = String::new();
        let ok = wait_for(10, || {
            s = self.screen();
            f(&s)
        });
        assert!(ok, "waiting for {what}; screen:\n{s}");
        s
    }

    fn wait_for_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.server, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn interactive_prompt_output_completion_and_debug_messages() {
    if !have("tmux") {
        return;
    }
    let dir = TempDir::new("vdeterm-tty");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap();
    let t = Tmux::start("tty", &format!("{VDETERM} {mgmt}"));
    let prompt = format!("vde[{mgmt}]:");

    // banner, then the local prompt
    let s = t.wait("the prompt", |s| last_line(s) == prompt);
    assert!(s.starts_with("VDE switch V."), "{s}");
    assert!(s.lines().nth(1).unwrap_or("").starts_with("(C) "), "{s}");

    // a command and its reply, codes stripped
    t.type_text("port/showinfo");
    t.keys(&["Enter"]);
    let s = t.wait("the reply", |s| s.ends_with(&format!("Success\n{prompt}")));
    assert!(
        s.contains(&format!(
            "{prompt} port/showinfo\n\nNumports=32\nHUB=false\ncounters=true\nSuccess\n"
        )),
        "{s}"
    );
    t.type_text("bogus");
    t.keys(&["Enter"]);
    t.wait_for_text("bogus\n\nFunction not implemented\n");

    // tab completion of a command
    t.type_text("port/sh");
    t.keys(&["Tab"]);
    t.wait("completion", |s| {
        last_line(s) == format!("{prompt} port/showinfo")
    });
    t.keys(&["C-u"]);
    t.wait("an empty line", |s| last_line(s) == prompt);

    // async debug messages, while idle and while a line is being edited
    t.type_text("debug/add port");
    t.keys(&["Enter"]);
    t.wait_for_text("debug/add port\n\nSuccess\n");
    assert!(sw.cmd("port/create 6").contains("1000 Success"));
    let s = t.wait_for_text("** DBG MSG: port/+ 06");
    assert_eq!(last_line(&s), prompt, "{s}");
    t.type_text("port/pr");
    t.wait("typing", |s| last_line(s) == format!("{prompt} port/pr"));
    assert!(sw.cmd("port/create 7").contains("1000 Success"));
    let s = t.wait_for_text("** DBG MSG: port/+ 07");
    assert!(
        s.ends_with(&format!("** DBG MSG: port/+ 07\n{prompt} port/pr")),
        "the edited line is redrawn below the message:\n{s}"
    );
    // the line is still being edited
    t.type_text("int");
    t.keys(&["Enter"]);
    t.wait_for_text("port/print\n\nSuccess\n");

    // history
    t.keys(&["Up"]);
    t.wait("history", |s| {
        last_line(s) == format!("{prompt} port/print")
    });
    t.keys(&["C-u"]);

    // logout ends cleanly
    t.type_text("logout");
    t.keys(&["Enter"]);
    let s = t.wait_for_text("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(t.wait_for_text("TTY=").contains("TTY=icanon"));
}

#[test]
fn interactive_ctrl_d_and_closed_socket() {
    if !have("tmux") {
        return;
    }
    let dir = TempDir::new("vdeterm-eof");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = &sw.mgmt.to_str().unwrap().to_string();
    let prompt = format!("vde[{mgmt}]:");

    let t = Tmux::start("eof", &format!("{VDETERM} {mgmt}"));
    t.wait("the prompt", |s| last_line(s) == prompt);
    t.keys(&["C-d"]);
    assert!(t.wait_for_text("EXIT=").contains("EXIT=0"));

    // the switch goes away while the user is at the prompt
    let t = Tmux::start("gone", &format!("{VDETERM} {mgmt}"));
    t.wait("the prompt", |s| last_line(s) == prompt);
    t.type_text("port/pr");
    drop(sw);
    let s = t.wait_for_text("EXIT=");
    assert!(s.contains("EXIT=1"), "{s}");
    assert!(s.contains(mgmt) && s.contains("closed"), "{s}");
    // the terminal is left in its normal mode
    assert!(t.wait_for_text("TTY=").contains("TTY=icanon"));
}

#[test]
fn interactive_shutdown() {
    if !have("tmux") {
        return;
    }
    let dir = TempDir::new("vdeterm-shutdown");
    let mut sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap().to_string();
    let prompt = format!("vde[{mgmt}]:");
    let t = Tmux::start("shutdown", &format!("{VDETERM} {mgmt}"));
    t.wait("the prompt", |s| last_line(s) == prompt);
    t.type_text("shutdown");
    t.keys(&["Enter"]);
    assert!(t.wait_for_text("EXIT=").contains("EXIT=0"));
    assert!(wait_for(5, || sw.child.try_wait().unwrap().is_some()));
}

#[test]
fn interactive_wirefilter_prompt() {
    if !have("tmux") {
        return;
    }
    let dir = TempDir::new("vdeterm-wft");
    let s1 = Switch::start(Impl::Ours, &dir, "s1", &[]);
    let s2 = Switch::start(Impl::Ours, &dir, "s2", &[]);
    let wf = WireFilter::start(&dir, &s1, &s2);
    let m = wf.mgmt.to_str().unwrap();
    let prompt = format!("VDEwf[{m}]:");
    let t = Tmux::start("wf", &format!("{VDETERM} {m}"));
    t.wait("the wirefilter prompt", |s| last_line(s) == prompt);
    t.type_text("mt");
    t.keys(&["Tab"]);
    t.wait("completion", |s| last_line(s) == format!("{prompt} mtu"));
    t.type_text("1000");
    t.keys(&["Enter"]);
    t.wait_for_text("mtu 1000\n\nSuccess\n");
}

/// The same keystrokes in our vdeterm and the Debian C vdeterm give the
/// same screen.
#[test]
fn interactive_screen_matches_the_c_vdeterm() {
    if !have("tmux") || !have("vdeterm") {
        return;
    }
    let dir = TempDir::new("vdeterm-cmp");
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    let mgmt = sw.mgmt.to_str().unwrap();
    let prompt = format!("vde[{mgmt}]:");
    let mut screens = Vec::new();
    for bin in [VDETERM, "/usr/bin/vdeterm"] {
        let t = Tmux::start("cmp", &format!("{bin} {mgmt}"));
        t.wait("the prompt", |s| last_line(s) == prompt);
        for (cmd, reply) in [
            ("port/showinfo", "Success"),
            ("bogus", "Function not implemented"),
            ("port/print 77", "Invalid argument"),
            ("", ""),
            ("hash/showinfo", "Success"),
        ] {
            let before = t.screen();
            t.type_text(cmd);
            t.keys(&["Enter"]);
            let head = if cmd.is_empty() {
                String::new()
            } else {
                format!(" {cmd}")
            };
            let tail = if reply.is_empty() {
                format!("\n\n{prompt}")
            } else {
                format!("\n{reply}\n{prompt}")
            };
            t.wait("the reply", |s| {
                s.strip_prefix(before.as_str())
                    .is_some_and(|r| r.starts_with(&format!("{head}\n\n")) && r.ends_with(&tail))
            });
        }
        screens.push(t.screen());
    }
    assert_eq!(screens[0], screens[1], "ours, then C");
}
