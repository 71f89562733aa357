#!/usr/bin/env bash
# Build the real Databricks CLI (Go module github.com/databricks/cli) at the pinned version
# into a per-version cache, once. Prints the path of the `databricks` binary on success.
#   bash scripts/install-databricks-cli.sh            # pinned version (scripts/databricks-cli.version)
#   DATABRICKS_CLI_VERSION=v0.x.y bash scripts/...    # another version
#   DATABRICKS_CLI_INSTALL_ATTEMPTS=N (default 3)     # tries before giving up
# The tests find the binary at the same cache path (or via ORDERLAKE_DATABRICKS_CLI).
# Exit codes: 0 built or cached, 1 build failed, 2 no Go, 3 the module proxy refused the version.
#
# Why not `go install github.com/databricks/cli@v...`: `go install` also reads the module's
# version list (to check for deprecation), and the Go proxy here answers 403 for that list
# while it serves the pinned version itself. So: download that exact version, build it from
# the module cache, and stamp the version the way the release build (goreleaser) does.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${DATABRICKS_CLI_VERSION:-$(tr -d '[:space:]' < "$here/databricks-cli.version")}"
attempts="${DATABRICKS_CLI_INSTALL_ATTEMPTS:-3}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/orderlake/databricks-cli/${version}"
bin="$cache/bin"
module="github.com/databricks/cli"

if [ -x "$bin/databricks" ] && "$bin/databricks" --version >/dev/null 2>&1; then
  echo "databricks CLI ${version} already built: $bin/databricks" >&2
  echo "$bin/databricks"
  exit 0
fi

command -v go >/dev/null || { echo "install-databricks-cli: Go is not installed" >&2; exit 2; }
mkdir -p "$bin"
log="$cache/build.log"
semver="${version#v}"
IFS=. read -r major minor patch <<<"$semver"
ldflags="-X ${module}/internal/build.buildVersion=${semver}"
ldflags+=" -X ${module}/internal/build.buildMajor=${major}"
ldflags+=" -X ${module}/internal/build.buildMinor=${minor}"
ldflags+=" -X ${module}/internal/build.buildPatch=${patch}"
start=$(date +%s)
refused=0
for try in $(seq 1 "$attempts"); do
  echo "building ${module}@${version} with $(go version), try $try/$attempts..." >&2
  if src=$(go mod download -json "${module}@${version}" 2>"$log" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') && [ -n "$src" ] \
     && (cd "$src" && GOFLAGS="-trimpath -buildvcs=false" \
           go build -ldflags "$ldflags" -o "$bin/databricks" .) >>"$log" 2>&1; then
    echo "built databricks CLI ${version} in $(( $(date +%s) - start ))s" >&2
    "$bin/databricks" --version >&2
    echo "$bin/databricks"
    exit 0
  fi
  cat "$log" >&2
  refused=$(grep -c "403 Forbidden\|not available" "$log" || true)
  if [ "$try" -lt "$attempts" ]; then sleep $(( 5 * try )); fi
done
if [ "$refused" -gt 0 ]; then
  echo "install-databricks-cli: the Go module proxy refused ${module}@${version}" \
    "($attempts tries); point ORDERLAKE_DATABRICKS_CLI at a databricks binary, or pin a" \
    "version the proxy serves in scripts/databricks-cli.version." >&2
  exit 3
fi
echo "install-databricks-cli: the build failed ($attempts tries); log: $log" >&2
exit 1
