"""Clones of a snapshot in a directory, served: a seeded random
sequence of writes, trims, zeros, flushes and reads (tests/differential.py)
over 4 connections to a clone, against `nbdkit memory` loaded with the
snapshot's data; trims and zeros over the snapshot's chunks must read
as zeros afterwards, never as the snapshot's bytes; the same through a
chain (a clone of a snapshot of a clone).  Then 20 clones of the one
snapshot (5 under valgrind), served at once by as many servers beside
the snapshot itself, each written in its own pattern and checked, and
the snapshot unchanged (tests/clone_test.py).  SEED=n replays."""

import time

from clone_test import KiB, MiB, DirStore, differential, many_clones
from shardkit_test import VALGRIND, seed_from_env, tmpdir

seed = seed_from_env()
ROUNDS = 60 if VALGRIND else 300

t0 = time.monotonic()
differential(DirStore(tmpdir()), seed, ROUNDS, "64K", 64 * KiB,
             40 * MiB + 12345)
differential(DirStore(tmpdir()), seed, ROUNDS, "4M", 4 * MiB, 48 * MiB + 777)
differential(DirStore(tmpdir()), seed, ROUNDS // 2, "64K", 64 * KiB,
             12 * MiB + 99, chain=True)
many_clones(DirStore(tmpdir()), seed, 5 if VALGRIND else 20)
print("ok in %.1fs" % (time.monotonic() - t0))
