"""The `audiovault` command: serve and migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn

from service.app import build_store, create_app
from service.db import migrate
from service.logs import configure_logging
from service.settings import Settings, SettingsError


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

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
