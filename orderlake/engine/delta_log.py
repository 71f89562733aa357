"""Small reads of a Delta table's log, straight from `_delta_log/` (no Spark job needed).

The commit files are JSON lines (Delta protocol); only `commitInfo` is read here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def is_delta_table(path: Path) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def find_commit(path: Path, user_metadata: str, lookback: int = 50) -> dict[str, Any] | None:
    """The `commitInfo` of the newest of the last `lookback` commits with this userMetadata."""
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        return None
    commits = sorted(log.glob("[0-9]*.json"), reverse=True)[:lookback]
    for commit in commits:
        with open(commit, encoding="utf-8") as handle:
            for line in handle:
                if '"commitInfo"' not in line:
                    continue
                info = json.loads(line)["commitInfo"]
                if info.get("userMetadata") == user_metadata:
                    return info
    return None
