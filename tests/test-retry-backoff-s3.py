"""retry-backoff over s3-object: Ceph's S3 gateway is killed in the middle
of a stream of writes and started again.  The stream completes with no
error visible to the client, and every byte reads back, through this
server and through a fresh one.

Two outages: 3 s, which the plugin's own retries (about 3-4 s of backoff)
may ride out alone, and 10 s, which they cannot: there the plugin's
failures reach retry-backoff, and its summary must show the requests it
recovered.  (The plugin's own retries are http-retries=.)"""

import hashlib
import re
import time

import nbd

from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import (Server, check, fail, retry_summary, seed_from_env,
                           stop_after_summary)

KiB = 1024
CHUNK = 64 * KiB
WRITE = 16 * KiB
SIZE = 128 * CHUNK                   # 8 MiB: 512 writes of 16 KiB
N = SIZE // WRITE
QD = 4

need_s3_object_plugin()
seed = seed_from_env()
s3 = CephRGW()


def content(run, i):
    d = hashlib.sha256(b"%d-%s-%d" % (seed, run.encode(), i)).digest()
    return d * (WRITE // len(d))


def run(name, outage_s):
    args = ["--filter=retry-backoff", "s3-object"] + \
        s3.plugin_args(prefix=name + "/") + [
            "export=rb", "size=%d" % SIZE, "chunk-size=64K",
            "connections=4", "timeout=2",
            # Short delays so that the stream resumes soon after the
            # gateway; the deadline leaves room for its start-up.
            "retry-delay=50ms", "retry-max-delay=500ms",
            "retry-deadline=60s"]
    srv = Server(args)
    h = srv.connect()

    # One thread drives both the stream (asynchronous writes, QD in
    # flight) and the outage: a thread blocked in a synchronous libnbd
    # call can hold Python's lock for as long as the filter retries.
    submitted = {}                   # write number -> submit time
    done = []
    failed = []
    slowest = [0.0]
    outage = {}

    def completion(i):
        def cb(err):
            slowest[0] = max(slowest[0], time.monotonic() - submitted.pop(i))
            if err.value:
                failed.append((i, err.value))
            done.append(i)
            return 1
        return cb

    t0 = time.monotonic()
    nxt = 0
    while len(done) < N:
        while h.aio_in_flight() < QD and nxt < N:
            submitted[nxt] = time.monotonic()
            # Every 8th write with FUA: those reach S3 before the reply.
            h.aio_pwrite(content(name, nxt), nxt * WRITE,
                         completion=completion(nxt),
                         flags=nbd.CMD_FLAG_FUA if nxt % 8 == 0 else 0)
            nxt += 1
        h.poll(50)
        now = time.monotonic()
        if "t0" not in outage and len(done) >= N // 4:
            outage["at"] = len(done)
            s3.stop_gateway(kill=True)
            outage["t0"] = time.monotonic()
        elif "t0" in outage and "t1" not in outage and \
                now - outage["t0"] >= outage_s:
            outage["t1"] = now
            outage["during"] = len(done) - outage["at"]
            s3.start_gateway()
            outage["t2"] = time.monotonic()
        if failed:
            fail("%s: write %d of %d failed, visible to the client: errno "
                 "%d\n%s" % (name, failed[0][0], N, failed[0][1],
                             srv.output()[-3000:]))
    h.flush()
    elapsed = time.monotonic() - t0
    check("t1" in outage, "the gateway was not restarted")
    print("%s: %d writes of %d KiB, %d in flight, in %.1fs; gateway killed "
          "after %d writes, down %.1fs (%d writes completed meanwhile), "
          "%.1fs to start again; slowest write %.2fs"
          % (name, N, WRITE // KiB, QD, elapsed, outage["at"],
             outage["t1"] - outage["t0"], outage["during"],
             outage["t2"] - outage["t1"], slowest[0]), flush=True)
    # The stream was in the middle when the gateway went: writes waited
    # through the outage.
    check(outage["at"] < N, "the stream had ended before the outage")
    check(slowest[0] >= outage_s * 0.9,
          "no write waited through the outage (slowest %.2fs)" % slowest[0])

    expect = b"".join(content(name, i) for i in range(N))
    check(h.pread(SIZE, 0) == expect, "%s: data read back differs" % name)
    stop_after_summary(srv, h)
    out = srv.output()
    s = retry_summary(out)[:5]      # the failed reopens are not printed
    errnos = sorted(set(re.findall(r"retry-backoff: \w+ offset=\d+ "
                                   r"count=\d+ failed: (\w+);", out)))
    print("%s: retry-backoff: %d requests retried, %d retries, %d recovered, "
          "%d gave up, %d reopens; errnos retried: %s"
          % ((name,) + s + (errnos,)), flush=True)
    check(s[3] == 0 and s[2] == s[0], "%s: summary %s" % (name, s))

    # A fresh server (no state from the first) reads the same bytes.
    srv = Server(args)
    h = srv.connect()
    check(h.pread(SIZE, 0) == expect,
          "%s: data differs through a fresh nbdkit" % name)
    h.shutdown()
    srv.stop()
    return s


run("outage3s", 3.0)
s = run("outage10s", 10.0)
check(s[0] >= 1, "a 10 s outage, and retry-backoff recovered nothing: the "
      "plugin's own retries should have given up")
print("ok")
