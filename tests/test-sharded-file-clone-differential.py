"""Clones of a snapshot, served: a seeded random sequence of writes,
trims, zeros, flushes and reads (tests/differential.py) over 4
connections to a clone, against `nbdkit memory` loaded with the
snapshot's data; trims and zeros over the snapshot's chunks must read
as zeros afterwards, never as the snapshot's bytes.  Then 20 clones of
the one snapshot (5 under valgrind), served at once by as many servers
beside the snapshot itself, each written in its own pattern and checked,
and the snapshot unchanged.  SEED=n replays."""

import hashlib
import os
import random
import time

from differential import (compare_image, new_stats, restart_and_compare,
                          run_rounds, start_against_reference)
from shardkit_test import (VALGRIND, Server, check, seed_from_env, tmpdir)
from tool_test import ok

KiB = 1024
MiB = 1024 * KiB
CONNS = 4
seed = seed_from_env()
ROUNDS = 60 if VALGRIND else 300


def fill_base(d, name, size, chunk, rng):
    """Write every other chunk of NAME with random data, some of them
    partly, and return the image."""
    srv = Server(["sharded-file", "dir=" + d, "export=" + name])
    h = srv.connect()
    image = bytearray(size)
    for n in range(0, (size + chunk - 1) // chunk, 2):
        off = n * chunk
        length = min(chunk, size - off)
        if n % 6 == 4:
            length = min(length, chunk // 3)
        data = rng.randbytes(length)
        h.pwrite(data, off)
        image[off:off + length] = data
    h.flush()
    h.shutdown()
    srv.stop()
    return bytes(image)


def differential(chunk_arg, chunk, size):
    d = tmpdir()
    rng = random.Random("%d-%d" % (seed, chunk))
    ok("create", d, "vol", str(size), "--chunk-size=" + chunk_arg)
    image = fill_base(d, "vol", size, chunk, rng)
    ok("snapshot", d, "vol", "snap")
    ok("clone", d, "snap", "c")

    args = ["sharded-file", "dir=" + d, "export=c"]
    sf, mem, sfh, memh = start_against_reference(args, size, CONNS)
    for off in range(0, size, 8 * MiB):
        memh.pwrite(image[off:off + 8 * MiB], off)
    compare_image(sfh, memh, size, chunk)
    stats = new_stats()
    run_rounds(sfh, memh, size, chunk, rng, ROUNDS, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    restart_and_compare(sf, sfh, mem, memh, args, size)

    # The snapshot (and the volume) never saw the clone's writes.
    for name in ("snap", "vol"):
        srv = Server(["sharded-file", "dir=" + d, "export=" + name],
                     readonly=True)
        h = srv.connect()
        got = b"".join(h.pread(min(8 * MiB, size - o), o)
                       for o in range(0, size, 8 * MiB))
        check(got == image, "%s unchanged by the clone's writes" % name)
        h.shutdown()
        srv.stop()
    print("chunk size %d: %s" % (chunk, stats), flush=True)


def many_clones(n_clones=5 if VALGRIND else 20):
    d = tmpdir()
    size, chunk = 6 * MiB + 4321, 256 * KiB
    rng = random.Random("%d-many" % seed)
    ok("create", d, "vol", str(size), "--chunk-size=256K")
    image = fill_base(d, "vol", size, chunk, rng)
    ok("snapshot", d, "vol", "snap")
    names = ["c%d" % i for i in range(n_clones)]
    for name in names:
        ok("clone", d, "snap", name)
    servers = [Server(["sharded-file", "dir=" + d, "export=" + name])
               for name in names]
    # The snapshot itself served alongside, read-only.
    snap_srv = Server(["sharded-file", "dir=" + d, "export=snap"],
                      readonly=True)
    handles = [s.connect() for s in servers]
    wants = []
    for i, h in enumerate(handles):
        want = bytearray(image)
        for _ in range(20):
            off = rng.randrange(size)
            length = min(rng.randrange(1, 3 * chunk), size - off)
            if rng.random() < 0.3:
                h.trim(length, off) if rng.random() < 0.5 else \
                    h.zero(length, off)
                want[off:off + length] = bytes(length)
            else:
                data = bytes([0x30 + i]) * length
                h.pwrite(data, off)
                want[off:off + length] = data
        wants.append(bytes(want))
    for i, h in enumerate(handles):
        h.flush()
        check(h.pread(size, 0) == wants[i], "clone %s reads its own writes"
              % names[i])
    sh = snap_srv.connect()
    check(sh.pread(size, 0) == image, "the snapshot is unchanged")
    sh.shutdown()
    snap_srv.stop()
    for h, s in zip(handles, servers):
        h.shutdown()
        s.stop()
    check(len(set(hashlib.sha256(w).digest() for w in wants)) == n_clones,
          "each clone differs")
    print("%d clones served at once: ok" % n_clones, flush=True)


t0 = time.monotonic()
differential("64K", 64 * KiB, 40 * MiB + 12345)
differential("4M", 4 * MiB, 48 * MiB + 777)
many_clones()
print("ok in %.1fs" % (time.monotonic() - t0))
