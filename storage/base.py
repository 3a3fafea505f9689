"""The interface every object store adapter offers, and the rules they share."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

# Every download is an MP3; both adapters serve it under this type.
DOWNLOAD_CONTENT_TYPE = "audio/mpeg"

# Bounds S3 puts on presigned URLs; the local store keeps the same ones so the
# two backends accept exactly the same calls.
MIN_EXPIRES = timedelta(seconds=1)
MAX_EXPIRES = timedelta(days=7)

_MAX_OBJECT_NAME_BYTES = 1024

# RFC 5987 attr-char beyond what quote() always keeps (letters, digits, "_.-~").
_ATTR_CHAR_EXTRA = "!#$&+^`|"


class ObjectStore(Protocol):
    """A bucket of named objects that can hand out expiring download URLs."""

    bucket_name: str

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable unless the bucket can be used."""
        ...

    async def put_file(
        self, object_name: str, path: Path, *, content_type: str
    ) -> None:
        """Store the file at `path` under `object_name`, replacing any object."""
        ...

    async def remove(self, object_name: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    async def exists(self, object_name: str) -> bool:
        """Tell whether the object is stored."""
        ...

    async def presigned_get_url(
        self, object_name: str, *, filename: str, expires: timedelta
    ) -> str:
        """Return a URL that downloads the object as `filename` until it expires."""
        ...


def check_object_name(object_name: str) -> None:
    """Raise ValueError unless the name is a relative path that stays in the bucket.

    Both adapters refuse the same names, so a name that works with one works
    with the other.
    """
    if not object_name:
        raise ValueError("object name is empty")
    if len(object_name.encode("utf-8", "surrogatepass")) > _MAX_OBJECT_NAME_BYTES:
        raise ValueError("object name is longer than 1024 bytes")
    if object_name.startswith("/") or "\\" in object_name:
        raise ValueError("object name must be a relative path with '/' separators")
    if any(not character.isprintable() for character in object_name):
        raise ValueError("object name contains control characters")
    if any(part in ("", ".", "..") for part in object_name.split("/")):
        raise ValueError("object name has an empty, '.' or '..' segment")


def check_expires(expires: timedelta) -> None:
    """Raise ValueError unless the expiry is between 1 second and 7 days."""
    if not MIN_EXPIRES <= expires <= MAX_EXPIRES:
        raise ValueError("expires must be between 1 second and 7 days")


def content_disposition(filename: str) -> str:
    """Return an `attachment` header value naming `filename` for any client."""
    fallback = _ascii_fallback(filename)
    encoded = quote(filename, safe=_ATTR_CHAR_EXTRA, errors="replace")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _ascii_fallback(filename: str) -> str:
    # Old clients read only `filename`: keep the ASCII part of the name, with
    # accents stripped, and never let a quote or a backslash end the string.
    characters = []
    for character in unicodedata.normalize("NFKD", filename):
        if character.isspace():
            characters.append(" ")
        elif character.isascii() and character.isprintable() and character not in '"\\':
            characters.append(character)
    kept = " ".join("".join(characters).split())

    stem, dot, suffix = kept.rpartition(".")
    if not dot:
        stem, suffix = kept, ""
    stem = stem.strip(" .")
    if not any(character.isalnum() for character in stem):
        stem = "download"
    return f"{stem}.{suffix}" if suffix else stem
