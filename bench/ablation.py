"""`python -m bench.ablation [--quick] [--big] [--first-load] [--rounds N]`: what the
pipeline's duties cost.

The increment of a bench pair, replayed on fresh copies of loaded warehouses, in one warm
session, by these contenders in turn (the order alternates each round); with `--first-load`,
the pair's first load, replayed into empty warehouses, with the floor (`raw_append`, what a
bronze write costs) as one more contender:

- `pipeline`: the shipped definitions and rules;
- `no quarantine`: the same definitions without the `orders_quarantine` table;
- `no rules`: the shipped definitions with an empty rule file;
- `bare`: neither (bronze, parse, latest change per key, upsert: what is left of an update);
- `naive`: the original notebooks (`bench.contenders.naive_update`).

Each contender loads its own warehouse once; every round copies it and applies the increment.
The variants are real pipelines: a bundle root with edited definitions, a rule file with no
rules. Prints each round, and writes the medians (rounds after `--skip`) to
`bench/results/ablation_<size>.md` (`ablation_first_load_<size>.md`); docs/performance.md has
the figures ("How close a first load can come", "How close an increment into a small target
can come").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench import contenders
from bench.data import DataSet, drop_into
from bench.report import machine_info
from bench.run import RESULTS, TMP, delta_version, pair_data, rows_after, start_spark
from orderlake.settings import REPO_ROOT

QUARANTINE_TABLE = '@dp.table(\n    name="orders_quarantine",'
CONTENDERS = ("pipeline", "no quarantine", "no rules", "bare", "naive")


def bundle_without_quarantine(root: Path) -> Path:
    """A copy of the repo's bundle whose definitions leave out the quarantine table."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "databricks.yml", root / "databricks.yml")
    for folder in ("resources", "dlt", "expectations"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    definitions = root / "dlt" / "orders_pipeline.py"
    text = definitions.read_text()
    start = text.index(QUARANTINE_TABLE)  # fails loudly if the definitions changed shape
    end = text.index("\n\n\n", start)
    definitions.write_text(text[:start] + text[end + 3 :])
    return root


def no_rules(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("dataset: orders_clean\nrules: []\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--big", action="store_true", help="use the big target pair")
    parser.add_argument(
        "--first-load", action="store_true", help="replay the first load, not the increment"
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--skip", type=int, default=3, help="rounds left out of the medians")
    args = parser.parse_args(argv)
    init, inc, data = pair_data(args.quick, args.big)
    work = TMP / "ablation" / f"{init.name}_{inc.name}"
    shutil.rmtree(work, ignore_errors=True)
    spark = start_spark(work / "eventlog")
    from orderlake.engine.run.runner import LocalPipeline

    stripped = bundle_without_quarantine(work / "bundle_no_quarantine")
    empty = {"orders.expectations_path": str(no_rules(work / "no_rules.yml"))}
    pipelines: dict[str, dict] = {
        "pipeline": {},
        "no quarantine": {"bundle_root": stripped},
        "no rules": {"conf_overrides": empty},
        "bare": {"bundle_root": stripped, "conf_overrides": empty},
    }

    def update(name: str, root: Path) -> tuple[Callable[[], object], Path]:
        """The contender's update of the warehouse at `root`, and its target table."""
        if name == "floor":
            table = root / "floor"
            return lambda: contenders.raw_append(spark, root / "volume" / "source", table), table
        if name == "naive":
            target = root / "target"
            return (
                lambda: contenders.naive_update(spark, root / "volume", root / "stage", target),
                target,
            )
        pipe = LocalPipeline(
            root / "volume", root / "warehouse", spark=spark, **pipelines[name]
        )
        return pipe.update, pipe.table_path("orders_target")

    def loaded(name: str, spec_data: DataSet) -> Path:
        base = work / "base" / name.replace(" ", "_")
        drop_into(spec_data, base / "volume" / "source")
        update(name, base)[0]()
        return base

    names = (*CONTENDERS, "floor") if args.first_load else CONTENDERS
    batch = init if args.first_load else inc  # the files each round applies
    expected = init.rows if args.first_load else rows_after(init, inc)
    wrong: list[str] = []

    bases = {} if args.first_load else {n: loaded(n, data[init.name]) for n in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else reversed(names):
            run = work / "run"
            shutil.rmtree(run, ignore_errors=True)
            if not args.first_load:
                shutil.copytree(bases[name], run)
            drop_into(data[batch.name], run / "volume" / "source")
            apply, target = update(name, run)
            start = time.perf_counter()
            apply()
            seconds[name].append(time.perf_counter() - start)
            rows = spark.read.format("delta").load(str(target)).count()
            if rows != expected:  # a contender that did less would look fast
                wrong.append(f"round {r} {name}: {rows:,} target rows, expected {expected:,}")
            print(f"round {r} {name}: {seconds[name][-1]:.2f} s, {rows:,} rows", flush=True)
    info = machine_info(spark.version, delta_version())
    load = os.getloadavg()[0]
    spark.stop()
    size = ("quick" if args.quick else "full") + ("_big" if args.big else "")
    kind = "first_load_" if args.first_load else ""
    title = (
        f"a first load of {init.rows:,} rows"
        if args.first_load
        else f"a {inc.rows:,}-row increment into {init.rows:,} rows"
    )
    out = RESULTS / f"ablation_{kind}{size}.md"
    out.write_text(report(seconds, title, args.skip, info, load, wrong))
    print(out.read_text())
    return 1 if wrong else 0


def report(
    seconds: dict[str, list[float]],
    title: str,
    skip: int,
    info: dict,
    load: float,
    wrong: list[str],
) -> str:
    """The medians as a markdown table, with what they were measured on."""
    naive = statistics.median(seconds["naive"][skip:])
    lines = [
        f"# Ablation: {title}",
        "",
        f"{info['date']}, commit {info['commit']}, {info['cpu']}, {info['cores']} cores, "
        f"Spark {info['spark']}, Delta {info['delta']}; load average {load:.1f} at the end. "
        f"Medians of rounds {skip}-{len(seconds['naive']) - 1}, each on a fresh copy of a "
        "loaded warehouse, or an empty one for a first load (`python -m bench.ablation`).",
        "",
        "| contender | median s | × naive | every round, s |",
        "|---|---:|---:|---|",
    ]
    for name in seconds:
        median = statistics.median(seconds[name][skip:])
        rounds = ", ".join(f"{s:.2f}" for s in seconds[name])
        lines.append(f"| {name} | {median:.2f} | {naive / median:.2f}× | {rounds} |")
    lines += ["", "Every round's target held the expected rows." if not wrong else "WRONG:"]
    lines += [f"- {w}" for w in wrong]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
