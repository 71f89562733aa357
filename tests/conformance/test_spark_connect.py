"""The deployed definitions load through Spark Connect, as on Databricks serverless.

Serverless pipelines (and open-source `spark-pipelines`) give the definitions a Spark Connect
`spark`: no py4j, so `_jdf`, `_jvm` and `sparkContext` do not exist. Everything `dlt/` imports
(transforms, contract, rules with their SQL checks, settings, source options) must use public
DataFrame and SQL APIs only. This runs the definition file against a real local Spark Connect
server, in a child process (Connect mode is process-wide in PySpark), with the engine's
recorder standing in for `pyspark.pipelines`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("connect_load.py")
CONNECT_MODULES = ("grpc", "grpc_status", "google.rpc", "pandas", "pyarrow", "zstandard")


CONSTRAINTS = {
    "order_id IS NOT NULL": None,
    "reflect('java.lang.Runtime', 'getRuntime') IS NOT NULL": "deterministic",
    "rand() < 2": "deterministic",
    "EXISTS (SELECT * FROM csv.`/etc/passwd`)": "subquery",
    "(SELECT count(*) FROM range(10)) > 0": "subquery",
    "shoe_size > 3": "outside the contract",
}


def _load_through_connect(cwd: Path) -> dict:
    missing = [m for m in CONNECT_MODULES if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        pytest.fail(f"pyspark[connect] is a dev dependency; run `make setup` (missing {missing})")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(list(CONSTRAINTS))],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One Connect server for the module: starting one takes a JVM."""
    return _load_through_connect(tmp_path_factory.mktemp("connect"))


def test_definitions_load_and_analyse_on_spark_connect(loaded: dict) -> None:
    """https://docs.databricks.com/aws/en/ldp/developer/python-dev (pipelines run Python
    source through Spark Connect on serverless: only the public DataFrame API is there)."""
    assert loaded["session"] == "pyspark.sql.connect.session"
    assert {n: d["kind"] for n, d in loaded["datasets"].items()} == {
        "orders_bronze": "table",
        "orders_clean": "view",
        "orders_quarantine": "table",
        "orders_target": "table",
    }
    # The rules were loaded (and SQL-checked) with the Connect session.
    actions = loaded["datasets"]["orders_clean"]["expectations"]
    assert actions["valid_tracking_num"] == "drop" and actions["known_status"] == "warn"

    flows = loaded["flows"]
    assert flows["orders_clean"]["streaming"] and flows["orders_quarantine"]["streaming"]
    assert "_failed_rules" in flows["orders_quarantine"]["columns"]
    assert flows["orders_clean"]["columns"][:2] == ["tracking_num", "order_id"]

    target = flows["orders_target"]
    assert target["source"] == "orders_clean" and target["keys"] == ["tracking_num"]
    assert target["sequence"].startswith("struct<last_updated:timestamp,_ingested_at:timestamp")
    assert set(target["except_column_list"]) <= set(target["source_columns"])
    # Every expectation analyses on the server as a boolean over the view's rows.
    assert set(target["expectation_types"]) == set(actions)
    assert set(target["expectation_types"].values()) == {"boolean"}


def test_rule_checks_refuse_code_and_subqueries_on_spark_connect(loaded: dict) -> None:
    """https://docs.databricks.com/aws/en/ldp/expectations (a constraint is a SQL boolean
    expression over the row; no subqueries). The checks are Spark's own analysis of public
    DataFrame plans, so they refuse the same constraints on Connect as on a classic session."""
    problems = loaded["constraint_problems"]
    for constraint, expected in CONSTRAINTS.items():
        if expected is None:
            assert problems[constraint] is None, constraint
        else:
            assert expected in (problems[constraint] or ""), (constraint, problems[constraint])
