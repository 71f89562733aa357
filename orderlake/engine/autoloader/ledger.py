"""The durable record of updates: which files each update took and whether it committed.

One small JSON manifest per update, written atomically (temp file, fsync, rename). Together with
the bronze commit's `userMetadata` (the update id), it lets a restarted engine
finish or forget an interrupted update without loading a file twice or losing one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from orderlake.storage.path import AnyPath, is_remote

PLANNED = "planned"
COMMITTED = "committed"
DONE = "done"


@dataclass
class PlannedFile:
    relpath: str
    size: int
    mtime_ns: int
    outcome: str  # load | empty | reject
    dest: str  # absolute destination (archive/ or rejected/)
    reason: str = ""
    header: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    update_id: int
    state: str
    source: str
    files: list[PlannedFile] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def write_atomic(path: AnyPath, text: str) -> None:
    """Replace the file whole: temp + fsync + rename on a disk; on a bucket one object upload,
    which readers see whole or not at all (there is no rename to lean on there)."""
    if is_remote(path):
        path.write_text(text, encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Ledger:
    def __init__(self, folder: AnyPath) -> None:
        self.folder = folder

    def _path(self, update_id: int, flow: str) -> AnyPath:
        return self.folder / f"{update_id:010d}.{flow}.json"

    def save(self, flow: str, manifest: Manifest) -> None:
        write_atomic(self._path(manifest.update_id, flow), json.dumps(asdict(manifest), indent=1))

    def load(self, path: AnyPath) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["files"] = [PlannedFile(**f) for f in data["files"]]
        return Manifest(**data)

    def unfinished(self, flow: str) -> list[Manifest]:
        """Manifests of `flow` not yet done, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob(f"*.{flow}.json")):
            manifest = self.load(path)
            if manifest.state != DONE:
                found.append(manifest)
        return found

    def forget(self, flow: str, update_id: int) -> None:
        self._path(update_id, flow).unlink(missing_ok=True)

    def last_update_id(self) -> int:
        if not self.folder.is_dir():
            return 0
        ids = [int(p.name.split(".", 1)[0]) for p in self.folder.glob("*.json")]
        return max(ids, default=0)
