"""What only the local store does: files on disk and its own signed URLs."""

from __future__ import annotations

import asyncio
import secrets
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from storage import InvalidSignature, LocalStore, ObjectNotFound, StorageUnavailable
from tests.storage.helpers import local_store, new_object_name

MIB = 1024 * 1024
LINK_LIFETIME = timedelta(minutes=5)
SOURCE_BYTES = b"ID3 and some frames"


def signed_parts(url: str) -> tuple[str, dict[str, str]]:
    """The object name and query of a local presigned URL, as the route sees them."""
    parts = urlsplit(url)
    return unquote(parts.path.removeprefix("/files/")), dict(parse_qsl(parts.query))


def files_under(root: Path) -> list[Path]:
    """Every file under `root`, sorted."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small file to store."""
    path = tmp_path / "source.mp3"
    path.write_bytes(SOURCE_BYTES)
    return path


@pytest.mark.asyncio
async def test_signed_url_opens_the_file_with_its_download_name(
    tmp_path: Path, source: Path
) -> None:
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, source, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="голосовая запись (ru).mp3", expires=LINK_LIFETIME
    )

    path, filename = store.open_signed(*signed_parts(url))

    assert filename == "голосовая запись (ru).mp3"
    assert await asyncio.to_thread(path.read_bytes) == SOURCE_BYTES
    assert path == tmp_path / "objects" / "recordings" / object_name


@pytest.mark.asyncio
async def test_presigned_url_is_a_service_path_with_three_parameters(
    tmp_path: Path,
) -> None:
    store = local_store(tmp_path)
    object_name = new_object_name()

    url = await store.presigned_get_url(
        object_name, filename="a b.mp3", expires=timedelta(hours=1)
    )

    assert url.startswith(f"/files/{object_name}?")
    query = dict(parse_qsl(urlsplit(url).query))
    assert set(query) == {"filename", "expires", "signature"}
    assert query["filename"] == "a b.mp3"
    assert abs(int(query["expires"]) - (time.time() + 3600)) < 5
    assert len(query["signature"]) == 64


@pytest.mark.asyncio
@pytest.mark.parametrize("missing", ["filename", "expires", "signature"])
async def test_url_without_a_parameter_is_refused(tmp_path: Path, missing: str) -> None:
    store = local_store(tmp_path)
    object_name, query = signed_parts(
        await store.presigned_get_url(
            new_object_name(), filename="a.mp3", expires=LINK_LIFETIME
        )
    )
    del query[missing]

    with pytest.raises(InvalidSignature):
        store.open_signed(object_name, query)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "expires", ["", "soon", "-5", "1e12", "0" + "9" * 10, "٩٩٩٩٩٩٩٩٩٩", "9" * 40]
)
async def test_url_with_a_malformed_expiry_is_refused(
    tmp_path: Path, expires: str
) -> None:
    store = local_store(tmp_path)
    object_name, query = signed_parts(
        await store.presigned_get_url(
            new_object_name(), filename="a.mp3", expires=LINK_LIFETIME
        )
    )

    with pytest.raises(InvalidSignature):
        store.open_signed(object_name, query | {"expires": expires})


@pytest.mark.asyncio
async def test_url_from_another_key_or_bucket_is_refused(
    tmp_path: Path, source: Path
) -> None:
    key = secrets.token_bytes(32)
    store = LocalStore(root=tmp_path, bucket_name="recordings", secret_key=key)
    other_key = LocalStore(
        root=tmp_path, bucket_name="recordings", secret_key=secrets.token_bytes(32)
    )
    other_bucket = LocalStore(root=tmp_path, bucket_name="archive", secret_key=key)
    object_name = new_object_name()
    for each in (store, other_key, other_bucket):
        await each.ensure_bucket()
        await each.put_file(object_name, source, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=LINK_LIFETIME
    )

    with pytest.raises(InvalidSignature):
        other_key.open_signed(*signed_parts(url))
    with pytest.raises(InvalidSignature):
        other_bucket.open_signed(*signed_parts(url))

    assert store.open_signed(*signed_parts(url))[1] == "a.mp3"


@pytest.mark.asyncio
async def test_expired_url_is_refused_as_expired(tmp_path: Path, source: Path) -> None:
    store = local_store(tmp_path)
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, source, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=timedelta(seconds=1)
    )

    await asyncio.sleep(1.2)

    with pytest.raises(InvalidSignature) as raised:
        store.open_signed(*signed_parts(url))
    assert raised.value.code == "RequestExpired"


@pytest.mark.asyncio
async def test_signed_url_of_a_removed_object_is_not_found(
    tmp_path: Path, source: Path
) -> None:
    store = local_store(tmp_path)
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, source, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=LINK_LIFETIME
    )

    await store.remove(object_name)

    with pytest.raises(ObjectNotFound):
        store.open_signed(*signed_parts(url))


@pytest.mark.asyncio
async def test_put_leaves_only_the_object(tmp_path: Path, source: Path) -> None:
    root = tmp_path / "objects"
    store = local_store(root)
    await store.ensure_bucket()
    object_name = new_object_name()

    await store.put_file(object_name, source, content_type="audio/mpeg")

    assert files_under(root) == [root / "recordings" / object_name]


@pytest.mark.asyncio
async def test_failed_put_leaves_no_temporary_file(
    tmp_path: Path, source: Path
) -> None:
    root = tmp_path / "objects"
    store = local_store(root)
    await store.ensure_bucket()
    object_name = new_object_name()
    # A directory where the object should go makes the final rename fail.
    (root / "recordings" / object_name).mkdir(parents=True)

    with pytest.raises(StorageUnavailable):
        await store.put_file(object_name, source, content_type="audio/mpeg")

    assert files_under(root) == []


@pytest.mark.asyncio
async def test_missing_source_file_is_the_callers_error(tmp_path: Path) -> None:
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()

    with pytest.raises(FileNotFoundError):
        await store.put_file(
            new_object_name(), tmp_path / "absent.mp3", content_type="audio/mpeg"
        )


@pytest.mark.asyncio
async def test_put_copies_in_chunks(tmp_path: Path) -> None:
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()
    big = tmp_path / "big.mp3"
    with big.open("wb") as sink:
        for _ in range(64):
            sink.write(secrets.token_bytes(MIB))

    tracemalloc.start()
    try:
        await store.put_file(new_object_name(), big, content_type="audio/mpeg")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * MIB


@pytest.mark.asyncio
async def test_root_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.write_bytes(b"not a directory")
    store = local_store(root)

    with pytest.raises(StorageUnavailable):
        await store.ensure_bucket()
    with pytest.raises(StorageUnavailable):
        await store.check()


@pytest.mark.parametrize(
    ("bucket_name", "secret_key"),
    [
        ("recordings", b"short"),
        ("", b"k" * 32),
        ("..", b"k" * 32),
        ("a/b", b"k" * 32),
    ],
)
def test_bad_bucket_name_or_short_key_is_refused(
    tmp_path: Path, bucket_name: str, secret_key: bytes
) -> None:
    with pytest.raises(ValueError):
        LocalStore(root=tmp_path, bucket_name=bucket_name, secret_key=secret_key)
