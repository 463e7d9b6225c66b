"""shardkit rollback and flatten, and deleting snapshots, in a
directory.  rollback VOL SNAP drops every write since the snapshot (VOL
reads SNAP's data again, its chunks of the dropped generation are gone,
SNAP untouched); it is refused for a snapshot that is not VOL's latest.
flatten copies what a clone reads from its snapshot into the clone and
drops its base: the clone reads the same, and the snapshot (and the
volume it came from) can then be deleted, chunks and all, while the
clone still reads the same data (tests/clone_test.py, rollback_flatten;
test-tool-s3-snapshot runs it on a bucket)."""

import os

from clone_test import DirStore, rollback_flatten
from shardkit_test import tmpdir

d = tmpdir()
rollback_flatten(DirStore(d), lambda: os.listdir(d))
print("ok")
