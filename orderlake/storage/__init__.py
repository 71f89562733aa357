"""Storage: one interface for every file operation, on a local folder or a bucket.

`storage_for(path, spark=None)` picks the backend: LocalStorage (pure Python, no JVM) for
plain paths and `file:` URIs, HadoopStorage (Hadoop FileSystem through Spark's JVM) for any
other scheme (`gs://`, `s3a://`, ...). Importing this package imports neither pyspark nor py4j.
"""

from orderlake.storage.base import FileInfo, Storage, is_local, join_path, scheme_of, storage_for
from orderlake.storage.local import LOCAL, LocalStorage

__all__ = [
    "LOCAL",
    "FileInfo",
    "LocalStorage",
    "Storage",
    "is_local",
    "join_path",
    "scheme_of",
    "storage_for",
]
