"""s3-object credentials, against Ceph's gateway (which verifies every
SigV4 signature): access-key=/secret-key= (the secret also as +FILE, -FD
and - from a terminal), the environment, the shared credentials file with
profile= and AWS_PROFILE, which source wins, wrong credentials, an unknown
profile, a missing bucket and no credentials at all (one clean error
naming the S3 error code, the gateway keeps serving).  A session token
from the environment goes, signed, with every request.  Neither the
secret nor the token ever appears in nbdkit's -v output, other than in
nbdkit's own echo of a secret-key= given in clear on the command line."""

import base64
import hashlib
import os
import pty
import select
import termios
import subprocess
import time

import nbd

from s3_server import CephRGW, S3rver, TcpProxy, need_s3_object_plugin
from shardkit_test import (NBDKIT, Server, VALGRIND, check, fail, on_exit,
                           tmpdir)

MiB = 1024 * 1024
need_s3_object_plugin()

# Nothing from the caller's environment may leak into the cases below.
for v in list(os.environ):
    if v.startswith("AWS_"):
        del os.environ[v]
home = tmpdir()
os.environ["HOME"] = home               # no ~/.aws/credentials

s3 = CephRGW()
KEY, SECRET = s3.access_key, s3.secret_key
BASE = ["s3-object", "endpoint=" + s3.endpoint, "bucket=" + s3.bucket,
        "prefix=cred/", "region=us-east-1", "export=cred", "size=8M",
        "chunk-size=64K"]
outputs = []                            # every nbdkit -v output, for grep
n = [0]


def works(srv, what):
    """A write and a read through SRV reach the bucket."""
    n[0] += 1
    h = srv.connect()
    pat = ("%s-%d" % (what, n[0])).encode() * 100
    off = n[0] * 65536 + 100
    h.pwrite(pat, off)
    h.flush()
    check(h.pread(len(pat), off) == pat, "%s: read back" % what)
    h.shutdown()
    srv.stop()
    outputs.append((what, srv.output()))
    chunk = [k for k in s3.keys("cred/") if k.endswith(".%d.chunk" % n[0])]
    check(len(chunk) == 1, "%s: chunk object written: %s" % (what,
                                                            s3.keys("cred/")))
    check(s3.get(chunk[0], 100, len(pat)) == pat, "%s: bytes in the bucket"
          % what)
    print("ok:", what, flush=True)


def refused(args, env=None, codes=(), what=""):
    """nbdkit refuses to start, or starts and fails the connection; either
    way with one clean message naming one of CODES, in bounded time."""
    t0 = time.monotonic()
    srv = Server(args, env=env, wait=False)
    try:
        srv.wait_ready()
    except RuntimeError:
        pass                             # refused at start-up
    else:
        try:
            h = srv.connect()
            h.pread(512, 0)
            fail("%s: a connection worked" % what)
        except nbd.Error:
            pass
        srv.stop(check_exit=False)
    out = srv.output()
    outputs.append((what, out))
    took = time.monotonic() - t0
    check(took < (120 if VALGRIND else 30), "%s took %.0f s" % (what, took))
    check(any(c in out for c in codes), "%s: no %s in the output:\n%s"
          % (what, "/".join(codes), out[-3000:]))
    check("Segmentation" not in out and "Aborted" not in out, what + " crash")
    # The gateway keeps serving.
    s3.keys()
    print("ok: %s refused (%.1f s)" % (what, took), flush=True)
    return out


def envs(**kw):
    e = dict(os.environ)
    e.update(kw)
    return e


# 1. On the command line.
works(Server(BASE + ["access-key=" + KEY, "secret-key=" + SECRET]),
      "parameters")

# 2. The secret from a file (+FILE), from an inherited descriptor (-FD),
#    from the terminal (-).
d = tmpdir()
sf = os.path.join(d, "secret")
with open(sf, "w") as f:
    f.write(SECRET + "\n")
os.chmod(sf, 0o600)
works(Server(BASE + ["access-key=" + KEY, "secret-key=+" + sf]),
      "secret-key=+FILE")

r, w = os.pipe()
os.write(w, SECRET.encode() + b"\n")
os.close(w)


