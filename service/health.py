"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

CHECK_TIMEOUT_S = 3.0


@get("/health/live", summary="The process serves", sync_to_thread=False)
def live() -> dict[str, str]:
    """200 while the process serves."""
    return {"status": "ok"}


@get("/health/ready", summary="Database, bucket and encoder are usable")
async def ready(state: State) -> Response[dict[str, object]]:
    """200 when every dependency is usable, else 503 naming what is not."""
    checks = {
        "database": await _check(_database(state)),
        "bucket": await _check(state.store.check()),
        "encoder": "ok" if state.pool.healthy() else "no converter is running",
    }
    failing = sorted(name for name, result in checks.items() if result != "ok")
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable"}
    body["checks"] = checks
    if failing:
        body["failing"] = failing
    return Response(body, status_code=503 if failing else 200)


async def _database(state: State) -> None:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"failed: {type(exc).__name__}"
    return "ok"
