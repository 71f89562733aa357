"""Where each incremental flow stands: the source versions it has applied, and its run number.

A flow run is planned before it writes (the versions of each source it takes, and the version
of each table it writes) and marked done after. Its commits carry the run as `userMetadata`, so
a run replayed after a crash (same plan, same rows) skips a write whose commit is already in the
table's log after the planned version: exactly once, with no streaming checkpoint and without
Delta's transaction ids (looking one up costs a full read of the table's log state).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from orderlake.engine.autoloader.ledger import write_atomic
from orderlake.storage.path import AnyPath


@dataclass
class FlowRun:
    run: int  # numbers the runs of a flow; tags their commits
    ranges: dict[str, list[int]] = field(default_factory=dict)  # source -> [start, end]
    done: bool = False
    written: dict[str, int] = field(default_factory=dict)  # table -> its version when planned

    def tag(self, flow: str) -> str:
        """The userMetadata of this run's commits."""
        return f"orderlake flow {flow} run {self.run}"

    def next_start(self, source: str) -> int:
        """The first version of `source` a later run takes."""
        span = self.ranges.get(source)
        return 0 if span is None else span[1] + 1


class FlowStates:
    """One small JSON file per flow, replaced atomically."""

    def __init__(self, folder: AnyPath) -> None:
        self.folder = folder

    def _path(self, flow: str) -> AnyPath:
        return self.folder / f"{flow}.json"

    def last(self, flow: str) -> FlowRun | None:
        try:
            data = json.loads(self._path(flow).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return FlowRun(**data)

    def save(self, flow: str, run: FlowRun) -> None:
        write_atomic(self._path(flow), json.dumps(asdict(run)))
