"""`python -m bench.coldstart [--repeat N]`: a one-shot `orderlake run` from a cold process.

The other benches share one warm session; this one times what a user of `orderlake run` (or
a cron job) waits for: a new process, its JVM, the first Delta reads and writes. Each round
drops one 200-row file and runs the CLI twice, alternating with and without the class archive
(`ORDERLAKE_CLASS_ARCHIVE=0`), so both see the same machine. Prints the wall seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.run import TMP
from orderlake.synthetic import generate_order_files

CLI = [sys.executable, "-m", "orderlake.cli"]


def timed_run(volume: Path, warehouse: Path, archive: bool) -> float:
    env = dict(os.environ, ORDERLAKE_CLASS_ARCHIVE="1" if archive else "0")
    start = time.monotonic()
    subprocess.run(
        [*CLI, "run", "--create", "--volume", str(volume), "--warehouse", str(warehouse)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    work = TMP / "coldstart"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    volume, warehouse = work / "volume", work / "warehouse"
    generate_order_files(volume / "source", rows=20_000, files=2, seed=1)
    timed_run(volume, warehouse, archive=True)  # the first load, not timed
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(args.repeat):
        for archive in (round_ % 2 == 0, round_ % 2 == 1):
            name = f"cold{round_:02d}{'a' if archive else 'n'}"
            generate_order_files(
                volume / "source", rows=200, files=1, seed=100 + len(times[archive]) * 2 + archive,
                name_prefix=name,
            )
            times[archive].append(timed_run(volume, warehouse, archive))
            print(f"{name}: {times[archive][-1]:.1f} s", flush=True)
    for archive, label in ((False, "without the class archive"), (True, "with the class archive")):
        values = times[archive]
        print(f"{label}: median {statistics.median(values):.1f} s, "
              f"min {min(values):.1f} s, max {max(values):.1f} s ({len(values)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
