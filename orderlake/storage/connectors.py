"""The GCS connector jar from Maven Central, and the Hadoop settings that make it work.

`gcs_connector_jar()` downloads `com.google.cloud.bigdataoss:gcs-connector:<version>:shaded`
(the `-shaded.jar` file: the connector with its Google client libraries relocated inside, so
they cannot clash with Spark's own Guava/protobuf) into a per-version cache, checks it against
the checksum Maven Central publishes next to it, and returns its path. Spark gets it through
`spark.jars`, not `spark.jars.packages`: Spark 4.2's `--packages` takes only
`groupId:artifactId:version` (SparkSubmitUtils.extractMavenCoordinates rejects a fourth field),
so Ivy cannot be asked for the `shaded` classifier; and the unshaded artifact would pull its
dependencies in unrelocated.

`gcs_hadoop_conf(endpoint)` gives the `spark.hadoop.*` settings: with an endpoint, for the
fake-gcs-server emulator (no auth); without, for real GCS, where the connector finds credentials
by itself (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud's
application-default login, or the metadata server of a GCE/GKE/Dataproc VM). Nothing secret is
set here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from orderlake.settings import cache_home

GCS_CONNECTOR_VERSION = "4.0.4"
GCS_CONNECTOR_GROUP = "com.google.cloud.bigdataoss"
GCS_CONNECTOR_ARTIFACT = "gcs-connector"
GCS_CONNECTOR_CLASSIFIER = "shaded"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
# Where the jar comes from; ORDERLAKE_MAVEN_REPO points at a mirror (same layout) instead.
MAVEN_REPO_ENV = "ORDERLAKE_MAVEN_REPO"
# A connector jar somewhere else (e.g. baked into an image): used as is, nothing downloaded.
EXPLICIT_JAR_ENV = "ORDERLAKE_GCS_CONNECTOR_JAR"

# Strongest first. Maven Central has .sha1 and .md5 for every file; .sha256/.sha512 only for
# artifacts whose publisher uploaded them (gcs-connector 4.0.4 has neither, checked 2026-12).
_CHECKSUMS = (("sha512", hashlib.sha512), ("sha256", hashlib.sha256), ("sha1", hashlib.sha1))


class ConnectorDownloadError(RuntimeError):
    """The jar could not be fetched or did not match its published checksum."""


def jar_cache_dir() -> Path:
    cache = cache_home()
    return cache / "orderlake" / "jars"


def maven_url(
    group: str, artifact: str, version: str, classifier: str | None = None, repo: str | None = None
) -> str:
    repo = (repo or os.environ.get(MAVEN_REPO_ENV) or MAVEN_CENTRAL).rstrip("/")
    name = f"{artifact}-{version}" + (f"-{classifier}" if classifier else "") + ".jar"
    return f"{repo}/{group.replace('.', '/')}/{artifact}/{version}/{name}"


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _published_checksum(url: str, timeout: float) -> tuple[str, str]:
    """(algorithm, hex digest) of the strongest checksum file published next to `url`."""
    for algorithm, _ in _CHECKSUMS:
        try:
            text = _get(f"{url}.{algorithm}", timeout).decode("ascii", "replace")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise ConnectorDownloadError(f"{url}.{algorithm}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectorDownloadError(f"{url}.{algorithm}: {exc}") from exc
        # Some files hold "<digest>  <file name>"; the digest is the first word.
        words = text.split()
        if words:
            return algorithm, words[0].lower()
    raise ConnectorDownloadError(f"no checksum is published for {url}")


def fetch_jar(
    group: str,
    artifact: str,
    version: str,
    classifier: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout: float = 120.0,
) -> Path:
    """The jar in the cache, downloaded and verified first if it is not there yet.

    The download goes to a temporary file in the cache folder, is hashed while it streams, and
    is renamed into place only when it matches: a crash or a concurrent fetch never leaves a
    partial jar at the final path (two concurrent fetches both download; the last rename wins,
    with identical bytes). A jar already at the final path is trusted: it got there verified.
    """
    cache_dir = cache_dir or jar_cache_dir()
    name = f"{artifact}-{version}" + (f"-{classifier}" if classifier else "") + ".jar"
    target = cache_dir / group / name
    if target.is_file():
        return target
    url = maven_url(group, artifact, version, classifier)
    algorithm, expected = _published_checksum(url, timeout)
    hasher = dict(_CHECKSUMS)[algorithm]()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    while chunk := response.read(1 << 20):
                        hasher.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                raise ConnectorDownloadError(f"{url}: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
        actual = hasher.hexdigest()
        if actual != expected:
            raise ConnectorDownloadError(
                f"{url}: {algorithm} {actual} does not match the published {expected}"
            )
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target


def gcs_connector_jar(version: str = GCS_CONNECTOR_VERSION, cache_dir: Path | None = None) -> Path:
    """Path of the shaded GCS connector jar (ORDERLAKE_GCS_CONNECTOR_JAR, else the cache,
    downloading it from Maven Central the first time)."""
    explicit = os.environ.get(EXPLICIT_JAR_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise ConnectorDownloadError(f"{EXPLICIT_JAR_ENV}={explicit} is not a file")
        return Path(explicit)
    return fetch_jar(
        GCS_CONNECTOR_GROUP,
        GCS_CONNECTOR_ARTIFACT,
        version,
        GCS_CONNECTOR_CLASSIFIER,
        cache_dir=cache_dir,
    )


def gcs_hadoop_conf(endpoint: str | None = None, project_id: str = "test") -> dict[str, str]:
    """`spark.hadoop.*` settings for `gs://` paths through the GCS connector.

    endpoint given (e.g. "http://127.0.0.1:4443"): the fake-gcs-server emulator, no auth.
    endpoint None: real GCS; credentials come from the connector's standard mechanisms
    (Application Default Credentials), the project from the bucket itself.
    """
    conf = {
        "fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
        "fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS",
        # Hadoop 3.5 (in pyspark 4.2) ships `fs.gs.block.size=64m` in core-default.xml, which the
        # connector (built for Hadoop 3.4) reads with getLong -> NumberFormatException.
        "fs.gs.block.size": str(64 * 1024 * 1024),
        # Hadoop 3.5 picks the manifest committer for gs:// by default, and Spark's batch writes
        # through it fail with "jobId is null"; the classic committer works (Delta does not use
        # it for its own files, plain Parquet/CSV writes do).
        "mapreduce.outputcommitter.factory.scheme.gs": (
            "org.apache.hadoop.mapreduce.lib.output.FileOutputCommitterFactory"
        ),
    }
    if endpoint:
        conf.update(
            {
                "fs.gs.storage.root.url": endpoint.rstrip("/") + "/",
                "fs.gs.auth.type": "UNAUTHENTICATED",
                "fs.gs.project.id": project_id,
                # The emulator has no objects.move route; renames then copy + delete.
                "fs.gs.operation.move.enable": "false",
            }
        )
    else:
        conf["fs.gs.auth.type"] = "APPLICATION_DEFAULT"
    return {f"spark.hadoop.{key}": value for key, value in conf.items()}


def main() -> int:
    """`python -m orderlake.storage.connectors`: fetch the connector jar, print its path."""
    import sys
    import time

    start = time.monotonic()
    try:
        path = gcs_connector_jar()
    except ConnectorDownloadError as exc:
        print(f"orderlake: {exc}", file=sys.stderr)
        return 1
    size = path.stat().st_size
    print(f"{path} ({size / 1e6:.1f} MB, {time.monotonic() - start:.1f}s)", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
