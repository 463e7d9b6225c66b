# Functional tests of the chunk-cache filter.
CHUNK_CACHE_TESTS = \
	test-chunk-cache-differential.py \
	test-chunk-cache-crash.py \
	test-chunk-cache-persistence.py \
	test-chunk-cache-errors.py \
	test-chunk-cache-race.py \
	test-chunk-cache-eviction.py \
	test-chunk-cache-shutdown.py \
	test-chunk-cache-s3.py \
	test-chunk-cache-reads.py \
	test-chunk-cache-enospc.py \
	test-chunk-cache-hostile.py \
	test-chunk-cache-zerofail.py \
	test-chunk-cache-bootid.py \
	test-chunk-cache-local-zero.py \
	test-chunk-cache-shutdown-stuck.py \
	test-chunk-cache-local-syncfail.py \
	test-chunk-cache-tmpfs.py \
	test-chunk-cache-own-flush.py \
	test-chunk-cache-cut.py \
	test-chunk-cache-symlinks.py \
	test-chunk-cache-evict-indexfail.py \
	test-chunk-cache-zero-indexfail.py \
	test-chunk-cache-multi-export.py \
	test-chunk-cache-max-age.py
TESTS += $(CHUNK_CACHE_TESTS)
EXTRA_DIST += $(CHUNK_CACHE_TESTS) \
	chunk_cache_util.py
