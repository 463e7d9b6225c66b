"""s3-object serving an erasure-coded set over buckets of Ceph's gateway
(redundancy=ec:K+M, one bucket= per fragment; sharded-file's EC test,
test-sharded-file-ec.py, on buckets):

- the seeded random differential (tests/differential.py, 4 connections,
  against `nbdkit memory`) through EC 2+1 and 4+2; after a restart the
  image is the same, and with M locations failing (each bucket behind
  its own tests/s3_fault_proxy.py answering 500 to everything; every
  choice for 2+1, three covering every location for 4+2) it still reads
  right from the others;
- one location (4+2: two) failing mid-write (a few fragment PUTs
  stored but unanswered, then 500 on everything): reads stay right,
  writes go on (ec-min-write= below K+M), the location is marked down
  and what it misses recorded in the others (PREFIX/NAME.missing.L);
  when it answers again it is caught up (the records go), checked by
  reading everything with M OTHER locations failing, so that the
  caught-up ones must serve;
- kill -9 of nbdkit during EC writes, then a restart: everything
  flushed reads back, the set is caught up, and it converges: with
  each location failing in turn the image is the same;
- a fragment corrupted at rest (s3rver, whose objects are plain files:
  a byte changed, size, ETag and checksums kept) is found by a read,
  which serves the right data and rewrites the object;
- a bucket of another set, the wrong order, the wrong number of
  locations, a 2+1 set as 3+1, an EC set as a mirror, a mirror's
  buckets as EC, ec-min-write above K+M, one location alone (even -r):
  refused; the metadata in each bucket is version 3 with its
  redundancy.

SEED=n replays."""

import itertools
import os
import random
import time

import nbd

from s3_server import CephRGW, S3rver, need_s3_object_plugin
from set_test import (BucketLocation, differential_run, error_lines,
                      failing_run, refused, refused_naming, set_args,
                      wait_caught_up, wait_for_pattern, writes_in_flight)
from set_test import digest as digest_of
from shardkit_test import (VALGRIND, Server, check, fail, seed_from_env,
                           start_fails)

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
# Smaller than the mirror's: a write to an EC set is K+M PUTs per chunk,
# and every partial one a read of K fragments first.
SIZE = 4 * MiB + 4097
CONNS = 4
ROUNDS = 12 if VALGRIND else 40
COMMON = ("export=v", "size=%d" % SIZE, "chunk-size=64K",
          "probe-interval=200ms", "http-retries=1")

need_s3_object_plugin()
seed = seed_from_env()
t0 = time.monotonic()
s3 = CephRGW()


def digest(h):
    return digest_of(h, SIZE)


def ec_args(locs, k, m, *extra, **kw):
    return set_args(locs, "redundancy=ec:%d+%d" % (k, m),
                    *(COMMON + extra), **kw)


def buckets(n, s3=s3):
    """N new bucket locations, each behind its own fault proxy (used
    only where set_args() is told proxied=True)."""
    return [BucketLocation(s3, proxy=True) for _ in range(n)]


def read_with_failing(locs, k, m, failing, want, *extra, what=""):
    """Serve the set with the locations FAILING (indexes) failing once it
    is open: the image must still be WANT.  Then they answer again and
    whatever the reads recorded is caught up."""
    srv = Server(ec_args(locs, k, m, *extra))
    h = srv.connect()               # opens the volume with all answering
    for i in failing:
        locs[i].fail(cut=0)
    try:
        got = digest(h)
    except nbd.Error as e:
        fail("%sec:%d+%d with %s failing: %s\n%s"
             % (what, k, m, failing, e, srv.output()[-5000:]))
    check(got == want, "%sec:%d+%d with %s failing: image differs\n%s"
          % (what, k, m, failing, srv.output()[-3000:]))
    for i in failing:
        locs[i].recover()
    h.shutdown()
    wait_caught_up(srv, locs)
    srv.stop()


