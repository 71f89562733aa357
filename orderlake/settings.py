"""Pipeline settings: the `configuration` keys the definitions read through `spark.conf`.

The same keys are set in `resources/orders_pipeline.yml` for Databricks and by the local engine
for local runs, so both read one set of names and defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PREFIX = "orders."

# key -> default. Every key the definitions read is listed here (tests check the bundle sets them).
DEFAULTS: dict[str, str] = {
    "orders.catalog": "incremental_load",
    "orders.schema": "default",
    "orders.volume": "orders_data",
    # Root of the volume; empty means /Volumes/<catalog>/<schema>/<volume>.
    "orders.volume_path": "",
    "orders.source_dir": "source",
    "orders.archive_dir": "archive",
    "orders.rejected_dir": "rejected",
    # Rule file; empty means expectations/orders.yml beside this package.
    "orders.expectations_path": "",
    # Auto Loader cleanSource MOVE retention on Databricks ("0 days" = move once committed).
    "orders.archive_retention": "0 days",
}

# key -> what it sets (`orderlake conf` prints these with the defaults).
DESCRIPTIONS: dict[str, str] = {
    "orders.catalog": "Unity Catalog catalog of the tables and the volume",
    "orders.schema": "schema of the tables and the volume",
    "orders.volume": "volume holding source/, archive/ and rejected/",
    "orders.volume_path": "root of the volume; empty: /Volumes/<catalog>/<schema>/<volume> "
    "(locally: --volume)",
    "orders.source_dir": "folder under the volume where clients drop files",
    "orders.archive_dir": "folder under the volume where loaded files move",
    "orders.rejected_dir": "folder under the volume for unusable files and their reports",
    "orders.expectations_path": "rule file; empty: expectations/orders.yml of this package",
    "orders.archive_retention": "Auto Loader cleanSource MOVE retention on Databricks",
}

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfReader(Protocol):
    """Anything with `get(key, default)`: `spark.conf` or a dict."""

    def get(self, key: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class PipelineSettings:
    catalog: str
    schema: str
    volume: str
    volume_path: str
    source_dir: str
    archive_dir: str
    rejected_dir: str
    expectations_path: str
    archive_retention: str

    @classmethod
    def from_conf(cls, conf: ConfReader) -> PipelineSettings:
        """Read every `orders.*` key, falling back to DEFAULTS."""
        values = {
            key[len(PREFIX) :]: (conf.get(key, default) or default)
            for key, default in DEFAULTS.items()
        }
        if not values["volume_path"]:
            values["volume_path"] = (
                f"/Volumes/{values['catalog']}/{values['schema']}/{values['volume']}"
            )
        if not values["expectations_path"]:
            values["expectations_path"] = str(REPO_ROOT / "expectations" / "orders.yml")
        return cls(**values)

    def _under_volume(self, folder: str) -> str:
        return f"{self.volume_path.rstrip('/')}/{folder.strip('/')}"

    @property
    def source_path(self) -> str:
        return self._under_volume(self.source_dir)

    @property
    def archive_path(self) -> str:
        return self._under_volume(self.archive_dir)

    @property
    def rejected_path(self) -> str:
        return self._under_volume(self.rejected_dir)


def cache_home() -> Path:
    """The user's cache folder ($XDG_CACHE_HOME, else ~/.cache): jars, archives, scratch."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
