"""A Delta table's current files and rows, read from its log in Python (no JVM).

Looking at a table should not cost a Spark start (15 s). The live files come from the newest
checkpoint (Parquet, read with pyarrow) plus the JSON commits after it, keyed by path and
deletion vector as the Delta protocol does; each `add` carries `numRecords` in its stats and
its deletion vector's `cardinality`, so the row count is a sum. Rows are read with pyarrow
from files without deletion vectors (an append-only table such as the quarantine).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orderlake.errors import ConfigurationError

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d+)\.(\d+))?\.parquet$")


class SnapshotError(ConfigurationError, RuntimeError):
    """The log cannot be read without Spark (a format this reader does not know, or a gap)."""


@dataclass(frozen=True)
class LiveFile:
    path: str  # relative to the table, decoded
    rows: int | None  # numRecords from the file's stats, when written
    deleted: int  # rows hidden by its deletion vector

    @property
    def live_rows(self) -> int | None:
        return None if self.rows is None else self.rows - self.deleted


@dataclass(frozen=True)
class Snapshot:
    table: Path
    version: int
    files: list[LiveFile]
    schema: dict[str, Any] | None  # the table's schema (Spark JSON), if the log holds it

    @property
    def rows(self) -> int | None:
        """Live rows, or None when a file was written without statistics."""
        counts = [f.live_rows for f in self.files]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    @property
    def has_deletion_vectors(self) -> bool:
        return any(f.deleted for f in self.files)


def _key(action: dict[str, Any]) -> tuple[str, str | None]:
    dv = action.get("deletionVector") or {}
    unique = None
    if dv:
        unique = f"{dv.get('storageType')}{dv.get('pathOrInlineDv')}@{dv.get('offset')}"
    return unquote(action["path"]), unique


def _live(action: dict[str, Any]) -> LiveFile:
    stats = action.get("stats")
    if isinstance(stats, str) and stats:
        stats = json.loads(stats)
    rows = (stats or {}).get("numRecords")
    dv = action.get("deletionVector") or {}
    return LiveFile(unquote(action["path"]), rows, int(dv.get("cardinality") or 0))


def _checkpoint_adds(log: Path, version: int, names: list[str]) -> list[dict[str, Any]]:
    """The `add` actions of the checkpoint of `version` (single or multi-part)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise SnapshotError(f"{log.parent}: reading a checkpoint needs pyarrow") from None
    parts = sorted(n for n in names if (m := _CHECKPOINT.match(n)) and int(m.group(1)) == version)
    adds: list[dict[str, Any]] = []
    for name in parts:
        table = pq.read_table(log / name, columns=["add"])
        adds.extend(a for a in table.column("add").to_pylist() if a)
    return adds


def snapshot(table: Path) -> Snapshot | None:
    """The table's current state, or None when `table` is not a Delta table."""
    log = Path(table) / "_delta_log"
    try:
        names = os.listdir(log)
    except (FileNotFoundError, NotADirectoryError):
        return None
    commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))
    checkpoints = sorted({int(m.group(1)) for n in names if (m := _CHECKPOINT.match(n))})
    if not commits and not checkpoints:
        return None
    if any(n.endswith(".parquet") and ".checkpoint." in n and not _CHECKPOINT.match(n)
           for n in names):
        raise SnapshotError(f"{table}: V2 checkpoints are not read here; use a Spark reader")
    newest = max(commits[-1] if commits else -1, checkpoints[-1] if checkpoints else -1)
    live: dict[tuple[str, str | None], LiveFile] = {}
    start = 0
    if checkpoints:
        base = checkpoints[-1]
        for add in _checkpoint_adds(log, base, names):
            live[_key(add)] = _live(add)
        start = base + 1
    schema = None
    for version in range(start, newest + 1):
        path = log / f"{version:020d}.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SnapshotError(
                f"{table}: the log has no commit {version} and no checkpoint covers it"
            ) from None
        for line in text.splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                live[_key(action["add"])] = _live(action["add"])
            elif "remove" in action:
                live.pop(_key(action["remove"]), None)
            elif "metaData" in action:
                schema = json.loads(action["metaData"]["schemaString"])
    return Snapshot(Path(table), newest, list(live.values()), schema)


def read_rows(snap: Snapshot, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every live row of a table without deletion vectors, as dicts (pyarrow, no JVM)."""
    if snap.has_deletion_vectors:
        raise SnapshotError(f"{snap.table}: rows hidden by deletion vectors; use a Spark reader")
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for live in sorted(snap.files, key=lambda f: f.path):
        path = snap.table / live.path
        present = pq.read_schema(path).names
        wanted = None if columns is None else [c for c in columns if c in present]
        rows.extend(pq.read_table(path, columns=wanted).to_pylist())
    return rows
