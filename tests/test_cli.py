"""The CLI as a user runs it: exit codes, messages, and `show`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orderlake.engine.lock import ExclusiveLock
from tests.conftest import order_row


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, **(env or {})),
    )


def _where(tmp_path: Path) -> list[str]:
    (tmp_path / "volume").mkdir(exist_ok=True)  # run refuses a missing volume (a typo)
    return ["--volume", str(tmp_path / "volume"), "--warehouse", str(tmp_path / "warehouse")]


def test_run_then_show(tmp_path, drop_file):
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z", amount="-1")])
    drop_file("b.csv", [order_row("TRK00000002", "2026-03-01T10:00:00Z")])
    ran = _cli("run", "--strict", *_where(tmp_path))
    assert ran.returncode == 3, ran.stderr[-2000:]  # --strict: a row was quarantined
    assert "2 file(s) loaded, 0 empty, 0 rejected, 2 rows into bronze" in ran.stdout
    assert ran.stderr.strip() == (
        "orderlake: --strict: update 1 rejected 0 file(s) and quarantined 1 row(s)"
    )
    shown = _cli("show", *_where(tmp_path))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "archive/        2 file(s)" in shown.stdout
    assert "quarantined for amount_not_negative: 1" in shown.stdout
    assert "orders_target" in shown.stdout and "1 rows" in shown.stdout
    assert "amount_not_negative" in shown.stdout and "failed        1" in shown.stdout


def test_a_second_loader_is_refused_with_exit_75(tmp_path):
    lock = ExclusiveLock(tmp_path / "warehouse" / "_orderlake" / "lock")
    lock.acquire()
    try:
        ran = _cli("run", *_where(tmp_path))
    finally:
        lock.release()
    assert ran.returncode == 75
    assert "another orderlake update is running" in ran.stderr


def test_broken_rules_exit_2_naming_the_rule(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: r\n    constraint: nope > 1\n    action: drop\n")
    ran = _cli("run", *_where(tmp_path), "--conf", f"orders.expectations_path={rules}")
    assert ran.returncode == 2
    assert "rule 'r'" in ran.stderr and "outside the contract" in ran.stderr


def test_a_failing_fail_rule_stops_the_update_with_exit_1(tmp_path, drop_file):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n  - name: known_carrier\n    constraint: carrier = 'DHL'\n    action: fail\n"
    )
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z")])
    ran = _cli("run", *_where(tmp_path), "--conf", f"orders.expectations_path={rules}")
    assert ran.returncode == 1
    assert "known_carrier" in ran.stderr and "tracking_num=TRK00000001" in ran.stderr


def test_an_old_java_is_reported_in_one_line(tmp_path):
    fake_home = tmp_path / "jdk11"
    (fake_home / "bin").mkdir(parents=True)
    java = fake_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n")
    java.chmod(0o755)
    ran = _cli("run", *_where(tmp_path), env={"JAVA_HOME": str(fake_home)})
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [
        f"orderlake: Java 17+ is required, found Java 11 at {java}"
    ]
