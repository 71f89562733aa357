"""Start several calls at the same instant (threads behind a barrier) and collect results."""

from __future__ import annotations

import threading
from collections.abc import Callable


def race(calls: list[Callable[[], object]], timeout: float = 60) -> list:
    """Run the calls in threads released together by a barrier; their results, in order. The
    first exception raised in a thread is re-raised here."""
    results: list = [None] * len(calls)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"a racing call did not finish within {timeout}s")
    if errors:
        raise errors[0]
    return results
