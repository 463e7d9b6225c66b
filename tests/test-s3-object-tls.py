"""s3-object over HTTPS and with virtual-hosted-style URLs, against Ceph's
gateway serving HTTPS with a self-signed certificate: verification is on
by default (an untrusted certificate is one clean error), cainfo= and
capath= trust it, tls-verify=false skips the check; url-style=virtual
reaches the bucket as BUCKET.localhost (curl resolves any *.localhost to
loopback) and stores the same keys as path style."""

import os
import shutil
import subprocess

from s3_server import CephRGW, TcpProxy, need_s3_object_plugin
from shardkit_test import Server, check, need_tool, start_fails, tmpdir

need_s3_object_plugin()
openssl = need_tool("openssl", "openssl")
s3 = CephRGW(tls=True)
creds = ["access-key=" + s3.access_key, "secret-key=" + s3.secret_key]
print("gateway: %s and %s" % (s3.endpoint, s3.tls_endpoint), flush=True)


def args(endpoint, export, *extra):
    return ["s3-object", "endpoint=" + endpoint, "bucket=" + s3.bucket,
            "prefix=tls/", "export=" + export, "size=1M",
            "chunk-size=64K"] + creds + list(extra)


def works(a, what, off):
    srv = Server(a)
    h = srv.connect()
    pat = what.encode() * 50
    h.pwrite(pat, off)
    check(h.pread(len(pat), off) == pat, what + ": read back")
    h.shutdown()
    srv.stop()
    n = off // 65536
    keys = [k for k in s3.keys("tls/") if k.endswith(".%d.chunk" % n)]
    check(len(keys) == 1, what + ": chunk object %s" % s3.keys("tls/"))
    check(s3.get(keys[0], off % 65536, len(pat)) == pat,
          what + ": bytes in the bucket")
    print("ok:", what, flush=True)


# An untrusted certificate: refused, one clean line, no crash.
out = start_fails(args(s3.tls_endpoint, "v"))
check("certificate" in out.lower() or "ssl" in out.lower(),
      "untrusted certificate refused with a clear message:\n" + out[-2000:])
print("ok: untrusted certificate refused", flush=True)

works(args(s3.tls_endpoint, "v", "cainfo=" + s3.cert), "cainfo=", 1000)

capath = tmpdir()
shutil.copy(s3.cert, os.path.join(capath, "shardkit-test.pem"))
r = subprocess.run([openssl, "rehash", capath], capture_output=True)
check(r.returncode == 0, "openssl rehash: %s" % r.stderr)
works(args(s3.tls_endpoint, "v", "capath=" + capath), "capath=", 70000)

works(args(s3.tls_endpoint, "v", "tls-verify=false"), "tls-verify=false",
      140000)

# A certificate for another name is refused even with cainfo= of it: the
# host name is checked, not only the chain.
# (other.localhost reaches the gateway, the certificate names localhost.)
out = start_fails(args("https://other.localhost:%d" % s3.tls_port, "v",
                       "cainfo=" + s3.cert))
check("certificate" in out.lower() or "ssl" in out.lower(),
      "wrong host name refused:\n" + out[-2000:])
print("ok: host name checked", flush=True)

# Virtual-hosted style: BUCKET.localhost (through a proxy that shows the
# requests), and path style on the same name.
proxy = TcpProxy(s3.port)
local = "http://localhost:%d" % proxy.port
works(args(local, "v", "url-style=virtual"), "url-style=virtual", 210000)
check(proxy.headers, "requests seen")
for line, f in proxy.headers:
    check(f.get("host") == "%s.localhost:%d" % (s3.bucket, proxy.port),
          "virtual-hosted: Host %s" % f.get("host"))
    check(line.split()[1].split("?")[0].split("/")[1] != s3.bucket,
          "virtual-hosted: no bucket in the path: %s" % line)
proxy.reset_counters()
works(args(local, "v", "url-style=path"), "url-style=path on localhost",
      280000)
for line, f in proxy.headers:
    path = line.split()[1]
    check(f.get("host") == "localhost:%d" % proxy.port and
          path.split("?")[0].split("/")[1] == s3.bucket,
          "path style: %s, Host %s" % (line, f.get("host")))
# Both styles see one volume: everything written above is there.
srv = Server(args(local, "v", "url-style=virtual"))
h = srv.connect()
for what, off in (("cainfo=", 1000), ("capath=", 70000),
                  ("tls-verify=false", 140000),
                  ("url-style=virtual", 210000),
                  ("url-style=path on localhost", 280000)):
    pat = what.encode() * 50
    check(h.pread(len(pat), off) == pat, "one volume: " + what)
h.shutdown()
srv.stop()
print("ok")
