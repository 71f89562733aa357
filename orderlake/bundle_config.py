"""Read the Databricks bundle (databricks.yml + resources/*.yml) without the Databricks CLI.

The local engine takes its pipeline configuration and trigger timings from the same files that
`databricks bundle deploy` ships, so local runs and the cloud cannot drift apart. Only what the
engine needs is resolved: `${var.*}` (variable defaults, then the target's overrides),
`${bundle.name}`, `${bundle.target}` and `${resources.<type>.<key>.<field>}` for fields written
in the config (names as written, without development-mode prefixes).

Workspace-only references (`${workspace.*}`, resource ids) stay as written. The only
configuration key allowed to keep one is listed in WORKSPACE_ONLY_KEYS: the local engine must
override it. Any other unresolved `${...}` in a value the engine needs raises BundleConfigError.
"""

from __future__ import annotations

import copy
import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orderlake.errors import ConfigurationError
from orderlake.settings import REPO_ROOT

BUNDLE_FILE = "databricks.yml"
# Configuration keys whose bundle value only exists in a workspace; the local engine sets them.
WORKSPACE_ONLY_KEYS: frozenset[str] = frozenset({"orders.expectations_path"})

_REF = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")


class BundleConfigError(ConfigurationError, ValueError):
    """The bundle files are missing, malformed, or leave a needed value unresolved."""


