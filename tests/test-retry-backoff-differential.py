"""retry-backoff: a seeded random mix of unaligned writes (some with FUA),
zeroes, trims, flushes, reads, block status and cache requests against
nbdkit memory with nbdkit's error filter injecting EIO into 10% (default
retries=) and then 30% of the requests below retry-backoff, then into 10%
of one operation kind at a time (error-pread=, error-pwrite=, error-trim=,
error-zero=, error-extents=, error-cache=: nbdkit 1.32's error filter
cannot fail flushes), with a mix weighted towards that kind.  The client must see no error at
all, and every read must match a local model of the disk.  A second phase
keeps 16 requests in flight, so that retries and reopens happen while
other requests of the same connection are running."""

import os
import random
import re

import nbd

from shardkit_test import (Server, check, fail, retry_summaries, seed_from_env,
                           stop_after_summary)


SIZE = 4 * 1024 * 1024
OPS = 1500

seed = seed_from_env()


# Operation kinds of the error filter, and this test's name for each.
KINDS = {"pread": "read", "pwrite": "write", "trim": "trim", "zero": "zero",
         "extents": "extents", "cache": "cache"}


def run(rate, retries=None, kind=None):
    rng = random.Random("%d-%s-%s" % (seed, rate, kind))
    errors = (["error-%s=EIO" % kind, "error-%s-rate=%s" % (kind, rate)]
              if kind else ["error-rate=%s" % rate, "error=EIO"])
    what = "%s of %s" % (rate, kind or "all requests")
    # Fast backoff: the test is about correctness, not waiting.
    srv = Server(["--filter=retry-backoff", "--filter=error",
                  "memory", "size=%d" % SIZE] + errors + [
                  "retry-delay=1ms", "retry-max-delay=10ms"] +
                 (["retries=%d" % retries] if retries else []))
    h = srv.connect()
    model = bytearray(SIZE)
    counts = {}

    def rand_range(maxlen):
        length = rng.randint(1, maxlen)
        off = rng.randrange(0, SIZE - length + 1)
        return off, length

    ops = ["write", "zero", "trim", "flush", "read", "extents", "cache"]
    weights = [30, 10, 8, 5, 35, 7, 5]
    if kind:        # at least a third of the requests are of that kind
        weights[ops.index(KINDS[kind])] = 50
    for i in range(OPS):
        op = rng.choices(ops, weights)[0]
        counts[op] = counts.get(op, 0) + 1
        try:
            if op == "write":
                off, n = rand_range(65536)
                data = rng.randbytes(n)
                flags = nbd.CMD_FLAG_FUA if rng.random() < 0.3 else 0
                h.pwrite(data, off, flags)
                model[off:off + n] = data
            elif op == "zero":
                off, n = rand_range(200000)
                flags = nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0
                h.zero(n, off, flags)
                model[off:off + n] = bytes(n)
            elif op == "trim":
                # memory's trim zeroes (it punches holes), so the model can
                # follow it exactly.
                off, n = rand_range(200000)
                h.trim(n, off)
                model[off:off + n] = bytes(n)
            elif op == "flush":
                h.flush()
            elif op == "read":
                off, n = rand_range(65536)
                got = h.pread(n, off)
                if got != model[off:off + n]:
                    fail("op %d: read of %d bytes at %d differs from the "
                         "model (seed %d, %s)" % (i, n, off, seed, what))
            elif op == "extents":
                off, n = rand_range(1 << 20)
                ext = []
                h.block_status(n, off,
                               lambda m, o, e, err: ext.extend(e) or 0)
                check(sum(ext[0::2]) >= 1, "extents returned nothing")
                # A hole must read as zeros in the model.
                pos = off
                for length, flags in zip(ext[0::2], ext[1::2]):
                    end = min(pos + length, off + n)
                    if flags & nbd.STATE_ZERO and \
                            any(model[pos:end]):
                        fail("op %d: extents say zero at %d+%d but the "
                             "model has data" % (i, pos, end - pos))
                    pos += length
                    if pos >= off + n:
                        break
            elif op == "cache":
                off, n = rand_range(1 << 20)
                h.cache(n, off)
        except nbd.Error as e:
            fail("op %d (%s) failed, visible to the client: %s "
                 "(seed %d, %s)" % (i, op, e, seed, what))

    # Everything, once more, at the end.
    check(h.pread(SIZE, 0) == model, "final full read differs from model")

    # Phase 2: 16 requests in flight on disjoint 64 KiB slots.
    slots = SIZE // 65536
    pending = []
    expect = {}
    for r in range(4):
        order = list(range(slots))
        rng.shuffle(order)
        for s in order:
            data = rng.randbytes(65536)
            expect[s] = data
            while h.aio_in_flight() >= 16:
                h.poll(-1)
            pending.append(h.aio_pwrite(data, s * 65536))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c in pending:
            try:
                h.aio_command_completed(c)
            except nbd.Error as e:
                fail("parallel write failed, visible to the client: %s "
                     "(seed %d, %s)" % (e, seed, what))
        pending = []
    bufs = []
    for s in range(slots):
        b = nbd.Buffer(65536)
        while h.aio_in_flight() >= 16:
            h.poll(-1)
        bufs.append((s, b, h.aio_pread(b, s * 65536)))
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for s, b, c in bufs:
        try:
            h.aio_command_completed(c)
        except nbd.Error as e:
            fail("parallel read failed: %s (seed %d, rate %s)"
                 % (e, seed, what))
        check(b.to_bytearray() == expect[s],
              "parallel slot %d differs (seed %d, %s)" % (s, seed, what))

    stop_after_summary(srv, h)
    out = srv.output()
    into = re.findall(r"error: injecting EIO error into (\w+)", out)
    injected = len(into)
    summaries = retry_summaries(out)
    check(summaries, "no connection summary in the log")
    (retried, nretries, recovered, gave_up, reopens, _), = summaries
    print("%s: ops %s; %d errors injected, %d requests retried, "
          "%d retries, %d recovered, %d gave up, %d reopens"
          % (what, counts, injected, retried, nretries, recovered, gave_up,
             reopens), flush=True)
    check(injected > 0, "the error filter injected nothing")
    check(not kind or set(into) == {kind},
          "%s: errors injected into %s" % (what, sorted(set(into))))
    check(gave_up == 0, "%d requests gave up" % gave_up)
    check(recovered == retried, "recovered %d != retried %d"
          % (recovered, retried))
    # Every injected error was retried (each costs one retry).
    check(nretries == injected, "retries %d != injected errors %d"
          % (nretries, injected))


# With the default retries=8 a request fails only when 8 attempts in a
# row fail: 0.1^8 per request at 10%.  At 30% that is 7e-5, too often for
# a test of thousands of requests, so allow 21 attempts there
# (0.3^21 = 1e-11).
run("10%")
run("30%", 21)
for k in KINDS:
    run("10%", kind=k)
print("ok")
