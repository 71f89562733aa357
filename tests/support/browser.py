"""A real headless Chromium driven over the DevTools protocol (websocket), for page tests.

`open_page(url)` loads a page and returns a `Page` that evaluates JavaScript, reports the
console errors and uncaught exceptions the page produced, and takes screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class BrowserMissing(RuntimeError):
    """Chromium is not installed and could not be installed."""


def chromium() -> str:
    """The browser's path, installing it with the project's script when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    installed = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-chromium.sh")],
        capture_output=True,
        text=True,
    )
    path = installed.stdout.strip().splitlines()[-1:] if installed.returncode == 0 else []
    if not path or not os.access(path[0], os.X_OK):
        raise BrowserMissing(
            "chromium could not be installed: " + (installed.stderr.strip()[-300:] or "?")
        )
    return path[0]


class Page:
    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=120))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv(timeout=timeout))
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, tries: int = 300) -> None:
        """Poll until `expression` is truthy (bounded; the page decides when it is ready)."""
        for _ in range(tries):
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise AssertionError(f"the page never got to: {expression}")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(
                    str((details.get("exception") or {}).get("description") or details.get("text"))
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in
                                      params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", "?"))
        return found

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280, height=int(height), deviceScaleFactor=1, mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def open_page(url: str, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """Start Chromium, load `url`, and hand over the page; the browser is stopped after."""
    from websockets.sync.client import connect

    browser = chromium()
    profile = tempfile.mkdtemp(prefix="orderlake-chromium-")
    proc = subprocess.Popen(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                raise BrowserMissing(f"{browser} exited with {proc.returncode} at start")
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            targets = json.load(answer)
        target = next(t for t in targets if t.get("type") == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            page = Page(socket)
            for domain in ("Page", "Runtime", "Log"):
                page.call(f"{domain}.enable")
            page.call("Page.navigate", url=url)
            page.wait_for_event("Page.loadEventFired")
            yield page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
