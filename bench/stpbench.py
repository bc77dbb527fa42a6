#!/usr/bin/env python3
"""Spanning-tree benchmark: a ring of three switches with FSTP (-F), ours
against the C vde_switch in one run.

For each stack (C: Debian vde_switch + vde_plug + wirefilter; ours: our
vde_switch + vde_plug + wirefilter) it measures:
  * convergence: time from the last cable plugged until a broadcast from
    switch 0 reaches switches 1 and 2 exactly once;
  * failover after a cable process is killed;
  * failover after a cable goes silent (wirefilter `loss 100`);
  * BPDUs with the TC flag seen by a host port during each failover, and
    duplicate broadcast copies (a storm) seen meanwhile.

Only unix sockets. Every wait is bounded (--limit seconds per phase).

    bench/stpbench.py --ours target/release [--rounds 3] [--limit 30]
"""
import argparse, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

MAGIC = 0xfeedface
BCAST = b"\xff" * 6


class Client:
    """A raw control-protocol client of a switch (what libvdeplug does)."""

    def __init__(self, ctl_dir, port=0, descr="stpbench"):
        self.path = os.path.join(ctl_dir, ".stpbench-%d-%d" % (os.getpid(), id(self)))
        self.data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.data.bind(self.path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.connect(os.path.join(ctl_dir, "ctl"))
        req = struct.pack("<III", MAGIC, 3, port << 8) + struct.pack("<H", 1)
        req += self.path.encode().ljust(108, b"\0") + descr.encode()
        self.ctl.send(req)
        self.ctl.settimeout(5)
        reply = b""
        while len(reply) < 110:
            chunk = self.ctl.recv(110 - len(reply))
            if not chunk:
                raise RuntimeError("switch refused the client")
            reply += chunk
        self.data.connect(reply[2:].split(b"\0")[0].decode())
        os.unlink(self.path)
        self.data.setblocking(False)

    def send(self, f):
        self.data.send(f)

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.data.recv(2000))
            except BlockingIOError:
                return out


def frame(src_last, seq):
    return BCAST + bytes([2, 0, 0, 0, 0, src_last]) + b"\x88\xb5" + struct.pack(">I", seq) + b"\0" * 42


TAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpdutap.py")


def is_tc_bpdu(f):
    if f[:6] != b"\x01\x80\xc2\x00\x00\x00" or len(f) < 51:
        return False
    off = 4 if f[12:14] == b"\x81\x00" else 0
    return bool(f[21 + off] & 1)


