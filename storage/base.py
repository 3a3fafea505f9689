"""The interface every object store adapter offers, and the rules they share."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
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


@dataclass(frozen=True)
class StoredObject:
    """One object found by a listing; `last_modified` is timezone-aware."""

    object_name: str
    size_bytes: int
    last_modified: datetime


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

    def list_objects(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Yield every object whose name starts with `prefix`.

        Objects are fetched a page at a time, never the whole bucket at once.
        The order is the store's own: S3 promises byte order of the names,
        but stores built on folders (SeaweedFS) list folder by folder.
        Raises ValueError when no valid object name can start with `prefix`.
        """
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


def check_prefix(prefix: str) -> None:
    """Raise ValueError unless some valid object name can start with `prefix`.

    The empty prefix lists the whole bucket.
    """
    if not prefix:
        return
    # A prefix is a string, not a folder: "users/ab" is as good as "users/".
    try:
        check_object_name(prefix + "x")
    except ValueError as error:
        raise ValueError(
            f"no object name can start with this prefix: {error}"
        ) from None


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
