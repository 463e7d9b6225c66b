# Tests of the S3 test servers and of the s3-object plugin.  The S3
# servers (tests/s3_server.py) run on loopback, started and stopped by
# each test; see tests/s3rver/ for the pinned s3rver.
TESTS += \
	test-s3-harness.py
EXTRA_DIST += \
	s3_server.py \
	s3rver/package.json \
	s3rver/package-lock.json \
	test-s3-harness.py
