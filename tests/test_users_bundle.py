"""A second, non-orders bundle (tests/users_bundle: the users change feed of the Databricks
CDC docs) run end to end through the CLI with `--bundle`: two append flows into one streaming
table, a checked view, SCD type 2 and type 1 AUTO CDC targets, a materialized view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "tests" / "users_bundle"
HEADER = "user_id,name,city,operation,sequence_num"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=900,
    )


def _drop(volume: Path, name: str, rows: list[str]) -> None:
    (volume / "source").mkdir(parents=True, exist_ok=True)
    (volume / "source" / name).write_text("\n".join([HEADER, *rows]) + "\n")


def test_the_users_bundle_runs_through_the_cli(tmp_path, spark):
    volume, warehouse = tmp_path / "volume", tmp_path / "warehouse"
    where = ["--bundle", str(BUNDLE), "--volume", str(volume), "--warehouse", str(warehouse)]
    _drop(
        volume,
        "day1.csv",
        [
            "124,Raul,Oaxaca,INSERT,1",
            "123,Isabel,Monterrey,INSERT,1",
            "125,Mercedes,Tijuana,INSERT,2",
            "126,Lily,Cancun,INSERT,2",
            "127,Nobody,Nowhere,INSERT,",  # no sequence: dropped by the view's rule
        ],
    )
    first = _cli("run", "--create", *where)
    assert first.returncode == 0, first.stderr
    _drop(
        volume,
        "day2.csv",
        [
            "123,,,DELETE,6",
            "125,Mercedes,Guadalajara,UPDATE,6",
            "125,Mercedes,Mexicali,UPDATE,5",
            "123,Isabel,Chihuahua,UPDATE,5",
        ],
    )
    second = _cli("run", *where)
    assert second.returncode == 0, second.stderr

    def table(name: str):
        return spark.read.format("delta").load(str(warehouse / "tables" / name))

    raw = table("users_raw")
    assert raw.count() == 18  # 9 rows, once from each of the two append flows
    history = {
        tuple(r)
        for r in table("users_history")
        .where("user_id NOT LIKE 'U%'")
        .select("user_id", "city", "__START_AT", "__END_AT")
        .collect()
    }
    assert history == {
        ("123", "Monterrey", 1, 5),
        ("123", "Chihuahua", 5, 6),
        ("124", "Oaxaca", 1, None),
        ("125", "Tijuana", 2, 5),
        ("125", "Mexicali", 5, 6),
        ("125", "Guadalajara", 6, None),
        ("126", "Cancun", 2, None),
    }
    current = table("users_current").where("user_id LIKE 'U%'").select("user_id", "name", "city")
    assert {tuple(r) for r in current.collect()} == {
        ("U124", "RAUL", "Oaxaca"),
        ("U125", "MERCEDES", "Guadalajara"),
        ("U126", "LILY", "Cancun"),
    }
    per_city = {r["city"]: r["users"] for r in table("users_per_city").collect()}
    assert per_city == {"Oaxaca": 2, "Guadalajara": 2, "Cancun": 2}

    refreshed = _cli("refresh", *where)
    assert refreshed.returncode == 0, refreshed.stderr
    assert table("users_history").count() == 14  # rebuilt from users_raw: the same history


def test_bundle_must_name_a_bundle_folder(tmp_path):
    """A usage error, found before the command locks or creates anything."""
    volume, warehouse = tmp_path / "volume", tmp_path / "warehouse"
    for command in ("run", "watch", "refresh"):
        ran = _cli(command, "--bundle", str(tmp_path), "--volume", str(volume),
                   "--warehouse", str(warehouse), "--create")
        assert ran.returncode == 2, (command, ran.stderr)
        assert "no databricks.yml" in ran.stderr
        assert not volume.exists() and not warehouse.exists(), command
