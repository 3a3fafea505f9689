"""Response bodies of the recording routes."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class SourceOut(msgspec.Struct):
    filename: str
    size_bytes: int
    checksum_sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    codec: str


class RecordingOut(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    filename: str
    download_url: str
    presigned_url: str
    expires_at: datetime
    content_type: str
    size_bytes: int
    checksum_sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    bitrate: int
    source: SourceOut
    created_at: datetime


class RecordingPage(msgspec.Struct):
    items: list[RecordingOut]
    next_cursor: str | None
