#!/usr/bin/env python3
"""Overlay benchmark (issue #9, "the switch is the overlay node"): two hosts,
tap to tap, over an encrypted cable, four stacks in one run:

  ours-inproc    our vde_switch -t tap with the cable inside it:
                 host 1 `--listen cryptcab://:PORT/psk=KEY`,
                 host 2 `--cable cryptcab://WAN1:PORT/psk=KEY` (one process per host)
  ours-quic      our vde_switch -t tap with a QUIC cable inside it (issue #14):
                 host 1 `--listen quic://:4433/cert=C1/pin=FP2`,
                 host 2 `--cable quic://WAN1:4433/cert=C2/pin=FP1` (self-signed
                 P-256 certificates made here by openssl, pinned both ways)
  ours-cryptcab  our vde_switch -t tap + our vde_cryptcab per host (-P KEY)
  C              Debian vde_switch -t tap + Debian vde_cryptcab per host
                 (-P KEY, OPENSSL_CONF with the legacy provider for Blowfish)
  tinc           tinc 1.0 tincd in switch mode, one daemon per host (RSA keys
                 made by `tincd -K`, host 2 ConnectTo host 1)

Each "host" is a network namespace made for the run; the two are joined by a
veth pair (the WAN, 10.201.0.1/24 and 10.201.0.2/24 by default). Each host's
tap carries its LAN address (10.202.0.1/24, 10.202.0.2/24). Then, between
the taps: ping RTT (host 1 -> host 2's tap address; p50/p90 of the echo times
ping prints) and iperf3 TCP (server on host 2's tap address, client on
host 1, one stream). CPU: ticks of the stack's processes during the iperf3
run (kernel softirq work is not in there).

Every stack run gets fresh namespaces; every process is started in a session
of its own (so that it and its children can be killed) and every namespace
name is written to --ns-file before it is made (run-overlay.sh's EXIT trap
deletes what is left). Python 3 standard library only; reuses the process
helpers of bench/cablebench.py. Run through bench/run-overlay.sh.
"""

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import cablebench as cb  # noqa: E402

STACKS = ("ours-inproc", "ours-quic", "ours-cryptcab", "C", "tinc")
TAP = "ovtap"
WAN = "ovwan"
CAB_PORT = 7667
CAB_CLIENT_PORT = 7668
QUIC_PORT = 4433
TINC_PORT = 655
IPERF_PORT = 5201


# ------------------------------------------------------------ helpers

