"""An HTTP/1.1 reverse proxy that injects S3 faults, for shardkit's tests.

FaultProxy listens on a free port of 127.0.0.1 and forwards every request
to a real S3 server (CephRGW or S3rver of s3_server.py) unless a rule says
otherwise.  It forwards the request line (method, exact path and query
bytes) and every header unchanged, the Host header included: the plugin
signs SigV4 over the host it connects to and the gateway checks the
signature over what it receives, so nothing that is signed may change.
Both sides are kept alive; request bodies are read by Content-Length (the
plugin never sends chunked bodies); responses are read by Content-Length,
chunked encoding or connection close, and sent on with a Content-Length.

Rules are matched in the order they were added; the first rule that
matches a request *and fires* decides what happens to it:

    from s3_fault_proxy import FaultProxy
    p = FaultProxy(s3.port)                 # s3: a CephRGW or S3rver
    p.endpoint                              # "http://127.0.0.1:PORT"
    r = p.add("status", method="GET", key=r"vol\\.1\\.chunk$",
              status=404, code="NoSuchKey")
    ...
    p.remove(r)        # or p.clear(); r.fired counts the times it acted

Matching (all optional): method= (exact, e.g. "GET"), key= (regex searched
in the URL-decoded object key, the path after "/BUCKET/"; "" for a bucket
request), query= (regex searched in the raw query string, e.g.
r"list-type=2"), header= ((name, regex)).  Firing: after=N skips the first
N matching requests, count=N fires at most N times, probability=P fires
with probability P (the proxy's RNG, seeded by seed=).

Actions (first argument of add()):
  "status"   answer STATUS without forwarding, with an S3 error XML body
             (code=, message=) or body= bytes; raw= bytes replaces the
             whole answer (e.g. a garbage status line), then the
             connection is closed.
  "replace"  forward, then answer STATUS instead of the server's answer
             (code=/message=/body= as for "status").
  "cut"      forward and read the server's answer, then close the client's
             connection without answering (a PUT stored, its answer lost).
  "drop"     close the client's connection without forwarding.
  "list"     forward a ListObjectsV2 and rewrite its XML: endless=True
             (IsTruncated true, the same NextContinuationToken forever),
             add_keys=[(key, size), ...] (extra <Contents>), sizes={key:
             size} (change listed sizes), delay=SECONDS (before answering),
             bad_token=STRING (NextContinuationToken replaced, as if
             damaged).
  "delay"    forward after sleeping delay= seconds.
  "endless"  answer 200 with a body that never ends (streamed until the
             client goes away or limit= bytes); content_length= None (no
             Content-Length: the body ends at close) or a number to claim.
  "flip"     forward, then flip one byte of the answer's body (XOR xor=,
             default 0xff) at a random offset; only answers with a body.
  "slowdown" answer 503 SlowDown without forwarding (= "status", 503).
  "garbage"  answer XML that is not XML with status= (default 200).

Every request is recorded in p.requests as a Record (method, target (raw
path + "?" + query), path, query, key, headers (lower-case names), status
sent (None when none was sent), action (the rule's action or
"forward")).  p.find(method=, key=, query=) filters them.

Threads are daemons; close() (registered with on_exit) stops listening
and shuts every connection down.
"""

import random
import re
import socket
import threading
import time
import urllib.parse

try:
    from shardkit_test import on_exit
except ImportError:                     # used outside the test suite
    import atexit

    def on_exit(fn):
        atexit.register(fn)

REASONS = {200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
           301: "Moved Permanently", 307: "Temporary Redirect",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           409: "Conflict", 412: "Precondition Failed",
           416: "Requested Range Not Satisfiable",
           500: "Internal Server Error", 503: "Service Unavailable"}

S3_CODES = {301: "PermanentRedirect", 403: "AccessDenied", 404: "NoSuchKey",
            412: "PreconditionFailed", 416: "InvalidRange",
            500: "InternalError", 503: "SlowDown"}


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def s3_error_body(code, message="injected by s3_fault_proxy", key=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><Key>%s</Key><RequestId>fault</RequestId>'
            '</Error>' % (xml_escape(code), xml_escape(message),
                          xml_escape(key))).encode()


class Record:
    __slots__ = ("method", "target", "path", "query", "key", "headers",
                 "status", "action", "time")

    def __repr__(self):
        return "%s %s -> %s (%s)" % (self.method, self.target, self.status,
                                    self.action)


