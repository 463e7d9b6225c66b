"""retry-backoff: retry-deadline bounds a failing request even while other
requests of the connection are slow.  A read takes 2 s (nbdkit's delay
filter); meanwhile every write fails (error filter) and reopen-after=1
wants a reopen, which must wait for the read in flight.  The write must
end with its error within retry-deadline=0.5s (+10%, plus scheduling
slack), not when the slow read lets go of the plugin context; and the
read still succeeds."""

import time

import nbd

from shardkit_test import VALGRIND, Server, check

DEADLINE = 0.5
SLACK = 2.0 if VALGRIND else 0.25

srv = Server(["--filter=retry-backoff", "--filter=delay", "--filter=error",
              "memory", "size=1M",
              "delay-read=2", "error-pwrite-rate=100%", "error=EIO",
              "retry-deadline=%gs" % DEADLINE, "reopen-after=1",
              "retry-delay=10ms", "retry-max-delay=10ms", "retries=1000"])
h = srv.connect()

rbuf = nbd.Buffer(512)
rc = h.aio_pread(rbuf, 0)
time.sleep(0.2)                 # the read is in the plugin now

done = []
t = time.monotonic()


def written(err):
    done.append((time.monotonic() - t, err.value))
    return 1


h.aio_pwrite(b"x" * 512, 4096, completion=written)
while not done:
    h.poll(-1)
elapsed, err = done[0]
print("write with retry-deadline=%gs ended after %.3fs, errno %d"
      % (DEADLINE, elapsed, err), flush=True)
check(err != 0, "the write succeeded")
check(elapsed <= DEADLINE * 1.1 + SLACK,
      "the write took %.3fs, retry-deadline is %gs" % (elapsed, DEADLINE))
while h.aio_in_flight():
    h.poll(-1)
check(h.aio_command_completed(rc), "the slow read did not complete")
check(rbuf.to_bytearray() == bytes(512), "the slow read returned wrong data")
h.shutdown()
srv.stop()
print("ok")
