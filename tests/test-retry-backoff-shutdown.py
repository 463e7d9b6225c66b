"""retry-backoff: shutdown while a request sleeps between attempts.  With
delays of up to 20 s, SIGTERM must not wait for them: the sleep ends at
once (nbdkit_nanosleep), and the request gives up with its last error
within a second or two; nbdkit then exits."""

import re
import signal
import time

import nbd

from shardkit_test import VALGRIND, Server, check

srv = Server(["--filter=retry-backoff", "--filter=error", "memory",
              "size=1M", "error-pread-rate=100%", "error=EIO",
              "retry-delay=20s", "retry-max-delay=20s", "reopen-after=0"])
h = srv.connect()
buf = nbd.Buffer(512)
h.aio_pread(buf, 0)

# Wait until the read sleeps before a retry of at least 1 s (full jitter
# can pick a short delay: then it retries and sleeps again).
deadline = time.monotonic() + (60 if VALGRIND else 20)
long_sleep = None
while long_sleep is None and time.monotonic() < deadline:
    h.poll(0)
    for m in re.finditer(r"retry \d+ of \d+ in ([0-9.]+)(ms|s)\b",
                         srv.output()):
        if m.group(2) == "s" and float(m.group(1)) >= 1:
            long_sleep = float(m.group(1))
    time.sleep(0.01)
check(long_sleep is not None, "the read never slept 1 s or more")
time.sleep(0.1)

t = time.monotonic()
srv.proc.send_signal(signal.SIGTERM)
# The sleeping read ends with an error, or the server drops the
# connection, at once.
ended = None
while ended is None and time.monotonic() - t < (60 if VALGRIND else 20):
    try:
        h.poll(50)
        if h.aio_in_flight() == 0:
            ended = "the read completed"
    except nbd.Error as e:
        ended = "connection: %s" % e
elapsed = time.monotonic() - t
print("SIGTERM during a %.1fs sleep: %s after %.3fs"
      % (long_sleep, ended, elapsed))
check(ended is not None and elapsed < (10 if VALGRIND else 2.0),
      "the sleeping read took %.3fs to end at shutdown" % elapsed)
check(re.search(r"pread offset=0 count=512: giving up after \d+ attempts",
                srv.output()), "the sleeping read did not give up")
# (nbdkit 1.32 waits for its clients to go before it exits.)
del h                           # closes the socket
srv.proc.wait(60 if VALGRIND else 20)
srv.stop(check_exit=False)
print("ok")
