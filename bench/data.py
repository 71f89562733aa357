"""Benchmark data sets: generated once with `orderlake.synthetic`, cached, hard-linked into place.

Each data set lives in its own folder with a manifest of the parameters it was made with, so a
re-run reuses it (10M rows take about a minute and a half to write) and a change regenerates it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from orderlake.synthetic import KeyRange, generate_order_files


@dataclass(frozen=True)
class Spec:
    """How to make one data set. Initial loads have no updates; increments update `base`."""

    name: str
    rows: int
    files: int
    seed: int
    update_ratio: float = 0.0
    base: str | None = None  # name of the data set whose keys this one updates


@dataclass(frozen=True)
class DataSet:
    spec: Spec
    folder: Path
    paths: list[Path]
    new_keys: KeyRange
    end: datetime

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


def build(spec: Spec, root: Path, made: dict[str, DataSet]) -> DataSet:
    """The data set for `spec`, generated unless a matching one is cached under `root`."""
    folder = root / spec.name
    base = made[spec.base] if spec.base else None
    start = base.end if base else datetime(2026, 1, 1, tzinfo=UTC)
    params = {**asdict(spec), "start": start.isoformat(), "generator": 1}
    manifest = folder / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["params"] == params:
            return DataSet(
                spec,
                folder,
                [folder / n for n in saved["files"]],
                KeyRange(saved["namespace"], saved["new_keys"]),
                datetime.fromisoformat(saved["end"]),
            )
    shutil.rmtree(folder, ignore_errors=True)
    generated = generate_order_files(
        folder,
        rows=spec.rows,
        files=spec.files,
        update_ratio=spec.update_ratio,
        out_of_order_ratio=0.0,
        seed=spec.seed,
        start=start,
        existing_keys=base.new_keys if base else (),
        name_prefix=spec.name,
        unique_keys=True,  # the naive MERGE cannot cope with a key twice in one batch
        track_expected=False,
    )
    manifest.write_text(
        json.dumps(
            {
                "params": params,
                "files": [p.name for p in generated.paths],
                "namespace": generated.new_keys.namespace,
                "new_keys": len(generated.new_keys),
                "end": generated.end.isoformat(),
            }
        )
    )
    return DataSet(spec, folder, generated.paths, generated.new_keys, generated.end)


def drop_into(data: DataSet, source: Path) -> None:
    """Put a data set's files into a `source/` folder (hard links: instant, cache untouched)."""
    source.mkdir(parents=True, exist_ok=True)
    for path in data.paths:
        target = source / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
