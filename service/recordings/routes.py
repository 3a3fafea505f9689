"""HTTP routes for recordings and the stable download link."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import HttpMethod, Request, Response, delete, get, post, route
from litestar.datastructures import State
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import Parameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_307_TEMPORARY_REDIRECT
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audio.pool import EncodeOptions
from service.errors import BadRequest, NotFound, ValidationFailed
from service.models import Recording, User, utc_now
from service.recordings import service
from service.recordings.schemas import RecordingOut, RecordingPage, SourceOut
from service.recordings.upload import RAW_TYPES, UploadBody
from service.settings import Settings

MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
RECORDINGS = "/api/v1/users/{user_id:uuid}/recordings"


@dataclass
class UploadOperation(Operation):
    """Documents the upload body, which the handler reads as a stream."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        multipart = Schema(
            type=OpenAPIType.OBJECT,
            properties={"file": binary},
            required=["file"],
        )
        content = {"multipart/form-data": OpenAPIMediaType(schema=multipart)}
        content |= {media: OpenAPIMediaType(schema=binary) for media in RAW_TYPES}
        self.request_body = RequestBody(
            content=content,
            required=True,
            description="The WAV, as a multipart part named `file` or as the body.",
        )


@post(
    RECORDINGS,
    status_code=201,
    request_max_body_size=None,
    operation_class=UploadOperation,
    summary="Upload a WAV recording",
    description=(
        "Send the WAV as multipart/form-data in a part named `file`, or as the "
        "raw body with Content-Type audio/wav. It is converted to MP3 and stored."
    ),
)
async def upload_recording(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    owner: User,
    user_id: uuid.UUID,
    bitrate: Annotated[int | None, Parameter(description="CBR kbit/s")] = None,
    quality: Annotated[int | None, Parameter(description="VBR 0 best..9")] = None,
    filename: str | None = None,
) -> Response[RecordingOut]:
    """Convert an uploaded WAV to MP3, store it and describe it."""
    settings: Settings = state.settings
    # Hand the connection back to the pool while the upload streams in.
    await db_session.commit()
    # The links in the answer need the Host: refuse a bad one before storing.
    base_url(request, settings)
    options = encode_options(bitrate=bitrate, quality=quality)
    body = UploadBody(
        request,
        max_bytes=settings.max_upload_bytes,
        filename=filename,
        idle_timeout_s=settings.upload_idle_timeout_s,
    )

    conversion = await service.convert_upload(body, pool=state.pool, options=options)

    try:
        recording = await service.store_recording(
            db_session,
            store=state.store,
            user_id=user_id,
            source_filename=body.filename,
            conversion=conversion,
        )
    finally:
        conversion.mp3_path.unlink(missing_ok=True)

    out = await describe(recording, request=request, state=state)
    return Response(
        out,
        status_code=201,
        headers={"Location": f"/api/v1/users/{user_id}/recordings/{recording.id}"},
    )


