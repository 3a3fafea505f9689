"""The `audiovault` command: serve, migrate, set up and reconcile."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from service.app import build_store, create_app
from service.db import create_engine, migrate, session_factory
from service.logs import configure_logging
from service.reconcile import ReconcileReport, reconcile
from service.settings import Settings, SettingsError
from storage import StorageError


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(
        prog="audiovault", description="WAV to MP3 recordings service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the schema, then serve HTTP")
    serve.add_argument("--host", help="address to bind (AUDIOVAULT_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (AUDIOVAULT_PORT)")
    commands.add_parser("migrate", help="bring the schema up to date and exit")
    commands.add_parser(
        "setup", help="bring the schema up to date and create the bucket, then exit"
    )
    reconciler = commands.add_parser(
        "reconcile",
        help="remove stored objects no recording names; report recordings "
        "whose object is missing",
    )
    reconciler.add_argument(
        "--older-than-minutes",
        type=_minutes,
        metavar="N",
        default=60,
        help="remove only objects at least this old, so uploads being "
        "committed are left alone (default 60)",
    )
    reconciler.add_argument(
        "--dry-run", action="store_true", help="report what would be removed"
    )
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"audiovault: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, json=settings.log_format == "json")

    migrate(settings.database_url)
    if args.command == "migrate":
        return 0
    if args.command == "setup":
        asyncio.run(build_store(settings).ensure_bucket())
        return 0
    if args.command == "reconcile":
        return asyncio.run(
            _reconcile(
                settings,
                older_than=timedelta(minutes=args.older_than_minutes),
                dry_run=args.dry_run,
            )
        )

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


def _minutes(text: str) -> int:
    try:
        minutes = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if minutes < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return minutes


async def _reconcile(
    settings: Settings, *, older_than: timedelta, dry_run: bool
) -> int:
    engine = create_engine(settings.database_url)
    try:
        report = await reconcile(
            sessions=session_factory(engine),
            store=build_store(settings),
            older_than=older_than,
            dry_run=dry_run,
        )
    except StorageError as exc:
        print(
            f"audiovault: object store failed ({exc.code}): {exc.detail}",
            file=sys.stderr,
        )
        return 1
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"audiovault: database failed: {reason}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(_summary(report, older_than=older_than))
    return 0


def _summary(report: ReconcileReport, *, older_than: timedelta) -> str:
    """One line of counts saying what a reconcile run found and did."""
    minutes = int(older_than.total_seconds() // 60)
    run, removed = (
        ("reconcile (dry run)", "orphans_to_remove")
        if report.dry_run
        else ("reconcile", "orphans_removed")
    )
    return (
        f"{run}: objects_checked={report.objects_checked} "
        f"{removed}={report.orphans_removed} "
        f"orphans_too_young={report.orphans_too_young} "
        f"older_than_minutes={minutes} "
        f"recordings_checked={report.recordings_checked} "
        f"recordings_missing_object={report.recordings_missing_object}"
    )


if __name__ == "__main__":
    sys.exit(main())
