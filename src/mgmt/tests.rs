//! Tests of the console grammar against outputs observed on the C switch.

use super::*;
use crate::core::{Config, Endpoint, PortRequest, Switch};
use std::path::PathBuf;

struct Con {
    sw: Switch,
    info: SwitchInfo,
    stats: ShellStats,
    session: Session,
    now: Instant,
}

impl Con {
    fn new() -> Self {
        let now = Instant::now();
        let cfg = Config {
            mac: "00:ff:a0:4f:5f:52".parse().unwrap(),
            ..Config::default()
        };
        Con {
            sw: Switch::new(cfg, now),
            info: SwitchInfo {
                pid: 5504,
                started: now,
                ctl_dir: PathBuf::from("/tmp/sw1"),
                ctl_mode: 0o600,
                mgmt: Some((PathBuf::from("/tmp/sw1.mgmt"), 0o600)),
            },
            stats: ShellStats::default(),
            session: Session::default(),
            now,
        }
    }

    fn run(&mut self, line: &str) -> Reply {
        let mut ctx = Ctx {
            sw: &mut self.sw,
            cables: &mut super::NoCables,
            now: self.now,
            info: &self.info,
            stats: &self.stats,
            session: &mut self.session,
            action: Action::None,
        };
        execute(&mut ctx, line)
    }

    fn text(&mut self, line: &str) -> String {
        self.run(line).text
    }
}

#[test]
fn help_matches_the_c_switch_layout() {
    let mut c = Con::new();
    let t = c.text("help\n");
    assert!(t.starts_with("0000 DATA END WITH '.'\nCOMMAND PATH       SYNTAX          HELP\n------------       --------------  ------------\nds                 ============    DATA SOCKET MENU\nds/showinfo                        show ds info\n"));
    assert!(t.contains("\nport/createauto                    create a port with an automatically allocated id (inactive|notallocatable)\n"));
    assert!(t.ends_with("vlan/allprint      [N]             print the list of defined vlan (including inactive port)\n.\n1000 Success\n"));
    assert!(!t.contains("stats"), "hidden commands are not listed");
    let f = c.text("help fstp");
    assert_eq!(f.lines().count(), 1 + 2 + 6 + 1 + 1);
}

#[test]
fn prefix_matching_and_errors() {
    let mut c = Con::new();
    assert_eq!(c.text("bogus"), "1038 Function not implemented\n");
    assert_eq!(c.text(""), "");
    assert_eq!(c.text("   # comment"), "");
    // the first command whose path is a prefix of the input wins
    assert!(c.text("showinfoXYZ").contains(
        "pid 5504 MAC 00:ff:a0:4f:5f:52 uptime 0\nmgmt /tmp/sw1.mgmt perm 0600\n.\n1000 Success\n"
    ));
    // menus are not commands
    assert_eq!(c.text("port"), "1038 Function not implemented\n");
    assert_eq!(
        c.text("port/print 77"),
        "0000 DATA END WITH '.'\n.\n1022 Invalid argument\n"
    );
    assert_eq!(
        c.text("port/print 5"),
        "0000 DATA END WITH '.'\n.\n1006 No such device or address\n"
    );
    assert_eq!(
        c.text("vlan/allprint 0"),
        "0000 DATA END WITH '.'\n.\n1022 Invalid argument\n"
    );
    assert_eq!(
        c.text("hash/find zz"),
        "0000 DATA END WITH '.'\n.\n1022 Invalid argument\n"
    );
    assert_eq!(
        c.text("hash/find 02:00:00:00:00:01"),
        "0000 DATA END WITH '.'\n.\n1019 No such device\n"
    );
    assert_eq!(c.text("port/setvlan 1"), "1022 Invalid argument\n");
    assert_eq!(
        c.text("load /nonexistent/file"),
        "1002 No such file or directory\n"
    );
}

