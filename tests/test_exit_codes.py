"""Errors map to exit codes in one place: the CLI as a user runs it, on a copy of the bundle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orderlake import errors
from orderlake.engine.autoloader.reader import AutoLoaderError
from orderlake.engine.dp.api import UnsupportedLocally
from orderlake.engine.interrupt import Interrupted
from orderlake.engine.lock import Busy
from orderlake.engine.run.expectations import ExpectationFailed
from orderlake.rules import RuleError
from tests.conformance.conftest import copy_bundle


def _cli(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`orderlake run` with `root` first on the path: a user's checkout of the project."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    where = ["--volume", str(tmp_path / "volume"), "--warehouse", str(tmp_path / "warehouse")]
    (tmp_path / "volume").mkdir(exist_ok=True)  # a missing volume is an error of its own
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", "run", *where, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env=env,
    )


def _error_lines(ran: subprocess.CompletedProcess) -> list[str]:
    return [line for line in ran.stderr.splitlines() if line.startswith("orderlake:")]


def test_an_unsupported_auto_loader_option_exits_2_naming_option_and_file(tmp_path):
    root = copy_bundle(tmp_path / "checkout", with_package=True)
    definitions = root / "dlt" / "orders_pipeline.py"
    text = definitions.read_text()
    assert ".options(**autoloader_options(settings))" in text
    definitions.write_text(
        text.replace(
            ".options(**autoloader_options(settings))",
            ".options(**autoloader_options(settings))\n"
            '        .option("cloudFiles.maxFilesPerTrigger", 5)',
        )
    )
    ran = _cli(root, tmp_path)
    assert ran.returncode == 2, ran.stderr[-3000:]
    [line] = _error_lines(ran)
    assert "cloudFiles.maxFilesPerTrigger" in line and str(definitions) in line
    assert "Traceback" not in ran.stderr


def test_a_rule_file_that_is_not_yaml_exits_2(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("rules: [ {name: r, constraint: 'x > 1'\n")
    ran = _cli(
        Path(__file__).resolve().parents[1], tmp_path, "--conf", f"orders.expectations_path={rules}"
    )
    assert ran.returncode == 2, ran.stderr[-3000:]
    [line] = _error_lines(ran)
    assert str(rules) in line and "not valid YAML" in line


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuleError("r.yml", "r", "bad"), 2),
        (AutoLoaderError("option x"), 2),
        (UnsupportedLocally("SCD2"), 2),
        (ExpectationFailed.__new__(ExpectationFailed), 1),
        (Busy("held"), 75),
        (Interrupted(15), 143),
    ],
)
def test_every_error_class_carries_its_exit_code(error, code):
    """One hierarchy: each class's base decides the code the CLI returns."""
    assert isinstance(error, errors.OrderlakeError) and error.exit_code == code
