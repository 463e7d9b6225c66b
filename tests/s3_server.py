"""Real S3 servers on loopback for shardkit's tests and benchmarks.

Two servers, each started per test run on a free port of 127.0.0.1 and
stopped by PID when the test exits, however it exits:

  CephRGW  Ceph's RADOS Gateway (Debian's ceph-mon, ceph-osd, radosgw,
           ceph-common) as a one-node cluster whose only OSD keeps its data
           in RAM (memstore).  A production S3 implementation: it checks
           SigV4 signatures, Content-MD5 and x-amz-content-sha256, so every
           test against it also proves the plugin's signing.  The gateway
           alone can be stopped and started again (monitor and OSD keep
           running, so the data stays): "the server went away mid-I/O".

  S3rver   s3rver (npm, pinned in tests/s3rver/package.json) keeps every
           object as a plain file, so a test can change an object's bytes
           at rest (corruption).  It does not verify signatures.

A server that cannot be started because a package is missing skips the
test (exit 77) with a message naming the package.

Usage:
    from s3_server import CephRGW
    s3 = CephRGW()          # starts, creates a user and s3.bucket
    s3.put("k", b"data"); s3.keys(); s3.get("k", 0, 3)
    plugin_args = s3.plugin_args()   # endpoint=, bucket=, access-key=, ...

Daemons get PR_SET_PDEATHSIG=SIGKILL so that even a test killed with
SIGKILL leaves nothing behind; create servers from the main thread.
"""

import ctypes
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

try:
    from shardkit_test import on_exit, skip
except ImportError:                     # used outside the test suite
    import atexit

    def on_exit(fn):
        atexit.register(fn)

    def skip(why):
        print("SKIP:", why)
        sys.exit(77)

SRCDIR = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proc_state(pid):
    """The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or None if
    the process is gone.  A zombie has exited although kill -0 works."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2]


def proc_cpu_seconds(pid):
    """utime + stime of PID (and its waited-for children) in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime/stime are fields 14/15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def is_running(proc):
    if proc is None:
        return False
    if proc.poll() is not None:
        return False
    st = proc_state(proc.pid)
    return st is not None and st not in ("Z", "X")


def stop_process(proc, timeout=5.0):
    """SIGTERM, wait up to TIMEOUT, then SIGKILL.  Reaps the process."""
    if proc is None:
        return
    if is_running(proc):
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_running(proc):
            time.sleep(0.02)
        if is_running(proc):
            try:
                proc.kill()
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _need(prog, package):
    p = shutil.which(prog) or (os.path.join("/usr/bin", prog)
                               if os.access(os.path.join("/usr/bin", prog),
                                            os.X_OK) else None)
    if not p:
        skip("%s not found: S3 test server unavailable "
             "(apt-get install %s)" % (prog, package))
    return p


def _boto3():
    try:
        import boto3
        import botocore.config
        return boto3, botocore.config
    except ImportError:
        skip("python module boto3 not found (apt-get install python3-boto3)")


def _wait_http(port, deadline, proc=None, what="server", log=None):
    """Wait until an HTTP server answers on 127.0.0.1:PORT."""
    while time.monotonic() < deadline:
        if proc is not None and not is_running(proc):
            raise RuntimeError("%s exited at start-up (%s)%s"
                               % (what, proc.returncode, _tail(log)))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("%s did not answer on port %d%s"
                       % (what, port, _tail(log)))


def _tail(path, n=30):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    return ":\n" + "\n".join(lines[-n:])


