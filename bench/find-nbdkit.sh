# Sourced by the benchmarks that run nbdkit from a build tree: sets NBDKIT
# (unless set) to the build tree's ./nbdkit wrapper, found in the current
# directory or beside bench/, else the system's nbdkit, and puts /usr/bin
# first in PATH (Debian's python3 has the nbd module; see tests/README.md).
export PATH="/usr/bin:$PATH"
if [ -z "${NBDKIT:-}" ]; then
    _bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    if [ -x ./nbdkit ]; then NBDKIT="$PWD/nbdkit"
    elif [ -x "$_bench_dir/../nbdkit" ]; then NBDKIT="$_bench_dir/../nbdkit"
    else NBDKIT=nbdkit; fi
fi
