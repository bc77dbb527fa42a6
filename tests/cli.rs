//! The command line of vde_switch: the C switch's flags with the same
//! meaning, the stdin console, daemon mode, pid files, cleanup.

mod common;

use common::*;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::Duration;
use vde::core::PortRequest;

fn mode_of(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn single_dash_long_options_and_numports() {
    let dir = TempDir::new("cli1");
    let ctl = dir.path("sw");
    let mgmt = dir.path("m");
    let mut child = Command::new(OURS)
        .args([
            "-sock",
            ctl.to_str().unwrap(),
            "-numports",
            "4",
            "-mgmt",
            mgmt.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || std::os::unix::net::UnixStream::connect(
        &mgmt
    )
    .is_ok()));
    let info = Mgmt::connect(&mgmt).cmd("port/showinfo");
    assert!(info.contains("Numports=4"), "{info}");
    // ports 1..4 are usable, 5 is not
    assert!(Client::connect(&ctl, PortRequest::Port(4), "four").is_ok());
    assert!(Client::connect(&ctl, PortRequest::Port(5), "five").is_err());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn console_on_stdin_and_exit_at_eof() {
    let dir = TempDir::new("cli2");
    let ctl = dir.path("sw");
    let mut child = Command::new(OURS)
        .args([
            "-s",
            ctl.to_str().unwrap(),
            "--macaddr",
            "02:11:22:33:44:55",
            "--priority",
            "0x64",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"fstp/showinfo\nport/create 3\nport/create 3\nlogout\n")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "0000 DATA END WITH '.'\nMAC 02:11:22:33:44:55 Priority 100 (0x0064)\nFSTP=false\n.\n1000 Success\n1000 Success\n1017 File exists\n1000 Success\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("EOF on stdin"));
    assert!(!ctl.exists(), "control directory left behind");
}

#[test]
fn rcfile_pidfile_modes_and_hashsize() {
    let dir = TempDir::new("cli3");
    let ctl = dir.path("sw");
    let mgmt = dir.path("m");
    let rc = dir.path("rc");
    let pid = dir.path("pid");
    std::fs::write(&rc, "port/create 5\nvlan/create 7\n").unwrap();
    let mut child = Command::new(OURS)
        .args([
            "-s",
            ctl.to_str().unwrap(),
            "-M",
            mgmt.to_str().unwrap(),
            "-f",
            rc.to_str().unwrap(),
        ])
        .args([
            "-p",
            pid.to_str().unwrap(),
            "-m",
            "660",
            "--mgmtmode",
            "0640",
            "--hashsize",
            "100",
            "--nostdin",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(5, || std::os::unix::net::UnixStream::connect(
        &mgmt
    )
    .is_ok()));
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap(),
        format!("{}\n", child.id())
    );
    assert_eq!(mode_of(&ctl), 0o2770);
    assert_eq!(mode_of(&ctl.join("ctl")), 0o660);
    assert_eq!(mode_of(&mgmt), 0o640);
    let c = Client::connect(&ctl, PortRequest::Any, "m").unwrap();
    assert_eq!(
        mode_of(&c.remote) & 0o077,
        0,
        "root switch gives the data socket mode & 0700"
    );
    let mut m = Mgmt::connect(&mgmt);
    assert!(m
        .cmd("port/allprint")
        .contains("Port 0005 untagged_vlan=0000 INACTIVE - NOT Unnamed Allocatable"));
    assert!(m.cmd("vlan/print 7").contains("VLAN 0007"));
    assert!(m.cmd("hash/showinfo").contains("Hash size 128"));
    assert!(m.cmd("ds/showinfo").contains("std mode 0660"));
    // a second switch on the same directory is refused
    let second = Command::new(OURS)
        .args(["-s", ctl.to_str().unwrap(), "--nostdin"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("Could not bind"),
        "{second:?}"
    );
    // shutdown from the management socket: clean exit, everything removed
    assert_eq!(m.cmd("shutdown"), "9999 END OF SESSION");
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("Hash size must be a power of 2. 100 rounded to 128"),
        "{err}"
    );
    assert!(!ctl.exists() && !mgmt.exists() && !pid.exists());
}

/// Kills our daemon switch if the test ends early (and the pid is still
/// a vde_switch).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).starts_with(OURS) {
            return;
        }
        let _ = Command::new("kill")
            .arg(self.0.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn daemon_mode_and_sigterm_cleanup() {
    let dir = TempDir::new("cli4");
    let ctl = dir.path("sw");
    let pid = dir.path("pid");
    let mgmt = dir.path("mgmt");
    let st = Command::new(OURS)
        .args([
            "-d",
            "-s",
            ctl.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-M",
            mgmt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "daemon parent must exit 0");
    assert!(wait_for(5, || pid.exists() && ctl.join("ctl").exists()));
    // written atomically: never seen empty
    let p: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _reaper = KillOnDrop(p);
    // showinfo names the daemon, not the parent that exited
    let info = Mgmt::connect(&mgmt).cmd("showinfo");
    assert!(info.contains(&format!("\npid {p} MAC ")), "pid {p}: {info}");
    {
        let a = Client::connect(&ctl, PortRequest::Any, "a").unwrap();
        let b = Client::connect(&ctl, PortRequest::Any, "b").unwrap();
        a.send(&frame(BCAST, mac(1), 60, 1));
        assert!(b.recv().is_some());
        assert!(Command::new("kill")
            .arg(p.to_string())
            .status()
            .unwrap()
            .success());
        assert!(
            wait_for(5, || !ctl.exists()),
            "SIGTERM must clean up the control directory"
        );
    }
    assert!(!pid.exists());
    // an existing pid file is refused
    std::fs::write(&pid, "1\n").unwrap();
    let out = Command::new(OURS)
        .args([
            "-s",
            ctl.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "--nostdin",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pid file"));
    assert!(!ctl.exists(), "the refused switch removes what it made");
}

#[test]
fn a_refused_switch_removes_only_what_it_made() {
    let dir = TempDir::new("cli7");
    let first = Switch::start(Impl::Ours, &dir, "first", &[]);
    let refused = |ctl: &std::path::Path| {
        let out = Command::new(OURS)
            .arg("-s")
            .arg(ctl)
            .arg("-M")
            .arg(&first.mgmt)
            .arg("--nostdin")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("Could not bind"), "{err}");
    };
    // a new control directory: made, then removed again
    let new = dir.path("new");
    refused(&new);
    assert!(!new.exists(), "left behind: {:?}", std::fs::read_dir(&new));
    // a directory that was there: kept, with what it held, and no ctl
    let old = dir.path("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("note"), "mine").unwrap();
    refused(&old);
    assert!(old.join("note").exists());
    assert!(!old.join("ctl").exists());
    // the first switch is untouched
    assert!(first.cmd("showinfo").contains("pid "));
    assert!(first.ctl.join("ctl").exists());
}

#[test]
fn hub_mode_floods_known_destinations() {
    let dir = TempDir::new("cli5");
    let sw = Switch::start(Impl::Ours, &dir, "hub", &["-x"]);
    assert!(sw.cmd("port/showinfo").contains("HUB=true"));
    let a = Client::connect(&sw.ctl, PortRequest::Any, "a").unwrap();
    let b = Client::connect(&sw.ctl, PortRequest::Any, "b").unwrap();
    let c = Client::connect(&sw.ctl, PortRequest::Any, "c").unwrap();
    b.send(&frame(BCAST, mac(2), 60, 0));
    let _ = (a.drain(), c.drain());
    a.send(&frame(mac(2), mac(1), 60, 5));
    assert!(b.recv().is_some());
    assert_eq!(
        c.recv(),
        Some(frame(mac(2), mac(1), 60, 5)),
        "a hub floods known unicast too"
    );
    // back to switch mode at run time
    assert_eq!(sw.cmd("port/sethub 0"), "1000 Success\n");
    b.send(&frame(BCAST, mac(2), 60, 0));
    let _ = (a.drain(), c.drain());
    a.send(&frame(mac(2), mac(1), 60, 6));
    assert!(b.recv().is_some());
    assert_eq!(c.recv(), None);
}

#[test]
fn bad_tap_and_group_fail_clearly() {
    // a tap name the kernel refuses is a clear startup error
    let out = Command::new(OURS)
        .args(["-t", "bad/name", "--nostdin", "-s", "/tmp/vdet-never"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot attach tap interface \"bad/name\"")
    );
    assert!(!std::path::Path::new("/tmp/vdet-never").exists());
    let out = Command::new(OURS)
        .args(["-g", "no-such-group-xyz", "--nostdin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such group"));
}

#[test]
fn stale_control_socket_is_replaced() {
    let dir = TempDir::new("cli6");
    let ctl = dir.path("sw");
    std::fs::create_dir_all(&ctl).unwrap();
    drop(std::os::unix::net::UnixListener::bind(ctl.join("ctl")).unwrap());
    let sw_mgmt = dir.path("m");
    let mut child = Command::new(OURS)
        .args([
            "-s",
            ctl.to_str().unwrap(),
            "-M",
            sw_mgmt.to_str().unwrap(),
            "--nostdin",
            "-g",
            "daemon",
        ])
        .spawn()
        .unwrap();
    assert!(wait_for(5, || std::os::unix::net::UnixStream::connect(
        &sw_mgmt
    )
    .is_ok()));
    assert!(Client::connect(&ctl, PortRequest::Any, "x").is_ok());
    let gid = std::fs::metadata(ctl.join("ctl")).unwrap().gid();
    assert_eq!(Some(gid), vde::users::gid_of("daemon"));
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(50));
}