def run(argv, timeout=10, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    return p


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + list(argv)


def udp_bound_in(pid, port):
    """True if the network namespace of pid has a UDP socket on port."""
    hexport = f"{port:04X}"
    for name in ("udp", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                next(f)
                for l in f:
                    if l.split()[1].rsplit(":", 1)[1] == hexport:
                        return True
        except (OSError, StopIteration, IndexError):
            pass
    return False


def link_exists(ns, dev):
    return run(["ip", "-n", ns, "link", "show", dev], check=False).returncode == 0


def percentile(xs, q):
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def c_key_copies(key_bytes):
    """/tmp/vde_*.key files holding our key (the C client's leftovers)."""
    out = []
    for p in glob.glob("/tmp/vde_*.key"):
        try:
            st = os.stat(p)
            if st.st_uid != os.getuid() or st.st_size > 4096:
                continue
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data and key_bytes.startswith(data):
            out.append(p)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ------------------------------------------------------------ two hosts

class Hosts:
    """Two namespaces joined by a veth 'WAN'; the stack's processes."""

    def __init__(self, name, tag, args):
        self.name, self.args = name, args
        self.d = os.path.join(args.tmpdir, f"{name}.{tag}")
        os.mkdir(self.d)
        self.ns = [f"{args.ns_prefix}-{tag}-1", f"{args.ns_prefix}-{tag}-2"]
        self.wan = [args.wan1, args.wan2]
        self.lan = [args.lan1, args.lan2]
        self.procs, self.logs = [], []
        self.made = []

    # -- namespaces
    def make(self):
        for ns in self.ns:
            with open(self.args.ns_file, "a") as f:
                f.write(ns + "\n")
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        n1, n2 = self.ns
        run(["ip", "-n", n1, "link", "add", WAN, "type", "veth", "peer", "name", WAN, "netns", n2])
        for ns, addr in zip(self.ns, self.wan):
            run(["ip", "-n", ns, "link", "set", WAN, "mtu", str(self.args.wan_mtu)])
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", WAN])
            run(["ip", "-n", ns, "link", "set", WAN, "up"])

    def destroy(self):
        for p in self.procs:
            cb.kill_session(p)
            if p.stdin:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for ns in self.made:
            run(["ip", "netns", "del", ns], check=False)
        self.made = []

    # -- processes
    def start(self, host, label, argv, env=None, stdin_pipe=False):
        log = os.path.join(self.d, f"{label}.log")
        with open(log, "wb") as logf:
            p = cb.spawn(in_ns(self.ns[host], argv), stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                         stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=self.d)
        self.procs.append(p)
        self.logs.append((label, log))
        return p

    def log_text(self):
        out = {}
        for name, path in self.logs:
            lines = cb.log_lines(path, ignore=("caught signal 15",))
            if lines:
                out[name] = lines[:12] if "tincd" in name else lines[-8:]
        return out

    def check_alive(self, when):
        dead = [f"{' '.join(map(str, p.args[4:]))[:100]} (exit {p.returncode})"
                for p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{self.name} {when}: exited: {dead}; logs: {self.log_text()}")

    def ticks(self, procs=None):
        return sum(cb.ticks_of(pid) for p in (procs or self.procs) for pid in cb.session_pids(p.pid))

    def wait_tap(self, host, timeout=10):
        ns = self.ns[host]
        end = time.monotonic() + timeout
        while not link_exists(ns, TAP):
            self.check_alive(f"waiting for {TAP} in host {host + 1}")
            if time.monotonic() >= end:
                raise RuntimeError(f"{self.name}: no {TAP} in host {host + 1} after {timeout} s; "
                                   f"logs: {self.log_text()}")
            time.sleep(0.05)

    def address_taps(self):
        for h, (ns, addr) in enumerate(zip(self.ns, self.lan)):
            self.wait_tap(h)
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", TAP])
            run(["ip", "-n", ns, "link", "set", TAP, "up"])

    def wait_through(self, t0):
        """A ping crosses tap to tap (bounded by --startup-timeout)."""
        end = t0 + self.args.startup_timeout
        tries = 0
        while True:
            self.check_alive("during start-up")
            tries += 1
            p = run(in_ns(self.ns[0], ["ping", "-n", "-c", "1", "-W", "1", self.lan[1]]), timeout=5, check=False)
            if p.returncode == 0:
                return time.monotonic() - t0, tries
            if time.monotonic() >= end:
                raise RuntimeError(f"{self.name}: no ping through after {self.args.startup_timeout} s; "
                                   f"logs: {self.log_text()}")
            time.sleep(0.1)


# ------------------------------------------------------------ stacks

def start_ours_inproc(h, a):
    h.start(0, "switch-1", [a.ours_switch, "--nostdin", "-s", f"{h.d}/sw1", "-M", f"{h.d}/mgmt1",
                            "-t", TAP, "--listen", f"cryptcab://:{CAB_PORT}/psk={a.key}"])
    h.wait_tap(0)
    h.start(1, "switch-2", [a.ours_switch, "--nostdin", "-s", f"{h.d}/sw2", "-M", f"{h.d}/mgmt2",
                            "-t", TAP, "--cable", f"cryptcab://{a.wan1}:{CAB_PORT}/psk={a.key}"])


def quic_cert(d, name):
    """A self-signed P-256 certificate and its key in one PEM file (0600),
    as our quic:// cable reads it; returns the file and its SHA-256
    fingerprint (hex with colons, as openssl prints it)."""
    key, crt, pem = (os.path.join(d, f"{name}.{x}") for x in ("key", "crt", "pem"))
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=vde", "-days", "30", "-keyout", key, "-out", crt], timeout=30)
    fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(open(crt).read() + open(key).read())
    out = run(["openssl", "x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).stdout
    return pem, out.strip().split("=", 1)[1]


def start_ours_quic(h, a):
    (c1, f1), (c2, f2) = quic_cert(h.d, "quic1"), quic_cert(h.d, "quic2")
    h.start(0, "switch-1", [a.ours_switch, "--nostdin", "-s", f"{h.d}/sw1", "-M", f"{h.d}/mgmt1",
                            "-t", TAP, "--listen", f"quic://:{QUIC_PORT}/cert={c1}/pin={f2}"])
    h.wait_tap(0)
    h.start(1, "switch-2", [a.ours_switch, "--nostdin", "-s", f"{h.d}/sw2", "-M", f"{h.d}/mgmt2",
                            "-t", TAP, "--cable", f"quic://{a.wan1}:{QUIC_PORT}/cert={c2}/pin={f1}"])


def start_cryptcab(h, a, switch, cryptcab, ours):
    env = dict(os.environ)
    if not ours:
        env["OPENSSL_CONF"] = a.openssl_conf
    for i in (0, 1):
        argv = [switch, "-s", f"{h.d}/sw{i + 1}", "-t", TAP]
        if ours:
            argv.insert(1, "--nostdin")
        # The C switch exits on EOF on stdin: hold a pipe open for it.
        h.start(i, f"switch-{i + 1}", argv, stdin_pipe=not ours)
        cb.wait_for(lambda: os.path.exists(f"{h.d}/sw{i + 1}/ctl"), 5, f"{h.name} switch {i + 1} socket")
    srv = h.start(0, "cryptcab-server", [cryptcab, "-s", f"{h.d}/sw1", "-p", str(CAB_PORT), "-P", a.key], env=env)
    # The C client sends its first LOGIN at start (then only on local
    # traffic): let the server bind first.
    cb.wait_for(lambda: udp_bound_in(srv.pid, CAB_PORT) or srv.poll() is not None, 5,
                f"{h.name} cryptcab server to bind udp {CAB_PORT}")
    h.check_alive("after starting the cryptcab server")
    h.start(1, "cryptcab-client", [cryptcab, "-s", f"{h.d}/sw2", "-p", str(CAB_CLIENT_PORT),
                                   "-c", f"{a.wan1}:{CAB_PORT}", "-P", a.key], env=env)


def start_tinc(h, a):
    names = ("n1", "n2")
    dirs = [os.path.join(h.d, f"tinc{i + 1}") for i in (0, 1)]
    for i, d in enumerate(dirs):
        os.makedirs(os.path.join(d, "hosts"))
        conf = [f"Name = {names[i]}", "Mode = switch", f"Interface = {TAP}", "AddressFamily = ipv4",
                f"BindToAddress = {h.wan[i]}", f"Port = {TINC_PORT}"]
        if i == 1:
            conf.append(f"ConnectTo = {names[0]}")
        with open(os.path.join(d, "tinc.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        host = [f"Address = {h.wan[i]}", f"Port = {TINC_PORT}"]
        if a.tinc_cipher:
            host.append(f"Cipher = {a.tinc_cipher}")
        if a.tinc_digest:
            host.append(f"Digest = {a.tinc_digest}")
        with open(os.path.join(d, "hosts", names[i]), "w") as f:
            f.write("\n".join(host) + "\n")
        run(["tincd", "-c", d, f"-K{a.tinc_bits}"], timeout=60)
    # exchange the host files (address, port, public key)
    for i, d in enumerate(dirs):
        with open(os.path.join(d, "hosts", names[i])) as f:
            text = f.read()
        with open(os.path.join(dirs[1 - i], "hosts", names[i]), "w") as f:
            f.write(text)
    for i, d in enumerate(dirs):
        h.start(i, f"tincd-{i + 1}", ["tincd", "-c", d, "-D", f"-d{a.tinc_debug}", "--pidfile", os.path.join(d, "pid")])
        h.wait_tap(i)


def start_stack(h, a):
    if h.name == "ours-inproc":
        start_ours_inproc(h, a)
    elif h.name == "ours-quic":
        start_ours_quic(h, a)
    elif h.name == "ours-cryptcab":
        start_cryptcab(h, a, a.ours_switch, a.ours_cryptcab, ours=True)
    elif h.name == "C":
        start_cryptcab(h, a, a.c_switch, a.c_cryptcab, ours=False)
    elif h.name == "tinc":
        start_tinc(h, a)
    else:
        raise ValueError(h.name)


# ------------------------------------------------------------ measurements

TIME_RE = re.compile(r"time[=<]([0-9.]+) ms")


def measure_ping(h, a):
    # a few warm-up echoes (ARP, MAC learning, the C client's login)
    run(in_ns(h.ns[0], ["ping", "-n", "-q", "-c", "5", "-i", "0.05", "-W", "1", h.lan[1]]), timeout=10, check=False)
    p = run(in_ns(h.ns[0], ["ping", "-n", "-c", str(a.pings), "-i", str(a.ping_interval), "-W", "1", h.lan[1]]),
            timeout=a.pings * a.ping_interval + 15, check=False)
    times = [float(m.group(1)) * 1000.0 for m in TIME_RE.finditer(p.stdout)]
    return {"pings": a.pings, "replies": len(times),
            "p50_us": percentile(times, 50), "p90_us": percentile(times, 90),
            "p99_us": percentile(times, 99), "min_us": min(times) if times else float("nan")}


def measure_iperf(h, a):
    stack = list(h.procs)
    srv = h.start(1, "iperf3-server", ["iperf3", "-s", "-1", "-B", h.lan[1], "-p", str(IPERF_PORT)])
    time.sleep(0.3)
    res = None
    try:
        t0 = h.ticks(stack)
        w0 = time.monotonic()
        cmd = in_ns(h.ns[0], ["iperf3", "-c", h.lan[1], "-p", str(IPERF_PORT), "-t", str(a.duration),
                              "-O", str(a.omit), "-J", "--connect-timeout", "3000"])
        for attempt in range(3):
            p = run(cmd, timeout=a.duration + a.omit + 20, check=False)
            try:
                res = json.loads(p.stdout)
            except ValueError:
                res = {"error": p.stdout[-300:] + p.stderr[-300:]}
            if "error" not in res or "connect" not in str(res.get("error")):
                break
            time.sleep(0.5)
        wall = time.monotonic() - w0
        ticks = h.ticks(stack) - t0
    finally:
        cb.kill_session(srv)
        h.procs.remove(srv)
    if "error" in res:
        raise RuntimeError(f"{h.name}: iperf3: {res['error']}; logs: {h.log_text()}")
    end = res["end"]
    rx = end["sum_received"]["bits_per_second"] / 1e6
    tx = end["sum_sent"]
    return {"mbit_s": rx, "sender_mbit_s": tx["bits_per_second"] / 1e6,
            "retransmits": tx.get("retransmits"), "seconds": end["sum_received"].get("seconds"),
            "stack_cpu_pct": 100.0 * ticks / cb.CLK_TCK / wall if wall > 0 else float("nan")}


def run_stack(name, tag, a):
    h = Hosts(name, tag, a)
    try:
        t0 = time.monotonic()
        h.make()
        start_stack(h, a)
        h.address_taps()
        up_s, tries = h.wait_through(t0)
        r = {"stack": name, "startup_s": up_s, "startup_pings": tries}
        r.update(measure_ping(h, a))
        r.update(measure_iperf(h, a))
        if name in ("ours-inproc", "ours-quic"):
            for i in (1, 2):
                try:
                    r[f"cable_print_{i}"] = cb.mgmt_query(f"{h.d}/mgmt{i}", "cable/print", timeout=1.0)
                except OSError as e:
                    r[f"cable_print_{i}"] = str(e)
        h.check_alive("at the end")
        r["logs"] = h.log_text()
        return r
    finally:
        h.destroy()


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours-switch", required=True)
    ap.add_argument("--ours-cryptcab", required=True)
    ap.add_argument("--c-switch", default="/usr/bin/vde_switch")
    ap.add_argument("--c-cryptcab", default="/usr/bin/vde_cryptcab")
    ap.add_argument("--openssl-conf", required=True)
    ap.add_argument("--key", required=True, help="pre-shared key file (32 bytes; C reads the first 24)")
    ap.add_argument("--stacks", default=",".join(STACKS), help=f"subset of {','.join(STACKS)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="iperf3 seconds (default 10)")
    ap.add_argument("--omit", type=int, default=1, help="iperf3 -O: seconds of slow start left out (default 1)")
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--ping-interval", type=float, default=0.01, help="seconds (default 0.01)")
    ap.add_argument("--startup-timeout", type=float, default=20.0)
    ap.add_argument("--wan1", default="10.201.0.1")
    ap.add_argument("--wan2", default="10.201.0.2")
    ap.add_argument("--lan1", default="10.202.0.1")
    ap.add_argument("--lan2", default="10.202.0.2")
    ap.add_argument("--wan-mtu", type=int, default=1500)
    ap.add_argument("--tinc-bits", type=int, default=2048)
    ap.add_argument("--tinc-debug", type=int, default=1, help="tincd -d level (default 1)")
    ap.add_argument("--tinc-cipher", help="tinc Cipher (default: tinc 1.0.36's own, aes-256-cbc)")
    ap.add_argument("--tinc-digest", help="tinc Digest (default: tinc 1.0.36's own, sha256)")
    ap.add_argument("--ns-prefix", required=True)
    ap.add_argument("--ns-file", required=True)
    ap.add_argument("--sid-file")
    ap.add_argument("--tmpdir", required=True)
    ap.add_argument("--json")
    ap.add_argument("--verbose", "-v", action="store_true")
    a = ap.parse_args()

    cb.SID_FILE = a.sid_file
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, cb.on_signal)
    stacks = [s for s in a.stacks.split(",") if s]
    for s in stacks:
        if s not in STACKS:
            ap.error(f"unknown stack {s}")
    with open(a.key, "rb") as f:
        key_bytes = f.read()

    runs, notes = [], []
    keys_before = set(c_key_copies(key_bytes))
    load0 = loadavg()
    t_start = time.monotonic()
    print(f"load average at start: {load0}", flush=True)
    print(f"ours: {a.ours_switch}, {a.ours_cryptcab}; C: {a.c_switch}, {a.c_cryptcab} "
          f"(OPENSSL_CONF={a.openssl_conf}); tinc: tincd (cipher {a.tinc_cipher or 'default'}, "
          f"digest {a.tinc_digest or 'default'}, RSA {a.tinc_bits})", flush=True)
    n = 0
    try:
        for rnd in range(1, a.rounds + 1):
            k = (rnd - 1) % len(stacks)
            for name in stacks[k:] + stacks[:k]:
                n += 1
                try:
                    r = run_stack(name, str(n), a)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    msg = f"round {rnd} {name}: FAILED: {e}"
                    print("    !! " + msg, flush=True)
                    notes.append(msg)
                    continue
                finally:
                    for p in set(c_key_copies(key_bytes)) - keys_before:
                        try:
                            os.unlink(p)
                        except OSError:
                            pass
                r["round"] = rnd
                r["load"] = loadavg()
                runs.append(r)
                print(f"round {rnd} {name:13} TCP {r['mbit_s']:8.1f} Mbit/s (retr {r['retransmits']}), "
                      f"RTT p50 {r['p50_us']:6.0f} µs p90 {r['p90_us']:6.0f} µs "
                      f"({r['replies']}/{r['pings']} replies), stack CPU {r['stack_cpu_pct']:.0f}% "
                      f"during iperf3, up after {r['startup_s']:.2f} s; load {r['load']}", flush=True)
                if a.verbose:
                    for kk, v in r.get("logs", {}).items():
                        print(f"    {kk}: {v}", flush=True)
                    for i in (1, 2):
                        if f"cable_print_{i}" in r:
                            print(f"    cable/print {i}: {r[f'cable_print_{i}'].strip()}", flush=True)
                for cl in cb.NEEDED_KILL:
                    msg = f"round {rnd} {name}: still running 1 s after SIGTERM, killed: {cl}"
                    print("    !! " + msg, flush=True)
                    notes.append(msg)
                cb.NEEDED_KILL.clear()
    finally:
        cb.cleanup_all()
        for p in set(c_key_copies(key_bytes)) - keys_before:
            try:
                os.unlink(p)
            except OSError:
                pass
    total = time.monotonic() - t_start
    load1 = loadavg()

    med = cb.med
    summary = {}
    for name in stacks:
        rs = [r for r in runs if r["stack"] == name]
        tcp = [r["mbit_s"] for r in rs]
        summary[name] = {
            "n": len(rs), "mbit_s": med(tcp),
            "mbit_s_min": min(tcp) if tcp else float("nan"), "mbit_s_max": max(tcp) if tcp else float("nan"),
            "p50_us": med([r["p50_us"] for r in rs]), "p90_us": med([r["p90_us"] for r in rs]),
            "p50_min": min((r["p50_us"] for r in rs), default=float("nan")),
            "p50_max": max((r["p50_us"] for r in rs), default=float("nan")),
            "cpu_pct": med([r["stack_cpu_pct"] for r in rs]),
            "retr": med([r["retransmits"] or 0 for r in rs]),
            "lost": sum(r["pings"] - r["replies"] for r in rs), "pings": sum(r["pings"] for r in rs),
        }
    t = summary.get("tinc")

    def x(v):
        return "n/a" if v != v else f"{v:.2f}x"
    print()
    print(f"rounds: {a.rounds}, iperf3 {a.duration} s (-O {a.omit}) one TCP stream, {a.pings} pings "
          f"every {a.ping_interval * 1000:.0f} ms; measuring took {total:.0f} s; "
          f"load average {load0} at start, {load1} at end")
    print()
    print("| stack | runs | TCP Mbit/s (median) | min..max | RTT p50 µs | p50 min..max | RTT p90 µs "
          "| TCP / tinc (≥ 2x) | RTT p50 / tinc (≤ 1x) | stack CPU % during iperf3 | retransmits | pings lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for name in stacks:
        s = summary[name]
        rt = cb.ratio(s["mbit_s"], t["mbit_s"]) if t and name != "tinc" else float("nan")
        rr = cb.ratio(s["p50_us"], t["p50_us"]) if t and name != "tinc" else float("nan")
        ratios[name] = {"tcp_over_tinc": rt, "rtt_p50_over_tinc": rr}
        v1 = "" if rt != rt else (" met" if rt >= 2 else " NOT met")
        v2 = "" if rr != rr else (" met" if rr <= 1 else " NOT met")
        print(f"| {name} | {s['n']} | {s['mbit_s']:.0f} | {s['mbit_s_min']:.0f}..{s['mbit_s_max']:.0f} "
              f"| {s['p50_us']:.0f} | {s['p50_min']:.0f}..{s['p50_max']:.0f} | {s['p90_us']:.0f} "
              f"| {x(rt)}{v1} | {x(rr)}{v2} | {s['cpu_pct']:.0f} | {s['retr']:.0f} | {s['lost']}/{s['pings']} |")
    if t:
        # Stacks of one round run minutes apart at most: the ratio within
        # a round is less exposed to the machine's load swings.
        print()
        print("| stack | TCP / tinc, each round | RTT p50 / tinc, each round |")
        print("|---|---|---|")
        for name in stacks:
            if name == "tinc":
                continue
            tr, rr = [], []
            for rnd in range(1, a.rounds + 1):
                o = [r for r in runs if r["stack"] == name and r["round"] == rnd]
                ti = [r for r in runs if r["stack"] == "tinc" and r["round"] == rnd]
                if o and ti:
                    tr.append(cb.ratio(o[0]["mbit_s"], ti[0]["mbit_s"]))
                    rr.append(cb.ratio(o[0]["p50_us"], ti[0]["p50_us"]))
            ratios[name]["tcp_over_tinc_rounds"] = tr
            ratios[name]["rtt_p50_over_tinc_rounds"] = rr
            print(f"| {name} | {', '.join(x(v) for v in tr)} | {', '.join(x(v) for v in rr)} |")
    q, c = summary.get("ours-quic"), summary.get("ours-inproc")
    if q and c:
        print()
        print("| ours-quic / ours-inproc (cryptcab) | TCP, median (≥ 0.7x) | TCP, each round | RTT p50, median |")
        print("|---|---:|---|---:|")
        qr = []
        for rnd in range(1, a.rounds + 1):
            o = [r for r in runs if r["stack"] == "ours-quic" and r["round"] == rnd]
            i = [r for r in runs if r["stack"] == "ours-inproc" and r["round"] == rnd]
            if o and i:
                qr.append(cb.ratio(o[0]["mbit_s"], i[0]["mbit_s"]))
        rq = cb.ratio(q["mbit_s"], c["mbit_s"])
        ratios["ours-quic"]["tcp_over_inproc"] = rq
        ratios["ours-quic"]["tcp_over_inproc_rounds"] = qr
        print(f"| | {x(rq)}{'' if rq != rq else (' met' if rq >= 0.7 else ' NOT met')} "
              f"| {', '.join(x(v) for v in qr)} | {x(cb.ratio(q['p50_us'], c['p50_us']))} |")
    print()
    print("Targets (issue #9): TCP >= 2x tinc's, RTT p50 <= tinc's. "
          "(issue #14): ours-quic TCP >= 0.7x ours-inproc's (cryptcab), and ahead of tinc.")
    if notes:
        print()
        print("notes:")
        for nn in notes:
            print("  - " + nn)
    if a.json:
        cb.write_json(a, load0, load1, runs, notes, total, summary=summary, ratios=ratios)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cb.cleanup_all()
