"""Helpers for the tests of sets of locations (mirror, erasure coding):
whole-image digests, and waiting for the catch-up to empty the records
of what each location lacks (NAME.missing.L files in a directory,
PREFIX/NAME.missing.L objects in a bucket).

Locations: a test of sharded-file names its locations by directory
path; a test of s3-object builds them with the location factory below
(DirLocation, BucketLocation) and its command line with set_args().
missing_files(), wait_caught_up() and check_alone() take either."""

import glob
import hashlib
import itertools
import os
import re
import time

import nbd

from shardkit_test import VALGRIND, Server, check, fail, tmpdir

KiB = 1024
MiB = 1024 * KiB

# The prefix every bucket location of set_args() has unless it names
# its own (given once before the first location, as a default).
DEFAULT_PREFIX = "p"


def digest(h, size, step=8 * MiB):
    d = hashlib.sha256()
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        d.update(h.pread(n, pos))
        pos += n
    return d.hexdigest()


def missing_files(locs):
    """Every record of what a location lacks, in LOCS: directory paths
    or locations of the factory below."""
    out = []
    for x in locs:
        if isinstance(x, str):
            out += glob.glob(os.path.join(x, "*.missing.*"))
        else:
            out += x.records()
    return out


def wait_caught_up(srv, dirs, timeout=120 if VALGRIND else 30):
    """Wait until no location lacks anything: every NAME.missing.L gone."""
    deadline = time.monotonic() + timeout
    while missing_files(dirs):
        if time.monotonic() > deadline:
            fail("not caught up after %ds: %s\n%s" % (
                timeout, missing_files(dirs), srv.output()[-3000:]))
        time.sleep(0.1)


def wait_for_pattern(srv, pattern, timeout=60 if VALGRIND else 10):
    """Wait until the regular expression PATTERN matches SRV's log, at
    most TIMEOUT seconds; return whether it does."""
    r = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while not r.search(srv.output()):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def wait_down(srv, i):
    """Location I is marked down in SRV's log (any name in brackets)."""
    return wait_for_pattern(srv, r"location %d \(.*\) is down" % i)


# ---- The location factory ------------------------------------------------

class DirLocation:
    """A dir= location: a local directory holding the volume in
    sharded-file's format (its records NAME.missing.L files)."""

    def __init__(self, path=None):
        self.path = path or tmpdir()
        self.name = self.path

    def args(self, proxied=True):
        return ["dir=" + self.path]

    def records(self):
        return glob.glob(os.path.join(self.path, "*.missing.*"))

    def alone(self, export="v"):
        """nbdkit arguments serving this location alone."""
        return ["sharded-file", "dir=" + self.path, "export=" + export]

    def drop_leases(self):
        pass                            # flock goes with the process


_buckets = itertools.count()


