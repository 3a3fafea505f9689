"""Request and response bodies of the user routes."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: str


class UserCreated(msgspec.Struct):
    id: uuid.UUID
    username: str
    token: str
    created_at: datetime
