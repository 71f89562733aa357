"""The local engine validates the pipeline graph before an update, as Databricks does.

Each test is named after the documented semantic; its docstring links the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orderlake.engine.dp.loader import DefinitionError
from orderlake.errors import ConfigurationError

EXTRA = "from pyspark import pipelines as dp\n\n"


def _add(bundle: Path, name: str, code: str) -> Path:
    path = bundle / "dlt" / name
    path.write_text(EXTRA + code)
    return path


def test_the_pipeline_graph_is_acyclic(bundle, load_bundle):
    """https://docs.databricks.com/aws/en/ldp/concepts/pipelines ("Pipelines automatically
    infer dependencies between datasets and arrange them in a directed acyclic graph")."""
    path = _add(
        bundle,
        "loop.py",
        "@dp.table(name='loop_a')\ndef loop_a():\n    return spark.readStream.table('loop_b')\n\n"
        "@dp.table(name='loop_b')\ndef loop_b():\n    return spark.readStream.table('loop_a')\n",
    )
    with pytest.raises(DefinitionError) as caught:
        load_bundle(bundle)
    message = str(caught.value)
    assert str(path) in message and "cycle" in message
    assert "loop_a -> loop_b -> loop_a" in message or "loop_b -> loop_a -> loop_b" in message


def test_a_cycle_through_batch_reads_is_refused_too(bundle, load_bundle):
    """https://docs.databricks.com/aws/en/ldp/concepts/pipelines (the graph is a DAG whatever
    kind of read makes an edge: `spark.read.table` as much as `spark.readStream.table`)."""
    _add(
        bundle,
        "mv_loop.py",
        "@dp.materialized_view(name='mv_a')\ndef mv_a():\n    return spark.read.table('mv_b')\n\n"
        "@dp.materialized_view(name='mv_b')\ndef mv_b():\n    return spark.read.table('mv_a')\n",
    )
    with pytest.raises(DefinitionError, match=r"cycle: mv_(a|b) -> mv_(b|a) -> mv_\1"):
        load_bundle(bundle)


@pytest.mark.parametrize("read", ["spark.readStream.table", "spark.read.table"])
def test_a_flow_reads_only_pipeline_datasets_or_existing_tables(bundle, load_bundle, read):
    """https://docs.databricks.com/aws/en/ldp/developer/python-ref (a query reads a dataset
    defined in the pipeline or a table that exists outside it; any other name fails the
    update's graph initialization)."""
    path = _add(
        bundle,
        "gold.py",
        f"@dp.table(name='orders_gold')\ndef orders_gold():\n    return {read}('orders_silver')\n",
    )
    with pytest.raises(DefinitionError) as caught:
        load_bundle(bundle)
    message = str(caught.value)
    assert str(path) in message and "'orders_gold'" in message
    assert "reads dataset 'orders_silver'" in message and "no definition file declares" in message


def test_an_existing_table_outside_the_pipeline_may_be_read(bundle, load_bundle, spark):
    """https://docs.databricks.com/aws/en/ldp/developer/python-ref (reading a table that is
    not defined in the pipeline reads it as an external source)."""
    spark.range(3).createOrReplaceTempView("carriers_reference")
    try:
        _add(
            bundle,
            "lookup.py",
            "@dp.materialized_view(name='carriers')\n"
            "def carriers():\n    return spark.read.table('carriers_reference')\n",
        )
        pipeline = load_bundle(bundle)
        assert "carriers" in pipeline.graph.datasets
    finally:
        spark.catalog.dropTempView("carriers_reference")


@pytest.mark.parametrize(("name", "kind"), [("extra.sql", "SQL"), ("explore.ipynb", "notebook")])
def test_every_source_file_of_the_pipeline_runs_or_is_refused(bundle, load_bundle, name, kind):
    """https://docs.databricks.com/aws/en/ldp/concepts/pipelines ("Pipeline source code is
    written in Python or SQL"): the local engine runs Python only, and refuses a SQL or
    notebook source by name instead of running a pipeline without it."""
    path = bundle / "dlt" / name
    path.write_text("CREATE MATERIALIZED VIEW x AS SELECT 1\n")
    with pytest.raises(DefinitionError) as caught:
        load_bundle(bundle)
    assert str(path) in str(caught.value) and f"{kind} pipeline source" in str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        "@dp.table(name='t', partition_cols=['carrier'])\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', cluster_by=['id'])\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', schema='id BIGINT')\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', row_filter='f ON (id)')\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', spark_conf={'a': 'b'})\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', path='/tmp/t')\ndef t():\n    return spark.range(1)\n",
        "@dp.table(name='t', private=True)\ndef t():\n    return spark.range(1)\n",
        "@dp.materialized_view(name='t', cluster_by_auto=True)\ndef t():\n    return 1\n",
        "dp.create_streaming_table('t', partition_cols=['carrier'])\n",
        "dp.create_streaming_table('t', schema='id BIGINT')\n",
        "dp.create_streaming_table('t', format='parquet')\n",
    ],
)
def test_dataset_options_the_engine_cannot_honour_are_refused(spark, tmp_path, call):
    """https://docs.databricks.com/aws/en/ldp/developer/python-ref (the dataset options of
    `@dp.table`, `@dp.materialized_view`, `dp.create_streaming_table`): an option the local
    engine would ignore fails the load, naming the option and the file."""
    from orderlake.engine.autoloader.reader import LocalAutoLoader
    from orderlake.engine.dp.loader import LocalSparkSession, load_definitions

    path = tmp_path / "defs.py"
    path.write_text(EXTRA + call)
    with pytest.raises(DefinitionError) as caught:
        load_definitions([path], LocalSparkSession(spark, LocalAutoLoader(spark)))
    message = str(caught.value)
    option = call.split("'t', ", 1)[1].split("=", 1)[0]
    assert str(path) in message and f"{option}=" in message and "not supported" in message
    assert isinstance(caught.value, ConfigurationError)


def test_options_the_engine_honours_are_kept(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/python-ref (`name`, `comment`,
    `table_properties`, expectations on `create_streaming_table`)."""
    from orderlake.engine.autoloader.reader import LocalAutoLoader
    from orderlake.engine.dp.loader import LocalSparkSession, load_definitions

    path = tmp_path / "defs.py"
    path.write_text(
        EXTRA + "dp.create_streaming_table('t', comment='c', table_properties={'q': 'gold'}, "
        "expect_all_or_drop={'k': 'id IS NOT NULL'})\n"
    )
    graph = load_definitions([path], LocalSparkSession(spark, LocalAutoLoader(spark)))
    dataset = graph.dataset("t")
    assert (dataset.comment, dataset.table_properties) == ("c", {"q": "gold"})
    assert [(e.name, e.action) for e in dataset.expectations] == [("k", "drop")]
    assert dataset.source_file == str(path)
