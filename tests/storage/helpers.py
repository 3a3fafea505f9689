"""Helpers of the storage tests: stores, the download app on uvicorn, names."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar
from litestar.datastructures import State

from service.files import head_local_file, serve_local_file
from service.problems import EXCEPTION_HANDLERS
from storage import LocalStore, ObjectStore, S3Store
from tests.s3server import S3Server

PAYLOAD_BYTES = 3 * 1024 * 1024 + 321


@dataclass(frozen=True)
class Backend:
    """One store under test and what differs between the two kinds."""

    name: str
    store: ObjectStore
    base_url: str | None
    signature_param: str
    filename_param: str

    def absolute(self, url: str) -> str:
        """The URL a client would fetch for what presigned_get_url returned."""
        return url if self.base_url is None else self.base_url + url


@dataclass(frozen=True)
class Payload:
    """A file to store and the bytes it holds."""

    path: Path
    data: bytes


def new_object_name() -> str:
    """An object name shaped like the service's."""
    return f"users/{uuid.uuid4()}/{uuid.uuid4()}.mp3"


def s3_store(server: S3Server, **overrides: str) -> S3Store:
    """An S3Store on the test server with a bucket of its own."""
    arguments = {
        "endpoint": server.endpoint,
        "public_endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "bucket_name": f"test-{uuid.uuid4().hex[:16]}",
        "region": server.region,
    } | overrides
    return S3Store(**arguments)


def local_store(root: Path) -> LocalStore:
    """A LocalStore in `root` with a fresh signing key."""
    return LocalStore(
        root=root, bucket_name="recordings", secret_key=secrets.token_bytes(32)
    )


def files_app(store: object) -> Litestar:
    """The download routes with `store` in the app state, as the service has them."""
    handlers: dict[int | type[Exception], Any] = dict(EXCEPTION_HANDLERS.items())
    return Litestar(
        route_handlers=[serve_local_file, head_local_file],
        exception_handlers=handlers,
        state=State({"store": store}),
    )


@contextlib.asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()
