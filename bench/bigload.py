"""`python -m bench.bigload [--rows N] [--files F]`: one first load of N rows (50M by default)
on the default 2 GB heap, for the issue's "bounded memory" target: a first load five or
twenty-five times bigger must not need more memory.

Runs `LocalPipeline.update()` on the engine's own session (`get_spark()`, default heap), with
the RSS of Python + JVM sampled as in `bench.run`. The data is generated once and cached under
bench/results/tmp/data/ (50M rows: about 6 GiB of CSV; the run needs about three times that
on disk). Prints the wall and CPU seconds, rows/s and the peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import time

from bench.data import Spec, build, drop_into
from bench.memory import RssSampler
from bench.run import TMP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bigload", description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--generate-only", action="store_true", help="make the data, stop")
    args = parser.parse_args(argv)
    spec = Spec(f"init{args.rows // 1_000_000}m_{args.files}f", args.rows, args.files, seed=5)
    started = time.monotonic()
    data = build(spec, TMP / "data", {})
    print(f"[bigload] data: {data.bytes / 2**30:.2f} GiB in {len(data.paths)} files "
          f"({time.monotonic() - started:.0f} s to generate or find)", flush=True)
    if args.generate_only:
        return 0
    work = TMP / "bigload"
    shutil.rmtree(work, ignore_errors=True)
    with RssSampler() as sampler:
        from orderlake.engine.run.runner import LocalPipeline
        from orderlake.engine.session import get_spark

        spark = get_spark("orderlake-bigload")
        sampler.refresh()
        pipe = LocalPipeline(
            volume_path=work / "volume", warehouse_path=work / "warehouse", spark=spark
        )
        drop_into(data, work / "volume" / "source")
        cpu0, start = sampler.cpu_total(), time.monotonic()
        sampler.take_peak()
        pipe.update()
        wall, cpu = time.monotonic() - start, sampler.cpu_total() - cpu0
        peak = sampler.take_peak()
        rows = spark.read.format("delta").load(str(pipe.table_path("orders_target"))).count()
        hwm = sampler.hwm_total()
    print(f"[bigload] first load of {args.rows:,} rows: {wall:.0f} s ({cpu:.0f} CPU s), "
          f"{args.rows / wall:,.0f} rows/s; target rows {rows:,}; peak RSS "
          f"{peak / 2**30:.2f} GiB sampled, {hwm / 2**30:.2f} GiB VmHWM", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
