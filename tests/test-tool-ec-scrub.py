"""`shardkit scrub` of erasure-coded sets of directories
(redundancy=ec:K+M), with random data written through nbdkit:

- refused, naming the holder, while a server holds the set read-write;
- ec:2+1: what the records say a location lacks (written while it was
  away, with ec-min-write=2) is rebuilt first; then a byte flipped in a
  fragment, another flipped in a trailer, a fragment cut short, one
  deleted and one of an older write of its chunk put back are rewritten or restored, each named per chunk and per
  location, and counted exactly in the summary and in --json; a stray
  fragment of a chunk no other location holds (what a write cut short
  by a crash leaves) is reported and left;
- ec:4+2: a whole location's fragments deleted, plus a flip, a cut and
  a deletion elsewhere, plus a chunk with more than M bad fragments:
  scrub repairs the rest, names that chunk, changes nothing there and
  exits 1; with that chunk's fragments put back, it is restored and
  scrub exits 0;
- afterwards every fragment file is byte for byte what was there
  before the damage (a rebuilt fragment keeps its write's stamp), a
  second scrub finds nothing, and the set read with every choice of M
  locations renamed away (the K left must all be sound: no spare to
  rebuild from) is the image written.

Under SHARDKIT_VALGRIND the scrubs run under valgrind too.  SEED=n
replays."""

import glob
import hashlib
import itertools
import os
import random
import time

from set_test import missing_files
from set_test import digest as digest_of
from shardkit_test import (VALGRIND, Server, check, seed_from_env,
                           tmpdir)
from tool_test import refused, run

KiB = 1024
MiB = KiB * KiB
CHUNK = 64 * KiB
SIZE = 2 * MiB                  # 32 chunks
WRITTEN = SIZE - 2 * CHUNK      # the last two chunks are never written

seed = seed_from_env()


def scrub(dirs, *extra):
    """shardkit scrub DIRS v, under valgrind with SHARDKIT_VALGRIND."""
    return run("scrub", ",".join(dirs), "v", *extra, timeout=600,
               valgrind=True)


def set_args(dirs, k, m, *extra):
    return (["sharded-file"] + ["dir=" + d for d in dirs] +
            ["redundancy=ec:%d+%d" % (k, m), "export=v", "size=%d" % SIZE,
             "chunk-size=64K", "probe-interval=200ms"] + list(extra))


def frag(d, n):
    return os.path.join(d, "v.%d.chunk" % n)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip(path, where):
    b = bytearray(read(path))
    b[where] ^= 0x5a
    write(path, bytes(b))


def fragments(dirs):
    """Every fragment file of every location: {path: bytes}."""
    return {p: read(p) for d in dirs
            for p in glob.glob(os.path.join(d, "v.*.chunk"))}


def away(d):
    os.rename(d, d + ".away")


def back(d):
    os.rename(d + ".away", d)


def fill(dirs, k, m, rng, *extra):
    """Create the set and write random data over [0, WRITTEN): the image."""
    image = bytearray(SIZE)
    image[:WRITTEN] = rng.randbytes(WRITTEN)
    srv = Server(set_args(dirs, k, m, *extra))
    h = srv.connect("v")
    for off in range(0, WRITTEN, 256 * KiB):
        n = min(256 * KiB, WRITTEN - off)
        h.pwrite(bytes(image[off:off + n]), off)
    h.flush()
    check(h.pread(SIZE, 0) == bytes(image), "image read back")
    return srv, h, image


def serve_each_without_m(dirs, k, m, image):
    """Rename away every choice of M locations in turn: the K left serve
    the image (read-only), with no fragment failing on the way."""
    want = digest_of_bytes(image)
    subsets = list(itertools.combinations(range(k + m), m))
    if VALGRIND:
        subsets = subsets[:2]
    for gone in subsets:
        for i in gone:
            away(dirs[i])
        try:
            srv = Server(set_args(dirs, k, m), readonly=True)
            h = srv.connect("v")
            got = digest_of(h, SIZE)
            h.shutdown()
            srv.stop()
            out = srv.output()
        finally:
            for i in gone:
                back(dirs[i])
        check(got == want, "ec:%d+%d with locations %s away: image differs\n%s"
              % (k, m, gone, out[-3000:]))
        check("rebuilding it from the others" not in out and
              "fails its digest" not in out,
              "ec:%d+%d with %s away: a read found a bad fragment\n%s"
              % (k, m, gone, out[-3000:]))


def digest_of_bytes(b):
    return hashlib.sha256(b).hexdigest()


def lines_for(out, n):
    return [ln for ln in out.splitlines() if ln.startswith("v: chunk %d: " % n)]


