//! Port access control (port/setuser, port/setgroup) with the kernel's peer
//! credentials, tested with clients running under other uids and gids
//! (setpriv), and the control directory modes that let them in.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// Our vde_plug run as `uid:gid`, attached to `vnl`; returns whether the
/// switch accepted it (the plug is then left running and returned).
fn plug_as(uid: u32, gid: u32, vnl: &str, descr: &str) -> Option<std::process::Child> {
    let mut c = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            OUR_PLUG,
            "-D",
            descr,
            vnl,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // refused plugs exit at once with status 1; accepted ones keep running
    std::thread::sleep(std::time::Duration::from_millis(400));
    match c.try_wait().unwrap() {
        Some(status) => {
            assert_eq!(status.code(), Some(1), "{descr}");
            None
        }
        None => Some(c),
    }
}

#[test]
fn setuser_and_setgroup_use_peer_credentials() {
    if !is_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new("access");
    // -m 666: any local user may talk to the control socket
    let sw = Switch::start(Impl::Ours, &dir, "sw", &["-m", "666"]);
    let ctl = sw.ctl.display().to_string();
    assert_eq!(sw.cmd("port/create 5"), "1000 Success\n");
    assert_eq!(sw.cmd("port/create 6"), "1000 Success\n");
    assert_eq!(sw.cmd("port/setuser 5 41001"), "1000 Success\n");
    assert_eq!(sw.cmd("port/setgroup 6 41777"), "1000 Success\n");
    assert_eq!(
        sw.cmd("port/setuser 7 nobody-such-user"),
        "1022 Invalid argument\n"
    );

    // port 5: only uid 41001 (and root)
    assert!(
        plug_as(41002, 41002, &format!("{ctl}[5]"), "wrong-user").is_none(),
        "another uid got port 5"
    );
    let mut owner =
        plug_as(41001, 41001, &format!("{ctl}[5]"), "owner").expect("the owner was refused");
    let p5 = sw.cmd("port/print 5");
    assert!(
        p5.contains("Current User: 41001 Access Control: (User: 41001 - Group: NONE)"),
        "{p5}"
    );
    // a second endpoint on port 5 from another uid: refused (EADDRINUSE)
    assert!(plug_as(41002, 41002, &format!("{ctl}[5]"), "intruder").is_none());

    // port 6: members of group 41777
    assert!(plug_as(41003, 41003, &format!("{ctl}[6]"), "outsider").is_none());
    let mut member =
        plug_as(41003, 41777, &format!("{ctl}[6]"), "member").expect("a member was refused");
    assert!(sw
        .cmd("port/print 6")
        .contains("Access Control: (User: NONE - Group: 41777)"));

    // root may use a restricted port
    let _ = owner.kill();
    let _ = owner.wait();
    assert!(wait_for(5, || !sw.cmd("port/print").contains("Port 0005")));
    let mut root = plug_as(0, 0, &format!("{ctl}[5]"), "root").expect("root was refused");

    // unrestricted ports take anyone
    let mut anyone = plug_as(41004, 41004, &ctl, "anyone").expect("an unrestricted port refused");
    for c in [&mut member, &mut root, &mut anyone] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn control_directory_modes_keep_other_users_out() {
    if !is_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new("modes");
    // default mode 0600 / dir 02700: another uid cannot even reach ctl
    let sw = Switch::start(Impl::Ours, &dir, "sw", &[]);
    assert!(plug_as(41005, 41005, &sw.ctl.display().to_string(), "locked-out").is_none());
    // -g GROUP with -m 660: members of that group get in, others do not
    let sw2 = Switch::start(Impl::Ours, &dir, "sw2", &["-m", "660", "-g", "41888"]);
    let ctl2 = sw2.ctl.display().to_string();
    assert!(plug_as(41006, 41006, &ctl2, "not-in-group").is_none());
    let mut ok = plug_as(41006, 41888, &ctl2, "in-group").expect("a group member was refused");
    let _ = ok.kill();
    let _ = ok.wait();
}
