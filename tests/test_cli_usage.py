"""The CLI's promises that need no pipeline run: usage errors exit 2 in one line, help on
every command and option, `--version`, `conf`, `samples` never overwriting a file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def _one_line_error(ran: subprocess.CompletedProcess, *words: str) -> None:
    assert ran.returncode == 2, (ran.returncode, ran.stdout, ran.stderr)
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--conf", "orders.catalog"], ["--conf", "not KEY=VALUE"]),
        (["run", "--conf", "orders.nope=1"], ["unknown key 'orders.nope'", "orderlake conf"]),
        (["samples", "--rows", "-5"], ["--rows", "negative"]),
        (["samples", "--invalid-ratio", "7"], ["--invalid-ratio", "between 0 and 1"]),
        (["samples", "--files", "0"], ["--files", "at least 1"]),
        (["samples", "--warehouse", "x"], ["unrecognized arguments: --warehouse"]),
        (["watch", "--poll", "soon"], ["--poll", "not a number"]),
        (["nonsense"], ["invalid choice"]),
        (["show", "--warehouse", "gs://bucket/warehouse"], ["local folders only"]),
        (["report", "--volume", "gs://bucket/orders_data"], ["local folders only"]),
    ],
)
def test_usage_errors_exit_2_in_one_line(args, words):
    _one_line_error(_cli(*args), *words)


def test_folders_that_are_wrong_exit_2(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _one_line_error(_cli("run", "--volume", str(a_file)), "is a file, not a folder")
    _one_line_error(
        _cli("run", "--volume", str(tmp_path / "typo"), "--warehouse", str(tmp_path / "w")),
        "no volume folder", "--create",
    )
    assert not (tmp_path / "typo").exists() and not (tmp_path / "w").exists()
    _one_line_error(_cli("show", "--warehouse", str(tmp_path / "none")), "no warehouse at")
    _one_line_error(_cli("quarantine", "--warehouse", str(a_file)), "is a file")
    _one_line_error(_cli("check-rules", str(tmp_path / "none.yml")), "no rule file")


def test_samples_create_the_volume_and_never_overwrite(tmp_path):
    volume = tmp_path / "volume"
    made = _cli("samples", "--volume", str(volume), "--rows", "20", "--files", "2")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in (volume / "source").iterdir()) == [
        "orders_00000.csv", "orders_00001.csv"
    ]
    assert (volume / "archive").is_dir() and (volume / "rejected").is_dir()
    first = (volume / "source" / "orders_00000.csv").read_bytes()
    again = _cli("samples", "--volume", str(volume), "--rows", "20", "--seed", "8")
    _one_line_error(again, "orders_00000.csv already exists", "--prefix")
    assert (volume / "source" / "orders_00000.csv").read_bytes() == first
    other = _cli("samples", "--volume", str(volume), "--rows", "20", "--prefix", "more")
    assert other.returncode == 0 and (volume / "source" / "more_00003.csv").exists()


def test_version_help_and_conf():
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("orderlake ")
    top = _cli("--help")
    assert top.returncode == 0
    for code in ("0    ok", "2    usage", "3    run --strict", "75", "130", "143"):
        assert code in top.stdout
    from orderlake.cli import build_parser

    commands = {}
    for action in build_parser()._subparsers._group_actions:
        commands.update(action.choices)
    assert {"run", "refresh", "watch", "show", "quarantine", "events", "report", "conf",
            "check-rules", "samples", "remote"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description, f"{name} has no description"
        for option in parser._actions:
            assert option.help, f"{name} {option.option_strings or option.dest} has no help"
    assert "seconds" in _cli("run", "--help").stdout.lower()
    conf = _cli("conf")
    from orderlake.settings import DEFAULTS

    for key in DEFAULTS:
        assert key in conf.stdout


def test_debug_prints_the_traceback_before_the_one_line(tmp_path):
    missing = ["--warehouse", str(tmp_path / "none")]
    quiet = _cli("show", *missing)
    _one_line_error(quiet, "no warehouse at")
    for args in (["--debug", "show", *missing], ["show", "--debug", *missing]):
        loud = _cli(*args)
        assert loud.returncode == 2
        lines = loud.stderr.strip().splitlines()
        assert lines[0] == "Traceback (most recent call last):", loud.stderr
        assert "UsageError: no warehouse at" in loud.stderr
        assert lines[-1] == quiet.stderr.strip()  # the one line still comes last


def test_verbose_lets_spark_log_through():
    """-v: Spark's log4j lines on stderr (quiet runs have none: test_cli checks their stderr
    whole)."""
    loud = _cli("check-rules", "-v")
    assert loud.returncode == 0, loud.stderr[-2000:]
    log4j = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN \w+", re.MULTILINE)
    assert log4j.search(loud.stderr), loud.stderr[-2000:]
    assert "rules OK" in loud.stdout
