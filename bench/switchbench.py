#!/usr/bin/env python3
"""Side-by-side vde_switch benchmark: ours vs the C vde_switch.

Run through bench/run.sh, which builds both binaries under test and passes
--vdeperf. Python 3 standard library only. Only unix sockets are used.

For each frame size, for each round, for each switch (alternating C, ours):
  1. start the switch in a fresh /tmp/vde-bench.XXXX directory, in its own
     session (process group);
  2. start `vdeperf sink` (announces its MAC with a broadcast frame, then
     counts frames) and wait until it is ready;
  3. read the switch's utime+stime from /proc/PID/stat;
  4. run `vdeperf source` (N frames of S bytes, unicast to the sink's MAC,
     blocking vde_send: flow-controlled by the switch), wait for the sink;
  5. read utime+stime again, stop everything, remove the directory.
Separately, per round and switch: idle RSS (VmRSS) one second after the
switch started, with two idle clients connected.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Everything we started, so that it can be stopped whatever happens.
LIVE_GROUPS = set()
LIVE_DIRS = set()
PGID_FILE = None  # also recorded for run.sh's EXIT trap


def record_pgid(pgid):
    LIVE_GROUPS.add(pgid)
    if PGID_FILE:
        with open(PGID_FILE, "a") as f:
            f.write(f"{pgid}\n")


def kill_group(p, grace=2.0):
    """SIGTERM the process group of p (a session leader), then SIGKILL."""
    if p is None or getattr(p, "_bench_stopped", False):
        return
    pgid = p.pid
    if p.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left in the group (the leader may have gone first).
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    p._bench_stopped = True
    LIVE_GROUPS.discard(pgid)


def cleanup_all():
    for pgid in list(LIVE_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    LIVE_GROUPS.clear()
    for d in list(LIVE_DIRS):
        shutil.rmtree(d, ignore_errors=True)
    LIVE_DIRS.clear()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def spawn(argv, cpus=None, **kw):
    def pre():
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    p = subprocess.Popen(argv, start_new_session=True, preexec_fn=pre, **kw)
    record_pgid(p.pid)
    return p


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def parse_kv(line, tag):
    for l in line.splitlines():
        parts = l.split()
        if parts and parts[0] == tag:
            return dict(p.split("=", 1) for p in parts[1:] if "=" in p)
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


class Switch:
    def __init__(self, name, binary, ours):
        self.name, self.binary, self.ours = name, binary, ours
        self.p = None

    def start(self, d, cpus=None, numports=4):
        ctl, mgmt = os.path.join(d, "ctl"), os.path.join(d, "mgmt")
        argv = [self.binary, "-s", ctl, "-M", mgmt, "-n", str(numports)]
        if self.ours:
            argv.insert(1, "--nostdin")
        self.log = os.path.join(d, "switch.log")
        logf = open(self.log, "wb")
        # The C switch reads commands from stdin and exits on EOF: keep a
        # pipe open for it. Ours gets --nostdin and /dev/null.
        stdin = subprocess.DEVNULL if self.ours else subprocess.PIPE
        self.p = spawn(argv, cpus, stdin=stdin, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.t0 = time.monotonic()
        self.ctl, self.mgmt = ctl, mgmt
        wait_for(
            lambda: os.path.exists(os.path.join(ctl, "ctl")) and os.path.exists(mgmt),
            5,
            f"{self.name} switch sockets",
        )
        if self.p.poll() is not None:
            raise RuntimeError(f"{self.name} switch exited: {open(self.log).read()}")
        return self

    def stop(self):
        kill_group(self.p)
        if self.p and self.p.stdin:
            try:
                self.p.stdin.close()
            except OSError:
                pass

    def log_lines(self):
        """Log lines other than the prompt and the expected exit message."""
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            return []
        out = []
        for l in text.splitlines():
            l = l.strip()
            if not l or l in ("vde$", "vde[...]$") or "caught signal 15" in l.lower():
                continue
            out.append(l)
        return out


def data_sockets(ctl):
    try:
        return [n for n in os.listdir(ctl) if n != "ctl"]
    except OSError:
        return []


def run_throughput(sw, vdeperf, frames, size, args):
    d = tempfile.mkdtemp(prefix="vde-bench.")
    LIVE_DIRS.add(d)
    sink = src = None
    try:
        sw_cpus = sink_cpus = src_cpus = None
        if args.pin:
            sw_cpus, sink_cpus, src_cpus = {0}, {1}, {1}
        sw.start(d, sw_cpus)
        ready = os.path.join(d, "ready")
        sink = spawn(
            [vdeperf, "sink", sw.ctl, "-R", ready, "-t", str(args.run_timeout),
             "-i", "500", "-e", str(frames)] + (["-1"] if args.sink_single else []),
            sink_cpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for(lambda: os.path.exists(ready) or sink.poll() is not None, 5, "sink ready")
        if sink.poll() is not None:
            raise RuntimeError(f"sink failed: {sink.stderr.read()}")
        c0 = cpu_ticks(sw.p.pid)
        t0 = time.monotonic()
        src = spawn(
            [vdeperf, "source", sw.ctl, "-n", str(frames), "-s", str(size),
             "-t", str(args.run_timeout), "-b", str(args.source_batch)],
            src_cpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            s_out, s_err = src.communicate(timeout=args.run_timeout + 5)
        except subprocess.TimeoutExpired:
            kill_group(src)
            s_out, s_err = src.communicate()
            s_err += " [source killed: timeout]"
        try:
            k_out, k_err = sink.communicate(timeout=args.run_timeout + 5)
        except subprocess.TimeoutExpired:
            kill_group(sink)
            k_out, k_err = sink.communicate()
            k_err += " [sink killed: timeout]"
        wall = time.monotonic() - t0
        c1 = cpu_ticks(sw.p.pid)
        hwm = status_kb(sw.p.pid, "VmHWM")
        so, sk = parse_kv(s_out, "source"), parse_kv(k_out, "sink")
        if so is None or sk is None:
            raise RuntimeError(f"bad output: source={s_out!r} {s_err!r} sink={k_out!r} {k_err!r}")
        stats = None
        if sw.ours:
            try:
                stats = mgmt_query(sw.mgmt, "stats")
            except OSError as e:
                stats = f"(stats query failed: {e})"
        alive = sw.p.poll() is None
        sent, recv = int(so["sent"]), int(sk["frames"])
        el = int(sk["elapsed_ns"])
        ticks = c1 - c0
        r = {
            "switch": sw.name, "size": size, "frames": frames,
            "sent": sent, "received": recv,
            "loss_pct": 100.0 * (sent - recv) / sent if sent else 0.0,
            "fps": (recv - 1) * 1e9 / el if el > 0 and recv > 1 else 0.0,
            "source_fps": float(so["fps"]),
            "elapsed_s": el / 1e9, "wall_s": wall,
            "cpu_ticks": ticks,
            "cpu_ns_per_frame": ticks * 1e9 / CLK_TCK / recv if recv else float("nan"),
            "cpu_ns_per_sent_frame": ticks * 1e9 / CLK_TCK / sent if sent else float("nan"),
            "cpu_util_pct": 100.0 * ticks / CLK_TCK / wall if wall else 0.0,
            "vmhwm_kb": hwm,
            "sink_stop": sk.get("stop"), "source_stop": so.get("stop"),
            "ooo": int(sk.get("ooo", 0)),
            "source_stderr": s_err.strip(), "sink_stderr": k_err.strip(),
            "switch_alive": alive,
        }
        if stats is not None:
            r["tx_full"] = None
            for l in stats.splitlines():
                if l.startswith("drop tx_full "):
                    r["tx_full"] = int(l.split()[2])
            r["stats"] = stats
        sw.stop()
        r["switch_log"] = sw.log_lines()
        return r
    finally:
        kill_group(src)
        kill_group(sink)
        sw.stop()
        shutil.rmtree(d, ignore_errors=True)
        LIVE_DIRS.discard(d)


def run_idle_rss(sw, vdeperf, args):
    d = tempfile.mkdtemp(prefix="vde-bench.")
    LIVE_DIRS.add(d)
    holders = []
    try:
        sw.start(d)
        for _ in range(2):
            holders.append(spawn([vdeperf, "hold", sw.ctl, "-t", "5"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        wait_for(lambda: len(data_sockets(sw.ctl)) >= 2, 3, "two idle clients")
        delay = sw.t0 + 1.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if any(h.poll() is not None for h in holders):
            raise RuntimeError("an idle client exited early")
        return status_kb(sw.p.pid, "VmRSS")
    finally:
        for h in holders:
            kill_group(h)
        sw.stop()
        shutil.rmtree(d, ignore_errors=True)
        LIVE_DIRS.discard(d)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def fmt_int(x):
    return f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vdeperf", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--c-switch", default="/usr/bin/vde_switch")
    ap.add_argument("--frames", type=int, default=300000, help="frames per run (default 300000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--sizes", default="64,1500", help="frame sizes in bytes (default 64,1500)")
    ap.add_argument("--run-timeout", type=float, default=30.0, help="per-process limit in s")
    ap.add_argument("--sink-single", action="store_true",
                    help="sink reads one frame per vde_recv() instead of recvmmsg() batches")
    ap.add_argument("--source-batch", type=int, default=1,
                    help="frames per sendmmsg() in the source (default 1: plain vde_send)")
    ap.add_argument("--pin", action="store_true",
                    help="pin the switch to CPU 0 and both clients to CPU 1")
    ap.add_argument("--json", help="write every run's raw numbers to this file")
    ap.add_argument("--pgid-file", help="append started process group ids here")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    global PGID_FILE
    PGID_FILE = args.pgid_file
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    c_sw = Switch("C", args.c_switch, ours=False)
    our_sw = Switch("ours", args.ours, ours=True)
    order = [c_sw, our_sw]
    sizes = [int(s) for s in args.sizes.split(",")]
    runs, rss = [], {"C": [], "ours": []}
    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    print(f"load average at start: {load0}", flush=True)
    try:
        for rnd in range(1, args.rounds + 1):
            for sw in order:
                kb = run_idle_rss(sw, args.vdeperf, args)
                rss[sw.name].append(kb)
                print(f"round {rnd} idle RSS {sw.name:4}: {kb} kB", flush=True)
        for size in sizes:
            for rnd in range(1, args.rounds + 1):
                for sw in order:
                    r = run_throughput(sw, args.vdeperf, args.frames, size, args)
                    r["round"] = rnd
                    runs.append(r)
                    extra = ""
                    if "tx_full" in r:
                        extra = f" tx_full={r['tx_full']}"
                    print(
                        f"size {size:4} round {rnd} {sw.name:4}: "
                        f"{fmt_int(r['fps']):>9} fps delivered, sent {r['sent']} recv {r['received']} "
                        f"(loss {r['loss_pct']:.2f}%), source {fmt_int(r['source_fps'])} fps, "
                        f"switch CPU {r['cpu_ticks']} ticks = {r['cpu_ns_per_frame']:.0f} ns/delivered frame "
                        f"({r['cpu_ns_per_sent_frame']:.0f} ns/sent), util {r['cpu_util_pct']:.0f}%, "
                        f"sink stop={r['sink_stop']}{extra}",
                        flush=True,
                    )
                    for what in ("source_stderr", "sink_stderr"):
                        if r[what]:
                            print(f"    {what}: {r[what]}")
                    if r["switch_log"]:
                        print(f"    switch log: {r['switch_log'][:5]}")
                    if not r["switch_alive"]:
                        print("    !! the switch had exited before it was stopped")
                    if args.verbose and r.get("stats"):
                        print("    " + r["stats"].replace("\n", "\n    "))
    finally:
        cleanup_all()

    total = time.monotonic() - t_start
    # ---- summary
    print()
    print(f"frames per run: {args.frames}, rounds: {args.rounds}, CLK_TCK: {CLK_TCK}, "
          f"sink: {'vde_recv' if args.sink_single else 'recvmmsg'}, "
          f"source: {'vde_send' if args.source_batch == 1 else f'sendmmsg x{args.source_batch}'}"
          f"{', pinned' if args.pin else ''}; measuring took {total:.0f} s")
    print()
    print("| size | switch | frames/s delivered (median) | min..max | loss % (median) | "
          "switch CPU ns/delivered frame (median) | CPU ns/sent frame | switch CPU util | idle RSS kB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for size in sizes:
        for sw in order:
            rs = [r for r in runs if r["size"] == size and r["switch"] == sw.name]
            fps = [r["fps"] for r in rs]
            s = {
                "fps": med(fps), "fps_min": min(fps), "fps_max": max(fps),
                "loss": med([r["loss_pct"] for r in rs]),
                "cpu": med([r["cpu_ns_per_frame"] for r in rs]),
                "cpu_sent": med([r["cpu_ns_per_sent_frame"] for r in rs]),
                "util": med([r["cpu_util_pct"] for r in rs]),
                "rss": med(rss[sw.name]),
            }
            summary[(size, sw.name)] = s
            print(f"| {size} | {sw.name} | {fmt_int(s['fps'])} | {fmt_int(s['fps_min'])}..{fmt_int(s['fps_max'])} "
                  f"| {s['loss']:.2f} | {s['cpu']:.0f} | {s['cpu_sent']:.0f} | {s['util']:.0f}% | {s['rss']:.0f} |")
    print()
    print("| size | frames/s ours/C | CPU per delivered frame ours/C | loss ours vs C | target met? | (CPU per sent frame ours/C) |")
    print("|---:|---:|---:|---|---|---:|")
    verdict = {}
    for size in sizes:
        c, o = summary[(size, "C")], summary[(size, "ours")]
        fr = o["fps"] / c["fps"] if c["fps"] else float("nan")
        cr = o["cpu"] / c["cpu"] if c["cpu"] else float("nan")
        loss_ok = o["loss"] <= c["loss"]
        met = [fr >= 1.5, loss_ok, cr <= 0.5]
        verdict[size] = met
        print(f"| {size} | {fr:.2f}x | {cr:.2f}x | {o['loss']:.2f}% vs {c['loss']:.2f}% "
              f"| fps>=1.5x: {'yes' if met[0] else 'NO'}; no more loss: {'yes' if met[1] else 'NO'}; "
              f"CPU<=0.5x: {'yes' if met[2] else 'NO'} | {o['cpu_sent'] / c['cpu_sent']:.2f}x |")
    print()
    print(f"idle RSS (1 s after start, 2 clients): C {med(rss['C']):.0f} kB, ours {med(rss['ours']):.0f} kB "
          f"(ours/C {med(rss['ours']) / med(rss['C']):.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "load_at_start": load0, "runs": runs, "idle_rss_kb": rss,
                       "clk_tck": CLK_TCK, "date": datetime.datetime.now().isoformat(),
                       "host": platform.node()}, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup_all()
