"""Downloads from the local store at the signed URLs it hands out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from anyio import AsyncFile
from litestar import MediaType, Request, Response, get, head
from litestar.response import Stream

from service.errors import Forbidden, NotFound
from service.problems import problem
from storage import InvalidSignature, LocalStore, ObjectNotFound, content_disposition
from storage.base import DOWNLOAD_CONTENT_TYPE

_CHUNK_BYTES = 256 * 1024

_ROUTE = "/files/{object_name:path}"


class RangeNotSatisfiable(Exception):
    """The Range header asks only for bytes past the end of the file."""


@get(_ROUTE, include_in_schema=False)
async def serve_local_file(
    request: Request[Any, Any, Any], object_name: str
) -> Response[Any]:
    """Stream a locally stored object, whole or one byte range of it."""
    path, filename = _open_signed(request, object_name)

    try:
        file = await anyio.open_file(path, "rb")
    except FileNotFoundError as error:
        raise NotFound("the file does not exist") from error
    size = os.fstat(file.wrapped.fileno()).st_size

    try:
        requested = _requested_range(request, size=size)
    except RangeNotSatisfiable:
        await file.aclose()
        return _range_not_satisfiable(size)

    headers = _download_headers(filename)
    start, end = requested or (0, size - 1)
    if requested is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return Stream(
        _read_chunks(file, start=start, length=end - start + 1),
        status_code=200 if requested is None else 206,
        headers=headers,
        media_type=DOWNLOAD_CONTENT_TYPE,
    )


@head(_ROUTE, include_in_schema=False)
async def head_local_file(
    request: Request[Any, Any, Any], object_name: str
) -> Response[None]:
    """Answer with the headers a GET of the same signed URL would send."""
    path, filename = _open_signed(request, object_name)

    try:
        size = (await anyio.Path(path).stat()).st_size
    except FileNotFoundError as error:
        raise NotFound("the file does not exist") from error

    headers = _download_headers(filename)
    headers["Content-Type"] = DOWNLOAD_CONTENT_TYPE
    headers["Content-Length"] = str(size)
    # Litestar renders no content as an empty body only for text types; the
    # explicit headers above win over the ones that type would set.
    return Response(None, headers=headers, media_type=MediaType.TEXT)


def parse_byte_range(header: str, *, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte range a Range header asks for, or None for all.

    Anything but one well-formed byte range is ignored (None), as RFC 9110
    allows. Raises RangeNotSatisfiable when the range starts past the end.
    """
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash or not _all_digits(first or "0") or not _all_digits(last or "0"):
        return None

    if not first:
        if not last:
            return None
        suffix_length = int(last)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix_length, 0), size - 1

    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def _requested_range(
    request: Request[Any, Any, Any], *, size: int
) -> tuple[int, int] | None:
    range_header = request.headers.get("range")
    # No validators are sent, so no If-Range can match: RFC 9110 then wants
    # the whole file.
    if range_header is None or "if-range" in request.headers:
        return None
    return parse_byte_range(range_header, size=size)


def _open_signed(request: Request[Any, Any, Any], object_name: str) -> tuple[Path, str]:
    store = getattr(request.app.state, "store", None)
    # With the S3 backend downloads go to the object store, never here.
    if not isinstance(store, LocalStore):
        raise NotFound("no files are served here")

    try:
        return store.open_signed(object_name.lstrip("/"), request.query_params)
    except InvalidSignature as error:
        if error.code == "RequestExpired":
            raise Forbidden("the download link has expired") from error
        raise Forbidden("the download link is not valid") from error
    except ObjectNotFound as error:
        raise NotFound("the file does not exist") from error


def _download_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(filename),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private",
        "X-Content-Type-Options": "nosniff",
    }


async def _read_chunks(
    file: AsyncFile[bytes], *, start: int, length: int
) -> AsyncIterator[bytes]:
    try:
        await file.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await file.read(min(_CHUNK_BYTES, remaining))
            # A file cut short under us ends the body early rather than hang.
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        await file.aclose()


def _range_not_satisfiable(size: int) -> Response[bytes]:
    return problem(
        "range_not_satisfiable",
        f"the file is {size} bytes long",
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


def _all_digits(text: str) -> bool:
    # Bounded so int() stays cheap; no file here comes near 10**18 bytes.
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()
