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
	test-s3-object-differential.py
TESTS += $(S3_OBJECT_TESTS)
EXTRA_DIST += \
	$(S3_OBJECT_TESTS) \
	s3_server.py \
	s3rver/package.json \
	s3rver/package-lock.json
