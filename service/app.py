"""The Litestar application and the lifetime of its resources."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from service import health, metrics
from service.audio.pool import ConverterPool, Limits
from service.auth import provide_owner
from service.db import create_engine, session_factory, session_scope
from service.drain import drain_unread_body
from service.files import head_local_file, serve_local_file
from service.logs import configure_logging, request_id_middleware
from service.problems import EXCEPTION_HANDLERS
from service.recordings import routes as recordings
from service.settings import Settings
from service.users.routes import create_user_route
from storage import LocalStore, ObjectStore, S3Store, StorageError

log = structlog.get_logger()


def build_store(settings: Settings) -> ObjectStore:
    """The S3 store when an endpoint is set, else the local directory."""
    if settings.uses_s3:
        return S3Store(
            endpoint=settings.s3_endpoint,
            public_endpoint=settings.s3_public_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket_name=settings.s3_bucket,
            region=settings.s3_region,
        )
    return LocalStore(
        root=settings.data_dir / "objects",
        bucket_name=settings.s3_bucket,
        secret_key=settings.signing_key(),
    )


def fresh_work_dir(root: Path) -> Path:
    """A temporary folder for this process; those of dead processes are removed.

    A service killed mid-conversion leaves its uploads' temporary files behind;
    each process has its own folder so several can share DATA_DIR.
    """
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("run-*"):
        pid = stale.name.removeprefix("run-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
            log.info("service.stale_files_removed", path=str(stale))
    work_dir = root / f"run-{os.getpid()}"
    shutil.rmtree(work_dir, ignore_errors=True)
    return work_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Open the database, the store and the converters; close them at exit."""
    state = app.state
    settings: Settings = state.settings
    state.engine = create_engine(settings.database_url)
    state.sessions = session_factory(state.engine)
    try:
        await state.store.ensure_bucket()
    except StorageError as exc:
        log.error("storage.bucket_unavailable", code=exc.code)
    state.pool = ConverterPool(
        workers=settings.workers,
        queue_size=settings.queue_size,
        limits=Limits(
            max_duration_s=settings.max_duration_s,
            min_sample_rate=settings.min_sample_rate,
            max_channels=settings.max_channels,
        ),
        work_dir=fresh_work_dir(settings.data_dir / "tmp"),
    )
    await state.pool.start()
    log.info(
        "service.started",
        store="s3" if settings.uses_s3 else "local",
        workers=settings.workers,
    )
    try:
        yield
    finally:
        await state.pool.close()
        await state.engine.dispose()
        shutil.rmtree(state.pool.work_dir, ignore_errors=True)


async def provide_session(state: State) -> AsyncIterator[object]:
    """The request's database session."""
    async for session in session_scope(state.sessions):
        yield session


def create_app(settings: Settings | None = None) -> Litestar:
    """The application for these settings (read from the environment if absent)."""
    settings = settings or Settings.from_env()
    configure_logging(level=settings.log_level, json=settings.log_format == "json")
    state = State(
        {
            "settings": settings,
            "signing_key": settings.signing_key(),
            "store": build_store(settings),
        }
    )
    return Litestar(
        route_handlers=[
            create_user_route,
            recordings.upload_recording,
            recordings.list_recordings,
            recordings.get_recording,
            recordings.delete_recording,
            recordings.record_link,
            serve_local_file,
            head_local_file,
            health.live,
            health.ready,
            metrics.metrics,
        ],
        dependencies={
            "db_session": Provide(provide_session),
            "owner": Provide(provide_owner),
        },
        state=state,
        lifespan=[lifespan],
        middleware=[request_id_middleware, drain_unread_body],
        logging_config=None,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="audiovault",
            version="1",
            description="Upload WAV recordings, get MP3 download links.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
    )
