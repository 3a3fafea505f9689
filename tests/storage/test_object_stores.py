"""Behaviour both stores share, run against SeaweedFS and a local directory."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from storage import ObjectStore, StorageUnavailable, content_disposition
from tests.storage.helpers import Backend, Payload, new_object_name

LINK_LIFETIME = timedelta(minutes=5)


def with_query_value(url: str, name: str, value: str) -> str:
    """`url` with one query parameter replaced, everything else kept."""
    parts = urlsplit(url)
    query = [
        (key, value if key == name else old) for key, old in parse_qsl(parts.query)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tree(root: Path) -> list[Path]:
    """Every path under `root`, sorted."""
    return sorted(root.rglob("*"))


def query_value(url: str, name: str) -> str:
    """The value of one query parameter of `url`."""
    return dict(parse_qsl(urlsplit(url).query))[name]


@pytest.mark.asyncio
async def test_ensure_bucket_twice_makes_a_usable_bucket(store: ObjectStore) -> None:
    with pytest.raises(StorageUnavailable):
        await store.check()

    await store.ensure_bucket()
    await store.ensure_bucket()

    await store.check()


@pytest.mark.asyncio
async def test_stored_object_exists(store: ObjectStore, payload: Payload) -> None:
    await store.ensure_bucket()
    object_name = new_object_name()
    assert not await store.exists(object_name)

    await store.put_file(object_name, payload.path, content_type="audio/mpeg")

    assert await store.exists(object_name)
    assert not await store.exists(new_object_name())


@pytest.mark.asyncio
async def test_object_name_prefix_is_not_an_object(
    store: ObjectStore, payload: Payload
) -> None:
    await store.ensure_bucket()
    object_name = new_object_name()

    await store.put_file(object_name, payload.path, content_type="audio/mpeg")

    assert not await store.exists(object_name.rsplit("/", 1)[0])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "filename",
    ["interview.mp3", "голосовая запись (ru).mp3", 'say "hi"; \\ now.mp3'],
)
async def test_presigned_url_downloads_the_bytes_as_an_attachment(
    backend: Backend, payload: Payload, http: httpx.AsyncClient, filename: str
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")

    url = await store.presigned_get_url(
        object_name, filename=filename, expires=LINK_LIFETIME
    )
    response = await http.get(backend.absolute(url))

    assert response.status_code == 200
    assert response.content == payload.data
    assert response.headers["content-type"] == "audio/mpeg"
    disposition = response.headers["content-disposition"]
    assert disposition == content_disposition(filename)
    assert disposition.startswith("attachment; filename=")
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == filename


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=1000-2999", 1000, 2999),
        ("bytes=-700", -700, -1),
        ("bytes=3000000-", 3000000, -1),
        ("bytes=0-0", 0, 0),
    ],
)
async def test_range_request_answers_206_with_the_slice(
    backend: Backend,
    payload: Payload,
    http: httpx.AsyncClient,
    range_header: str,
    first: int,
    last: int,
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    data = payload.data
    start, end = first % len(data), last % len(data)
    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=LINK_LIFETIME
    )

    response = await http.get(backend.absolute(url), headers={"Range": range_header})

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert response.content == data[start : end + 1]


@pytest.mark.asyncio
async def test_range_past_the_end_answers_416(
    backend: Backend, payload: Payload, http: httpx.AsyncClient
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=LINK_LIFETIME
    )
    size = len(payload.data)

    response = await http.get(
        backend.absolute(url), headers={"Range": f"bytes={size}-"}
    )

    assert response.status_code == 416


@pytest.mark.asyncio
@pytest.mark.parametrize("tampering", ["signature", "object name", "filename"])
async def test_tampered_url_is_refused(
    backend: Backend, payload: Payload, http: httpx.AsyncClient, tampering: str
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name, other_name = new_object_name(), new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    await store.put_file(other_name, payload.path, content_type="audio/mpeg")
    url = backend.absolute(
        await store.presigned_get_url(
            object_name, filename="mine.mp3", expires=LINK_LIFETIME
        )
    )
    other_url = backend.absolute(
        await store.presigned_get_url(
            other_name, filename="theirs.mp3", expires=LINK_LIFETIME
        )
    )
    assert (await http.get(url)).status_code == 200

    if tampering == "signature":
        signature = query_value(url, backend.signature_param)
        flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        tampered = with_query_value(url, backend.signature_param, flipped)
    elif tampering == "object name":
        tampered = url.replace(object_name, other_name)
    else:
        theirs = query_value(other_url, backend.filename_param)
        tampered = with_query_value(url, backend.filename_param, theirs)
    response = await http.get(tampered)

    assert tampered != url
    assert response.status_code == 403


@pytest.mark.asyncio
async def test_expired_url_is_refused(
    backend: Backend, payload: Payload, http: httpx.AsyncClient
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    url = backend.absolute(
        await store.presigned_get_url(
            object_name, filename="a.mp3", expires=timedelta(seconds=2)
        )
    )
    assert (await http.get(url)).status_code == 200

    await asyncio.sleep(3.5)
    response = await http.get(url)

    assert response.status_code == 403


@pytest.mark.asyncio
async def test_removed_object_is_gone_and_its_url_answers_404(
    backend: Backend, payload: Payload, http: httpx.AsyncClient
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    url = backend.absolute(
        await store.presigned_get_url(
            object_name, filename="a.mp3", expires=LINK_LIFETIME
        )
    )

    await store.remove(object_name)

    assert not await store.exists(object_name)
    assert (await http.get(url)).status_code == 404


@pytest.mark.asyncio
async def test_removing_twice_or_never_stored_is_fine(
    store: ObjectStore, payload: Payload
) -> None:
    await store.ensure_bucket()
    object_name = new_object_name()
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")

    await store.remove(object_name)
    await store.remove(object_name)
    await store.remove(new_object_name())

    assert not await store.exists(object_name)


@pytest.mark.asyncio
async def test_put_replaces_an_existing_object(
    backend: Backend, payload: Payload, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    store = backend.store
    await store.ensure_bucket()
    object_name = new_object_name()
    replacement = tmp_path / "replacement.mp3"
    replacement.write_bytes(b"second version")
    await store.put_file(object_name, payload.path, content_type="audio/mpeg")

    await store.put_file(object_name, replacement, content_type="audio/mpeg")

    url = await store.presigned_get_url(
        object_name, filename="a.mp3", expires=LINK_LIFETIME
    )
    assert (await http.get(backend.absolute(url))).content == b"second version"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "object_name",
    [
        "",
        "../escape.mp3",
        "users/../../escape.mp3",
        "/etc/escape.mp3",
        "users\\escape.mp3",
        "users//escape.mp3",
        "users/./escape.mp3",
        "users/escape.mp3/",
        "users/line\nbreak.mp3",
    ],
)
async def test_names_that_leave_the_bucket_are_refused(
    store: ObjectStore, payload: Payload, tmp_path: Path, object_name: str
) -> None:
    await store.ensure_bucket()
    before = await asyncio.to_thread(tree, tmp_path)

    with pytest.raises(ValueError, match="object name"):
        await store.put_file(object_name, payload.path, content_type="audio/mpeg")
    with pytest.raises(ValueError, match="object name"):
        await store.exists(object_name)
    with pytest.raises(ValueError, match="object name"):
        await store.remove(object_name)
    with pytest.raises(ValueError, match="object name"):
        await store.presigned_get_url(
            object_name, filename="a.mp3", expires=LINK_LIFETIME
        )

    assert await asyncio.to_thread(tree, tmp_path) == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "expires", [timedelta(0), timedelta(milliseconds=999), timedelta(days=7, seconds=1)]
)
async def test_expiry_outside_one_second_to_seven_days_is_refused(
    store: ObjectStore, expires: timedelta
) -> None:
    with pytest.raises(ValueError, match="expires"):
        await store.presigned_get_url(
            new_object_name(), filename="a.mp3", expires=expires
        )


@pytest.mark.asyncio
async def test_empty_file_is_stored_and_downloads_empty(
    backend: Backend, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    store = backend.store
    await store.ensure_bucket()
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    object_name = new_object_name()

    await store.put_file(object_name, empty, content_type="audio/mpeg")

    assert await store.exists(object_name)
    url = await store.presigned_get_url(
        object_name, filename="empty.mp3", expires=LINK_LIFETIME
    )
    response = await http.get(backend.absolute(url))
    assert response.status_code == 200
    assert response.content == b""
