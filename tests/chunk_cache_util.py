"""Helpers shared by the chunk-cache tests: a reference model of the disk,
random operations on several connections, and reading what really is in
a sharded-file volume (bypassing the cache)."""

import os
import re
import time

import nbd

from shardkit_test import Server, check

KiB = 1024
MiB = 1024 * 1024


class Model:
    """What the disk must hold: every operation applied in order."""

    def __init__(self, size):
        self.data = bytearray(size)

    def write(self, off, buf):
        self.data[off:off + len(buf)] = buf

    def zero(self, off, n):
        self.data[off:off + n] = bytes(n)


def random_ops(rng, handles, model, nops, size, align=512, maxlen=3 * MiB,
               flush_every=25):
    """Random reads, writes, zeros, trims, flushes and FUA writes spread
    round-robin over HANDLES; every read is checked against MODEL."""
    for i in range(nops):
        h = handles[i % len(handles)]
        n = rng.randrange(1, maxlen // align + 1) * align
        off = rng.randrange(0, (size - n) // align + 1) * align
        op = rng.random()
        if op < 0.40:
            buf = rng.randbytes(n)
            flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
            h.pwrite(buf, off, flags)
            model.write(off, buf)
        elif op < 0.75:
            got = h.pread(n, off)
            if got != bytes(model.data[off:off + n]):
                check(False, "op %d: read %d@%d differs from the model"
                      % (i, n, off))
        elif op < 0.85:
            h.zero(n, off, rng.choice([0, nbd.CMD_FLAG_NO_HOLE]))
            model.zero(off, n)
        elif op < 0.93:
            h.trim(n, off)
            model.zero(off, n)
        else:
            h.flush()
        if flush_every and i % flush_every == flush_every - 1:
            handles[rng.randrange(len(handles))].flush()


def read_all(h, size, step=8 * MiB):
    out = bytearray()
    for off in range(0, size, step):
        out += h.pread(min(step, size - off), off)
    return bytes(out)


def sharded_file_contents(d, export, size):
    """The volume as the plugin alone serves it (no cache)."""
    srv = Server(["sharded-file", "dir=" + d, "export=" + export])
    h = srv.connect()
    data = read_all(h, size)
    h.shutdown()
    srv.stop()
    return data


def first_difference(a, b):
    for i in range(0, min(len(a), len(b)), 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, i + 4096):
                if a[j] != b[j]:
                    return j
    return None if len(a) == len(b) else min(len(a), len(b))


def read_stats(path):
    """chunk-cache stats-file= as a dict of ints."""
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                out[k] = int(v) if v.isdigit() else v
    return out


def fresh_stats(path, timeout=20):
    """chunk-cache stats-file= as written after this call (the file is
    rewritten every stats-interval): waits for the next write."""
    t0 = time.time()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.stat(path).st_mtime > t0:
                return read_stats(path)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    check(False, "%s was not rewritten in %ds" % (path, timeout))


def nbdkit_stats_reads(path):
    """Number of read requests in nbdkit's stats filter file (0 if none)."""
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        m = re.search(r"^read: (\d+) ops", f.read(), re.M)
    return int(m.group(1)) if m else 0
