"""s3-object serving a mirror over several buckets of Ceph's gateway
(redundancy=mirror, each bucket= a location; sharded-file's mirror test,
test-sharded-file-mirror.py, on buckets):

- the seeded random differential (tests/differential.py, 4 connections,
  against `nbdkit memory`) through mirrors of 2 and 3 buckets, sync and
  async, and a mixed set of a local dir= and a bucket; after a restart
  the image is the same, and every location served ALONE (-r: a bucket
  by s3-object, the directory by sharded-file) holds the reference
  image;
- one bucket failing mid-write (its own tests/s3_fault_proxy.py in
  front of it: a few chunk PUTs stored but unanswered, then 500 on
  everything): reads stay right, writes go on (write-quorum below all),
  it is marked down and what it misses is recorded in the others
  (PREFIX/NAME.missing.L objects, NAME.missing.L files in a dir=); when
  it answers again it is caught up (the records go) and, served alone,
  holds the reference image;
- kill -9 of nbdkit during an async catch-up (the returning bucket's
  chunk PUTs slowed down by its proxy, so the records cannot be emptied
  yet), then a restart: everything acknowledged is there and every
  location converges;
- a copy corrupted at rest (s3rver, whose objects are plain files: a
  byte changed, size, ETag and checksums kept) is found by a read,
  served from the other copy, and rewritten by the catch-up;
- a bucket of another set, the wrong order, a third location, a
  mirror's bucket as EC, one bucket read-write alone, more than 8
  locations: refused, naming the location.

Per-bucket parameters are exercised on the way: endpoint=, region=,
url-style=, keys and prefix= given once before the first bucket= as
defaults; a proxied bucket's endpoint= and some buckets' prefix= after
their bucket=, for that bucket only.

SEED=n replays."""

import hashlib
import os
import random
import time


from s3_server import CephRGW, S3rver, need_s3_object_plugin
from set_test import (BucketLocation, DirLocation, check_alone,
                      kill_during_sync_writes, wait_for_pattern,
                      differential_run, error_lines, failing_run,
                      missing_files, refused, refused_naming, set_args,
                      random_writes, wait_caught_up, wait_down)
from set_test import digest as digest_of
from shardkit_test import (VALGRIND, Server, check, seed_from_env,
                           start_fails, tmpdir)

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
SIZE = 6 * MiB + 4097
CONNS = 4
ROUNDS = 16 if VALGRIND else 60
# Quick failures of a bucket that is down (the default, 5 retries with
# backoff, takes seconds per request); a probe every 200 ms.
COMMON = ("export=v", "size=%d" % SIZE, "chunk-size=64K",
          "probe-interval=200ms", "http-retries=1")

need_s3_object_plugin()
seed = seed_from_env()
t0 = time.monotonic()
s3 = CephRGW()


def digest(h):
    return digest_of(h, SIZE)


def args_of(locs, *extra, **kw):
    return set_args(locs, *(COMMON + extra), **kw)


def buckets(n, proxied=(), prefixes=None):
    """N new bucket locations; those in PROXIED behind their own proxy,
    location i with prefix PREFIXES[i] when given (else the default)."""
    return [BucketLocation(s3, proxy=i in proxied,
                           prefix=prefixes[i] if prefixes else None)
            for i in range(n)]


def differential(locs, *extra):
    args = args_of(locs, *extra)
    rng = random.Random("%d-%d-%s-%s" % (seed, len(locs), extra,
                                         [type(x).__name__ for x in locs]))
    want, stats = differential_run(args, locs, SIZE, CHUNK, CONNS, ROUNDS,
                                   rng)
    check_alone(locs, want, SIZE)
    print("[%5.1fs] " % (time.monotonic() - t0) + "mirror of %s %s: %s" % ([x.name for x in locs], " ".join(extra),
                                   stats), flush=True)


def failing_location(locs, victim, *extra):
    args = args_of(locs, *extra)
    rng = random.Random("%d-fail-%s-%d" % (seed, [type(x).__name__
                                                  for x in locs], victim))
    want, stats = failing_run(args, locs, [victim], SIZE, CHUNK, CONNS,
                              ROUNDS, rng)
    check_alone([locs[victim]], want, SIZE)
    print("[%5.1fs] " % (time.monotonic() - t0) + "mirror of %d, location %d (%s) failed and came back: %s"
          % (len(locs), victim, locs[victim].name, stats), flush=True)


