"""S3 adapter (MinIO in production) built on the synchronous minio client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, timedelta
from itertools import islice
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import certifi
import structlog
import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name

from storage.base import (
    DOWNLOAD_CONTENT_TYPE,
    StoredObject,
    check_expires,
    check_object_name,
    check_prefix,
    content_disposition,
)
from storage.errors import ObjectNotFound, StorageError, StorageUnavailable

_T = TypeVar("_T")

logger = structlog.stdlib.get_logger(__name__)

# Memory held by one upload is about part size times parallel parts, whatever
# the size of the file.
_PART_SIZE = 8 * 1024 * 1024
_PARALLEL_PARTS = 2

# A dead store must fail a readiness probe in seconds, not minio's minutes.
_CONNECT_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 60.0
_RETRIES = 2

# What one ListObjectsV2 request returns at most, so a page costs one request.
_LIST_PAGE_SIZE = 1000

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})
_UNAVAILABLE_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "InternalError",
        "InvalidAccessKeyId",
        "InvalidToken",
        "NoSuchBucket",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)


class S3Store:
    """Objects in one bucket of an S3 store; blocking calls run in a thread."""

    def __init__(
        self,
        *,
        endpoint: str,
        public_endpoint: str | None,
        access_key: str,
        secret_key: str,
        bucket_name: str,
        region: str,
    ) -> None:
        check_bucket_name(bucket_name)
        host, secure = _split_endpoint(endpoint)
        public_host, public_secure = _split_endpoint(public_endpoint or endpoint)

        self.bucket_name = bucket_name
        self._region = region
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )
        # A presigned URL names the host its client was built for, and with
        # the region given presigning is pure computation, no network call.
        self._presigner = Minio(
            public_host,
            access_key=access_key,
            secret_key=secret_key,
            secure=public_secure,
            region=region,
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing."""
        if await self._call("bucket_exists", self._bucket_exists):
            return

        try:
            await self._call("make_bucket", self._make_bucket)
        except StorageError as error:
            # Another process may have created it since we looked.
            if error.code != "BucketAlreadyOwnedByYou":
                raise

    async def check(self) -> None:
        """Raise StorageUnavailable unless the store answers and has the bucket."""
        if not await self._call("bucket_exists", self._bucket_exists):
            raise StorageUnavailable(
                f"bucket {self.bucket_name!r} does not exist", code="NoSuchBucket"
            )

    async def put_file(
        self, object_name: str, path: Path, *, content_type: str
    ) -> None:
        """Upload the file at `path` in bounded parts, replacing any object."""
        check_object_name(object_name)
        # Opened here so that a missing source file stays an OSError of the
        # caller's instead of passing for an unreachable store.
        source = await asyncio.to_thread(path.open, "rb")
        try:
            length = os.fstat(source.fileno()).st_size
            await self._call(
                "put_object",
                lambda: self._client.put_object(
                    self.bucket_name,
                    object_name,
                    source,
                    length,
                    content_type=content_type,
                    part_size=_PART_SIZE,
                    num_parallel_uploads=_PARALLEL_PARTS,
                ),
            )
        finally:
            await asyncio.to_thread(source.close)

    async def remove(self, object_name: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        check_object_name(object_name)
        try:
            await self._call(
                "remove_object",
                lambda: self._client.remove_object(self.bucket_name, object_name),
            )
        except ObjectNotFound:
            return

    async def exists(self, object_name: str) -> bool:
        """Tell whether the object is stored."""
        check_object_name(object_name)
        try:
            await self._call(
                "stat_object",
                lambda: self._client.stat_object(self.bucket_name, object_name),
            )
        except ObjectNotFound:
            return False
        return True

    async def list_objects(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Yield the objects whose names start with `prefix`, in the store's order.

        Each page of the listing is fetched in a thread. Raises ValueError
        when no valid object name can start with `prefix`.
        """
        check_prefix(prefix)
        # minio's iterator sends a request each time its page runs out.
        listing = self._client.list_objects(
            self.bucket_name, prefix=prefix, recursive=True
        )

        while True:
            page = await self._call("list_objects", lambda: _next_page(listing))
            for item in page:
                stored = _stored_object(item)
                if stored is not None:
                    yield stored
            if len(page) < _LIST_PAGE_SIZE:
                return

    async def presigned_get_url(
        self, object_name: str, *, filename: str, expires: timedelta
    ) -> str:
        """Return a presigned GET URL on the public endpoint, downloading as `filename`.

        Raises ValueError when `expires` is not between 1 second and 7 days.
        """
        check_object_name(object_name)
        check_expires(expires)
        # Signing only hashes (see __init__), so it stays on the event loop.
        return self._presigner.presigned_get_object(
            self.bucket_name,
            object_name,
            expires=expires,
            response_headers={
                "response-content-type": DOWNLOAD_CONTENT_TYPE,
                "response-content-disposition": content_disposition(filename),
            },
        )

    def _bucket_exists(self) -> bool:
        return self._client.bucket_exists(self.bucket_name)

    def _make_bucket(self) -> None:
        self._client.make_bucket(self.bucket_name, location=self._region)

    async def _call(self, operation: str, function: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(function)
        except S3Error as error:
            raise self._failed(operation, _from_s3_error(error)) from error
        except ServerError as error:
            failure: StorageError = StorageUnavailable(
                f"object store answered HTTP {error.status_code}", code="ServerError"
            )
            raise self._failed(operation, failure) from error
        except InvalidResponseError as error:
            failure = StorageError(
                "object store sent a response that is not S3", code="InvalidResponse"
            )
            raise self._failed(operation, failure) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            failure = StorageUnavailable(
                "cannot reach the object store", code="ConnectionFailed"
            )
            raise self._failed(operation, failure) from error

    def _failed(self, operation: str, failure: StorageError) -> StorageError:
        # A missing object is an answer, not a failure of the store.
        if not isinstance(failure, ObjectNotFound):
            logger.error(
                "storage.request_failed",
                operation=operation,
                bucket_name=self.bucket_name,
                code=failure.code,
            )
        return failure


def _split_endpoint(url: str) -> tuple[str, bool]:
    # minio wants "host:port" and a flag; settings carry a URL.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be an http(s) URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"endpoint must not carry credentials or a query: {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"endpoint must not have a path: {url!r}")
    return parts.netloc, parts.scheme == "https"


def _http_client() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=_RETRIES,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


def _next_page(listing: Iterator[Object]) -> list[Object]:
    return list(islice(listing, _LIST_PAGE_SIZE))


def _stored_object(item: Object) -> StoredObject | None:
    # Folder markers some stores list are not objects.
    if item.is_dir or item.object_name is None:
        return None
    if item.last_modified is None:
        raise StorageError(
            "object store listed an object without its time",
            code="InvalidResponse",
        )
    last_modified = item.last_modified
    if last_modified.tzinfo is None:
        last_modified = last_modified.replace(tzinfo=UTC)
    return StoredObject(
        object_name=item.object_name,
        size_bytes=item.size or 0,
        last_modified=last_modified,
    )


def _from_s3_error(error: S3Error) -> StorageError:
    code = error.code or "UnknownError"
    if code in _NOT_FOUND_CODES:
        return ObjectNotFound("no such object", code=code)
    if code in _UNAVAILABLE_CODES:
        return StorageUnavailable(
            f"object store refused the request ({code})", code=code
        )
    return StorageError(f"object store failed ({code})", code=code)
