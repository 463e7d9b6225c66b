"""The snapshot and clone tests shared by both stores (directories and
buckets): a seeded differential through a clone of a snapshot over 4
connections against `nbdkit memory` loaded with the snapshot's data
plus the clone's writes; many clones of one snapshot served at once;
rollback, flatten and deleting snapshots with the volume tool.  A
Store says where volumes live: the plugin arguments that serve NAME,
and the volume tool's WHERE (and keyword arguments)."""

import hashlib
import json
import random

from differential import (compare_image, new_stats, restart_and_compare,
                          run_rounds, start_against_reference)
from shardkit_test import Server, check
from tool_test import MiB, ok, refused

KiB = 1024
CONNS = 4


class DirStore:
    def __init__(self, d):
        self.where, self.kw = d, {}

    def args(self, name):
        return ["sharded-file", "dir=" + self.where, "export=" + name]


class BucketStore:
    def __init__(self, s3, prefix):
        self.s3, self.prefix = s3, prefix
        self.where = "s3://%s/%s" % (s3.bucket, prefix)
        self.kw = {"s3": s3}

    def args(self, name):
        return (["s3-object"] + self.s3.plugin_args(prefix=self.prefix) +
                ["export=" + name])


def tool(store, *a):
    return ok(a[0], store.where, *a[1:], **store.kw)


def read_image(store, name, size):
    srv = Server(store.args(name), readonly=True)
    h = srv.connect()
    got = b"".join(h.pread(min(8 * MiB, size - o), o)
                   for o in range(0, size, 8 * MiB))
    h.shutdown()
    srv.stop()
    return got