def kill_during_catch_up():
    """Async: bucket 1 is down while the writes go to bucket 0, then it
    comes back and nbdkit is killed while the catch-up is copying (its
    chunk PUTs delayed by its proxy)."""
    locs = buckets(2, proxied=(1,))
    args = args_of(locs, "mirror-mode=async")
    sf = Server(args)
    h = sf.connect()
    locs[1].fail(cut=0)
    rng = random.Random("%d-kill" % seed)
    image = bytearray(SIZE)
    random_writes(h, image, SIZE, 60, rng)
    h.flush()
    check(wait_down(sf, 1), "location 1 never marked down\n" +
          sf.output()[-3000:])
    pending = missing_files(locs)
    check(pending, "nothing recorded while location 1 was down")
    proxy = locs[1].proxy
    proxy.clear()
    proxy.reset_records()
    proxy.add("delay", method="PUT", key=r"\.chunk$", delay=0.3)
    deadline = time.monotonic() + 20
    while len(proxy.find(method="PUT", key=r"\.chunk$")) < 3:
        check(time.monotonic() < deadline, "no catch-up started\n" +
              sf.output()[-3000:])
        time.sleep(0.05)
    sf.kill()
    pending = missing_files(locs)
    check(pending, "the records went before the catch-up was done")
    proxy.clear()
    for x in locs:
        x.drop_leases()
    sf = Server(args)
    h = sf.connect()
    want = hashlib.sha256(image).hexdigest()
    check(digest(h) == want, "acknowledged data lost after kill -9")
    h.shutdown()
    wait_caught_up(sf, locs)
    sf.stop()
    check_alone(locs, want, SIZE)
    print("[%5.1fs] " % (time.monotonic() - t0) + "kill -9 during the catch-up with %d records pending: converged"
          % len(pending), flush=True)


def kill_during_writes():
    """Sync: nbdkit killed with writes in flight (set_test.py,
    kill_during_sync_writes), on two buckets."""
    locs = buckets(2)
    kill_during_sync_writes(args_of(locs), locs, SIZE,
                            random.Random("%d-kill-writes" % seed))
    print("[%5.1fs] " % (time.monotonic() - t0) + "kill -9 during sync "
          "writes: flushed data intact, the copies agree", flush=True)


