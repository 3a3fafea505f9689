"""Repair what a crash left between the object store and the recordings table.

An upload puts its object before it commits its row, so a process that dies
in between leaves an object no row points to. Those are removed once they are
old enough that no upload can still be committing them. Rows whose object is
gone are only reported: that is lost data for a person to look at.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from itertools import islice

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import Recording, utc_now
from storage import ObjectStore, StoredObject

# Every object the service writes lives under this prefix (see object_key).
RECORDINGS_PREFIX = "users/"
DEFAULT_OLDER_THAN = timedelta(hours=1)
# Keys per IN (...) query: far below SQLite's limit of bound parameters.
BATCH_SIZE = 500
# Existence checks in flight at once; each one is a request to the store.
_CONCURRENT_CHECKS = 8

log = structlog.get_logger()


@dataclass(frozen=True)
class ReconcileReport:
    """What one run found and did; in a dry run, removals are only counted."""

    objects_checked: int
    orphans_removed: int
    orphans_too_young: int
    recordings_checked: int
    recordings_missing_object: int
    dry_run: bool


async def reconcile(
    *,
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> ReconcileReport:
    """Remove old objects that no recording names; count recordings missing theirs.

    Raises ValueError when `older_than` is negative or `batch_size` below 1,
    and StorageError when the store fails (the run stops there).
    """
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = utc_now() - older_than

    objects_checked = orphans_removed = orphans_too_young = 0
    async for batch in _batches(store.list_objects(RECORDINGS_PREFIX), batch_size):
        objects_checked += len(batch)
        recorded = await _recorded_keys(sessions, [item.object_name for item in batch])
        for item in batch:
            if item.object_name in recorded:
                continue
            if item.last_modified >= cutoff:
                orphans_too_young += 1
                continue
            await _remove_orphan(store, item, dry_run=dry_run)
            orphans_removed += 1

    recordings_checked = recordings_missing_object = 0
    async for rows in _recording_batches(sessions, batch_size):
        recordings_checked += len(rows)
        missing = await _rows_without_object(store, rows)
        # A recording deleted while we looked loses its object first: only
        # rows still there afterwards are missing theirs.
        still_there = await _existing_ids(sessions, [row.id for row in missing])
        for row in missing:
            if row.id in still_there:
                recordings_missing_object += 1
                log.error(
                    "reconcile.object_missing",
                    recording_id=str(row.id),
                    user_id=str(row.user_id),
                    object_key=row.object_key,
                )

    report = ReconcileReport(
        objects_checked=objects_checked,
        orphans_removed=orphans_removed,
        orphans_too_young=orphans_too_young,
        recordings_checked=recordings_checked,
        recordings_missing_object=recordings_missing_object,
        dry_run=dry_run,
    )
    log.info("reconcile.finished", **asdict(report))
    return report


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    user_id: uuid.UUID
    object_key: str


async def _batches(
    objects: AsyncIterator[StoredObject], size: int
) -> AsyncIterator[list[StoredObject]]:
    batch: list[StoredObject] = []
    async for item in objects:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _recorded_keys(
    sessions: async_sessionmaker[AsyncSession], object_keys: Sequence[str]
) -> set[str]:
    async with sessions() as session:
        found = await session.scalars(
            select(Recording.object_key).where(Recording.object_key.in_(object_keys))
        )
        return set(found)


async def _remove_orphan(
    store: ObjectStore, item: StoredObject, *, dry_run: bool
) -> None:
    fields = {
        "object_key": item.object_name,
        "size_bytes": item.size_bytes,
        "last_modified": item.last_modified.isoformat(),
    }
    if dry_run:
        log.info("reconcile.orphan_found", **fields)
        return
    await store.remove(item.object_name)
    log.info("reconcile.object_removed", **fields)


async def _recording_batches(
    sessions: async_sessionmaker[AsyncSession], size: int
) -> AsyncIterator[list[_Row]]:
    # Keyset pages by id: each page is a short query of its own, so rows
    # added or deleted meanwhile shift nothing.
    after: uuid.UUID | None = None
    while True:
        query = select(Recording.id, Recording.user_id, Recording.object_key)
        if after is not None:
            query = query.where(Recording.id > after)
        async with sessions() as session:
            result = await session.execute(query.order_by(Recording.id).limit(size))
            rows = [
                _Row(id=row.id, user_id=row.user_id, object_key=row.object_key)
                for row in result
            ]
        if not rows:
            return
        yield rows
        after = rows[-1].id


async def _rows_without_object(store: ObjectStore, rows: Sequence[_Row]) -> list[_Row]:
    missing: list[_Row] = []
    pending = iter(rows)
    while chunk := list(islice(pending, _CONCURRENT_CHECKS)):
        found = await asyncio.gather(*(_has_object(store, row) for row in chunk))
        missing.extend(
            row for row, exists in zip(chunk, found, strict=True) if not exists
        )
    return missing


async def _has_object(store: ObjectStore, row: _Row) -> bool:
    try:
        return await store.exists(row.object_key)
    except ValueError:
        # A key no store accepts cannot name an object.
        return False


async def _existing_ids(
    sessions: async_sessionmaker[AsyncSession], ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    if not ids:
        return set()
    async with sessions() as session:
        found = await session.scalars(select(Recording.id).where(Recording.id.in_(ids)))
        return set(found)
