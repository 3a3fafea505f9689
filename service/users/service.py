"""Creating users."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import hash_token, new_token
from service.errors import UsernameTaken, ValidationFailed
from service.models import User

MAX_USERNAME = 64
ALLOWED_PUNCTUATION = frozenset("._-")


def normalize_username(raw: str) -> str:
    """The username as stored: trimmed and NFC, or ValidationFailed."""
    username = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(username) <= MAX_USERNAME:
        raise ValidationFailed(
            f"username must be 1 to {MAX_USERNAME} characters after trimming"
        )
    if unicodedata.category(username[0]).startswith("M"):
        raise ValidationFailed("username must not start with a combining mark")
    for char in username:
        if not _allowed(char):
            raise ValidationFailed(
                f"username may hold letters, digits, '.', '_' and '-'; "
                f"{char!r} is not allowed"
            )
    return username


def _allowed(char: str) -> bool:
    # Marks (M*) belong to letters in many scripts (Devanagari, Thai, ...).
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd" or char in ALLOWED_PUNCTUATION


async def create_user(
    session: AsyncSession, *, username: str, key: bytes
) -> tuple[User, str]:
    """A new user and its token, shown only this once."""
    username = normalize_username(username)
    username_key = username.casefold()

    taken = await session.scalar(
        select(User.id).where(User.username_key == username_key)
    )
    if taken is not None:
        raise UsernameTaken(f"the username {username!r} is already taken")

    token = new_token()
    user = User(
        username=username,
        username_key=username_key,
        token_hash=hash_token(token, key=key),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise UsernameTaken(f"the username {username!r} is already taken") from None
    return user, token
