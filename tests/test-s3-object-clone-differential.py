"""Clones of a snapshot in a bucket of Ceph's gateway, served by
s3-object: a seeded random sequence of writes, trims, zeros, flushes
and reads over 4 connections to a clone, against `nbdkit memory` loaded
with the snapshot's data (trims and zeros over the snapshot's chunks
read as zeros afterwards, never the snapshot's bytes); the same through
a chain (a clone of a snapshot of a clone); then 20 clones of one
snapshot served at once beside the snapshot itself, each checked
(tests/clone_test.py).  SEED=n replays."""

import time

from clone_test import KiB, MiB, BucketStore, differential, many_clones
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import VALGRIND, seed_from_env

need_s3_object_plugin()
s3 = CephRGW()
seed = seed_from_env()
ROUNDS = 40 if VALGRIND else 150

t0 = time.monotonic()
differential(BucketStore(s3, "a"), seed, ROUNDS, "64K", 64 * KiB,
             24 * MiB + 12345)
differential(BucketStore(s3, "b"), seed, ROUNDS, "1M", MiB, 20 * MiB + 777)
differential(BucketStore(s3, "c"), seed, ROUNDS // 2, "64K", 64 * KiB,
             8 * MiB + 99, chain=True)
many_clones(BucketStore(s3, "d"), seed, 5 if VALGRIND else 20,
            size=3 * MiB + 4321, chunk=64 * KiB)
print("ok in %.1fs" % (time.monotonic() - t0))
