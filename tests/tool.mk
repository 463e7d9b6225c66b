# Tests of the volume tool, shardkit (tool/).
TOOL_TESTS = \
	test-tool-dir-basic.py \
	test-tool-dir-check.py \
	test-tool-dir-in-use.py \
	test-tool-dir-resize.py \
	test-tool-bad-input.py \
	test-tool-snapshot-bad-input.py \
	test-tool-snapshot-no-copy.py \
	test-tool-snapshot-rollback-flatten.py \
	test-tool-copy-bad-input.py \
	test-tool-mirror-status-scrub.py \
	test-tool-ec-scrub.py
TESTS += $(TOOL_TESTS)
EXTRA_DIST += $(TOOL_TESTS) tool_test.py
TOOL_S3_TESTS = \
	test-tool-s3-basic.py \
	test-tool-s3-check.py \
	test-tool-s3-snapshot.py \
	test-tool-s3-set-status-scrub.py \
	test-tool-copy.py
TESTS += $(TOOL_S3_TESTS)
EXTRA_DIST += $(TOOL_S3_TESTS)
