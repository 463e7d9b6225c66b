"""Mirror sets seen and repaired by the volume tool, and served degraded
(issue 15):

- an async mirror of 3 directories: one renamed away mid-run is marked
  down while the server goes on reading and writing; `shardkit status`
  says it is unreachable and how far behind (exit 1), the lag is in the
  debug log; renamed back, it is caught up and status is healthy (exit 0);
- a sync set (write-quorum=2 of 3) started with one directory gone
  serves (degraded open) and catches it up when it returns; with two
  gone it is refused with one line naming them;
- `shardkit scrub`: a byte flipped in one copy of a chunk, a stray chunk
  in one location and a chunk file removed from one are repaired (the
  files are fixed, the summary says so, per chunk and per location, and
  --json); with 2 locations that disagree
  it repairs nothing and exits 1; while served it is refused, naming
  the holder."""

import hashlib
import os
import time

from shardkit_test import (VALGRIND, Server, check, fail, start_fails, tmpdir,
                           wait_for_output)
from tool_test import ok, refused, run

KiB = 1024
MiB = KiB * KiB
CHUNK = 64 * KiB
SIZE = 4 * MiB


def set_args(dirs, *extra):
    return (["sharded-file"] + ["dir=" + d for d in dirs] +
            ["export=v", "size=%d" % SIZE, "chunk-size=64K",
             "probe-interval=200ms"] + list(extra))


def where(dirs):
    return ",".join(dirs)


def chunk_file(d, n):
    return os.path.join(d, "v.%d.chunk" % n)


def wait_healthy(dirs, timeout=120 if VALGRIND else 30):
    deadline = time.monotonic() + timeout
    while True:
        r = run("status", where(dirs), "v", "--json")
        if r.rc == 0:
            return r.json()
        if time.monotonic() > deadline:
            fail("not healthy after %ds: %r" % (timeout, r))
        time.sleep(0.2)


def digest(h):
    return hashlib.sha256(h.pread(SIZE, 0)).hexdigest()


def away(d):
    os.rename(d, d + ".away")


def back(d):
    os.rename(d + ".away", d)


def async_behind():
    dirs = [tmpdir() for _ in range(3)]
    srv = Server(set_args(dirs, "mirror-mode=async"))
    h = srv.connect("v")
    h.pwrite(b"a" * (3 * CHUNK), 0)
    h.flush()
    j = wait_healthy(dirs)
    check(all(loc["held_by"] and "pid %d" % srv.proc.pid in loc["held_by"]
              for loc in j["locations"]), "status names the server: %s" % j)
    # Location 2's directory goes: the server sees it (by its path) and
    # goes on serving.
    away(dirs[2])
    check(wait_for_output(srv, "(%s) is down" % dirs[2]), "never marked down")
    h.pwrite(b"b" * (5 * CHUNK), 8 * CHUNK)
    h.flush()
    check(h.pread(5 * CHUNK, 8 * CHUNK) == b"b" * (5 * CHUNK), "read while down")
    check(not os.path.exists(chunk_file(dirs[2] + ".away", 8)),
          "a write reached the directory that went")
    r = run("status", where(dirs), "v", "--json")
    check(r.rc == 1, "status of a set with a location gone: %r" % r)
    loc = r.json()["locations"][2]
    check(not loc["reachable"] and loc["lacking_chunks"] == 5 and
          loc["bytes_behind"] == 5 * CHUNK and
          loc["oldest_record_age"] is not None, "the lag: %s" % loc)
    r = run("status", where(dirs), "v")
    check(r.rc == 1 and "unreachable" in r.out and "lacks 5 chunks" in r.out,
          "status text: %r" % r)
    check(wait_for_output(srv, "(%s), down, is behind: 5 chunks" % dirs[2]),
          "no lag in the debug log")
    # It comes back: caught up.
    back(dirs[2])
    wait_healthy(dirs)
    check(open(chunk_file(dirs[2], 8), "rb").read() == b"b" * CHUNK,
          "location 2 caught up")
    h.shutdown()
    srv.stop()
    print("async: behind while away, caught up when back", flush=True)


