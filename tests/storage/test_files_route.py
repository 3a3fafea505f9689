"""The route that serves the local store's signed URLs, over real HTTP."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
from litestar.testing import TestClient

from service.files import RangeNotSatisfiable, parse_byte_range
from storage import LocalStore, content_disposition
from tests.storage.helpers import files_app, local_store, new_object_name, serving

CONTENT = secrets.token_bytes(600_000)
LINK_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class Served:
    """A stored object, the signed URL of it and a client for the service."""

    store: LocalStore
    url: str
    http: httpx.AsyncClient


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """An object in a local store, served by the download route on uvicorn."""
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()
    source = tmp_path / "source.mp3"
    source.write_bytes(CONTENT)
    object_name = new_object_name()
    await store.put_file(object_name, source, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="запись.mp3", expires=LINK_LIFETIME
    )
    async with (
        serving(files_app(store)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield Served(store=store, url=url, http=http)


def tampered(url: str) -> str:
    """`url` with a signature that does not match."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"signature": "0" * 64}
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.asyncio
async def test_download_has_the_headers_of_a_private_attachment(
    served: Served,
) -> None:
    response = await served.http.get(served.url)

    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-disposition"] == content_disposition("запись.mp3")
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "private"


@pytest.mark.asyncio
async def test_head_sends_the_headers_without_the_body(served: Served) -> None:
    response = await served.http.head(served.url)

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-disposition"] == content_disposition("запись.mp3")
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_bad_signature_is_403_problem(served: Served, method: str) -> None:
    response = await served.http.request(method, tampered(served.url))

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    if method == "GET":
        assert response.json()["code"] == "forbidden"


@pytest.mark.asyncio
async def test_unsatisfiable_range_is_416_problem_with_the_size(
    served: Served,
) -> None:
    response = await served.http.get(
        served.url, headers={"Range": f"bytes={len(CONTENT) + 10}-"}
    )

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 416


@pytest.mark.asyncio
async def test_if_range_gets_the_whole_file(served: Served) -> None:
    response = await served.http.get(
        served.url, headers={"Range": "bytes=0-99", "If-Range": '"some-etag"'}
    )

    assert response.status_code == 200
    assert response.content == CONTENT


@pytest.mark.asyncio
async def test_several_ranges_get_the_whole_file(served: Served) -> None:
    response = await served.http.get(served.url, headers={"Range": "bytes=0-9,20-29"})

    assert response.status_code == 200
    assert response.content == CONTENT


@pytest.mark.asyncio
async def test_removed_file_is_404(served: Served) -> None:
    object_name = urlsplit(served.url).path.removeprefix("/files/")
    await served.store.remove(object_name)

    response = await served.http.get(served.url)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.asyncio
async def test_empty_file_downloads_empty(tmp_path: Path) -> None:
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    object_name = new_object_name()
    await store.put_file(object_name, empty, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="empty.mp3", expires=LINK_LIFETIME
    )

    async with (
        serving(files_app(store)) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        whole = await http.get(url)
        ranged = await http.get(url, headers={"Range": "bytes=0-"})

    assert whole.status_code == 200
    assert whole.content == b""
    assert ranged.status_code == 416


def test_nothing_is_served_without_a_local_store() -> None:
    with TestClient(app=files_app(None)) as client:
        response = client.get(
            "/files/users/a/b.mp3?filename=b.mp3&expires=1&signature=x"
        )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("BYTES = 5 - 6", (5, 6)),
        ("bytes=999-999", (999, 999)),
        ("bytes=9-1", None),
        ("bytes=0-9,20-29", None),
        ("items=0-9", None),
        ("bytes=", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=1-2-3", None),
        ("bytes=\u0660-\u0669", None),
        ("bytes 0-9", None),
        ("bytes=" + "9" * 30 + "-", None),
    ],
)
def test_parse_byte_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(header, size=1000) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=5000-6000", 1000),
        ("bytes=-0", 1000),
        ("bytes=0-", 0),
    ],
)
def test_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, size=size)
