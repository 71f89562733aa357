"""Fixtures of the reliability suite (see docs/reliability.md).

The long form (`--long` or `ORDERLAKE_LONG_TESTS=1`) adds the full kill matrix, the big burst,
more hypothesis examples and the ~1 GB file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import Volume, make_volume


def long_run(config: pytest.Config) -> bool:
    return bool(config.getoption("--long")) or os.environ.get("ORDERLAKE_LONG_TESTS") == "1"


@pytest.fixture
def volume(tmp_path: Path) -> Volume:
    return make_volume(tmp_path)


@pytest.fixture
def pipeline_for(spark) -> Callable[..., object]:
    """An in-process LocalPipeline on a volume, sharing the session's Spark."""
    from orderlake.engine.run.runner import LocalPipeline

    def make(volume: Volume, **kwargs: object) -> LocalPipeline:
        return LocalPipeline(volume.root, volume.warehouse, spark=spark, **kwargs)

    return make


@pytest.fixture
def record() -> Callable[..., None]:
    """Append a result line to $ORDERLAKE_RELIABILITY_LOG (figures for docs/reliability.md)."""

    def write(kind: str, **fields: object) -> None:
        target = os.environ.get("ORDERLAKE_RELIABILITY_LOG")
        if target:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")

    return write


@pytest.fixture(scope="session")
def catalogue_run(spark, tmp_path_factory):
    """The whole bad-input catalogue, run once (two updates plus an idle one)."""
    from .catalogue import run_catalogue

    return run_catalogue(spark, tmp_path_factory.mktemp("catalogue"))
