"""The local implementation of the `pyspark.pipelines` (dp) API the definitions call.

While the engine loads the `dlt/` files, `from pyspark import pipelines as dp` resolves to this
module (see `loader.py`); the calls record datasets and flows into the active `PipelineGraph`.
Arguments follow the Databricks API; what the local engine cannot do raises a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from orderlake.engine.dp.graph import AutoCdcFlow, Dataset, Expectation, PipelineGraph, QueryFlow
from orderlake.errors import ConfigurationError

QueryFunction = Callable[[], Any]
_ACTIVE: ContextVar[PipelineGraph | None] = ContextVar("orderlake_pipeline_graph", default=None)
_EXPECTATIONS_ATTR = "__orderlake_expectations__"


class UnsupportedLocally(ConfigurationError, NotImplementedError):
    """A pipeline feature the local engine does not run."""


def _graph() -> PipelineGraph:
    graph = _ACTIVE.get()
    if graph is None:
        raise RuntimeError(
            "pipeline definitions can only be evaluated by a pipeline runner "
            "(Databricks, or `orderlake run` locally)"
        )
    return graph


def _unsupported(feature: str) -> UnsupportedLocally:
    return UnsupportedLocally(f"{feature} is not supported by the local engine")


# Expectations --------------------------------------------------------------------------------


def _expect(action: str, rules: dict[str, str]) -> Callable[[QueryFunction], QueryFunction]:
    def decorate(func: QueryFunction) -> QueryFunction:
        if not callable(func):
            raise TypeError("expectation decorators go below @dp.table / @dp.temporary_view")
        found = list(getattr(func, _EXPECTATIONS_ATTR, []))
        found.extend(Expectation(name, constraint, action) for name, constraint in rules.items())
        setattr(func, _EXPECTATIONS_ATTR, found)
        return func

    return decorate


def expect(name: str, constraint: str) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("warn", {name: constraint})


def expect_or_drop(name: str, constraint: str) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("drop", {name: constraint})


def expect_or_fail(name: str, constraint: str) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("fail", {name: constraint})


def expect_all(expectations: dict[str, str]) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("warn", expectations)


def expect_all_or_drop(expectations: dict[str, str]) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("drop", expectations)


def expect_all_or_fail(expectations: dict[str, str]) -> Callable[[QueryFunction], QueryFunction]:
    return _expect("fail", expectations)


def _table_expectations(
    expect_all: dict[str, str] | None,
    expect_all_or_drop: dict[str, str] | None,
    expect_all_or_fail: dict[str, str] | None,
) -> list[Expectation]:
    found: list[Expectation] = []
    for action, rules in (
        ("warn", expect_all),
        ("drop", expect_all_or_drop),
        ("fail", expect_all_or_fail),
    ):
        found.extend(Expectation(n, c, action) for n, c in (rules or {}).items())
    return found


# Datasets ------------------------------------------------------------------------------------


def _dataset_decorator(
    kind: str, query_function: QueryFunction | None, name: str | None, **options: Any
) -> Any:
    def register(func: QueryFunction) -> None:
        dataset_name = name or func.__name__
        _graph().add_dataset(
            Dataset(
                name=dataset_name,
                kind=kind,
                comment=options.get("comment"),
                table_properties=dict(options.get("table_properties") or {}),
                expectations=list(getattr(func, _EXPECTATIONS_ATTR, [])),
                source_file=_graph().loading,
            )
        )
        _graph().add_flow(
            QueryFlow(
                name=dataset_name, target=dataset_name, func=func, source_file=_graph().loading
            )
        )
        return None  # like Databricks: the decorated name is not callable afterwards

    if query_function is not None:
        return register(query_function)
    return register


def _refuse_ignored(api: str, **options: Any) -> None:
    """Refuse every option given that the local engine would otherwise silently ignore: a
    definition that relies on it must fail here, not behave differently than on Databricks."""
    given = sorted(k for k, v in options.items() if v not in (None, False, {}, [], ()))
    if given:
        raise UnsupportedLocally(
            f"dp.{api}({', '.join(f'{k}=' for k in given)}) is not supported by the local "
            "engine (it would be ignored); remove it, or run this pipeline on Databricks"
        )


def _refuse_format(api: str, format: str | None) -> None:
    if format not in (None, "delta"):
        raise UnsupportedLocally(
            f"dp.{api}(format={format!r}) is not supported by the local engine (Delta only)"
        )


def table(
    query_function: QueryFunction | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    table_properties: dict[str, str] | None = None,
    path: str | None = None,
    partition_cols: list[str] | None = None,
    cluster_by_auto: bool = False,
    cluster_by: list[str] | None = None,
    schema: Any = None,
    row_filter: str | None = None,
    private: bool = False,
    temporary: bool = False,
    format: str | None = None,
    **unknown: Any,
) -> Any:
    """A streaming table: the engine runs its query incrementally (each update takes the rows
    its sources appended since the last). Options as `_stored_table`."""
    return _stored_table(
        "table",
        "table",
        query_function,
        name=name,
        comment=comment,
        spark_conf=spark_conf,
        table_properties=table_properties,
        path=path,
        partition_cols=partition_cols,
        cluster_by_auto=cluster_by_auto,
        cluster_by=cluster_by,
        schema=schema,
        row_filter=row_filter,
        private=private,
        temporary=temporary,
        format=format,
        **unknown,
    )


def materialized_view(
    query_function: QueryFunction | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    table_properties: dict[str, str] | None = None,
    path: str | None = None,
    partition_cols: list[str] | None = None,
    cluster_by_auto: bool = False,
    cluster_by: list[str] | None = None,
    schema: Any = None,
    row_filter: str | None = None,
    private: bool = False,
    format: str | None = None,
    **unknown: Any,
) -> Any:
    """A materialized view: its batch query is recomputed by every update, after the tables it
    reads, and replaces the stored rows in one commit. Options as `_stored_table`."""
    return _stored_table(
        "materialized_view",
        "materialized_view",
        query_function,
        name=name,
        comment=comment,
        spark_conf=spark_conf,
        table_properties=table_properties,
        path=path,
        partition_cols=partition_cols,
        cluster_by_auto=cluster_by_auto,
        cluster_by=cluster_by,
        schema=schema,
        row_filter=row_filter,
        private=private,
        format=format,
        **unknown,
    )


def _stored_table(
    api_name: str,
    kind: str,
    query_function: QueryFunction | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    table_properties: dict[str, str] | None = None,
    path: str | None = None,
    partition_cols: list[str] | None = None,
    cluster_by_auto: bool = False,
    cluster_by: list[str] | None = None,
    schema: Any = None,
    row_filter: str | None = None,
    private: bool = False,
    temporary: bool = False,
    format: str | None = None,
    **unknown: Any,
) -> Any:
    """Honoured: `name`, `comment`, `table_properties` (`delta.*` ones set on the Delta table
    when it is created). Anything else is refused rather than ignored."""
    _refuse_ignored(
        api_name,
        spark_conf=spark_conf,
        path=path,
        partition_cols=partition_cols,
        cluster_by_auto=cluster_by_auto,
        cluster_by=cluster_by,
        schema=schema,
        row_filter=row_filter,
        private=private,
        temporary=temporary,
        **unknown,
    )
    _refuse_format(api_name, format)
    return _dataset_decorator(
        kind, query_function, name, comment=comment, table_properties=table_properties
    )


def temporary_view(
    query_function: QueryFunction | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    **unknown: Any,
) -> Any:
    """A view: not stored, evaluated where a flow reads it."""
    _refuse_ignored("temporary_view", spark_conf=spark_conf, **unknown)
    return _dataset_decorator("view", query_function, name, comment=comment)


view = temporary_view


def create_streaming_table(
    name: str,
    *,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    table_properties: dict[str, str] | None = None,
    path: str | None = None,
    partition_cols: list[str] | None = None,
    cluster_by_auto: bool = False,
    cluster_by: list[str] | None = None,
    schema: Any = None,
    expect_all: dict[str, str] | None = None,
    expect_all_or_drop: dict[str, str] | None = None,
    expect_all_or_fail: dict[str, str] | None = None,
    row_filter: str | None = None,
    private: bool = False,
    format: str | None = None,
    **unknown: Any,
) -> None:
    """A streaming table whose rows come from flows (here: an AUTO CDC flow).

    Honoured: `comment`, `table_properties`, `expect_all*`. Anything else is refused."""
    _refuse_ignored(
        "create_streaming_table",
        spark_conf=spark_conf,
        path=path,
        partition_cols=partition_cols,
        cluster_by_auto=cluster_by_auto,
        cluster_by=cluster_by,
        schema=schema,
        row_filter=row_filter,
        private=private,
        **unknown,
    )
    _refuse_format("create_streaming_table", format)
    _graph().add_dataset(
        Dataset(
            name=name,
            kind="table",
            comment=comment,
            table_properties=dict(table_properties or {}),
            expectations=_table_expectations(expect_all, expect_all_or_drop, expect_all_or_fail),
            source_file=_graph().loading,
        )
    )


def _column(value: str | Column) -> Column:
    return F.expr(value) if isinstance(value, str) else value


def create_auto_cdc_flow(
    target: str,
    source: str,
    keys: list[str],
    sequence_by: str | Column,
    ignore_null_updates: bool = False,
    apply_as_deletes: str | Column | None = None,
    apply_as_truncates: str | Column | None = None,
    column_list: list[str] | None = None,
    except_column_list: list[str] | None = None,
    stored_as_scd_type: int | str = "1",
    track_history_column_list: list[str] | None = None,
    track_history_except_column_list: list[str] | None = None,
    name: str | None = None,
    once: bool = False,
    **unknown: Any,
) -> None:
    """Changes from `source` (a view or a streaming table) applied to `target` in `sequence_by`
    order: SCD type 1 (upserts) or 2 (every version, `__START_AT`/`__END_AT`).

    The Databricks semantics of each option; `once` and any option not listed here are refused
    (the engine would otherwise ignore them)."""
    _refuse_ignored("create_auto_cdc_flow", once=once, **unknown)
    scd = str(stored_as_scd_type).strip()
    if scd not in ("1", "2"):
        raise ConfigurationError(
            f"create_auto_cdc_flow(stored_as_scd_type={stored_as_scd_type!r}): 1 or 2"
        )
    if scd == "2" and apply_as_truncates is not None:
        raise ConfigurationError(
            "create_auto_cdc_flow(apply_as_truncates=...) is supported only for SCD type 1 "
            "(stored_as_scd_type=1), as on Databricks"
        )
    if scd == "1" and (track_history_column_list or track_history_except_column_list):
        raise ConfigurationError(
            "create_auto_cdc_flow(track_history_column_list / track_history_except_column_list) "
            "applies to SCD type 2 only (stored_as_scd_type=2)"
        )
    if track_history_column_list and track_history_except_column_list:
        raise ConfigurationError(
            "give track_history_column_list or track_history_except_column_list, not both"
        )
    if column_list and except_column_list:
        raise ConfigurationError("give column_list or except_column_list, not both")

    def names(found: list[Any] | None) -> list[str] | None:
        return [c if isinstance(c, str) else _column_name(c) for c in found] if found else None

    _graph().add_flow(
        AutoCdcFlow(
            name=name or target,
            target=target,
            source=source,
            keys=names(keys) or [],
            sequence_by=_column(sequence_by),
            apply_as_deletes=None if apply_as_deletes is None else _column(apply_as_deletes),
            column_list=names(column_list),
            except_column_list=names(except_column_list),
            source_file=_graph().loading,
            scd_type=int(scd),
            ignore_null_updates=bool(ignore_null_updates),
            apply_as_truncates=None if apply_as_truncates is None else _column(apply_as_truncates),
            track_history_column_list=names(track_history_column_list),
            track_history_except_column_list=names(track_history_except_column_list),
        )
    )


def _column_name(column: Column) -> str:
    """The name of `F.col("x")` (the docs allow col() objects in keys and column lists)."""
    text = str(column)  # Column<'x'>
    inner = text[len("Column<'") : -2] if text.startswith("Column<'") else text
    return inner.strip("`")


apply_changes = create_auto_cdc_flow


def append_flow(
    *,
    target: str,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: dict[str, str] | None = None,
    once: bool = False,
    **unknown: Any,
) -> Callable[[QueryFunction], None]:
    """An extra flow appending a query's rows into an existing streaming table.

    `spark_conf`, `once` and any newer argument (`depends_on`, `import_checkpoint`, ...) are
    refused by name rather than failing as an unexpected keyword."""
    _refuse_ignored("append_flow", spark_conf=spark_conf, once=once, **unknown)

    def register(func: QueryFunction) -> None:
        _graph().add_flow(
            QueryFlow(
                name=name or func.__name__, target=target, func=func, source_file=_graph().loading
            )
        )

    return register


def create_sink(*args: Any, **kwargs: Any) -> None:
    raise _unsupported("create_sink")


def create_auto_cdc_from_snapshot_flow(*args: Any, **kwargs: Any) -> None:
    raise _unsupported("create_auto_cdc_from_snapshot_flow")


apply_changes_from_snapshot = create_auto_cdc_from_snapshot_flow
