//! `vde-lab`: brings up a multi-site lab mesh described by a TOML file on
//! one machine. Each site is a network namespace running a switch (ours,
//! or Debian's `vde_switch`) with a veth into a "WAN" bridge in a
//! namespace of its own; each host is a namespace with a tap on its
//! site's switch; cables (cryptcab, udp, wirefilter) and vxvde clouds join
//! the sites. State (sockets, keys, pid files, logs) lives in a directory
//! under /run/vde-lab, so later commands find the lab again.

mod topo;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use topo::{Kind, Lab};

#[derive(Parser)]
#[command(
    name = "vde-lab",
    version,
    about = "Multi-site VDE lab meshes in network namespaces, from a TOML topology"
)]
struct Args {
    /// The topology file (TOML; see examples/lab/).
    file: PathBuf,
    /// Lab name, overriding the file's `name` (namespaces are NAME-SITE).
    #[arg(long)]
    name: Option<String>,
    /// State directory (default /run/vde-lab/NAME).
    #[arg(long)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read and check the file only.
    Check,
    /// Make the namespaces, start every site, its hosts and cables.
    Up,
    /// Stop everything and delete the namespaces.
    Down,
    /// Every site's switch, hosts, cables and spanning-tree roles.
    Status,
    /// Silence a cable or cloud (its datagrams are dropped; no link-down).
    Cut { cable: String },
    /// Undo `cut`.
    Mend { cable: String },
    /// Kill a site's switch and its processes (SIGKILL, as a crash).
    Kill { site: String },
    /// Start a killed site again.
    Start { site: String },
    /// Run a command in SITE's namespace or in the namespace of SITE/HOST.
    Exec {
        target: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
}

type Res<T> = Result<T, String>;

/// A cable (or cloud) as our switch hosts it.
struct Vnl {
    /// The lab's name for it.
    name: String,
    listen: bool,
    /// Its locator.
    loc: String,
    /// Added through the console after the switches start (a cable that
    /// dials with keys over ssh: opening it needs the other site's sshd
    /// and listening switch), not given on the command line.
    later: bool,
}

/// A lab loaded from its file, with where its state lives.
struct L {
    lab: Lab,
    state: PathBuf,
}

impl L {
    fn wan_ns(&self) -> String {
        format!("{}-wan", self.lab.name)
    }
    fn site_ns(&self, i: usize) -> String {
        format!("{}-{}", self.lab.name, self.lab.sites[i].name)
    }
    fn host_ns(&self, i: usize, h: usize) -> String {
        format!("{}-{}", self.site_ns(i), self.lab.sites[i].hosts[h].name)
    }
    fn wan_ip(&self, i: usize) -> String {
        let w = self.lab.wan;
        format!("{}.{}.{}.{}", w[0], w[1], w[2], i + 1)
    }
    fn site_dir(&self, i: usize) -> PathBuf {
        self.state.join(&self.lab.sites[i].name)
    }
    fn ctl(&self, i: usize) -> PathBuf {
        self.site_dir(i).join("ctl")
    }
    fn mgmt(&self, i: usize) -> PathBuf {
        self.site_dir(i).join("mgmt")
    }
    fn key(&self, c: usize) -> PathBuf {
        self.state
            .join("keys")
            .join(format!("{}.key", self.lab.cables[c].name))
    }
    fn cut_mark(&self, name: &str) -> PathBuf {
        self.state.join(format!("cut-{name}"))
    }
    fn site(&self, name: &str) -> Res<usize> {
        self.lab
            .sites
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("no site named {name:?} in the lab"))
    }

    /// Where the ssh material of the lab lives (user keys, client configs,
    /// known_hosts).
    fn ssh_dir(&self) -> PathBuf {
        self.state.join("ssh")
    }
    /// The ssh client config a cable with `keys = "ssh"` dials with.
    fn ssh_config(&self, c: usize) -> PathBuf {
        self.ssh_dir()
            .join(format!("{}.config", self.lab.cables[c].name))
    }
    /// The cable's ssh user key (one per cable: `authorized_keys` forces
    /// the helper with that cable's port).
    fn ssh_key(&self, c: usize) -> PathBuf {
        self.ssh_dir()
            .join(format!("{}.id", self.lab.cables[c].name))
    }
    /// Whether site `i` listens on a cable whose keys go over ssh: it then
    /// runs an sshd.
    fn runs_sshd(&self, i: usize) -> bool {
        self.lab.cables.iter().any(|k| k.ssh && k.to == i)
    }
    /// The site's node identity (its long-term key), made by the first of
    /// its processes that needs it: each site has its own, so that the
    /// ssh exchange pins one site to the other.
    fn identity(&self, i: usize) -> PathBuf {
        self.site_dir(i).join("vde").join("identity")
    }