class Ring:
    def __init__(self, stack, bins, tmp):
        self.procs, self.tmp = [], tmp
        self.ctl = [os.path.join(tmp, "s%d" % i) for i in range(3)]
        for i, ctl in enumerate(self.ctl):
            args = [bins["switch"], "-s", ctl, "-F", "--macaddr", "00:ff:00:00:00:%02x" % (i + 1)]
            if stack == "C":
                self.spawn(args, stdin=subprocess.PIPE)
            else:
                self.spawn(args + ["--nostdin"])
        deadline = time.time() + 10
        while not all(os.path.exists(os.path.join(c, "ctl")) for c in self.ctl):
            if time.time() > deadline:
                raise RuntimeError("switches did not start")
            time.sleep(0.02)
        self.clients = [Client(c) for c in self.ctl]
        self.bins = bins
        # the two vde_plug cables go through a counting tap (BPDUs, TCs)
        self.taps = [os.path.join(tmp, "tap0"), os.path.join(tmp, "tap1")]
        self.acc = [0, 0]
        self.cables = [self.plug_cable(0), self.plug_cable(1)]
        self.wf_mgmt = os.path.join(tmp, "wf.mgmt")
        self.cables.append(
            self.spawn([bins["wirefilter"], "-v", "%s:%s" % (self.ctl[2], self.ctl[0]), "-M", self.wf_mgmt],
                       stdin=subprocess.PIPE)
        )
        self.seq = 0

    def plug_cable(self, i):
        """Cable i joins switch i and i+1: vde_plug A = bpdutap.py = vde_plug B."""
        return self.spawn([self.bins["plug"], self.ctl[i], "=", sys.executable, TAP, self.taps[i],
                           self.bins["plug"], self.ctl[i + 1]])

    def kill_cable(self, i):
        """Kills cable i (the whole process group: plugs and tap)."""
        try:
            os.killpg(self.cables[i].pid, 9)
        except ProcessLookupError:
            pass
        self.cables[i].wait()

    def replug(self, i):
        """A new cable i; what the old tap counted is kept."""
        old = self.read_tap(i)
        self.acc = [self.acc[0] + old[0], self.acc[1] + old[1]]
        self.cables[i] = self.plug_cable(i)

    def read_tap(self, i):
        try:
            with open(self.taps[i]) as fh:
                b, t = (int(x) for x in fh.read().split())
            return [b, t]
        except (OSError, ValueError):
            return [0, 0]

    def tap_counts(self):
        """(BPDUs, TC BPDUs) seen so far on the tapped cables."""
        t0, t1 = self.read_tap(0), self.read_tap(1)
        return (self.acc[0] + t0[0] + t1[0], self.acc[1] + t0[1] + t1[1])

    def spawn(self, args, stdin=subprocess.DEVNULL):
        p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def probe(self, wait=0.1):
        """One broadcast from switch 0; returns (copies at 1, copies at 2, TC BPDUs seen)."""
        self.seq += 1
        f = frame(1, self.seq)
        for c in self.clients:
            c.drain()
        self.clients[0].send(f)
        time.sleep(wait)
        copies, tcs = [], 0
        for c in self.clients[1:]:
            got = c.drain()
            copies.append(sum(1 for g in got if g == f))
            tcs += sum(1 for g in got if is_tc_bpdu(g))
        tcs += sum(1 for g in self.clients[0].drain() if is_tc_bpdu(g))
        return copies, tcs

    def until_exactly_once(self, limit):
        t0, tcs, dups = time.time(), 0, 0
        while time.time() - t0 < limit:
            copies, tc = self.probe()
            tcs += tc
            dups += sum(max(0, c - 1) for c in copies)
            if copies == [1, 1]:
                return time.time() - t0, tcs, dups
        return None, tcs, dups

    def silence(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.wf_mgmt)
        s.settimeout(2)
        time.sleep(0.2)
        s.recv(4096)
        s.send(b"loss 100\n")
        time.sleep(0.2)
        s.recv(4096)
        s.close()

    def close(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()


def measure(stack, bins, limit, settle=2.0):
    """Times of the three phases, with the TC BPDUs that crossed the two
    tapped cables from the event until `settle` s after convergence."""
    tmp = tempfile.mkdtemp(prefix="vde-stp.")
    ring = None
    try:
        ring = Ring(stack, bins, tmp)

        def phase(event):
            before = ring.tap_counts()
            event()
            t, tcs, dups = ring.until_exactly_once(limit)
            time.sleep(settle)
            after = ring.tap_counts()
            return t, tcs, dups, after[1] - before[1], after[0] - before[0]

        conv = phase(lambda: None)
        dead = phase(lambda: ring.kill_cable(0))
        # plug it back, let it settle, then silence the wirefilter cable
        ring.replug(0)
        ring.until_exactly_once(limit)
        time.sleep(settle)
        silent = phase(ring.silence)
        return {"converge": conv, "dead": dead, "silent": silent}
    finally:
        if ring:
            ring.close()
        shutil.rmtree(tmp, ignore_errors=True)


def fmt(x):
    return "never (> limit)" if x is None else "%.2f s" % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", default="target/release")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=float, default=30)
    a = ap.parse_args()
    stacks = {
        "C": {"switch": "/usr/bin/vde_switch", "plug": "/usr/bin/vde_plug", "wirefilter": "/usr/bin/wirefilter"},
        "ours": {k: os.path.join(a.ours, v) for k, v in
                 {"switch": "vde_switch", "plug": "vde_plug", "wirefilter": "wirefilter"}.items()},
    }
    res = {"C": [], "ours": []}
    for r in range(a.rounds):
        for stack in (["C", "ours"] if r % 2 == 0 else ["ours", "C"]):
            m = measure(stack, stacks[stack], a.limit)
            res[stack].append(m)
            print("round %d %-4s: " % (r + 1, stack) + "; ".join(
                "%s %s (TC on the wire %d, BPDUs %d; TC at hosts %d, dup %d)"
                % (ph, fmt(m[ph][0]), m[ph][3], m[ph][4], m[ph][1], m[ph][2])
                for ph in ("converge", "dead", "silent")), flush=True)
    print()
    print("| phase | stack | time (median) | TC BPDUs on the tapped cables (median) | TC at hosts | duplicate copies (median) |")
    print("|---|---|---:|---:|---:|---:|")
    for phase in ["converge", "dead", "silent"]:
        for stack in ["C", "ours"]:
            ts = [m[phase][0] for m in res[stack]]
            t = "never" if any(x is None for x in ts) else "%.2f s" % statistics.median(ts)
            wire = statistics.median(m[phase][3] for m in res[stack])
            tc = statistics.median(m[phase][1] for m in res[stack])
            dup = statistics.median(m[phase][2] for m in res[stack])
            print("| %s | %s | %s | %g | %g | %g |" % (phase, stack, t, wire, tc, dup))

if __name__ == "__main__":
    sys.exit(main())
