# Tests of s3-object (none yet).
