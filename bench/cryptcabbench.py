#!/usr/bin/env python3
"""Switch-cryptcab-switch benchmark (issue #5), in one run:

  C-cryptcab     C vde_switch x2 joined by the Debian vde_cryptcab (Blowfish,
                 pre-shared key, OPENSSL_CONF with the legacy provider)
  ours-cryptcab  our vde_switch x2 joined by our vde_cryptcab (same command
                 line, same pre-shared key file)
  ours-inproc    our vde_switch x2 with the cryptcab inside them (issue #9):
                 A `--listen cryptcab://:P1/psk=KEY`, B `--cable
                 cryptcab://127.0.0.1:P1/psk=KEY`; no cable process
  ours-udp       our vde_switch x2 joined by two of our vde_plug udp:// (the
                 plain cable of bench/cablebench.py)

Run through bench/run-cryptcab.sh, which builds our binaries, snapshots them,
compiles bench/vdeperf.c and passes the paths. Python 3 standard library only;
reuses the process, topology, ping and blast code of bench/cablebench.py.
Only unix sockets and UDP on 127.0.0.1 are used (the C vde_cryptcab binds its
port on 0.0.0.0, but every datagram goes to 127.0.0.1).

Topology (server on A, client on B):

    [ping / source] -- switch A == cryptcab server ~~udp~~ cryptcab client == switch B -- [pong / sink]

    server: vde_cryptcab -s A -p P1 -P KEY
    client: vde_cryptcab -s B -p P2 -c 127.0.0.1:P1 -P KEY

For each round, each stack (the order rotates from round to round) gets a
fresh topology: both switches and the cable, then a start-up phase that ends
when both switches show a port described `vde_cryptcab` in `port/print` and a
frame has crossed the cable (a warm-up `vdeperf source` on B makes the C
client log in again if its first LOGIN was lost), then ping/pong RTT for each
size, then a blast for each size (delivered frames/s at the sink, loss, CPU
of both switches and the cable processes per delivered frame).

The C cryptcab delivers every frame with a 12-byte trailer (counter and CRC,
never stripped); vdeperf only checks a minimum length, so these frames are
counted like the others. The sink's bytes/frame shows the trailer.
The C client also writes a copy of the key to /tmp/vde_XXXXXX.key and never
deletes it: this driver removes the files it sees appear whose content is the
benchmark's key (run-cryptcab.sh's exit trap does the same).
"""

import argparse
import glob
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no bench/__pycache__ from importing cablebench
import cablebench as cb  # noqa: E402

OPENSSL_CONF_DEFAULT = "/work/shared/specs/openssl-legacy-provider.cnf"


# ------------------------------------------------------------ helpers

def udp_port_bound(port):
    """True if some UDP socket (v4 or v6) of this namespace is bound to port."""
    hexport = f"{port:04X}"
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for l in f:
                    local = l.split()[1]
                    if local.rsplit(":", 1)[1] == hexport:
                        return True
        except (OSError, StopIteration, IndexError):
            pass
    return False


def cryptcab_ports(mgmt):
    """Number of ports described `vde_cryptcab` in the switch's port/print."""
    try:
        text = cb.mgmt_query(mgmt, "port/print", timeout=1.0)
    except OSError:
        return 0
    return text.count("vde_cryptcab")


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


# ------------------------------------------------------------ topology

