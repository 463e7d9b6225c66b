# Tests of retry-backoff (none yet).
