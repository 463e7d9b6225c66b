# Tests of the retry-backoff filter.

# The filter's pure parts (duration parser, backoff, errno policy).
check_PROGRAMS += test-retry-backoff-units
TESTS += test-retry-backoff-units
test_retry_backoff_units_SOURCES = test-retry-backoff-units.c test-util.h \
	../filters/retry-backoff/backoff.c \
	../filters/retry-backoff/duration.c \
	../filters/retry-backoff/errno-policy.c
test_retry_backoff_units_CFLAGS = $(SHARDKIT_CFLAGS) \
	-I$(top_srcdir)/filters/retry-backoff

# Functional tests: nbdkit's error filter (and eval plugin) below the filter.
TESTS += \
	test-retry-backoff-differential.py \
	test-retry-backoff-bounds.py \
	test-retry-backoff-reopen.py \
	test-retry-backoff-same-request.py \
	test-retry-backoff-readonly.py \
	test-retry-backoff-config.py \
	test-retry-backoff-s3.py \
	test-retry-backoff-cache-stack.py \
	test-retry-backoff-deadline.py
EXTRA_DIST += \
	test-retry-backoff-flaky.sh \
	test-retry-backoff-differential.py \
	test-retry-backoff-bounds.py \
	test-retry-backoff-reopen.py \
	test-retry-backoff-same-request.py \
	test-retry-backoff-readonly.py \
	test-retry-backoff-config.py \
	test-retry-backoff-s3.py \
	test-retry-backoff-cache-stack.py \
	test-retry-backoff-deadline.py
