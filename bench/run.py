"""`python -m bench.run [--quick]`: measure the pipeline, the naive baseline and the floor.

Everything runs in one process on one warm Spark session, scenario by scenario, so that the
ratios between contenders hold on a noisy shared machine. Data sets are cached under
bench/results/tmp/data; tables are rebuilt every run under bench/results/tmp/run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import contenders, jobs
from bench.data import DataSet, Spec, build, drop_into
from bench.memory import RssSampler
from bench.report import Figure, Report, machine_info

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TMP = RESULTS / "tmp"


@dataclass(frozen=True)
class Sizes:
    initial: Spec  # initial load into an empty target
    increment: Spec  # updates + inserts into `initial`'s target
    big: Spec  # a 5x larger target, built before its increment
    big_increment: Spec
    watch_files: int
    watch_rows: int


SIZES = {
    "full": Sizes(
        Spec("init2m", 2_000_000, 20, seed=1),
        Spec("inc2m", 200_000, 4, seed=3, update_ratio=0.3, base="init2m"),
        Spec("init10m", 10_000_000, 100, seed=2),
        Spec("inc10m", 200_000, 4, seed=4, update_ratio=0.3, base="init10m"),
        watch_files=20,
        watch_rows=100,
    ),
    "quick": Sizes(
        Spec("q_init200k", 200_000, 4, seed=1),
        Spec("q_inc20k", 20_000, 2, seed=3, update_ratio=0.3, base="q_init200k"),
        Spec("q_init1m", 1_000_000, 10, seed=2),
        Spec("q_inc20k_big", 20_000, 2, seed=4, update_ratio=0.3, base="q_init1m"),
        watch_files=20,
        watch_rows=50,
    ),
}


def pair_data(quick: bool, big: bool) -> tuple[Spec, Spec, dict[str, DataSet]]:
    """The (initial, increment) specs of one size and target, with every data set built."""
    sizes = SIZES["quick" if quick else "full"]
    init, inc = (sizes.big, sizes.big_increment) if big else (sizes.initial, sizes.increment)
    data: dict[str, DataSet] = {}
    for spec in (sizes.initial, sizes.increment, sizes.big, sizes.big_increment):
        data[spec.name] = build(spec, TMP / "data", data)
    return init, inc, data


# The floor has no target to grow: an increment's floor is the append of the same files.
FLOOR_OF = {"incremental (big target)": "incremental"}


class Bench:
    """Times contenders, samples memory, and keeps the figures."""

    def __init__(
        self, spark, sampler: RssSampler, report: Report, work: Path, out: Path | None = None
    ) -> None:
        self.spark = spark
        self.sampler = sampler
        self.report = report
        self.work = work
        self.windows: list[tuple[Figure, float, float]] = []
        self.recording = True  # off during warm-up
        self.out = out  # where partial results go after every figure

    def timed(
        self, scenario: str, contender: str, data: DataSet, before: int, run: Callable[[], object]
    ) -> Figure:
        self.sampler.take_peak()
        cpu = self.sampler.cpu_total()
        start = time.time()
        run()
        end = time.time()
        cpu = self.sampler.cpu_total() - cpu
        figure = Figure(
            scenario,
            contender,
            data.spec.rows,
            data.spec.files,
            before,
            round(end - start, 2),
            round(self.sampler.take_peak() / 2**20),
            round(cpu, 1),
            load_avg=os.getloadavg()[0],
        )
        if not self.recording:
            return figure
        self.report.figures.append(figure)
        self.windows.append((figure, start, end))
        if self.out:
            self.report.peak_rss_mb = round(self.sampler.overall / 2**20)
            _finish(self.report, self.out)
        print(
            f"  {scenario:<26} {contender:<9} {figure.seconds:7.1f} s "
            f"({cpu:6.1f} CPU s) {figure.rows_per_s:>10,.0f} rows/s  {figure.peak_rss_mb:,.0f} MB",
            flush=True,
        )
        return figure

    def count(self, path: Path) -> int:
        return self.spark.read.format("delta").load(str(path)).count()

    def check_rows(self, who: str, path: Path, expected: int) -> None:
        found = self.count(path)
        if found != expected:
            self.report.notes.append(f"{who}: target holds {found:,} rows, expected {expected:,}")
            print(f"  !! {who}: {found:,} rows, expected {expected:,}", flush=True)


Pair = tuple[str, Spec, Spec, str, str]  # folder, initial, increment, their scenario names


def pairs(sizes: Sizes) -> list[Pair]:
    return [
        ("small", sizes.initial, sizes.increment, "initial load", "incremental"),
        ("big", sizes.big, sizes.big_increment, "initial load (big)", "incremental (big target)"),
    ]


def run_floor(b: Bench, plan: list[Pair], data: dict[str, DataSet]) -> None:
    """Append the small pair's files; the floor does not depend on the target's size."""
    folder, init, inc, init_scenario, inc_scenario = plan[0]
    table = b.work / "floor" / folder / "table"
    for scenario, spec in ((init_scenario, init), (inc_scenario, inc)):
        source = b.work / "floor" / folder / spec.name
        drop_into(data[spec.name], source)
        before = b.count(table) if table.exists() else 0
        b.timed(
            scenario,
            "floor",
            data[spec.name],
            before,
            lambda s=source: contenders.raw_append(b.spark, s, table),
        )


def run_naive(b: Bench, plan: list[Pair], data: dict[str, DataSet]) -> None:
    for folder, init, inc, init_scenario, inc_scenario in plan:
        root = b.work / "naive" / folder
        volume, stage, target = root / "volume", root / "stage", root / "target"

        def load(r=volume, s=stage, t=target) -> None:
            contenders.naive_update(b.spark, r, s, t)

        drop_into(data[init.name], volume / "source")
        b.timed(init_scenario, "naive", data[init.name], 0, load)
        drop_into(data[inc.name], volume / "source")
        b.timed(inc_scenario, "naive", data[inc.name], init.rows, load)
        b.check_rows(f"naive {inc_scenario}", target, rows_after(init, inc))


def run_pipeline(b: Bench, plan: list[Pair], data: dict[str, DataSet]) -> None:
    """Initial and incremental updates of the LocalPipeline, one warehouse per pair."""
    from orderlake.engine.run.runner import LocalPipeline

    for folder, init, inc, init_scenario, inc_scenario in plan:
        root = b.work / "pipeline" / folder
        pipe = LocalPipeline(
            volume_path=root / "volume", warehouse_path=root / "warehouse", spark=b.spark
        )
        source = root / "volume" / "source"
        drop_into(data[init.name], source)
        b.timed(init_scenario, "pipeline", data[init.name], 0, pipe.update)
        drop_into(data[inc.name], source)
        b.timed(inc_scenario, "pipeline", data[inc.name], init.rows, pipe.update)
        b.check_rows(
            f"pipeline {inc_scenario}", pipe.table_path("orders_target"), rows_after(init, inc)
        )


def rows_after(init: Spec, inc: Spec) -> int:
    return init.rows + inc.rows - round(inc.rows * inc.update_ratio)


def count_jobs(b: Bench, log_dir: Path) -> None:
    """Attribute Spark jobs to phases by submission time (after the session has stopped)."""
    times = jobs.job_start_times(log_dir)
    if not times:
        return
    for figure, start, end in b.windows:
        figure.spark_jobs = jobs.count_in(times, start, end)


def start_spark(log_dir: Path):
    """The engine's shared session, with event logs on so jobs per phase can be counted."""
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file://{log_dir} "
        "--conf spark.eventLog.compress=false pyspark-shell"
    )
    from orderlake.engine.session import get_spark

    return get_spark("orderlake-bench")


