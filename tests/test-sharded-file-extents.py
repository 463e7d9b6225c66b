"""sharded-file: extents (base:allocation) after writes and trims.
Missing chunks are holes; inside a chunk file, ranges never written and
ranges trimmed (punched) are holes; data is data.  Checked with libnbd
block_status (whole map and REQ_ONE) and with qemu-img map."""

import json
import os
import shutil
import subprocess

import nbd

from shardkit_test import Server, check, tmpdir

KiB = 1024
C = 64 * KiB                    # chunk size
SIZE = 16 * C + 3 * KiB         # short last chunk
HOLE = nbd.STATE_HOLE | nbd.STATE_ZERO

d = tmpdir()
srv = Server(["sharded-file", "dir=" + d, "export=e", "size=%d" % SIZE,
              "chunk-size=64K"])
h = srv.connect()


def extents(count=SIZE, offset=0, flags=0):
    got = []

    def cb(meta, off, ents, err):
        if meta == "base:allocation":
            got.extend(zip(ents[0::2], ents[1::2]))
        return 0

    h.block_status(count, offset, cb, flags)
    return got


def bitmap():
    """Byte-exact map: a list of (start, end, is_hole), merged."""
    out = []
    pos = 0
    while pos < SIZE:
        for length, flags in extents(SIZE - pos, pos):
            hole = (flags & HOLE) == HOLE
            check((flags & nbd.STATE_HOLE == 0) or flags & nbd.STATE_ZERO,
                  "hole that is not zero at %d" % pos)
            if out and out[-1][2] == hole and out[-1][1] == pos:
                out[-1] = (out[-1][0], pos + length, hole)
            else:
                out.append((pos, pos + length, hole))
            pos += length
    return out


def data_ranges():
    return [(a, b) for a, b, hole in bitmap() if not hole]


# Fresh: one hole.
check(bitmap() == [(0, SIZE, True)], "fresh volume is all hole: %s" % bitmap())

# A whole chunk of data (chunk 2), a page in the middle of chunk 5 (its
# file is sparse before and after), and the short last chunk.
h.pwrite(b"\xaa" * C, 2 * C)
h.pwrite(b"\xbb" * 4096, 5 * C + 8 * KiB)
h.pwrite(b"\xcc" * 100, SIZE - 100)
# The last chunk file is 3 KiB long and written at its end: the file
# system allocates whole blocks, so its data starts at the chunk's start
# (its only block).
want = [(2 * C, 3 * C), (5 * C + 8 * KiB, 5 * C + 12 * KiB), (16 * C, SIZE)]
check(data_ranges() == want, "after writes: %s" % data_ranges())
check(sorted(os.listdir(d)) == ["e.16.chunk", "e.2.chunk", "e.5.chunk",
                                "e.meta"], "files: %s" % os.listdir(d))

# Trim a block-aligned hole in the middle of chunk 2: a hole inside a
# chunk file.
h.trim(16 * KiB, 2 * C + 16 * KiB)
check(data_ranges() == [(2 * C, 2 * C + 16 * KiB), (2 * C + 32 * KiB, 3 * C),
                        want[1], want[2]],
      "after a partial trim: %s" % data_ranges())
check(h.pread(16 * KiB, 2 * C + 16 * KiB) == bytes(16 * KiB), "trimmed zeros")
check(h.pread(16 * KiB, 2 * C) == b"\xaa" * (16 * KiB), "kept data")

# Trim the tail of chunk 2: the file is cut short, the tail is a hole.
h.trim(C - 48 * KiB, 2 * C + 48 * KiB)
check(data_ranges()[:2] == [(2 * C, 2 * C + 16 * KiB),
                            (2 * C + 32 * KiB, 2 * C + 48 * KiB)],
      "after a tail trim: %s" % data_ranges())
check(os.path.getsize(os.path.join(d, "e.2.chunk")) == 48 * KiB,
      "tail trim truncated the chunk file")

# A zero (NO_HOLE) also leaves a hole: zeros are stored as absence.
h.zero(16 * KiB, 2 * C, nbd.CMD_FLAG_NO_HOLE)
check(data_ranges()[0] == (2 * C + 32 * KiB, 2 * C + 48 * KiB),
      "after zero: %s" % data_ranges())

# Trimming the last data of a chunk removes its file: a missing chunk.
h.trim(C, 5 * C)
check("e.5.chunk" not in os.listdir(d), "empty chunk file removed")
check(data_ranges() == [(2 * C + 32 * KiB, 2 * C + 48 * KiB), want[2]],
      "after emptying chunk 5: %s" % data_ranges())

# REQ_ONE: the first extent only, which may be merged holes across many
# missing chunks, never beyond the first data.
e = extents(SIZE, 0, nbd.CMD_FLAG_REQ_ONE)
check(len(e) >= 1 and e[0] == (2 * C + 32 * KiB, HOLE),
      "REQ_ONE from 0: %s" % e)
e = extents(SIZE - (2 * C + 32 * KiB), 2 * C + 32 * KiB, nbd.CMD_FLAG_REQ_ONE)
check(e[0] == (16 * KiB, 0), "REQ_ONE at data: %s" % e)

# Unaligned queries: extents start at the offset asked for.
e = extents(C, 2 * C + 40 * KiB + 7)
check(e[0] == (8 * KiB - 7, 0) and sum(l for l, _ in e) >= C - 1,
      "unaligned query: %s" % e)

# Extents survive a restart (they come from the files).
h.shutdown()
srv.stop()
srv = Server(["sharded-file", "dir=" + d, "export=e"])
h = srv.connect()
check(data_ranges() == [(2 * C + 32 * KiB, 2 * C + 48 * KiB), want[2]],
      "after a restart: %s" % data_ranges())

# qemu-img map agrees.
qemu_img = shutil.which("qemu-img")
if qemu_img:
    p = subprocess.run([qemu_img, "map", "--output=json", "-f", "raw",
                        srv.uri()], capture_output=True, text=True)
    check(p.returncode == 0, "qemu-img map: %s" % p.stderr)
    m = [(x["start"], x["start"] + x["length"]) for x in json.loads(p.stdout)
         if x["data"]]
    check(m == [(2 * C + 32 * KiB, 2 * C + 48 * KiB), want[2]],
          "qemu-img map: %s" % m)
else:
    print("qemu-img map part skipped: no qemu-img (apt-get install qemu-utils)")
h.shutdown()
srv.stop()
print("ok")