class S3Server:
    """What the two servers share: a boto3 client and object helpers."""

    access_key = None
    secret_key = None
    bucket = None
    port = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def client(self, access_key=None, secret_key=None, **config):
        """A boto3 S3 client: path-style addressing, region us-east-1,
        no retries (tests see what the server answers)."""
        boto3, bconfig = _boto3()
        cfg = dict(s3={"addressing_style": "path"},
                   retries={"max_attempts": 1, "mode": "standard"},
                   connect_timeout=5, read_timeout=30,
                   signature_version="s3v4")
        cfg.update(config)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=bconfig.Config(**cfg))

    @property
    def s3(self):
        if getattr(self, "_s3", None) is None:
            self._s3 = self.client()
        return self._s3

    def create_bucket(self, name):
        self.s3.create_bucket(Bucket=name)

    def put(self, key, data, bucket=None, **kw):
        self.s3.put_object(Bucket=bucket or self.bucket, Key=key, Body=data,
                           **kw)

    def get(self, key, offset=None, length=None, bucket=None):
        """The object's bytes, or LENGTH bytes from OFFSET (ranged GET)."""
        kw = {}
        if offset is not None:
            end = "" if length is None else str(offset + length - 1)
            kw["Range"] = "bytes=%d-%s" % (offset, end)
        r = self.s3.get_object(Bucket=bucket or self.bucket, Key=key, **kw)
        return r["Body"].read()

    def head(self, key, bucket=None):
        return self.s3.head_object(Bucket=bucket or self.bucket, Key=key)

    def exists(self, key, bucket=None):
        import botocore.exceptions
        try:
            self.head(key, bucket)
            return True
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey",
                                               "NotFound"):
                return False
            raise

    def delete(self, key, bucket=None):
        self.s3.delete_object(Bucket=bucket or self.bucket, Key=key)

    def list(self, prefix="", bucket=None, page_size=1000):
        """Every object under PREFIX as {key: size}, following continuation
        tokens (ListObjectsV2)."""
        out = {}
        kw = dict(Bucket=bucket or self.bucket, Prefix=prefix,
                  MaxKeys=page_size)
        while True:
            r = self.s3.list_objects_v2(**kw)
            for o in r.get("Contents", []):
                out[o["Key"]] = o["Size"]
            if not r.get("IsTruncated"):
                return out
            kw["ContinuationToken"] = r["NextContinuationToken"]

    def keys(self, prefix="", bucket=None):
        return sorted(self.list(prefix, bucket))

    def delete_prefix(self, prefix="", bucket=None):
        ks = self.keys(prefix, bucket)
        for i in range(0, len(ks), 1000):
            self.s3.delete_objects(
                Bucket=bucket or self.bucket,
                Delete={"Objects": [{"Key": k} for k in ks[i:i + 1000]],
                        "Quiet": True})

    def upload_dir(self, directory, prefix="", bucket=None):
        """Copy every regular file of DIRECTORY to PREFIX/NAME (file for
        object, as any sync tool would)."""
        for name in sorted(os.listdir(directory)):
            p = os.path.join(directory, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    self.put(prefix + name, f.read(), bucket)

    def download_dir(self, directory, prefix="", bucket=None):
        """Copy every object under PREFIX to DIRECTORY/NAME."""
        for k in self.keys(prefix, bucket):
            name = k[len(prefix):]
            with open(os.path.join(directory, name), "wb") as f:
                f.write(self.get(k, bucket=bucket))

    def signed_request(self, conn, method, key="", body=b"", headers=None,
                       query="", payload_sha256=None, bucket=None,
                       secret_key=None):
        """Send one SigV4-signed request over the http.client connection
        CONN (kept alive between calls) and return (status, headers, body).
        PAYLOAD_SHA256 overrides the signed x-amz-content-sha256 (to test
        that the server checks it)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from urllib.parse import quote
        path = "/%s/%s" % (bucket or self.bucket, quote(key, safe="/~"))
        url = self.endpoint + path + ("?" + query if query else "")
        h = dict(headers or {})
        h["x-amz-content-sha256"] = payload_sha256 or \
            hashlib.sha256(body).hexdigest()
        req = AWSRequest(method=method, url=url, data=body, headers=h)
        SigV4Auth(Credentials(self.access_key,
                              secret_key or self.secret_key),
                  "s3", REGION).add_auth(req)
        conn.request(method, path + ("?" + query if query else ""),
                     body=body, headers=dict(req.headers.items()))
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def plugin_args(self, prefix=None, with_keys=True):
        """s3-object parameters reaching this server."""
        a = ["endpoint=" + self.endpoint, "bucket=" + self.bucket,
             "region=" + REGION, "url-style=path"]
        if prefix is not None:
            a.append("prefix=" + prefix)
        if with_keys:
            a += ["access-key=" + self.access_key,
                  "secret-key=" + self.secret_key]
        return a


class CephRGW(S3Server):
    """A one-node Ceph cluster (monitor, memstore OSD, gateway) on loopback.

    The data lives in the OSD's RAM (about twice what is stored): keep it
    small.  stop() is registered with on_exit; calling it early is fine.
    """

    ACCESS_KEY = "SHARDKITTESTACCESS01"
    SECRET_KEY = "shardkit/test+Secret/Key0123456789abcdefgh"

    def __init__(self, bucket="shardkit", start=True, timeout=60, tls=False):
        """TLS: the gateway also serves HTTPS on self.tls_port with a
        self-signed certificate (self.cert) for localhost and 127.0.0.1."""
        self.tls = tls
        self.tls_port = None
        if tls:
            self.openssl = _need("openssl", "openssl")
        self.ceph_mon = _need("ceph-mon", "ceph-mon")
        self.ceph_osd = _need("ceph-osd", "ceph-osd")
        self.radosgw = _need("radosgw", "radosgw")
        self.radosgw_admin = _need("radosgw-admin", "radosgw")
        self.ceph = _need("ceph", "ceph-common")
        self.monmaptool = _need("monmaptool", "ceph-common")
        _boto3()
        self.access_key = self.ACCESS_KEY
        self.secret_key = self.SECRET_KEY
        self.bucket = bucket
        self.timeout = timeout
        self.mon = self.osd = self.gw = None
        self.dir = tempfile.mkdtemp(prefix="shardkit-ceph-")
        on_exit(self._remove_dir)
        on_exit(self.stop)
        self.start_seconds = None
        if start:
            self.start()

    def _remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # The cluster's configuration.  What matters for a start in about 2 s
    # and a cluster of one OSD:
    # - no cephx anywhere (auth ... = none), and in the clients' sections
    #   also "ms mon client mode = crc": without it radosgw insists on
    #   secure mode and loops for "rgw init timeout" on
    #   "get_initial_auth_request returned -13";
    # - "paxos propose interval = 0.05": with the default 1 s the start
    #   takes about 13 s (every pool the gateway creates is a paxos round);
    # - pools of size 1 on one OSD (size/min size 1, "mon allow pool size
    #   one", chooseleaf type 0, 8 PGs, no autoscaler, no warning);
    # - memstore keeps everything in the OSD's RAM (about twice the data);
    #   few OSD threads for a 2-core machine;
    # - deleted objects' tails are collected after 30 s, not hours.
    def _write_conf(self):
        d = self.dir
        for sub in ("mon/ceph-a", "osd/ceph-0", "run", "log", "rgw"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.conf = os.path.join(d, "ceph.conf")
        no_cephx = """\
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
"""
        frontends = "beast endpoint=127.0.0.1:%d" % self.port
        if self.tls:
            frontends += (" ssl_endpoint=127.0.0.1:%d ssl_certificate=%s"
                          " ssl_private_key=%s"
                          % (self.tls_port, self.cert, self.cert_key))
        with open(self.conf, "w") as f:
            f.write("""\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
{no_cephx}
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
mon cluster log file = {d}/log/cluster.log
log to stderr = false
err to stderr = true
keyring = {d}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0

[mon]
mon data = {d}/mon/$cluster-$id
paxos propose interval = 0.05
mon allow pool delete = true

[osd]
osd data = {d}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd op num shards = 2
osd op num threads per shard = 1
osd memory target = 536870912

[client]
{no_cephx}

[client.rgw.gw]
{no_cephx}
rgw frontends = {frontends}
rgw data = {d}/rgw
# Virtual-hosted-style requests to BUCKET.localhost (curl resolves any
# *.localhost name to loopback); path-style to 127.0.0.1 or localhost.
rgw dns name = localhost
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw init timeout = 60
""".format(fsid=uuid.uuid4(), d=d, mon_port=self.mon_port,
           frontends=frontends, no_cephx=no_cephx))

    def _run(self, *cmd, timeout=30):
        r = subprocess.run(list(cmd), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s"
                               % (" ".join(cmd), r.returncode,
                                  r.stdout.decode("utf-8", "replace")))
        return r.stdout.decode("utf-8", "replace")

    def _daemon(self, name, *cmd):
        log = open(os.path.join(self.dir, "log", name + ".out"), "ab")
        p = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log,
                             preexec_fn=_die_with_parent)
        log.close()
        return p

    def start(self, attempts=2):
        """Start the cluster.  A free port picked here can be taken by
        someone else before the daemon binds it (tests run in parallel):
        then start again from scratch on other ports."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                self.stop()
                logs = os.path.join(self.dir, "log")
                msg = "%s%s" % (e, _tail(os.path.join(logs, "mon.out")))
                if attempt + 1 == attempts:
                    raise RuntimeError("Ceph cluster did not start: " + msg)
                print("Ceph start failed, retrying: %s" % str(e)[:500],
                      file=sys.stderr, flush=True)
                for name in os.listdir(self.dir):
                    shutil.rmtree(os.path.join(self.dir, name),
                                  ignore_errors=True)
                    try:
                        os.unlink(os.path.join(self.dir, name))
                    except OSError:
                        pass

    def _start_once(self):
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        self.mon_port = free_port()
        self.port = free_port()
        if self.tls:
            self.tls_port = free_port()
            self._make_cert()
        self._write_conf()
        c = ["-c", self.conf]
        monmap = os.path.join(self.dir, "monmap")
        self._run(self.monmaptool, "--create", "--clobber",
                  "--fsid", self._fsid(), "--addv", "a",
                  "[v2:127.0.0.1:%d]" % self.mon_port, monmap)
        self._run(self.ceph_mon, *c, "--mkfs", "-i", "a", "--monmap", monmap)
        self.mon = self._daemon("mon", self.ceph_mon, *c, "-f", "-i", "a")
        osd_id = self._run(self.ceph, *c, "--connect-timeout", "20",
                           "osd", "create").strip()
        if osd_id != "0":
            raise RuntimeError("ceph osd create returned %r" % osd_id)
        self._run(self.ceph_osd, *c, "-i", "0", "--mkfs")
        self.osd = self._daemon("osd", self.ceph_osd, *c, "-f", "-i", "0")
        self.start_gateway(deadline)
        self._run(self.radosgw_admin, *c, "user", "create", "--uid=shardkit",
                  "--display-name=shardkit tests",
                  "--access-key=" + self.access_key,
                  "--secret=" + self.secret_key)
        self.create_bucket(self.bucket)
        self.start_seconds = time.monotonic() - t0

    def _make_cert(self):
        """A self-signed certificate for localhost and 127.0.0.1."""
        self.cert = os.path.join(self.dir, "cert.pem")
        self.cert_key = os.path.join(self.dir, "key.pem")
        if os.path.exists(self.cert):
            return
        self._run(self.openssl, "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-days", "2", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-keyout", self.cert_key, "-out", self.cert)

    @property
    def tls_endpoint(self):
        return "https://127.0.0.1:%d" % self.tls_port

    def _fsid(self):
        with open(self.conf) as f:
            for line in f:
                if line.startswith("fsid ="):
                    return line.split("=", 1)[1].strip()

    def start_gateway(self, deadline=None):
        """Start radosgw (again) on the same port; returns when it answers."""
        if is_running(self.gw):
            return
        deadline = deadline or time.monotonic() + self.timeout
        self.gw = self._daemon("rgw", self.radosgw, "-c", self.conf, "-f",
                               "-n", "client.rgw.gw")
        _wait_http(self.port, deadline, self.gw, "radosgw",
                   os.path.join(self.dir, "log", "client.rgw.gw.log"))

    def stop_gateway(self, kill=False):
        """Stop radosgw only (SIGKILL if KILL): the monitor and OSD keep
        the data.  Clients see connection refused until start_gateway()."""
        if kill and is_running(self.gw):
            self.gw.kill()
        stop_process(self.gw)
        self.gw = None

    def restart_gateway(self, kill=False):
        self.stop_gateway(kill)
        self.start_gateway()

    def stop(self):
        """Gateway, then OSD, then monitor (a gateway whose OSD vanishes at
        the same moment can hang in shutdown); SIGKILL after a few seconds.
        The data is in RAM and goes with the OSD."""
        for attr in ("gw", "osd", "mon"):
            stop_process(getattr(self, attr), timeout=3)
            setattr(self, attr, None)

    def pids(self):
        return {a: getattr(self, a).pid for a in ("mon", "osd", "gw")
                if getattr(self, a) is not None}


class S3rver(S3Server):
    """s3rver (npm) on loopback, objects kept as plain files under
    self.dir.  Accepts any secret for its access key S3RVER: it does not
    verify SigV4 signatures."""

    ACCESS_KEY = "S3RVER"
    SECRET_KEY = "S3RVER"

    def __init__(self, bucket="shardkit", start=True, timeout=30):
        self.node = _need("node", "nodejs")
        self.script = os.path.join(SRCDIR, "s3rver", "node_modules",
                                   "s3rver", "bin", "s3rver.js")
        if not os.path.exists(self.script):
            skip("s3rver not installed: run scripts/install-deps.sh test "
                 "(npm ci in tests/s3rver)")
        _boto3()
        self.access_key = self.ACCESS_KEY
        self.secret_key = self.SECRET_KEY
        self.bucket = bucket
        self.timeout = timeout
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="shardkit-s3rver-")
        on_exit(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        on_exit(self.stop)
        self.start_seconds = None
        if start:
            self.start()

    def start(self):
        try:
            self._start_once()
        except RuntimeError as e:
            if self.port_fixed:
                raise
            print("s3rver start failed, retrying: %s" % e, file=sys.stderr)
            self.stop()
            self.port = None
            self._start_once()

    def _start_once(self):
        t0 = time.monotonic()
        self.port_fixed = bool(self.port)
        self.port = self.port or free_port()
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.log = os.path.join(self.dir, "s3rver.log")
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.node, self.script, "-d", self.data, "-a", "127.0.0.1",
             "-p", str(self.port), "--silent", "--no-vhost-buckets"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_die_with_parent)
        log.close()
        _wait_http(self.port, t0 + self.timeout, self.proc, "s3rver",
                   self.log)
        if not os.path.isdir(os.path.join(self.data, self.bucket)):
            self.create_bucket(self.bucket)
        self.start_seconds = time.monotonic() - t0

    def stop(self):
        stop_process(self.proc, timeout=3)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def object_path(self, key, bucket=None):
        """The file holding KEY's bytes at rest."""
        parts = key.split("/")
        return os.path.join(self.data, bucket or self.bucket, *parts[:-1],
                            "%s._S3rver_object" % parts[-1])

    def corrupt(self, key, offset=0, data=None, bucket=None):
        """Change the stored bytes of KEY at OFFSET (default: flip every
        bit of one byte) without changing its size, its ETag or its
        metadata: what bit rot or a buggy server would do."""
        p = self.object_path(key, bucket)
        with open(p, "r+b") as f:
            f.seek(offset)
            old = f.read(len(data) if data is not None else 1)
            new = data if data is not None else bytes(b ^ 0xff for b in old)
            if len(old) != len(new):
                raise ValueError("corrupt(%s, %d): beyond the object's end"
                                 % (key, offset))
            f.seek(offset)
            f.write(new)
        return old

    def truncate(self, key, length, bucket=None):
        """Shorten the stored object KEY to LENGTH bytes (a short body)."""
        os.truncate(self.object_path(key, bucket), length)


def md5_b64(data):
    import base64
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def need_s3_object_plugin():
    """Skip (77) unless the build tree has the s3-object plugin."""
    top = os.environ.get("top_builddir",
                         os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))
    so = os.path.join(top, "plugins", "s3-object", ".libs",
                      "nbdkit-s3-object-plugin.so")
    if not os.path.exists(so):
        skip("the s3-object plugin is not built (%s missing)" % so)
    return so


