"""Stores under test: each behaviour runs against SeaweedFS and a local directory."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from storage import ObjectStore
from tests.s3server import S3Server
from tests.storage.helpers import (
    PAYLOAD_BYTES,
    Backend,
    Payload,
    files_app,
    local_store,
    s3_store,
    serving,
)


@pytest_asyncio.fixture(params=["s3", "local"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """A store of each kind, with an HTTP server for the local one's URLs."""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        yield Backend(
            name="s3",
            store=s3_store(server),
            base_url=None,
            signature_param="X-Amz-Signature",
            filename_param="response-content-disposition",
        )
        return

    store = local_store(tmp_path / "objects")
    async with serving(files_app(store)) as base_url:
        yield Backend(
            name="local",
            store=store,
            base_url=base_url,
            signature_param="signature",
            filename_param="filename",
        )


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    """The store of the current backend."""
    return backend.store


@pytest.fixture
def payload(tmp_path: Path) -> Payload:
    """A file of a few MB of random bytes."""
    data = secrets.token_bytes(PAYLOAD_BYTES)
    path = tmp_path / "payload.mp3"
    path.write_bytes(data)
    return Payload(path=path, data=data)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, as a browser or player would be."""
    async with httpx.AsyncClient(timeout=30) as client:
        yield client
