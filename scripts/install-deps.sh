#!/usr/bin/env bash
# Install what shardkit needs from Debian's packages (and npm), skipping
# what is already there.  Usage: scripts/install-deps.sh [build|test]
#   build: what building and serving needs
#   test:  build + every tool the test suite uses (default)
set -euo pipefail

what="${1:-test}"

build_pkgs=(
    build-essential autoconf automake libtool pkg-config perl
    nbdkit nbdkit-plugin-dev
    libcurl4-openssl-dev libxml2-dev libssl-dev libisal-dev
)
client_pkgs=(
    libnbd-bin python3-libnbd qemu-utils
)
test_pkgs=(
    libnbd-dev fio valgrind nbd-client strace
    python3-botocore python3-boto3 nbdkit-plugin-python
    ceph-mon ceph-osd radosgw ceph-common
    nodejs npm openssl
)

case "$what" in
    build) pkgs=("${build_pkgs[@]}" "${client_pkgs[@]}") ;;
    test)  pkgs=("${build_pkgs[@]}" "${client_pkgs[@]}" "${test_pkgs[@]}") ;;
    *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    # nodejs/npm may come from elsewhere than Debian: a working binary will do.
    case "$p" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm)    command -v npm  >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "error: run as root, or install these packages: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test suite's npm packages (s3rver), pinned by tests/s3rver/package-lock.json.
if [ "$what" = test ] && [ -f tests/s3rver/package.json ] &&
   [ ! -d tests/s3rver/node_modules ]; then
    (cd tests/s3rver && npm ci --no-audit --no-fund --loglevel=error)
fi
exit 0
