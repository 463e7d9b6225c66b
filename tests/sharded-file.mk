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
	test-sharded-file-clients.py \
	test-sharded-file-meta-checksum.py \
	test-sharded-file-snapshot.py \
	test-sharded-file-clone-differential.py \
	test-sharded-file-mirror.py \
	test-sharded-file-ec.py
TESTS += $(SHARDED_FILE_TESTS)
EXTRA_DIST += $(SHARDED_FILE_TESTS)

# Storage fault injection (LD_PRELOAD) for test-sharded-file-faults.py.
check_LTLIBRARIES += fault-inject.la
fault_inject_la_SOURCES = fault-inject.c
fault_inject_la_CFLAGS = $(WARNINGS_CFLAGS) -I$(top_builddir)
fault_inject_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
fault_inject_la_LIBADD = -ldl
SHARDED_FILE_FAULT_TESTS = \
	test-sharded-file-faults.py \
	test-sharded-file-evict-sync.py \
	test-sharded-file-emfile.py
TESTS += $(SHARDED_FILE_FAULT_TESTS)
EXTRA_DIST += $(SHARDED_FILE_FAULT_TESTS)
