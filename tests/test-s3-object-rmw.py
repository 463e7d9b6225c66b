"""s3-object read-modify-write races, against Ceph's gateway: many small
unaligned writes (and some trims and zeros) into the same chunk, all in
flight at once over 4 connections, never overlapping one another.  A
write smaller than a chunk is a read-modify-write of the whole object:
without the chunk lock, two of them lose one another's bytes.  Every
byte must be there afterwards, through nbdkit, in the object itself and
after a restart of nbdkit."""

import random

import nbd

from s3_server import CephRGW, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, check, fail, seed_from_env

KiB = 1024
MiB = 1024 * KiB
CHUNK = MiB
SIZE = 16 * MiB
CONNS = 4

need_s3_object_plugin()
seed = seed_from_env()
rng = random.Random(seed)
s3 = CephRGW()
args = ["s3-object"] + s3.plugin_args(prefix="rmw/") + [
    "export=rmw", "size=%d" % SIZE, "chunk-size=1M", "connections=8"]
srv = Server(args)
hs = [srv.connect() for _ in range(CONNS)]
model = bytearray(SIZE)


def run_round(chunks, nops, trims):
    """NOPS disjoint operations inside CHUNKS, in flight together."""
    # Cut the chunks' span into NOPS disjoint random pieces.
    lo, hi = chunks[0] * CHUNK, (chunks[-1] + 1) * CHUNK
    cuts = sorted(rng.sample(range(lo + 1, hi), 2 * nops))
    pieces = [(cuts[i], cuts[i + 1] - cuts[i]) for i in range(0, len(cuts), 2)]
    rng.shuffle(pieces)
    cookies = []
    for i, (off, length) in enumerate(pieces):
        h = hs[i % CONNS]
        r = rng.random()
        if trims and r < 0.15:
            cookies.append((h, h.aio_trim(length, off), "trim", off, length))
            model[off:off + length] = bytes(length)
        elif trims and r < 0.25:
            cookies.append((h, h.aio_zero(length, off), "zero", off, length))
            model[off:off + length] = bytes(length)
        else:
            data = rng.randbytes(length)
            cookies.append((h, h.aio_pwrite(data, off), "write", off, length))
            model[off:off + length] = data
    for h in hs:
        while h.aio_in_flight() > 0:
            h.poll(-1)
    for h, ck, kind, off, length in cookies:
        try:
            h.aio_command_completed(ck)
        except nbd.Error as e:
            fail("%s [%d,+%d) failed: %s\n%s" % (kind, off, length, e,
                                                 srv.output()[-3000:]))
    got = hs[0].pread(hi - lo, lo)
    if got != bytes(model[lo:hi]):
        i = next(i for i in range(hi - lo) if got[i] != model[lo + i])
        owner = [p for p in pieces if p[0] <= lo + i < p[0] + p[1]]
        fail("chunks %s: byte %d differs (piece %s): a racing "
             "read-modify-write lost data" % (chunks, lo + i, owner))


# One chunk at a time, then pairs of neighbouring chunks (pieces that
# straddle the border), with and without trims/zeros among the writes.
for rnd in range(6):
    c = rng.randrange(SIZE // CHUNK)
    run_round([c], 48, trims=rnd % 2 == 1)
for rnd in range(4):
    c = rng.randrange(SIZE // CHUNK - 1)
    run_round([c, c + 1], 48, trims=rnd % 2 == 1)
# Tiny writes, 1 to 16 bytes each, many into one 4 KiB block.
base = 5 * CHUNK + 12345
cookies = []
pos = base
for i in range(64):
    n = rng.randint(1, 16)
    data = rng.randbytes(n)
    h = hs[i % CONNS]
    cookies.append(h.aio_pwrite(data, pos))
    model[pos:pos + n] = data
    pos += n + rng.randint(0, 3)
for h in hs:
    while h.aio_in_flight() > 0:
        h.poll(-1)
check(hs[1].pread(pos - base, base) == bytes(model[base:pos]),
      "64 tiny racing writes into one block")

# The whole disk, through nbdkit and straight from the objects.
for h in hs:
    h.flush()
check(hs[2].pread(SIZE, 0) == bytes(model), "whole disk")
keys = s3.keys("rmw/")
present = chunk_keys(keys, "rmw")
for n in range(SIZE // CHUNK):
    want = bytes(model[n * CHUNK:(n + 1) * CHUNK])
    if n in present:
        k = [k for k in keys if k.endswith("rmw.%d.chunk" % n)][0]
        obj = s3.get(k)
        check(obj == want[:len(obj)] and not any(want[len(obj):]),
              "object of chunk %d holds the chunk" % n)
    else:
        check(not any(want), "chunk %d has data but no object" % n)
for h in hs:
    h.shutdown()
srv.stop()
srv = Server(args)
h = srv.connect()
check(h.pread(SIZE, 0) == bytes(model), "whole disk after a restart")
h.shutdown()
srv.stop()
print("ok")
