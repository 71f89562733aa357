"""`orderlake remote ...` against the stand-in workspace, through the real databricks-sdk."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderlake.remote import errors as remote_errors
from orderlake.remote.cli import main
from tests.support.workspace_stub import TOKEN, Fault, WorkspaceStub

SOURCE = "/Volumes/incremental_load/default/orders_data/source"
PROD = ["remote", "-t", "prod"]


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WorkspaceStub]:
    with WorkspaceStub() as server:
        for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_AUTH_TYPE"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no.databrickscfg"))
        monkeypatch.setenv("DATABRICKS_HOST", server.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        monkeypatch.setattr(remote_errors, "BACKOFF_SECONDS", 0.01)
        yield server


def csv(tmp_path: Path, name: str = "orders_1.csv") -> Path:
    path = tmp_path / name
    path.write_text("tracking_num,order_id\nAB12CD34EF,1\n")
    return path


def flow_progress(update_id: str, rules: list[tuple[str, int, int]]) -> dict:
    return {
        "id": f"e-{update_id}-{len(rules)}",
        "event_type": "flow_progress",
        "level": "INFO",
        "message": "Flow 'orders_bronze' has COMPLETED.",
        "origin": {"update_id": update_id, "flow_name": "orders_bronze"},
        "details": {
            "flow_progress": {
                "status": "COMPLETED",
                "data_quality": {
                    "dropped_records": 0,
                    "expectations": [
                        {
                            "name": n,
                            "dataset": "orders_bronze",
                            "passed_records": p,
                            "failed_records": f,
                        }
                        for n, p, f in rules
                    ],
                },
            }
        },
    }


def test_upload_then_ls(stub: WorkspaceStub, tmp_path: Path, capsys) -> None:
    assert main([*PROD, "upload", str(csv(tmp_path))]) == 0
    assert stub.state.files[f"{SOURCE}/orders_1.csv"].startswith(b"tracking_num")
    stub.state.add_file("/Volumes/incremental_load/default/orders_data/archive/old.csv")
    assert main([*PROD, "ls"]) == 0
    out = capsys.readouterr().out
    assert f"{SOURCE}/: 1 entries" in out and "orders_1.csv" in out
    assert "archive/: 1 entries" in out and "old.csv" in out
    assert "rejected/: (does not exist yet)" in out


def test_upload_refuses_to_overwrite_without_flag(stub, tmp_path, capsys) -> None:
    stub.state.add_file(f"{SOURCE}/orders_1.csv", b"old")
    assert main([*PROD, "upload", str(csv(tmp_path))]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*PROD, "upload", "--overwrite", str(csv(tmp_path))]) == 0
    assert stub.state.files[f"{SOURCE}/orders_1.csv"] != b"old"


def test_dev_target_uses_the_users_prefixed_schema(stub, capsys) -> None:
    stub.state.add_file("/Volumes/incremental_load/dev_deployer_default/orders_data/source/a.csv")
    assert main(["remote", "-t", "dev", "ls"]) == 0
    assert "dev_deployer_default/orders_data/source/: 1 entries" in capsys.readouterr().out


def test_update_followed_to_completion(stub, capsys) -> None:
    pipeline = stub.state.add_pipeline("[dev deployer] orderlake_orders")
    stub.state.add_pipeline("someone_elses_orderlake_orders_copy")
    assert main(["remote", "update", "--poll-seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert out.index("QUEUED") < out.index("RUNNING") < out.index("COMPLETED")
    assert len(pipeline.updates) == 1 and pipeline.updates[0]["full_refresh"] is False


def test_update_that_fails_exits_1_with_its_errors(stub, capsys) -> None:
    pipeline = stub.state.add_pipeline("orderlake_orders", ["RUNNING", "FAILED"])
    pipeline.events.append(
        {
            "id": "old",
            "event_type": "update_progress",
            "level": "ERROR",
            "message": "stale",
            "origin": {"update_id": "older-update"},
        }
    )
    pipeline.next_update_events.append(
        {
            "id": "e1",
            "event_type": "update_progress",
            "level": "ERROR",
            "message": "Flow orders_target failed",
            "error": {"exceptions": [{"class_name": "X", "message": "DELTA_MERGE boom"}]},
        }
    )
    assert main([*PROD, "update", "--poll-seconds", "0"]) == 1
    err = capsys.readouterr().err
    assert "ended FAILED" in err
    assert "Flow orders_target failed: DELTA_MERGE boom" in err and "stale" not in err
    assert main([*PROD, "metrics", "--pipeline-id", pipeline.pipeline_id]) == 0
    assert "ERROR Flow orders_target failed" in capsys.readouterr().out


def test_metrics_sum_the_latest_update_per_rule(stub, capsys) -> None:
    pipeline = stub.state.add_pipeline("orderlake_orders")
    pipeline.updates += [
        {"update_id": "u-old", "state": "COMPLETED"},
        {"update_id": "u-new", "state": "COMPLETED"},
    ]
    pipeline.events += [
        flow_progress("u-old", [("valid_tracking_num", 1000, 1000)]),
        flow_progress("u-new", [("valid_tracking_num", 5, 1), ("has_order_id", 6, 0)]),
        flow_progress("u-new", [("valid_tracking_num", 4, 2)]),
    ]
    assert main([*PROD, "metrics"]) == 0
    out = capsys.readouterr().out
    assert "update u-new: COMPLETED" in out
    row = next(line for line in out.splitlines() if "valid_tracking_num" in line)
    assert row.split()[-2:] == ["9", "3"]
    assert "1000" not in out


def test_no_pipeline_deployed_exits_4(stub, capsys) -> None:
    assert main([*PROD, "update"]) == 4
    assert "deploy first" in capsys.readouterr().err
    assert main([*PROD, "metrics", "--pipeline-id", "nope"]) == 4


def test_bad_token_exits_3_without_leaking_it(stub, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-wrong-secret-value")
    assert main([*PROD, "ls"]) == 3
    captured = capsys.readouterr()
    assert "401" in captured.err and "DATABRICKS_TOKEN" in captured.err
    assert "dapi-wrong-secret-value" not in captured.err + captured.out


def test_forbidden_exits_3(stub, capsys) -> None:
    stub.state.faults.append(
        Fault(
            "GET",
            "/api/2.0/fs/directories/.*",
            403,
            times=None,
            body={"error_code": "PERMISSION_DENIED", "message": "no READ VOLUME"},
        )
    )
    assert main([*PROD, "ls"]) == 3
    assert "permission denied (403)" in capsys.readouterr().err


def test_no_auth_configured_exits_3(stub, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    assert main([*PROD, "ls"]) == 3
    assert "auth" in capsys.readouterr().err


def test_429_with_retry_after_is_retried_without_double_start(stub) -> None:
    pipeline = stub.state.add_pipeline("orderlake_orders")
    stub.state.faults.append(Fault("POST", r"/api/2.0/pipelines/.*/updates", 429, retry_after=1))
    assert main([*PROD, "update", "--poll-seconds", "0"]) == 0
    posts = [r for r in stub.state.requests if r[0] == "POST"]
    assert len(posts) == 2 and len(pipeline.updates) == 1


def test_5xx_on_reads_is_retried(stub, capsys) -> None:
    stub.state.add_pipeline("orderlake_orders")
    stub.state.faults.append(Fault("GET", r"/api/2.0/pipelines/.*/updates/.*", 500, times=2))
    assert main([*PROD, "update", "--poll-seconds", "0"]) == 0
    polls = [r for r in stub.state.requests if r[0] == "GET" and "/updates/" in r[1]]
    assert len(polls) >= 3 + 2


def test_persistent_5xx_exits_5(stub, capsys) -> None:
    stub.state.faults.append(Fault("GET", "/api/2.0/fs/directories/.*", 502, times=None))
    assert main([*PROD, "ls"]) == 5
    assert "(5xx) after retries" in capsys.readouterr().err


def test_persistent_429_without_retry_after_exits_5(stub, capsys) -> None:
    stub.state.faults.append(Fault("GET", "/api/2.0/pipelines", 429, times=None))
    assert main([*PROD, "--retry-timeout", "2", "update"]) == 5
    assert "rate limited (429)" in capsys.readouterr().err


def test_slow_workspace_times_out_with_exit_5(stub, capsys) -> None:
    stub.state.faults.append(Fault("GET", "/api/2.0/fs/directories/.*", 200, times=None, delay=1.5))
    args = [*PROD, "--http-timeout", "0.3", "--retry-timeout", "1", "ls"]
    assert main(args) == 5
    assert "timed out" in capsys.readouterr().err


def test_update_still_running_at_deadline_exits_5(stub, capsys) -> None:
    stub.state.add_pipeline("orderlake_orders", ["RUNNING"])
    assert main([*PROD, "update", "--poll-seconds", "0.05", "--timeout", "0.3"]) == 5
    assert "still RUNNING" in capsys.readouterr().err


def test_unreachable_workspace_exits_5(stub, monkeypatch, capsys) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{port}")
    assert main([*PROD, "--retry-timeout", "1", "ls"]) == 5
    assert "orderlake remote:" in capsys.readouterr().err


def test_usage_error_exits_2(stub) -> None:
    assert main(["remote", "frobnicate"]) == 2
    assert main(["remote", "-t", "nosuchtarget", "ls"]) == 2
