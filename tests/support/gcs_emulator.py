"""Find, start and stop the GCS emulator that scripts/install-fake-gcs-server.sh builds.

The emulator listens on 127.0.0.1 only, on a free port, with the in-memory backend: every
test session starts empty, nothing is left on disk, and objects are small. (The filesystem
backend would add disk writes and a folder to clean for no test that needs persistence; both
backends check ifGenerationMatch under the same lock.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPLICIT_ENV = "ORDERLAKE_FAKE_GCS_SERVER"
# Set to 1 where the GCS tests must run (Go, Java and the registries are there): a missing
# emulator, Java or connector jar then fails these tests instead of skipping them.
REQUIRE_ENV = "ORDERLAKE_REQUIRE_GCS"
HOST = "127.0.0.1"
INSTALL_HINT = (
    "fake-gcs-server is not built: run `bash scripts/install-fake-gcs-server.sh` "
    f"(or set {EXPLICIT_ENV} to a fake-gcs-server binary)"
)
REFUSED_HINT = (
    "fake-gcs-server is not built: the Go module proxy refused github.com/fsouza/fake-gcs-server; "
    f"run scripts/install-fake-gcs-server.sh where it is reachable (or set {EXPLICIT_ENV})"
)


def gcs_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def unavailable(reason: str) -> None:
    """Skip the test (fail it under ORDERLAKE_REQUIRE_GCS=1) because a prerequisite is missing."""
    if gcs_required():
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def pinned_version() -> str:
    return (ROOT / "scripts" / "fake-gcs-server.version").read_text().strip()


def cache_dir() -> Path:
    """Where the install script builds the pinned version (same rule as the script)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "orderlake" / "fake-gcs-server" / pinned_version()


def find_binary() -> Path | None:
    explicit = os.environ.get(EXPLICIT_ENV)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    binary = cache_dir() / "bin" / "fake-gcs-server"
    return binary if binary.is_file() else None


def missing_reason() -> str:
    explicit = os.environ.get(EXPLICIT_ENV)
    if explicit:
        return f"{EXPLICIT_ENV}={explicit} is not a file"
    log = cache_dir() / "build.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    if "403 Forbidden" in text or "not available" in text:
        return REFUSED_HINT
    if text:
        return f"{INSTALL_HINT}; the last build failed, see {log}"
    return INSTALL_HINT


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the caller retries if someone takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process's group (it was started with start_new_session), SIGKILL if needed."""
    if process.poll() is not None and not _group_alive(process.pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    return bool(processes_in_group(pgid))


def processes_in_group(pgid: int) -> list[int]:
    """Live (not zombie) pids whose process group is `pgid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


class FakeGcsServer:
    """fake-gcs-server on 127.0.0.1:<free port>, in-memory, plain HTTP."""

    def __init__(self, binary: Path, log_path: Path):
        self.binary = binary
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        for _ in range(attempts):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        str(self.binary),
                        "-scheme", "http",
                        "-host", HOST,
                        "-port", str(self.port),
                        "-backend", "memory",
                        "-log-level", "warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            if self._wait_until_up(timeout):
                return
            self.stop()  # most likely the port was taken between free_port() and the bind
        raise RuntimeError(f"fake-gcs-server did not start; log: {self.log_path}")

    def _wait_until_up(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                self.request("GET", "/storage/v1/b?project=test", timeout=1)
                return True
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        return False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 10,
    ) -> tuple[int, bytes]:
        """One HTTP call to the emulator: (status, body); 4xx/5xx are returned, not raised."""
        request = urllib.request.Request(self.endpoint + path, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        status, text = self.request("POST", "/storage/v1/b?project=test", body)
        if status not in (200, 409):
            raise RuntimeError(f"creating bucket {name}: HTTP {status} {text[:200]!r}")

    def upload_if_absent(self, bucket: str, name: str, data: bytes) -> bool:
        """A simple upload with ifGenerationMatch=0 from this Python process (another client
        than the JVM's connector): True if created, False on 412 Precondition Failed."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        path = f"/upload/storage/v1/b/{bucket}/o?{query}&ifGenerationMatch=0"
        status, text = self.request("POST", path, data, "application/octet-stream")
        if status == 200:
            return True
        if status == 412:
            return False
        raise RuntimeError(f"upload {bucket}/{name}: HTTP {status} {text[:200]!r}")

    def object_metadata(self, bucket: str, name: str) -> dict | None:
        quoted = urllib.parse.quote(name, safe="")
        status, text = self.request("GET", f"/storage/v1/b/{bucket}/o/{quoted}")
        return json.loads(text) if status == 200 else None

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None
