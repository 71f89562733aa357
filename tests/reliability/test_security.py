"""Security: rule files cannot run code, YAML is loaded safely, no credentials in repo or logs.

File names (spaces, unicode, leading dots, glob characters, path tricks) and symlinks out of
the volume are catalogue cases 42-47 (catalogue.py), run with the rest of the catalogue.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from orderlake.rules import RuleError, load_rules

from .harness import FAKE_SECRETS, REPO

RULE = """dataset: orders_clean
rules:
  - name: r
    constraint: "{constraint}"
    action: drop
"""


def test_yaml_tags_that_build_python_objects_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in (
        f"!!python/object/apply:os.system ['touch {marker}']",
        f"!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
    ):
        path = tmp_path / "rules.yml"
        path.write_text(f"dataset: x\nrules: {payload}\n")
        with pytest.raises(RuleError, match="not valid YAML"):
            load_rules(path)
        rule = tmp_path / "rule.yml"
        rule.write_text(RULE.replace('"{constraint}"', payload))
        with pytest.raises(RuleError):
            load_rules(rule)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("constraint", "reason"),
    [
        # JVM calls and other non-deterministic functions
        ("reflect('java.lang.Runtime', 'getRuntime') IS NOT NULL", "deterministic"),
        ("java_method('java.lang.System', 'exit', 1) = 0", "deterministic"),
        ("try_reflect('java.lang.Runtime', 'getRuntime') IS NOT NULL", "deterministic"),
        ("uuid() IS NOT NULL", "deterministic"),
        ("rand() < 2", "deterministic"),
        # subqueries, which could read any file or table
        ("EXISTS (SELECT * FROM csv.`/etc/passwd`)", "subquery"),
        ("tracking_num IN (SELECT value FROM text.`/etc/hostname`)", "subquery"),
        ("(SELECT count(*) FROM range(10)) > 0", "subquery"),
    ],
)
def test_constraints_cannot_run_code_or_read_files(
    spark, tmp_path: Path, constraint: str, reason: str
) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULE.format(constraint=constraint.replace('"', '\\"')))
    with pytest.raises(RuleError, match=reason):
        load_rules(path, spark=spark)


def test_pipeline_refuses_a_rule_file_that_would_run_code(spark, volume, pipeline_for) -> None:
    from orderlake.engine.dp.loader import DefinitionError

    evil = volume.root.parent / "evil.yml"
    evil.write_text(RULE.format(constraint="java_method('java.lang.System', 'exit', 3) = 0"))
    with pytest.raises(DefinitionError, match="deterministic"):
        pipeline_for(volume, conf_overrides={"orders.expectations_path": str(evil)})


_SECRET_PATTERNS = {
    "Databricks token": re.compile(r"dapi[0-9a-f]{32}"),
    "AWS key id": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"),
    "Google API key": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
}


def test_no_credentials_in_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, files):
        path = REPO / name.decode()
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for what, pattern in _SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if match.group(0) not in FAKE_SECRETS.values():
                    found.append(f"{name.decode()}: {what}")
    assert not found, found


def test_no_credentials_in_logs_event_log_or_reports(spark, volume, capfd, monkeypatch) -> None:
    """With credentials in the environment, a failing and a passing run print none of them."""
    from orderlake.cli import main

    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    volume.drop("fine.csv", "tracking_num,order_id,last_updated\nSEC00000001,O,2026-01-01\n")
    volume.drop("bad.csv", b"\x00\x01binary")
    args = ["--volume", str(volume.root), "--warehouse", str(volume.warehouse)]
    assert main(["run", *args, "--conf", "orders.expectations_path=/nonexistent.yml"]) == 2
    assert main(["run", *args]) == 0
    assert main(["show", *args]) == 0
    printed = capfd.readouterr()
    texts = [printed.out, printed.err]
    texts += [p.read_text(errors="replace") for p in volume.warehouse.rglob("*.jsonl")]
    texts += [p.read_text(errors="replace") for p in volume.rejected.rglob("*.error.txt")]
    assert "rejected" in printed.out and len(texts) >= 4
    for text in texts:
        for value in FAKE_SECRETS.values():
            assert value not in text