    /// The in-switch cables of site `i` (our switch), with its clouds.
    fn vnls(&self, i: usize) -> Vec<Vnl> {
        let mut v = Vec::new();
        let mut add = |name: &str, listen: bool, loc: String, later: bool| {
            v.push(Vnl {
                name: name.to_string(),
                listen,
                loc,
                later,
            })
        };
        for (c, k) in self.lab.cables.iter().enumerate() {
            let p = k.port;
            match k.kind {
                Kind::Cryptcab if k.to == i && k.ssh => add(
                    &k.name,
                    true,
                    format!("cryptcab://:{p}/dead={}", k.dead),
                    false,
                ),
                Kind::Cryptcab if k.to == i => add(
                    &k.name,
                    true,
                    format!(
                        "cryptcab://:{p}/psk={}/dead={}",
                        self.key(c).display(),
                        k.dead
                    ),
                    false,
                ),
                // dialed through the console once the other site is up
                // (the first key exchange happens when the cable opens)
                Kind::Cryptcab if k.from == i && k.ssh => add(
                    &k.name,
                    false,
                    format!(
                        "cryptcab://root@{}:{p}/sshconfig={}/remote={}/port={p}/dead={}",
                        self.wan_ip(k.to),
                        self.ssh_config(c).display(),
                        our_bin("vde_cryptcab"),
                        k.dead
                    ),
                    true,
                ),
                Kind::Cryptcab if k.from == i => add(
                    &k.name,
                    false,
                    format!(
                        "cryptcab://{}:{p}/psk={}/port={p}/dead={}",
                        self.wan_ip(k.to),
                        self.key(c).display(),
                        k.dead
                    ),
                    false,
                ),
                Kind::Udp if k.from == i || k.to == i => {
                    let other = if k.from == i { k.to } else { k.from };
                    add(
                        &k.name,
                        false,
                        format!("udp://{p}->{}:{p}", self.wan_ip(other)),
                        false,
                    );
                }
                _ => {}
            }
        }
        for cl in &self.lab.clouds {
            if cl.sites.contains(&i) {
                add(
                    &cl.name,
                    false,
                    format!("vxvde://{}/port={}/if=wan0", cl.group, cl.port),
                    false,
                );
            }
        }
        v
    }

    /// The sites a cable or cloud touches, and its UDP port (None for a
    /// wirefilter cable).
    fn link(&self, name: &str) -> Res<(Vec<usize>, Option<u16>, Option<usize>)> {
        if let Some(c) = self.lab.cables.iter().position(|k| k.name == name) {
            let k = &self.lab.cables[c];
            let port = (k.kind != Kind::Wirefilter).then_some(k.port);
            return Ok((vec![k.from, k.to], port, Some(c)));
        }
        if let Some(cl) = self.lab.clouds.iter().find(|k| k.name == name) {
            return Ok((cl.sites.clone(), Some(cl.port), None));
        }
        Err(format!("no cable or cloud named {name:?} in the lab"))
    }
}

/// Runs a command; its stderr (or stdout) is the error.
fn run(argv: &[&str]) -> Res<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if !out.status.success() {
        let mut why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if why.is_empty() {
            why = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(format!("`{}` failed: {why}", argv.join(" ")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ns_run(ns: &str, argv: &[&str]) -> Res<String> {
    let mut a = vec!["ip", "netns", "exec", ns];
    a.extend_from_slice(argv);
    run(&a)
}

fn ns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Our programs: beside this binary (a cargo build), else on PATH.
fn our_bin(name: &str) -> String {
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return p.display().to_string();
            }
        }
    }
    name.to_string()
}

/// Starts `argv` in namespace `ns` in a process group of its own, output
/// to `log`, and writes its pid to `pidfile`; `identity` is the node
/// identity its cables use (`VDE_IDENTITY`).
fn spawn(
    ns: &str,
    argv: &[String],
    log: &Path,
    pidfile: &Path,
    identity: Option<&Path>,
) -> Res<u32> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("ip");
    if let Some(id) = identity {
        cmd.env("VDE_IDENTITY", id);
    }
    let child = cmd
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let pid = child.id();
    std::fs::write(pidfile, format!("{pid}\n")).map_err(|e| e.to_string())?;
    Ok(pid)
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0 && !zombie(pid)
}

/// Whether `pid` has exited and waits to be reaped (by whoever adopted it:
/// `kill` must not wait for that).
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // the state follows the command name, which is in parentheses
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn read_pid(f: &Path) -> Option<i32> {
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

fn signal(pid: i32, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: sends a signal to a pid the lab recorded; no memory involved.
        unsafe { libc::kill(pid, sig) };
    }
}

