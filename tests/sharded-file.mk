# Functional tests of the sharded-file plugin.
TESTS += \
	test-sharded-file-basic.py
EXTRA_DIST += \
	test-sharded-file-basic.py
