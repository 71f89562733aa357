"""Child process of test_spark_connect.py: load `dlt/` through a real Spark Connect session.

Run as a script (its own Python process: Spark Connect mode is process-wide in PySpark).
Prints one JSON document: the graph the definitions declared and each flow's analysed columns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from orderlake.engine.autoloader.reader import LocalAutoLoader
    from orderlake.engine.dp.graph import AutoCdcFlow, QueryFlow
    from orderlake.engine.dp.loader import LocalSparkSession, load_definitions

    # A local Spark Connect server in this process's own JVM; tables land in the working
    # directory's spark-warehouse/ (the test runs this in a temporary folder).
    spark = SparkSession.builder.remote("local[1]").getOrCreate()
    assert isinstance(spark, ConnectSession), type(spark)
    volume = Path.cwd() / "volume"
    spark.conf.set("orders.volume_path", str(volume))
    spark.conf.set("orders.expectations_path", str(REPO / "expectations" / "orders.yml"))

    # The engine's recorder stands in for `pyspark.pipelines`; `spark` is the Connect session,
    # with `cloudFiles` (Databricks-only) answered by the local Auto Loader's empty frame.
    session = LocalSparkSession(spark, LocalAutoLoader(spark))
    graph = load_definitions(sorted((REPO / "dlt").glob("*.py")), session)

    out: dict = {"session": type(spark).__module__, "datasets": {}, "flows": {}}
    for name, dataset in graph.datasets.items():
        out["datasets"][name] = {
            "kind": dataset.kind,
            "expectations": {e.name: e.action for e in dataset.expectations},
        }
    # Each table a flow reads exists on the Connect server with the columns its writer
    # produces, so `spark.readStream.table(...)` is analysed by the server itself.
    analysed: dict = {}
    for flow in graph.flows:
        if isinstance(flow, QueryFlow):
            frame = flow.func()
            analysed[flow.name] = frame
            out["flows"][flow.name] = {
                "target": flow.target,
                "streaming": frame.isStreaming,
                "columns": frame.columns,
            }
            if graph.dataset(flow.target).kind == "table" and flow.target not in _tables(spark):
                frame_schema = frame.schema
                spark.createDataFrame([], frame_schema).write.format("parquet").saveAsTable(
                    flow.target
                )
    for flow in graph.flows:
        if isinstance(flow, AutoCdcFlow):
            source = graph.view_flow(flow.source).func()
            keyed = source.select(*flow.keys, flow.sequence_by.alias("__sequence"))
            out["flows"][flow.name] = {
                "target": flow.target,
                "source": flow.source,
                "expectation_types": _expectation_types(source, graph.dataset(flow.source)),
                "keys": flow.keys,
                "sequence": keyed.schema["__sequence"].dataType.simpleString(),
                "except_column_list": flow.except_column_list,
                "source_columns": source.columns,
            }
    # The rule checks refuse on Connect what they refuse on a classic session.
    from orderlake.rules import _rule_columns_frame, constraint_problem

    rule_columns = _rule_columns_frame(spark)
    out["constraint_problems"] = {
        c: constraint_problem(rule_columns, c)
        for c in json.loads(sys.argv[1] if sys.argv[1:] else "[]")
    }
    print(json.dumps(out))
    spark.stop()
    return 0


def _expectation_types(frame, dataset) -> dict[str, str]:
    """Each expectation of `dataset`, analysed on the Connect server against its rows."""
    from pyspark.sql import functions as F

    checked = frame.select(*[F.expr(e.constraint).alias(e.name) for e in dataset.expectations])
    return {f.name: f.dataType.simpleString() for f in checked.schema.fields}


def _tables(spark) -> set[str]:
    return {t.name for t in spark.catalog.listTables()}


if __name__ == "__main__":
    sys.exit(main())
