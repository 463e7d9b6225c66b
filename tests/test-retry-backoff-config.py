"""retry-backoff: configuration.  Every mistake stops nbdkit at start-up
with one error line naming the parameter; good values start; --help
describes the parameters."""

import subprocess

from shardkit_test import NBDKIT, Server, check, start_fails

BAD = [
    ("retry-delay", "abc"),
    ("retry-delay", "-1s"),
    ("retry-delay", "1.5xs"),
    ("retry-delay", "5 parsecs"),
    ("retry-max-delay", ""),
    ("retry-deadline", "0"),
    ("retry-deadline", "forever"),
    ("retry-deadline", "25h"),
    ("retry-max-delay", "86401s"),
    ("retry-delay", "18446744073s"),
    ("retries", "x"),
    ("retries", "0"),
    ("retries", "-1"),
    ("retries", "1001"),
    ("reopen-after", "3x"),
    ("retry-readonly", "maybe"),
    ("retry-on", "ENOSPC"),
    ("retry-on", "EROFS"),
    ("retry-on", "EINVAL,EIO"),
    ("retry-on", "EBOGUS"),
    ("retry-on", ""),
]

for key, value in BAD:
    out = start_fails(["--filter=retry-backoff", "memory", "size=1M",
                       "%s=%s" % (key, value)])
    errors = [l for l in out.splitlines() if "error:" in l]
    check(len(errors) == 1, "%s=%r: %d error lines:\n%s"
          % (key, value, len(errors), out))
    check(key in errors[0], "%s=%r: the error does not name the parameter: %s"
          % (key, value, errors[0]))
    print("%s=%r -> %s" % (key, value, errors[0].split("error: ", 1)[1]))

# retry-max-delay below retry-delay (also with the defaults on one side).
for params in (["retry-delay=2s", "retry-max-delay=1s"],
               ["retry-delay=20s"]):
    out = start_fails(["--filter=retry-backoff", "memory", "size=1M"] + params)
    errors = [l for l in out.splitlines() if "error:" in l]
    check(len(errors) == 1 and "retry-max-delay" in errors[0] and
          "retry-delay" in errors[0], "%s: %s" % (params, out))

# Good values start and serve.
srv = Server(["--filter=retry-backoff", "memory", "size=1M",
              "retries=1", "retry-delay=1.5s", "retry-max-delay=2m",
              "retry-deadline=24h", "reopen-after=0", "retry-readonly=yes",
              "retry-on=ENOMEM,EBUSY", "retry-on=ECONNABORTED"])
h = srv.connect()
h.pwrite(b"ok", 0)
check(h.pread(2, 0) == b"ok", "serve")
h.shutdown()
srv.stop()

# --help lists every parameter.
out = subprocess.run([NBDKIT, "--filter=retry-backoff", "memory", "--help"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     check=True).stdout.decode()
for key in ("retries=", "retry-delay=", "retry-max-delay=", "retry-deadline=",
            "reopen-after=", "retry-on=", "retry-readonly="):
    check(key in out, "--help does not mention %s" % key)
print("ok")