def differential(k, m, failing_sets):
    locs = buckets(k + m)
    args = ec_args(locs, k, m, proxied=False)
    rng = random.Random("%d-ec-%d-%d" % (seed, k, m))
    want, stats = differential_run(args, locs, SIZE, CHUNK, CONNS, ROUNDS,
                                   rng)
    if not VALGRIND:
        for failing in failing_sets:
            read_with_failing(locs, k, m, failing, want)
    print("[%5.1fs] " % (time.monotonic() - t0) + "ec:%d+%d differential: %s; read with %s failing"
          % (k, m, stats, failing_sets), flush=True)


def failing_locations(k, m, victims):
    locs = buckets(k + m)
    # The default, K+1 fragments, would refuse writes with M down.
    args = ec_args(locs, k, m, "ec-min-write=%d" % (k + m - len(victims)))
    rng = random.Random("%d-ec-fail-%d-%d" % (seed, k, m))
    want, stats = failing_run(args, locs, victims, SIZE, CHUNK, CONNS,
                              ROUNDS, rng)
    # The victims must serve: M others fail.
    others = [i for i in range(k + m) if i not in victims][:m]
    read_with_failing(locs, k, m, others, want, "ec-min-write=%d" % k)
    print("[%5.1fs] " % (time.monotonic() - t0) + "ec:%d+%d, locations %s failed and came back: %s"
          % (k, m, victims, stats), flush=True)


def kill_during_writes(k, m):
    locs = buckets(k + m)
    args = ec_args(locs, k, m)
    sf = Server(args)
    h = sf.connect()
    rng = random.Random("%d-ec-kill" % seed)
    # Writes to the upper half in flight when nbdkit is killed.
    image = writes_in_flight(h, SIZE, rng)
    half = SIZE // 2
    deadline = time.monotonic() + 10
    while not locs[0].proxy.find(method="PUT", key=r"\.chunk$") or \
            h.aio_in_flight() > 20:
        check(time.monotonic() < deadline, "no write reached the buckets")
        h.poll(10)
    sf.kill()
    for x in locs:
        x.drop_leases()
    sf = Server(args)
    h = sf.connect()
    got = h.pread(half, 0)
    check(got == bytes(image[:half]), "flushed data lost after kill -9")
    h.pread(SIZE - half, half)      # unflushed: either, never EIO (2+1)
    want = digest(h)
    h.shutdown()
    wait_caught_up(sf, locs)
    sf.stop()
    # Converged: any K locations give the same image.
    for i in range(k + m):
        read_with_failing(locs, k, m, [i], want,
                          what="kill -9 during writes, restarted and "
                          "caught up (the set has not converged: a chunk "
                          "torn by the kill is not repaired): ")
    print("[%5.1fs] " % (time.monotonic() - t0) + "ec:%d+%d: kill -9 during writes: flushed data intact, converged"
          % (k, m), flush=True)