def corrupted_copy_at_rest():
    """s3rver: a byte of one copy changed at rest; reads stay right,
    the bad copy is rewritten (and then holds its old bytes again)."""
    rv = S3rver()
    locs = [BucketLocation(rv) for _ in range(2)]
    args = set_args(locs, "export=v", "size=1M", "chunk-size=64K",
                    "probe-interval=200ms", "http-retries=1")
    rng = random.Random("%d-rot" % seed)
    image = rng.randbytes(MiB)
    sf = Server(args)
    h = sf.connect()
    h.pwrite(image, 0)
    h.flush()
    h.shutdown()
    sf.stop()
    key = locs[1].key_prefix + "v.5.chunk"
    path = rv.object_path(key, bucket=locs[1].bucket)
    with open(path, "rb") as f:
        good = f.read()
    rv.corrupt(key, offset=len(good) // 3, bucket=locs[1].bucket)
    sf = Server(args)
    h = sf.connect()
    # Reads go round the copies: a few reads of chunk 5 meet the bad one.
    for _ in range(4):
        check(h.pread(64 * KiB, 5 * 64 * KiB) == image[5 * 64 * KiB:
                                                        6 * 64 * KiB],
              "a copy corrupted at rest was served")
    check(h.pread(MiB, 0) == image, "the image differs")
    wait_caught_up(sf, locs)
    deadline = time.monotonic() + 20
    while True:
        with open(path, "rb") as f:
            if f.read() == good:
                break
        check(time.monotonic() < deadline,
              "the corrupted copy was not rewritten\n" + sf.output()[-3000:])
        time.sleep(0.1)
    h.shutdown()
    sf.stop()
    check_alone(locs, hashlib.sha256(image).hexdigest(), MiB)
    rv.stop()
    print("[%5.1fs] " % (time.monotonic() - t0) + "a copy corrupted at rest: served from the other, rewritten",
          flush=True)


def create(args):
    """Create the volume (or set) of nbdkit ARGS: serve it once."""
    srv = Server(args)
    srv.connect().shutdown()
    srv.stop()


def refusals():
    a, b, c, d = buckets(4)
    for pair in ((a, b), (c, d)):
        create(args_of(pair))
    out = start_fails(args_of((a, d)))
    refused_naming(out, d.bucket, "belongs to another set")
    out = start_fails(args_of((b, a)))
    refused_naming(out, b.bucket, "given as location 0")
    out = start_fails(args_of((a, b, c)))
    check(any(x.bucket in l for l in error_lines(out, "a set of 2, not 3")
              for x in (a, b, c)), "a third bucket accepted:\n" + out)
    out = start_fails(args_of((a, b, c), "redundancy=ec:2+1"))
    check(error_lines(out, "location of a mirror"),
          "a mirror's buckets as EC:\n" + out)
    # A plain volume (one bucket) is not a location of a set.
    e, f = buckets(2)
    create(e.alone() + ["size=1M"])
    create(f.alone() + ["size=1M"])
    out = start_fails(args_of((e, f)))
    refused_naming(out, e.bucket, "single-location volume")
    # One copy alone: read-only only.
    out = refused(a.alone())
    check(error_lines(out, "read-only"), "no reason given:\n" + out)
    out = start_fails(args_of((a, b), "write-quorum=3"))
    check("only 2 locations" in out, "write-quorum=3 of 2:\n" + out)
    out = start_fails(args_of((a, b), "mirror-mode=often"))
    check("mirror-mode=often" in out, "mirror-mode=often:\n" + out)
    # At most 8 locations: nine bucket= (prefixes of one bucket).
    nine = set_args([a], *COMMON)
    for n in range(8):
        nine += ["bucket=" + a.bucket, "prefix=n%d" % n]
    out = start_fails(nine)
    check("8" in out, "nine locations:\n" + out)
    # A bucket's key after a dir= (which has none).
    out = start_fails(["s3-object", "dir=" + tmpdir(), "prefix=x"] +
                      args_of((a,))[1:])
    check(len(error_lines(out, "prefix=", "dir=")) == 1,
          "a bucket key after dir=:\n" + out)
    # A dir= of another set beside a bucket.
    g, i = DirLocation(), DirLocation()
    create(["sharded-file", "dir=" + g.path, "dir=" + i.path, "export=v",
            "size=%d" % SIZE, "chunk-size=64K"])
    out = start_fails(args_of((g, a)))
    refused_naming(out, a.bucket, "belongs to another set")
    print("[%5.1fs] " % (time.monotonic() - t0) + "refusals ok", flush=True)


def late_holder_keeps_records():
    """A bucket that did not answer at open and answers later keeps what
    its records said when it first takes a new entry: S3 has no append,
    a record object is rewritten whole, and one never read in this
    process must be read first (else "C lacks chunk 1" on B would be
    erased by "C lacks chunk 2")."""
    a, b, c = buckets(3, proxied=(1, 2))
    args = args_of([a, b, c], "write-quorum=2")
    key = "v.missing.2"

    def bits(loc):
        body = loc.get(key)
        return {n for n in range(SIZE // CHUNK + 1)
                if body[84 + n // 8] >> (n % 8) & 1}

    # Run 1: C stops taking chunk writes; chunk 1 is recorded on A and B.
    sf = Server(args)
    h = sf.connect()
    h.pwrite(b"a" * CHUNK, 0)
    c.proxy.add("status", status=500, code="InternalError", method="PUT",
                key=r"\.chunk$")
    h.pwrite(b"b" * CHUNK, CHUNK)
    h.flush()
    h.shutdown()
    sf.stop()
    check(bits(a) == {1} and bits(b) == {1},
          "C lacks chunk 1 on A and B: %s %s" % (bits(a), bits(b)))
    # Run 2: B does not answer at open (C still takes no chunk), then
    # answers; C misses chunk 2 too.
    b.fail(cut=0)
    sf = Server(args)
    h = sf.connect()
    b.recover()
    check(wait_for_pattern(sf, r"location 1 \(.*\) answers"),
          "B never answered\n" + sf.output()[-3000:])
    h.pwrite(b"c" * CHUNK, 2 * CHUNK)
    h.flush()
    check(bits(b) == {1, 2}, "B's record of what C lacks: %s (chunk 1 "
          "erased by the rewrite?)" % bits(b))
    h.shutdown()
    sf.stop()
    c.recover()
    print("[%5.1fs] " % (time.monotonic() - t0) + "a bucket that answered "
          "late kept its records", flush=True)


# ONLY=name,... runs some of them (to replay one with SEED=n).
only = os.environ.get("ONLY")
for name, fn in (
        ("refusals", refusals),
        ("diff2", lambda: differential(buckets(2, prefixes=["left", None]))),
        ("diff3", lambda: differential(buckets(3), "write-quorum=2")),
        ("async2", lambda: differential(buckets(2), "mirror-mode=async")),
        ("async3", lambda: differential(
            buckets(3, prefixes=[None, None, "third"]), "mirror-mode=async")),
        ("mixed", lambda: differential([DirLocation()] + buckets(1))),
        # durability=all: a flush copies what the others lack itself, one
        # chunk after the other (slow between buckets while writes go on:
        # here the copies go to a directory).
        ("mixed-async", lambda: differential(
            buckets(1) + [DirLocation()], "mirror-mode=async",
            "durability=all")),
        ("fail2", lambda: failing_location(
            buckets(2, proxied=(1,)), 1, "write-quorum=1")),
        ("fail3", lambda: failing_location(
            buckets(3, proxied=(0,)), 0, "write-quorum=2")),
        ("fail-mixed", lambda: failing_location(
            [DirLocation()] + buckets(1, proxied=(0,)), 1,
            "write-quorum=1")),
        ("kill-catch-up", kill_during_catch_up),
        ("rot", corrupted_copy_at_rest),
        ("kill-writes", kill_during_writes),
        ("late-holder", late_holder_keeps_records)):
    if not only or name in only.split(","):
        fn()
print("ok in %.1fs" % (time.monotonic() - t0))
