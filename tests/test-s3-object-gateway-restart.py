"""s3-object while the S3 server goes away in the middle of I/O: 4
connections write and read 16 KiB slots (four slots per 64K chunk, the
slots of one chunk owned by different connections, so every write is a
read-modify-write racing others), while Ceph's gateway is killed
(SIGKILL), stopped (SIGTERM) and started again.  Requests may fail or
succeed, none may hang; every slot afterwards holds either its last
acknowledged write or one of the writes that failed after it, never
anything else; and the volume works normally once the gateway is back,
also after a restart of nbdkit.  Run twice: with the plugin's default
retries (the outages are short enough to be ridden out) and with
http-retries=0 (requests fail while the gateway is away)."""

import hashlib
import random
import threading
import time

import nbd

from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, VALGRIND, check, fail, seed_from_env

KiB = 1024
CHUNK = 64 * KiB
SLOT = 16 * KiB
NCHUNKS = 32
SIZE = NCHUNKS * CHUNK
NSLOTS = SIZE // SLOT
CONNS = 4
OP_LIMIT = 180 if VALGRIND else 60      # seconds one request may take

need_s3_object_plugin()
seed = seed_from_env()
s3 = CephRGW()


def content(t, slot, seq):
    """What write SEQ of connection T puts in SLOT; every 8th is zeros."""
    if seq % 8 == 7:
        return bytes(SLOT)
    d = hashlib.sha256(b"%d-%d-%d-%d" % (seed, t, slot, seq)).digest()
    return d * (SLOT // len(d))


def run(prefix, extra):
    args = ["s3-object"] + s3.plugin_args(prefix=prefix) + [
        "export=gw", "size=%d" % SIZE, "chunk-size=64K",
        "connections=4"] + extra
    srv = Server(args)
    # Slot s belongs to connection s % CONNS: every chunk has one of each.
    acked = {s: None for s in range(NSLOTS)}    # seq of last good write
    doubt = {s: [] for s in range(NSLOTS)}      # failed writes since then
    stats = {"write ok": 0, "write failed": 0, "read ok": 0,
             "read failed": 0}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def candidates(t, s):
        c = [bytes(SLOT) if acked[s] is None else content(t, s, acked[s])]
        c += [content(t, s, q) for q in doubt[s]]
        return c

    def check_slot(t, s, got, when):
        if got not in candidates(t, s):
            errors.append("%s: slot %d (conn %d) holds data that was never "
                          "written there (acked %s, in doubt %s)"
                          % (when, s, t, acked[s], doubt[s]))

    def worker(t, h):
        rng = random.Random(seed * 10 + t)
        mine = [s for s in range(NSLOTS) if s % CONNS == t]
        seq = 0
        while not stop.is_set() and not errors:
            s = rng.choice(mine)
            failed = False
            if rng.random() < 0.7:
                seq += 1
                t0 = time.monotonic()
                try:
                    h.pwrite(content(t, s, seq), s * SLOT)
                    ok = True
                except nbd.Error:
                    ok = False
                    failed = True
                took = time.monotonic() - t0
                with lock:
                    if ok:
                        acked[s], doubt[s] = seq, []
                        stats["write ok"] += 1
                    else:
                        doubt[s].append(seq)
                        stats["write failed"] += 1
            else:
                t0 = time.monotonic()
                try:
                    got = h.pread(SLOT, s * SLOT)
                except nbd.Error:
                    got = None
                    failed = True
                took = time.monotonic() - t0
                with lock:
                    if got is None:
                        stats["read failed"] += 1
                    else:
                        stats["read ok"] += 1
                        check_slot(t, s, got, "read during I/O")
            if took > OP_LIMIT:
                errors.append("a request took %.0f s (hung?)" % took)
            if failed:
                time.sleep(0.01)        # do not spin on failures

    hs = [srv.connect() for _ in range(CONNS)]
    threads = [threading.Thread(target=worker, args=(t, hs[t]))
               for t in range(CONNS)]
    for th in threads:
        th.start()

    def phase(what, seconds):
        time.sleep(seconds)
        with lock:
            print("  %-26s %s" % (what, stats), flush=True)

    print("%s:" % (" ".join(extra) or "default retries"), flush=True)
    phase("before", 1.0)
    s3.stop_gateway(kill=True)
    phase("gateway killed", 2.0)
    s3.start_gateway()
    phase("gateway restarted", 1.5)
    s3.stop_gateway(kill=False)
    phase("gateway stopped", 2.0)
    s3.start_gateway()
    phase("gateway started", 1.5)
    stop.set()
    for th in threads:
        th.join(OP_LIMIT * 2)
        check(not th.is_alive(), "a worker hangs")
    if errors:
        fail("\n".join(errors[:10]) + "\n" + srv.output()[-4000:])
    check(stats["write ok"] > 20, "writes succeeded: %s" % stats)

    def verify(h, when):
        data = h.pread(SIZE, 0)
        for s in range(NSLOTS):
            check_slot(s % CONNS, s, data[s * SLOT:(s + 1) * SLOT], when)
        if errors:
            fail("\n".join(errors[:10]))

    verify(hs[0], "after the restarts")

    # The volume works: every slot written (no failure allowed now), read
    # back, also through a fresh nbdkit.
    for s in range(NSLOTS):
        t = s % CONNS
        try:
            hs[t].pwrite(content(t, s, 1000), s * SLOT)
        except nbd.Error as e:
            fail("write after the gateway came back failed: %s\n%s"
                 % (e, srv.output()[-3000:]))
        acked[s], doubt[s] = 1000, []
    for h in hs:
        h.flush()
    verify(hs[1], "after rewriting every slot")
    for h in hs:
        h.shutdown()
    srv.stop()
    srv = Server(args)
    h = srv.connect()
    verify(h, "after a restart of nbdkit")
    h.shutdown()
    srv.stop()
    return stats


stats = run("gw1/", [])
print("ok", stats, flush=True)
stats = run("gw0/", ["http-retries=0", "timeout=2"])
check(stats["write failed"] + stats["read failed"] > 0,
      "with http-retries=0 some requests failed while the gateway was away")
print("ok", stats)
