# Functional tests of the sharded-file plugin.
TESTS +=
