"""The dataflow graph the definitions declare: datasets, the flows that fill them, expectations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column

from orderlake.errors import ConfigurationError


@dataclass(frozen=True)
class Expectation:
    name: str
    constraint: str
    action: str  # warn | drop | fail


@dataclass
class Dataset:
    name: str
    kind: str  # table (streaming) | materialized_view | view
    comment: str | None = None
    table_properties: dict[str, str] = field(default_factory=dict)
    expectations: list[Expectation] = field(default_factory=list)
    source_file: str | None = None  # the definition file that declared it

    @property
    def stored(self) -> bool:
        """A Delta table in the warehouse (a streaming table or a materialized view)."""
        return self.kind in STORED_KINDS


STORED_KINDS = ("table", "materialized_view")


@dataclass(frozen=True)
class QueryFlow:
    """Appends the rows of a query function into `target` (or defines the view `target`)."""

    name: str
    target: str
    func: Callable[[], Any]
    source_file: str | None = None


@dataclass(frozen=True)
class AutoCdcFlow:
    name: str
    target: str
    source: str
    keys: list[str]
    sequence_by: Column
    apply_as_deletes: Column | None
    column_list: list[str] | None
    except_column_list: list[str] | None
    source_file: str | None = None
    scd_type: int = 1
    ignore_null_updates: bool = False
    apply_as_truncates: Column | None = None
    track_history_column_list: list[str] | None = None
    track_history_except_column_list: list[str] | None = None


Flow = QueryFlow | AutoCdcFlow


class GraphError(ConfigurationError, ValueError):
    """The definitions declare an inconsistent graph."""


@dataclass
class PipelineGraph:
    datasets: dict[str, Dataset] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)
    loading: str | None = None  # the definition file being run, while the loader runs one

    def add_dataset(self, dataset: Dataset) -> None:
        if dataset.name in self.datasets:
            raise GraphError(f"dataset {dataset.name!r} is defined twice")
        self.datasets[dataset.name] = dataset

    def add_flow(self, flow: Flow) -> None:
        if any(f.name == flow.name for f in self.flows):
            raise GraphError(f"flow {flow.name!r} is defined twice")
        self.flows.append(flow)

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise GraphError(f"no dataset named {name!r} in the pipeline") from None

    def view_flow(self, name: str) -> QueryFlow:
        """The query defining view `name`."""
        if self.dataset(name).kind != "view":
            raise GraphError(f"{name!r} is not a view")
        return next(f for f in self.flows if isinstance(f, QueryFlow) and f.target == name)

    def table_flows(self) -> list[Flow]:
        """Flows that write stored tables (streaming tables, materialized views), in order."""
        return [f for f in self.flows if self.dataset(f.target).stored]

    def is_view(self, name: str) -> bool:
        return name in self.datasets and self.datasets[name].kind == "view"

    def validate(self) -> None:
        for flow in self.flows:
            self.dataset(flow.target)
            if isinstance(flow, AutoCdcFlow):
                self.dataset(flow.source)

    def check_acyclic(self, reads: dict[str, set[str]]) -> None:
        """Refuse a cycle among datasets, naming it, as Databricks does: the pipeline graph is
        a DAG. `reads[flow name]` holds the datasets the flow reads; a flow reading its own
        target (an append flow topping up its table) is not a cycle here."""
        needs: dict[str, set[str]] = {}
        for flow in self.flows:
            found = set(reads.get(flow.name, set()))
            if isinstance(flow, AutoCdcFlow):
                found.add(flow.source)
            needs.setdefault(flow.target, set()).update(
                d for d in found if d in self.datasets and d != flow.target
            )
        cycle = find_cycle(needs)
        if cycle:
            raise GraphError(
                f"the datasets form a cycle: {' -> '.join(cycle)} (each reads the next); "
                "a pipeline's graph must be acyclic"
            )


def find_cycle(needs: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph `node -> nodes it needs`, as a path back to its start, or None."""
    done: set[str] = set()
    for start in sorted(needs):
        if start in done:
            continue
        path = [start]
        stack = [iter(sorted(needs.get(start, ())))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(path.pop())
            elif child in path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                path.append(child)
                stack.append(iter(sorted(needs.get(child, ()))))
    return None
