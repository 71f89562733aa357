"""Measure what the GCS connector does under races, against fake-gcs-server (docs/gcs-notes.md).

    python scripts/measure-gcs-semantics.py [--rounds 100] [--skip-two-jvms]

Starts the emulator (built by scripts/install-fake-gcs-server.sh) on 127.0.0.1 and a local
Spark session with the connector, then counts, per race, the rounds with each outcome:

- create_exclusive by 4 threads of one JVM, by the connector against a plain HTTP client
  (another process), and by two JVMs (two Python processes, each with its own session);
- two renames of two sources onto one destination, and of one source onto two destinations;
- two writers replacing one object;
and times a 200-object listing and a 40 MB write and read through py4j. Prints JSON.
Takes about 2 minutes (plus ~20 s for the two extra JVMs). Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orderlake.storage import storage_for  # noqa: E402
from orderlake.storage.spark import build_spark  # noqa: E402
from tests.support.gcs_emulator import FakeGcsServer, find_binary, missing_reason  # noqa: E402
from tests.support.racing import race  # noqa: E402

BUCKET = "measure"


def session(endpoint: str):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return build_spark("local[2]", endpoint, "orderlake-measure", driver_host="127.0.0.1")


def jvm_racer(endpoint: str, rounds: int, barrier, name: str, out) -> None:
    """One of two processes with a JVM each: create_exclusive on the same names, in step."""
    os.environ["ORDERLAKE_DRIVER_MEMORY"] = "1g"
    spark = session(endpoint)
    storage = storage_for(f"gs://{BUCKET}/", spark)
    won = []
    try:
        barrier.wait(timeout=300)  # both sessions are up
        for r in range(rounds):
            barrier.wait(timeout=60)
            won.append(storage.create_exclusive(f"gs://{BUCKET}/jvms/{r}", name.encode()))
    finally:
        out.put((name, won))
        spark.stop()


def count(results: list[list[bool]], predicate) -> int:
    return sum(1 for result in results if predicate(result))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--skip-two-jvms", action="store_true")
    args = parser.parse_args()
    binary = find_binary()
    if binary is None:
        print(missing_reason(), file=sys.stderr)
        return 2
    rounds = args.rounds
    server = FakeGcsServer(binary, Path(f"/tmp/measure-fake-gcs-{os.getpid()}.log"))
    server.start()
    server.create_bucket(BUCKET)
    report: dict = {"rounds": rounds}
    spark = session(server.endpoint)
    try:
        s = storage_for(f"gs://{BUCKET}/", spark)
        g = f"gs://{BUCKET}"

        t0 = time.monotonic()
        outcomes = []
        for r in range(rounds):
            path = f"{g}/threads/{r}"
            outcomes.append(race([lambda p=path, i=i: s.create_exclusive(p, b"%d" % i)
                                  for i in range(4)]))  # fmt: skip
        report["create_exclusive_4_threads"] = {
            "rounds_with_exactly_one_winner": count(outcomes, lambda o: o.count(True) == 1),
            "seconds": round(time.monotonic() - t0, 1),
        }

        outcomes = []
        for r in range(rounds):
            outcomes.append(race([
                lambda r=r: s.create_exclusive(f"{g}/vs-http/{r}", b"connector"),
                lambda r=r: server.upload_if_absent(BUCKET, f"vs-http/{r}", b"http"),
            ]))  # fmt: skip
        report["create_exclusive_connector_vs_http"] = {
            "rounds_with_exactly_one_winner": count(outcomes, lambda o: o.count(True) == 1),
            "connector_won": count(outcomes, lambda o: o[0] is True),
        }

        if not args.skip_two_jvms:
            ctx = mp.get_context("spawn")
            barrier, out = ctx.Barrier(2), ctx.Queue()
            procs = [
                ctx.Process(target=jvm_racer, args=(server.endpoint, rounds, barrier, n, out))
                for n in ("a", "b")
            ]
            for proc in procs:
                proc.start()
            won = dict(out.get(timeout=900) for _ in procs)
            for proc in procs:
                proc.join(timeout=120)
            pairs = list(zip(won["a"], won["b"], strict=True))
            report["create_exclusive_two_jvms"] = {
                "rounds": len(pairs),
                "rounds_with_exactly_one_winner": sum(1 for a, b in pairs if a != b),
                "a_won": sum(1 for a, _ in pairs if a),
            }

        outcomes = []
        for r in range(rounds):
            s.write_bytes(f"{g}/rn/{r}/a", b"a")
            s.write_bytes(f"{g}/rn/{r}/b", b"b")
            outcomes.append(race([
                lambda r=r: s.rename(f"{g}/rn/{r}/a", f"{g}/rn/{r}/dst"),
                lambda r=r: s.rename(f"{g}/rn/{r}/b", f"{g}/rn/{r}/dst"),
            ]))  # fmt: skip
        report["rename_two_sources_onto_one_dst"] = {
            "rounds_where_both_returned_true": count(outcomes, lambda o: o == [True, True]),
        }

        both = 0
        for r in range(rounds):
            s.write_bytes(f"{g}/rs/{r}/src", b"s")
            race([
                lambda r=r: s.rename(f"{g}/rs/{r}/src", f"{g}/rs/{r}/d1"),
                lambda r=r: s.rename(f"{g}/rs/{r}/src", f"{g}/rs/{r}/d2"),
            ])  # fmt: skip
            both += s.exists(f"{g}/rs/{r}/d1") and s.exists(f"{g}/rs/{r}/d2")
        report["rename_one_source_onto_two_dsts"] = {"rounds_leaving_two_copies": both}

        def overwrite(path: str, body: bytes) -> bool:
            try:
                s.write_bytes(path, body)
                return True
            except OSError:
                return False

        outcomes = []
        for r in range(rounds):
            path = f"{g}/ow/{r}"
            s.write_bytes(path, b"0")
            outcomes.append(race([lambda p=path: overwrite(p, b"1"),
                                  lambda p=path: overwrite(p, b"2")]))  # fmt: skip
        report["write_bytes_two_overwriters"] = {
            "rounds_where_one_failed": count(outcomes, lambda o: o.count(True) == 1),
            "rounds_where_both_succeeded": count(outcomes, lambda o: o == [True, True]),
        }

        for i in range(200):
            s.write_bytes(f"{g}/many/f{i:04d}", b"x")
        t0 = time.monotonic()
        listed = len(s.list_files(f"{g}/many"))
        report["list_200_objects"] = {"found": listed, "seconds": round(time.monotonic() - t0, 2)}

        data = os.urandom(40 << 20)
        t0 = time.monotonic()
        s.write_bytes(f"{g}/big.bin", data)
        written = time.monotonic() - t0
        t0 = time.monotonic()
        same = s.read_bytes(f"{g}/big.bin") == data
        read = time.monotonic() - t0
        report["40MB_through_py4j"] = {
            "write_s": round(written, 2),
            "read_s": round(read, 2),
            "read_back_equal": same,
        }
    finally:
        spark.stop()
        server.stop()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