class Probing:
    """Start-up bookkeeping shared by both topologies: a frame must cross
    A -> B (the direction of the blasts) before anything is measured."""

    def init_probing(self):
        self.startup = {"ports_up_s": None, "through_s": None, "kicks": 0, "probes": 0}

    def kick(self):
        """A few frames into switch B (the C client logs in on local traffic)."""
        self.startup["kicks"] += 1
        p = cb.spawn([self.args.vdeperf, "source", self.b, "-n", "5", "-s", "64", "-t", "2"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        cb.kill_session(p)

    def frame_crosses(self):
        self.startup["probes"] += 1
        ready = os.path.join(self.d, f"probe-ready-{self.startup['probes']}")
        sink = src = None
        try:
            sink = cb.spawn([self.args.vdeperf, "sink", self.b, "-R", ready, "-t", "1", "-i", "200", "-e", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            cb.wait_for(lambda: os.path.exists(ready) or sink.poll() is not None, 5, "probe sink ready")
            time.sleep(0.05)
            # Every frame is waited for (or the sink goes idle), so that none
            # meets a closed sink (our switch would count a tx_error).
            src = cb.spawn([self.args.vdeperf, "source", self.a, "-n", "10", "-s", "64", "-t", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out, _ = cb.communicate(sink, 3, "probe sink")
            kv = cb.parse_kv(out, "sink")
            return bool(kv) and int(kv.get("frames", 0)) > 0
        finally:
            cb.kill_session(src)
            cb.kill_session(sink)

    def wait_through(self, t0, end):
        while not self.frame_crosses():
            self.check_alive("during start-up")
            if time.monotonic() >= end:
                raise RuntimeError(f"{self.stack.name} {self.cable}: cable up but no frame crosses after "
                                   f"{self.args.startup_timeout} s; logs: {self.log_text()}")
            self.kick()
            time.sleep(0.2)
        self.startup["through_s"] = time.monotonic() - t0


class CryptTopology(Probing, cb.Topology):
    """switch A == vde_cryptcab server ~~ client == switch B."""

    def __init__(self, stack, cryptcab, key, args, openssl_conf=None, extra=()):
        super().__init__(stack, "cryptcab", args)
        self.cryptcab, self.key, self.openssl_conf = cryptcab, key, openssl_conf
        self.extra = list(extra)
        self.init_probing()

    def start_cab(self, side, argv):
        log = os.path.join(self.d, f"cryptcab-{side}.log")
        env = dict(os.environ)
        if self.openssl_conf:
            env["OPENSSL_CONF"] = self.openssl_conf
        with open(log, "wb") as logf:
            p = cb.spawn(argv, stdin=subprocess.DEVNULL, stdout=logf,
                         stderr=subprocess.STDOUT, env=env, cwd=self.d)
        self.cable_procs.append(p)
        self.logs.append((f"cryptcab {side}", log))
        return p

    def start(self):
        t0 = time.monotonic()
        self.a = self.start_switch("a")
        self.b = self.start_switch("b")
        p1, p2 = cb.free_udp_ports(2)
        srv = self.start_cab("server", [self.cryptcab, "-s", self.a, "-p", str(p1), "-P", self.key]
                             + self.extra)
        # The C client sends its first LOGIN at start, and after that only
        # when local traffic arrives: let the server bind first.
        cb.wait_for(lambda: udp_port_bound(p1) or srv.poll() is not None, 5,
                    f"{self.stack.name} cryptcab server to bind udp {p1}")
        self.check_alive("after starting the server")
        self.start_cab("client", [self.cryptcab, "-s", self.b, "-p", str(p2),
                                  "-c", f"127.0.0.1:{p1}", "-P", self.key] + self.extra)
        self.wait_up(t0)
        return self

    def wait_up(self, t0):
        """Both switches show a vde_cryptcab port and a frame crosses A->B."""
        end = time.monotonic() + self.args.startup_timeout
        next_kick = time.monotonic() + 0.3
        while True:
            self.check_alive("during start-up")
            if all(cryptcab_ports(m) >= 1 for m in self.mgmts):
                break
            if time.monotonic() >= end:
                raise RuntimeError(f"{self.stack.name} cryptcab not up after {self.args.startup_timeout} s "
                                   f"(ports with vde_cryptcab: {[cryptcab_ports(m) for m in self.mgmts]}); "
                                   f"logs: {self.log_text()}")
            if time.monotonic() >= next_kick:
                # Local traffic on B makes the C client log in again (at
                # most once every 5 s); harmless for ours.
                self.kick()
                next_kick = time.monotonic() + 1.0
            time.sleep(0.05)
        self.startup["ports_up_s"] = time.monotonic() - t0
        # The ports are there; now make sure frames really pass.
        self.wait_through(t0, end)


def inproc_cable_ports(mgmt):
    """Ports of a switch held by in-process cables (`module cable`)."""
    try:
        text = cb.mgmt_query(mgmt, "port/print", timeout=1.0)
    except OSError:
        return 0
    return text.count("module cable")


class InprocTopology(Probing, cb.Topology):
    """switch A --listen cryptcab://:P1/psk=KEY ~~udp~~ switch B --cable
    cryptcab://127.0.0.1:P1/psk=KEY: the cable inside both switches."""

    def __init__(self, stack, key, args, cipher=None):
        super().__init__(stack, "inproc", args)
        self.key, self.cipher = key, cipher
        self.init_probing()

    def start(self):
        t0 = time.monotonic()
        (p1,) = cb.free_udp_ports(1)
        opt = f"/psk={self.key}" + (f"/cipher={self.cipher}" if self.cipher else "")
        self.a = self.start_switch("a", extra=["--listen", f"cryptcab://:{p1}{opt}"])
        self.b = self.start_switch("b", extra=["--cable", f"cryptcab://127.0.0.1:{p1}{opt}"])
        end = time.monotonic() + self.args.startup_timeout
        while not all(inproc_cable_ports(m) >= 1 for m in self.mgmts):
            self.check_alive("during start-up")
            if time.monotonic() >= end:
                raise RuntimeError(f"{self.stack.name} in-process cable not up after "
                                   f"{self.args.startup_timeout} s (cable ports: "
                                   f"{[inproc_cable_ports(m) for m in self.mgmts]}); logs: {self.log_text()}")
            time.sleep(0.05)
        self.startup["ports_up_s"] = time.monotonic() - t0
        self.wait_through(t0, end)
        return self


class UdpTopology(Probing, cb.Topology):
    """Our plain udp:// cable, exactly as bench/cablebench.py builds it."""

    def __init__(self, stack, args):
        super().__init__(stack, "udp", args)
        self.init_probing()

    def start(self):
        t0 = time.monotonic()
        super().start()
        self.startup["ports_up_s"] = time.monotonic() - t0
        self.wait_through(t0, time.monotonic() + self.args.startup_timeout)
        return self


# ------------------------------------------------------------ runs

STACKS = ("C-cryptcab", "ours-cryptcab", "ours-inproc", "ours-udp")


def make_topology(name, args):
    if name == "C-cryptcab":
        st = cb.Stack("C", args.c_switch, None, None, ours=False)
        return CryptTopology(st, args.c_cryptcab, args.key, args, openssl_conf=args.openssl_conf)
    if name == "ours-cryptcab":
        st = cb.Stack("ours", args.ours_switch, None, None, ours=True)
        return CryptTopology(st, args.ours_cryptcab, args.key, args,
                             extra=["--cipher", args.ours_cipher] if args.ours_cipher else [])
    if name == "ours-inproc":
        st = cb.Stack("ours", args.ours_switch, None, None, ours=True)
        return InprocTopology(st, args.key, args, cipher=args.ours_cipher)
    if name == "ours-udp":
        st = cb.Stack("ours", args.ours_switch, args.ours_plug, None, ours=True)
        return UdpTopology(st, args)
    raise ValueError(name)


def run_stack(name, sizes, args):
    topo = make_topology(name, args)
    results = []
    try:
        topo.start()
        for size in sizes:
            results.append(cb.run_ping(topo, args.vdeperf, size, args))
        for size in sizes:
            r = cb.run_blast(topo, args.vdeperf, size, args)
            r["sink_bytes_per_frame"] = r["sink_bytes"] / r["received"] if r["received"] else float("nan")
            results.append(r)
        problems = topo.alive_problems()
        topo.stop()
        logs = topo.log_text()
        for r in results:
            r["stack"] = name
            r["startup"] = dict(topo.startup)
        return results, problems, logs
    finally:
        topo.stop()
        topo.remove()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vdeperf", required=True)
    ap.add_argument("--c-switch", default="/usr/bin/vde_switch")
    ap.add_argument("--c-cryptcab", default="/usr/bin/vde_cryptcab")
    ap.add_argument("--openssl-conf", default=OPENSSL_CONF_DEFAULT,
                    help="OPENSSL_CONF for the C vde_cryptcab (Blowfish needs the legacy provider)")
    ap.add_argument("--ours-switch", required=True)
    ap.add_argument("--ours-plug", required=True)
    ap.add_argument("--ours-cryptcab")
    ap.add_argument("--ours-cipher", help="--cipher for our vde_cryptcab and cipher= for the in-process cable "
                         "(default: their own default)")
    ap.add_argument("--key", required=True, help="pre-shared key file (>= 32 bytes; C reads the first 24)")
    ap.add_argument("--stacks", default=",".join(STACKS), help=f"subset of {','.join(STACKS)}")
    ap.add_argument("--frames", type=int, default=100000, help="frames per blast (default 100000)")
    ap.add_argument("--pings", type=int, default=2000, help="round trips per RTT run (default 2000)")
    ap.add_argument("--ping-timeout-ms", type=int, default=50, help="per-frame echo timeout (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--sizes", default="64,1500", help="frame sizes in bytes (default 64,1500)")
    ap.add_argument("--run-timeout", type=float, default=20.0, help="per-process limit in s")
    ap.add_argument("--startup-timeout", type=float, default=15.0, help="cable start-up limit in s")
    ap.add_argument("--json", help="write every run's raw numbers to this file")
    ap.add_argument("--sid-file", help="append started session ids here")
    ap.add_argument("--tmpdir", help="make the per-topology directories here")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    cb.SID_FILE = args.sid_file
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, cb.on_signal)

    stacks = [s for s in args.stacks.split(",") if s]
    for s in stacks:
        if s not in STACKS:
            ap.error(f"unknown stack {s}")
    if "ours-cryptcab" in stacks and not args.ours_cryptcab:
        ap.error("ours-cryptcab needs --ours-cryptcab")
    with open(args.key, "rb") as f:
        key_bytes = f.read()
    if len(key_bytes) < 32:
        ap.error("the key file must hold at least 32 bytes")
    sizes = [int(s) for s in args.sizes.split(",")]

    runs, notes = [], []
    c_keys_before = set(c_key_copies(key_bytes))
    c_keys_removed = 0
    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    print(f"load average at start: {load0}", flush=True)
    print(f"C: switch {args.c_switch}, cryptcab {args.c_cryptcab} (OPENSSL_CONF={args.openssl_conf}); "
          f"ours: switch {args.ours_switch}, plug {args.ours_plug}, cryptcab {args.ours_cryptcab}", flush=True)
    try:
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(stacks)
            order = stacks[k:] + stacks[:k]
            for name in order:
                try:
                    res, problems, logs = run_stack(name, sizes, args)
                except RuntimeError as e:
                    msg = f"round {rnd} {name}: FAILED: {e}"
                    print("    !! " + msg, flush=True)
                    notes.append(msg)
                    continue
                finally:
                    for p in set(c_key_copies(key_bytes)) - c_keys_before:
                        try:
                            os.unlink(p)
                            c_keys_removed += 1
                        except OSError:
                            pass
                for r in res:
                    r["round"] = rnd
                    runs.append(r)
                    print(cb.describe(f"round {rnd} {name:13} {r['size']:4} B", r), flush=True)
                    for kk in ("ping_stderr", "pong_stderr", "source_stderr", "sink_stderr"):
                        if r.get(kk):
                            msg = f"round {rnd} {name} {r['size']} B {kk}: {r[kk][:300]}"
                            print("    " + msg, flush=True)
                            notes.append(msg)
                if res:
                    su = res[0]["startup"]
                    print(f"round {rnd} {name:13} start-up: cable ports up after {su['ports_up_s']:.2f} s, "
                          f"first frame A->B through after {su['through_s']:.2f} s "
                          f"({su['probes']} probes, {su['kicks']} kicks)", flush=True)
                for p in problems:
                    msg = f"round {rnd} {name}: {p}"
                    print("    !! " + msg, flush=True)
                    notes.append(msg)
                for cl in cb.NEEDED_KILL:
                    msg = f"round {rnd} {name}: still running 1 s after SIGTERM, killed: {cl}"
                    print("    !! " + msg, flush=True)
                    notes.append(msg)
                cb.NEEDED_KILL.clear()
                for lname, lines in logs.items():
                    if args.verbose:
                        print(f"    round {rnd} {name} {lname} log: {lines}", flush=True)
    finally:
        cb.cleanup_all()
        for p in set(c_key_copies(key_bytes)) - c_keys_before:
            try:
                os.unlink(p)
                c_keys_removed += 1
            except OSError:
                pass
    total = time.monotonic() - t_start
    with open("/proc/loadavg") as f:
        load1 = " ".join(f.read().split()[:3])

    # ---- summary
    med, fmt_int, ratio = cb.med, cb.fmt_int, cb.ratio
    summary = {}
    for size in sizes:
        for name in stacks:
            f = [r for r in runs if r["kind"] == "fps" and r["size"] == size and r["stack"] == name]
            t = [r for r in runs if r["kind"] == "rtt" and r["size"] == size and r["stack"] == name]
            fps = [r["fps"] for r in f]
            summary[(size, name)] = {
                "fps": med(fps), "fps_min": min(fps) if fps else float("nan"),
                "fps_max": max(fps) if fps else float("nan"),
                "loss": med([r["loss_pct"] for r in f]),
                "cpu": med([r["net_cpu_ns_per_frame"] for r in f]),
                "bpf": med([r["sink_bytes_per_frame"] for r in f]),
                "rcvbuf": sum(r["udp_rcvbuf_errors"] or 0 for r in f),
                "p50": med([r["p50_us"] for r in t]), "p99": med([r["p99_us"] for r in t]),
                "mean": med([r["mean_us"] for r in t]),
                "lost": sum(r["lost"] for r in t), "pings": sum(r["sent"] for r in t),
                "n_fps": len(f), "n_rtt": len(t),
            }
    print()
    print(f"rounds: {args.rounds}, frames per blast: {args.frames}, pings per RTT run: {args.pings} "
          f"(timeout {args.ping_timeout_ms} ms); measuring took {total:.0f} s; "
          f"load average {load0} at start, {load1} at end")
    print()
    print("| size | stack | frames/s delivered (median) | min..max | loss % (median) "
          "| switches+cable CPU ns/delivered frame | bytes/frame at sink | RTT p50 µs | RTT p99 µs "
          "| RTT mean µs | pings lost |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        for name in stacks:
            s = summary[(size, name)]
            print(f"| {size} | {name} | {fmt_int(s['fps'])} | {fmt_int(s['fps_min'])}..{fmt_int(s['fps_max'])} "
                  f"| {s['loss']:.2f} | {fmt_int(s['cpu'])} | {s['bpf']:.0f} | {s['p50']:.1f} | {s['p99']:.1f} "
                  f"| {s['mean']:.1f} | {s['lost']}/{s['pings']} |")
    verdicts = []
    if "ours-cryptcab" in stacks and ("C-cryptcab" in stacks or "ours-udp" in stacks):
        print()
        print("| size | frames/s ours-cryptcab / C-cryptcab (≥ 10x) | frames/s ours-cryptcab / ours-udp (≥ 0.8x) "
              "| RTT p50 ours-cryptcab / C-cryptcab (≤ 0.3x) | RTT p99 ours/C | CPU/frame ours/C "
              "| loss ours vs C vs udp |")
        print("|---:|---:|---:|---:|---:|---:|---|")
        for size in sizes:
            o = summary[(size, "ours-cryptcab")]
            c = summary.get((size, "C-cryptcab"))
            u = summary.get((size, "ours-udp"))
            nan = float("nan")
            fc = ratio(o["fps"], c["fps"]) if c else nan
            fu = ratio(o["fps"], u["fps"]) if u else nan
            rp = ratio(o["p50"], c["p50"]) if c else nan
            r99 = ratio(o["p99"], c["p99"]) if c else nan
            cc = ratio(o["cpu"], c["cpu"]) if c else nan

            def yn(ok, x):
                return "" if x != x else (" met" if ok else " NOT met")
            verdicts.append({"size": size, "fps_ours_over_c": fc, "fps_ours_over_udp": fu,
                             "rtt_p50_ours_over_c": rp, "rtt_p99_ours_over_c": r99, "cpu_ours_over_c": cc})
            loss = f"{o['loss']:.2f}%" + (f" vs {c['loss']:.2f}%" if c else "") + \
                   (f" vs {u['loss']:.2f}%" if u else "")
            fc_v = yn(fc >= 10, fc) if size == 1500 else " (info)"
            def x(v):
                return "n/a" if v != v else f"{v:.2f}x"
            print(f"| {size} | {x(fc)}{fc_v if fc == fc else ''} | {x(fu)}{yn(fu >= 0.8, fu)} "
                  f"| {x(rp)}{yn(rp <= 0.3, rp)} | {x(r99)} | {x(cc)} | {loss} |")
        print()
        print("Targets (issue #5): frames/s >= 10x C's at 1500 bytes (other sizes: for information), "
              ">= 0.8x our plain udp cable's, RTT p50 <= 0.3x C's.")
    inproc = []
    if "ours-inproc" in stacks and "ours-cryptcab" in stacks:
        print()
        print("| size | frames/s ours-inproc | frames/s ours-cryptcab | ours-inproc / ours-cryptcab (≥ 2x) "
              "| RTT p50 inproc / cryptcab | CPU/frame inproc / cryptcab |")
        print("|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            i, o = summary[(size, "ours-inproc")], summary[(size, "ours-cryptcab")]
            rf, rp, rc = ratio(i["fps"], o["fps"]), ratio(i["p50"], o["p50"]), ratio(i["cpu"], o["cpu"])
            inproc.append({"size": size, "fps_inproc_over_cryptcab": rf,
                           "rtt_p50_inproc_over_cryptcab": rp, "cpu_inproc_over_cryptcab": rc})
            v = "" if rf != rf else (" met" if rf >= 2 else " NOT met")
            print(f"| {size} | {fmt_int(i['fps'])} | {fmt_int(o['fps'])} | {rf:.2f}x{v} | {rp:.2f}x | {rc:.2f}x |")
        print()
        print("Target (issue #9): the in-process cable's frames/s >= 2x the vde_cryptcab process's.")
    print()
    print(f"C client key copies (/tmp/vde_*.key holding the benchmark key) removed: {c_keys_removed}")
    if notes:
        print()
        print("notes:")
        for n in notes:
            print("  - " + n)
    if args.json:
        cb.write_json(args, load0, load1, runs, notes, total,
                      summary={f"{k[1]}/{k[0]}": v for k, v in summary.items()},
                      ratios=verdicts, inproc_ratios=inproc)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cb.cleanup_all()
