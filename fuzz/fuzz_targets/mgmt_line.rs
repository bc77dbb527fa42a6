//! Management lines (the console and the mgmt socket): the bytes a
//! session sends, cut into lines as the switch cuts them (over-long lines
//! refused), run against a switch with a few ports, one line after another
//! so that commands see the state earlier ones left. No line may panic. `load` is skipped: it
//! reads a file the line names, which only exercises the file system.
#![no_main]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vde::core::{Config, Endpoint, PortRequest, Switch};
use vde::mgmt::{
    commands, execute, Ctx, Line, LineBuffer, NoCables, Session, ShellStats, SwitchInfo, MAX_LINE,
};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let cfg = Config {
        numports: 8,
        fstp: data.first().is_some_and(|b| b & 1 != 0),
        ..Config::default()
    };
    let mut sw = Switch::new(cfg, t0);
    for id in 1..=3 {
        let ep = Endpoint {
            id,
            module: "unix prog",
            descr: format!("fuzz{id}"),
            uid: Some(1000),
            gids: vec![1000],
        };
        let _ = sw.attach(PortRequest::Any, ep);
    }
    let info = SwitchInfo {
        pid: 4242,
        started: t0,
        ctl_dir: PathBuf::from("/nonexistent/fuzz.ctl"),
        ctl_mode: 0o600,
        mgmt: Some((PathBuf::from("/nonexistent/fuzz.mgmt"), 0o600)),
    };
    let stats = ShellStats::default();
    let mut session = Session::default();
    let mut lines = Vec::new();
    let mut cutter = LineBuffer::default();
    cutter.push(data, &mut lines);
    cutter.finish(&mut lines);
    // At most 32 lines an input: each moves the clock a second, and
    // timer events scan every VLAN of the switch.
    for (i, line) in lines.iter().take(32).enumerate() {
        let line = match line {
            Line::Command(l) => {
                assert!(l.len() <= 3 * (MAX_LINE + 1), "line of {} bytes", l.len());
                l
            }
            Line::TooLong => continue,
        };
        let trimmed = line.trim_start_matches([' ', '\t']);
        if commands::find(trimmed).is_some_and(|c| c.path == "load") {
            continue;
        }
        let now = t0 + Duration::from_secs(i as u64);
        let mut ctx = Ctx {
            sw: &mut sw,
            cables: &mut NoCables,
            now,
            info: &info,
            stats: &stats,
            session: &mut session,
            action: vde::mgmt::Action::None,
        };
        let _ = execute(&mut ctx, line);
        while sw.poll_timeout() <= now {
            let t = sw.poll_timeout();
            sw.handle_timeout(t);
        }
        while sw.poll_event().is_some() {}
    }
});
