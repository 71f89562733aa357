"""`orderlake report`: one self-contained HTML page about the pipeline (works offline).

`data.collect` gathers the figures from files, `page.render` lays them out with the vendored
Apache ECharts (`vendor/`, Apache-2.0, see `scripts/vendor-echarts.sh`) inlined.
"""

from __future__ import annotations

import os
from pathlib import Path

from orderlake.report.data import collect
from orderlake.report.page import render

__all__ = ["write_report", "default_path"]


def default_path(warehouse: Path) -> Path:
    return Path(warehouse) / "report.html"


def write_report(volume: Path, warehouse: Path, out: Path | None = None) -> Path:
    """Write the report (atomically: a browser never sees half a page); returns its path."""
    target = Path(out) if out is not None else default_path(warehouse)
    page = render(collect(Path(volume), Path(warehouse)))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, target)
    return target