class Rule:
    def __init__(self, action, method=None, key=None, query=None,
                 header=None, count=None, after=0, probability=None,
                 **params):
        self.action = action
        self.method = method
        self.key = re.compile(key) if key is not None else None
        self.query = re.compile(query) if query is not None else None
        self.header = (header[0].lower(), re.compile(header[1])) \
            if header else None
        self.count = count
        self.after = after
        self.probability = probability
        self.params = params
        self.matched = 0
        self.fired = 0

    def matches(self, rec):
        if self.method is not None and rec.method != self.method:
            return False
        if self.key is not None and not self.key.search(rec.key):
            return False
        if self.query is not None and not self.query.search(rec.query):
            return False
        if self.header is not None and not self.header[1].search(
                rec.headers.get(self.header[0], "")):
            return False
        return True

    def __repr__(self):
        return "Rule(%s, fired %d)" % (self.action, self.fired)


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from a socket: lines and exact byte counts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        d = self.sock.recv(262144)
        if not d:
            raise _Closed()
        self.buf += d

    def head(self, limit=1 << 20):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                h, self.buf = self.buf[:i + 4], self.buf[i + 4:]
                return h
            if len(self.buf) > limit:
                raise _Closed()
            self._more()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                h, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return h
            self._more()

    def exact(self, n):
        while len(self.buf) < n:
            self._more()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def rest(self):
        try:
            while True:
                self._more()
        except (_Closed, OSError):
            pass
        d, self.buf = self.buf, b""
        return d


