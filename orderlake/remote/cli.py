"""`orderlake remote ...`: operate the deployed bundle from a terminal.

The CLI owner calls `register(subparsers)`; `main(argv)` runs the group on its own (tests, and
`python -m orderlake.remote.cli`). Exit codes: 0 ok, 1 update failed, 2 usage/config error,
3 auth error, 4 not found, 5 remote unavailable/timeout.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# databricks-sdk takes seconds to import: only `run` needs it, so `orderlake --help` and the
# local commands never load it.
if TYPE_CHECKING:
    from orderlake.remote import ops


def _say(line: str) -> None:
    print(line, flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `remote` command group to the main orderlake parser."""
    remote = subparsers.add_parser(
        "remote",
        help="operate the deployed Databricks bundle",
        description="Operate the deployed bundle through databricks-sdk. Exit codes: 0 ok, "
        "1 update failed, 2 usage/config error, 3 auth error, 4 not found, "
        "5 remote unavailable/timeout.",
    )
    remote.add_argument("-t", "--target", help="bundle target (default: the default target)")
    remote.add_argument("-p", "--profile", help="profile in ~/.databrickscfg (else env auth)")
    remote.add_argument("--volume-path", help="override the volume root, e.g. /Volumes/c/s/v")
    remote.add_argument("--http-timeout", type=float, default=60.0, help="seconds per request")
    remote.add_argument(
        "--retry-timeout", type=int, default=120, help="seconds the SDK keeps retrying"
    )
    remote.add_argument("--bundle-root", type=Path, help=argparse.SUPPRESS)
    sub = remote.add_subparsers(
        dest="remote_command", required=True, metavar="COMMAND", help="the remote operation"
    )

    up = sub.add_parser("upload", help="upload client CSV files to the volume's source/ folder")
    up.add_argument("files", nargs="+", type=Path, help="CSV files to upload")
    up.add_argument("--overwrite", action="store_true", help="replace a file of the same name")

    update = sub.add_parser("update", help="start a pipeline update and follow it to the end")
    update.add_argument("--pipeline-id", help="skip the lookup by name")
    update.add_argument(
        "--full-refresh", action="store_true", help="rebuild the tables from the source files"
    )
    update.add_argument(
        "--poll-seconds", type=float, default=10.0, help="seconds between status checks"
    )
    update.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow")

    metrics = sub.add_parser("metrics", help="expectation metrics and errors of the last update")
    metrics.add_argument("--pipeline-id", help="skip the lookup by name")

    sub.add_parser("ls", help="list source/, archive/ and rejected/")
    remote.set_defaults(func=run)


def _short_name(user_name: str) -> str:
    """Development mode's user prefix, as the Databricks CLI derives it from the e-mail."""
    return re.sub(r"[^0-9A-Za-z]", "_", user_name.split("@", 1)[0]).lower()


def _target(args: argparse.Namespace, w: object) -> ops.Target:
    from orderlake.bundle_config import load_bundle, target_mode
    from orderlake.remote import ops
    from orderlake.remote.errors import with_retries

    config = load_bundle(args.bundle_root, args.target)
    conf = config.pipeline_configuration
    volume_path = args.volume_path or conf["orders.volume_path"]
    if not args.volume_path and target_mode(args.bundle_root, args.target) == "development":
        # Development mode deploys the schema as dev_<user>_<schema>; the volume lives there.
        me = with_retries(lambda: w.current_user.me(), "reading the current user")  # type: ignore[attr-defined]
        schema = conf["orders.schema"]
        volume_path = volume_path.replace(
            f"/{schema}/", f"/dev_{_short_name(me.user_name or '')}_{schema}/", 1
        )
    return ops.Target(
        pipeline_name=config.pipeline_name,
        volume_path=volume_path,
        source_dir=conf["orders.source_dir"],
        archive_dir=conf["orders.archive_dir"],
        rejected_dir=conf["orders.rejected_dir"],
    )


def run(args: argparse.Namespace) -> int:
    """Run one remote command; print a one-line reason and return its exit code on failure."""
    from orderlake.bundle_config import BundleConfigError
    from orderlake.remote import ops
    from orderlake.remote.client import make_client
    from orderlake.remote.errors import OK, USAGE, RemoteError

    try:
        w = make_client(
            args.profile, http_timeout=args.http_timeout, retry_timeout=args.retry_timeout
        )
        target = _target(args, w)
        if args.remote_command == "upload":
            ops.upload(w, target, args.files, _say, overwrite=args.overwrite)
        elif args.remote_command == "update":
            pipeline_id = ops.find_pipeline(w, target.pipeline_name, args.pipeline_id)
            ops.run_update(
                w,
                pipeline_id,
                _say,
                full_refresh=args.full_refresh,
                poll_seconds=args.poll_seconds,
                timeout_seconds=args.timeout,
            )
        elif args.remote_command == "metrics":
            pipeline_id = ops.find_pipeline(w, target.pipeline_name, args.pipeline_id)
            for line in ops.format_report(ops.latest_report(w, pipeline_id)):
                _say(line)
        elif args.remote_command == "ls":
            ops.list_folders(w, target, _say)
    except RemoteError as err:
        print(f"orderlake remote: {err}", file=sys.stderr)
        return err.exit_code
    except BundleConfigError as err:
        print(f"orderlake remote: bundle config: {err}", file=sys.stderr)
        return USAGE
    return OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point for the `remote` group (until the main CLI wires it in)."""
    parser = argparse.ArgumentParser(prog="orderlake")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already
        return int(exc.code or 0)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