fn wait_for(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// One command on a management console (switch `vde$ `, wirefilter
/// `VDEwf$ `): the reply without the prompt.
fn mgmt(path: &Path, cmd: &str) -> Res<String> {
    mgmt_within(path, cmd, Duration::from_secs(3))
}

/// [`mgmt`] for a command that may take up to `limit` to answer.
fn mgmt_within(path: &Path, cmd: &str, limit: Duration) -> Res<String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    let read_prompt = |s: &mut UnixStream| -> Res<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if got.ends_with(b"$ ") {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    };
    read_prompt(&mut s)?;
    s.write_all(format!("{cmd}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let r = read_prompt(&mut s)?;
    let r = r
        .rsplit_once('\n')
        .map_or(r.as_str(), |(a, _)| a)
        .to_string();
    Ok(r)
}

fn site_pids(l: &L, i: usize) -> Vec<(PathBuf, i32)> {
    let Ok(rd) = std::fs::read_dir(l.site_dir(i)) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .filter_map(|p| read_pid(&p).map(|pid| (p, pid)))
        .collect()
}

fn switch_alive(l: &L, i: usize) -> bool {
    read_pid(&l.site_dir(i).join("switch.pid")).is_some_and(alive)
        && UnixStream::connect(l.mgmt(i)).is_ok()
}

/// Stops every process of site `i`: SIGKILL at once (`kill`), or SIGTERM
/// and then SIGKILL after 2 s (`down`).
fn stop_site(l: &L, i: usize, hard: bool) {
    let pids = site_pids(l, i);
    for (_, pid) in &pids {
        signal(*pid, if hard { libc::SIGKILL } else { libc::SIGTERM });
    }
    if !hard {
        wait_for(2.0, || pids.iter().all(|(_, p)| !alive(*p)));
        for (_, pid) in &pids {
            if alive(*pid) {
                signal(*pid, libc::SIGKILL);
            }
        }
    }
    wait_for(2.0, || pids.iter().all(|(_, p)| !alive(*p)));
    for (f, _) in pids {
        let _ = std::fs::remove_file(f);
    }
}

/// The switch's startup commands: host ports 1..=H (each in its VLAN),
/// the ports after them trunks of the site's VLANs for the cables.
fn rc_file(l: &L, i: usize) -> String {
    let s = &l.lab.sites[i];
    let mut rc = String::new();
    let vlans: Vec<u16> = {
        let mut v = s.trunk.clone();
        v.extend(s.hosts.iter().filter_map(|h| h.vlan));
        v.sort_unstable();
        v.dedup();
        v
    };
    for v in &vlans {
        rc += &format!("vlan/create {v}\n");
    }
    // host ports are made first, not allocatable: no cable takes them
    for (k, h) in s.hosts.iter().enumerate() {
        let p = k + 1;
        rc += &format!("port/create {p}\n");
        if let Some(v) = h.vlan {
            rc += &format!("port/setvlan {p} {v}\n");
        }
    }
    if vlans.is_empty() {
        return rc;
    }
    for p in s.hosts.len() + 1..=32 {
        rc += &format!("port/create {p}\nport/allocatable {p} 1\n");
        for v in &s.trunk {
            rc += &format!("vlan/addport {v} {p}\n");
        }
    }
    rc
}

fn start_site(l: &L, i: usize) -> Res<()> {
    let s = &l.lab.sites[i];
    let ns = l.site_ns(i);
    let dir = l.site_dir(i);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if switch_alive(l, i) {
        return Err(format!("site {} is already running", s.name));
    }
    stop_site(l, i, true); // leftovers of a killed site
    let rc = dir.join("rc");
    std::fs::write(&rc, rc_file(l, i)).map_err(|e| e.to_string())?;
    let (ctl, mg) = (l.ctl(i), l.mgmt(i));
    let _ = std::fs::remove_file(&mg);
    let mut argv: Vec<String> = vec![
        if s.debian {
            "/usr/bin/vde_switch".into()
        } else {
            our_bin("vde_switch")
        },
        "-s".into(),
        ctl.display().to_string(),
        "-M".into(),
        mg.display().to_string(),
        "-f".into(),
        rc.display().to_string(),
    ];
    if s.fstp {
        argv.push("-F".into());
    }
    let pidf = dir.join("switch.pid");
    let log = dir.join("switch.log");
    if s.debian {
        // no console-less foreground mode in the C switch: its daemon mode
        let _ = std::fs::remove_file(&pidf);
        argv.extend(["-d".into(), "-p".into(), pidf.display().to_string()]);
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        ns_run(&ns, &a)?;
    } else {
        argv.push("--nostdin".into());
        for v in l.vnls(i).into_iter().filter(|v| !v.later) {
            argv.push(if v.listen { "--listen" } else { "--cable" }.into());
            argv.push(v.loc);
        }
        spawn(&ns, &argv, &log, &pidf, Some(&l.identity(i)))?;
    }
    if !wait_for(10.0, || UnixStream::connect(&mg).is_ok()) {
        return Err(format!(
            "site {}: the switch did not come up: {}",
            s.name,
            tail(&log)
        ));
    }
    if s.debian {
        start_external_cables(l, i)?;
    }
    for (k, h) in s.hosts.iter().enumerate() {
        let hns = l.host_ns(i, k);
        let argv = vec![
            our_bin("vde_plug2tap"),
            "-s".into(),
            ctl.display().to_string(),
            "-p".into(),
            (k + 1).to_string(),
            "eth0".into(),
        ];
        let hlog = dir.join(format!("host-{}.log", h.name));
        spawn(
            &hns,
            &argv,
            &hlog,
            &dir.join(format!("host-{}.pid", h.name)),
            None,
        )?;
        if !wait_for(5.0, || {
            ns_run(&hns, &["ip", "link", "show", "eth0"]).is_ok()
        }) {
            return Err(format!(
                "host {}/{}: no tap eth0: {}",
                s.name,
                h.name,
                tail(&hlog)
            ));
        }
        // the same MAC after a restart: the other hosts' ARP caches stay right
        let mac = format!("02:1a:b0:{:02x}:{:02x}:01", i % 256, k);
        ns_run(&hns, &["ip", "link", "set", "eth0", "address", &mac])?;
        ns_run(&hns, &["ip", "addr", "add", &h.addr, "dev", "eth0"])?;
        ns_run(&hns, &["ip", "link", "set", "eth0", "up"])?;
    }
    for (c, k) in l.lab.cables.iter().enumerate() {
        if k.kind == Kind::Wirefilter && (k.from == i || k.to == i) {
            let other = if k.from == i { k.to } else { k.from };
            if switch_alive(l, other) {
                start_wirefilter(l, c)?;
            }
        }
    }
    if l.runs_sshd(i) {
        start_sshd(l, i)?;
    }
    Ok(())
}

/// The sshd of the lab: Debian's OpenSSH server.
const SSHD: &str = "/usr/sbin/sshd";

/// Starts the sshd of site `i` in its namespace, on its WAN address (the
/// files `setup_ssh` wrote), and waits until it listens.
fn start_sshd(l: &L, i: usize) -> Res<()> {
    let dir = l.site_dir(i);
    // its privilege separation directory
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
    let log = dir.join("sshd.log");
    let argv: Vec<String> = vec![
        SSHD.into(),
        "-D".into(),
        "-e".into(),
        "-f".into(),
        dir.join("sshd_config").display().to_string(),
    ];
    let pid = spawn(&l.site_ns(i), &argv, &log, &dir.join("sshd.pid"), None)?;
    let listening =
        || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Server listening on"));
    wait_for(10.0, || listening() || !alive(pid as i32));
    if !listening() {
        return Err(format!(
            "site {}: sshd did not start: {}",
            l.lab.sites[i].name,
            tail(&log)
        ));
    }
    Ok(())
}

/// The locators of the cables site `i`'s switch holds, up or not.
fn cable_json(l: &L, i: usize) -> Vec<serde_json::Value> {
    let Ok(j) = mgmt(&l.mgmt(i), "cable/json") else {
        return Vec::new();
    };
    j.lines()
        .find(|s| s.starts_with('['))
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Opens, through the dialing switch's console, the cables with keys over
/// ssh that it does not hold yet and whose two sites are up (`only`:
/// those touching that site). Opening one is its first key exchange;
/// once open, a cable fetches new keys over ssh by itself.
fn dial_ssh_cables(l: &L, only: Option<usize>) -> Res<()> {
    for k in &l.lab.cables {
        if !k.ssh || only.is_some_and(|i| i != k.from && i != k.to) {
            continue;
        }
        if !switch_alive(l, k.from) || !switch_alive(l, k.to) {
            continue;
        }
        let Some(v) = l.vnls(k.from).into_iter().find(|v| v.name == k.name) else {
            continue;
        };
        let held = cable_json(l, k.from)
            .iter()
            .any(|c| c["vnl"].as_str() == Some(v.loc.as_str()));
        if held {
            continue;
        }
        // the listening end may be a moment behind its sshd (a Debian
        // site's vde_cryptcab): a few tries, for at most 10 s
        let t = Instant::now();
        let mut why;
        loop {
            why = match mgmt_within(
                &l.mgmt(k.from),
                &format!("cable/add {}", v.loc),
                Duration::from_secs(40),
            ) {
                Ok(r) if r.contains("1000 Success") => {
                    println!(
                        "cable {}: key handed over ssh from {} to {} in {:.2} s",
                        k.name,
                        l.lab.sites[k.from].name,
                        l.lab.sites[k.to].name,
                        t.elapsed().as_secs_f64()
                    );
                    break;
                }
                Ok(r) => r.trim().replace('\n', " / "),
                Err(e) => e,
            };
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "cable {}: site {} cannot dial site {} with keys over ssh: {why} \
                     (see {} and {})",
                    k.name,
                    l.lab.sites[k.from].name,
                    l.lab.sites[k.to].name,
                    l.site_dir(k.from).join("switch.log").display(),
                    l.site_dir(k.to).join("sshd.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// ssh-keygen: a new ed25519 key pair at `path` (and `path`.pub), the
/// private half mode 0600; returns the public line.
fn keygen(path: &Path, comment: &str) -> Res<String> {
    let p = path.display().to_string();
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        &p,
    ])?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{p}: {e}"))?;
    let pubf = format!("{p}.pub");
    std::fs::read_to_string(&pubf)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("{pubf}: {e}"))
}

/// The ssh material of the cables with `keys = "ssh"`: for every site
/// that listens on one, a host key, an `authorized_keys` and an
/// `sshd_config` in its state directory; for every such cable a user key
/// (accepted only to run our helper with that cable's port) and an ssh
/// client config that knows the listening site's host key.
fn setup_ssh(l: &L) -> Res<()> {
    if !l.lab.cables.iter().any(|k| k.ssh) {
        return Ok(());
    }
    if !Path::new(SSHD).is_file() {
        return Err(format!(
            "keys = \"ssh\" needs {SSHD} (Debian package openssh-server)"
        ));
    }
    // run by the sshd, whose PATH may hold Debian's vde_cryptcab first
    let remote = our_bin("vde_cryptcab");
    if !remote.starts_with('/') {
        return Err(
            "keys = \"ssh\" needs our vde_cryptcab beside vde-lab (the sshds run it by its \
             full path)"
                .into(),
        );
    }
    let plain = |p: &str| !p.contains(|c: char| c.is_whitespace() || "\"'%\\#".contains(c));
    let state = l.state.display().to_string();
    if !plain(&state) || !plain(&remote) {
        return Err(format!(
            "keys = \"ssh\": the paths {state} and {remote} go into ssh configuration \
             files: no spaces, quotes, % or #"
        ));
    }
    let d = l.ssh_dir();
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let known = d.join("known_hosts");
    let mut known_text = String::new();
    let mut authorized = vec![String::new(); l.lab.sites.len()];
    for i in (0..l.lab.sites.len()).filter(|&i| l.runs_sshd(i)) {
        let sd = l.site_dir(i);
        std::fs::create_dir_all(&sd).map_err(|e| format!("{}: {e}", sd.display()))?;
        let host_key = keygen(
            &sd.join("ssh_host_ed25519_key"),
            &format!("vde-lab {} site {} host", l.lab.name, l.lab.sites[i].name),
        )?;
        known_text += &format!("{} {host_key}\n", l.wan_ip(i));
    }
    std::fs::write(&known, known_text).map_err(|e| format!("{}: {e}", known.display()))?;
    for (c, k) in l.lab.cables.iter().enumerate().filter(|(_, k)| k.ssh) {
        let user_key = keygen(
            &l.ssh_key(c),
            &format!("vde-lab {} cable {}", l.lab.name, k.name),
        )?;
        // README: restrict the key to the helper, with this cable's port
        authorized[k.to] += &format!(
            "restrict,command=\"{remote} --ticket -p {}\" {user_key}\n",
            k.port
        );
        let cfg = format!(
            "# vde-lab {lab}: cable {cable}, site {from} dials site {to}\n\
             Host {ip}\n  Port 22\n  User root\n  IdentityFile {id}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n",
            lab = l.lab.name,
            cable = k.name,
            from = l.lab.sites[k.from].name,
            to = l.lab.sites[k.to].name,
            ip = l.wan_ip(k.to),
            id = l.ssh_key(c).display(),
            kh = known.display(),
        );
        let f = l.ssh_config(c);
        std::fs::write(&f, cfg).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    for i in (0..l.lab.sites.len()).filter(|&i| l.runs_sshd(i)) {
        let sd = l.site_dir(i);
        let auth = sd.join("authorized_keys");
        std::fs::write(&auth, &authorized[i]).map_err(|e| format!("{}: {e}", auth.display()))?;
        // StrictModes no: the state directory may be under /tmp, whose
        // mode sshd's checks refuse; it is 0700 and root's
        let cfg = format!(
            "# vde-lab {lab}: the sshd of site {site}, for cables with keys over ssh\n\
             ListenAddress {ip}\nPort 22\nHostKey {hk}\nAuthorizedKeysFile {auth}\n\
             PidFile none\nUsePAM no\nStrictModes no\nAllowUsers root\n\
             PermitRootLogin forced-commands-only\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowTcpForwarding no\nAllowAgentForwarding no\nX11Forwarding no\n\
             PermitTunnel no\nPrintMotd no\nUseDNS no\nLogLevel VERBOSE\n",
            lab = l.lab.name,
            site = l.lab.sites[i].name,
            ip = l.wan_ip(i),
            hk = sd.join("ssh_host_ed25519_key").display(),
            auth = auth.display(),
        );
        let f = sd.join("sshd_config");
        std::fs::write(&f, cfg).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    Ok(())
}

/// Cables of a Debian site: our `vde_cryptcab` and `vde_plug` processes.
fn start_external_cables(l: &L, i: usize) -> Res<()> {
    let ns = l.site_ns(i);
    let dir = l.site_dir(i);
    let ctl = l.ctl(i).display().to_string();
    let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
    for (c, k) in l.lab.cables.iter().enumerate() {
        if k.from != i && k.to != i {
            continue;
        }
        let p = k.port.to_string();
        let other = if k.from == i { k.to } else { k.from };
        match k.kind {
            Kind::Cryptcab => {
                let mut a = vec![
                    our_bin("vde_cryptcab"),
                    "-s".into(),
                    ctl.clone(),
                    "-p".into(),
                    p.clone(),
                    "--dead-after".into(),
                    k.dead.to_string(),
                ];
                // a Debian site only listens on an ssh cable (topo
                // checks it): a server without -P takes its keys over ssh
                if !k.ssh {
                    a.extend(["-P".into(), l.key(c).display().to_string()]);
                }
                if k.from == i {
                    a.extend(["-c".into(), format!("{}:{p}", l.wan_ip(other))]);
                }
                jobs.push((k.name.clone(), a));
            }
            Kind::Udp => jobs.push((
                k.name.clone(),
                vec![
                    our_bin("vde_plug"),
                    ctl.clone(),
                    format!("udp://{p}->{}:{p}", l.wan_ip(other)),
                ],
            )),
            Kind::Wirefilter => {}
        }
    }
    for cl in &l.lab.clouds {
        if cl.sites.contains(&i) {
            jobs.push((
                cl.name.clone(),
                vec![
                    our_bin("vde_plug"),
                    ctl.clone(),
                    format!("vxvde://{}/port={}/if=wan0", cl.group, cl.port),
                ],
            ));
        }
    }
    for (name, argv) in jobs {
        spawn(
            &ns,
            &argv,
            &dir.join(format!("cable-{name}.log")),
            &dir.join(format!("cable-{name}.pid")),
            Some(&l.identity(i)),
        )?;
    }
    Ok(())
}

/// A wirefilter between the two switches' sockets, run in the dialing
/// site's namespace (it is that site's process).
fn start_wirefilter(l: &L, c: usize) -> Res<()> {
    let k = &l.lab.cables[c];
    let dir = l.site_dir(k.from);
    let pidf = dir.join(format!("cable-{}.pid", k.name));
    if read_pid(&pidf).is_some_and(alive) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&pidf);
    let mg = l.state.join(format!("{}.wf", k.name));
    let _ = std::fs::remove_file(&mg);
    let cut = l.cut_mark(&k.name).exists();
    let mut argv = vec![
        our_bin("wirefilter"),
        "-v".into(),
        format!("{}:{}", l.ctl(k.from).display(), l.ctl(k.to).display()),
        "-M".into(),
        mg.display().to_string(),
        "-d".into(),
        k.delay.to_string(),
        "-l".into(),
        if cut {
            "100".into()
        } else {
            k.loss.to_string()
        },
        "--daemon".into(),
        "--pidfile".into(),
        pidf.display().to_string(),
    ];
    if let Some(b) = k.bandwidth {
        argv.extend(["-b".into(), b.to_string()]);
    }
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    ns_run(&l.site_ns(k.from), &a)?;
    if !wait_for(5.0, || UnixStream::connect(&mg).is_ok()) {
        return Err(format!("cable {}: wirefilter did not start", k.name));
    }
    Ok(())
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let t = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    let t = lines[lines.len().saturating_sub(5)..].join(" / ");
    if t.is_empty() {
        format!("{} is empty", log.display())
    } else {
        t
    }
}

fn write_key(path: &Path) -> Res<()> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(&key).map_err(|e| e.to_string())
}

use std::os::unix::fs::OpenOptionsExt;

fn up(l: &L, file: &Path) -> Res<()> {
    if l.state.join("topology.toml").exists() {
        return Err(format!(
            "lab {} is already up (state in {}); `down` it first",
            l.lab.name,
            l.state.display()
        ));
    }
    for ns in std::iter::once(l.wan_ns()).chain((0..l.lab.sites.len()).map(|i| l.site_ns(i))) {
        if ns_exists(&ns) {
            return Err(format!(
                "network namespace {ns} exists already (a lab of the same name?)"
            ));
        }
    }
    std::fs::create_dir_all(l.state.join("keys")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&l.state, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    std::fs::copy(file, l.state.join("topology.toml")).map_err(|e| e.to_string())?;
    let wan = l.wan_ns();
    run(&["ip", "netns", "add", &wan])?;
    ns_run(&wan, &["ip", "link", "set", "lo", "up"])?;
    ns_run(&wan, &["ip", "link", "add", "br0", "type", "bridge"])?;
    // flood the clouds' multicast: nobody answers IGMP on this bridge
    ns_run(
        &wan,
        &[
            "ip",
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )?;
    ns_run(&wan, &["ip", "link", "set", "br0", "up"])?;
    for i in 0..l.lab.sites.len() {
        let ns = l.site_ns(i);
        run(&["ip", "netns", "add", &ns])?;
        ns_run(&ns, &["ip", "link", "set", "lo", "up"])?;
        let port = format!("s{i}");
        run(&[
            "ip", "-n", &wan, "link", "add", &port, "type", "veth", "peer", "name", "wan0",
            "netns", &ns,
        ])?;
        ns_run(&wan, &["ip", "link", "set", &port, "master", "br0", "up"])?;
        ns_run(
            &ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("{}/24", l.wan_ip(i)),
                "dev",
                "wan0",
            ],
        )?;
        ns_run(&ns, &["ip", "link", "set", "wan0", "up"])?;
        for k in 0..l.lab.sites[i].hosts.len() {
            let h = l.host_ns(i, k);
            run(&["ip", "netns", "add", &h])?;
            ns_run(&h, &["ip", "link", "set", "lo", "up"])?;
        }
    }
    for (c, k) in l.lab.cables.iter().enumerate() {
        if k.kind == Kind::Cryptcab && !k.ssh {
            write_key(&l.key(c))?;
        }
    }
    setup_ssh(l)?;
    for i in 0..l.lab.sites.len() {
        start_site(l, i)?;
    }
    dial_ssh_cables(l, None)?;
    // the in-switch cables: wait (bounded) until every link is up
    let all_up = wait_for(10.0, || {
        (0..l.lab.sites.len()).all(|i| {
            let s = &l.lab.sites[i];
            s.debian || cable_ports(l, i).len() >= l.vnls(i).len()
        })
    });
    if !all_up {
        eprintln!("vde-lab: warning: not every cable came up within 10 s (see `status`)");
    }
    println!(
        "lab {} up: {} sites, {} cables, {} clouds (state in {})",
        l.lab.name,
        l.lab.sites.len(),
        l.lab.cables.len(),
        l.lab.clouds.len(),
        l.state.display()
    );
    Ok(())
}

fn down(l: &L) -> Res<()> {
    for i in 0..l.lab.sites.len() {
        stop_site(l, i, false);
    }
    let mut namespaces = Vec::new();
    for i in 0..l.lab.sites.len() {
        for k in 0..l.lab.sites[i].hosts.len() {
            namespaces.push(l.host_ns(i, k));
        }
        namespaces.push(l.site_ns(i));
    }
    namespaces.push(l.wan_ns());
    // the ticket sockets of the cryptcab servers, in a directory per
    // namespace (named by its inode): the sites' processes are gone
    for i in 0..l.lab.sites.len() {
        if let Ok(m) = std::fs::metadata(Path::new("/run/netns").join(l.site_ns(i))) {
            use std::os::unix::fs::MetadataExt;
            let dir = PathBuf::from(format!("/run/vde_cryptcab/net-{}", m.ino()));
            for k in l.lab.cables.iter().filter(|k| k.to == i) {
                let _ = std::fs::remove_file(dir.join(k.port.to_string()));
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
    let mut failed = Vec::new();
    for ns in namespaces {
        if ns_exists(&ns) {
            if let Err(e) = run(&["ip", "netns", "del", &ns]) {
                failed.push(e);
            }
        }
    }
    if l.state.starts_with("/run/vde-lab") || l.state.join("topology.toml").exists() {
        let _ = std::fs::remove_dir_all(&l.state);
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    println!("lab {} down", l.lab.name);
    Ok(())
}

/// The in-switch cables of site `i` that have a port: port -> lab name.
fn cable_ports(l: &L, i: usize) -> Vec<(u32, String)> {
    let names = l.vnls(i);
    let mut out = Vec::new();
    for c in &cable_json(l, i) {
        let vnl = c["vnl"].as_str().unwrap_or("");
        let name = names
            .iter()
            .find(|n| n.loc == vnl)
            .map_or(vnl.to_string(), |n| n.name.clone());
        for link in c["links"].as_array().into_iter().flatten() {
            if link["up"].as_bool() == Some(true) {
                if let Some(p) = link["port"].as_u64() {
                    out.push((p as u32, name.clone()));
                }
            }
        }
    }
    out
}

/// `fstp/print` of VLAN 0: (root switch?, [(port, role)]).
fn roles(l: &L, i: usize) -> Option<(bool, Vec<(u32, String)>)> {
    let out = mgmt(&l.mgmt(i), "fstp/print").ok()?;
    let mut root = false;
    let mut ports = Vec::new();
    let mut in_vlan0 = false;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("FST DATA VLAN ") {
            in_vlan0 = rest.starts_with("0000");
            root |= in_vlan0 && rest.contains("ROOTSWITCH");
        } else if let Some(rest) = line.trim().strip_prefix("-- Port ") {
            if !in_vlan0 {
                continue;
            }
            let port = rest.split_whitespace().next()?.parse().ok()?;
            let role = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("role="))
                .unwrap_or("?");
            ports.push((port, role.to_string()));
        }
    }
    Some((root, ports))
}

fn status(l: &L) -> Res<()> {
    if !l.state.join("topology.toml").exists() {
        return Err(format!("lab {} is not up", l.lab.name));
    }
    println!("lab {} (state {})", l.lab.name, l.state.display());
    for (i, s) in l.lab.sites.iter().enumerate() {
        let up = switch_alive(l, i);
        let kind = if s.debian { "debian" } else { "ours" };
        let r = if up && s.fstp { roles(l, i) } else { None };
        println!(
            "site {} ns {} wan {} switch {kind} {}{}",
            s.name,
            l.site_ns(i),
            l.wan_ip(i),
            if up { "up" } else { "DOWN" },
            if r.as_ref().is_some_and(|r| r.0) {
                " root-bridge"
            } else {
                ""
            }
        );
        if l.runs_sshd(i) {
            let up = read_pid(&l.site_dir(i).join("sshd.pid")).is_some_and(alive);
            println!(
                "  sshd {}:22 {}",
                l.wan_ip(i),
                if up { "up" } else { "DOWN" }
            );
        }
        for (k, h) in s.hosts.iter().enumerate() {
            println!(
                "  host {} ns {} {} port {}{}",
                h.name,
                l.host_ns(i, k),
                h.addr,
                k + 1,
                h.vlan.map_or(String::new(), |v| format!(" vlan {v}"))
            );
        }
        if !up {
            continue;
        }
        let cports = if s.debian {
            Vec::new()
        } else {
            cable_ports(l, i)
        };
        let role_of = |p: u32| {
            r.as_ref()
                .and_then(|r| r.1.iter().find(|(q, _)| *q == p))
                .map_or(String::new(), |(_, role)| format!(" role={role}"))
        };
        for (p, name) in &cports {
            println!("  cable {name} port {p} up{}", role_of(*p));
        }
        for Vnl { name, .. } in l.vnls(i) {
            if !s.debian && !cports.iter().any(|(_, n)| *n == name) {
                println!("  cable {name} down");
            }
        }
        if let Some((_, ports)) = &r {
            for (p, role) in ports {
                let known = (*p as usize) <= s.hosts.len() || cports.iter().any(|(q, _)| q == p);
                if !known {
                    println!("  port {p} role={role}");
                }
            }
        }
    }
    for k in &l.lab.cables {
        let kind = match k.kind {
            Kind::Cryptcab => "cryptcab",
            Kind::Udp => "udp",
            Kind::Wirefilter => "wirefilter",
        };
        let kind = if k.ssh {
            format!("{kind} keys=ssh")
        } else {
            kind.to_string()
        };
        println!(
            "cable {} {} -> {} {kind}{}{}",
            k.name,
            l.lab.sites[k.from].name,
            l.lab.sites[k.to].name,
            if k.kind == Kind::Wirefilter {
                String::new()
            } else {
                format!(" udp/{}", k.port)
            },
            if l.cut_mark(&k.name).exists() {
                " CUT"
            } else {
                ""
            }
        );
    }
    for c in &l.lab.clouds {
        let members: Vec<&str> = c
            .sites
            .iter()
            .map(|&i| l.lab.sites[i].name.as_str())
            .collect();
        println!(
            "cloud {} vxvde {}:{} sites {}{}",
            c.name,
            c.group,
            c.port,
            members.join(","),
            if l.cut_mark(&c.name).exists() {
                " CUT"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn nft_table(name: &str) -> String {
    format!("vdelab_cut_{}", name.replace('-', "_"))
}

fn cut(l: &L, name: &str, on: bool) -> Res<()> {
    if !l.state.join("topology.toml").exists() {
        return Err(format!("lab {} is not up", l.lab.name));
    }
    let (sites, port, cable) = l.link(name)?;
    let mark = l.cut_mark(name);
    if mark.exists() == on {
        return Err(format!(
            "{name} is {} cut",
            if on { "already" } else { "not" }
        ));
    }
    match port {
        None => {
            // a wirefilter cable: it loses every frame, the ports stay
            let k = &l.lab.cables[cable.expect("a cable")];
            let loss = if on { 100.0 } else { k.loss };
            let mg = l.state.join(format!("{}.wf", k.name));
            if UnixStream::connect(&mg).is_ok() {
                let r = mgmt(&mg, &format!("loss {loss}"))?;
                if !r.contains("Success") {
                    return Err(format!("wirefilter of {name}: {r}"));
                }
            }
        }
        Some(p) => {
            let t = nft_table(name);
            for i in sites {
                let ns = l.site_ns(i);
                if on {
                    let rules = format!(
                        "table inet {t} {{\n chain i {{ type filter hook input priority -10; udp dport {p} drop; udp sport {p} drop; }}\n chain o {{ type filter hook output priority -10; udp dport {p} drop; udp sport {p} drop; }}\n}}\n"
                    );
                    let f = l.state.join(format!("{t}.nft"));
                    std::fs::write(&f, rules).map_err(|e| e.to_string())?;
                    ns_run(&ns, &["nft", "-f", &f.display().to_string()])?;
                } else {
                    ns_run(&ns, &["nft", "delete", "table", "inet", &t])?;
                }
            }
        }
    }
    if on {
        std::fs::write(&mark, "").map_err(|e| e.to_string())?;
    } else {
        let _ = std::fs::remove_file(&mark);
    }
    println!("{name} {}", if on { "cut" } else { "mended" });
    Ok(())
}

fn exec(l: &L, target: &str, cmd: &[String]) -> Res<ExitCode> {
    let ns = match target.split_once('/') {
        None => l.site_ns(l.site(target)?),
        Some((s, h)) => {
            let i = l.site(s)?;
            let k = l.lab.sites[i]
                .hosts
                .iter()
                .position(|x| x.name == h)
                .ok_or_else(|| format!("no host {h:?} on site {s:?}"))?;
            l.host_ns(i, k)
        }
    };
    let st = Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(cmd)
        .status()
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::from(st.code().unwrap_or(1).clamp(0, 255) as u8))
}

fn main() -> ExitCode {
    // SAFETY: restores the default SIGPIPE action before any thread
    // exists, so `vde-lab … status | head` ends quietly.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = Args::parse();
    let lab = match topo::load(&args.file) {
        Ok(mut lab) => {
            if let Some(n) = &args.name {
                lab.name = n.clone();
            }
            lab
        }
        Err(e) => {
            eprintln!("vde-lab: {e}");
            return ExitCode::from(2);
        }
    };
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| Path::new("/run/vde-lab").join(&lab.name));
    let l = L { lab, state };
    let needs_root = !matches!(args.cmd, Cmd::Check);
    // SAFETY: geteuid has no preconditions.
    if needs_root && unsafe { libc::geteuid() } != 0 {
        eprintln!("vde-lab: needs root (it makes network namespaces)");
        return ExitCode::from(1);
    }
    let r = match &args.cmd {
        Cmd::Check => {
            println!(
                "{}: lab {} with {} sites, {} cables, {} clouds",
                args.file.display(),
                l.lab.name,
                l.lab.sites.len(),
                l.lab.cables.len(),
                l.lab.clouds.len()
            );
            Ok(())
        }
        Cmd::Up => up(&l, &args.file).inspect_err(|_| {
            let _ = down(&l);
        }),
        Cmd::Down => down(&l),
        Cmd::Status => status(&l),
        Cmd::Cut { cable } => cut(&l, cable, true),
        Cmd::Mend { cable } => cut(&l, cable, false),
        Cmd::Kill { site } => l.site(site).map(|i| {
            stop_site(&l, i, true);
            println!("site {site} killed");
        }),
        Cmd::Start { site } => l.site(site).and_then(|i| {
            start_site(&l, i)?;
            dial_ssh_cables(&l, Some(i))?;
            println!("site {site} started");
            Ok(())
        }),
        Cmd::Exec { target, cmd } => {
            return exec(&l, target, cmd).unwrap_or_else(|e| {
                eprintln!("vde-lab: {e}");
                ExitCode::from(1)
            })
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vde-lab: {e}");
            ExitCode::from(1)
        }
    }
}
