"""One error hierarchy for orderlake, each class carrying the exit code the CLI returns.

The CLI maps errors to exit codes in one place (`orderlake.cli`) by this hierarchy, so a new
error only has to pick its base: a problem the user fixes in the definitions, rules, bundle or
settings is a `ConfigurationError` (2); an update that ran and failed is `UpdateFailed` (1).
The older classes (`RuleError`, `AutoLoaderError`, ...) keep their names and built-in bases
(`ValueError`, ...) for callers that catch those.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_STRICT, EXIT_BUSY = 0, 1, 2, 3, 75


class OrderlakeError(Exception):
    """Base of every error orderlake raises on purpose; `exit_code` is the CLI's."""

    exit_code: int = EXIT_FAILED


class ConfigurationError(OrderlakeError):
    """Bad definitions, options, rules, bundle or settings: fix them, then run again."""

    exit_code = EXIT_CONFIG


class UpdateFailed(OrderlakeError):
    """An update ran and failed (a `fail` expectation, a flow error); retrying may help."""

    exit_code = EXIT_FAILED


class BusyError(OrderlakeError):
    """Another process holds the warehouse lock: try again later (EX_TEMPFAIL)."""

    exit_code = EXIT_BUSY
