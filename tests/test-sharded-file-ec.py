"""sharded-file with redundancy=ec:K+M (erasure coding over K+M dir=,
issue 15):

- the seeded random differential (tests/differential.py, 4 connections,
  against `nbdkit memory`) through EC 2+1 and 4+2; after a restart the
  image is the same, and with every choice of M locations failing (the
  LD_PRELOAD fault injector) it still reads right from the others;
- one location (4+2: two) failing mid-write: reads stay right, writes go
  on, the location is marked down; when it answers again it is caught up
  (its NAME.missing.L records go), checked by reading everything with M
  OTHER locations failing, so that the caught-up one must serve;
- a fragment corrupted at rest (a byte flipped in a chunk file) is found
  by a read, which serves the right data and rewrites the file;
- kill -9 of nbdkit during EC writes, then a restart: everything flushed
  reads back, and the set converges;
- a location from another set, a mirror's location, the wrong number of
  dir=, one location alone: refused with one line.

SEED=n replays."""

import glob
import itertools
import os
import random
import time

import nbd

from differential import (compare_image, flush_and_stop, new_stats,
                          run_rounds, start_against_reference)
from set_test import missing_files, random_writes, wait_caught_up
from set_test import digest as digest_of
from shardkit_test import (VALGRIND, Server, check, fail, fault_injector,
                           seed_from_env, start_fails, tmpdir, wait_for_output)

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
SIZE = 24 * MiB + 4097
CONNS = 4
ROUNDS = 40 if VALGRIND else 160

seed = seed_from_env()


def digest(h):
    return digest_of(h, SIZE)


def set_args(dirs, k, m, *extra):
    return (["sharded-file"] + ["dir=" + d for d in dirs] +
            ["redundancy=ec:%d+%d" % (k, m), "export=v", "size=%d" % SIZE,
             "chunk-size=64K", "probe-interval=200ms"] + list(extra))


def read_with_failing(dirs, k, m, failing, want, *extra):
    """Serve the set with the locations FAILING (indexes) failing from
    the start of the reads: the image must still be WANT."""
    shim, faults = fault_injector()
    srv = Server(set_args(dirs, k, m, *extra),
                 env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})
    h = srv.connect()               # opens the volume with all answering
    with open(os.path.join(faults, "fail-dir"), "w") as f:
        f.write(" ".join(dirs[i] for i in failing))
    got = digest(h)
    check(got == want, "ec:%d+%d with %s failing: image differs\n%s"
          % (k, m, failing, srv.output()[-3000:]))
    h.shutdown()
    os.unlink(os.path.join(faults, "fail-dir"))
    srv.stop()


def differential(k, m):
    dirs = [tmpdir() for _ in range(k + m)]
    args = set_args(dirs, k, m)
    sf, mem, sfh, memh = start_against_reference(args, SIZE, CONNS)
    rng = random.Random("%d-ec-%d-%d" % (seed, k, m))
    stats = new_stats()
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS, stats, sf.output)
    compare_image(sfh, memh, SIZE, CHUNK)
    want = digest(memh)
    flush_and_stop(sf, sfh)
    sf = Server(args)
    h = sf.connect()
    check(digest(h) == want, "image differs after a restart")
    h.shutdown()
    sf.stop()
    memh.shutdown()
    mem.stop(check_exit=False)
    if not VALGRIND:
        for failing in itertools.combinations(range(k + m), m):
            read_with_failing(dirs, k, m, failing, want)
            # The failed repairs left records: let them be caught up.
            sf = Server(args)
            sf.connect().shutdown()
            wait_caught_up(sf, dirs)
            sf.stop()
    print("ec:%d+%d differential: %s" % (k, m, stats), flush=True)
    return dirs, want


def failing_locations(k, m, victims):
    shim, faults = fault_injector()
    dirs = [tmpdir() for _ in range(k + m)]
    # The default, K+1 fragments, would refuse writes with M down.
    args = set_args(dirs, k, m, "ec-min-write=%d" % (k + m - len(victims)))
    env = {"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults}
    sf = Server(args, env=env)
    mem = Server(["memory", "size=%d" % SIZE], verbose=False,
                 nbdkit=os.environ.get("SHARDKIT_REAL_NBDKIT", "nbdkit"))
    sfh = [sf.connect() for _ in range(CONNS)]
    memh = mem.connect()
    rng = random.Random("%d-ec-fail-%d-%d" % (seed, k, m))
    stats = new_stats()
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 2, stats, sf.output)
    with open(os.path.join(faults, "fail-dir"), "w") as f:
        f.write(" ".join(dirs[v] for v in victims))
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 2, stats, sf.output)
    compare_image(sfh, memh, SIZE, CHUNK)
    for v in victims:
        check(wait_for_output(sf, "(%s) is down" % dirs[v]),
              "location %d never marked down" % v)
    check(missing_files(dirs), "nothing recorded as missing")
    os.unlink(os.path.join(faults, "fail-dir"))
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 4, stats, sf.output)
    wait_caught_up(sf, dirs)
    compare_image(sfh, memh, SIZE, CHUNK)
    want = digest(memh)
    flush_and_stop(sf, sfh)
    memh.shutdown()
    mem.stop(check_exit=False)
    # The victims must serve: M others fail.
    others = [i for i in range(k + m) if i not in victims][:m]
    read_with_failing(dirs, k, m, others, want, "ec-min-write=%d" % k)
    print("ec:%d+%d, locations %s failed and came back: %s"
          % (k, m, victims, stats), flush=True)


