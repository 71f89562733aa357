"""Map databricks-sdk failures to the CLI's exit codes, with a message a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from databricks.sdk import errors as sdk_errors

OK, UPDATE_FAILED, USAGE, AUTH, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4, 5

T = TypeVar("T")


class RemoteError(Exception):
    """A failure with the exit code the `orderlake remote` command should end with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def classify(err: BaseException, what: str) -> RemoteError:
    """Turn an SDK/transport exception into a RemoteError; `what` says what we were doing."""
    if isinstance(err, RemoteError):
        return err
    if isinstance(err, sdk_errors.Unauthenticated):
        return RemoteError(
            f"{what}: not authenticated (401). Set DATABRICKS_HOST and DATABRICKS_TOKEN, or "
            f"DATABRICKS_CONFIG_PROFILE / --profile for a profile in ~/.databrickscfg.",
            AUTH,
        )
    if isinstance(err, sdk_errors.PermissionDenied):
        return RemoteError(f"{what}: permission denied (403): {err}", AUTH)
    if isinstance(err, sdk_errors.NotFound):
        return RemoteError(f"{what}: not found (404): {err}", NOT_FOUND)
    if isinstance(err, sdk_errors.ResourceConflict):
        return RemoteError(f"{what}: already exists or conflicts (409): {err}", USAGE)
    if isinstance(err, sdk_errors.TooManyRequests):
        return RemoteError(f"{what}: still rate limited (429) after retries: {err}", UNAVAILABLE)
    if isinstance(err, sdk_errors.InternalError | sdk_errors.TemporarilyUnavailable):
        return RemoteError(f"{what}: workspace error (5xx) after retries: {err}", UNAVAILABLE)
    if isinstance(err, TimeoutError) and isinstance(err.__cause__, sdk_errors.DatabricksError):
        # The SDK gave up retrying (it retries 429/503 by itself): report the last answer.
        return classify(err.__cause__, f"{what} (gave up: {err})")
    if isinstance(err, sdk_errors.DeadlineExceeded | TimeoutError):
        return RemoteError(f"{what}: timed out: {err}", UNAVAILABLE)
    if type(err) is sdk_errors.DatabricksError:  # status the SDK has no class for: 502, ...
        return RemoteError(f"{what}: workspace error (5xx) after retries: {err}", UNAVAILABLE)
    if isinstance(err, sdk_errors.DatabricksError):
        return RemoteError(f"{what}: {err}", UNAVAILABLE)
    if isinstance(err, OSError):  # connection refused, DNS, TLS
        return RemoteError(f"{what}: workspace unreachable: {err}", UNAVAILABLE)
    if isinstance(err, ValueError) and "auth" in str(err).lower():
        return RemoteError(f"{what}: {err}", AUTH)
    raise err


BACKOFF_SECONDS = 1.0  # first pause between retries; doubles each time

# 429 and 5xx are retried here too: the SDK only retries them when the answer has Retry-After.
RETRYABLE = (
    sdk_errors.TooManyRequests,
    sdk_errors.InternalError,
    sdk_errors.TemporarilyUnavailable,
    sdk_errors.DeadlineExceeded,
)


def with_retries(
    call: Callable[[], T],
    what: str,
    *,
    attempts: int = 4,
    backoff: float | None = None,
    sleep: Callable[[float], None] | None = None,
    retry_on: tuple[type[BaseException], ...] = RETRYABLE,
) -> T:
    """Run `call`, retrying transient failures with exponential backoff; classify the rest."""
    import time

    pause = sleep or time.sleep
    first = BACKOFF_SECONDS if backoff is None else backoff
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:
            transient = isinstance(err, retry_on) or (
                type(err) is sdk_errors.DatabricksError and retry_on is RETRYABLE
            )
            if not transient:
                raise classify(err, what) from err
            if attempt == attempts:
                raise classify(err, what) from err
            pause(first * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