class BucketLocation:
    """A bucket= location on S3 (a CephRGW or S3rver of s3_server.py): a
    new bucket, the volume under PREFIX/ (DEFAULT_PREFIX unless given),
    its records PREFIX/NAME.missing.L objects.  With proxy=True it gets
    its own s3_fault_proxy.FaultProxy, which set_args() puts in front of
    it (endpoint= after its bucket=) unless told otherwise; fail() and
    recover() switch its faults."""

    def __init__(self, s3, prefix=None, proxy=False, bucket=None):
        self.s3 = s3
        self.bucket = bucket or "set%d-%d" % (os.getpid() % 10000,
                                             next(_buckets))
        self.name = self.bucket
        self.prefix = prefix
        s3.create_bucket(self.bucket)
        self.proxy = None
        if proxy:
            from s3_fault_proxy import FaultProxy
            self.proxy = FaultProxy(s3.port, bucket=self.bucket)

    @property
    def key_prefix(self):
        return (self.prefix or DEFAULT_PREFIX) + "/"

    def args(self, proxied=True):
        """This location on the command line after the defaults of
        set_args(): bucket=, then what differs from them."""
        a = ["bucket=" + self.bucket]
        if self.proxy and proxied:
            a.append("endpoint=" + self.proxy.endpoint)
        if self.prefix is not None:
            a.append("prefix=" + self.prefix)
        return a

    def keys(self):
        return self.s3.keys(self.key_prefix, self.bucket)

    def records(self):
        return [self.bucket + ":" + k for k in self.keys()
                if ".missing." in k]

    def get(self, name):
        """The object PREFIX/NAME (straight from the server)."""
        return self.s3.get(self.key_prefix + name, bucket=self.bucket)

    def alone(self, export="v"):
        """nbdkit arguments serving this location alone (no proxy)."""
        s3 = self.s3
        return ["s3-object", "endpoint=" + s3.endpoint,
                "bucket=" + self.bucket,
                "prefix=" + (self.prefix or DEFAULT_PREFIX),
                "region=us-east-1", "url-style=path",
                "access-key=" + s3.access_key,
                "secret-key=" + s3.secret_key, "export=" + export]

    def drop_leases(self):
        """After a kill -9 the leases stay held until they end: remove
        them by hand, as the man page says may be done once no server
        writes the volume."""
        for k in self.keys():
            if k.endswith(".lease"):
                self.s3.delete(k, bucket=self.bucket)

    def fail(self, cut=2):
        """The bucket stops answering mid-write: the next CUT chunk PUTs
        are stored but their answers lost (the connection closed), then
        every request is answered 500 InternalError without reaching
        the server.  (Lease renewals are never cut: a renewal stored
        but unanswered would lose the lease for good, which is the
        lease's own business, tested in test-s3-object-lease.)"""
        if cut:
            self.proxy.add("cut", method="PUT", key=r"\.chunk$", count=cut)
        self.proxy.add("status", status=500, code="InternalError")

    def recover(self):
        """Answer again; returns how many requests the faults met."""
        with self.proxy.lock:
            met = sum(r.fired for r in self.proxy.rules)
        self.proxy.clear()
        return met


def set_args(locs, *extra, proxied=True):
    """s3-object serving the set LOCS (in order): the S3 defaults (the
    server of the first bucket location, region, path-style, keys,
    prefix=DEFAULT_PREFIX) before the first location, then each
    location's bucket= (with its own endpoint= and prefix= when they
    differ) or dir=, then EXTRA.  PROXIED=False: every bucket straight
    to its server, none through its proxy."""
    a = ["s3-object"]
    s3 = next((x.s3 for x in locs if isinstance(x, BucketLocation)), None)
    if s3 is not None:
        a += ["endpoint=" + s3.endpoint, "region=us-east-1", "url-style=path",
              "prefix=" + DEFAULT_PREFIX, "access-key=" + s3.access_key,
              "secret-key=" + s3.secret_key]
    for x in locs:
        a += x.args(proxied)
    return a + list(extra)


def check_alone(locs, want, size, export="v"):
    """Each location, served alone and read-only (a bucket by s3-object,
    a directory by sharded-file), holds the image whose digest is WANT."""
    for x in locs:
        srv = Server(x.alone(export), readonly=True)
        h = srv.connect()
        check(digest(h, size) == want,
              "location %s alone differs\n%s" % (x.name,
                                                 srv.output()[-3000:]))
        h.shutdown()
        srv.stop()


def refused(args, readonly=False):
    """nbdkit ARGS must refuse to serve the volume: at start-up, or
    (nbdkit tells a plugin about -r only when a client opens) at the
    first connection.  Returns nbdkit's output."""
    srv = Server(args, readonly=readonly, wait=False)
    try:
        srv.wait_ready()
    except RuntimeError:
        return srv.output()
    try:
        srv.connect().shutdown()
        fail("served although it should have been refused: %s\n%s"
             % (" ".join(args), srv.output()[-2000:]))
    except nbd.Error:
        pass
    out = srv.output()
    srv.stop(check_exit=False)
    return out


def error_lines(out, *words):
    """The lines of nbdkit's output OUT that contain every one of WORDS."""
    return [l for l in out.splitlines() if all(w in l for w in words)]


def refused_naming(out, what, *words):
    """OUT (a refusal at start-up) is one error line, naming WHAT (a
    location) with WORDS."""
    check(error_lines(out, what, *words),
          "no line naming %s with %s:\n%s" % (what, words, out))
    check(len(error_lines(out, "error:")) == 1,
          "more than one error line:\n" + out)


# ---- Runs shared by the mirror and EC tests of s3-object -----------------

