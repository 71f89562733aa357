"""A local pipeline event log, shaped like the Databricks one (`flow_progress` etc.).

Stored as JSON lines next to the tables, so a crash mid-write can cost at most the last line.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path, pipeline_name: str) -> None:
        self.path = path
        self.pipeline_name = pipeline_name

    def emit(
        self,
        event_type: str,
        message: str,
        *,
        update_id: int | None = None,
        flow_name: str | None = None,
        level: str = "INFO",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        event = {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event_type": event_type,
            "level": level,
            "message": message,
            "origin": {
                "pipeline_name": self.pipeline_name,
                "update_id": None if update_id is None else str(update_id),
                "flow_name": flow_name,
            },
            "details": {event_type: details or {}},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return event

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        return out

    def _lines_from_end(self, block: int = 1 << 16) -> Iterator[str]:
        """The log's lines, newest first, reading only as far back as the caller goes."""
        with open(self.path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            position, tail = handle.tell(), b""
            while position > 0:
                step = min(block, position)
                position -= step
                handle.seek(position)
                lines = (handle.read(step) + tail).split(b"\n")
                tail = lines.pop(0)  # may be cut: completed by the next block
                for line in reversed(lines):
                    if line.strip():
                        yield line.decode("utf-8", errors="replace")
            if tail.strip():
                yield tail.decode("utf-8", errors="replace")

    def last_update_progress(self) -> dict[str, Any] | None:
        """The newest `update_progress` event; reads from the end, so it stays cheap as the
        log grows."""
        if not self.path.exists():
            return None
        for line in self._lines_from_end():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if event["event_type"] == "update_progress":
                return event
        return None

    def last_update_id(self) -> str | None:
        event = self.last_update_progress()
        return event["origin"]["update_id"] if event else None