def chunk_keys(keys, volume):
    """The chunk numbers of VOLUME among object KEYS (any prefix)."""
    import re
    r = re.compile(r"(?:^|/)%s\.(\d+)\.chunk$" % re.escape(volume))
    out = []
    for k in keys:
        m = r.search(k)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


class TcpProxy:
    """A TCP proxy on loopback in front of an S3 server, to see and disturb
    what the plugin sends: it counts connections and bytes each way, and
    on request flips one byte in the body of the next request or
    response, stalls responses, or resets every open connection.

    Arm a corruption only while no request is in flight: the proxy then
    knows that the next bytes on a connection start a new message.
    """

    def __init__(self, target_port, target_host="127.0.0.1"):
        import threading
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.connections = 0
        self.bytes_up = 0               # client -> server
        self.bytes_down = 0             # server -> client
        self.requests = []              # request lines seen
        self.headers = []               # (request line, {field: value})
        self.socks = []
        self.resetting = set()
        self.corrupt = {"up": None, "down": None}   # body offset to flip
        self.corrupted = {"up": 0, "down": 0}
        self.stalled = threading.Event()
        self.closing = False
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        on_exit(self.close)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def reset_counters(self):
        with self.lock:
            self.connections = self.bytes_up = self.bytes_down = 0
            self.requests = []
            self.headers = []

    def corrupt_next(self, direction, body_offset=100):
        """Flip one byte at BODY_OFFSET of the body of the next request
        ("up", a PUT or POST) or next 200/206 response ("down")."""
        with self.lock:
            self.corrupt[direction] = body_offset

    def stall(self, on=True):
        """Hold back every byte from the server while on."""
        if on:
            self.stalled.set()
        else:
            self.stalled.clear()

    def reset_all(self):
        """Abort every open connection with a TCP RST, both sides.  (A
        close() alone would not do: the pump threads blocked in recv() on
        a socket keep it open.  SHUT_RD wakes them, and their close() with
        a zero linger time sends the RST.)"""
        import struct
        with self.lock:
            socks, self.socks = self.socks, []
            self.resetting.update(socks)
        n = len(socks) // 2
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        return n

    def close(self):
        self.closing = True
        self.stalled.clear()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.reset_all()

    def _accept(self):
        import threading
        while not self.closing:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=5)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self.socks += [c, s]
            threading.Thread(target=self._pump, args=(c, s, "up"),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, "down"),
                             daemon=True).start()

    def _pump(self, src, dst, direction):
        state = {"hdr": b"", "mode": None}
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                if direction == "down":
                    while self.stalled.is_set() and not self.closing:
                        time.sleep(0.01)
                data = self._inspect(data, direction, state)
                with self.lock:
                    if direction == "up":
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                reset = src in self.resetting or dst in self.resetting
            for x in (src, dst):
                try:
                    if not reset:               # pass the EOF on
                        x.shutdown(socket.SHUT_RDWR)
                    x.close()                   # with linger 0: RST
                except OSError:
                    pass

    def _inspect(self, data, direction, state):
        """Record request lines; flip a body byte when armed.  Messages
        are followed (headers, then Content-Length bytes of body) only
        from the moment a corruption is armed until it is done."""
        if direction == "up" and state.get("mode") is None:
            # Approximate: a send from an idle connection starts with a
            # request line.
            line = data.split(b"\r\n", 1)[0]
            if line[:4] in (b"GET ", b"PUT ", b"POST", b"HEAD", b"DELE"):
                hdr = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                fields = {}
                for h in hdr.split("\r\n")[1:]:
                    k, _, v = h.partition(":")
                    fields[k.strip().lower()] = v.strip()
                with self.lock:
                    self.requests.append(line.decode("latin-1"))
                    self.headers.append((line.decode("latin-1"), fields))
        with self.lock:
            armed = self.corrupt[direction]
        if armed is None:
            state["mode"] = None
            return data
        data = bytearray(data)
        pos = 0
        while pos < len(data):
            mode = state.get("mode")
            if mode is None:                    # reading headers
                state["hdr"] += bytes(data[pos:])
                end = state["hdr"].find(b"\r\n\r\n")
                if end < 0:
                    return bytes(data)
                consumed = len(data) - pos - (len(state["hdr"]) - end - 4)
                pos += consumed
                hdr = state["hdr"][:end].decode("latin-1")
                state["hdr"] = b""
                first = hdr.split("\r\n", 1)[0]
                clen = 0
                for h in hdr.split("\r\n")[1:]:
                    k, _, v = h.partition(":")
                    if k.strip().lower() == "content-length":
                        clen = int(v.strip())
                parts = first.split()
                if direction == "up":
                    target = parts[:1] in (["PUT"], ["POST"])
                else:
                    target = parts[1:2] in (["200"], ["206"])
                if target and clen > armed:
                    state["mode"], state["left"] = "target", armed
                elif clen:
                    state["mode"], state["left"] = "skip", clen
            elif mode == "skip":
                n = min(state["left"], len(data) - pos)
                pos += n
                state["left"] -= n
                if state["left"] == 0:
                    state["mode"] = None
            else:                               # the target body
                i = pos + state["left"]
                if i < len(data):
                    data[i] ^= 0xff
                    state["mode"] = None
                    with self.lock:
                        self.corrupt[direction] = None
                        self.corrupted[direction] += 1
                    return bytes(data)
                state["left"] -= len(data) - pos
                pos = len(data)
        return bytes(data)
