#!/usr/bin/env bash
# `make test`'s two pytest processes, side by side. tests/storage needs a Spark session that
# carries the GCS connector (one SparkContext per process), so it runs in a process of its
# own; running it beside the main suite keeps CI within its budget on 2 cores (much of a
# Spark test's time is a JVM starting, single-threaded). Its output follows the main suite's;
# the run fails if either failed. Arguments go to both (e.g. --long).
set -uo pipefail
bin=${BIN:-.venv/bin}
log=$(mktemp "${TMPDIR:-/tmp}/orderlake-storage-tests.XXXXXX")
ORDERLAKE_REQUIRE_GCS=${REQUIRE_GCS:-1} "$bin/pytest" tests/storage --durations=10 "$@" \
    >"$log" 2>&1 &
storage=$!
trap 'kill "$storage" 2>/dev/null; rm -f "$log"' INT TERM
"$bin/pytest" --ignore=tests/storage --durations=25 "$@"
main=$?
wait "$storage"
storage_status=$?
echo "==================== tests/storage (ran beside the main suite) ===================="
cat "$log"
rm -f "$log"
if [ "$main" -ne 0 ] || [ "$storage_status" -ne 0 ]; then
    echo "failed: main suite exit $main, tests/storage exit $storage_status" >&2
    exit 1
fi
