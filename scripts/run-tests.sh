#!/usr/bin/env bash
# `make test`'s pytest processes, side by side. tests/storage needs a Spark session that
# carries the GCS connector (one SparkContext per process), so it runs in a process of its
# own. The random-kill test runs in a third: it spends most of its time waiting for the CLI
# processes it kills, which leaves a core idle. Side by side they keep CI within its budget
# on 2 cores (much of a Spark test's time is a JVM starting, single-threaded). The side
# processes' output follows the main suite's; the run fails if any failed. Arguments go to
# every process (e.g. --long).
set -uo pipefail
bin=${BIN:-.venv/bin}
side_names=("tests/storage" "tests/reliability/test_chaos.py")
side_pids=()
side_logs=()
cleanup() {
    for pid in "${side_pids[@]}"; do kill "$pid" 2>/dev/null; done
    rm -f "${side_logs[@]}"
}
trap cleanup INT TERM
for name in "${side_names[@]}"; do
    log=$(mktemp "${TMPDIR:-/tmp}/orderlake-side-tests.XXXXXX")
    ORDERLAKE_REQUIRE_GCS=${REQUIRE_GCS:-1} "$bin/pytest" "$name" --durations=10 "$@" \
        >"$log" 2>&1 &
    side_pids+=("$!")
    side_logs+=("$log")
done
"$bin/pytest" --ignore=tests/storage --ignore=tests/reliability/test_chaos.py --durations=25 "$@"
main=$?
failed=()
[ "$main" -eq 0 ] || failed+=("main suite exit $main")
for i in "${!side_names[@]}"; do
    wait "${side_pids[$i]}"
    status=$?
    echo "==================== ${side_names[$i]} (ran beside the main suite) ===================="
    cat "${side_logs[$i]}"
    rm -f "${side_logs[$i]}"
    [ "$status" -eq 0 ] || failed+=("${side_names[$i]} exit $status")
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