# Every contender runs these first, unrecorded, so that its measured runs find their code warm
# (the same query shapes compiled and JIT-ed). The pipeline takes a different path by batch
# size (orderlake.engine.run.flows, autocdc): up to 1,000 keys it names them (the watch's
# files), above that it joins them (the quick increments), and from 100,000 rows adaptive
# execution is on (the full increments): one warm-up increment per path. With the first alone,
# the measured increments ran their path cold (docs/performance.md, "Latest results").
_WARM_BASE = Spec("warmup2", 120_000, 2, seed=9)
WARMUP: list[Pair] = [
    (f"warm_{inc.name}", _WARM_BASE, inc, "warm-up load", "warm-up increment")
    for inc in (
        Spec("warmup2_inc", 1_000, 1, seed=10, update_ratio=0.3, base="warmup2"),
        Spec("warmup2_inc20k", 20_000, 1, seed=11, update_ratio=0.3, base="warmup2"),
        Spec("warmup2_inc100k", 100_000, 2, seed=12, update_ratio=0.3, base="warmup2"),
    )
]
CONTENDERS = {"floor": run_floor, "naive": run_naive, "pipeline": run_pipeline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[*CONTENDERS, "watch"],
        help="leave a contender out (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table + JSON go")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    chosen = {name: run for name, run in CONTENDERS.items() if name not in args.skip}

    print(f"[bench] {mode}: generating or reusing data sets", flush=True)
    data: dict[str, DataSet] = {}
    warm = [spec for _, init, inc, *_ in WARMUP for spec in (init, inc)]
    for spec in {s.name: s for s in (*warm, *_specs(sizes))}.values():
        data[spec.name] = build(spec, TMP / "data", data)

    work = TMP / "run"
    shutil.rmtree(work, ignore_errors=True)
    log_dir = work / "eventlog"
    with RssSampler() as sampler:
        spark = start_spark(log_dir)
        sampler.refresh()
        report = Report(mode, machine_info(spark.version, delta_version()))
        report.notes.append(_data_note(sizes, data))
        b = Bench(spark, sampler, report, work / "warmup", args.out)
        b.recording = False
        print("[bench] warm-up (not recorded)", flush=True)
        for run in chosen.values():
            run(b, WARMUP, data)
        b.work, b.recording = work, True
        # Small pair first for every contender (and watch on its warm target), then the big
        # pair: the most telling figures land early, and a long run can be cut short.
        small, big = pairs(sizes)
        for name, run in chosen.items():
            print(f"[bench] {name} ({small[1].name} + {small[2].name})", flush=True)
            run(b, [small], data)
        if "pipeline" in chosen and "watch" not in args.skip:
            from bench.latency import measure_watch

            print("[bench] watch latency", flush=True)
            report.latency = measure_watch(
                b, sizes.watch_files, sizes.watch_rows, data[sizes.initial.name].new_keys
            )
            _finish(report, args.out)
        for name, run in chosen.items():
            if name != "floor":  # the floor does not depend on the target's size
                print(f"[bench] {name} ({big[1].name} + {big[2].name})", flush=True)
                run(b, [big], data)
        sampler.sample()
        report.peak_rss_mb = round(max(sampler.overall, sampler.hwm_total()) / 2**20)
        spark.stop()
    count_jobs(b, log_dir)
    md, js = _finish(report, args.out)
    print(md.read_text())
    print(f"[bench] wrote {md} and {js}")
    return 0