def corrupted_at_rest(k, m):
    """s3rver: a byte of a fragment object changed at rest; a read
    serves the right data and rewrites the object."""
    rv = S3rver()
    locs = [BucketLocation(rv) for _ in range(k + m)]
    args = set_args(locs, "redundancy=ec:%d+%d" % (k, m), "export=v",
                    "size=1M", "chunk-size=64K", "probe-interval=200ms",
                    "http-retries=1")
    rng = random.Random("%d-ec-rot" % seed)
    image = rng.randbytes(MiB)
    sf = Server(args)
    h = sf.connect()
    h.pwrite(image, 0)
    h.flush()
    h.shutdown()
    sf.stop()
    key = locs[0].key_prefix + "v.5.chunk"
    path = rv.object_path(key, bucket=locs[0].bucket)
    with open(path, "rb") as f:
        good = f.read()
    rv.corrupt(key, offset=len(good) // 3, bucket=locs[0].bucket)
    sf = Server(args)
    h = sf.connect()
    check(h.pread(MiB, 0) == image, "a corrupted fragment changed the image")
    check(wait_for_pattern(sf, r"fragment 0 on location 0 .*rebuilding"),
          "no repair logged\n" + sf.output()[-3000:])
    wait_caught_up(sf, locs)
    h.shutdown()
    sf.stop()
    with open(path, "rb") as f:
        check(f.read() == good, "the corrupted fragment was not rewritten")
    sf = Server(args)
    h = sf.connect()
    check(h.pread(MiB, 0) == image, "the image differs after the repair")
    h.shutdown()
    sf.stop()
    rv.stop()
    print("[%5.1fs] " % (time.monotonic() - t0) + "ec:%d+%d: corrupted fragment repaired by a read" % (k, m),
          flush=True)


def create(args):
    srv = Server(args)
    srv.connect().shutdown()
    srv.stop()


def refusals():
    a, b, c, d, e, f = (BucketLocation(s3) for _ in range(6))
    create(ec_args((a, b, c), 2, 1))
    create(ec_args((d, e, f), 2, 1))
    out = start_fails(ec_args((a, b, f), 2, 1))
    refused_naming(out, f.bucket, "belongs to another set")
    out = start_fails(ec_args((b, a, c), 2, 1))
    refused_naming(out, b.bucket, "given as location 0")
    out = start_fails(ec_args((a, b), 2, 1))
    check(error_lines(out, "needs 3"), "2 buckets for 2+1:\n" + out)
    out = start_fails(ec_args((a, b, c, d), 3, 1))
    check(any(x.bucket in l for l in error_lines(out, "ec:2+1")
              for x in (a, b, c, d)), "a 2+1 set as 3+1:\n" + out)
    out = start_fails(set_args((a, b, c), *COMMON))
    refused_naming(out, a.bucket, "erasure-coded set")
    out = start_fails(ec_args((a, b, c), 2, 1, "ec-min-write=4"))
    check("ec-min-write=4" in out, "ec-min-write above K+M:\n" + out)
    out = start_fails(ec_args((a, b, c), 2, 1, "write-quorum=2"))
    check("write-quorum=" in out, "write-quorum= with EC:\n" + out)
    # A mirror's buckets are not an EC set.
    g, i, j = (BucketLocation(s3) for _ in range(3))
    create(set_args((g, i, j), *COMMON))
    out = start_fails(ec_args((g, i, j), 2, 1))
    refused_naming(out, g.bucket, "location of a mirror")
    # One location alone, even read-only, holds fragments, not the disk.
    for ro in (True, False):
        out = refused(a.alone(), readonly=ro)
        check(error_lines(out, "fragments"),
              "a fragment store served as a disk (-r: %s):\n%s" % (ro, out))
    for n, x in enumerate((a, b, c)):
        meta = x.get("v.meta").decode()
        check("version=3\n" in meta and "redundancy=ec:2+1\n" in meta and
              "set-index=%d\n" % n in meta, "EC metadata:\n" + meta)
    print("[%5.1fs] " % (time.monotonic() - t0) + "refusals ok", flush=True)


# ONLY=name,... runs some of them (to replay one with SEED=n).
only = os.environ.get("ONLY")
for name, fn in (
        ("refusals", refusals),
        ("diff21", lambda: differential(
            2, 1, list(itertools.combinations(range(3), 1)))),
        ("diff42", lambda: differential(4, 2, [(0, 1), (2, 5), (3, 4)])),
        ("fail21", lambda: VALGRIND or failing_locations(2, 1, [1])),
        ("fail42", lambda: VALGRIND or failing_locations(4, 2, [0, 3])),
        ("kill", lambda: kill_during_writes(2, 1)),
        ("rot", lambda: corrupted_at_rest(2, 1))):
    if not only or name in only.split(","):
        fn()
print("ok in %.1fs" % (time.monotonic() - t0))
