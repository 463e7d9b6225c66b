# Unit tests of common/.
check_PROGRAMS += test-volume-name test-volume-meta test-chunk-engine \
	test-mirror-store test-backoff test-ec-codec test-ec-store
TESTS += test-volume-name test-volume-meta test-chunk-engine \
	test-mirror-store test-backoff test-ec-codec test-ec-store
EXTRA_DIST += nbdkit-shim.h

test_volume_name_SOURCES = test-volume-name.c test-util.h
test_volume_name_CFLAGS = $(UNIT_CFLAGS)
test_volume_name_LDADD = $(UNIT_LDADD)

test_volume_meta_SOURCES = test-volume-meta.c test-util.h
test_volume_meta_CFLAGS = $(UNIT_CFLAGS)
test_volume_meta_LDADD = $(UNIT_LDADD)

test_chunk_engine_SOURCES = test-chunk-engine.c nbdkit-shim.c nbdkit-shim.h test-util.h
test_chunk_engine_CFLAGS = $(UNIT_CFLAGS)
test_chunk_engine_LDADD = $(UNIT_LDADD)

test_mirror_store_SOURCES = test-mirror-store.c mem-store.h nbdkit-shim.c nbdkit-shim.h test-util.h
test_mirror_store_CFLAGS = $(UNIT_CFLAGS)
test_mirror_store_LDADD = $(UNIT_LDADD)

test_backoff_SOURCES = test-backoff.c test-util.h
test_backoff_CFLAGS = $(UNIT_CFLAGS)
test_backoff_LDADD = $(top_builddir)/common/libshardkit-util.la

test_ec_codec_SOURCES = test-ec-codec.c test-util.h
test_ec_codec_CFLAGS = $(UNIT_CFLAGS) $(ISAL_CFLAGS)
test_ec_codec_LDADD = $(UNIT_LDADD)

test_ec_store_SOURCES = test-ec-store.c mem-store.h nbdkit-shim.c nbdkit-shim.h test-util.h
test_ec_store_CFLAGS = $(UNIT_CFLAGS) $(ISAL_CFLAGS)
test_ec_store_LDADD = $(UNIT_LDADD)
