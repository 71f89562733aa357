"""A killed run's Spark scratch space (shuffle blocks, unpacked native libraries) is removed
by the next start; before, every SIGKILL left it in /tmp until the disk filled."""

from __future__ import annotations

import shutil
from pathlib import Path

from orderlake.engine.session import jars_list_file

from .harness import make_volume, run_cli, volume_args


def test_the_next_run_removes_the_scratch_folder_a_killed_run_left(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "orderlake").mkdir(parents=True)
    shutil.copy(jars_list_file(), cache / "orderlake")  # the resolved jars: no Ivy run here
    env = {"XDG_CACHE_HOME": str(cache)}
    scratch = cache / "orderlake" / "spark-scratch"
    volume = make_volume(tmp_path)
    volume.drop_generated(rows=300, files=2)
    args = ["run", *volume_args(volume)]

    kill = {**env, "ORDERLAKE_KILL_AT": "after_bronze_commit"}
    killed = run_cli(args, tmp_path / "logs", env=kill)
    assert killed.killed, killed.stdout + killed.stderr
    left = list(scratch.iterdir())
    assert len(left) == 1, left
    assert list(left[0].glob("blockmgr-*")), f"Spark wrote its blocks elsewhere: {left[0]}"

    healed = run_cli(args, tmp_path / "logs", env=env)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert list(scratch.iterdir()) == []  # the killed run's swept, the clean run's removed
