#!/usr/bin/env bash
# Build the real Databricks CLI (Go module github.com/databricks/cli) at the pinned version
# into a per-version cache, once. Prints the path of the `databricks` binary on success.
#   bash scripts/install-databricks-cli.sh            # pinned version (scripts/databricks-cli.version)
#   DATABRICKS_CLI_VERSION=v1.x.y bash scripts/...    # another version
# The tests find the binary at the same cache path (or via ORDERLAKE_DATABRICKS_CLI).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${DATABRICKS_CLI_VERSION:-$(tr -d '[:space:]' < "$here/databricks-cli.version")}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/orderlake/databricks-cli/${version}"
bin="$cache/bin"

if [ -x "$bin/databricks" ] && "$bin/databricks" --version >/dev/null 2>&1; then
  echo "databricks CLI ${version} already built: $bin/databricks" >&2
  echo "$bin/databricks"
  exit 0
fi

command -v go >/dev/null || { echo "install-databricks-cli: Go is not installed" >&2; exit 2; }
mkdir -p "$bin"
log="$cache/build.log"
start=$(date +%s)
echo "building github.com/databricks/cli@${version} with $(go version) (slow on 2 cores)..." >&2
if ! GOBIN="$bin" GOFLAGS="${GOFLAGS:-} -trimpath" go install "github.com/databricks/cli@${version}" >"$log" 2>&1; then
  cat "$log" >&2
  if grep -q "403 Forbidden\|not available" "$log"; then
    echo "install-databricks-cli: the Go module proxy refused github.com/databricks/cli@${version}." >&2
    echo "  Set DATABRICKS_CLI_VERSION to a version the proxy serves, or point" >&2
    echo "  ORDERLAKE_DATABRICKS_CLI at an installed databricks binary." >&2
  fi
  exit 1
fi
ln -sf cli "$bin/databricks"
echo "built databricks CLI ${version} in $(( $(date +%s) - start ))s" >&2
"$bin/databricks" --version >&2
echo "$bin/databricks"
