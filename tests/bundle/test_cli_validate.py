"""`databricks bundle validate --strict` with the real Go CLI, against the local stand-in.

The CLI comes from scripts/install-databricks-cli.sh. On this project's machines the Go module
proxy refuses github.com/databricks/cli (403 for every version), so the binary is missing and
these tests SKIP with that reason in the summary. They are not a pass: set
ORDERLAKE_REQUIRE_DATABRICKS_CLI=1 wherever the CLI can be installed, and a missing CLI fails.
With the binary present they run the real CLI against the local stand-in workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderlake.settings import DEFAULTS
from tests.support.databricks_cli import (
    EXPLICIT_ENV,
    REQUIRE_ENV,
    cli_required,
    find_cli,
    missing_reason,
)
from tests.support.workspace_stub import TOKEN, WorkspaceStub

ROOT = Path(__file__).resolve().parents[2]
SOURCE_URL = "/Volumes/incremental_load/{schema}/orders_data/source/"


@pytest.fixture(scope="module")
def cli() -> Path:
    path = find_cli()
    if path is None:
        # A wrong explicit path, or a CI that promised the CLI, is an error, not a skip.
        if cli_required() or os.environ.get(EXPLICIT_ENV):
            pytest.fail(f"{missing_reason()} ({REQUIRE_ENV}={cli_required():d})", pytrace=False)
        pytest.skip(missing_reason())
    return path


@pytest.fixture(scope="module")
def workspace() -> Iterator[WorkspaceStub]:
    with WorkspaceStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy, so the CLI's .databricks/ state never lands in the work tree."""
    root = tmp_path_factory.mktemp("bundle")
    shutil.copy(ROOT / "databricks.yml", root / "databricks.yml")
    for folder in ("resources", "dlt", "expectations", "orderlake"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def validate(cli: Path, stub: WorkspaceStub, root: Path, *args: str) -> subprocess.CompletedProcess:
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "DATABRICKS_HOST": stub.url,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CONFIG_FILE": str(home / ".databrickscfg"),
        "DATABRICKS_CLI_DISABLE_TELEMETRY": "true",
    }
    return subprocess.run(
        [str(cli), "bundle", "validate", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_validate_strict(cli, workspace, bundle_root, target: str) -> None:
    result = validate(cli, workspace, bundle_root, "--strict", "-t", target)
    assert result.returncode == 0, (
        result.stdout + result.stderr + f"\nunknown: {workspace.state.unknown}"
    )
    assert "Warning" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("target", "schema"), [("dev", "dev_deployer_default"), ("prod", "default")]
)
def test_validate_json(cli, workspace, bundle_root, target: str, schema: str) -> None:
    result = validate(cli, workspace, bundle_root, "-o", "json", "-t", target)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    pipeline = config["resources"]["pipelines"]["orders_pipeline"]
    assert pipeline["catalog"] == "incremental_load"
    assert pipeline["schema"] == schema
    assert pipeline["serverless"] is True
    assert [lib["glob"]["include"] for lib in pipeline["libraries"]] == [
        f"{config['workspace']['file_path']}/dlt/**"
    ]
    assert pipeline["root_path"] == config["workspace"]["file_path"]
    conf = pipeline["configuration"]
    assert set(conf) == set(DEFAULTS)
    assert conf["orders.volume_path"] == f"/Volumes/incremental_load/{schema}/orders_data"
    assert conf["orders.expectations_path"] == (
        f"{config['workspace']['file_path']}/expectations/orders.yml"
    )
    job = config["resources"]["jobs"]["orders_on_arrival"]
    assert job["trigger"]["file_arrival"]["url"] == SOURCE_URL.format(schema=schema)
    assert job["trigger"]["pause_status"] == ("PAUSED" if target == "dev" else "UNPAUSED")
    assert job["max_concurrent_runs"] == 1
