"""sharded-file over several dir= (a mirror, issue 15):

- the seeded random differential (tests/differential.py, 4 connections,
  against `nbdkit memory`) through mirrors of 2 and 3 directories, sync
  and async; after a restart the image is the same, and every location
  served ALONE (-r, one dir=) holds the reference image;
- one location failing mid-write (the LD_PRELOAD fault injector makes
  everything in its directory fail with EIO): reads stay right, writes go
  on (write-quorum below all), the location is marked down; when it
  answers again it is caught up (its NAME.missing.L records go) and,
  served alone, holds the reference image;
- kill -9 of nbdkit during an async catch-up, then a restart: everything
  acknowledged is there and every location converges;
- a location from another set, locations in the wrong order, one copy
  served read-write alone: refused with one line.

SEED=n replays."""

import hashlib
import os
import random
import time

import nbd

from differential import (compare_image, flush_and_stop, new_stats,
                          run_rounds, start_against_reference)
from set_test import (DirLocation, kill_during_sync_writes, missing_files,
                      random_writes, wait_caught_up)
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


def check_alone(dirs, want, export="v"):
    """Each location, served alone and read-only, holds the image WANT."""
    for d in dirs:
        srv = Server(["sharded-file", "dir=" + d, "export=" + export],
                     readonly=True)
        h = srv.connect()
        check(digest(h) == want, "location %s alone differs" % d)
        h.shutdown()
        srv.stop()


def set_args(dirs, *extra):
    return (["sharded-file"] + ["dir=" + d for d in dirs] +
            ["export=v", "size=%d" % SIZE, "chunk-size=64K",
             "probe-interval=200ms"] + list(extra))


def differential(nloc, *extra):
    dirs = [tmpdir() for _ in range(nloc)]
    args = set_args(dirs, *extra)
    sf, mem, sfh, memh = start_against_reference(args, SIZE, CONNS)
    rng = random.Random("%d-%d-%s" % (seed, nloc, extra))
    stats = new_stats()
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS, stats, sf.output)
    compare_image(sfh, memh, SIZE, CHUNK)
    want = digest(memh)
    flush_and_stop(sf, sfh)
    # Again after a restart, then every location alone.
    sf = Server(args)
    h = sf.connect()
    check(digest(h) == want, "image differs after a restart")
    h.shutdown()
    wait_caught_up(sf, dirs)
    sf.stop()
    check_alone(dirs, want)
    memh.shutdown()
    mem.stop(check_exit=False)
    print("mirror of %d %s: %s" % (nloc, " ".join(extra), stats), flush=True)


