# Functional tests of the sharded-file plugin.
SHARDED_FILE_TESTS = \
	test-sharded-file-basic.py \
	test-sharded-file-differential.py \
	test-sharded-file-race.py \
	test-sharded-file-persist.py \
	test-sharded-file-exports.py \
	test-sharded-file-lock.py \
	test-sharded-file-bad-input.py \
	test-sharded-file-extents.py \
	test-sharded-file-large.py \
	test-sharded-file-clients.py
TESTS += $(SHARDED_FILE_TESTS)
EXTRA_DIST += $(SHARDED_FILE_TESTS)
