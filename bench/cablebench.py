#!/usr/bin/env python3
"""Switch-cable-switch benchmark: our tools vs the C tools, in one run.

Run through bench/run-cables.sh, which builds our binaries, snapshots them,
compiles bench/vdeperf.c and passes the paths. Python 3 standard library
only. Only unix sockets and UDP on 127.0.0.1 are used.

Topology, for each cable kind:

    [ping / source] -- switch A == cable == switch B -- [pong / sink]

Cable kinds:
  stream  dpipe vde_plug A = vde_plug B   (two plugs joined by pipes)
  udp     vde_plug A udp://127.0.0.1:P1->127.0.0.1:P2
          vde_plug B udp://127.0.0.1:P2->127.0.0.1:P1

Stacks:
  C     C vde_switch (vde2) x2, C vde_plug (vdeplug4), C dpipe
  ours  our vde_switch x2, our vde_plug, our dpipe if given (else C dpipe)

For each round, for each cable, for each stack (C first in odd rounds, ours
first in even rounds), one fresh topology in a fresh /tmp directory:
  1. start both switches and the cable, each in its own session;
  2. for each size: `vdeperf pong` on B, `vdeperf ping` on A (warm-up, then
     --pings round trips, one at a time, with a per-frame timeout);
  3. for each size: `vdeperf sink` on B, `vdeperf source` on A blasting
     --frames frames (blocking vde_send); delivered frames/s at the sink,
     loss = (sent - received) / sent; CPU (utime+stime) of both switches
     and every cable process over the run, per delivered frame;
  4. check that the switches and the cable are still alive, stop every
     process of every session started, remove the directory.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

LIVE_SIDS = set()
LIVE_DIRS = set()
SID_FILE = None  # also read by run-cables.sh's EXIT trap
NEEDED_KILL = []  # command lines that outlived SIGTERM by a second


# ------------------------------------------------------------ processes

def record_sid(sid):
    LIVE_SIDS.add(sid)
    if SID_FILE:
        with open(SID_FILE, "a") as f:
            f.write(f"{sid}\n")


def spawn(argv, **kw):
    """Starts argv as the leader of a new session (sid = pid)."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    record_sid(p.pid)
    return p


def spawn_wrapped(argv, **kw):
    """Starts argv as a child of a shell that leads a new session.

    The C dpipe makes its own process group and refuses to run as a session
    leader ("cannot create pgrp"); under `sh -c 'CMD & wait'` it is not one.
    Every process it starts stays in the session, which is what we kill."""
    cmd = " ".join(shlex.quote(a) for a in argv) + " & wait $!"
    return spawn(["/bin/sh", "-c", cmd], **kw)


