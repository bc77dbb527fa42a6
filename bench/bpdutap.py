#!/usr/bin/env python3
"""A counting tap for a stream cable: `vde_plug A = bpdutap.py OUT vde_plug B`.

Relays the vde_plug stream (2-byte big-endian length, then the frame)
between its stdin/stdout and the child command, unchanged, in both
directions, and keeps in the file OUT (rewritten atomically) the number of
BPDUs and of topology-change BPDUs (flags bit 0x01, vde/802.1w layout,
tagged or not) seen, as `bpdus TC`. Standard library only.
"""
import os
import subprocess
import sys
import threading

BPDU_DST = b"\x01\x80\xc2\x00\x00\x00"
lock = threading.Lock()
counts = [0, 0]


def is_bpdu(f):
    return f[:6] == BPDU_DST and len(f) >= 22


def is_tc(f):
    off = 4 if f[12:14] == b"\x81\x00" else 0
    return len(f) > 21 + off and bool(f[21 + off] & 1)


def save(out):
    tmp = out + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("%d %d\n" % tuple(counts))
    os.replace(tmp, out)


def pump(src, dst, out):
    """Copies records from src to dst until either side ends."""
    while True:
        head = src.read(2)
        if len(head) < 2:
            break
        n = int.from_bytes(head, "big")
        body = src.read(n)
        if len(body) < n:
            break
        if is_bpdu(body):
            with lock:
                counts[0] += 1
                counts[1] += is_tc(body)
                save(out)
        try:
            dst.write(head + body)
            dst.flush()
        except (BrokenPipeError, OSError):
            break


def main():
    # the C vde_plug's getopt eats a "--" even after "=", ours passes it on
    cmd = sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]
    if len(sys.argv) < 3 or not cmd:
        sys.exit("usage: bpdutap.py OUT [--] COMMAND [ARGS...]")
    out = sys.argv[1]
    with lock:
        save(out)
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stdin = os.fdopen(0, "rb", buffering=0)
    stdout = os.fdopen(1, "wb", buffering=0)
    back = threading.Thread(target=pump, args=(child.stdout, stdout, out), daemon=True)
    back.start()
    pump(stdin, child.stdin, out)
    try:
        child.stdin.close()
    except OSError:
        pass
    child.terminate()
    child.wait()


if __name__ == "__main__":
    main()
