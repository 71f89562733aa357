"""Build a WorkspaceClient from the SDK's standard auth only (environment or config profile).

No token or host is read from the repository or printed: the SDK resolves DATABRICKS_HOST /
DATABRICKS_TOKEN / DATABRICKS_CONFIG_PROFILE or ~/.databrickscfg, as `databricks` CLI does.
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from orderlake.remote.errors import AUTH, RemoteError


def make_client(
    profile: str | None = None, *, http_timeout: float = 60.0, retry_timeout: int = 120
) -> WorkspaceClient:
    """Connect with the SDK's default auth chain; fail with exit code 3 when it finds none."""
    try:
        config = Config(
            profile=profile,
            http_timeout_seconds=http_timeout,
            retry_timeout_seconds=retry_timeout,
        )
        return WorkspaceClient(config=config)
    except ValueError as err:
        raise RemoteError(
            f"cannot configure Databricks auth: {err}. Set DATABRICKS_HOST and "
            f"DATABRICKS_TOKEN, or use --profile NAME for ~/.databrickscfg.",
            AUTH,
        ) from err
