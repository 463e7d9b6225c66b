"""Answers that do not mean "stored" or "deleted" are errors to the client:
  - a chunk PUT answered 416, 404, 301 or 201, after the server stored it
    ("replace") or without forwarding it ("status"): the FUA write (and
    the flush after it) is never acknowledged;
  - a DELETE of a chunk answered 404, a DeleteObjects (POST ?delete)
    answered with a body that is not XML, or with a per-key <Error>: the
    trim fails.
(DESIGN.md: a status is success only where the operation defines it.)"""

import os

import nbd

from s3_fault_proxy import FaultProxy, expect_nbd_error, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

KiB = 1024
CH = 64 * KiB
SIZE = 16 * CH

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
srv = Server(plugin_args_via(s3, proxy, "sput/", [
    "export=vol", "size=%d" % SIZE, "chunk-size=64K", "http-retries=1"]))
h = srv.connect()
base = os.urandom(SIZE)
h.pwrite(base, 0)
h.flush()

n = 0
for mode in ("replace", "status"):
    for st in (416, 404, 301, 201):
        c = n
        n += 1
        rule = proxy.add(mode, method="PUT", key=r"vol\.\d+\.chunk$",
                         status=st)
        buf = os.urandom(CH)

        def write_and_flush():
            h.pwrite(buf, c * CH, nbd.CMD_FLAG_FUA)
            h.flush()
        expect_nbd_error(write_and_flush, errnos=None,
                         what="chunk PUT answered %d (%s)" % (st, mode))
        check(rule.fired >= 1, "the proxy answered %d" % st)
        proxy.remove(rule)
        print("PUT answered %d (%s): write failed" % (st, mode), flush=True)

# A DELETE (trim of one whole chunk) answered 404.
rule = proxy.add("status", method="DELETE", key=r"vol\.10\.chunk$",
                 status=404, code="NoSuchKey")
expect_nbd_error(lambda: h.trim(CH, 10 * CH), errnos=None,
                 what="trim whose DELETE is answered 404")
check(rule.fired >= 1, "the proxy answered the DELETE 404: %s"
      % proxy.find(key=r"vol\.10\.chunk$"))
proxy.remove(rule)

# A DeleteObjects (trim of two whole chunks) answered 200 with garbage.
rule = proxy.add("garbage", method="POST", query=r"(^|&)delete")
expect_nbd_error(lambda: h.trim(2 * CH, 11 * CH), errnos=None,
                 what="trim whose DeleteObjects answer is not XML")
check(rule.fired >= 1, "the proxy answered the POST ?delete: %s"
      % proxy.find(method="POST"))
proxy.remove(rule)

# A DeleteObjects that the server carried out, answered with one <Error>.
err = ('<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns='
       '"http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>sput/vol.13'
       '.chunk</Key></Deleted><Error><Key>sput/vol.14.chunk</Key><Code>'
       'InternalError</Code><Message>injected</Message></Error>'
       '</DeleteResult>').encode()
rule = proxy.add("replace", method="POST", query=r"(^|&)delete", status=200,
                 body=err)
expect_nbd_error(lambda: h.trim(2 * CH, 13 * CH), errnos=None,
                 what="trim whose DeleteObjects answer has a per-key Error")
check(rule.fired >= 1, "the proxy answered the POST ?delete")
proxy.remove(rule)

h.shutdown()
srv.stop()
print("PASS")
