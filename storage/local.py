"""Local directory adapter: the embedded default, with HMAC-signed download URLs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from storage.base import StoredObject, check_expires, check_object_name, check_prefix
from storage.errors import InvalidSignature, ObjectNotFound, StorageUnavailable

# Where the HTTP layer mounts the route that serves these URLs.
FILES_PATH_PREFIX = "/files/"

_MIN_SECRET_KEY_BYTES = 16
_COPY_CHUNK_BYTES = 1024 * 1024
_MAX_EXPIRES_DIGITS = 12
_LIST_PAGE_SIZE = 1000

# Names of the files a put writes before renaming them into place; listings
# skip them, since they are not objects yet.
_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".partial"

# Keeps these signatures from ever matching an HMAC made with the same key
# for another purpose.
_SIGNATURE_CONTEXT = b"audiovault local download v1\n"


class LocalStore:
    """Objects as files under `root/bucket_name`, downloaded at signed service URLs."""

    def __init__(self, *, root: Path, bucket_name: str, secret_key: bytes) -> None:
        check_object_name(bucket_name)
        if "/" in bucket_name:
            raise ValueError("bucket name must be a single path segment")
        if len(secret_key) < _MIN_SECRET_KEY_BYTES:
            raise ValueError(f"secret key needs at least {_MIN_SECRET_KEY_BYTES} bytes")

        self.bucket_name = bucket_name
        self._bucket_dir = root.absolute() / bucket_name
        self._secret_key = secret_key

    async def ensure_bucket(self) -> None:
        """Create the bucket directory when it is missing."""
        try:
            await asyncio.to_thread(self._bucket_dir.mkdir, parents=True, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(
                f"cannot create the bucket directory: {error.strerror}"
            ) from error

    async def check(self) -> None:
        """Raise StorageUnavailable unless the bucket directory is writable."""
        if not await asyncio.to_thread(self._bucket_is_writable):
            raise StorageUnavailable(
                "bucket directory is missing or not writable", code="NoSuchBucket"
            )

    async def put_file(
        self, object_name: str, path: Path, *, content_type: str
    ) -> None:
        """Copy the file in chunks to a temporary file, then rename it into place.

        `content_type` is accepted for parity with S3; every download is
        served as MP3.
        """
        target = self._path_for(object_name)
        # Opened here so that a missing source file stays an OSError of the
        # caller's instead of passing for an unusable store.
        source = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(_write_atomically, source, target)
        finally:
            await asyncio.to_thread(source.close)

    async def remove(self, object_name: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        target = self._path_for(object_name)
        try:
            await asyncio.to_thread(target.unlink, missing_ok=True)
        except OSError as error:
            raise StorageUnavailable(
                f"cannot delete the object: {error.strerror}"
            ) from error

    async def exists(self, object_name: str) -> bool:
        """Tell whether the object is stored."""
        target = self._path_for(object_name)
        return await asyncio.to_thread(target.is_file)

    async def list_objects(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Yield the files whose object names start with `prefix`, folder by folder.

        Puts still being written are skipped. Raises ValueError when no valid
        object name can start with `prefix`, and StorageUnavailable when the
        bucket directory is missing or cannot be read.
        """
        check_prefix(prefix)
        if not await asyncio.to_thread(self._bucket_dir.is_dir):
            raise StorageUnavailable("bucket directory is missing", code="NoSuchBucket")

        # The walk reads one directory at a time, and a page at a time is
        # handed over from the thread.
        objects = _walk(self._bucket_dir, prefix)
        while page := await asyncio.to_thread(_next_page, objects):
            for stored in page:
                yield stored

    async def presigned_get_url(
        self, object_name: str, *, filename: str, expires: timedelta
    ) -> str:
        """Return a signed path and query, relative to the service root.

        Raises ValueError when `expires` is not between 1 second and 7 days.
        """
        check_object_name(object_name)
        check_expires(expires)

        expires_at = str(int(time.time() + expires.total_seconds()))
        query = urlencode(
            {
                "filename": filename,
                "expires": expires_at,
                "signature": self._signature(object_name, filename, expires_at),
            },
            quote_via=quote,
        )
        return f"{FILES_PATH_PREFIX}{quote(object_name, safe='/')}?{query}"

    def open_signed(
        self, object_name: str, query: Mapping[str, str]
    ) -> tuple[Path, str]:
        """Verify a signed URL's name and query; return the file and download name.

        Raises InvalidSignature (code SignatureDoesNotMatch, or RequestExpired)
        and ObjectNotFound.
        """
        filename = query.get("filename")
        expires_at = query.get("expires")
        signature = query.get("signature")
        if filename is None or expires_at is None or signature is None:
            raise InvalidSignature("the URL is not signed")
        if not _is_canonical_timestamp(expires_at):
            raise InvalidSignature("the URL has a malformed expiry")

        expected = self._signature(object_name, filename, expires_at)
        given = signature.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            raise InvalidSignature("the URL signature does not match")
        if time.time() > int(expires_at):
            raise InvalidSignature("the URL has expired", code="RequestExpired")

        try:
            path = self._path_for(object_name)
        except ValueError as error:
            # Only reachable with a leaked key: names are checked before signing.
            raise InvalidSignature("the URL names an invalid object") from error
        if not path.is_file():
            raise ObjectNotFound("no such object")
        return path, filename

    def _path_for(self, object_name: str) -> Path:
        check_object_name(object_name)
        return self._bucket_dir.joinpath(*object_name.split("/"))

    def _signature(self, object_name: str, filename: str, expires_at: str) -> str:
        # JSON keeps the fields apart whatever characters they hold.
        fields = [self.bucket_name, object_name, filename, expires_at]
        message = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        payload = _SIGNATURE_CONTEXT + message.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret_key, payload, hashlib.sha256).hexdigest()

    def _bucket_is_writable(self) -> bool:
        return self._bucket_dir.is_dir() and os.access(
            self._bucket_dir, os.W_OK | os.X_OK
        )