def session_pids(sid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        # fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(name))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return f"pid {pid}"


def kill_session(p, grace=1.0):
    """SIGTERM every process in p's session, then SIGKILL what is left."""
    if p is None or getattr(p, "_bench_stopped", False):
        return
    sid = p.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        pids = session_pids(sid)
        if not pids:
            break
        if sig == signal.SIGKILL:
            NEEDED_KILL.extend(cmdline(pid) for pid in pids)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end and session_pids(sid):
            try:
                p.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    p._bench_stopped = True
    LIVE_SIDS.discard(sid)


def cleanup_all():
    for sid in list(LIVE_SIDS):
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    LIVE_SIDS.clear()
    for d in list(LIVE_DIRS):
        shutil.rmtree(d, ignore_errors=True)
    LIVE_DIRS.clear()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def ticks_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def parse_kv(text, tag):
    for l in text.splitlines():
        parts = l.split()
        if parts and parts[0] == tag:
            return dict(x.split("=", 1) for x in parts[1:] if "=" in x)
    return None


def free_udp_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def udp_rcvbuf_errors():
    """System-wide UDP RcvbufErrors (this network namespace)."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [l.split() for l in f if l.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def mgmt_query(path, cmd, timeout=2.0):
    """Sends one command on a management socket, returns the reply text."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        time.sleep(0.05)
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if b"\n1000 " in buf or b"\n1038 " in buf or b"Function not implemented" in buf:
                break
        return buf.decode(errors="replace")
    finally:
        s.close()


def switch_drops(mgmt):
    """Our switch's `stats`: the tx_full and tx_error drop counters."""
    try:
        text = mgmt_query(mgmt, "stats")
    except OSError:
        return None
    out = {}
    for l in text.splitlines():
        parts = l.split()
        if len(parts) == 3 and parts[0] == "drop" and parts[1] in ("tx_full", "tx_error"):
            out[parts[1]] = int(parts[2])
    return out or None


def log_lines(path, ignore=()):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return []
    out = []
    for l in text.splitlines():
        l = l.strip()
        if not l or l in ("vde$", "vde[...]$") or any(i in l.lower() for i in ignore):
            continue
        out.append(l)
    return out


# ------------------------------------------------------------ topology

class Stack:
    def __init__(self, name, switch, plug, dpipe, ours):
        self.name, self.switch, self.plug, self.dpipe, self.ours = name, switch, plug, dpipe, ours


class Topology:
    """switch A == cable == switch B in a fresh directory."""

    def __init__(self, stack, cable, args):
        self.stack, self.cable, self.args = stack, cable, args
        self.d = tempfile.mkdtemp(prefix="topo.", dir=args.tmpdir)
        LIVE_DIRS.add(self.d)
        self.switches, self.cable_procs, self.logs, self.mgmts = [], [], [], []

    def start_switch(self, name, extra=()):
        sd = os.path.join(self.d, name)
        os.mkdir(sd)
        ctl, mgmt = os.path.join(sd, "ctl"), os.path.join(sd, "mgmt")
        argv = [self.stack.switch, "-s", ctl, "-M", mgmt, "-n", "8"] + list(extra)
        if self.stack.ours:
            argv.insert(1, "--nostdin")
        log = os.path.join(sd, "switch.log")
        with open(log, "wb") as logf:
            # The C switch exits on EOF on stdin: hold a pipe open for it.
            p = spawn(argv, stdin=subprocess.DEVNULL if self.stack.ours else subprocess.PIPE,
                      stdout=logf, stderr=subprocess.STDOUT)
        self.switches.append(p)
        self.mgmts.append(mgmt)
        self.logs.append((f"switch {name}", log))
        wait_for(lambda: os.path.exists(os.path.join(ctl, "ctl")) and os.path.exists(mgmt),
                 5, f"{self.stack.name} switch {name} sockets")
        if p.poll() is not None:
            raise RuntimeError(f"{self.stack.name} switch {name} exited: {open(log).read()}")
        return ctl

    def start(self):
        self.a = self.start_switch("a")
        self.b = self.start_switch("b")
        st = self.stack
        if self.cable == "stream":
            log = os.path.join(self.d, "cable.log")
            with open(log, "wb") as logf:
                p = spawn_wrapped([st.dpipe, st.plug, self.a, "=", st.plug, self.b],
                                  stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
            self.cable_procs.append(p)
            self.logs.append(("dpipe cable", log))
        elif self.cable == "udp":
            p1, p2 = free_udp_ports(2)
            for side, ctl, (src, dst) in (("a", self.a, (p1, p2)), ("b", self.b, (p2, p1))):
                log = os.path.join(self.d, f"plug-{side}.log")
                with open(log, "wb") as logf:
                    p = spawn([st.plug, ctl, f"udp://127.0.0.1:{src}->127.0.0.1:{dst}"],
                              stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
                self.cable_procs.append(p)
                self.logs.append((f"udp plug {side}", log))
        else:
            raise ValueError(self.cable)
        # Both switches must see the cable's port (a data socket in ctl/).
        for ctl in (self.a, self.b):
            wait_for(lambda: len([n for n in os.listdir(ctl) if n != "ctl"]) >= 1, 5,
                     f"{st.name} {self.cable} cable to connect to {ctl}")
        self.check_alive("after start")
        return self

    def check_alive(self, when):
        dead = []
        for p in self.switches + self.cable_procs:
            if p.poll() is not None:
                dead.append(f"{' '.join(map(str, p.args))[:100]} (exit {p.returncode})")
        if dead:
            raise RuntimeError(f"{self.stack.name}/{self.cable} {when}: exited: {dead}; logs: {self.log_text()}")

    def alive_problems(self):
        return [f"{' '.join(map(str, p.args))[:100]} exited ({p.returncode})"
                for p in self.switches + self.cable_procs if p.poll() is not None]

    def net_ticks(self):
        """utime+stime of both switches and every cable process."""
        return sum(ticks_of(pid) for p in self.switches + self.cable_procs for pid in session_pids(p.pid))

    def log_text(self):
        out = {}
        for name, path in self.logs:
            lines = log_lines(path, ignore=("caught signal 15",))
            if lines:
                out[name] = lines[:8]
        return out

    def stop(self):
        for p in self.cable_procs + self.switches:
            kill_session(p)
            if p.stdin:
                try:
                    p.stdin.close()
                except OSError:
                    pass

    def remove(self):
        shutil.rmtree(self.d, ignore_errors=True)
        LIVE_DIRS.discard(self.d)


def communicate(p, timeout, what):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(p)
        out, err = p.communicate()
        err = (err or "") + f" [{what} killed: timeout]"
    return out or "", err or ""


def run_ping(topo, vdeperf, size, args):
    ready = os.path.join(topo.d, f"pong-ready-{size}")
    pong = ping = None
    try:
        pong = spawn([vdeperf, "pong", topo.b, "-R", ready, "-t", str(args.run_timeout)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(ready) or pong.poll() is not None, 5, "pong ready")
        if pong.poll() is not None:
            raise RuntimeError(f"pong failed: {pong.stderr.read()}")
        ping = spawn([vdeperf, "ping", topo.a, "-n", str(args.pings), "-s", str(size),
                      "-W", str(args.ping_timeout_ms), "-t", str(args.run_timeout)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p_out, p_err = communicate(ping, args.run_timeout + 5, "ping")
        q_out, q_err = communicate(pong, 3, "pong")
        pr, qr = parse_kv(p_out, "ping"), parse_kv(q_out, "pong")
        if pr is None:
            raise RuntimeError(f"bad ping output: {p_out!r} {p_err!r}")
        r = {"kind": "rtt", "size": size, "stop": pr.get("stop"),
             "sent": int(pr["sent"]), "received": int(pr["received"]),
             "lost": int(pr["lost"]), "late": int(pr["late"]),
             "warmup": pr.get("warmup", pr.get("warmup_tries")),
             "echoed": int(qr["echoed"]) if qr else None,
             "ping_stderr": p_err.strip(), "pong_stderr": q_err.strip()}
        for k in ("p50_us", "p90_us", "p99_us", "mean_us", "min_us", "max_us"):
            r[k] = float(pr[k]) if k in pr else float("nan")
        return r
    finally:
        kill_session(ping)
        kill_session(pong)


def run_blast(topo, vdeperf, size, args):
    ready = os.path.join(topo.d, f"sink-ready-{size}")
    sink = src = None
    try:
        sink = spawn([vdeperf, "sink", topo.b, "-R", ready, "-t", str(args.run_timeout),
                      "-i", "500", "-e", str(args.frames)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(ready) or sink.poll() is not None, 5, "sink ready")
        if sink.poll() is not None:
            raise RuntimeError(f"sink failed: {sink.stderr.read()}")
        time.sleep(0.05)  # let the announce cross the cable
        u0 = udp_rcvbuf_errors()
        c0 = topo.net_ticks()
        t0 = time.monotonic()
        src = spawn([vdeperf, "source", topo.a, "-n", str(args.frames), "-s", str(size),
                     "-t", str(args.run_timeout)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        s_out, s_err = communicate(src, args.run_timeout + 5, "source")
        k_out, k_err = communicate(sink, args.run_timeout + 5, "sink")
        wall = time.monotonic() - t0
        c1 = topo.net_ticks()
        u1 = udp_rcvbuf_errors()
        drops = None
        if topo.stack.ours:
            drops = [switch_drops(m) for m in topo.mgmts]  # cumulative per topology
        so, sk = parse_kv(s_out, "source"), parse_kv(k_out, "sink")
        if so is None or sk is None:
            raise RuntimeError(f"bad output: source={s_out!r} {s_err!r} sink={k_out!r} {k_err!r}")
        sent, recv, el = int(so["sent"]), int(sk["frames"]), int(sk["elapsed_ns"])
        ticks = c1 - c0
        return {
            "kind": "fps", "size": size, "sent": sent, "received": recv,
            "loss_pct": 100.0 * (sent - recv) / sent if sent else 0.0,
            "fps": (recv - 1) * 1e9 / el if el > 0 and recv > 1 else 0.0,
            "source_fps": float(so["fps"]), "elapsed_s": el / 1e9, "wall_s": wall,
            "net_ticks": ticks,
            "net_cpu_ns_per_frame": ticks * 1e9 / CLK_TCK / recv if recv else float("nan"),
            "sink_stop": sk.get("stop"), "source_stop": so.get("stop"),
            "ooo": int(sk.get("ooo", 0)),
            "sink_bytes": int(sk.get("bytes", 0)),
            "udp_rcvbuf_errors": u1 - u0 if u0 is not None and u1 is not None else None,
            "switch_drops": drops,
            "source_stderr": s_err.strip(), "sink_stderr": k_err.strip(),
        }
    finally:
        kill_session(src)
        kill_session(sink)


def run_topology(stack, cable, sizes, vdeperf, args):
    topo = Topology(stack, cable, args)
    results = []
    try:
        topo.start()
        for size in sizes:
            results.append(run_ping(topo, vdeperf, size, args))
        for size in sizes:
            results.append(run_blast(topo, vdeperf, size, args))
        problems = topo.alive_problems()
        topo.stop()
        logs = topo.log_text()
        for r in results:
            r.update({"stack": stack.name, "cable": cable})
        return results, problems, logs
    finally:
        topo.stop()
        topo.remove()


# ------------------------------------------------------------ report

def describe(head, r):
    """One log line for a ping (rtt) or blast (fps) result."""
    if r["kind"] == "rtt":
        return (f"{head} rtt: p50 {r['p50_us']:.1f} p90 {r['p90_us']:.1f} "
                f"p99 {r['p99_us']:.1f} mean {r['mean_us']:.1f} max {r['max_us']:.0f} us, "
                f"{r['received']}/{r['sent']} answered (lost {r['lost']}, late {r['late']}), "
                f"warmup {r['warmup']}, pong echoed {r['echoed']}")
    extra = ""
    if "sink_bytes_per_frame" in r:
        extra += f", bytes/frame at sink {r['sink_bytes_per_frame']:.1f}"
    return (f"{head} fps: {fmt_int(r['fps']):>9} delivered, sent {r['sent']} "
            f"recv {r['received']} (loss {r['loss_pct']:.2f}%), source "
            f"{fmt_int(r['source_fps'])} fps, switches+cable CPU {r['net_ticks']} ticks "
            f"= {r['net_cpu_ns_per_frame']:.0f} ns/delivered frame, "
            f"sink stop={r['sink_stop']}, ooo={r['ooo']}{extra}, udp RcvbufErrors +{r['udp_rcvbuf_errors']}"
            + (f", switch A/B drops so far {r['switch_drops']}" if r["switch_drops"] else ""))


def med(xs):
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt_int(x):
    return "nan" if x != x else f"{x:,.0f}"


def ratio(a, b):
    return a / b if b and b == b and a == a else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vdeperf", required=True)
    ap.add_argument("--c-switch", default="/usr/bin/vde_switch")
    ap.add_argument("--c-plug", default="/usr/bin/vde_plug")
    ap.add_argument("--c-dpipe", default="/usr/bin/dpipe")
    ap.add_argument("--ours-switch", required=True)
    ap.add_argument("--ours-plug", required=True)
    ap.add_argument("--ours-dpipe", help="our dpipe (default: the C dpipe for both stacks)")
    ap.add_argument("--frames", type=int, default=100000, help="frames per blast (default 100000)")
    ap.add_argument("--pings", type=int, default=2000, help="round trips per RTT run (default 2000)")
    ap.add_argument("--ping-timeout-ms", type=int, default=50, help="per-frame echo timeout (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--sizes", default="64,1500", help="frame sizes in bytes (default 64,1500)")
    ap.add_argument("--cables", default="stream,udp", help="cable kinds (default stream,udp)")
    ap.add_argument("--run-timeout", type=float, default=20.0, help="per-process limit in s")
    ap.add_argument("--json", help="write every run's raw numbers to this file")
    ap.add_argument("--sid-file", help="append started session ids here")
    ap.add_argument("--tmpdir", help="make the per-topology directories here (default: $TMPDIR or /tmp)")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    global SID_FILE
    SID_FILE = args.sid_file
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    c = Stack("C", args.c_switch, args.c_plug, args.c_dpipe, ours=False)
    o = Stack("ours", args.ours_switch, args.ours_plug, args.ours_dpipe or args.c_dpipe, ours=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    cables = args.cables.split(",")
    runs, notes = [], []
    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    print(f"load average at start: {load0}", flush=True)
    print(f"ours: switch {o.switch}, plug {o.plug}, dpipe {o.dpipe}"
          f"{'' if args.ours_dpipe else ' (the C one)'}", flush=True)
    try:
        for rnd in range(1, args.rounds + 1):
            order = [c, o] if rnd % 2 == 1 else [o, c]
            for cable in cables:
                for st in order:
                    try:
                        res, problems, logs = run_topology(st, cable, sizes, args.vdeperf, args)
                    except RuntimeError as e:
                        msg = f"round {rnd} {cable} {st.name}: FAILED: {e}"
                        print("    !! " + msg, flush=True)
                        notes.append(msg)
                        continue
                    for r in res:
                        r["round"] = rnd
                        runs.append(r)
                        print(describe(f"round {rnd} {cable:6} {st.name:4} {r['size']:4} B", r), flush=True)
                        for k in ("ping_stderr", "pong_stderr", "source_stderr", "sink_stderr"):
                            if r.get(k):
                                msg = f"round {rnd} {cable} {st.name} {r['size']} B {k}: {r[k][:300]}"
                                print("    " + msg, flush=True)
                                notes.append(msg)
                    for p in problems:
                        msg = f"round {rnd} {cable} {st.name}: {p}"
                        print("    !! " + msg, flush=True)
                        notes.append(msg)
                    for cl in NEEDED_KILL:
                        msg = f"round {rnd} {cable} {st.name}: still running 1 s after SIGTERM, killed: {cl}"
                        print("    !! " + msg, flush=True)
                        notes.append(msg)
                    NEEDED_KILL.clear()
                    for name, lines in logs.items():
                        msg = f"round {rnd} {cable} {st.name} {name} log: {lines}"
                        print("    " + msg, flush=True)
                        notes.append(msg)
    finally:
        cleanup_all()
    total = time.monotonic() - t_start
    with open("/proc/loadavg") as f:
        load1 = " ".join(f.read().split()[:3])

    # ---- summary
    print()
    print(f"rounds: {args.rounds}, frames per blast: {args.frames}, pings per RTT run: {args.pings} "
          f"(timeout {args.ping_timeout_ms} ms), ours dpipe: "
          f"{'ours' if args.ours_dpipe else 'C'}; measuring took {total:.0f} s; "
          f"load average {load0} at start, {load1} at end")
    print()
    print("| cable | size | stack | frames/s delivered (median) | min..max | loss % (median) "
          "| switches+cable CPU ns/delivered frame | RTT p50 µs | RTT p99 µs | RTT mean µs | pings lost |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for cable in cables:
        for size in sizes:
            for st in (c, o):
                f = [r for r in runs if r["kind"] == "fps" and r["cable"] == cable
                     and r["size"] == size and r["stack"] == st.name]
                t = [r for r in runs if r["kind"] == "rtt" and r["cable"] == cable
                     and r["size"] == size and r["stack"] == st.name]
                fps = [r["fps"] for r in f]
                s = {
                    "fps": med(fps), "fps_min": min(fps) if fps else float("nan"),
                    "fps_max": max(fps) if fps else float("nan"),
                    "loss": med([r["loss_pct"] for r in f]),
                    "cpu": med([r["net_cpu_ns_per_frame"] for r in f]),
                    "p50": med([r["p50_us"] for r in t]), "p99": med([r["p99_us"] for r in t]),
                    "mean": med([r["mean_us"] for r in t]),
                    "lost": sum(r["lost"] for r in t), "pings": sum(r["sent"] for r in t),
                    "n_fps": len(f), "n_rtt": len(t),
                }
                summary[(cable, size, st.name)] = s
                print(f"| {cable} | {size} | {st.name} | {fmt_int(s['fps'])} | "
                      f"{fmt_int(s['fps_min'])}..{fmt_int(s['fps_max'])} | {s['loss']:.2f} | "
                      f"{fmt_int(s['cpu'])} | {s['p50']:.1f} | {s['p99']:.1f} | {s['mean']:.1f} | "
                      f"{s['lost']}/{s['pings']} |")
    print()
    print("| cable | size | frames/s ours/C (≥ 1.5x) | RTT p50 C/ours (≥ 1.5x) | RTT p99 C/ours (≥ 1.5x) "
          "| CPU/frame ours/C | loss ours vs C |")
    print("|---|---:|---:|---:|---:|---:|---|")
    verdict = []
    for cable in cables:
        for size in sizes:
            cs, os_ = summary[(cable, size, "C")], summary[(cable, size, "ours")]
            fr = ratio(os_["fps"], cs["fps"])
            p50 = ratio(cs["p50"], os_["p50"])
            p99 = ratio(cs["p99"], os_["p99"])
            cr = ratio(os_["cpu"], cs["cpu"])

            def yn(x):
                return "met" if x >= 1.5 else "NOT met"
            verdict.append((cable, size, fr, p50, p99))
            print(f"| {cable} | {size} | {fr:.2f}x {yn(fr)} | {p50:.2f}x {yn(p50)} | {p99:.2f}x {yn(p99)} "
                  f"| {cr:.2f}x | {os_['loss']:.2f}% vs {cs['loss']:.2f}% |")
    print()
    print("RTT ratios are C/ours, so that above 1 means ours is faster, like frames/s ours/C.")
    if notes:
        print()
        print("notes:")
        for n in notes:
            print("  - " + n)
    if args.json:
        write_json(args, load0, load1, runs, notes, total)
    return 0


def write_json(args, load0, load1, runs, notes, total, **extra):
    """The raw results of a run, with the machine and the date."""
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "load_at_start": load0, "load_at_end": load1,
                   "runs": runs, "notes": notes, "clk_tck": CLK_TCK, **extra,
                   "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "host": platform.node(), "seconds": total}, f, indent=1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup_all()