def differential_run(args, locs, size, chunk, conns, rounds, rng):
    """The seeded random differential (tests/differential.py) over CONNS
    connections to nbdkit ARGS against `nbdkit memory`; then, after a
    restart, the same image, and the set caught up.  Returns (the
    image's digest, the statistics)."""
    from differential import (compare_image, flush_and_stop, new_stats,
                              run_rounds, start_against_reference)
    sf, mem, sfh, memh = start_against_reference(args, size, conns)
    stats = new_stats()
    run_rounds(sfh, memh, size, chunk, rng, rounds, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    want = digest(memh, size)
    flush_and_stop(sf, sfh)
    memh.shutdown()
    mem.stop(check_exit=False)
    sf = Server(args)
    h = sf.connect()
    check(digest(h, size) == want, "image differs after a restart")
    h.shutdown()
    wait_caught_up(sf, locs)
    sf.stop()
    return want, stats


def failing_run(args, locs, victims, size, chunk, conns, rounds, rng):
    """The differential through nbdkit ARGS while the locations VICTIMS
    (indexes in LOCS, each behind its proxy) fail mid-write: reads stay
    right, writes go on, each victim is marked down and what it misses
    recorded; then they answer again and are caught up (the records
    go) while the rounds go on.  Returns (the image's digest, the
    statistics)."""
    from differential import (compare_image, flush_and_stop, new_stats,
                              run_rounds, start_against_reference)
    sf, mem, sfh, memh = start_against_reference(args, size, conns)
    stats = new_stats()
    run_rounds(sfh, memh, size, chunk, rng, rounds // 2, stats, sf.output)
    for v in victims:
        locs[v].fail()
    run_rounds(sfh, memh, size, chunk, rng, rounds // 2, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    for v in victims:
        check(wait_down(sf, v), "location %d (%s) never marked down\n%s"
              % (v, locs[v].name, sf.output()[-3000:]))
    check(missing_files(locs), "nothing recorded as missing")
    for v in victims:
        check(locs[v].recover(), "no request met the faults of location %d"
              % v)
    run_rounds(sfh, memh, size, chunk, rng, rounds // 4, stats, sf.output)
    wait_caught_up(sf, locs)
    compare_image(sfh, memh, size, chunk)
    want = digest(memh, size)
    flush_and_stop(sf, sfh)
    memh.shutdown()
    mem.stop(check_exit=False)
    return want, stats


def random_writes(h, image, limit, count, rng):
    """COUNT writes of 1 to 300 KiB of random bytes through H at random
    offsets below LIMIT, copied into IMAGE (a bytearray)."""
    for _ in range(count):
        off = rng.randrange(0, limit - 300 * KiB)
        data = rng.randbytes(rng.randint(1, 300 * KiB))
        h.pwrite(data, off)
        image[off:off + len(data)] = data


def writes_in_flight(h, size, rng):
    """Random writes to the lower half of an image of SIZE bytes
    through H, flushed; then 24 writes of 256 KiB to the upper half sent
    and not waited for (the caller kills the server while they are in
    flight).  Returns the image of the lower half as flushed."""
    image = bytearray(size)
    half = size // 2
    random_writes(h, image, half, 40, rng)
    h.flush()
    for i in range(24):
        buf = nbd.Buffer.from_bytearray(bytearray(rng.randbytes(256 * KiB)))
        h.aio_pwrite(buf, half + (i * 256 * KiB) % (size - half - 256 * KiB))
    return image


def kill_during_sync_writes(args, locs, size, rng):
    """A sync mirror (nbdkit ARGS over LOCS, an image of SIZE bytes)
    killed with writes in flight, never acknowledged, so either their
    old or their new bytes may come back; then a restart: everything
    flushed is there, two reads of the image give the same bytes, and
    once caught up every location alone holds them.  A write that
    reached one copy and not the other must not leave the copies
    different with nothing recorded (the write intents of
    missing-set.h)."""
    sf = Server(args)
    h = sf.connect()
    image = writes_in_flight(h, size, rng)
    half = size // 2
    while h.aio_in_flight() > 12:
        h.poll(10)
    sf.kill()
    for x in locs:
        x.drop_leases()
    sf = Server(args)
    h = sf.connect()
    check(h.pread(half, 0) == bytes(image[:half]),
          "flushed data lost after kill -9")
    first, second = digest(h, size), digest(h, size)
    check(first == second, "after kill -9 two reads of the image differ: "
          "the copies hold different bytes and nothing says so")
    h.shutdown()
    wait_caught_up(sf, locs)
    sf.stop()
    check_alone(locs, first, size)