@get(RECORDINGS, summary="List recordings, newest first")
async def list_recordings(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    owner: User,
    user_id: uuid.UUID,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> RecordingPage:
    """A page of the user's recordings and the cursor of the next page."""
    rows, next_cursor = await service.list_recordings(
        db_session, user_id=user_id, limit=limit, cursor=cursor
    )

    items = [await describe(row, request=request, state=state) for row in rows]
    return RecordingPage(items=items, next_cursor=next_cursor)


@get(RECORDINGS + "/{recording_id:uuid}", summary="Get one recording")
async def get_recording(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    owner: User,
    user_id: uuid.UUID,
    recording_id: uuid.UUID,
) -> RecordingOut:
    """One recording, with a freshly signed download URL."""
    recording = await service.get_recording(
        db_session, user_id=user_id, recording_id=recording_id
    )

    return await describe(recording, request=request, state=state)


@delete(
    RECORDINGS + "/{recording_id:uuid}",
    status_code=204,
    summary="Delete a recording and its MP3",
)
async def delete_recording(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    owner: User,
    user_id: uuid.UUID,
    recording_id: uuid.UUID,
) -> None:
    """Delete the stored MP3 and the recording."""
    await service.delete_recording(
        db_session, store=state.store, user_id=user_id, recording_id=recording_id
    )


@route(
    "/record",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    summary="Stable download link: redirects to a freshly signed URL",
    status_code=HTTP_307_TEMPORARY_REDIRECT,
)
async def record_link(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    recording_id: Annotated[str | None, Parameter(query="id")] = None,
    user: str | None = None,
) -> Redirect:
    """Redirect to the MP3; knowing both ids is the permission."""
    try:
        ids = uuid.UUID(recording_id or ""), uuid.UUID(user or "")
    except ValueError:
        raise NotFound("no such recording") from None

    recording = await db_session.scalar(
        select(Recording).where(Recording.id == ids[0], Recording.user_id == ids[1])
    )
    if recording is None:
        raise NotFound("no such recording")

    url, _expires_at = await signed_url(recording, request=request, state=state)
    return Redirect(
        url,
        status_code=HTTP_307_TEMPORARY_REDIRECT,
        headers={"Cache-Control": "no-store"},
    )


def encode_options(*, bitrate: int | None, quality: int | None) -> EncodeOptions:
    """The encoder settings a client asked for, or ValidationFailed."""
    if bitrate is not None and quality is not None:
        raise ValidationFailed("give either bitrate or quality, not both")
    if quality is not None:
        if not 0 <= quality <= 9:
            raise ValidationFailed("quality must be 0 (best) to 9 (smallest)")
        return EncodeOptions(bitrate_kbps=None, quality=quality)
    if bitrate is None:
        return EncodeOptions()
    if bitrate not in MP3_BITRATES:
        raise ValidationFailed(
            "bitrate must be one of the MP3 rates (kbit/s): "
            + ", ".join(map(str, MP3_BITRATES))
        )
    return EncodeOptions(bitrate_kbps=bitrate, quality=None)


def base_url(request: Request[Any, Any, Any], settings: Settings) -> str:
    """Where clients reach this service, or BadRequest for a malformed Host."""
    if settings.public_base_url:
        return settings.public_base_url
    try:
        return str(request.base_url).rstrip("/")
    except ValueError:
        raise BadRequest("the Host header is malformed") from None


async def signed_url(
    recording: Recording, *, request: Request[Any, Any, Any], state: State
) -> tuple[str, datetime]:
    """A freshly signed URL of the MP3 and when it expires."""
    settings: Settings = state.settings
    expires = timedelta(seconds=settings.url_expires_s)
    expires_at = utc_now() + expires
    url = await state.store.presigned_get_url(
        recording.object_key, filename=recording.filename, expires=expires
    )
    if url.startswith("/"):
        # The local store signs paths of this service: put them under its base.
        url = base_url(request, settings) + url
    return url, expires_at


async def describe(
    recording: Recording, *, request: Request[Any, Any, Any], state: State
) -> RecordingOut:
    """The Recording body of API.md for one row."""
    url, expires_at = await signed_url(recording, request=request, state=state)
    query = urlencode({"id": str(recording.id), "user": str(recording.user_id)})
    return RecordingOut(
        id=recording.id,
        user_id=recording.user_id,
        filename=recording.filename,
        download_url=f"{base_url(request, state.settings)}/record?{query}",
        presigned_url=url,
        expires_at=expires_at,
        content_type=recording.content_type,
        size_bytes=recording.size_bytes,
        checksum_sha256=recording.checksum_sha256,
        duration_s=round(recording.duration_s, 3),
        sample_rate=recording.sample_rate,
        channels=recording.channels,
        bitrate=recording.bitrate,
        source=SourceOut(
            filename=recording.source_filename,
            size_bytes=recording.source_size_bytes,
            checksum_sha256=recording.source_checksum_sha256,
            duration_s=round(recording.source_duration_s, 3),
            sample_rate=recording.source_sample_rate,
            channels=recording.source_channels,
            codec=recording.source_codec,
        ),
        created_at=recording.created_at,
    )
