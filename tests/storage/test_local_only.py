"""LocalStorage without Spark, its fallbacks, path handling, and how the GCS prerequisites are
found (no JVM, no emulator needed for any test here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orderlake.storage import LOCAL, is_local, join_path, scheme_of
from orderlake.storage import local as local_module
from tests.support import gcs_emulator as emu
from tests.support.racing import race

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-fake-gcs-server.sh"
BASH = shutil.which("bash") or "/bin/bash"


def test_importing_storage_and_using_local_needs_no_spark(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from orderlake.storage import storage_for\n"
        f"s = storage_for({str(tmp_path)!r})\n"
        f"s.write_bytes({str(tmp_path / 'a' / 'b')!r}, b'x')\n"
        f"assert [i.size for i in s.list_files({str(tmp_path)!r})] == [1]\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("path", "scheme", "local"),
    [
        ("/tmp/x", "", True),
        ("relative/x", "", True),
        ("file:///tmp/x", "file", True),
        ("file:/tmp/x", "file", True),
        ("gs://bucket/x", "gs", False),
        ("S3A://bucket/x", "s3a", False),
        ("C:/data/x", "", True),
    ],
)
def test_schemes(path: str, scheme: str, local: bool) -> None:
    assert scheme_of(path) == scheme
    assert is_local(path) is local


def test_join_path() -> None:
    assert join_path("gs://b", "a", "c.csv") == "gs://b/a/c.csv"
    assert join_path("gs://b/", "/a/") == "gs://b/a"
    assert join_path("/", "x") == "/x"
    assert join_path("/data", "") == "/data"


def test_file_uris_are_local_paths(tmp_path: Path) -> None:
    LOCAL.write_bytes(f"file://{tmp_path}/u/f.csv", b"abc")
    assert (tmp_path / "u" / "f.csv").read_bytes() == b"abc"
    assert [i.path for i in LOCAL.list_files(f"file:{tmp_path}")] == [str(tmp_path / "u/f.csv")]
    with pytest.raises(ValueError, match="remote host"):
        LOCAL.read_bytes("file://otherhost/etc/hostname")


def test_gs_path_without_a_session_is_refused() -> None:
    # In a process of its own: this one may have a session, which storage_for would use.
    code = (
        "from orderlake.storage import storage_for\n"
        "try:\n"
        "    storage_for('gs://bucket/x')\n"
        "except ValueError as exc:\n"
        "    assert 'needs a SparkSession' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    LOCAL.write_bytes(str(tmp_path / "w"), b"x")
    assert LOCAL.create_exclusive(str(tmp_path / "c"), b"x")
    for name in ("w", "c"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture(params=["renameat2", "link", "check"])
def rename_mode(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each rename path: renameat2(NOREPLACE), the link+unlink fallback, check+rename."""
    if request.param == "renameat2" and local_module._renameat2 is None:
        pytest.skip("no renameat2 in this libc")
    if request.param != "renameat2":
        monkeypatch.setattr(local_module, "_renameat2", None)
    if request.param == "check":

        def no_links(*args, **kwargs):
            raise OSError(1, "Operation not permitted")  # EPERM: no hard links here

        monkeypatch.setattr(local_module.os, "link", no_links)
    return request.param


def test_rename_never_overwrites_in_every_mode(rename_mode: str, tmp_path: Path) -> None:
    src, dst, folder = tmp_path / "src", tmp_path / "dst", tmp_path / "folder"
    src.write_bytes(b"s")
    dst.write_bytes(b"d")
    folder.mkdir()
    assert LOCAL.rename(str(src), str(dst)) is False
    assert LOCAL.rename(str(src), str(folder)) is False
    assert (src.read_bytes(), dst.read_bytes()) == (b"s", b"d")
    assert LOCAL.rename(str(src), str(tmp_path / "new" / "place")) is True
    assert (tmp_path / "new" / "place").read_bytes() == b"s" and not src.exists()
    assert LOCAL.rename(str(folder), str(tmp_path / "folder2")) is True
    assert (tmp_path / "folder2").is_dir()
    assert LOCAL.rename(str(tmp_path / "gone"), str(tmp_path / "x")) is False


def test_create_exclusive_without_hard_links(monkeypatch, tmp_path: Path) -> None:
    def no_links(*args, **kwargs):
        raise OSError(95, "Operation not supported")  # EOPNOTSUPP

    monkeypatch.setattr(local_module.os, "link", no_links)
    for r in range(20):
        path = str(tmp_path / f"claim-{r}")
        results = race([lambda p=path, i=i: LOCAL.create_exclusive(p, b"%d" % i) for i in range(4)])
        assert results.count(True) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_list_files_ignores_vanishing_and_symlinked_dirs(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"1")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [i.path for i in LOCAL.list_files(str(tmp_path))] == [str(tmp_path / "real" / "f")]


# -- how the tests find the emulator, and the install script's cache check -------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(emu.EXPLICIT_ENV, raising=False)
    monkeypatch.delenv(emu.REQUIRE_ENV, raising=False)
    return emu.cache_dir()


def fake_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_missing_binary_reasons(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert emu.find_binary() is None
    assert emu.missing_reason() == emu.INSTALL_HINT
    cache.mkdir(parents=True)
    (cache / "build.log").write_text(".../@v/v1.56.1.info: 403 Forbidden\n")
    assert emu.missing_reason() == emu.REFUSED_HINT
    monkeypatch.setenv(emu.EXPLICIT_ENV, str(cache / "nope"))
    assert str(cache / "nope") in emu.missing_reason()


def test_cached_binary_is_found(cache: Path) -> None:
    binary = fake_binary(cache / "bin" / "fake-gcs-server")
    assert emu.find_binary() == binary


def test_unavailable_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(emu.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no emulator"):
        emu.unavailable("no emulator")
    monkeypatch.setenv(emu.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="ORDERLAKE_REQUIRE_GCS=1 but no emulator"):
        emu.unavailable("no emulator")


def run_script(home: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": str(home), "XDG_CACHE_HOME": str(home)}
    return subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_install_script_reuses_the_cached_binary(cache: Path, tmp_path: Path) -> None:
    binary = fake_binary(cache / "bin" / "fake-gcs-server")
    result = run_script(tmp_path, os.environ["PATH"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(binary)
    assert "already built" in result.stderr


def test_install_script_without_go_exits_2(cache: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "tr", "dirname", "mkdir", "date", "cat", "sed", "grep", "seq"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    result = run_script(tmp_path, str(tools))
    assert result.returncode == 2, result.stderr
    assert "Go is not installed" in result.stderr