def ec_2_1(rng):
    k, m = 2, 1
    dirs = [tmpdir() for _ in range(3)]
    srv, h, image = fill(dirs, k, m, rng)
    # Served read-write: refused, naming the server, nothing changed.
    before = fragments(dirs)
    r = refused("scrub", ",".join(dirs), "v", want="in use")
    check("pid %d" % srv.proc.pid in r.err, "names the holder: %r" % r)
    check(fragments(dirs) == before, "a refused scrub changed fragments")
    # Chunk 12 written again: location 0's fragment of the first write
    # is kept, to be put back (sound, but of another write).
    old12 = read(frag(dirs[0], 12))
    new = rng.randbytes(CHUNK)
    h.pwrite(new, 12 * CHUNK)
    h.flush()
    image[12 * CHUNK:13 * CHUNK] = new
    check(read(frag(dirs[0], 12)) != old12, "chunk 12 not rewritten")
    h.shutdown()
    srv.stop()

    # Location 1 away while chunks 8 and 9 are rewritten (ec-min-write=2):
    # the others record that it lacks them.
    away(dirs[1])
    srv = Server(set_args(dirs, k, m, "ec-min-write=2"))
    h = srv.connect("v")
    new = rng.randbytes(2 * CHUNK)
    h.pwrite(new, 8 * CHUNK)
    h.flush()
    image[8 * CHUNK:10 * CHUNK] = new
    h.shutdown()
    srv.stop()
    back(dirs[1])
    check(missing_files(dirs), "no records of what location 1 lacks")

    # At rest.  ORIG: every fragment as the catch-up and the writes left
    # it (location 1's 8 and 9 are stale: not compared).
    orig = fragments(dirs)
    flen = len(orig[frag(dirs[0], 1)])
    flip(frag(dirs[0], 1), 100)                 # data: digest fails
    flip(frag(dirs[2], 5), flen - 10)           # trailer: digest fails
    with open(frag(dirs[1], 2), "r+b") as f:    # cut short
        f.truncate(flen // 2)
    os.unlink(frag(dirs[2], 3))                 # gone
    write(frag(dirs[0], 12), old12)             # of the write before
    # A fragment of chunk 30, which no other location holds.
    write(frag(dirs[0], 30), orig[frag(dirs[0], 1)])

    r = scrub(dirs, "--jobs=2")
    check(r.rc == 0, "scrub of ec:2+1: %r" % r)
    summary = r.out.splitlines()[-1]
    check("3 locations (ec:2+1), 31 chunks checked" in summary and
          "2 rebuilt from the records" in summary and
          "4 rewritten (bad fragment)" in summary and
          "1 restored (missing fragment)" in summary and
          "1 cut short (left as they are)" in summary and
          "0 not repaired: ok" in summary, "summary: %r" % r)
    for n, loc, what in [(1, 0, "fails its digest"),
                         (5, 2, "fails its digest"),
                         (3, 2, "missing"),
                         (12, 0, "of another write")]:
        ls = lines_for(r.out, n)
        check(len(ls) == 1 and "location %d (%s)" % (loc, dirs[loc]) in ls[0]
              and what in ls[0], "chunk %d named: %r" % (n, r))
    ls = lines_for(r.out, 2)
    check(len(ls) == 1 and "location 1 (%s)" % dirs[1] in ls[0] and
          "rewritten" in ls[0], "chunk 2 named: %r" % r)
    ls = lines_for(r.out, 30)
    check(len(ls) == 1 and "cut short" in ls[0] and
          "0 (%s)" % dirs[0] in ls[0] and "left as they are" in ls[0],
          "chunk 30 reported: %r" % r)
    chunk_lines = [ln for ln in r.out.splitlines() if ln.startswith("v: chunk")]
    check(len(chunk_lines) == 6, "exactly those chunks named: %r" % r)
    check("v: location 0 (%s): 0 rebuilt from the records, 2 rewritten, "
          "0 restored" % dirs[0] in r.out and
          "v: location 1 (%s): 2 rebuilt from the records, 1 rewritten, "
          "0 restored" % dirs[1] in r.out and
          "v: location 2 (%s): 0 rebuilt from the records, 1 rewritten, "
          "1 restored" % dirs[2] in r.out, "per location: %r" % r)
    check(not missing_files(dirs), "records left: %s" % missing_files(dirs))

    # The fragments are what they were, the stray is left.
    now = fragments(dirs)
    for p, b in orig.items():
        if p in (frag(dirs[1], 8), frag(dirs[1], 9)):
            continue
        check(now.get(p) == b, "%s is not what it was" % p)
    check(now[frag(dirs[0], 30)] == orig[frag(dirs[0], 1)], "stray touched")
    check(frag(dirs[1], 8) in now and frag(dirs[1], 9) in now,
          "location 1 did not get chunks 8 and 9")

    # Clean now, and --json says so per location.
    r = scrub(dirs, "--json")
    check(r.rc == 0, "second scrub: %r" % r)
    j = r.json()
    check(j["ok"] and j["redundancy"] == "ec:2+1" and j["chunks"] == 31 and
          j["caught_up"] == 0 and j["rewritten"] == 0 and
          j["restored"] == 0 and j["cut_short"] == 1 and
          j["repairs"] == [] and j["problems"] == [] and
          [c["chunk"] for c in j["cut_short_chunks"]] == [30] and
          [(loc["index"], loc["path"], loc["rewritten"], loc["restored"])
           for loc in j["locations"]] ==
          [(i, d, 0, 0) for i, d in enumerate(dirs)], "json: %s" % j)
    serve_each_without_m(dirs, k, m, image)

    # The same damage again, seen through --json.
    flip(frag(dirs[1], 4), 7)
    os.unlink(frag(dirs[0], 6))
    r = scrub(dirs, "--json")
    j = r.json()
    check(r.rc == 0 and j["ok"] and j["rewritten"] == 1 and
          j["restored"] == 1 and
          [(loc["rewritten"], loc["restored"]) for loc in j["locations"]] ==
          [(0, 1), (1, 0), (0, 0)] and
          [x["chunk"] for x in j["repairs"]] == [4, 6], "json: %r" % r)
    check(read(frag(dirs[1], 4)) == orig[frag(dirs[1], 4)] and
          read(frag(dirs[0], 6)) == orig[frag(dirs[0], 6)],
          "repaired through --json")
    print("ec:2+1: records caught up, flip/trailer/cut/delete repaired, "
          "stray reported", flush=True)


def ec_4_2(rng):
    k, m = 4, 2
    dirs = [tmpdir() for _ in range(6)]
    srv, h, image = fill(dirs, k, m, rng)
    h.shutdown()
    srv.stop()
    orig = fragments(dirs)
    chunks = sorted(int(os.path.basename(p).split(".")[1])
                    for p in orig if p.startswith(dirs[0] + "/"))
    check(len(chunks) == 30, "30 chunks written: %s" % chunks)
    flen = len(orig[frag(dirs[0], 1)])

    # A whole location's fragments gone, and on top of that:
    for n in chunks:
        os.unlink(frag(dirs[5], n))
    flip(frag(dirs[0], 1), flen // 2)
    with open(frag(dirs[1], 2), "r+b") as f:
        f.truncate(flen - 1)
    os.unlink(frag(dirs[2], 3))
    # Chunk 6: two more bad fragments than location 5's: 3 > M.
    flip(frag(dirs[0], 6), 1)
    flip(frag(dirs[3], 6), flen - 2)       # its trailer's CRC table
    bad6 = {i: read(frag(dirs[i], 6)) for i in range(5)}

    r = scrub(dirs, "--jobs=2")
    check(r.rc == 1, "scrub with an unrecoverable chunk: %r" % r)
    summary = r.out.splitlines()[-1]
    check("6 locations (ec:4+2), 30 chunks checked" in summary and
          "0 rebuilt from the records" in summary and
          "2 rewritten (bad fragment)" in summary and
          "30 restored (missing fragment)" in summary and
          "0 cut short" in summary and "1 not repaired: BAD" in summary,
          "summary: %r" % r)
    ls = lines_for(r.out, 6)
    check(len(ls) == 1 and "only 3 good fragment(s) of one write, 4 needed" in ls[0]
          and "1 missing" in ls[0] and "2 failing their digest" in ls[0] and
          "nothing changed" in ls[0], "chunk 6 named: %r" % r)
    check("v: location 5 (%s): 0 rebuilt from the records, 0 rewritten, "
          "29 restored" % dirs[5] in r.out and
          "v: location 0 (%s): 0 rebuilt from the records, 1 rewritten, "
          "0 restored" % dirs[0] in r.out and
          "v: location 1 (%s): 0 rebuilt from the records, 1 rewritten, "
          "0 restored" % dirs[1] in r.out and
          "v: location 2 (%s): 0 rebuilt from the records, 0 rewritten, "
          "1 restored" % dirs[2] in r.out and
          "v: location 3 (" not in r.out and "v: location 4 (" not in r.out,
          "per location: %r" % r)
    check(all(read(frag(dirs[i], 6)) == bad6[i] for i in range(5)) and
          not os.path.exists(frag(dirs[5], 6)), "chunk 6 was changed")
    now = fragments(dirs)
    for p, b in orig.items():
        if os.path.basename(p) != "v.6.chunk":
            check(now.get(p) == b, "%s is not what it was" % p)

    # Chunk 6's two bad fragments put back: location 5's is rebuilt.
    for i in (0, 3):
        write(frag(dirs[i], 6), orig[frag(dirs[i], 6)])
    r = scrub(dirs)
    check(r.rc == 0 and "0 rewritten" in r.out and "1 restored" in r.out and
          "0 not repaired: ok" in r.out and len(lines_for(r.out, 6)) == 1,
          "scrub after chunk 6 put back: %r" % r)
    check(fragments(dirs) == orig, "not every fragment is what it was")
    r = scrub(dirs)
    check(r.rc == 0 and "0 rewritten" in r.out and "0 restored" in r.out and
          "0 cut short" in r.out, "clean: %r" % r)
    serve_each_without_m(dirs, k, m, image)
    print("ec:4+2: a location wiped and more repaired; more than M bad "
          "refused, then restored", flush=True)


t0 = time.monotonic()
rng = random.Random("%d-ec-scrub" % seed)
ec_2_1(rng)
ec_4_2(rng)
print("ok in %.1fs" % (time.monotonic() - t0))
