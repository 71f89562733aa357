"""The connector download (against a little Maven repository on 127.0.0.1) and the settings."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderlake.storage import connectors as c

JAR = b"PK\x03\x04 not really a jar, but bytes with a checksum"
REL = "com/example/thing/1.0"


class Repo:
    """Files served at http://127.0.0.1:<port>/<path>; `hits` counts requests per path."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.hits: dict[str, int] = {}
        repo = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server's name
                repo.hits[self.path] = repo.hits.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, name: str, data: bytes) -> None:
        path = self.folder / REL / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    served = Repo(tmp_path / "repo")
    monkeypatch.setenv(c.MAVEN_REPO_ENV, served.url)
    yield served
    served.server.shutdown()
    served.server.server_close()


def fetch(cache: Path) -> Path:
    return c.fetch_jar("com.example", "thing", "1.0", "shaded", cache_dir=cache, timeout=10)


def test_fetch_verifies_sha1_and_caches(repo: Repo, tmp_path: Path) -> None:
    repo.put("thing-1.0-shaded.jar", JAR)
    repo.put("thing-1.0-shaded.jar.sha1", hashlib.sha1(JAR).hexdigest().encode() + b"\n")
    jar = fetch(tmp_path / "cache")
    assert jar == tmp_path / "cache" / "com.example" / "thing-1.0-shaded.jar"
    assert jar.read_bytes() == JAR
    assert fetch(tmp_path / "cache") == jar  # second call: from the cache
    assert repo.hits[f"/{REL}/thing-1.0-shaded.jar"] == 1
    assert list(jar.parent.iterdir()) == [jar]  # no temporary file left


def test_fetch_prefers_sha256_and_accepts_name_after_digest(repo: Repo, tmp_path: Path) -> None:
    repo.put("thing-1.0-shaded.jar", JAR)
    repo.put("thing-1.0-shaded.jar.sha1", b"0" * 40)  # wrong, but not the one used
    digest = hashlib.sha256(JAR).hexdigest()
    repo.put("thing-1.0-shaded.jar.sha256", f"{digest}  thing-1.0-shaded.jar\n".encode())
    assert fetch(tmp_path / "cache").read_bytes() == JAR


def test_a_checksum_mismatch_leaves_nothing(repo: Repo, tmp_path: Path) -> None:
    repo.put("thing-1.0-shaded.jar", JAR + b"tampered")
    repo.put("thing-1.0-shaded.jar.sha1", hashlib.sha1(JAR).hexdigest().encode())
    with pytest.raises(c.ConnectorDownloadError, match="does not match"):
        fetch(tmp_path / "cache")
    assert list((tmp_path / "cache" / "com.example").iterdir()) == []


def test_no_published_checksum_is_an_error(repo: Repo, tmp_path: Path) -> None:
    repo.put("thing-1.0-shaded.jar", JAR)
    with pytest.raises(c.ConnectorDownloadError, match="no checksum"):
        fetch(tmp_path / "cache")


def test_maven_url_layout() -> None:
    group = "com.google.cloud.bigdataoss"
    url = c.maven_url(group, "gcs-connector", "4.0.4", "shaded", c.MAVEN_CENTRAL)
    assert url == (
        "https://repo1.maven.org/maven2/com/google/cloud/bigdataoss/gcs-connector/4.0.4/"
        "gcs-connector-4.0.4-shaded.jar"
    )


def test_explicit_jar_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jar = tmp_path / "mine.jar"
    jar.write_bytes(b"x")
    monkeypatch.setenv(c.EXPLICIT_JAR_ENV, str(jar))
    assert c.gcs_connector_jar() == jar
    monkeypatch.setenv(c.EXPLICIT_JAR_ENV, str(tmp_path / "missing.jar"))
    with pytest.raises(c.ConnectorDownloadError, match="not a file"):
        c.gcs_connector_jar()


def test_emulator_settings() -> None:
    conf = c.gcs_hadoop_conf("http://127.0.0.1:4443")
    impl = "com.google.cloud.hadoop.fs.gcs"
    assert conf == {
        "spark.hadoop.fs.gs.impl": f"{impl}.GoogleHadoopFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.gs.impl": f"{impl}.GoogleHadoopFS",
        "spark.hadoop.fs.gs.block.size": "67108864",
        "spark.hadoop.mapreduce.outputcommitter.factory.scheme.gs": (
            "org.apache.hadoop.mapreduce.lib.output.FileOutputCommitterFactory"
        ),
        "spark.hadoop.fs.gs.storage.root.url": "http://127.0.0.1:4443/",
        "spark.hadoop.fs.gs.auth.type": "UNAUTHENTICATED",
        "spark.hadoop.fs.gs.project.id": "test",
        "spark.hadoop.fs.gs.operation.move.enable": "false",
    }


def test_real_gcs_settings_carry_no_endpoint_and_no_secret() -> None:
    conf = c.gcs_hadoop_conf(None)
    assert conf["spark.hadoop.fs.gs.auth.type"] == "APPLICATION_DEFAULT"
    assert not any("root.url" in k or "move.enable" in k or "project" in k for k in conf)
    assert not any(
        word in k.lower() for k in conf for word in ("key", "secret", "token", "password")
    )