def failing_location(nloc, victim, *extra):
    shim, faults = fault_injector()
    dirs = [tmpdir() for _ in range(nloc)]
    args = set_args(dirs, *extra)
    env = {"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults}
    sf = Server(args, env=env)
    mem = Server(["memory", "size=%d" % SIZE], verbose=False,
                 nbdkit=os.environ.get("SHARDKIT_REAL_NBDKIT", "nbdkit"))
    sfh = [sf.connect() for _ in range(CONNS)]
    memh = mem.connect()
    rng = random.Random("%d-fail-%d" % (seed, nloc))
    stats = new_stats()
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 2, stats, sf.output)
    # The victim's disk dies mid-run.
    with open(os.path.join(faults, "fail-dir"), "w") as f:
        f.write(dirs[victim])
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 2, stats, sf.output)
    compare_image(sfh, memh, SIZE, CHUNK)
    check(wait_for_output(sf, "(%s) is down" % dirs[victim]),
          "location %d never marked down" % victim)
    check(missing_files(dirs), "nothing recorded as missing")
    # It comes back: caught up in the background, reads right meanwhile.
    os.unlink(os.path.join(faults, "fail-dir"))
    run_rounds(sfh, memh, SIZE, CHUNK, rng, ROUNDS // 4, stats, sf.output)
    wait_caught_up(sf, dirs)
    compare_image(sfh, memh, SIZE, CHUNK)
    want = digest(memh)
    flush_and_stop(sf, sfh)
    check_alone([dirs[victim]], want)
    memh.shutdown()
    mem.stop(check_exit=False)
    print("mirror of %d, location %d failed and came back: %s"
          % (nloc, victim, stats), flush=True)


def kill_during_catch_up():
    """Async: location 1 is down while the writes go to location 0 (with
    the fault injector; under valgrind, without), then it comes back and
    nbdkit is killed while the catch-up is copying (fdatasync slowed
    down, so that the records cannot be emptied yet)."""
    dirs = [tmpdir() for _ in range(2)]
    args = set_args(dirs, "mirror-mode=async")
    env = faults = None
    if not VALGRIND:
        shim, faults = fault_injector()
        env = {"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults}
    sf = Server(args, env=env)
    h = sf.connect()
    if faults:
        with open(os.path.join(faults, "fail-dir"), "w") as f:
            f.write(dirs[1])
    rng = random.Random("%d-kill" % seed)
    image = bytearray(SIZE)
    random_writes(h, image, SIZE, 60, rng)
    h.flush()
    if faults:
        check(wait_for_output(sf, "(%s) is down" % dirs[1]),
              "location 1 never marked down")
        with open(os.path.join(faults, "slow-fdatasync"), "w") as f:
            f.write("300")
        os.unlink(os.path.join(faults, "fail-dir"))
        check(wait_for_output(sf, "to location 1"), "no catch-up started")
    sf.kill()
    pending = missing_files(dirs)
    if faults:
        check(pending, "the records went before the catch-up was durable")
        os.unlink(os.path.join(faults, "slow-fdatasync"))
    sf = Server(args)
    h = sf.connect()
    want = hashlib.sha256(image).hexdigest()
    check(digest(h) == want, "acknowledged data lost after kill -9")
    h.shutdown()
    wait_caught_up(sf, dirs)
    sf.stop()
    check_alone(dirs, want)
    print("kill -9 with %d record files pending: converged" % len(pending),
          flush=True)


def refusals():
    a, b, c, d = (tmpdir() for _ in range(4))
    for pair in ((a, b), (c, d)):
        srv = Server(set_args(pair))
        srv.stop()
    out = start_fails(set_args((a, d)))
    check("belongs to another set" in out, "another set accepted:\n" + out)
    out = start_fails(set_args((b, a)))
    check("given as location 0" in out, "wrong order accepted:\n" + out)
    out = start_fails(set_args((a, b, c)))
    check("a set of 2, not 3" in out, "a third dir accepted:\n" + out)
    # One copy alone, read-write: refused when a client opens it (the
    # plugin learns -r only then).
    srv = Server(["sharded-file", "dir=" + a, "export=v"])
    try:
        srv.connect()
        fail("one copy served read-write alone")
    except nbd.Error:
        pass
    check("read-only (-r) alone" in srv.output(), "no reason given")
    srv.stop()
    out = start_fails(set_args((a, b), "write-quorum=3"))
    check("only 2 locations" in out, "write-quorum=3 of 2:\n" + out)
    # A plain volume is not a location of a set.
    e, f = tmpdir(), tmpdir()
    Server(["sharded-file", "dir=" + e, "export=v", "size=1M"]).stop()
    Server(["sharded-file", "dir=" + f, "export=v", "size=1M"]).stop()
    out = start_fails(["sharded-file", "dir=" + e, "dir=" + f, "export=v"])
    check("single-location volume" in out, "plain volumes as a set:\n" + out)
    print("refusals ok", flush=True)


t0 = time.monotonic()
if os.environ.get("MIRROR_ONLY") == "kill":
    kill_during_catch_up()
    raise SystemExit(0)
refusals()
differential(2)
differential(3, "write-quorum=2")
differential(2, "mirror-mode=async")
differential(3, "mirror-mode=async", "durability=all")
if not VALGRIND:
    failing_location(2, 1, "write-quorum=1")
    failing_location(3, 0, "write-quorum=2")
kill_during_catch_up()
locs = [DirLocation(), DirLocation()]
kill_during_sync_writes(set_args([x.path for x in locs]), locs, SIZE,
                        random.Random("%d-kill-writes" % seed))
print("kill -9 during sync writes: flushed data intact, the copies agree",
      flush=True)
print("ok in %.1fs" % (time.monotonic() - t0))
