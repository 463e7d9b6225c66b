# Tests of the S3 test servers and of the s3-object plugin.  The S3
# servers (tests/s3_server.py) run on loopback, started and stopped by
# each test; see tests/s3rver/ for the pinned s3rver.  The plugin's tests
# skip (77) while the plugin is not built.
S3_OBJECT_TESTS = \
	test-s3-harness.py \
	test-s3-object-basic.py \
	test-s3-object-credentials.py \
	test-s3-object-rmw.py \
	test-s3-object-many-chunks.py \
	test-s3-object-gateway-restart.py \
	test-s3-object-corruption.py \
	test-s3-object-raw.py \
	test-s3-object-portability.py \
	test-s3-object-differential.py \
	test-s3-object-http.py \
	test-s3-object-tls.py \
	test-s3-object-lease.py \
	test-s3-object-snapshot-portable.py \
	test-s3-object-clone-differential.py
TESTS += $(S3_OBJECT_TESTS)
# Through tests/s3_fault_proxy.py: S3 answers that lie or misbehave.
S3_OBJECT_FAULT_TESTS = \
	test-s3-object-status-404.py \
	test-s3-object-status-put.py \
	test-s3-object-landed-put.py \
	test-s3-object-listing-hostile.py \
	test-s3-object-open-isolation.py \
	test-s3-object-body-cap.py \
	test-s3-object-create.py \
	test-s3-object-path-as-is.py \
	test-s3-object-shutdown-sleep.py \
	test-s3-object-flips.py \
	test-s3-object-mirror.py \
	test-s3-object-ec.py
TESTS += $(S3_OBJECT_FAULT_TESTS)
EXTRA_DIST += \
	$(S3_OBJECT_TESTS) \
	$(S3_OBJECT_FAULT_TESTS) \
	s3_fault_proxy.py \
	s3_server.py \
	s3rver/package.json \
	s3rver/package-lock.json

# ---- Unit tests of the s3-object plugin's parts (block kept by the
# ---- plugin's author; functional tests are listed above).
S3_UNIT_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/plugins/s3-object \
	$(CURL_CFLAGS) $(LIBXML2_CFLAGS) $(CRYPTO_CFLAGS)
S3_UNIT_LDADD = $(top_builddir)/plugins/s3-object/libs3object.la \
	$(UNIT_LDADD) $(CURL_LIBS) $(LIBXML2_LIBS) $(CRYPTO_LIBS)
check_PROGRAMS += test-sigv4 test-crc32c test-s3-xml sigv4-dump
TESTS += test-sigv4 test-crc32c test-s3-xml test-s3-object-sigv4-botocore.py \
	test-s3-object-connections.py
EXTRA_DIST += test-s3-object-sigv4-botocore.py test-s3-object-connections.py

test_sigv4_SOURCES = test-sigv4.c test-util.h
test_sigv4_CFLAGS = $(S3_UNIT_CFLAGS)
test_sigv4_LDADD = $(S3_UNIT_LDADD)

sigv4_dump_SOURCES = sigv4-dump.c
sigv4_dump_CFLAGS = $(S3_UNIT_CFLAGS)
sigv4_dump_LDADD = $(S3_UNIT_LDADD)

test_crc32c_SOURCES = test-crc32c.c test-util.h
test_crc32c_CFLAGS = $(S3_UNIT_CFLAGS)
test_crc32c_LDADD = $(S3_UNIT_LDADD)

test_s3_xml_SOURCES = test-s3-xml.c nbdkit-shim.c nbdkit-shim.h test-util.h
test_s3_xml_CFLAGS = $(S3_UNIT_CFLAGS)
test_s3_xml_LDADD = $(S3_UNIT_LDADD)