class FdServer(Server):
    """Server whose nbdkit inherits extra descriptors / a terminal."""

    def __init__(self, args, stdin=subprocess.DEVNULL, pass_fds=(),
                 stdout=None):
        self.dir = tmpdir("shardkit-srv-")
        self.sock = os.path.join(self.dir, "nbd.sock")
        self.log = os.path.join(self.dir, "nbdkit.log")
        self.cmd = [NBDKIT, "-f", "-U", self.sock, "-v"] + list(args)
        self.logf = open(self.log, "w+b")
        self.proc = subprocess.Popen(self.cmd, stdin=stdin,
                                     stdout=stdout or self.logf,
                                     stderr=self.logf, pass_fds=pass_fds)
        on_exit(self.kill)


s = FdServer(BASE + ["access-key=" + KEY, "secret-key=-%d" % r],
             pass_fds=(r,))
s.wait_ready()
os.close(r)
works(s, "secret-key=-FD")

master, slave = pty.openpty()
s = FdServer(BASE + ["access-key=" + KEY, "secret-key=-"], stdin=slave,
             stdout=slave)
os.close(slave)
# Answer the prompt only once it is shown: nbdkit turns echo off with
# TCSAFLUSH, which throws away anything typed before.
prompt = b""
deadline = time.monotonic() + (120 if VALGRIND else 20)
while b"assword" not in prompt and time.monotonic() < deadline:
    r_, _, _ = select.select([master], [], [], 0.1)
    if r_:
        prompt += os.read(master, 1024)
check(b"assword" in prompt, "nbdkit prompts for the secret: %r" % prompt)
# ... and once echo is off (the terminal's settings, seen from the master).
while termios.tcgetattr(master)[3] & termios.ECHO and \
        time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.05)
os.write(master, SECRET.encode() + b"\n")
s.wait_ready()
works(s, "secret-key=- (terminal)")
os.close(master)

# 3. The environment.
works(Server(BASE, env=envs(AWS_ACCESS_KEY_ID=KEY,
                            AWS_SECRET_ACCESS_KEY=SECRET)), "environment")

# 4. The shared credentials file: [default], profile=, AWS_PROFILE.
cred = os.path.join(d, "credentials")
with open(cred, "w") as f:
    f.write("""\
# comment
[default]
aws_access_key_id = %s
aws_secret_access_key = %s

[wrong]
aws_access_key_id = %s
aws_secret_access_key = not-the-secret

[shardkit]
aws_access_key_id=%s
aws_secret_access_key=%s
""" % (KEY, SECRET, KEY, KEY, SECRET))
os.chmod(cred, 0o600)
works(Server(BASE, env=envs(AWS_SHARED_CREDENTIALS_FILE=cred)),
      "credentials file [default]")
works(Server(BASE + ["profile=shardkit"],
             env=envs(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="wrong")),
      "credentials file profile= (wins over AWS_PROFILE)")
refused(BASE + ["profile=wrong"], env=envs(AWS_SHARED_CREDENTIALS_FILE=cred),
        codes=("SignatureDoesNotMatch",), what="profile=wrong")
refused(BASE, env=envs(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="wrong"),
        codes=("SignatureDoesNotMatch",), what="AWS_PROFILE=wrong")
# ~/.aws/credentials when AWS_SHARED_CREDENTIALS_FILE is not set.
os.makedirs(os.path.join(home, ".aws"))
os.rename(cred, os.path.join(home, ".aws", "credentials"))
cred = os.path.join(home, ".aws", "credentials")
works(Server(BASE + ["profile=shardkit"]), "~/.aws/credentials profile=")
refused(BASE + ["profile=no-such-profile"], codes=("no-such-profile",),
        what="unknown profile")

# 5. First found wins: parameters over the environment over the file.
works(Server(BASE + ["access-key=" + KEY, "secret-key=+" + sf],
             env=envs(AWS_ACCESS_KEY_ID="NOSUCHKEY",
                      AWS_SECRET_ACCESS_KEY="wrong", AWS_PROFILE="wrong")),
      "parameters win over the environment")
works(Server(BASE, env=envs(AWS_ACCESS_KEY_ID=KEY,
                            AWS_SECRET_ACCESS_KEY=SECRET,
                            AWS_PROFILE="wrong")),
      "environment wins over the credentials file")
os.unlink(cred)
# A profile or a credentials file asked for by name must exist: no silent
# fall-back to anonymous requests.
refused(BASE, env=envs(AWS_PROFILE="shardkit"), codes=("credentials file",),
        what="AWS_PROFILE without a credentials file")