@dataclass(frozen=True)
class BundleConfig:
    pipeline_name: str
    pipeline_configuration: dict[str, str]  # the pipeline's `configuration:` map, resolved
    wait_after_last_change_seconds: int  # from the job's trigger.file_arrival
    min_time_between_triggers_seconds: int
    libraries: list[str]  # the pipeline's libraries glob includes, as written


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleConfigError(f"bundle file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise BundleConfigError(f"invalid YAML in {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BundleConfigError(f"{path}: top level must be a mapping")
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings the way bundle targets and includes combine (extra wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _select_target(doc: dict[str, Any], target: str | None) -> tuple[str | None, dict[str, Any]]:
    targets = doc.get("targets") or {}
    if target is None:
        defaults = [name for name, spec in targets.items() if (spec or {}).get("default")]
        if len(defaults) > 1:
            raise BundleConfigError(f"more than one default target: {defaults}")
        if not defaults:
            return None, {}
        target = defaults[0]
    if target not in targets:
        raise BundleConfigError(f"unknown target {target!r}; bundle has {sorted(targets)}")
    return target, targets[target] or {}


def _variables(doc: dict[str, Any], target_spec: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in (doc.get("variables") or {}).items():
        values[name] = spec.get("default") if isinstance(spec, dict) else spec
    for name, spec in (target_spec.get("variables") or {}).items():
        if name not in values:
            raise BundleConfigError(f"target overrides undeclared variable {name!r}")
        values[name] = spec.get("default") if isinstance(spec, dict) else spec
    return values


class _Resolver:
    """Resolve `${...}` references against variables, bundle fields and resource fields."""

    def __init__(self, variables: dict[str, Any], bundle: dict[str, Any], resources: dict) -> None:
        self.variables = variables
        self.bundle = bundle
        self.resources = resources

    def _lookup(self, ref: str, depth: int) -> tuple[bool, Any]:
        parts = ref.split(".")
        if parts[0] == "var" and len(parts) == 2:
            if parts[1] not in self.variables:
                raise BundleConfigError(f"reference to undeclared variable ${{{ref}}}")
            value = self.variables[parts[1]]
            if value is None:
                raise BundleConfigError(f"variable {parts[1]!r} has no default value")
            return True, self.resolve(value, depth + 1)
        if parts[0] == "bundle" and len(parts) == 2 and parts[1] in self.bundle:
            return True, self.bundle[parts[1]]
        if parts[0] == "resources" and len(parts) >= 4:
            node: Any = self.resources
            for part in parts[1:]:
                if not isinstance(node, dict) or part not in node:
                    return False, None  # e.g. `.id`: only known after deploy
                node = node[part]
            return True, self.resolve(node, depth + 1)
        return False, None  # ${workspace.*} and other workspace-only values

    def resolve(self, value: Any, depth: int = 0) -> Any:
        if depth > 20:
            raise BundleConfigError(f"reference cycle while resolving {value!r}")
        if isinstance(value, dict):
            return {k: self.resolve(v, depth) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, depth) for v in value]
        if not isinstance(value, str):
            return value
        whole = _REF.fullmatch(value)
        if whole:  # keep the type of a lone reference (ints stay ints)
            found, resolved = self._lookup(whole.group(1), depth)
            return resolved if found else value

        def sub(match: re.Match[str]) -> str:
            found, resolved = self._lookup(match.group(1), depth)
            return str(resolved) if found else match.group(0)

        return _REF.sub(sub, value)


def _load_raw(root: Path, target: str | None) -> tuple[str | None, dict[str, Any], _Resolver]:
    doc = _read_yaml(root / BUNDLE_FILE)
    resources: dict[str, Any] = doc.get("resources") or {}
    for pattern in doc.get("include") or []:
        for path in sorted(glob.glob(str(root / pattern))):
            resources = _merge(resources, _read_yaml(Path(path)).get("resources") or {})
    name, target_spec = _select_target(doc, target)
    resources = _merge(resources, target_spec.get("resources") or {})
    bundle = dict(doc.get("bundle") or {})
    if name is not None:
        bundle["target"] = name
    resolver = _Resolver(_variables(doc, target_spec), bundle, resources)
    return name, resources, resolver


def _only(kind: str, items: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(items) != 1:
        raise BundleConfigError(f"expected exactly one {kind} in the bundle, found {sorted(items)}")
    return next(iter(items.items()))


def _trigger_job(jobs: dict[str, Any], pipeline_key: str) -> dict[str, Any]:
    ref = f"${{resources.pipelines.{pipeline_key}.id}}"
    for job in jobs.values():
        tasks = job.get("tasks") or []
        runs_pipeline = any((t.get("pipeline_task") or {}).get("pipeline_id") == ref for t in tasks)
        if runs_pipeline and (job.get("trigger") or {}).get("file_arrival"):
            return job
    raise BundleConfigError(f"no job with a file_arrival trigger runs pipeline {pipeline_key!r}")


def _unresolved(where: str, value: Any) -> Any:
    if isinstance(value, str) and _REF.search(value):
        raise BundleConfigError(f"{where} has an unresolved reference: {value!r}")
    return value


def _seconds(where: str, value: Any) -> int:
    _unresolved(where, value)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        msg = f"{where} must be a whole number of seconds, got {value!r}"
        raise BundleConfigError(msg) from exc


def load_bundle(root: Path | None = None, target: str | None = None) -> BundleConfig:
    """Load the pipeline's settings from the bundle at `root` (default: the repo root)."""
    root = Path(root) if root is not None else REPO_ROOT
    _, resources, resolver = _load_raw(root, target)
    pipeline_key, pipeline = _only("pipeline", resources.get("pipelines") or {})
    job = _trigger_job(resources.get("jobs") or {}, pipeline_key)

    configuration: dict[str, str] = {}
    for key, value in (resolver.resolve(pipeline.get("configuration") or {})).items():
        if key not in WORKSPACE_ONLY_KEYS:
            _unresolved(f"pipeline configuration {key!r}", value)
        configuration[str(key)] = str(value)

    arrival = job["trigger"]["file_arrival"]
    libraries = [
        lib["glob"]["include"]
        for lib in pipeline.get("libraries") or []
        if isinstance(lib, dict) and "glob" in lib
    ]
    return BundleConfig(
        pipeline_name=str(_unresolved("pipeline name", resolver.resolve(pipeline.get("name")))),
        pipeline_configuration=configuration,
        wait_after_last_change_seconds=_seconds(
            "wait_after_last_change_seconds",
            resolver.resolve(arrival.get("wait_after_last_change_seconds")),
        ),
        min_time_between_triggers_seconds=_seconds(
            "min_time_between_triggers_seconds",
            resolver.resolve(arrival.get("min_time_between_triggers_seconds")),
        ),
        libraries=libraries,
    )


def target_mode(root: Path | None = None, target: str | None = None) -> str | None:
    """The target's `mode` (development / production), or None when it sets none."""
    doc = _read_yaml((Path(root) if root is not None else REPO_ROOT) / BUNDLE_FILE)
    return _select_target(doc, target)[1].get("mode")