def _parse_headers(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = []
    for h in lines[1:]:
        if not h:
            continue
        k, _, v = h.partition(":")
        fields.append((k.strip(), v.strip()))
    return lines[0], fields


def _get(fields, name):
    name = name.lower()
    for k, v in fields:
        if k.lower() == name:
            return v
    return None


class _Response:
    def __init__(self, status, reason, fields, body, close):
        self.status = status
        self.reason = reason
        self.fields = fields
        self.body = body
        self.close = close


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1", seed=0,
                 bucket=None):
        self.target = (target_host, target_port)
        self.bucket = bucket
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rules = []
        self.requests = []
        self.socks = set()
        self.closing = False
        self.connections = 0
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True,
                                       name="fault-proxy-accept")
        self.thread.start()
        on_exit(self.close)

    # ---- API -------------------------------------------------------------

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def add(self, action, **kw):
        """Add a rule (see the module's docstring); return it."""
        r = Rule(action, **kw)
        with self.lock:
            self.rules.append(r)
        return r

    def remove(self, rule):
        with self.lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear(self):
        with self.lock:
            self.rules = []

    def reset_records(self):
        with self.lock:
            self.requests = []

    def find(self, method=None, key=None, query=None):
        """The recorded requests matching METHOD, KEY regex, QUERY regex."""
        with self.lock:
            reqs = list(self.requests)
        out = []
        for r in reqs:
            if method is not None and r.method != method:
                continue
            if key is not None and not re.search(key, r.key):
                continue
            if query is not None and not re.search(query, r.query):
                continue
            out.append(r)
        return out

    def close(self):
        self.closing = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks, self.socks = list(self.socks), set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    # ---- internals -------------------------------------------------------

    def _track(self, s):
        with self.lock:
            self.socks.add(s)

    def _untrack(self, s):
        with self.lock:
            self.socks.discard(s)
        try:
            s.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.closing:
                c.close()
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(c)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True,
                             name="fault-proxy-conn").start()

    def _choose(self, rec):
        with self.lock:
            for r in self.rules:
                if not r.matches(rec):
                    continue
                r.matched += 1
                if r.matched <= r.after:
                    continue
                if r.count is not None and r.fired >= r.count:
                    continue
                if r.probability is not None and \
                        self.rng.random() >= r.probability:
                    continue
                r.fired += 1
                return r
        return None

    def _serve(self, c):
        up = None
        upr = None
        rd = _Reader(c)
        try:
            while not self.closing:
                try:
                    head = rd.head()
                except (_Closed, OSError):
                    return
                line, fields = _parse_headers(head)
                parts = line.split(" ")
                if len(parts) != 3:
                    return
                method, target = parts[0], parts[1]
                clen = int(_get(fields, "content-length") or 0)
                body = rd.exact(clen) if clen else b""
                rec = Record()
                rec.method = method
                rec.target = target
                rec.path, _, rec.query = target.partition("?")
                p = urllib.parse.unquote(rec.path.lstrip("/"))
                if self.bucket and (p == self.bucket or
                                    p.startswith(self.bucket + "/")):
                    rec.key = p[len(self.bucket) + 1:]
                else:
                    rec.key = p.partition("/")[2]
                rec.headers = {k.lower(): v for k, v in fields}
                rec.status = None
                rec.time = time.monotonic()
                rule = self._choose(rec)
                rec.action = rule.action if rule else "forward"
                with self.lock:
                    self.requests.append(rec)
                client_close = (_get(fields, "connection") or "").lower() \
                    == "close"

                act = rule.action if rule else "forward"
                prm = rule.params if rule else {}
                if act in ("status", "slowdown", "garbage", "drop",
                           "endless"):
                    if act == "drop":
                        return
                    if act == "endless":
                        self._endless(c, rec, prm)
                        return
                    if "raw" in prm:
                        c.sendall(prm["raw"])
                        rec.status = "raw"
                        return
                    if act == "garbage":
                        resp = self._made(prm.get("status", 200), b"<<<not "
                                          b"xml at all &&& </Delete", rec)
                    elif act == "slowdown":
                        resp = self._made(503, s3_error_body(
                            "SlowDown", "Please reduce your request rate."),
                            rec)
                    else:
                        resp = self._error(prm, rec)
                    self._send(c, resp, method, rec)
                    if client_close:
                        return
                    continue

                if act == "delay":
                    time.sleep(prm.get("delay", 1))
                # Forward.
                resp = None
                for attempt in range(2):
                    if up is None:
                        up = socket.create_connection(self.target, timeout=60)
                        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                      1)
                        self._track(up)
                        upr = _Reader(up)
                    try:
                        up.sendall(head + body)
                        resp = self._read_response(upr, method)
                        break
                    except (_Closed, OSError):
                        # A kept-alive upstream connection the server had
                        # closed: reconnect once.
                        self._untrack(up)
                        up = upr = None
                        if self.closing or attempt:
                            return
                if resp.close:
                    self._untrack(up)
                    up = upr = None

                if act == "cut":
                    rec.status = "cut"
                    return
                if act == "replace":
                    resp = self._error(prm, rec)
                elif act == "list":
                    if prm.get("delay"):
                        time.sleep(prm["delay"])
                    if resp.status == 200:
                        resp.body = self._rewrite_list(resp.body, prm)
                elif act == "flip":
                    if resp.body:
                        with self.lock:
                            i = self.rng.randrange(len(resp.body))
                        b = bytearray(resp.body)
                        b[i] ^= prm.get("xor", 0xff)
                        resp.body = bytes(b)
                self._send(c, resp, method, rec)
                if client_close or resp.close:
                    return
        except (_Closed, OSError):
            return
        finally:
            if up is not None:
                self._untrack(up)
            self._untrack(c)

    def _read_response(self, rd, method):
        while True:
            head = rd.head()
            line, fields = _parse_headers(head)
            parts = line.split(" ", 2)
            status = int(parts[1])
            if 100 <= status < 200:
                continue                # 100 Continue: not passed on
            break
        reason = parts[2] if len(parts) > 2 else ""
        close = (_get(fields, "connection") or "").lower() == "close"
        te = (_get(fields, "transfer-encoding") or "").lower()
        cl = _get(fields, "content-length")
        if method == "HEAD" or status in (204, 304):
            body = None                 # keep the headers as they are
        elif "chunked" in te:
            body = b""
            while True:
                size = int(rd.line().split(b";")[0].strip(), 16)
                if size == 0:
                    while rd.line() != b"\r\n":
                        pass
                    break
                body += rd.exact(size)
                rd.exact(2)
        elif cl is not None:
            body = rd.exact(int(cl))
        else:
            body = rd.rest()
            close = True
        return _Response(status, reason, fields, body, close)

    def _made(self, status, body, rec):
        return _Response(status, REASONS.get(status, "Injected"),
                         [("Content-Type", "application/xml"),
                          ("x-amz-request-id", "fault")], body, False)

    def _error(self, prm, rec):
        status = prm.get("status", 500)
        if "body" in prm:
            body = prm["body"]
        else:
            code = prm.get("code") or S3_CODES.get(status, "InjectedError")
            body = s3_error_body(code, prm.get("message",
                                               "injected by s3_fault_proxy"),
                                 rec.key)
        return self._made(status, body, rec)

    def _send(self, c, resp, method, rec):
        out = ["HTTP/1.1 %d %s" % (resp.status, resp.reason)]
        for k, v in resp.fields:
            if resp.body is not None and k.lower() in ("content-length",
                                                       "transfer-encoding"):
                continue
            out.append("%s: %s" % (k, v))
        if resp.body is not None:
            out.append("Content-Length: %d" % len(resp.body))
        data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if resp.body and method != "HEAD":
            data += resp.body
        rec.status = resp.status
        c.sendall(data)

    def _endless(self, c, rec, prm):
        hdr = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n" % \
            prm.get("content_type", "application/octet-stream")
        if prm.get("content_length") is not None:
            hdr += "Content-Length: %d\r\n" % prm["content_length"]
        else:
            hdr += "Connection: close\r\n"
        c.sendall((hdr + "\r\n").encode())
        rec.status = 200
        first = prm.get("prefix_bytes", b"")
        if first:
            c.sendall(first)
        block = prm.get("fill", b"x") * 65536
        block = block[:65536]
        limit = prm.get("limit", 1 << 40)
        sent = len(first)
        while not self.closing and sent < limit:
            c.sendall(block)
            sent += len(block)

    def _rewrite_list(self, body, prm):
        text = body.decode("utf-8")
        if prm.get("sizes"):
            for k, size in prm["sizes"].items():
                for form in (xml_escape(k), urllib.parse.quote(k, safe="~")):
                    text = re.sub(r"(<Key>%s</Key>(?:(?!</Contents>).)*?"
                                  r"<Size>)\d+(</Size>)" % re.escape(form),
                                  r"\g<1>%d\g<2>" % size, text, flags=re.S)
        add = prm.get("add_keys") or []
        if add:
            extra = "".join(
                "<Contents><Key>%s</Key><LastModified>2024-01-01T00:00:00."
                "000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf"
                "8427e&quot;</ETag><Size>%d</Size><StorageClass>STANDARD"
                "</StorageClass></Contents>" % (xml_escape(k), size)
                for k, size in add)
            text = text.replace("</ListBucketResult>",
                                extra + "</ListBucketResult>")
            m = re.search(r"<KeyCount>(\d+)</KeyCount>", text)
            if m:
                text = text.replace(m.group(0), "<KeyCount>%d</KeyCount>"
                                    % (int(m.group(1)) + len(add)))
        if prm.get("bad_token") is not None:
            text = re.sub(r"<NextContinuationToken>.*?</NextContinuationToken>",
                          "<NextContinuationToken>%s</NextContinuationToken>"
                          % xml_escape(prm["bad_token"]), text, flags=re.S)
        if prm.get("endless"):
            token = prm.get("token", "c2hhcmRraXQtZW5kbGVzcw==")
            text = re.sub(r"<IsTruncated>\w+</IsTruncated>",
                          "<IsTruncated>true</IsTruncated>", text)
            text = re.sub(r"<NextContinuationToken>.*?"
                          r"</NextContinuationToken>", "", text, flags=re.S)
            text = text.replace("</ListBucketResult>",
                                "<NextContinuationToken>%s</NextContinuation"
                                "Token></ListBucketResult>" % token)
        return text.encode("utf-8")


