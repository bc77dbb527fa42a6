//! The command table of the switch console and its handlers. `help`,
//! dispatch and prefix matching all read [`TABLE`]; its order is the C
//! switch's registration order, which decides prefix matches.

use std::fmt::Write as _;

use super::{atoi, debug, execute, scan_int, scan_ints, Action, Ctx};
use crate::core::{PortId, MAX_VLAN, NO_VLAN};
use crate::errno::*;
use crate::frame::Mac;
use crate::users;

pub type Handler = fn(&mut Ctx<'_>, &str, &mut String) -> Result<(), Errno>;

#[derive(Clone, Copy)]
pub enum Kind {
    /// A menu header: listed by `help`, never executed.
    Menu,
    /// A command. `with_file` commands always print a data block.
    Cmd { with_file: bool, handler: Handler },
}

#[derive(Clone, Copy)]
pub struct Command {
    pub path: &'static str,
    pub syntax: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Not listed by `help` (our additions, so `help` stays byte-identical
    /// to the C switch's).
    pub hidden: bool,
}

const fn menu(path: &'static str, help: &'static str) -> Command {
    Command {
        path,
        syntax: "============",
        help,
        kind: Kind::Menu,
        hidden: false,
    }
}

const fn cmd(
    path: &'static str,
    syntax: &'static str,
    help: &'static str,
    handler: Handler,
) -> Command {
    Command {
        path,
        syntax,
        help,
        kind: Kind::Cmd {
            with_file: false,
            handler,
        },
        hidden: false,
    }
}

const fn out(
    path: &'static str,
    syntax: &'static str,
    help: &'static str,
    handler: Handler,
) -> Command {
    Command {
        path,
        syntax,
        help,
        kind: Kind::Cmd {
            with_file: true,
            handler,
        },
        hidden: false,
    }
}

const fn hidden(c: Command) -> Command {
    Command { hidden: true, ..c }
}

pub static TABLE: &[Command] = &[
    menu("ds", "DATA SOCKET MENU"),
    out("ds/showinfo", "", "show ds info", ds_showinfo),
    out(
        "help",
        "[arg]",
        "Help (limited to arg when specified)",
        help,
    ),
    cmd("logout", "", "logout from this mgmt terminal", logout),
    cmd("shutdown", "", "shutdown of the switch", shutdown),
    out("showinfo", "", "show switch version and info", showinfo),
    cmd("load", "path", "load a configuration script", load),
    menu("debug", "DEBUG MENU"),
    out("debug/list", "", "list debug categories", debug_list),
    cmd(
        "debug/add",
        "dbgpath",
        "enable debug info for a given category",
        debug_add,
    ),
    cmd(
        "debug/del",
        "dbgpath",
        "disable debug info for a given category",
        debug_del,
    ),
    menu("plugin", "PLUGINS MENU"),
    out("plugin/list", "", "list plugins", plugin_list),
    cmd("plugin/add", "library", "load a plugin", plugin_add),
    cmd("plugin/del", "name", "unload a plugin", plugin_del),
    menu("hash", "HASH TABLE MENU"),
    out("hash/showinfo", "", "show hash info", hash_showinfo),
    cmd("hash/setsize", "N", "change hash size", hash_setsize),
    cmd(
        "hash/setgcint",
        "N",
        "change garbage collector interval",
        hash_setgcint,
    ),
    cmd(
        "hash/setexpire",
        "N",
        "change hash entries expire time",
        hash_setexpire,
    ),
    cmd(
        "hash/setminper",
        "N",
        "minimum persistence time",
        hash_setminper,
    ),
    out("hash/print", "", "print the hash table", hash_print),
    out("hash/find", "MAC [VLAN]", "MAC lookup", hash_find),
    menu("fstp", "FAST SPANNING TREE MENU"),
    out("fstp/showinfo", "", "show fstp info", fstp_showinfo),
    out(
        "fstp/setfstp",
        "0/1",
        "Fast spanning tree protocol 1=ON 0=OFF",
        fstp_setfstp,
    ),
    cmd(
        "fstp/setedge",
        "VLAN PORT 1/0",
        "Define an edge port for a vlan 1=Y 0=N",
        fstp_setedge,
    ),
    hidden(cmd(
        "fstp/setrstp",
        "PORT 1/0",
        "speak standard 802.1w RSTP BPDUs on a port 1=Y 0=N",
        fstp_setrstp,
    )),
    hidden(cmd(
        "fstp/rootguard",
        "PORT 1/0",
        "root guard: superior BPDUs hold the port discarding 1=Y 0=N",
        fstp_rootguard,
    )),
    hidden(cmd(
        "fstp/bpduguard",
        "PORT 1/0",
        "BPDU guard: a BPDU closes the port's endpoints 1=Y 0=N",
        fstp_bpduguard,
    )),
    cmd(
        "fstp/bonus",
        "VLAN PORT COST",
        "set the port bonus for a vlan",
        fstp_bonus,
    ),
    out(
        "fstp/print",
        "[N]",
        "print fst data for the defined vlan",
        fstp_print,
    ),
    menu("port", "PORT STATUS MENU"),
    out("port/showinfo", "", "show port info", port_showinfo),
    cmd(
        "port/setnumports",
        "N",
        "set the number of ports",
        port_setnumports,
    ),
    cmd("port/sethub", "0/1", "1=HUB 0=switch", port_sethub),
    cmd(
        "port/setvlan",
        "N VLAN",
        "set port VLAN (untagged)",
        port_setvlan,
    ),
    out(
        "port/createauto",
        "",
        "create a port with an automatically allocated id (inactive|notallocatable)",
        port_createauto,
    ),
    cmd(
        "port/create",
        "N",
        "create the port N (inactive|notallocatable)",
        port_create,
    ),
    cmd("port/remove", "N", "remove the port N", port_remove),
    cmd(
        "port/allocatable",
        "N 0/1",
        "Is the port allocatable as unnamed? 1=Y 0=N",
        port_allocatable,
    ),
    cmd(
        "port/setuser",
        "N user",
        "access control: set user",
        port_setuser,
    ),
    cmd(
        "port/setgroup",
        "N user",
        "access control: set group",
        port_setgroup,
    ),
    cmd(
        "port/epclose",
        "N ID",
        "remove the endpoint port N/id ID",
        port_epclose,
    ),
    cmd(
        "port/resetcounter",
        "[N]",
        "reset the port (N) counters",
        port_resetcounter,
    ),
    hidden(cmd(
        "port/maclimit",
        "N MAX",
        "port security: most MACs learned on the port (0=no limit)",
        port_maclimit,
    )),
    hidden(cmd(
        "port/movedamp",
        "N SECS",
        "port security: MACs seen elsewhere within SECS stay there (0=off)",
        port_movedamp,
    )),
    hidden(cmd(
        "port/stormlimit",
        "N PPS",
        "storm control: flooded frames per second from the port (0=off)",
        port_stormlimit,
    )),
    out(
        "port/print",
        "[N]",
        "print the port/endpoint table",
        port_print,
    ),
    out(
        "port/allprint",
        "[N]",
        "print the port/endpoint table (including inactive port)",
        port_allprint,
    ),
    menu("vlan", "VLAN MANAGEMENT MENU"),
    cmd(
        "vlan/create",
        "N",
        "create the VLAN with tag N",
        vlan_create,
    ),
    cmd(
        "vlan/remove",
        "N",
        "remove the VLAN with tag N",
        vlan_remove,
    ),
    cmd(
        "vlan/addport",
        "N PORT",
        "add port to the vlan N (tagged)",
        vlan_addport,
    ),
    cmd(
        "vlan/delport",
        "N PORT",
        "delete port from the vlan N (tagged)",
        vlan_delport,
    ),
    out(
        "vlan/print",
        "[N]",
        "print the list of defined vlan",
        vlan_print,
    ),
    out(
        "vlan/allprint",
        "[N]",
        "print the list of defined vlan (including inactive port)",
        vlan_allprint,
    ),
    hidden(out(
        "stats",
        "",
        "counters of dropped frames and refused requests",
        stats,
    )),
    hidden(menu("cable", "CABLES MENU")),
    hidden(out(
        "cable/add",
        "VNL",
        "open a cable to another switch (any VNL; a port while it is up)",
        cable_add,
    )),
    hidden(out(
        "cable/listen",
        "VNL",
        "accept cables (each peer on its own port)",
        cable_listen,
    )),
    hidden(out(
        "cable/del",
        "PORT",
        "end the cable on a port",
        cable_del,
    )),
    hidden(out(
        "cable/print",
        "[PORT]",
        "show the cables: state, peer, cipher, counters",
        cable_print,
    )),
    hidden(out(
        "cable/json",
        "[PORT]",
        "cable/print as JSON",
        cable_json,
    )),
];

/// The first command (not menu) whose path is a prefix of `line`.
pub fn find(line: &str) -> Option<&'static Command> {
    TABLE
        .iter()
        .find(|c| matches!(c.kind, Kind::Cmd { .. }) && line.starts_with(c.path))
}

// ---------------------------------------------------------------------
// Argument helpers

fn int_arg(args: &str) -> Result<i64, Errno> {
    scan_int(args).map(|(v, _)| v).ok_or(EINVAL)
}

fn two_ints(args: &str) -> Result<(i64, i64), Errno> {
    scan_ints::<2>(args).map(|[a, b]| (a, b)).ok_or(EINVAL)
}

fn opt_int(args: &str) -> Option<i64> {
    if args.trim().is_empty() {
        None
    } else {
        Some(atoi(args))
    }
}

// ---------------------------------------------------------------------
// General

fn help(_: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let filter = args.trim_end_matches(['\n']);
    o.push_str("COMMAND PATH       SYNTAX          HELP\n");
    o.push_str("------------       --------------  ------------\n");
    for c in TABLE
        .iter()
        .filter(|c| !c.hidden && c.path.starts_with(filter))
    {
        let _ = writeln!(o, "{:<18} {:<15} {}", c.path, c.syntax, c.help);
    }
    Ok(())
}

fn logout(ctx: &mut Ctx<'_>, _: &str, _: &mut String) -> Result<(), Errno> {
    if !ctx.session.console {
        ctx.action = Action::Logout;
    }
    Ok(())
}

fn shutdown(ctx: &mut Ctx<'_>, _: &str, _: &mut String) -> Result<(), Errno> {
    tracing::warn!("Shutdown from mgmt command");
    ctx.action = Action::Shutdown;
    Ok(())
}

fn showinfo(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    o.push_str(&super::banner());
    let uptime = ctx
        .now
        .saturating_duration_since(ctx.info.started)
        .as_secs();
    let _ = writeln!(
        o,
        "\npid {} MAC {} uptime {}",
        ctx.info.pid,
        ctx.sw.config().mac,
        uptime
    );
    if let Some((path, perm)) = &ctx.info.mgmt {
        let _ = writeln!(o, "mgmt {} perm {:04o}", path.display(), perm);
    }
    Ok(())
}

fn ds_showinfo(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let _ = writeln!(o, "ctl dir {}", ctx.info.ctl_dir.display());
    let _ = writeln!(o, "std mode {:04o}", ctx.info.ctl_mode);
    Ok(())
}

/// Deepest nesting of `load` (a script loading itself stops here).
const MAX_LOAD_DEPTH: u32 = 16;

fn load(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let path = args.trim_end();
    if ctx.session.depth >= MAX_LOAD_DEPTH {
        return Err(EINVAL);
    }
    let text = std::fs::read(path).map_err(|_| ENOENT)?;
    let text = String::from_utf8_lossy(&text);
    ctx.session.depth += 1;
    for line in text.lines() {
        // The C switch reads rc lines into a 128-byte buffer.
        let line: String = line.chars().take(127).collect();
        let _ = writeln!(o, "vde[{path}]: {line}");
        let r = execute(ctx, &line);
        o.push_str(&r.text);
        if r.action != Action::None {
            ctx.action = r.action;
            break;
        }
    }
    ctx.session.depth -= 1;
    Ok(())
}

fn stats(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let d = ctx.sw.drops;
    let s = ctx.stats;
    let t = ctx.sw.mac_table();
    let _ = writeln!(o, "rx frames {}", s.rx_frames);
    let _ = writeln!(o, "drop runt {}", d.runt);
    let _ = writeln!(o, "drop oversized {}", d.oversized);
    let _ = writeln!(o, "drop bad_tag {}", d.bad_tag);
    let _ = writeln!(o, "drop vlan {}", d.vlan);
    let _ = writeln!(o, "drop not_forwarding {}", d.not_forwarding);
    let _ = writeln!(o, "drop same_port {}", d.same_port);
    let _ = writeln!(o, "drop bad_bpdu {}", d.bad_bpdu);
    let _ = writeln!(o, "drop no_port {}", d.no_port);
    let _ = writeln!(o, "drop tx_full {}", s.tx_full);
    let _ = writeln!(o, "drop tx_error {}", s.tx_error);
    let _ = writeln!(o, "drop cable_no_port {}", s.cable_no_port);
    let _ = writeln!(o, "drop bpdu_guard {}", d.bpdu_guard);
    let _ = writeln!(o, "drop mac_limit {}", d.mac_limit);
    let _ = writeln!(o, "drop mac_move {}", d.mac_move);
    let _ = writeln!(o, "drop storm {}", d.storm);
    let _ = writeln!(o, "learn table_full {}", d.table_full);
    let g = ctx.sw.guard_stats;
    let _ = writeln!(o, "guard root_inconsistent {}", g.root_inconsistent);
    let _ = writeln!(o, "guard bpdu_closed {}", g.bpdu_closed);
    let _ = writeln!(o, "hash entries {} max {}", t.len(), t.max_entries());
    let _ = writeln!(o, "ctl bad_requests {}", s.bad_requests);
    let _ = writeln!(o, "ctl dropped_handshakes {}", s.dropped_handshakes);
    let _ = writeln!(o, "mgmt long_lines {}", s.long_lines);
    Ok(())
}

// ---------------------------------------------------------------------
// Cables

fn cable_open(ctx: &mut Ctx<'_>, args: &str, o: &mut String, listen: bool) -> Result<(), Errno> {
    let vnl = args.trim();
    if vnl.is_empty() {
        return Err(EINVAL);
    }
    answer(o, ctx.cables.add(ctx.sw, vnl, listen, ctx.now))
}

/// Writes a cable command's line (what it did, or why not) into the data
/// block and returns its status.
fn answer(o: &mut String, r: Result<String, (Errno, String)>) -> Result<(), Errno> {
    let (line, status) = match r {
        Ok(line) => (line, Ok(())),
        Err((e, why)) => (why, Err(e)),
    };
    let _ = writeln!(o, "{line}");
    status
}

fn cable_add(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    cable_open(ctx, args, o, false)
}

fn cable_listen(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    cable_open(ctx, args, o, true)
}

fn cable_del(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let port = int_arg(args)?;
    answer(o, ctx.cables.del(ctx.sw, port, ctx.now))
}

fn cable_print(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let port = opt_int(args);
    ctx.cables.print(ctx.sw, port, false, ctx.now, o)
}

fn cable_json(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let port = opt_int(args);
    ctx.cables.print(ctx.sw, port, true, ctx.now, o)
}

// ---------------------------------------------------------------------
// Debug

fn debug_list(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let prefix = args.trim_end();
    o.push_str("CATEGORY               TAG STATUS HELP\n");
    o.push_str("------------           --- ------ ----\n");
    for (i, (path, tag, help)) in debug::CATEGORIES.iter().enumerate() {
        if path.starts_with(prefix) {
            let on = if ctx.session.debug & (1 << i) != 0 {
                "ON"
            } else {
                "OFF"
            };
            let _ = writeln!(o, "{path:<22} {tag} {on:<6} {help}");
        }
    }
    Ok(())
}

fn debug_add(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let m = debug::matching(args.trim_end());
    if m == 0 || args.trim_end().is_empty() {
        return Err(EINVAL);
    }
    if ctx.session.debug & m == m {
        return Err(EEXIST);
    }
    ctx.session.debug |= m;
    Ok(())
}

fn debug_del(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let m = debug::matching(args.trim_end());
    if m == 0 || args.trim_end().is_empty() {
        return Err(EINVAL);
    }
    if ctx.session.debug & m == 0 {
        return Err(ENOENT);
    }
    ctx.session.debug &= !m;
    Ok(())
}

// ---------------------------------------------------------------------
// Plugins: C shared objects cannot be loaded into this switch.

fn plugin_list(_: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    o.push_str("NAME                   HELP\n");
    o.push_str("------------           ----\n");
    Err(ENOENT)
}

fn plugin_add(_: &mut Ctx<'_>, _: &str, _: &mut String) -> Result<(), Errno> {
    Err(ENOENT)
}

fn plugin_del(_: &mut Ctx<'_>, _: &str, _: &mut String) -> Result<(), Errno> {
    Err(ENOENT)
}

// ---------------------------------------------------------------------
// Hash table

fn hash_showinfo(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let t = ctx.sw.timers;
    let _ = writeln!(o, "Hash size {}", ctx.sw.mac_table().size());
    let _ = writeln!(o, "GC interval {} secs", t.gc_interval);
    let _ = writeln!(o, "GC expire {} secs", t.expire);
    let _ = writeln!(o, "Min persistence {} secs", t.min_persistence);
    Ok(())
}

fn hash_setsize(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let n = atoi(args);
    let (size, rounded) = ctx.sw.hash_setsize(n)?;
    if rounded {
        tracing::warn!("Hash size must be a power of 2. {n} rounded to {size}");
    }
    Ok(())
}

fn set_timer(args: &str, slot: &mut u64) -> Result<(), Errno> {
    let n = atoi(args);
    if n < 0 {
        return Err(EINVAL);
    }
    *slot = n as u64;
    Ok(())
}

fn hash_setgcint(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    set_timer(args, &mut ctx.sw.timers.gc_interval)
}

fn hash_setexpire(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    set_timer(args, &mut ctx.sw.timers.expire)
}

fn hash_setminper(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    set_timer(args, &mut ctx.sw.timers.min_persistence)
}

fn hash_line(o: &mut String, bucket: usize, mac: Mac, vlan: u16, port: PortId, age: u64) {
    let _ = writeln!(
        o,
        "Hash: {bucket:04} Addr: {mac} VLAN {vlan:04} to port: {port:03}  age {age} secs"
    );
}

fn hash_print(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let now = ctx.sw.secs(ctx.now);
    for e in ctx.sw.mac_table().entries() {
        hash_line(
            o,
            e.bucket,
            e.mac,
            e.vlan,
            e.port,
            now.saturating_sub(e.last_seen),
        );
    }
    Ok(())
}

fn hash_find(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let mut it = args.split_whitespace();
    let mac: Mac = it.next().ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?;
    let vlan = it.next().map(atoi).unwrap_or(0);
    if !(0..=i64::from(NO_VLAN)).contains(&vlan) {
        return Err(EINVAL);
    }
    let e = ctx.sw.mac_table().get(mac, vlan as u16).ok_or(ENODEV)?;
    let now = ctx.sw.secs(ctx.now);
    // The C switch prints port+1 here (a bug); we print the real port.
    hash_line(
        o,
        e.bucket,
        e.mac,
        e.vlan,
        e.port,
        now.saturating_sub(e.last_seen),
    );
    Ok(())
}

// ---------------------------------------------------------------------
// Fast spanning tree (the protocol itself comes with the overlay work)

fn fstp_showinfo(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let c = ctx.sw.config();
    let _ = writeln!(
        o,
        "MAC {} Priority {} (0x{:04x})",
        c.mac, c.priority, c.priority
    );
    let _ = writeln!(o, "FSTP={}", ctx.sw.fstp_on());
    Ok(())
}

fn fstp_setfstp(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let on = atoi(args) != 0;
    if on && ctx.sw.is_hub() {
        o.push_str("Can't use fstp in hub mode\n");
        return Ok(());
    }
    ctx.sw.set_now(ctx.now);
    ctx.sw.set_fstp(on);
    Ok(())
}

fn fstp_setedge(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let [v, p, e] = scan_ints::<3>(args).ok_or(EINVAL)?;
    ctx.sw.set_now(ctx.now);
    ctx.sw.fstp_setedge(v, p, e != 0)
}

fn fstp_setrstp(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let [p, on] = scan_ints::<2>(args).ok_or(EINVAL)?;
    ctx.sw.set_now(ctx.now);
    ctx.sw.fstp_setrstp(p, on != 0)
}

fn fstp_rootguard(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let [p, on] = scan_ints::<2>(args).ok_or(EINVAL)?;
    ctx.sw.set_now(ctx.now);
    ctx.sw.fstp_rootguard(p, on != 0)
}

fn fstp_bpduguard(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let [p, on] = scan_ints::<2>(args).ok_or(EINVAL)?;
    ctx.sw.fstp_bpduguard(p, on != 0)
}

fn fstp_bonus(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let [v, p, c] = scan_ints::<3>(args).ok_or(EINVAL)?;
    ctx.sw.set_now(ctx.now);
    ctx.sw.fstp_bonus(v, p, c)
}

fn fstp_print(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    let only = opt_int(args);
    if let Some(n) = only {
        if !(0..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        if ctx.sw.vlan(n as u16).is_none() {
            return Err(ENXIO);
        }
    }
    let c = ctx.sw.config().clone();
    let on = ctx.sw.fstp_on();
    let uptime = ctx.sw.secs(ctx.now);
    let own = crate::core::bpdu::BridgeId::new(c.priority, c.mac);
    for (v, vlan) in ctx.sw.vlans() {
        if only.is_some_and(|n| n != i64::from(v)) {
            continue;
        }
        let inst = ctx.sw.fstp_instance(v);
        let is_root = inst.is_none_or(|i| i.is_root());
        let _ = writeln!(
            o,
            "FST DATA VLAN {v:04} {} {}",
            if is_root { "ROOTSWITCH" } else { "" },
            if on { "" } else { "FSTP IS DISABLED" }
        );
        let root = inst.map_or(own, |i| i.root());
        let _ = writeln!(o, " ++ root {root}");
        match inst.and_then(|i| i.designated()) {
            Some(d) => {
                let _ = writeln!(o, " ++ designated {d}");
            }
            None => o.push_str(" ++ designated ff:ff:ff:ff:ff:ff:ff:ff\n"),
        }
        let (rp, cost, age) = match inst {
            Some(i) => (i.root_port().unwrap_or(0), i.root_cost(), i.age(ctx.now)),
            None => (0, 0, uptime),
        };
        let (bp, bc) = vlan.bonus.unwrap_or((0, 0));
        let _ = writeln!(
            o,
            " ++ rootport {rp:04} cost {cost} age {age} bonusport {bp:04} bonuscost {bc}"
        );
        for (tagged, set) in [(0, &vlan.untagged), (1, &vlan.tagged)] {
            for p in set
                .iter()
                .filter(|&p| ctx.sw.port(p).is_some_and(|x| x.is_active()))
            {
                let (pc, role) = match inst {
                    Some(i) => (i.port_cost(p), i.port_role(p).name()),
                    None => (
                        20_000_000,
                        if tagged == 1 { "Unknown" } else { "Designated" },
                    ),
                };
                let _ = write!(
                    o,
                    " -- Port {p:04} tagged={tagged} portcost={pc} role={role}"
                );
                // guard state only where a guard is set: the line stays the
                // C switch's otherwise
                if ctx.sw.root_guarded(p) {
                    let (held, n) = inst.map_or((false, 0), |i| {
                        (i.is_root_inconsistent(p), i.guard_episodes(p))
                    });
                    let st = if held { "root-inconsistent" } else { "ok" };
                    let _ = write!(o, " rootguard={st} episodes={n}");
                }
                if ctx.sw.bpdu_guarded(p) {
                    o.push_str(" bpduguard=on");
                }
                o.push('\n');
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Ports

fn port_showinfo(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let _ = writeln!(o, "Numports={}", ctx.sw.numports());
    let _ = writeln!(o, "HUB={}", ctx.sw.is_hub());
    o.push_str("counters=true\n");
    Ok(())
}

fn port_setnumports(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.set_numports(atoi(args))
}

fn port_sethub(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.set_hub(atoi(args) != 0);
    Ok(())
}

fn port_setvlan(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, v) = two_ints(args)?;
    ctx.sw.port_setvlan(p, v)
}

fn port_createauto(ctx: &mut Ctx<'_>, _: &str, o: &mut String) -> Result<(), Errno> {
    let p = ctx.sw.port_createauto()?;
    let _ = writeln!(o, "Port {p:04}");
    Ok(())
}

fn port_create(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.port_create(int_arg(args)?)
}

fn port_remove(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.port_remove(int_arg(args)?)
}

fn port_allocatable(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, f) = two_ints(args)?;
    ctx.sw.port_allocatable(p, f != 0)
}

fn user_or_group(args: &str, parse: fn(&str) -> Option<u32>) -> Result<(i64, Option<u32>), Errno> {
    let (p, rest) = scan_int(args).ok_or(EINVAL)?;
    let who = rest.split_whitespace().next().ok_or(EINVAL)?;
    let id = match who {
        "NONE" | "ANY" => None,
        w => Some(parse(w).ok_or(EINVAL)?),
    };
    Ok((p, id))
}

fn port_setuser(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, uid) = user_or_group(args, users::parse_user)?;
    ctx.sw.port_setuser(p, uid)
}

fn port_setgroup(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, gid) = user_or_group(args, users::parse_group)?;
    ctx.sw.port_setgroup(p, gid)
}

fn port_epclose(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, id) = two_ints(args)?;
    ctx.sw.port_epclose(p, id)
}

fn port_resetcounter(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.port_resetcounter(opt_int(args))
}

fn name_or_none(id: Option<u32>, lookup: fn(u32) -> Option<String>) -> String {
    match id {
        None => "NONE".into(),
        Some(i) => lookup(i).unwrap_or_else(|| i.to_string()),
    }
}

fn print_ports(ctx: &mut Ctx<'_>, args: &str, o: &mut String, all: bool) -> Result<(), Errno> {
    let only = opt_int(args);
    if let Some(n) = only {
        if n < 0 || n > i64::from(ctx.sw.numports()) {
            return Err(EINVAL);
        }
        match ctx.sw.port(n as PortId) {
            Some(p) if all || p.is_active() => {}
            _ => return Err(ENXIO),
        }
    }
    for (i, p) in ctx.sw.ports() {
        if only.is_some_and(|n| n != i64::from(i)) || !(all || p.is_active()) {
            continue;
        }
        let _ = writeln!(
            o,
            "Port {i:04} untagged_vlan={:04} {}ACTIVE - {}Unnamed Allocatable",
            p.untagged_vlan,
            if p.is_active() { "" } else { "IN" },
            if p.allocatable { "" } else { "NOT " }
        );
        let _ = writeln!(
            o,
            " Current User: {} Access Control: (User: {} - Group: {})",
            name_or_none(p.cur_user, users::user_name),
            name_or_none(p.ac_user, users::user_name),
            name_or_none(p.ac_group, users::group_name)
        );
        let c = p.counters;
        let _ = writeln!(
            o,
            " IN:  pkts {:10}          bytes {:20}",
            c.pkts_in, c.bytes_in
        );
        let _ = writeln!(
            o,
            " OUT: pkts {:10}          bytes {:20}",
            c.pkts_out, c.bytes_out
        );
        // only where set: the table stays the C switch's otherwise
        let sec = ctx.sw.security(i);
        if sec.is_set() {
            let _ = writeln!(
                o,
                " Security: maclimit {} (learned {}, dropped {}) movedamp {} s (dropped {}) stormlimit {}/s (dropped {})",
                sec.mac_limit,
                ctx.sw.mac_table().port_count(i),
                sec.mac_limit_drops,
                sec.move_damp,
                sec.mac_move_drops,
                sec.storm_pps,
                sec.storm_drops
            );
        }
        for e in p.endpoints.iter().rev() {
            let _ = writeln!(
                o,
                "  -- endpoint ID {:04} module {:<12}: {}",
                e.id, e.module, e.descr
            );
        }
    }
    Ok(())
}

fn port_maclimit(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, v) = two_ints(args)?;
    ctx.sw.port_maclimit(p, v)
}