def fill_base(store, name, size, chunk, rng):
    """Write every other chunk of NAME with random data, some of them
    partly, and return the image."""
    srv = Server(store.args(name))
    h = srv.connect()
    image = bytearray(size)
    for n in range(0, (size + chunk - 1) // chunk, 2):
        off = n * chunk
        length = min(chunk, size - off)
        if n % 6 == 4:
            length = min(length, chunk // 3)
        data = rng.randbytes(length)
        h.pwrite(data, off)
        image[off:off + length] = data
    h.flush()
    h.shutdown()
    srv.stop()
    return bytes(image)


def differential(store, seed, rounds, chunk_arg, chunk, size, chain=False):
    """A clone of a snapshot of a volume; with CHAIN, the clone of a
    snapshot of a clone of it (two bases below the served volume)."""
    rng = random.Random("%d-%d-%s" % (seed, chunk, chain))
    tool(store, "create", "vol", str(size), "--chunk-size=" + chunk_arg)
    image = fill_base(store, "vol", size, chunk, rng)
    tool(store, "snapshot", "vol", "snap")
    top = "c"
    tool(store, "clone", "snap", top)
    if chain:
        # c writes a pattern of its own, is snapshotted, and cloned.
        srv = Server(store.args("c"))
        h = srv.connect()
        img = bytearray(image)
        for off in range(chunk // 2, size, 3 * chunk):
            data = rng.randbytes(min(chunk, size - off))
            h.pwrite(data, off)
            img[off:off + len(data)] = data
        h.trim(min(2 * chunk, size - chunk), chunk)
        img[chunk:chunk + min(2 * chunk, size - chunk)] = \
            bytes(min(2 * chunk, size - chunk))
        h.flush()
        h.shutdown()
        srv.stop()
        tool(store, "snapshot", "c", "csnap")
        tool(store, "clone", "csnap", "cc")
        image, top = bytes(img), "cc"

    args = store.args(top)
    sf, mem, sfh, memh = start_against_reference(args, size, CONNS)
    for off in range(0, size, 8 * MiB):
        memh.pwrite(image[off:off + 8 * MiB], off)
    compare_image(sfh, memh, size, chunk)
    stats = new_stats()
    run_rounds(sfh, memh, size, chunk, rng, rounds, stats, sf.output)
    compare_image(sfh, memh, size, chunk)
    restart_and_compare(sf, sfh, mem, memh, args, size)
    sf.stop()
    mem.stop()

    # The snapshots never saw the clone's writes.
    check(read_image(store, "csnap" if chain else "snap", size) == image,
          "the snapshot is unchanged by the clone's writes")
    print("chunk size %d%s: %s" % (chunk, ", chain" if chain else "", stats),
          flush=True)


def many_clones(store, seed, n_clones, size=6 * MiB + 4321,
                chunk=256 * KiB):
    rng = random.Random("%d-many" % seed)
    tool(store, "create", "vol", str(size), "--chunk-size=%d" % chunk)
    image = fill_base(store, "vol", size, chunk, rng)
    tool(store, "snapshot", "vol", "snap")
    names = ["c%d" % i for i in range(n_clones)]
    for name in names:
        tool(store, "clone", "snap", name)
    servers = [Server(store.args(name)) for name in names]
    # The snapshot itself served alongside, read-only.
    snap_srv = Server(store.args("snap"), readonly=True)
    handles = [s.connect() for s in servers]
    wants = []
    for i, h in enumerate(handles):
        want = bytearray(image)
        for _ in range(20):
            off = rng.randrange(size)
            length = min(rng.randrange(1, 3 * chunk), size - off)
            if rng.random() < 0.3:
                h.trim(length, off) if rng.random() < 0.5 else \
                    h.zero(length, off)
                want[off:off + length] = bytes(length)
            else:
                data = bytes([0x30 + i]) * length
                h.pwrite(data, off)
                want[off:off + length] = data
        wants.append(bytes(want))
    for i, h in enumerate(handles):
        h.flush()
        check(h.pread(size, 0) == wants[i], "clone %s reads its own writes"
              % names[i])
    sh = snap_srv.connect()
    check(sh.pread(size, 0) == image, "the snapshot is unchanged")
    sh.shutdown()
    snap_srv.stop()
    for h, s in zip(handles, servers):
        h.shutdown()
        s.stop()
    check(len(set(hashlib.sha256(w).digest() for w in wants)) == n_clones,
          "each clone differs")
    print("%d clones served at once: ok" % n_clones, flush=True)


def write(store, name, ops):
    """Apply OPS, ("w", offset, data) or ("t", offset, length), to NAME."""
    srv = Server(store.args(name))
    h = srv.connect()
    for op, off, arg in ops:
        if op == "w":
            h.pwrite(arg, off)
        else:
            h.trim(arg, off)
    h.flush()
    h.shutdown()
    srv.stop()


def image(store, name, size=4 * MiB):
    return read_image(store, name, size)


def rollback_flatten(store, files):
    """shardkit rollback and flatten, and deleting snapshots, on STORE;
    FILES() names the files or objects there (without any prefix)."""
    tool(store, "create", "vm", "4M", "--chunk-size=1M")
    write(store, "vm", [("w", 0, b"a" * (2 * MiB)),
                        ("w", 3 * MiB, b"z" * 4096)])
    img0 = image(store, "vm")
    tool(store, "snapshot", "vm", "s1")
    write(store, "vm", [("w", 10, b"b" * 100), ("t", MiB, MiB),
                        ("w", 2 * MiB, b"c" * 9)])
    check(image(store, "vm") != img0, "vm changed")

    # Figures: each chunk file counts once, for the volume that reads it
    # as its own: s1 the 3 chunks of the frozen generation, vm the 3 of
    # its new one (chunk 0 copied up, chunk 1 a whiteout, chunk 2), also
    # when asked about one volume alone.
    figures = {v["name"]: v
               for v in json.loads(tool(store, "list", "--json").out)}
    check(figures["s1"]["chunks"] == 3 and figures["vm"]["chunks"] == 3,
          "list: s1 %d chunks, vm %d (want 3 and 3)"
          % (figures["s1"]["chunks"], figures["vm"]["chunks"]))
    for name in ("s1", "vm"):
        one = json.loads(tool(store, "info", name, "--json").out)
        check(one["chunks"] == 3 and
              one["stored"] == figures[name]["stored"],
              "info %s: %d chunks, %d stored (list says %d and %d)"
              % (name, one["chunks"], one["stored"], figures[name]["chunks"],
                 figures[name]["stored"]))
    tool(store, "snapshot", "vm", "s2")
    write(store, "vm", [("w", 0, b"d" * MiB)])
    img_s2 = image(store, "s2")

    refused("rollback", store.where, "vm", "s1", **store.kw,
            want="latest snapshot 's2' only")
    refused("rollback", store.where, "s1", "s2", **store.kw,
            want="is a snapshot")
    r = tool(store, "rollback", "vm", "s2")
    check("1 chunk dropped" in r.out, "rollback output: %r" % r)
    check(image(store, "vm") == img_s2,
          "vm reads s2's data after the rollback")
    check(not any(f.startswith("vm@2.") for f in files()),
          "the dropped generation's chunks are gone: %s" % files())
    check(image(store, "s1") == img0, "s1 untouched")
    write(store, "vm", [("w", 5, b"e" * 5)])
    check(image(store, "vm")[5:10] == b"eeeee", "vm writes after a rollback")

    # A clone of s1, written, then flattened: it no longer needs s1.
    tool(store, "clone", "s1", "c")
    write(store, "c", [("w", 3 * MiB + 100, b"f" * 10), ("t", 0, 4096)])
    img_c = image(store, "c")
    r = tool(store, "flatten", "c")
    check("no base" in r.out, "flatten output: %r" % r)
    check(image(store, "c") == img_c,
          "the clone reads the same after flatten")
    j = tool(store, "info", "c", "--json").json()
    check(j["base"] is None, "no base after flatten: %s" % j)
    refused("flatten", store.where, "c", **store.kw,
            want="has no base")
    refused("flatten", store.where, "s1", **store.kw,
            want="is a snapshot")

    # vm flattened too: then s2, s1 can go (chunks and all), newest first.
    tool(store, "flatten", "vm")
    img_vm = image(store, "vm")
    refused("delete", store.where, "s1", **store.kw,
            want="s2 (base)")
    tool(store, "delete", "s2")
    tool(store, "delete", "s1")
    left = sorted(f for f in files() if f.endswith(".chunk"))
    check(all(f.startswith("c.") or f.startswith("vm@3.") for f in left),
          "only the volumes' own chunks are left: %s" % left)
    check(image(store, "c") == img_c and image(store, "vm") == img_vm,
          "both read the same after the snapshots are gone")
    tool(store, "check", "c")
    tool(store, "check", "vm")
