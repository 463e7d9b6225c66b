# Tests of chunk-cache (none yet).