fn port_movedamp(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, v) = two_ints(args)?;
    ctx.sw.port_movedamp(p, v)
}

fn port_stormlimit(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (p, v) = two_ints(args)?;
    ctx.sw.port_stormlimit(p, v)
}

fn port_print(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    print_ports(ctx, args, o, false)
}

fn port_allprint(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    print_ports(ctx, args, o, true)
}

// ---------------------------------------------------------------------
// VLANs

fn vlan_create(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.vlan_create(int_arg(args)?)
}

fn vlan_remove(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    ctx.sw.vlan_remove(int_arg(args)?)
}

fn vlan_addport(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (v, p) = two_ints(args)?;
    ctx.sw.vlan_addport(v, p)
}

fn vlan_delport(ctx: &mut Ctx<'_>, args: &str, _: &mut String) -> Result<(), Errno> {
    let (v, p) = two_ints(args)?;
    ctx.sw.vlan_delport(v, p)
}

fn print_vlans(ctx: &mut Ctx<'_>, args: &str, o: &mut String, all: bool) -> Result<(), Errno> {
    let only = opt_int(args);
    if let Some(n) = only {
        let lo = if all { 1 } else { 0 };
        if !(lo..=i64::from(MAX_VLAN)).contains(&n) {
            return Err(EINVAL);
        }
        if ctx.sw.vlan(n as u16).is_none() {
            return Err(ENXIO);
        }
    }
    let hub = ctx.sw.is_hub();
    for (v, vlan) in ctx.sw.vlans() {
        if only.is_some_and(|n| n != i64::from(v)) {
            continue;
        }
        let _ = writeln!(o, "VLAN {v:04}");
        if hub {
            continue;
        }
        for (p, tagged) in vlan.members() {
            let active = ctx.sw.port(p).is_some_and(|x| x.is_active());
            if !all && !active {
                continue;
            }
            let status = if vlan.fwd.contains(p) {
                "Forwarding"
            } else {
                "Learning"
            };
            let _ = writeln!(
                o,
                " -- Port {p:04} tagged={} active={} status={status}",
                u8::from(tagged),
                u8::from(active)
            );
        }
    }
    Ok(())
}

fn vlan_print(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    print_vlans(ctx, args, o, false)
}

fn vlan_allprint(ctx: &mut Ctx<'_>, args: &str, o: &mut String) -> Result<(), Errno> {
    print_vlans(ctx, args, o, true)
}
