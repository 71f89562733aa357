"""How the tests find the CLI, and why they skip or fail without it (no CLI needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import databricks_cli as dc

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-databricks-cli.sh"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(dc.EXPLICIT_ENV, raising=False)
    monkeypatch.delenv(dc.REQUIRE_ENV, raising=False)
    return dc.cache_dir()


def fake_binary(path: Path) -> Path:
    """An executable that answers `--version`, for the install script's cache check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 'Databricks CLI v0.0.0-test'\n")
    path.chmod(0o755)
    return path


def test_proxy_refusal_in_build_log_gives_the_specific_reason(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "build.log").write_text(
        "reading https://proxy/github.com/databricks/cli/@v/v0.298.0.info: 403 Forbidden\n"
        "\tserver response: This module version is not available.\n"
    )
    assert dc.find_cli() is None
    assert dc.missing_reason() == dc.REFUSED_HINT
    assert "Go module proxy refused github.com/databricks/cli" in dc.missing_reason()


def test_no_build_log_gives_the_install_command(cache: Path) -> None:
    assert dc.find_cli() is None
    assert dc.missing_reason() == dc.INSTALL_HINT


def test_explicit_path_that_is_missing_is_named(cache: Path, monkeypatch) -> None:
    monkeypatch.setenv(dc.EXPLICIT_ENV, str(cache / "nope"))
    assert dc.find_cli() is None
    assert str(cache / "nope") in dc.missing_reason()


def test_cached_binary_is_found(cache: Path) -> None:
    binary = fake_binary(cache / "bin" / "databricks")
    assert dc.find_cli() == binary


@pytest.mark.parametrize(("value", "required"), [("1", True), ("0", False), ("", False)])
def test_require_flag(value: str, required: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dc.REQUIRE_ENV, value)
    assert dc.cli_required() is required


def run_script(cache_home: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": str(cache_home), "XDG_CACHE_HOME": str(cache_home)}
    return subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_install_script_reuses_the_cached_binary(cache: Path, tmp_path: Path) -> None:
    binary = fake_binary(cache / "bin" / "databricks")
    result = run_script(tmp_path, os.environ["PATH"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(binary)
    assert "already built" in result.stderr


def test_install_script_without_go_exits_2(cache: Path, tmp_path: Path) -> None:
    no_go = tmp_path / "no-go-bin"
    no_go.mkdir()
    for tool in ("tr", "dirname", "date", "mkdir", "seq", "grep", "cat", "sleep"):
        found = shutil.which(tool)
        assert found, tool
        (no_go / tool).symlink_to(found)
    result = run_script(tmp_path, str(no_go))
    assert result.returncode == 2, result.stderr
    assert "Go is not installed" in result.stderr
