"""A copy of the bundle (databricks.yml, resources/, dlt/, expectations/) to change freely."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE_PARTS = ("databricks.yml", "resources", "dlt", "expectations")


def copy_bundle(into: Path, with_package: bool = False) -> Path:
    """The bundle's files under `into`; with the `orderlake` package too, so a CLI run with
    `into` first on PYTHONPATH treats the copy as its repository."""
    into.mkdir(parents=True, exist_ok=True)
    parts = (*BUNDLE_PARTS, "orderlake") if with_package else BUNDLE_PARTS
    for part in parts:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, into / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / part)
    return into


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return copy_bundle(tmp_path / "bundle")


@pytest.fixture
def load_bundle(tmp_path: Path, spark) -> Callable[[Path], object]:
    """Load a bundle copy into a LocalPipeline (which validates its graph), like `run` does."""
    from orderlake.engine.run.runner import LocalPipeline

    def load(root: Path) -> LocalPipeline:
        return LocalPipeline(
            tmp_path / "volume", tmp_path / "warehouse", spark=spark, bundle_root=root
        )

    return load
