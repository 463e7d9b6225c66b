"""s3-object against Ceph's gateway: the randomized differential test of
sharded-file (test-sharded-file-differential.py), on s3-object.  A seeded
random sequence of writes (random data and
zeros), trims, zeros (plain, NO_HOLE, FAST_ZERO), flushes and reads, from
1 byte to 8 MiB, unaligned, often across chunk borders, over 4 connections
with several non-overlapping commands in flight at once, against
s3-object and against `nbdkit memory` of the same size.  Every read and
finally the whole image must match.  Run twice: 64K chunks and the default
4M chunks, on smaller volumes and fewer rounds than for sharded-file (the
gateway keeps its data in RAM; every sub-chunk write is an HTTP
read-modify-write).  SEED=n replays a sequence."""

import os
import random
import time

from differential import (compare_image, new_stats, restart_and_compare,
                          run_rounds, start_against_reference)
from s3_server import CephRGW, chunk_keys, need_s3_object_plugin
from shardkit_test import VALGRIND, check, seed_from_env

KiB = 1024
MiB = 1024 * KiB
CONNS = 4

need_s3_object_plugin()
seed = seed_from_env()
s3 = CephRGW()
# Rounds with 4M chunks cost more (every partial write moves 4 MiB
# twice over HTTP): fewer of them.  ROUNDS=n overrides both.
ROUNDS = int(os.environ.get("ROUNDS", 0)) or None


def run(chunk_arg, chunk, size, rounds):
    # Under valgrind everything is ~20x slower: fewer rounds, same shape.
    rounds = ROUNDS or (rounds // 5 if VALGRIND else rounds)
    t0 = time.monotonic()
    prefix = "diff-%d/" % chunk
    args = ["s3-object"] + s3.plugin_args(prefix=prefix) + [
        "export=diff", "size=%d" % size, "connections=8"]
    if chunk_arg:
        args.append("chunk-size=" + chunk_arg)
    sf, mem, sfh, memh = start_against_reference(args, size, CONNS)
    rng = random.Random("%d-%s" % (seed, chunk))
    stats = new_stats()

    run_rounds(sfh, memh, size, chunk, rng, rounds, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    # And after a restart (everything flushed), the same again.
    final = restart_and_compare(sf, sfh, mem, memh, args, size)
    # Sparse: an object exactly for every chunk that is not all zeros.
    objs = chunk_keys(s3.keys(prefix), "diff")
    nonzero = []
    for n in range((size + chunk - 1) // chunk):
        if any(final[n * chunk:(n + 1) * chunk]):
            nonzero.append(n)
    check(objs == nonzero, "chunk objects %s, non-zero chunks %s"
          % (objs, nonzero))
    s3.delete_prefix(prefix)
    print("chunk size %d: %s; %d chunk objects; %.1f s"
          % (chunk, stats, len(objs), time.monotonic() - t0), flush=True)


t0 = time.monotonic()
# Volume sizes that are not a multiple of the chunk size: the last chunk
# is short.
run("64K", 64 * KiB, 12 * MiB + 12345, 250)
run(None, 4 * MiB, 24 * MiB + 777, 80)
print("ok in %.1fs" % (time.monotonic() - t0))