def _write_atomically(source: BinaryIO, target: Path) -> None:
    # Readers see either no object or the whole one, never a partial file.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX
        )
    except OSError as error:
        raise StorageUnavailable(
            f"cannot write to the bucket directory: {error.strerror}"
        ) from error

    try:
        with os.fdopen(descriptor, "wb") as sink:
            shutil.copyfileobj(source, sink, _COPY_CHUNK_BYTES)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp_name, target)
        _fsync_directory(target.parent)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(error, OSError):
            raise StorageUnavailable(
                f"cannot write the object: {error.strerror}"
            ) from error
        raise


def _next_page(objects: Iterator[StoredObject]) -> list[StoredObject]:
    return list(islice(objects, _LIST_PAGE_SIZE))


def _walk(bucket_dir: Path, prefix: str) -> Iterator[StoredObject]:
    # Start in the deepest folder the prefix names; what lies beside it
    # cannot match.
    folder = prefix.rpartition("/")[0]
    start = bucket_dir.joinpath(*folder.split("/")) if folder else bucket_dir
    yield from _walk_folder(
        start, name_prefix=f"{folder}/" if folder else "", prefix=prefix
    )


def _walk_folder(
    directory: Path, *, name_prefix: str, prefix: str
) -> Iterator[StoredObject]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        raise StorageUnavailable(
            f"cannot list the bucket directory: {error.strerror}"
        ) from error

    for entry in entries:
        object_name = name_prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            if f"{object_name}/".startswith(prefix):
                yield from _walk_folder(
                    Path(entry.path), name_prefix=f"{object_name}/", prefix=prefix
                )
            continue
        if not object_name.startswith(prefix) or _is_temp_file(entry.name):
            continue
        try:
            status = entry.stat()
        except FileNotFoundError:
            # Removed since the folder was read.
            continue
        except OSError as error:
            raise StorageUnavailable(
                f"cannot read an object's size and time: {error.strerror}"
            ) from error
        if not stat.S_ISREG(status.st_mode):
            continue
        yield StoredObject(
            object_name=object_name,
            size_bytes=status.st_size,
            last_modified=datetime.fromtimestamp(status.st_mtime, UTC),
        )


def _is_temp_file(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _is_canonical_timestamp(text: str) -> bool:
    return (
        0 < len(text) <= _MAX_EXPIRES_DIGITS
        and text.isascii()
        and text.isdigit()
        and (text == "0" or not text.startswith("0"))
    )
