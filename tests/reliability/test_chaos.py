"""Random kills: SIGKILL of the whole process group (CLI and JVM), SIGINT and SIGTERM, at
uniformly random moments of a first load, an increment, a `refresh` and a `watch` with files
arriving. After each one a plain restart must succeed with no manual step, and every invariant
of the kill matrix must hold (`harness.check_all`).

The moment is drawn uniformly over the command's life from its first printed line (before it,
the CLI has not written anything, nor installed its signal handlers) to its expected end,
learned from the runs so far. A draw past the end of a command that finished is a miss: it is
not counted, and the invariants are still checked. The seed is printed; replay a failure with
ORDERLAKE_CHAOS_SEED=<seed>. Default run: 6 SIGKILLs and 2 SIGINT/SIGTERMs; --long: 150 and 30
(ORDERLAKE_CHAOS_KILLS / ORDERLAKE_CHAOS_SIGNALS change the counts).
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from orderlake.engine.watch import TriggerTimings, watch

from .conftest import long_run
from .harness import Volume, check_all, finish_cli, make_volume, output_of, start_cli, volume_args

OPS = ("first load", "increment", "refresh", "watch")
WATCH_ARGS = ["--wait-after-last-change", "0.3", "--min-between-triggers", "0", "--poll", "0.1"]
CHAOS_COMPACT_AT = "8"  # tables are compacted every few updates, so kills land in it too
NOISE = re.compile(r"Traceback|py4j|\tat org\.|Exception in thread")
PHASES = [  # (what the child printed last, the phase it was in)
    ("update failed", "failed"),
    ("compacting its", "compaction"),
    (" done in ", "update done"),
    ("rows in,", "flows: writing"),
    ("applying new rows", "flows: applying"),
    ("rows from", "bronze committed, archiving"),
    ("new file(s) in", "ingest: planning, loading"),
    ("full refresh", "refresh: dropping"),
    ("finishing it now", "recovering the last update"),
    ("watching", "watch: idle or triggering"),
    ("pipeline loaded", "update starting"),
    ("recovering update", "recovering the last update"),
    ("starting Spark", "starting Spark, loading the pipeline"),
]


def phase_of(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        for needle, phase in PHASES:
            if needle in line:
                return phase
    return "before the first line"


@dataclass
class Chaos:
    rng: random.Random
    seed: int
    startup: float = 12.0  # seconds from the first line to "pipeline loaded", learned
    update: dict[str, float] = field(default_factory=dict)  # op -> its update's seconds
    outcomes: Counter = field(default_factory=Counter)
    phases: Counter = field(default_factory=Counter)
    misses: int = 0

    def moment(self, op: str) -> tuple[str, float]:
        """(line to count from, seconds after it). One draw in four spans the whole life of
        the command (Spark's start included); the others span its update."""
        update = self.update.get(op, 8.0)
        if self.rng.random() < 0.25:
            return "starting Spark", self.rng.uniform(0.0, self.startup + update)
        return "pipeline loaded", self.rng.uniform(0.0, update)

    def learn(self, op: str, output: str, update_seconds: float | None = None) -> None:
        stamps = dict(_stamps(output))
        if "starting Spark" in stamps and "pipeline loaded" in stamps:
            took = stamps["pipeline loaded"] - stamps["starting Spark"]
            self.startup = max(self.startup * 0.5, took)
        if update_seconds is not None:
            self.update[op] = max(self.update.get(op, 0.0) * 0.8, update_seconds * 1.5, 2.0)


def _stamps(output: str) -> list[tuple[str, float]]:
    """(marker, elapsed seconds) of the CLI's progress lines ("[   12.3s] message")."""
    found = []
    for line in output.splitlines():
        match = re.match(r"\[\s*([0-9.]+)s\] (.*)", line)
        if not match:
            continue
        for marker in ("starting Spark", "pipeline loaded"):
            if match.group(2).startswith(marker):
                found.append((marker, float(match.group(1))))
    return found


_ENDS: dict[Path, object] = {}  # volume -> newest last_updated written so far


def _drop(volume: Volume, rng: random.Random, n: int) -> None:
    """A few generated client files: new keys, updates of earlier ones, late and duplicate
    events, invalid rows. Each set starts where the previous one ended (the model needs it)."""
    kwargs = {"start": _ENDS[volume.root]} if volume.root in _ENDS else {}
    generated = volume.drop_generated(
        rows=rng.randint(40, 160),
        files=rng.randint(1, 3),
        seed=rng.randint(0, 10**9),
        existing_keys=list(volume.expected)[:200],
        update_ratio=0.3,
        out_of_order_ratio=0.2,
        duplicate_ratio=0.03,
        invalid_ratio=0.05,
        name_prefix=f"c{n:04d}",
        **kwargs,
    )
    _ENDS[volume.root] = generated.end


def _signal_for(rng: random.Random, want_kill: bool) -> tuple[int, bool]:
    """(signal, to the whole group?) SIGTERM goes to the group (systemd) or the process alone
    (Kubernetes' PID 1); Ctrl-C always to the foreground group."""
    if want_kill:
        return signal.SIGKILL, True
    if rng.random() < 0.5:
        return signal.SIGINT, True
    return signal.SIGTERM, rng.random() < 0.5


def _one_hit(chaos: Chaos, volume: Volume, op: str, sig: int, group: bool, logs: Path, n: int):
    """Run `op` as a CLI child and signal it at a random moment. True if the signal hit."""
    args = {"first load": ["run"], "increment": ["run"], "refresh": ["refresh"]}.get(op, ["watch"])
    args = [*args, *volume_args(volume)] + (WATCH_ARGS if op == "watch" else [])
    marker, at = chaos.moment(op)
    proc = start_cli(args, logs, {"ORDERLAKE_COMPACT_MIN_FILES": CHAOS_COMPACT_AT})
    seen: dict[str, float] = {}
    dropper = None
    if op == "watch":
        dropper = threading.Thread(target=_arrivals, args=(chaos, volume, n, at), daemon=True)
        dropper.start()

    def due() -> bool:
        if marker not in output_of(proc):
            return False
        seen.setdefault("t", time.monotonic())
        return time.monotonic() - seen["t"] >= at

    run = finish_cli(proc, kill_when=due, kill_signal=sig, to_group=group, timeout=900)
    if dropper is not None:
        dropper.join()
    hit = run.killed or (run.stop_seconds is not None and run.returncode in (130, 143))
    label = (
        f"{signal.Signals(sig).name}{'' if group else ' (process)'} {op} {at:.2f}s after '{marker}'"
    )
    chaos.learn(op, run.stdout)
    if not hit:
        assert run.returncode == 0, f"seed {chaos.seed}: {label}: {run.describe()}"
        chaos.misses += 1
        return False
    phase = phase_of(run.stdout)
    chaos.phases[phase] += 1
    if sig != signal.SIGKILL:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert not NOISE.search(run.stderr), f"seed {chaos.seed}: {label}: {run.stderr[-2000:]}"
        assert len(lines) == 1 and lines[0].startswith("orderlake: "), (chaos.seed, label, lines)
        assert run.returncode == 128 + sig, f"seed {chaos.seed}: {label}: {run.describe()}"
    chaos.outcomes[signal.Signals(sig).name] += 1
    print(f"  hit: {label} ({phase})", flush=True)
    return True


def _arrivals(chaos: Chaos, volume: Volume, n: int, span: float) -> None:
    """Files landing while `watch` runs: one set now, one at a random moment in its life."""
    rng = random.Random(chaos.seed * 1000 + n)
    _drop(volume, rng, n * 10)
    time.sleep(rng.uniform(0.0, max(span, 1.0)))
    _drop(volume, rng, n * 10 + 1)


def _restart(volume: Volume, pipeline_for, op: str) -> None:
    """The plain restart: the same kind of command, in this process (a warm session)."""
    pipeline = pipeline_for(volume)
    if op != "watch":
        pipeline.update()
        return
    watch(
        volume.source,
        lambda: pipeline.update(wait_seconds=600),
        TriggerTimings(0.3, 0.0, poll_seconds=0.1),
        idle_exit_seconds=1.0,
        log=lambda message: None,
        pending=pipeline.pending_work,
    )


def _chaos(pipeline_for, tmp_path: Path, record, kills: int, signals: int) -> None:
    seed = int(os.environ.get("ORDERLAKE_CHAOS_SEED") or time.time_ns() % 10**9)
    print(f"chaos seed {seed} (replay: ORDERLAKE_CHAOS_SEED={seed})", flush=True)
    chaos = Chaos(random.Random(seed), seed)
    plan = ["kill"] * kills + ["signal"] * signals
    chaos.rng.shuffle(plan)
    episode, n = 0, 0
    volume = None
    while plan:
        episode += 1
        volume = make_volume(tmp_path / f"episode{episode:03d}")
        for op in OPS:
            if not plan:
                break
            n += 1
            if op != "watch":
                _drop(volume, chaos.rng, n)
            sig, group = _signal_for(chaos.rng, plan[0] == "kill")
            try:
                if _one_hit(chaos, volume, op, sig, group, tmp_path / "logs", n):
                    plan.pop(0)
                started = time.monotonic()
                _restart(volume, pipeline_for, op)
                chaos.learn(op, "", time.monotonic() - started)
                check_all(pipeline_for(volume).spark, volume)
            except AssertionError as exc:
                raise AssertionError(f"chaos seed {seed}, episode {episode}, {op}: {exc}") from exc
    record(
        "chaos",
        seed=seed,
        kills=kills,
        signals=signals,
        outcomes=dict(chaos.outcomes),
        phases=dict(chaos.phases),
        misses=chaos.misses,
        episodes=episode,
    )
    print(f"chaos seed {seed}: {dict(chaos.outcomes)}; moments hit: {dict(chaos.phases)}")


def test_random_kills_and_signals(pipeline_for, tmp_path, record, request):
    kills, signals = (150, 30) if long_run(request.config) else (6, 2)
    kills = int(os.environ.get("ORDERLAKE_CHAOS_KILLS", kills))
    signals = int(os.environ.get("ORDERLAKE_CHAOS_SIGNALS", signals))
    _chaos(pipeline_for, tmp_path, record, kills=kills, signals=signals)
