"""A stand-in Databricks workspace: a real HTTP server on 127.0.0.1 answering real REST paths.

Used by both the `databricks bundle validate` tests (real Go CLI) and the remote-operation
tests (real databricks-sdk). It keeps just enough state (files in volumes, pipelines, updates,
events) and can inject faults (status codes, Retry-After, slow answers) per path, so error
handling is exercised through the real client code instead of mocks.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "dapi-orderlake-test-token"  # dummy: only this stub accepts it


@dataclass
class Fault:
    """Answer `status` to requests matching method+path regex, `times` times (None: always)."""

    method: str
    path: str
    status: int
    times: int | None = 1
    retry_after: int | None = None
    delay: float = 0.0
    body: dict[str, Any] | None = None


@dataclass
class Pipeline:
    pipeline_id: str
    name: str
    # States get_update walks through, one per poll; the last one sticks.
    update_states: list[str] = field(default_factory=lambda: ["QUEUED", "RUNNING", "COMPLETED"])
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    # Events the next started update logs (origin.update_id is filled in on start).
    next_update_events: list[dict[str, Any]] = field(default_factory=list)


class WorkspaceState:
    """What the stand-in workspace holds; tests arrange it and inspect it."""

    def __init__(self, user: str = "deployer@example.com") -> None:
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        # Workspace-tree folders (not volumes), keyed without the /Workspace prefix.
        self.workspace_dirs: dict[str, int] = {}
        self.pipelines: dict[str, Pipeline] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self.token = TOKEN
        self.user = user  # who the token belongs to: a user's e-mail or a principal's app ID
        for folder in ("/", "/Users", f"/Users/{self.user}", "/Shared"):
            self.mkdirs_workspace(folder)

    def mkdirs_workspace(self, path: str) -> None:
        """Create a workspace folder and its parents, the way /workspace/mkdirs does."""
        key = _workspace_key(path)
        while key not in self.workspace_dirs:
            self.workspace_dirs[key] = len(self.workspace_dirs) + 1000
            key = key.rsplit("/", 1)[0] or "/"

    def add_pipeline(self, name: str, states: list[str] | None = None) -> Pipeline:
        pipeline = Pipeline(pipeline_id=str(uuid.uuid4()), name=name)
        if states is not None:
            pipeline.update_states = states
        self.pipelines[pipeline.pipeline_id] = pipeline
        return pipeline

    def add_file(self, path: str, data: bytes = b"x") -> None:
        self.files[path] = data
        parent = path.rsplit("/", 1)[0]
        while parent and parent != "/":
            self.dirs.add(parent)
            parent = parent.rsplit("/", 1)[0]


def _workspace_key(path: str) -> str:
    """`/Workspace/Users/x` and `/Users/x` name the same object, as on a real workspace."""
    path = "/" + path.strip("/")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    return path


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error_code": code, "message": message}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        with state.lock:
            state.requests.append((self.command, path))
            fault = next(
                (
                    f
                    for f in state.faults
                    if f.method == self.command and re.fullmatch(f.path, path) and f.times != 0
                ),
                None,
            )
            if fault is not None and fault.times is not None:
                fault.times -= 1
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
            payload = fault.body or {"error_code": f"HTTP_{fault.status}", "message": "injected"}
            self._send(fault.status, payload, headers)
            return
        if path != "/.well-known/databricks-config" and not self._authorized():
            return
        status, payload = self.server.routes(self.command, path, query, body)
        self._send(status, payload)

    def _authorized(self) -> bool:
        expected = f"Bearer {self.server.state.token}"
        if self.headers.get("Authorization") != expected:
            self._send(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
            return False
        return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: WorkspaceState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    # -- REST paths -----------------------------------------------------------------------
    def routes(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple:
        s = self.state
        if path == "/.well-known/databricks-config":
            return 200, {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": "470123456789500"}
        if path == "/api/2.0/preview/scim/v2/Me":
            return 200, {
                "id": "1000",
                "userName": s.user,
                "displayName": "Deployer",
                "active": True,
                "groups": [{"display": "users"}],
            }
        if path == "/api/2.0/workspace/get-status":
            wanted = query.get("path", "")
            with s.lock:
                object_id = s.workspace_dirs.get(_workspace_key(wanted))
            if object_id is None:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({wanted}) doesn't exist.")
            return 200, {"object_type": "DIRECTORY", "path": wanted, "object_id": object_id}
        if path.startswith("/api/2.0/permissions/directories/") and method == "GET":
            # Home folders: the owner manages; everything: workspace admins manage.
            object_id = path.rsplit("/", 1)[-1]
            acl = [
                {"group_name": "admins", "all_permissions": [{"permission_level": "CAN_MANAGE"}]}
            ]
            if object_id == str(s.workspace_dirs.get(f"/Users/{s.user}")):
                # A principal's folder is named by its application ID; a user's by e-mail.
                who = "user_name" if "@" in s.user else "service_principal_name"
                acl.append({who: s.user, "all_permissions": [{"permission_level": "CAN_MANAGE"}]})
            return 200, {
                "object_id": f"/directories/{object_id}",
                "object_type": "directory",
                "access_control_list": acl,
            }
        if path == "/api/2.0/workspace/mkdirs" and method == "POST":
            with s.lock:
                s.mkdirs_workspace(json.loads(body or b"{}").get("path", "/"))
            return 200, {}
        if path == "/api/2.1/unity-catalog/current-metastore-assignment":
            return 200, {
                "metastore_id": "120efa64-9b68-46ba-be38-f319458430d2",
                "workspace_id": 470123456789500,
                "default_catalog_name": "hive_metastore",
            }
        if path == "/telemetry-ext":
            return 200, {"errors": [], "numProtoSuccess": 1}
        if path.startswith("/api/2.0/fs/"):
            return self._files(method, path, query, body)
        if path.startswith("/api/2.0/pipelines"):
            return self._pipelines(method, path, query, body)
        with s.lock:
            s.unknown.append((method, path))
        return _error(404, "ENDPOINT_NOT_FOUND", f"stub has no {method} {path}")

    def _files(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple:
        s = self.state
        kind, _, target = path[len("/api/2.0/fs/") :].partition("/")
        target = "/" + target.rstrip("/")
        with s.lock:
            if kind == "files" and method == "PUT":
                if target in s.files and query.get("overwrite") != "true":
                    return _error(409, "ALREADY_EXISTS", f"{target} already exists")
                s.add_file(target, body)
                return 204, None
            if kind == "files" and method in ("GET", "HEAD"):
                if target not in s.files:
                    return _error(404, "NOT_FOUND", f"{target} not found")
                return 200, None
            if kind == "directories" and method == "PUT":
                s.dirs.add(target)
                return 200, {}
            if kind == "directories" and method == "HEAD":
                return (200, None) if target in s.dirs else (404, None)
            if kind == "directories" and method == "GET":
                if target not in s.dirs:
                    return _error(404, "NOT_FOUND", f"The directory {target} does not exist")
                return 200, {"contents": self._listing(target)}
        return _error(404, "ENDPOINT_NOT_FOUND", f"stub has no {method} {path}")

    def _listing(self, folder: str) -> list[dict[str, Any]]:
        s = self.state
        entries: dict[str, dict[str, Any]] = {}
        prefix = folder + "/"
        for name, data in s.files.items():
            if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                entries[name] = {
                    "path": name,
                    "name": name[len(prefix) :],
                    "is_directory": False,
                    "file_size": len(data),
                    "last_modified": 1_700_000_000_000,
                }
        for name in s.dirs:
            if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                entries[name] = {
                    "path": name + "/",
                    "name": name[len(prefix) :],
                    "is_directory": True,
                }
        return [entries[k] for k in sorted(entries)]

    def _pipelines(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple:
        s = self.state
        parts = path.strip("/").split("/")[3:]  # after api/2.0/pipelines
        with s.lock:
            if not parts and method == "GET":
                wanted = re.search(r"name LIKE '(.*)'", query.get("filter", ""))
                found = [
                    {"pipeline_id": p.pipeline_id, "name": p.name, "state": "IDLE"}
                    for p in s.pipelines.values()
                    if wanted is None or _like(p.name, wanted.group(1))
                ]
                return 200, {"statuses": found}
            pipeline = s.pipelines.get(parts[0]) if parts else None
            if pipeline is None:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Pipeline {parts[:1]} not found.")
            rest = parts[1:]
            if not rest and method == "GET":
                return 200, {
                    "pipeline_id": pipeline.pipeline_id,
                    "name": pipeline.name,
                    "state": "IDLE",
                    "latest_updates": [
                        {"update_id": u["update_id"], "state": u["state"]}
                        for u in reversed(pipeline.updates)
                    ],
                }
            if rest == ["updates"] and method == "POST":
                update_id = str(uuid.uuid4())
                request = json.loads(body or b"{}")
                pipeline.updates.append(
                    {
                        "update_id": update_id,
                        "pipeline_id": pipeline.pipeline_id,
                        "state": pipeline.update_states[0],
                        "full_refresh": bool(request.get("full_refresh")),
                        "creation_time": int(time.time() * 1000),
                    }
                )
                pipeline.polls[update_id] = 0
                for event in pipeline.next_update_events:
                    origin = {**event.get("origin", {}), "update_id": update_id}
                    pipeline.events.append({**event, "origin": origin})
                pipeline.next_update_events = []
                return 200, {"update_id": update_id}
            if rest == ["updates"] and method == "GET":
                return 200, {"updates": list(reversed(pipeline.updates))}
            if len(rest) == 2 and rest[0] == "updates" and method == "GET":
                update = next((u for u in pipeline.updates if u["update_id"] == rest[1]), None)
                if update is None:
                    return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Update {rest[1]} not found.")
                n = pipeline.polls.get(rest[1], 0)
                update["state"] = pipeline.update_states[min(n, len(pipeline.update_states) - 1)]
                pipeline.polls[rest[1]] = n + 1
                return 200, {"update": dict(update)}
            if rest == ["events"] and method == "GET":
                return 200, {"events": list(reversed(pipeline.events))}
        return _error(404, "ENDPOINT_NOT_FOUND", f"stub has no {method} {path}")


def _like(name: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None


class WorkspaceStub:
    """Run the stand-in on a random 127.0.0.1 port; use as a context manager."""

    def __init__(self, user: str = "deployer@example.com") -> None:
        self.state = WorkspaceState(user)
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> WorkspaceStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
