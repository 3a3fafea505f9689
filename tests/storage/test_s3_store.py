"""What only the S3 store does: credentials, endpoints, presigning, parts."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import socket
import time
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from minio import Minio

from storage import S3Store, StorageUnavailable
from tests.s3server import S3Server
from tests.storage.helpers import new_object_name, s3_store

MIB = 1024 * 1024


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def big_file(path: Path, size: int) -> Path:
    """Write `size` random bytes to `path`."""
    with path.open("wb") as sink:
        for _ in range(size // MIB):
            sink.write(secrets.token_bytes(MIB))
        sink.write(secrets.token_bytes(size % MIB))
    return path


@pytest.mark.asyncio
async def test_wrong_secret_key_is_unavailable(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()
    wrong = s3_store(
        s3_server, bucket_name=store.bucket_name, secret_key=secrets.token_urlsafe(30)
    )

    with pytest.raises(StorageUnavailable):
        await wrong.check()


@pytest.mark.asyncio
async def test_unknown_access_key_is_unavailable(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()
    stranger = s3_store(
        s3_server, bucket_name=store.bucket_name, access_key="AKNOBODY0000000000"
    )

    with pytest.raises(StorageUnavailable):
        await stranger.check()


@pytest.mark.asyncio
async def test_wrong_credentials_cannot_put(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()
    wrong = s3_store(
        s3_server, bucket_name=store.bucket_name, secret_key=secrets.token_urlsafe(30)
    )
    source = tmp_path / "a.mp3"
    source.write_bytes(b"data")
    object_name = new_object_name()

    with pytest.raises(StorageUnavailable):
        await wrong.put_file(object_name, source, content_type="audio/mpeg")

    assert not await store.exists(object_name)


@pytest.mark.asyncio
async def test_unreachable_store_is_unavailable_within_seconds(
    closed_port: int,
) -> None:
    store = S3Store(
        endpoint=f"http://127.0.0.1:{closed_port}",
        public_endpoint=None,
        access_key="AKANY",
        secret_key="any-secret",
        bucket_name="recordings",
        region="us-east-1",
    )
    started = time.monotonic()

    with pytest.raises(StorageUnavailable) as raised:
        await store.check()

    assert raised.value.code == "ConnectionFailed"
    assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_missing_bucket_is_unavailable(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server)
    source = tmp_path / "a.mp3"
    source.write_bytes(b"data")

    with pytest.raises(StorageUnavailable) as from_check:
        await store.check()
    with pytest.raises(StorageUnavailable) as from_put:
        await store.put_file(new_object_name(), source, content_type="audio/mpeg")

    assert from_check.value.code == "NoSuchBucket"
    assert from_put.value.code == "NoSuchBucket"


@pytest.mark.asyncio
async def test_missing_source_file_is_the_callers_error(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()

    with pytest.raises(FileNotFoundError):
        await store.put_file(
            new_object_name(), tmp_path / "absent.mp3", content_type="audio/mpeg"
        )


@pytest.mark.asyncio
async def test_presigning_makes_no_network_call(closed_port: int) -> None:
    store = S3Store(
        endpoint=f"http://127.0.0.1:{closed_port}",
        public_endpoint="https://downloads.invalid:9443",
        access_key="AKANY",
        secret_key="any-secret",
        bucket_name="recordings",
        region="eu-central-1",
    )
    object_name = new_object_name()

    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=timedelta(hours=1)
    )

    assert url.startswith(f"https://downloads.invalid:9443/recordings/{object_name}?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert "/eu-central-1/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert query["response-content-type"] == ["audio/mpeg"]


@pytest.mark.asyncio
async def test_url_is_signed_for_the_public_endpoint(
    s3_server: S3Server, tmp_path: Path
) -> None:
    port = urlsplit(s3_server.endpoint).port
    store = s3_store(s3_server, public_endpoint=f"http://localhost:{port}")
    await store.ensure_bucket()
    source = tmp_path / "a.mp3"
    source.write_bytes(b"public bytes")
    object_name = new_object_name()
    await store.put_file(object_name, source, content_type="audio/mpeg")

    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=timedelta(minutes=5)
    )
    async with httpx.AsyncClient() as http:
        response = await http.get(url)

    assert urlsplit(url).hostname == "localhost"
    assert response.status_code == 200
    assert response.content == b"public bytes"


@pytest.mark.asyncio
async def test_large_file_goes_up_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()
    source = await asyncio.to_thread(big_file, tmp_path / "big.mp3", 20 * MIB + 17)
    object_name = new_object_name()

    await store.put_file(object_name, source, content_type="audio/mpeg")

    url = await store.presigned_get_url(
        object_name, filename="big.mp3", expires=timedelta(minutes=5)
    )
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(url)
    expected = hashlib.sha256(await asyncio.to_thread(source.read_bytes)).hexdigest()
    assert hashlib.sha256(response.content).hexdigest() == expected
    client = Minio(
        urlsplit(s3_server.endpoint).netloc,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        secure=False,
        region=s3_server.region,
    )
    stat = await asyncio.to_thread(client.stat_object, store.bucket_name, object_name)
    # A multipart upload's ETag ends with the number of parts.
    assert stat.etag is not None
    assert stat.etag.endswith("-3")
    assert stat.content_type == "audio/mpeg"


@pytest.mark.asyncio
async def test_put_file_holds_a_few_parts_in_memory_not_the_file(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server)
    await store.ensure_bucket()
    source = await asyncio.to_thread(big_file, tmp_path / "big.mp3", 64 * MIB)

    tracemalloc.start()
    try:
        await store.put_file(new_object_name(), source, content_type="audio/mpeg")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 40 * MIB


@pytest.mark.parametrize(
    "endpoint",
    [
        "127.0.0.1:9000",
        "ftp://127.0.0.1:9000",
        "http://127.0.0.1:9000/bucket",
        "http://user:secret@127.0.0.1:9000",
        "http://127.0.0.1:9000?x=1",
        "http://",
    ],
)
def test_endpoint_must_be_a_plain_http_url(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        S3Store(
            endpoint=endpoint,
            public_endpoint=None,
            access_key="AKANY",
            secret_key="any-secret",
            bucket_name="recordings",
            region="us-east-1",
        )