# ---- helpers for the tests -------------------------------------------------

def plugin_args_via(s3, proxy, prefix=None, extra=()):
    """["s3-object", ...s3.plugin_args(prefix)...] with the endpoint swapped
    for PROXY's, plus EXTRA."""
    a = ["s3-object"] + ["endpoint=" + proxy.endpoint
                         if x.startswith("endpoint=") else x
                         for x in s3.plugin_args(prefix=prefix)]
    return a + list(extra)


def expect_nbd_error(fn, errnos=("EIO",), what="request"):
    """Call FN; it must raise nbd.Error with an errno in ERRNOS (any errno
    when ERRNOS is None).  Returns the error."""
    import nbd
    from shardkit_test import fail
    try:
        r = fn()
    except nbd.Error as e:
        if errnos is not None and e.errno not in errnos:
            fail("%s: failed with %s (%s), expected %s"
                 % (what, e.errno, e, "/".join(errnos)))
        return e
    if isinstance(r, (bytes, bytearray)):
        fail("%s: succeeded and returned %s data instead of failing"
             % (what, "all-zero" if not any(r) else "non-zero"))
    fail("%s: succeeded instead of failing" % what)


def in_thread(fn, timeout):
    """Run FN in a daemon thread for at most TIMEOUT seconds.  Returns
    (finished, result or exception, seconds)."""
    out = {}

    def run():
        try:
            out["r"] = fn()
        except BaseException as e:      # noqa: B902 - handed back
            out["r"] = e
    t0 = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), out.get("r"), time.monotonic() - t0
