# Tests of the retry-backoff filter.

# The filter's pure parts: its errno policy, and the duration parser and
# backoff of common/ as the filter uses them.
check_PROGRAMS += test-retry-backoff-units
TESTS += test-retry-backoff-units
test_retry_backoff_units_SOURCES = test-retry-backoff-units.c test-util.h \
	../filters/retry-backoff/errno-policy.c
test_retry_backoff_units_CFLAGS = $(SHARDKIT_CFLAGS) \
	-I$(top_srcdir)/filters/retry-backoff
test_retry_backoff_units_LDADD = $(top_builddir)/common/libshardkit-util.la

# Functional tests: nbdkit's error filter (and eval plugin) below the filter.
RETRY_BACKOFF_TESTS = \
	test-retry-backoff-differential.py \
	test-retry-backoff-bounds.py \
	test-retry-backoff-reopen.py \
	test-retry-backoff-same-request.py \
	test-retry-backoff-readonly.py \
	test-retry-backoff-config.py \
	test-retry-backoff-s3.py \
	test-retry-backoff-cache-stack.py \
	test-retry-backoff-deadline.py \
	test-retry-backoff-permanent.py \
	test-retry-backoff-shutdown.py
TESTS += $(RETRY_BACKOFF_TESTS)
EXTRA_DIST += $(RETRY_BACKOFF_TESTS) \
	test-retry-backoff-flaky.sh

# A filter for below retry-backoff that fails open (with no errno) and
# finalize on demand (test-retry-backoff-permanent.py).
check_LTLIBRARIES += retry-backoff-faults.la
retry_backoff_faults_la_SOURCES = retry-backoff-faults.c
retry_backoff_faults_la_CFLAGS = $(WARNINGS_CFLAGS) $(NBDKIT_CFLAGS) \
	-I$(top_builddir)
retry_backoff_faults_la_LDFLAGS = -module -avoid-version -shared \
	-rpath /nowhere
