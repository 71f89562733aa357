"""`databricks bundle validate --strict` with the real Go CLI, against the local stand-in.

The CLI is built from source by scripts/install-databricks-cli.sh (`make test` runs it and sets
ORDERLAKE_REQUIRE_DATABRICKS_CLI=1, so a missing CLI fails there). Run bare, without the binary,
these tests skip with the reason. The CLI talks to the local stand-in workspace.
"""

from __future__ import annotations

import json
import os
import re
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


# Who deploys each target: a developer deploys dev; prod is deployed by its service principal.
DEPLOYERS = {"dev": "deployer@example.com", "prod": "6f0c2b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"}


@pytest.fixture(scope="module", params=sorted(DEPLOYERS))
def target(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def workspace(target: str) -> Iterator[WorkspaceStub]:
    with WorkspaceStub(user=DEPLOYERS[target]) as stub:
        yield stub


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy, so the CLI's .databricks/ state never lands in the work tree."""
    root = tmp_path_factory.mktemp("bundle")
    shutil.copy(ROOT / "databricks.yml", root / "databricks.yml")
    for folder in ("resources", "dlt", "expectations", "orderlake"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def validate(
    cli: Path, stub: WorkspaceStub, root: Path, target: str, *args: str
) -> subprocess.CompletedProcess:
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
    variables = ["--var", f"service_principal={DEPLOYERS['prod']}"] if target == "prod" else []
    return subprocess.run(
        [str(cli), "bundle", "validate", "-t", target, *variables, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_strict(cli, workspace, bundle_root, target: str) -> None:
    result = validate(cli, workspace, bundle_root, target, "--strict")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation OK!" in output
    # Strict mode fails on warnings; recommendations (e.g. about the deploying identity) pass
    # it silently, so they are checked here.
    assert "Warning" not in output and "Recommendation" not in output, output
    # Every REST call the CLI made was one the stand-in knows, so nothing was skipped over.
    assert workspace.state.unknown == []


def resolve(value: str, config: dict) -> str:
    """Substitute `${resources.a.b.c}` references from the validated config itself."""

    def lookup(match: re.Match) -> str:
        node = config
        for key in match.group(1).split("."):
            node = node[key]
        return resolve(node, config)

    return re.sub(r"\$\{(resources\.[\w.]+)\}", lookup, value)


def test_validate_json(cli, workspace, bundle_root, target: str) -> None:
    schema = {"dev": "dev_deployer_default", "prod": "default"}[target]
    result = validate(cli, workspace, bundle_root, target, "-o", "json")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["resources"]["schemas"]["orders"]["name"] == schema
    pipeline = config["resources"]["pipelines"]["orders_pipeline"]
    assert pipeline["catalog"] == "incremental_load"
    # Resource references stay unresolved until deploy; this one must point at our schema.
    assert pipeline["schema"] == "${resources.schemas.orders.name}"
    assert pipeline["serverless"] is True
    assert [lib["glob"]["include"] for lib in pipeline["libraries"]] == [
        f"{config['workspace']['file_path']}/dlt/**"
    ]
    assert pipeline["root_path"] == config["workspace"]["file_path"]
    conf = pipeline["configuration"]
    assert set(conf) == set(DEFAULTS)
    assert (
        resolve(conf["orders.volume_path"], config)
        == f"/Volumes/incremental_load/{schema}/orders_data"
    )
    assert conf["orders.expectations_path"] == (
        f"{config['workspace']['file_path']}/expectations/orders.yml"
    )
    job = config["resources"]["jobs"]["orders_on_arrival"]
    assert resolve(job["trigger"]["file_arrival"]["url"], config) == SOURCE_URL.format(
        schema=schema
    )
    assert job["trigger"]["pause_status"] == ("PAUSED" if target == "dev" else "UNPAUSED")
    assert job["max_concurrent_runs"] == 1
    if target == "prod":
        assert config["workspace"]["root_path"].startswith(f"/Workspace/Users/{DEPLOYERS['prod']}/")
        assert config["run_as"] == {"service_principal_name": DEPLOYERS["prod"]}


def test_validate_strict_rejects_a_misspelt_key(cli, workspace, bundle_root, target, tmp_path):
    """The strict check can fail: a typo in a resource key is reported, with the key."""
    broken = tmp_path / "broken"
    shutil.copytree(bundle_root, broken, ignore=shutil.ignore_patterns(".databricks"))
    job = broken / "resources" / "orders_job.yml"
    job.write_text(job.read_text().replace("max_concurrent_runs:", "max_concurent_runs:", 1))
    result = validate(cli, workspace, broken, target, "--strict")
    assert result.returncode != 0
    assert "max_concurent_runs" in result.stdout + result.stderr
