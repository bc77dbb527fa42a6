//! The management console compared line by line with the Debian C
//! vde_switch driven through the same commands in the same state.

mod common;

use common::*;
use vde::core::PortRequest;

/// Replaces what legitimately differs between two switches (pids, MACs,
/// paths, uptimes, fd-numbered endpoint ids) with fixed tokens.
fn normalize(s: &str, sw: &Switch) -> String {
    let ctl = sw.ctl.display().to_string();
    let mgmt = sw.mgmt.display().to_string();
    s.lines()
        .map(|l| {
            let mut l = l.replace(&ctl, "CTL").replace(&mgmt, "MGMT");
            for key in ["pid ", "pid=", "uptime ", "age ", "endpoint ID "] {
                l = replace_number_after(&l, key);
            }
            if let Some(i) = l.find("MAC ") {
                let end = (i + 4 + 17).min(l.len());
                l.replace_range(i + 4..end, "MACADDR");
            }
            if let Some(i) = l.find("++ root ") {
                l.truncate(i + 8);
                l.push_str("ROOT");
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn replace_number_after(l: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let n = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            out.push('N');
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

/// Commands whose output must match, run in this order on both switches.
const SCRIPT: &[&str] = &[
    "help",
    "help port",
    "ds/showinfo",
    "port/showinfo",
    "hash/showinfo",
    "fstp/showinfo",
    "showinfo",
    "showinfoXYZ",
    "   # a comment",
    "",
    "bogus command",
    "port",
    "port/print",
    "port/allprint",
    "port/print 77",
    "port/print 9",
    "port/print 1",
    "port/create 9",
    "port/create 9",
    "port/create 0",
    "port/allprint 9",
    "port/allocatable 9 1",
    "port/allocatable 30 1",
    "port/createauto",
    "port/remove 1",
    "port/remove 12",
    "port/setvlan 2 77",
    "vlan/create 0",
    "vlan/create 4094",
    "vlan/create 10",
    "vlan/create 10",
    "vlan/create 20",
    "port/setvlan 2 10",
    "vlan/addport 20 1",
    "vlan/addport 20 9",
    "vlan/addport 99 1",
    "vlan/print",
    "vlan/allprint",
    "vlan/print 10",
    "vlan/print 55",
    "vlan/allprint 0",
    "vlan/remove 10",
    "vlan/delport 10 2",
    "vlan/delport 20 9",
    "port/setvlan 2 0",
    "vlan/remove 10",
    "vlan/allprint",
    "hash/setgcint 3",
    "hash/setexpire 200",
    "hash/setminper 5",
    "hash/setsize 100",
    "hash/showinfo",
    "hash/find zz",
    "hash/find 02:00:00:00:00:55",
    "debug/list",
    "debug/add port",
    "debug/add port",
    "debug/del hash",
    "debug/add nonsense",
    "debug/list port",
    "debug/del port/ep",
    "debug/list",
    "plugin/list",
    "plugin/del foo",
    "port/epclose 3 12345",
    "port/resetcounter 99",
    "port/resetcounter",
    "port/print",
    "load /nonexistent/rc",
    "port/setnumports 0",
    "logout",
];

fn run_script(kind: Impl) -> Vec<(String, String)> {
    let dir = TempDir::new("cmp");
    let sw = Switch::start(kind, &dir, "sw", &["--macaddr", "00:ff:01:02:03:04"]);
    let rc = dir.path("rc");
    std::fs::write(
        &rc,
        "port/create 15\n# note\nhash/showinfo\nbogus\nport/setvlan 15 4095\n",
    )
    .unwrap();
    // Two clients on ports 1 and 3 with some traffic, so tables are not empty.
    let a = Client::connect(&sw.ctl, PortRequest::Any, "client-a").unwrap();
    let b = Client::connect(&sw.ctl, PortRequest::Port(3), "client-b").unwrap();
    let b2 = Client::connect(&sw.ctl, PortRequest::Port(3), "client-b2").unwrap();
    a.send(&frame(BCAST, mac(1), 60, 1));
    b.send(&frame(mac(1), mac(3), 100, 2));
    b2.send(&frame(mac(1), mac(4), 20, 3));
    let _ = (b.drain(), b2.drain(), a.drain());
    let mut m = sw.mgmt();
    let mut out = vec![(
        "banner".to_string(),
        m.banner.lines().skip(2).collect::<Vec<_>>().join("\n"),
    )];
    let hash = m.cmd("hash/print");
    out.push(("hash/print".into(), normalize(&hash, &sw)));
    let load = m.cmd(&format!("load {}", rc.display()));
    out.push(("load".into(), load.replace(&rc.display().to_string(), "RC")));
    for c in SCRIPT {
        let r = m.cmd(c);
        out.push((c.to_string(), normalize(&r, &sw)));
    }
    out
}

#[test]
fn console_output_matches_the_c_switch() {
    if !have("vde_switch") {
        return;
    }
    let ours = run_script(Impl::Ours);
    let c = run_script(Impl::C);
    let mut diffs = Vec::new();
    for ((cmd, o), (_, c)) in ours.iter().zip(&c) {
        // showinfo's first two lines are the banner, which names this project
        let (o, c) = if cmd.starts_with("showinfo") {
            (skip_banner(o), skip_banner(c))
        } else {
            (o.clone(), c.clone())
        };
        let (o, c) = if cmd.starts_with("help") {
            // deliberate: upstream's corrected help text for vlan/delport
            (
                o,
                c.replace(
                    "vlan/delport       N PORT          add port to",
                    "vlan/delport       N PORT          delete port from",
                ),
            )
        } else {
            (o, c)
        };
        for (i, (lo, lc)) in o.lines().zip(c.lines()).enumerate() {
            if lo != lc {
                diffs.push(format!("{cmd:?} line {i}:\n  ours: {lo:?}\n  C:    {lc:?}"));
            }
        }
        if o.lines().count() != c.lines().count() {
            diffs.push(format!("{cmd:?}: ours\n{o}\n--- C\n{c}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn skip_banner(s: &str) -> String {
    let mut l: Vec<&str> = s.lines().collect();
    if l.len() > 3 {
        l.drain(1..3);
    }
    l.join("\n")
}

/// Debug events reach subscribed sessions, in the C format, before the
/// reply of the command that caused them; other sessions see nothing.
#[test]
fn debug_events_as_the_c_switch_prints_them() {
    for kind in [Impl::Ours, Impl::C] {
        if kind == Impl::C && !have("vde_switch") {
            continue;
        }
        let dir = TempDir::new("dbg");
        let sw = Switch::start(kind, &dir, "sw", &[]);
        let mut m = sw.mgmt();
        let mut quiet = sw.mgmt();
        assert_eq!(m.cmd("debug/add port"), "1000 Success\n");
        let r = m.cmd("port/createauto");
        assert_eq!(
            r, "3021 port/+ 01\n0000 DATA END WITH '.'\nPort 0001\n.\n1000 Success\n",
            "{kind:?}"
        );
        assert_eq!(m.cmd("debug/add hash"), "1000 Success\n");
        let c = Client::connect(&sw.ctl, PortRequest::Port(9), "dbgtest").unwrap();
        c.send(&frame(BCAST, mac(9), 60, 0));
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(c);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let r = m.cmd("");
        let lines: Vec<&str> = r.lines().map(|l| l.split(" FD ").next().unwrap()).collect();
        assert_eq!(
            lines,
            vec![
                "3021 port/+ 09",
                "3031 port/ep/+ Port 09",
                "3023 port/descr Port 09",
                "3011 hash/+ 02:00:00:00:00:09 VLAN 00:00 Port 9",
                "3032 port/ep/- Port 09",
                "3022 port/- 09",
                "3012 hash/- 02:00:00:00:00:09 VLAN 00:00 Port 9",
            ],
            "{kind:?}: {r}"
        );
        assert_eq!(quiet.cmd(""), "", "{kind:?}");
    }
}
