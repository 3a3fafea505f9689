"""Recordings: convert an upload, store it, describe it, list and delete."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime

import structlog
from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service import metrics
from service.audio.pool import Conversion, ConverterPool, EncodeOptions
from service.errors import AudiovaultError, BadRequest, NotFound
from service.models import Recording, utc_now
from service.recordings.upload import UploadBody, mp3_filename
from storage import ObjectStore

MP3_TYPE = "audio/mpeg"
log = structlog.get_logger()


def object_key(*, user_id: uuid.UUID, recording_id: uuid.UUID) -> str:
    """Where a recording's MP3 lives in the bucket."""
    return f"users/{user_id}/{recording_id}.mp3"


async def convert_upload(
    body: UploadBody, *, pool: ConverterPool, options: EncodeOptions
) -> Conversion:
    """Stream the upload into a converter and wait for the verified MP3.

    The converter may refuse the audio before the body has been read whole;
    the rest is then drained so the client receives the answer.
    """
    started = time.perf_counter()
    try:
        async with pool.job(options) as job:
            chunks = body.chunks()
            async for chunk in chunks:
                try:
                    await job.feed(chunk)
                except AudiovaultError:
                    await chunks.aclose()
                    await body.drain()
                    raise
            conversion = await job.finish()
    except AudiovaultError as exc:
        metrics.UPLOADS.labels(exc.code).inc()
        log.warning("upload.refused", code=exc.code, detail=exc.detail)
        raise
    metrics.CONVERSION_SECONDS.observe(time.perf_counter() - started)
    return conversion


async def store_recording(
    session: AsyncSession,
    *,
    store: ObjectStore,
    user_id: uuid.UUID,
    source_filename: str,
    conversion: Conversion,
) -> Recording:
    """Put the MP3 in the store, then record it; undo the put if the row fails."""
    recording_id = uuid.uuid4()
    key = object_key(user_id=user_id, recording_id=recording_id)
    mp3, source = conversion.mp3, conversion.source

    await store.put_file(key, conversion.mp3_path, content_type=MP3_TYPE)

    recording = Recording(
        id=recording_id,
        user_id=user_id,
        filename=mp3_filename(source_filename),
        object_key=key,
        content_type=MP3_TYPE,
        size_bytes=mp3.size_bytes,
        checksum_sha256=mp3.checksum_sha256,
        duration_s=mp3.duration_s,
        sample_rate=mp3.sample_rate,
        channels=mp3.channels,
        bitrate=mp3.bitrate,
        source_filename=source_filename,
        source_size_bytes=source.size_bytes,
        source_checksum_sha256=source.checksum_sha256,
        source_duration_s=source.duration_s,
        source_sample_rate=source.sample_rate,
        source_channels=source.channels,
        source_codec=source.codec,
        created_at=utc_now(),
    )
    session.add(recording)
    try:
        await session.commit()
    except BaseException:
        with suppress(Exception):
            await session.rollback()
        with suppress(Exception):
            await store.remove(key)
        raise
    metrics.UPLOADS.labels("stored").inc()
    metrics.AUDIO_SECONDS.inc(mp3.duration_s)
    metrics.STORED_BYTES.inc(mp3.size_bytes)
    log.info(
        "recording.stored",
        recording_id=str(recording_id),
        user_id=str(user_id),
        size_bytes=mp3.size_bytes,
        duration_s=mp3.duration_s,
    )
    return recording


async def get_recording(
    session: AsyncSession, *, user_id: uuid.UUID, recording_id: uuid.UUID
) -> Recording:
    """One of the user's recordings, or NotFound."""
    recording = await session.scalar(
        select(Recording).where(
            Recording.id == recording_id, Recording.user_id == user_id
        )
    )
    if recording is None:
        raise NotFound("no such recording for this user")
    return recording


async def list_recordings(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
) -> tuple[list[Recording], str | None]:
    """A page of the user's recordings, newest first, and the next cursor."""
    query = select(Recording).where(Recording.user_id == user_id)
    if cursor:
        created_at, recording_id = decode_cursor(cursor)
        query = query.where(
            tuple_(Recording.created_at, Recording.id) < (created_at, recording_id)
        )
    query = query.order_by(Recording.created_at.desc(), Recording.id.desc())

    rows = list(await session.scalars(query.limit(limit + 1)))

    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1])


async def delete_recording(
    session: AsyncSession,
    *,
    store: ObjectStore,
    user_id: uuid.UUID,
    recording_id: uuid.UUID,
) -> None:
    """Remove the object, then the row; a failed removal keeps both."""
    recording = await get_recording(session, user_id=user_id, recording_id=recording_id)

    await store.remove(recording.object_key)

    deleted = await session.execute(
        delete(Recording).where(
            Recording.id == recording_id, Recording.user_id == user_id
        )
    )
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("no such recording for this user")
    log.info("recording.deleted", recording_id=str(recording_id), user_id=str(user_id))


def encode_cursor(recording: Recording) -> str:
    """An opaque cursor pointing just after this recording."""
    raw = f"{recording.created_at.isoformat()}|{recording.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor points after, or BadRequest."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, recording_id = raw.split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has a zone")
        return moment.astimezone(UTC), uuid.UUID(recording_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("the cursor is not one this service returned") from None