def corrupted_at_rest(dirs, k, m, want):
    """Flip a byte in a fragment file: a read serves the right data and
    rewrites the file."""
    files = sorted(glob.glob(os.path.join(dirs[0], "v.*.chunk")))
    check(files, "no chunk files in %s" % dirs[0])
    path = files[len(files) // 2]
    with open(path, "rb") as f:
        good = f.read()
    bad = bytearray(good)
    bad[len(bad) // 3] ^= 0x5a
    with open(path, "wb") as f:
        f.write(bad)
    sf = Server(set_args(dirs, k, m))
    h = sf.connect()
    check(digest(h) == want, "a corrupted fragment changed the image")
    check(wait_for_output(sf, "fails its digest"), "no repair logged")
    h.shutdown()
    sf.stop()
    with open(path, "rb") as f:
        check(f.read() == good, "the corrupted fragment was not rewritten")
    print("ec:%d+%d: corrupted fragment repaired by a read" % (k, m),
          flush=True)


def kill_during_writes(k, m):
    dirs = [tmpdir() for _ in range(k + m)]
    args = set_args(dirs, k, m)
    sf = Server(args)
    h = sf.connect()
    rng = random.Random("%d-ec-kill" % seed)
    image = bytearray(SIZE)
    half = SIZE // 2
    random_writes(h, image, half, 60, rng)
    h.flush()
    # Writes to the upper half in flight when nbdkit is killed.
    buf = nbd.Buffer(256 * KiB)
    for i in range(40):
        h.aio_pwrite(buf, half + (i * 256 * KiB) % (SIZE - half - 256 * KiB))
    sf.kill()
    sf = Server(args)
    h = sf.connect()
    got = h.pread(half, 0)
    check(got == bytes(image[:half]), "flushed data lost after kill -9")
    h.pread(SIZE - half, half)      # unflushed: either, never EIO (2+1)
    h.shutdown()
    wait_caught_up(sf, dirs)
    sf.stop()
    print("ec:%d+%d: kill -9 during writes: flushed data intact" % (k, m),
          flush=True)


def refusals():
    a, b, c, d, e, f = (tmpdir() for _ in range(6))
    Server(set_args((a, b, c), 2, 1)).stop()
    Server(set_args((d, e, f), 2, 1)).stop()
    out = start_fails(set_args((a, b, f), 2, 1))
    check("belongs to another set" in out, "another set accepted:\n" + out)
    out = start_fails(set_args((b, a, c), 2, 1))
    check("given as location 0" in out, "wrong order accepted:\n" + out)
    out = start_fails(set_args((a, b), 2, 1))
    check("needs 3 dir=" in out, "2 dir= for 2+1:\n" + out)
    out = start_fails(set_args((a, b, c, d), 3, 1))
    check("ec:2+1" in out, "a 2+1 set as 3+1:\n" + out)
    out = start_fails(["sharded-file", "dir=" + a, "dir=" + b, "dir=" + c,
                       "export=v"])
    check("erasure-coded set" in out, "EC set served as a mirror:\n" + out)
    out = start_fails(set_args((a, b, c), 2, 1, "ec-min-write=4"))
    check("ec-min-write=4" in out, "ec-min-write above K+M:\n" + out)
    # A mirror's locations are not an EC set.
    g, i, j = tmpdir(), tmpdir(), tmpdir()
    Server(["sharded-file", "dir=" + g, "dir=" + i, "dir=" + j, "export=v",
            "size=1M"]).stop()
    out = start_fails(["sharded-file", "dir=" + g, "dir=" + i, "dir=" + j,
                       "redundancy=ec:2+1", "export=v"])
    check("location of a mirror" in out, "a mirror as EC:\n" + out)
    # One location alone, even read-only, holds fragments, not the disk.
    srv = Server(["sharded-file", "dir=" + a, "export=v"], readonly=True)
    try:
        srv.connect()
        fail("a fragment store served as a disk")
    except nbd.Error:
        pass
    check("it holds fragments" in srv.output(), "no reason given")
    srv.stop()
    with open(os.path.join(a, "v.meta")) as fh:
        meta = fh.read()
    check("version=3\n" in meta and "redundancy=ec:2+1\n" in meta,
          "EC metadata:\n" + meta)
    print("refusals ok", flush=True)


t0 = time.monotonic()
refusals()
dirs, want = differential(2, 1)
corrupted_at_rest(dirs, 2, 1, want)
dirs, want = differential(4, 2)
corrupted_at_rest(dirs, 4, 2, want)
if not VALGRIND:
    failing_locations(2, 1, [1])
    failing_locations(4, 2, [0, 3])
kill_during_writes(2, 1)
print("ok in %.1fs" % (time.monotonic() - t0))