#[test]
fn showinfo_blocks() {
    let mut c = Con::new();
    assert_eq!(
        c.text("ds/showinfo\n"),
        "0000 DATA END WITH '.'\nctl dir /tmp/sw1\nstd mode 0600\n.\n1000 Success\n"
    );
    assert_eq!(
        c.text("port/showinfo\n"),
        "0000 DATA END WITH '.'\nNumports=32\nHUB=false\ncounters=true\n.\n1000 Success\n"
    );
    assert_eq!(
        c.text("hash/showinfo"),
        "0000 DATA END WITH '.'\nHash size 128\nGC interval 2 secs\nGC expire 100 secs\nMin persistence 3 secs\n.\n1000 Success\n"
    );
    assert_eq!(
        c.text("fstp/showinfo"),
        "0000 DATA END WITH '.'\nMAC 00:ff:a0:4f:5f:52 Priority 32768 (0x8000)\nFSTP=false\n.\n1000 Success\n"
    );
    assert_eq!(
        c.text("plugin/list"),
        "0000 DATA END WITH '.'\nNAME                   HELP\n------------           ----\n.\n1002 No such file or directory\n"
    );
}

#[test]
fn port_print_format() {
    let mut c = Con::new();
    c.sw.attach(
        PortRequest::Any,
        Endpoint {
            id: 3,
            module: "unix prog",
            descr: "myplug user=root pid=5909".into(),
            uid: Some(0),
            gids: vec![],
        },
    )
    .unwrap();
    c.sw.attach(
        PortRequest::Port(5),
        Endpoint {
            id: 9,
            module: "unix prog",
            descr: "P5".into(),
            uid: Some(0),
            gids: vec![],
        },
    )
    .unwrap();
    c.sw.attach(
        PortRequest::Port(5),
        Endpoint {
            id: 12,
            module: "unix prog",
            descr: "P5".into(),
            uid: Some(0),
            gids: vec![],
        },
    )
    .unwrap();
    assert_eq!(c.text("port/create 7"), "1000 Success\n");
    assert_eq!(c.text("port/create 7"), "1017 File exists\n");
    let t = c.text("port/allprint");
    assert_eq!(
        t,
        "0000 DATA END WITH '.'\n\
Port 0001 untagged_vlan=0000 ACTIVE - Unnamed Allocatable\n \
Current User: root Access Control: (User: NONE - Group: NONE)\n \
IN:  pkts          0          bytes                    0\n \
OUT: pkts          0          bytes                    0\n  \
-- endpoint ID 0003 module unix prog   : myplug user=root pid=5909\n\
Port 0005 untagged_vlan=0000 ACTIVE - Unnamed Allocatable\n \
Current User: root Access Control: (User: NONE - Group: NONE)\n \
IN:  pkts          0          bytes                    0\n \
OUT: pkts          0          bytes                    0\n  \
-- endpoint ID 0012 module unix prog   : P5\n  \
-- endpoint ID 0009 module unix prog   : P5\n\
Port 0007 untagged_vlan=0000 INACTIVE - NOT Unnamed Allocatable\n \
Current User: NONE Access Control: (User: NONE - Group: NONE)\n \
IN:  pkts          0          bytes                    0\n \
OUT: pkts          0          bytes                    0\n\
.\n1000 Success\n"
    );
    assert!(!c.text("port/print").contains("Port 0007"));
    assert_eq!(
        c.text("port/createauto"),
        "0000 DATA END WITH '.'\nPort 0002\n.\n1000 Success\n"
    );
    assert_eq!(
        c.text("vlan/allprint"),
        "0000 DATA END WITH '.'\nVLAN 0000\n -- Port 0001 tagged=0 active=1 status=Forwarding\n -- Port 0002 tagged=0 active=0 status=Learning\n -- Port 0005 tagged=0 active=1 status=Forwarding\n -- Port 0007 tagged=0 active=0 status=Learning\n.\n1000 Success\n"
    );
    assert_eq!(c.text("port/epclose 5 9"), "1000 Success\n");
    assert_eq!(
        c.text("port/epclose 5 9"),
        "1006 No such device or address\n"
    );
}

