"""sharded-file: a seeded random sequence of writes (random data and
zeros), trims, zeros (plain, NO_HOLE, FAST_ZERO), flushes and reads, from
1 byte to 8 MiB, unaligned, often across chunk borders, over 4 connections
with several non-overlapping commands in flight at once, against
sharded-file and against `nbdkit memory` of the same size.  Every read and
finally the whole image must match.  Run twice: 64K chunks and the default
4M chunks.  SEED=n replays a sequence."""

import os
import random
import time

from differential import (compare_image, new_stats, restart_and_compare,
                          run_rounds, start_against_reference)
from shardkit_test import VALGRIND, seed_from_env, tmpdir

KiB = 1024
MiB = 1024 * KiB
CONNS = 4

seed = seed_from_env()
# Under valgrind everything is ~20x slower: fewer rounds, same shape.
ROUNDS = 80 if VALGRIND else 450


def run(chunk_arg, chunk, size, extra=(), rounds=ROUNDS):
    d = tmpdir()
    args = ["sharded-file", "dir=" + d, "export=diff", "size=%d" % size]
    args += list(extra)
    if chunk_arg:
        args.append("chunk-size=" + chunk_arg)
    sf, mem, sfh, memh = start_against_reference(args, size, CONNS)
    rng = random.Random("%d-%s" % (seed, chunk))
    stats = new_stats()

    run_rounds(sfh, memh, size, chunk, rng, rounds, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    # And after a restart (everything flushed), the same again.
    restart_and_compare(sf, sfh, mem, memh, args, size)
    nchunks = len([f for f in os.listdir(d) if f.endswith(".chunk")])
    print("chunk size %d %s: %s; %d chunk files" % (chunk, " ".join(extra),
                                                    stats, nchunks),
          flush=True)


t0 = time.monotonic()
# Volume sizes that are not a multiple of the chunk size: the last chunk
# is short.
run("64K", 64 * KiB, 40 * MiB + 12345)
run(None, 4 * MiB, 48 * MiB + 777)
# Two open files at most: every request evicts descriptors (dirty ones
# are synced before they are closed).
run("64K", 64 * KiB, 24 * MiB + 4097, ["max-open-files=2"], ROUNDS // 3)
print("ok in %.1fs" % (time.monotonic() - t0))
