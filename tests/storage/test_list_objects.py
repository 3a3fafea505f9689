"""Listing objects by prefix, against SeaweedFS and a local directory."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import ObjectStore, StorageUnavailable, StoredObject
from tests.storage.helpers import Payload, local_store

# Stores stamp objects with their own clock, to the second at worst.
CLOCK_SLACK = timedelta(seconds=2)


async def listed(store: ObjectStore, prefix: str) -> list[StoredObject]:
    """Everything the store lists under `prefix`, sorted by name.

    Stores list in an order of their own (S3 by name, SeaweedFS by folder).
    """
    objects = [stored async for stored in store.list_objects(prefix)]
    return sorted(objects, key=lambda stored: stored.object_name)


async def put_bytes(
    store: ObjectStore, object_name: str, data: bytes, tmp: Path
) -> None:
    """Store `data` under `object_name`."""
    path = tmp / secrets.token_hex(8)
    path.write_bytes(data)
    await store.put_file(object_name, path, content_type="audio/mpeg")


@pytest.mark.asyncio
async def test_lists_names_sizes_and_times_under_the_prefix(
    store: ObjectStore, payload: Payload, tmp_path: Path
) -> None:
    await store.ensure_bucket()
    before = datetime.now(UTC)
    await store.put_file("users/u1/b.mp3", payload.path, content_type="audio/mpeg")
    await put_bytes(store, "users/u1/a.mp3", b"", tmp_path)
    await put_bytes(store, "users/u2/c.mp3", b"abc", tmp_path)
    await put_bytes(store, "exports/u1/a.mp3", b"abc", tmp_path)
    after = datetime.now(UTC)

    objects = await listed(store, "users/")

    assert [(stored.object_name, stored.size_bytes) for stored in objects] == [
        ("users/u1/a.mp3", 0),
        ("users/u1/b.mp3", len(payload.data)),
        ("users/u2/c.mp3", 3),
    ]
    for stored in objects:
        assert stored.last_modified.tzinfo is not None
        assert before - CLOCK_SLACK <= stored.last_modified <= after + CLOCK_SLACK


@pytest.mark.asyncio
async def test_prefix_is_a_string_not_a_folder(
    store: ObjectStore, tmp_path: Path
) -> None:
    await store.ensure_bucket()
    for object_name in ("users/ab1/x.mp3", "users/ab2.mp3", "users/b/x.mp3", "uz.mp3"):
        await put_bytes(store, object_name, b"x", tmp_path)

    assert [stored.object_name for stored in await listed(store, "users/ab")] == [
        "users/ab1/x.mp3",
        "users/ab2.mp3",
    ]
    assert [stored.object_name for stored in await listed(store, "u")] == [
        "users/ab1/x.mp3",
        "users/ab2.mp3",
        "users/b/x.mp3",
        "uz.mp3",
    ]
    assert await listed(store, "users/ab1/x.mp3") == await listed(store, "users/ab1/")
    assert await listed(store, "users/c") == []


@pytest.mark.asyncio
async def test_empty_prefix_of_an_empty_bucket_lists_nothing(
    store: ObjectStore,
) -> None:
    await store.ensure_bucket()

    assert await listed(store, "") == []
    assert await listed(store, "users/") == []


@pytest.mark.asyncio
async def test_removed_objects_are_no_longer_listed(
    store: ObjectStore, tmp_path: Path
) -> None:
    await store.ensure_bucket()
    await put_bytes(store, "users/u/a.mp3", b"a", tmp_path)
    await put_bytes(store, "users/u/b.mp3", b"b", tmp_path)

    await store.remove("users/u/a.mp3")

    assert [stored.object_name for stored in await listed(store, "users/")] == [
        "users/u/b.mp3"
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [4, 5])
async def test_listing_crosses_page_boundaries(
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    # Small pages so a few objects fill several, the last one full or not.
    monkeypatch.setattr("storage.s3._LIST_PAGE_SIZE", 2)
    monkeypatch.setattr("storage.local._LIST_PAGE_SIZE", 2)
    await store.ensure_bucket()
    names = [f"users/u/{index}.mp3" for index in range(count)]
    for object_name in names:
        await put_bytes(store, object_name, b"x", tmp_path)

    objects = await listed(store, "users/")

    assert [stored.object_name for stored in objects] == names


@pytest.mark.asyncio
async def test_listing_a_missing_bucket_is_unavailable(store: ObjectStore) -> None:
    with pytest.raises(StorageUnavailable) as raised:
        await listed(store, "users/")

    assert raised.value.code == "NoSuchBucket"


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["/users/", "../", "users//", "users/../", "a\\b"])
async def test_prefix_no_object_name_can_start_with_is_refused(
    store: ObjectStore, prefix: str
) -> None:
    await store.ensure_bucket()

    with pytest.raises(ValueError, match="prefix"):
        await listed(store, prefix)


@pytest.mark.asyncio
async def test_local_listing_skips_puts_in_progress(tmp_path: Path) -> None:
    store = local_store(tmp_path / "objects")
    await store.ensure_bucket()
    await put_bytes(store, "users/u/a.mp3", b"a", tmp_path)
    folder = tmp_path / "objects" / "recordings" / "users" / "u"
    (folder / ".tmpk2j4h1.partial").write_bytes(b"half an upload")

    objects = await listed(store, "users/")

    assert [stored.object_name for stored in objects] == ["users/u/a.mp3"]
