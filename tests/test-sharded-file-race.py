"""sharded-file: no write is lost when writes, trims and zeros of the same
chunks race.  Four connections share every chunk: connection i owns the
16 KiB slots s with s % 4 == i, so each chunk (64 KiB) holds one slot of
each, and chunks often become empty (their file is removed) while
another connection writes into them.  Each connection keeps many commands in flight on its own slots
(writes of data and of zeros, trims, zeros, fast zeros, reads), so trims
that empty a chunk (and remove its file) race writes of the other
connections into the same chunk.  The final contents of every slot are
known exactly.  SEED=n replays."""

import random

import nbd

from shardkit_test import Server, VALGRIND, check, fail, seed_from_env, tmpdir

KiB = 1024
CHUNK = 64 * KiB
SLOT = 16 * KiB
CONNS = 4
SIZE = 64 * CHUNK
NSLOTS = SIZE // SLOT
INFLIGHT = 24
ROUNDS = 60 if VALGRIND else 800

seed = seed_from_env()
rng = random.Random(seed)

d = tmpdir()
srv = Server(["sharded-file", "dir=" + d, "export=race", "size=%d" % SIZE,
              "chunk-size=64K"])
hs = [srv.connect() for _ in range(CONNS)]
expect = bytearray(SIZE)
own = [[s for s in range(NSLOTS) if s % CONNS == c] for c in range(CONNS)]
counts = {}

for rnd in range(ROUNDS):
    pending = []
    for c, h in enumerate(hs):
        # Distinct slots per round: commands on one slot never overlap, so
        # each slot's final state is known whatever the server's order.
        for s in rng.sample(own[c], INFLIGHT):
            base = s * SLOT
            # Mostly whole slots; sometimes a piece of one.
            if rng.random() < 0.7:
                off, length = base, SLOT
            else:
                a = rng.randrange(SLOT)
                b = rng.randrange(a + 1, SLOT + 1)
                off, length = base + a, b - a
            r = rng.random()
            fua = nbd.CMD_FLAG_FUA if rng.random() < 0.05 else 0
            if r < 0.30:
                kind = "write"
                data = rng.randbytes(length)
                ck = h.aio_pwrite(data, off, flags=fua)
                expect[off:off + length] = data
            elif r < 0.35:
                kind = "write-zeros"
                ck = h.aio_pwrite(bytes(length), off, flags=fua)
                expect[off:off + length] = bytes(length)
            elif r < 0.70:
                kind = "trim"
                ck = h.aio_trim(length, off, flags=fua)
                expect[off:off + length] = bytes(length)
            elif r < 0.85:
                kind = "zero"
                flags = fua | (nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0)
                ck = h.aio_zero(length, off, flags=flags)
                expect[off:off + length] = bytes(length)
            elif r < 0.90:
                kind = "zero-fast"
                ck = h.aio_zero(length, off, flags=fua | nbd.CMD_FLAG_FAST_ZERO)
                expect[off:off + length] = bytes(length)
            else:
                kind = "read"
                buf = nbd.Buffer(length)
                ck = h.aio_pread(buf, off)
                pending.append((h, ck, kind, off, length,
                                (buf, bytes(expect[off:off + length]))))
                counts[kind] = counts.get(kind, 0) + 1
                continue
            counts[kind] = counts.get(kind, 0) + 1
            pending.append((h, ck, kind, off, length, None))
    for h in hs:
        while h.aio_in_flight() > 0:
            h.poll(-1)
    for h, ck, kind, off, length, rd in pending:
        try:
            h.aio_command_completed(ck)
        except nbd.Error as e:
            fail("round %d: %s [%d,+%d) failed: %s\n%s"
                 % (rnd, kind, off, length, e, srv.output()[-3000:]))
        if rd is not None:
            buf, want = rd
            if bytes(buf.to_bytearray()) != want:
                fail("round %d: read of slot %d (chunk %d) during the race "
                     "returned wrong data" % (rnd, off // SLOT, off // CHUNK))
    # Now and then, a flush from one connection while nothing else runs.
    if rnd % 10 == 9:
        hs[rnd % CONNS].flush()


def check_all(h, when):
    got = h.pread(SIZE, 0)
    for s in range(NSLOTS):
        a = got[s * SLOT:(s + 1) * SLOT]
        if a != expect[s * SLOT:(s + 1) * SLOT]:
            fail("%s: slot %d (connection %d, chunk %d) lost a write"
                 % (when, s, s % CONNS, s * SLOT // CHUNK))


for h in hs:
    check_all(h, "after the race")
for h in hs:
    h.shutdown()
srv.stop()

# What is on disk is what was acknowledged.
srv = Server(["sharded-file", "dir=" + d, "export=race"])
h = srv.connect()
check_all(h, "after a restart")
h.shutdown()
srv.stop()
print("%d rounds: %s" % (ROUNDS, counts))
check(counts.get("trim", 0) > 0 and counts.get("write", 0) > 0, "mix")
print("ok")
