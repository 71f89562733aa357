"""Small reads of a Delta table's log, straight from `_delta_log/` (no Spark job needed).

The commit files are JSON lines (Delta protocol); only `commitInfo` is read here. A table
exists once its log holds a commit or a checkpoint: a `_delta_log/` folder alone is what a
writer killed before its first commit leaves behind, and is not a table.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from orderlake.storage.local import LOCAL, local_path
from orderlake.storage.path import as_path, is_remote

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")


def _log_names(path: Path) -> list[str]:
    log = as_path(path) / "_delta_log"
    if is_remote(log):
        return [p.name for p in log.iterdir()]
    try:
        return os.listdir(log)
    except (FileNotFoundError, NotADirectoryError):
        return []


def latest_version(path: Path) -> int | None:
    """The newest version the log holds (a commit or a checkpoint), or None: no table."""
    newest = None
    for name in _log_names(path):
        match = _COMMIT.match(name) or _CHECKPOINT.match(name)
        if match:
            version = int(match.group(1))
            newest = version if newest is None else max(newest, version)
    return newest


def is_delta_table(path: Path) -> bool:
    """A Delta table: its log holds at least one commit or checkpoint."""
    return latest_version(path) is not None


def find_commit(path: Path, user_metadata: str, lookback: int = 50) -> dict[str, Any] | None:
    """The `commitInfo` of the newest of the last `lookback` commits with this userMetadata."""
    log = as_path(path) / "_delta_log"
    commits = sorted((n for n in _log_names(path) if _COMMIT.match(n)), reverse=True)[:lookback]
    for name in commits:
        with (log / name).open(encoding="utf-8") as handle:
            for line in handle:
                if '"commitInfo"' not in line:
                    continue
                info = json.loads(line)["commitInfo"]
                if info.get("userMetadata") == user_metadata:
                    return info
    return None


def committed_since(path: Path, version: int, user_metadata: str) -> bool:
    """Did a commit after `version` carry this userMetadata? (A writer's proof of its write.)"""
    newest = latest_version(path)
    if newest is None:
        return False
    log = as_path(path) / "_delta_log"
    for v in range(newest, version, -1):
        try:
            with (log / f"{v:020d}.json").open(encoding="utf-8") as handle:
                for line in handle:
                    if '"commitInfo"' in line:
                        if json.loads(line)["commitInfo"].get("userMetadata") == user_metadata:
                            return True
                        break
        except FileNotFoundError:
            continue  # a checkpoint-only version
    return False


def _newest_log_file(path: Path, suffix: str) -> str | None:
    """The text of the newest version's `<version><suffix>` log file, or None if absent."""
    version = latest_version(path)
    if version is None:
        return None
    try:
        return (as_path(path) / "_delta_log" / f"{version:020d}{suffix}").read_text(
            encoding="utf-8"
        )
    except FileNotFoundError:  # a checkpoint-only version, or a checksum not (yet) written
        return None


def latest_commit_info(path: Path) -> dict[str, Any] | None:
    """The `commitInfo` of the newest commit (the writer's own, while it holds the lock)."""
    for line in (_newest_log_file(path, ".json") or "").splitlines():
        if '"commitInfo"' in line:
            return json.loads(line)["commitInfo"]
    return None


def newest_checksum(path: Path) -> dict[str, Any] | None:
    """The checksum Delta writes beside the newest commit (`<version>.crc`: `numFiles`,
    `tableSizeBytes`, `fileSizeHistogram`, ...), or None when that version has none."""
    text = _newest_log_file(path, ".crc")
    try:
        return json.loads(text) if text else None
    except ValueError:  # half-written
        return None


def data_file_bytes(path: Path) -> int | None:
    """Bytes of the Parquet files under a local table's folder (files a commit removed and no
    VACUUM deleted yet count too): what a full scan reads, at most. None for a bucket."""
    if is_remote(as_path(path)):
        return None
    log = os.path.join(local_path(str(path)), "_delta_log") + os.sep
    files = LOCAL.list_files(str(path))
    return sum(f.size for f in files if f.path.endswith(".parquet") and not f.path.startswith(log))


def holds_no_rows(path: Path, max_commits: int = 20) -> bool:
    """True when the table exists and no commit of its short log ever added a file.

    Only short logs are read (a table with a long history is not worth the look)."""
    names = [n for n in _log_names(path) if _COMMIT.match(n)]
    if not names or len(names) > max_commits or any(_CHECKPOINT.match(n) for n in _log_names(path)):
        return False
    log = as_path(path) / "_delta_log"
    for name in names:
        with (log / name).open(encoding="utf-8") as handle:
            if any('"add"' in line for line in handle):
                return False
    return True
