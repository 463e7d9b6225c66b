# Functional tests of the chunk-cache filter.
TESTS += \
	test-chunk-cache-differential.py \
	test-chunk-cache-crash.py
EXTRA_DIST += \
	chunk_cache_util.py \
	test-chunk-cache-differential.py \
	test-chunk-cache-crash.py