refused(BASE, env=envs(AWS_SHARED_CREDENTIALS_FILE=os.path.join(d, "none")),
        codes=("credentials file",),
        what="AWS_SHARED_CREDENTIALS_FILE naming a missing file")

# 6. Wrong credentials, missing bucket, anonymous: clean errors.
refused(BASE + ["access-key=" + KEY, "secret-key=not-the-secret"],
        codes=("SignatureDoesNotMatch",), what="wrong secret")
refused(BASE + ["access-key=NOSUCHKEY", "secret-key=+" + sf],
        codes=("InvalidAccessKeyId",), what="unknown access key")
out = refused([a if not a.startswith("bucket=") else "bucket=no-such-bucket"
               for a in BASE] + ["access-key=" + KEY, "secret-key=+" + sf],
              codes=("NoSuchBucket",), what="missing bucket")
check("no-such-bucket" in out, "the error names the bucket:\n" + out[-2000:])
refused(BASE, codes=("AccessDenied",), what="anonymous on a private bucket")
refused(BASE + ["access-key=" + KEY], codes=("secret",),
        what="access-key= without secret-key=")

# After all that, the volume still works and holds every case's data.
works(Server(BASE + ["access-key=" + KEY, "secret-key=+" + sf]), "final")

# 7. A session token from the environment (temporary credentials) goes
#    with every request, signed.  Against s3rver behind a proxy that shows
#    the headers (Ceph would want a real STS token).
TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN/+=abc123"
s3r = S3rver()
px = TcpProxy(s3r.port)
srv = Server(["s3-object", "endpoint=" + px.endpoint, "bucket=" + s3r.bucket,
              "prefix=tok/", "export=tok", "size=1M", "chunk-size=64K"],
             env=envs(AWS_ACCESS_KEY_ID=s3r.access_key,
                      AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_SESSION_TOKEN=TOKEN))
h = srv.connect()
h.pwrite(b"token" * 100, 70000)
check(h.pread(500, 70000) == b"token" * 100, "session token: read back")
h.shutdown()
srv.stop()
outputs.append(("session token", srv.output()))
check(px.headers, "requests seen by the proxy")
for line, f in px.headers:
    check(f.get("x-amz-security-token") == TOKEN,
          "%s: no x-amz-security-token" % line)
    check("x-amz-security-token" in f.get("authorization", ""),
          "%s: the token is not signed" % line)
print("ok: session token (%d requests)" % len(px.headers), flush=True)

# 7b. Without credentials requests are not signed, so the server cannot
#     check a body against its payload SHA-256: chunk PUTs then carry
#     Content-MD5 (signed chunk PUTs do not: test-s3-object-http.py).
#     s3rver takes anonymous writes.
px.headers.clear()
srv = Server(["s3-object", "endpoint=" + px.endpoint, "bucket=" + s3r.bucket,
              "prefix=anon/", "export=anon", "size=1M", "chunk-size=64K"],
             env={k: v for k, v in os.environ.items()
                  if not k.startswith("AWS_")})
h = srv.connect()
body = bytes(range(256)) * 256                  # one whole 64K chunk
h.pwrite(body, 65536)
check(h.pread(65536, 65536) == body, "anonymous: read back")
h.shutdown()
srv.stop()
outputs.append(("anonymous", srv.output()))
puts = [(line, f) for line, f in px.headers
        if line.startswith("PUT ") and ".chunk" in line]
check(len(puts) == 1, "anonymous: one chunk PUT: %s" % [p[0] for p in puts])
for line, f in puts:
    check("authorization" not in f, "%s: anonymous but signed" % line)
    check(f.get("content-md5") == base64.b64encode(
        hashlib.md5(body).digest()).decode(),
        "%s: an unsigned chunk PUT carries the body's Content-MD5" % line)
print("ok: anonymous chunk PUTs carry Content-MD5", flush=True)

# 8. The secret in -v output: only nbdkit's own echo of its command line
#    (config key=secret-key, value=...) may show it; the plugin never does.
for what, out in outputs:
    for line in out.splitlines():
        if SECRET in line and "config key=secret-key, value=" not in line:
            fail("%s: the secret key in nbdkit's output: %s" % (what, line))
        if "not-the-secret" in line and "config key=" not in line:
            fail("%s: a (wrong) secret in nbdkit's output: %s" % (what, line))
        if TOKEN in line:
            fail("%s: the session token in nbdkit's output: %s" % (what, line))
print("ok")
