"""Where a client file is now. Rows keep `_source_file`, the path they were loaded from (as
`_metadata.file_path` on Databricks), and the file moves to archive/ or rejected/ after; each
update's Auto Loader `flow_progress` event records every file's move (`details...files`), so
`quarantine`, `show` and the report can say where the file is today, with no schema change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class Move:
    file: str
    outcome: str  # loaded | empty | rejected | deferred
    source: str
    moved_to: str
    update_id: int
    logged_at: str  # the event's timestamp (after the rows of the update were written)


def canonical(path: str) -> str:
    """One spelling of a local path: `file:/a%20b/c.csv` (Spark's) and `/a b/c.csv` agree."""
    if path.startswith("file:"):
        path = unquote(urlparse(path).path)
    return os.path.normpath(path)


def file_moves(events: list[dict[str, Any]]) -> dict[str, list[Move]]:
    """Every recorded move, by the file's source path (canonical), oldest first."""
    moves: dict[str, list[Move]] = {}
    for event in events:
        if event.get("event_type") != "flow_progress":
            continue
        details = (event.get("details") or {}).get("flow_progress") or {}
        for record in details.get("files") or []:
            move = Move(
                record["file"], record["outcome"], record["source"], record["moved_to"],
                int(record["update_id"]), str(event.get("timestamp") or ""),
            )
            moves.setdefault(canonical(move.source), []).append(move)
    return moves


def _utc(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=None) if stamp.tzinfo is None else stamp


def move_of(
    moves: dict[str, list[Move]], source_file: str | None, ingested_at: Any = None
) -> Move | None:
    """The move of the file a row came from. A name sent again is loaded again: the row's
    `_ingested_at` (UTC) picks the first update logged after it."""
    found = moves.get(canonical(source_file)) if source_file else None
    if not found:
        return None
    found = [m for m in found if m.outcome != "rejected"]  # rows never come from those
    if len(found) <= 1 or ingested_at is None:
        return found[-1] if found else None
    at = ingested_at if isinstance(ingested_at, datetime) else _utc(str(ingested_at))
    if at is None:
        return found[-1]
    at = at.replace(tzinfo=None)
    for move in found:
        logged = _utc(move.logged_at)
        if logged is not None and logged.replace(tzinfo=None) >= at:
            return move
    return found[-1]


def where_now(move: Move | None) -> str | None:
    """The file's path today, or None when nothing is there any more (deleted, moved by hand)."""
    if move is None:
        return None
    return move.moved_to if os.path.exists(move.moved_to) else None
