"""The seam: the same dlt/ files load into the local engine; the local dp API mirrors Databricks."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from orderlake.engine.autoloader.reader import AutoLoaderError, LocalAutoLoader
from orderlake.engine.dp import api
from orderlake.engine.dp.graph import AutoCdcFlow, PipelineGraph
from orderlake.engine.dp.loader import (
    DefinitionError,
    LocalSparkSession,
    load_definitions,
    pipelines_api_bound,
)
from orderlake.settings import REPO_ROOT


def _load(spark, source: str, tmp_path: Path) -> PipelineGraph:
    path = tmp_path / "defs.py"
    path.write_text(source)
    return load_definitions([path], LocalSparkSession(spark, LocalAutoLoader(spark)))


def test_the_shipped_definitions_declare_the_orders_graph(spark):
    session = LocalSparkSession(spark, LocalAutoLoader(spark))
    graph = load_definitions(sorted((REPO_ROOT / "dlt").glob("*.py")), session)
    assert {n: d.kind for n, d in graph.datasets.items()} == {
        "orders_bronze": "table",
        "orders_clean": "view",
        "orders_quarantine": "table",
        "orders_target": "table",
    }
    cdc = next(f for f in graph.flows if isinstance(f, AutoCdcFlow))
    assert (cdc.target, cdc.source, cdc.keys) == ("orders_target", "orders_clean", ["tracking_num"])
    actions = {e.action for e in graph.dataset("orders_clean").expectations}
    assert actions == {"warn", "drop"}


def test_the_real_pyspark_pipelines_module_is_restored_after_loading():
    real = importlib.import_module("pyspark.pipelines")
    with pipelines_api_bound():
        from pyspark import pipelines as bound

        assert bound is api
    from pyspark import pipelines as after

    assert after is real and hasattr(after, "create_auto_cdc_flow") and after is not api


def test_dp_calls_outside_a_pipeline_raise_a_clear_error():
    with pytest.raises(RuntimeError, match="can only be evaluated by a pipeline runner"):
        api.create_streaming_table("x")


def test_expectations_attach_to_the_dataset_below_them(spark, tmp_path):
    graph = _load(
        spark,
        "from pyspark import pipelines as dp\n"
        "@dp.table(name='t')\n"
        "@dp.expect_or_fail('f', 'a > 0')\n"
        "@dp.expect('w', 'a > 1')\n"
        "def t():\n    return spark.range(1)\n",
        tmp_path,
    )
    assert [(e.name, e.action) for e in graph.dataset("t").expectations] == [
        ("w", "warn"),
        ("f", "fail"),
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "dp.create_auto_cdc_flow(target='t', source='s', keys=['k'], sequence_by='s', "
            "stored_as_scd_type=2, apply_as_truncates='op = \\'T\\'')",
            "apply_as_truncates=...) is supported only for SCD type 1",
        ),
        ("dp.create_sink('s', 'kafka', {})", "create_sink is not supported"),
        (
            "dp.apply_changes_from_snapshot(target='t', source='s', keys=['k'])",
            "create_auto_cdc_from_snapshot_flow is not supported",
        ),
        (
            "@dp.append_flow(target='t', depends_on='f')\ndef f():\n    return spark.range(1)",
            "dp.append_flow(depends_on=) is not supported",
        ),
        (
            "@dp.append_flow(target='t', once=True)\ndef f():\n    return spark.range(1)",
            "dp.append_flow(once=) is not supported",
        ),
        ("dp.create_streaming_table('t')\ndp.create_streaming_table('t')", "defined twice"),
    ],
)
def test_unsupported_or_inconsistent_definitions_name_the_file(spark, tmp_path, code, message):
    with pytest.raises(DefinitionError) as caught:
        _load(spark, "from pyspark import pipelines as dp\n" + code + "\n", tmp_path)
    assert "defs.py" in str(caught.value) and message in str(caught.value)


def test_local_auto_loader_refuses_options_it_does_not_implement(spark):
    loader = LocalAutoLoader(spark)
    session = LocalSparkSession(spark, loader)
    reader = session.readStream.format("cloudFiles").option("cloudFiles.format", "csv")
    with pytest.raises(AutoLoaderError, match="not supported locally"):
        reader.option("header", True).option("cloudFiles.maxFilesPerTrigger", 5).load("/x")