#[test]
fn debug_subscriptions() {
    let mut c = Con::new();
    assert_eq!(c.text("debug/add port"), "1000 Success\n");
    assert_eq!(c.text("debug/add port"), "1017 File exists\n");
    assert_eq!(c.text("debug/del hash"), "1002 No such file or directory\n");
    assert_eq!(c.text("debug/add xyz"), "1022 Invalid argument\n");
    let t = c.text("debug/list port/ep");
    assert_eq!(
        t,
        "0000 DATA END WITH '.'\nCATEGORY               TAG STATUS HELP\n------------           --- ------ ----\nport/ep/+              031 ON     new endpoint\nport/ep/-              032 ON     closed endpoint\n.\n1000 Success\n"
    );
    assert_eq!(c.text("debug/del port"), "1000 Success\n");
    assert_eq!(c.session.debug, 0);
}

#[test]
fn logout_shutdown_and_load() {
    let mut c = Con::new();
    let r = c.run("logout");
    assert_eq!(
        (r.text.as_str(), r.action),
        ("9999 END OF SESSION", Action::Logout)
    );
    c.session.console = true;
    assert_eq!(c.run("logout").action, Action::None);
    let dir = std::env::temp_dir().join(format!("vde-mgmt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("rc");
    std::fs::write(&rc, "port/create 5\n# comment\nbogus\n").unwrap();
    let t = c.text(&format!("load {}", rc.display()));
    let p = rc.display();
    assert_eq!(
        t,
        format!("vde[{p}]: port/create 5\n1000 Success\nvde[{p}]: # comment\nvde[{p}]: bogus\n1038 Function not implemented\n1000 Success\n")
    );
    // a script that loads itself stops instead of recursing forever
    std::fs::write(&rc, format!("load {p}\n")).unwrap();
    let t = c.text(&format!("load {p}"));
    assert!(t.contains("1022 Invalid argument"));
    std::fs::remove_dir_all(&dir).unwrap();
    let r = c.run("shutdown");
    assert_eq!(
        (r.text.as_str(), r.action),
        ("9999 END OF SESSION", Action::Shutdown)
    );
}

#[test]
fn line_buffer_splits_and_bounds() {
    let mut lb = LineBuffer::default();
    let mut out = Vec::new();
    lb.push(b"help\nshow", &mut out);
    lb.push(b"info\n", &mut out);
    assert_eq!(
        out,
        vec![
            Line::Command("help\n".into()),
            Line::Command("showinfo\n".into())
        ]
    );
    out.clear();
    lb.push(&vec![b'x'; MAX_LINE + 10], &mut out);
    lb.push(b"\nhelp", &mut out);
    lb.finish(&mut out);
    assert_eq!(out, vec![Line::TooLong, Line::Command("help".into())]);
    out.clear();
    lb.push(b"port/showinfo", &mut out);
    assert!(out.is_empty());
    lb.take_partial(&mut out);
    assert_eq!(out, vec![Line::Command("port/showinfo".into())]);
}

#[test]
fn c_integer_parsing() {
    assert_eq!(atoi("42abc"), 42);
    assert_eq!(atoi("abc"), 0);
    assert_eq!(atoi(" -7"), -7);
    assert_eq!(scan_int("0x1f rest"), Some((31, " rest")));
    assert_eq!(scan_int("010"), Some((8, "")));
    assert_eq!(scan_int("zz"), None);
    assert_eq!(scan_ints::<2>("3 4"), Some([3, 4]));
    assert_eq!(scan_ints::<2>("3"), None);
    assert_eq!(
        scan_int("99999999999999999999999"),
        Some((999999999999999999, ""))
    );
}

/// Found by fuzzing (fuzz/fuzz_targets/mgmt_line.rs): `port/setnumports`
/// with a huge number made the switch allocate gigabytes and abort.
#[test]
fn setnumports_is_bounded() {
    let mut c = Con::new();
    for n in ["713224444", "65536", "2147483646"] {
        assert_eq!(
            c.text(&format!("port/setnumports {n}")),
            "1022 Invalid argument\n",
            "{n}"
        );
    }
    assert_eq!(c.sw.numports(), 32);
    assert_eq!(c.text("port/setnumports 65535"), "1000 Success\n");
    assert_eq!(c.sw.numports(), 65535);
}
