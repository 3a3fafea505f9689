"""Tokens: issued once, stored only as a keyed hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import Forbidden, Unauthorized
from service.models import User

BEARER = "bearer "


def new_token() -> str:
    """A fresh random token for a new user."""
    return secrets.token_urlsafe(32)


def hash_token(token: str, *, key: bytes) -> str:
    """The keyed hash kept in place of the token."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header, or Unauthorized."""
    if not authorization or not authorization[: len(BEARER)].lower() == BEARER:
        raise Unauthorized("send the user's token as 'Authorization: Bearer <token>'")
    token = authorization[len(BEARER) :].strip()
    if not token:
        raise Unauthorized("the bearer token is empty")
    return token


async def authenticate(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    authorization: str | None,
    key: bytes,
) -> User:
    """The user owning the path, if the token is theirs.

    Raises Unauthorized for a missing or unknown token and Forbidden for a
    valid token used on another user's path.
    """
    token_hash = hash_token(bearer_token(authorization), key=key)
    user = await session.scalar(select(User).where(User.token_hash == token_hash))
    if user is None or not hmac.compare_digest(user.token_hash, token_hash):
        raise Unauthorized("the token is not valid")
    if user.id != user_id:
        raise Forbidden("this token belongs to another user")
    return user


async def provide_owner(
    request: Request[Any, Any, Any],
    state: State,
    db_session: AsyncSession,
    user_id: uuid.UUID,
) -> User:
    """The authenticated owner of the `{user_id}` in the path."""
    return await authenticate(
        db_session,
        user_id=user_id,
        authorization=request.headers.get("authorization"),
        key=state.signing_key,
    )
