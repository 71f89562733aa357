#!/usr/bin/env bash
# Build the GCS emulator (Go module github.com/fsouza/fake-gcs-server) at the pinned version
# into a per-version cache, once. Prints the path of the `fake-gcs-server` binary on success.
#   bash scripts/install-fake-gcs-server.sh            # pinned (scripts/fake-gcs-server.version)
#   FAKE_GCS_SERVER_VERSION=v1.x.y bash scripts/...    # another version
#   FAKE_GCS_SERVER_INSTALL_ATTEMPTS=N (default 3)     # tries before giving up
# The storage tests find the binary at the same cache path (or via ORDERLAKE_FAKE_GCS_SERVER).
# Exit codes: 0 built or cached, 1 build failed, 2 no Go, 3 the module proxy refused the version.
#
# Why not `go install github.com/fsouza/fake-gcs-server@v...`: `go install` also reads the
# module's version list, which the Go proxy here refuses (403) while it serves the pinned
# version itself. So: download that exact version and build it from the module cache (its
# go.sum pins every dependency; `go build` fetches those by exact version too).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${FAKE_GCS_SERVER_VERSION:-$(tr -d '[:space:]' < "$here/fake-gcs-server.version")}"
attempts="${FAKE_GCS_SERVER_INSTALL_ATTEMPTS:-3}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/orderlake/fake-gcs-server/${version}"
bin="$cache/bin"
module="github.com/fsouza/fake-gcs-server"

# The binary has no --version; `-help` parses no config and exits 0, which proves it runs.
# The cache folder is per version, so a binary there is the pinned one.
if [ -x "$bin/fake-gcs-server" ] && "$bin/fake-gcs-server" -help >/dev/null 2>&1; then
  echo "fake-gcs-server ${version} already built: $bin/fake-gcs-server" >&2
  echo "$bin/fake-gcs-server"
  exit 0
fi

command -v go >/dev/null || { echo "install-fake-gcs-server: Go is not installed" >&2; exit 2; }
mkdir -p "$bin"
log="$cache/build.log"
start=$(date +%s)
refused=0
for try in $(seq 1 "$attempts"); do
  echo "building ${module}@${version} with $(go version), try $try/$attempts..." >&2
  # Build to a temporary name and rename: a concurrent run or an interrupted build never
  # leaves a half-written binary at the path the tests look for.
  if src=$(go mod download -json "${module}@${version}" 2>"$log" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') && [ -n "$src" ] \
     && (cd "$src" && GOFLAGS="-trimpath -buildvcs=false" \
           go build -o "$bin/fake-gcs-server.$$.tmp" .) >>"$log" 2>&1 \
     && mv -f "$bin/fake-gcs-server.$$.tmp" "$bin/fake-gcs-server"; then
    echo "built fake-gcs-server ${version} in $(( $(date +%s) - start ))s" >&2
    echo "$bin/fake-gcs-server"
    exit 0
  fi
  rm -f "$bin/fake-gcs-server.$$.tmp"
  cat "$log" >&2
  refused=$(grep -c "403 Forbidden\|not available" "$log" || true)
  if [ "$try" -lt "$attempts" ]; then sleep $(( 5 * try )); fi
done
if [ "$refused" -gt 0 ]; then
  echo "install-fake-gcs-server: the Go module proxy refused ${module}@${version}" \
    "($attempts tries); point ORDERLAKE_FAKE_GCS_SERVER at a fake-gcs-server binary, or pin" \
    "a version the proxy serves in scripts/fake-gcs-server.version." >&2
  exit 3
fi
echo "install-fake-gcs-server: the build failed ($attempts tries); log: $log" >&2
exit 1