def degraded_open():
    dirs = [tmpdir() for _ in range(3)]
    args = set_args(dirs, "write-quorum=2")
    srv = Server(args)
    h = srv.connect("v")
    h.pwrite(b"c" * CHUNK, 0)
    h.flush()
    h.shutdown()
    srv.stop()
    away(dirs[1])
    srv = Server(args)
    h = srv.connect("v")
    check(h.pread(CHUNK, 0) == b"c" * CHUNK, "degraded read")
    h.pwrite(b"d" * CHUNK, 4 * CHUNK)
    h.flush()
    r = run("status", where(dirs), "v", "--json")
    check(r.rc == 1 and r.json()["locations"][1]["lacking_chunks"] == 1,
          "status of the degraded set: %r" % r)
    back(dirs[1])
    wait_healthy(dirs)
    check(open(chunk_file(dirs[1], 4), "rb").read() == b"d" * CHUNK,
          "the location down since the open is caught up")
    want = digest(h)
    h.shutdown()
    srv.stop()
    # Two of three gone: fewer than the 2 it needs.
    away(dirs[0])
    away(dirs[2])
    out = start_fails(args)
    lines = [ln for ln in out.splitlines() if "error" in ln]
    check(len(lines) == 1 and "1 of 3 locations answer" in lines[0] and
          dirs[0] in lines[0] and dirs[2] in lines[0],
          "refused with one line naming them:\n" + out)
    back(dirs[0])
    back(dirs[2])
    srv = Server(args, readonly=True)
    h = srv.connect("v")
    check(digest(h) == want, "image after all that")
    h.shutdown()
    srv.stop()
    print("degraded open: served, caught up; 1 of 3 refused", flush=True)


def scrub():
    dirs = [tmpdir() for _ in range(3)]
    srv = Server(set_args(dirs))
    h = srv.connect("v")
    for n in range(4):
        h.pwrite(bytes([65 + n]) * CHUNK, n * CHUNK)
    h.flush()
    want = digest(h)
    r = refused("scrub", where(dirs), "v", want="in use")
    check("pid %d" % srv.proc.pid in r.err, "names the holder: %r" % r)
    h.shutdown()
    srv.stop()
    # At rest: a flipped byte, a stray, a chunk file gone.
    with open(chunk_file(dirs[1], 1), "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    with open(chunk_file(dirs[0], 9), "wb") as f:
        f.write(b"stray" * 100)
    os.unlink(chunk_file(dirs[2], 2))
    r = ok("scrub", where(dirs), "v", "--jobs=2")
    check("1 rewritten" in r.out and "1 restored" in r.out and
          "1 removed" in r.out and "0 not repaired" in r.out,
          "summary: %r" % r)
    check(open(chunk_file(dirs[1], 1), "rb").read() == b"B" * CHUNK,
          "the flipped byte is fixed")
    check(open(chunk_file(dirs[2], 2), "rb").read() == b"C" * CHUNK,
          "the missing chunk is restored")
    check(not os.path.exists(chunk_file(dirs[0], 9)), "the stray is gone")
    check("v: chunk 1: location 1 (%s): copy differed: rewritten" % dirs[1]
          in r.out and
          "v: location 2 (%s): 0 copied from the records, 0 rewritten, "
          "1 restored, 0 removed" % dirs[2] in r.out,
          "repairs per chunk and per location: %r" % r)
    r = ok("scrub", where(dirs), "v")
    check("0 rewritten" in r.out and "0 restored" in r.out, "clean: %r" % r)
    j = ok("scrub", where(dirs), "v", "--json").json()
    check(j["ok"] and j["redundancy"] == "mirror" and j["chunks"] == 4 and
          j["rewritten"] == 0 and j["repairs"] == [] and
          [loc["path"] for loc in j["locations"]] == dirs, "json: %s" % j)
    ok("status", where(dirs), "v")
    for d in dirs:
        srv = Server(["sharded-file", "dir=" + d, "export=v"], readonly=True)
        h = srv.connect("v")
        check(digest(h) == want, "location %s alone differs" % d)
        h.shutdown()
        srv.stop()
    # Two locations that disagree: no majority, nothing touched, exit 1.
    two = [tmpdir() for _ in range(2)]
    srv = Server(set_args(two))
    h = srv.connect("v")
    h.pwrite(b"E" * CHUNK, 0)
    h.flush()
    h.shutdown()
    srv.stop()
    with open(chunk_file(two[0], 0), "r+b") as f:
        f.write(b"\x00")
    r = run("scrub", where(two), "v")
    check(r.rc == 1 and "no majority" in r.out and "1 not repaired" in r.out,
          "2 locations that disagree: %r" % r)
    check(open(chunk_file(two[1], 0), "rb").read() == b"E" * CHUNK,
          "nothing touched")
    print("scrub: repaired by majority; 2 disagreeing refused", flush=True)


def usage():
    d = tmpdir()
    refused("status", d, "v", want="cannot be read")
    dirs = [tmpdir() for _ in range(2)]
    Server(set_args(dirs)).stop()
    refused("status", dirs[0], "v", want="give all 2 directories")
    refused("scrub", dirs[0], "v", want="give all 2 directories")
    away(dirs[1])
    refused("scrub", where(dirs), "v", want="did not answer")
    back(dirs[1])
    print("usage errors ok", flush=True)


t0 = time.monotonic()
usage()
scrub()
degraded_open()
async_behind()
print("ok in %.1fs" % (time.monotonic() - t0))