def _finish(report: Report, out: Path) -> tuple[Path, Path]:
    report.add_ratios(FLOOR_OF)
    report.scaling = _scaling(report)
    return report.write(out)


def _specs(sizes: Sizes) -> list[Spec]:
    return [sizes.initial, sizes.increment, sizes.big, sizes.big_increment]


def _data_note(sizes: Sizes, data: dict[str, DataSet]) -> str:
    parts = [
        f"{s.name} {s.rows:,} rows / {s.files} files / {data[s.name].bytes / 2**20:,.0f} MiB"
        + (f" ({s.update_ratio:.0%} updates of {s.base})" if s.base else "")
        for s in _specs(sizes)
    ]
    return "Data: " + "; ".join(parts) + "."


def _scaling(report: Report) -> dict[str, float]:
    by = {(f.scenario, f.contender): f.seconds for f in report.figures}
    out = {}
    for contender in ("naive", "pipeline"):
        small, big = (
            by.get(("incremental", contender)),
            by.get(("incremental (big target)", contender)),
        )
        if small and big:
            out[contender] = round(big / small, 2)
    return out


def delta_version() -> str:
    from importlib.metadata import version

    from orderlake.engine.session import DELTA_PACKAGE

    return f"delta-spark {version('delta-spark')} (jars {DELTA_PACKAGE.rsplit(':', 1)[1]})"


if __name__ == "__main__":
    raise SystemExit(main())
