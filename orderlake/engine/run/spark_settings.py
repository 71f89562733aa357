"""Session settings changed for one piece of work and put back after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def spark_settings(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """Set `conf` on the session while the block runs, then restore each key's old value (or
    unset it)."""
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
