"""A local pipeline event log, shaped like the Databricks one (`flow_progress` etc.).

Stored as JSON lines next to the tables, so a crash mid-write can cost at most the last line.
On a bucket, where an object cannot be appended to, each event is an object of its own in
`event_log/`, named by its sequence number and claimed with put-if-absent (`RemoteEvents`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from orderlake.storage.path import AnyPath, RemotePath, is_remote


class RemoteEvents:
    """The event log on an object store: `event_log/<seq>.json`, one object per event.

    The next number is claimed with create_exclusive, so two writers never overwrite each
    other's events (a loser re-lists and takes the next number); listing in name order is
    emission order."""

    def __init__(self, folder: RemotePath) -> None:
        self.folder = folder
        self._next: int | None = None

    def _names(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.name.endswith(".json"))

    def append(self, line: str) -> None:
        storage = self.folder.storage
        while True:
            if self._next is None:
                names = self._names()
                self._next = int(names[-1].split(".")[0]) + 1 if names else 0
            name = str(self.folder / f"{self._next:012d}.json")
            self._next += 1
            if storage.create_exclusive(name, line.encode("utf-8")):
                return
            self._next = None  # another writer took it: look again

    def lines(self, newest_first: bool = False) -> Iterator[str]:
        names = self._names()
        for name in reversed(names) if newest_first else names:
            try:
                yield (self.folder / name).read_text(encoding="utf-8")
            except FileNotFoundError:
                continue

    def exists(self) -> bool:
        return self.folder.is_dir()


class EventLog:
    def __init__(self, path: AnyPath, pipeline_name: str) -> None:
        self.path = path
        self.pipeline_name = pipeline_name
        self.remote = RemoteEvents(path.parent / "event_log") if is_remote(path) else None

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
        if self.remote is not None:
            self.remote.append(json.dumps(event, default=str))
            return event
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return event

    def _lines(self) -> Iterator[str]:
        if self.remote is not None:
            yield from self.remote.lines()
        elif self.path.exists():
            yield from self.path.read_text(encoding="utf-8").splitlines()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self._lines():
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
        if self.remote is not None:
            newest_first: Iterator[str] = self.remote.lines(newest_first=True)
        elif not self.path.exists():
            return None
        else:
            newest_first = self._lines_from_end()
        for line in newest_first:
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
