"""Benchmark figures -> ratios, a markdown table and a JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Figure:
    """One timed run of one contender on one scenario."""

    scenario: str
    contender: str
    rows: int
    files: int
    target_rows_before: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # JVM + Python, user + system
    spark_jobs: int | None = None
    load_avg: float = 0.0  # 1-minute load average at the end: others' work on the machine
    x_baseline: float | None = None  # throughput / naive baseline's throughput
    of_floor: float | None = None  # throughput / raw-append floor's throughput
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class Report:
    mode: str
    machine: dict
    figures: list[Figure] = field(default_factory=list)
    latency: dict | None = None
    scaling: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add_ratios(self, floor_for: dict[str, str]) -> None:
        """Ratios per scenario; `floor_for` names the floor scenario of each scenario."""
        by = {(f.scenario, f.contender): f for f in self.figures}
        for fig in self.figures:
            base = by.get((fig.scenario, "naive"))
            floor = by.get((floor_for.get(fig.scenario, fig.scenario), "floor"))
            if base and base.rows_per_s:
                fig.x_baseline = round(fig.rows_per_s / base.rows_per_s, 2)
            if floor and floor.rows_per_s:
                fig.of_floor = round(fig.rows_per_s / floor.rows_per_s, 2)

    def to_json(self) -> dict:
        data = asdict(self)
        for fig, raw in zip(self.figures, data["figures"], strict=True):
            raw["rows_per_s"] = round(fig.rows_per_s)
        return data

    def to_markdown(self) -> str:
        m = self.machine
        lines = [
            f"Benchmark `{self.mode}` run {m['date']} on {m['cpu']} ({m['cores']} cores, "
            f"{m['memory_gb']} GB), Spark {m['spark']}, Delta {m['delta']}, Java {m['java']}, "
            f"commit {m.get('commit', '?')}.",
            "",
            "| scenario | contender | rows | files | target before | s | CPU s | rows/s "
            "| × baseline | of floor | peak RSS MB | Spark jobs | load avg |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for f in self.figures:
            lines.append(
                f"| {f.scenario} | {f.contender} | {f.rows:,} | {f.files} | "
                f"{f.target_rows_before:,} | {f.seconds:.1f} | {f.cpu_seconds:.0f} | "
                f"{f.rows_per_s:,.0f} | "
                f"{_fmt(f.x_baseline, '×')} | {_fmt(f.of_floor, '%')} | {f.peak_rss_mb:,.0f} | "
                f"{'' if f.spark_jobs is None else f.spark_jobs} | {f.load_avg:.1f} |"
            )
        if self.scaling:
            lines += ["", "Scaling (incremental seconds into the big target / into the small one):"]
            lines += [f"- {name}: {value:.2f}×" for name, value in self.scaling.items()]
        if self.latency:
            lat = self.latency
            lines += [
                "",
                f"Watch latency over {lat['n']} files of {lat['rows_per_file']} rows, "
                f"{lat.get('update_ratio', 0):.0%} of them updates of target keys (file "
                f"landing in source/ → rows visible in orders_target): p50 {lat['p50']:.2f} s, "
                f"p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s.",
            ]
        lines += ["", f"Peak RSS of Python + JVM over the whole run: {self.peak_rss_mb:,.0f} MB."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        md, js = folder / f"{self.mode}.md", folder / f"{self.mode}.json"
        md.write_text(self.to_markdown())
        js.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        return md, js


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    return f"{value:.2f}×" if kind == "×" else f"{value:.0%}"


def machine_info(spark_version: str, delta_version: str) -> dict:
    """What the figures were measured on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "orderlake", "dlt"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "java": java.split('"')[1] if '"' in java else java.strip(),
        "spark": spark_version,
        "delta": delta_version,
        "commit": commit + (" (engine files modified)" if dirty else ""),
    }
