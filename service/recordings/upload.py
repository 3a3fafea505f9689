"""The bytes of an upload, raw or multipart, streamed as they arrive."""

from __future__ import annotations

import asyncio
import email.message
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from litestar import Request
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from service.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMedia,
)

RAW_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "application/octet-stream",
)
DEFAULT_NAME = "recording.wav"
MULTIPART_OVERHEAD = 64 * 1024
MAX_NAME = 200


class ClientDisconnected(BadRequest):
    """The client went away before the upload was complete."""


class UploadStalled(RequestTimeout):
    """The client stopped sending in the middle of the upload."""


class UploadBody:
    """The WAV of one upload request, in pieces as they arrive.

    Raw bodies are the WAV itself; multipart bodies carry it in the part named
    `file`. The size limit counts WAV bytes and is enforced while reading.
    """

    def __init__(
        self,
        request: Request[Any, Any, Any],
        *,
        max_bytes: int,
        filename: str | None,
        idle_timeout_s: float = 30.0,
    ) -> None:
        self._request = request
        self._max_bytes = max_bytes
        self._idle_timeout_s = idle_timeout_s
        self._body_bytes = 0
        self._complete = False
        content_type = request.headers.get("content-type", "")
        media_type, options = _media_type(content_type)
        self._boundary: str | None = None
        if media_type == "multipart/form-data":
            self._boundary = options.get("boundary")
            if not self._boundary:
                raise BadRequest("the multipart body has no boundary")
            self.filename = DEFAULT_NAME
        elif media_type in RAW_TYPES:
            self.filename = safe_filename(
                filename
                or _disposition_filename(request.headers.get("content-disposition"))
            )
        else:
            raise UnsupportedMedia(
                "send the WAV as multipart/form-data (part 'file') or as a raw "
                f"body with Content-Type audio/wav; got {media_type or 'none'!r}"
            )
        self._check_announced_length()

    def _check_announced_length(self) -> None:
        announced = self._request.headers.get("content-length", "")
        allowance = MULTIPART_OVERHEAD if self._boundary else 0
        if announced.isdigit() and int(announced) > self._max_bytes + allowance:
            raise PayloadTooLarge(self._too_large())

    def _too_large(self) -> str:
        return f"the upload is larger than the limit of {self._max_bytes} bytes"

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The WAV bytes, in the pieces the client sent them."""
        received = 0
        source = self._raw() if self._boundary is None else self._multipart()
        async for chunk in source:
            received += len(chunk)
            if received > self._max_bytes:
                raise PayloadTooLarge(self._too_large())
            yield chunk

    async def drain(self) -> None:
        """Read and drop what is left, so the client gets the answer cleanly.

        Gives up once the body passes the size limit: the connection then closes.
        """
        limit = self._max_bytes + MULTIPART_OVERHEAD
        try:
            async for _ in self._body():
                if self._body_bytes > limit:
                    return
        except (ClientDisconnected, UploadStalled):
            # The refusal stands; a client that stops now just does not hear it.
            pass

    async def _body(self) -> AsyncIterator[bytes]:
        # Read the ASGI messages directly: the end of the body must be
        # remembered across readers, or a second reader (drain) waits for
        # bytes that will never come.
        while not self._complete:
            try:
                message = await asyncio.wait_for(
                    self._request.receive(), self._idle_timeout_s
                )
            except TimeoutError:
                raise UploadStalled(
                    f"no upload bytes arrived for {self._idle_timeout_s:g} s"
                ) from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnected(
                    "the connection closed before the upload was complete"
                )
            self._complete = not message.get("more_body", False)
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            if chunk:
                self._body_bytes += len(chunk)
                yield chunk

    async def _raw(self) -> AsyncIterator[bytes]:
        async for chunk in self._body():
            yield chunk

    async def _multipart(self) -> AsyncIterator[bytes]:
        assert self._boundary is not None
        in_file = found = False
        try:
            # Latin-1 maps every byte, so no name can make the parser fail;
            # UTF-8 names are recovered from it below.
            parser = PushMultipartParser(
                self._boundary, max_header_count=16, header_charset="latin-1"
            )
            async for chunk in self._body():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        in_file = event.name == "file"
                        if in_file and found:
                            raise BadRequest(
                                "send one WAV per upload: the body has more "
                                "than one part named 'file'"
                            )
                        if in_file:
                            found = True
                            self.filename = safe_filename(_utf8(event.filename or ""))
                    elif event is None:
                        in_file = False
                    elif in_file:
                        yield bytes(event)
            parser.close()
        except MultipartError:
            raise BadRequest(
                "the multipart body is malformed (check its boundary and part headers)"
            ) from None
        if not found:
            raise BadRequest("the multipart body has no part named 'file'")


def safe_filename(name: str | None) -> str:
    """A file name with no directories or control characters, never empty."""
    if not name:
        return DEFAULT_NAME
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    if len(name) > MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: MAX_NAME - len(suffix) - 1] + dot + suffix if dot else name
        name = name[:MAX_NAME]
    return name or DEFAULT_NAME


def mp3_filename(source_name: str) -> str:
    """The source name with its extension replaced by .mp3."""
    stem, dot, _suffix = source_name.rpartition(".")
    return f"{stem if dot and stem else source_name}.mp3"


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    message = email.message.Message()
    message["content-type"] = content_type
    if not content_type:
        return "", {}
    params = {
        key.lower(): str(value) for key, value in (message.get_params() or [])[1:]
    }
    return message.get_content_type(), params


def _disposition_filename(header: str | None) -> str | None:
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = _utf8(header)
    return message.get_filename()


def _utf8(text: str) -> str:
    """Text whose bytes arrived as Latin-1, read as UTF-8 when they are UTF-8.

    HTTP headers reach the application decoded as Latin-1, but clients send
    file names in UTF-8.
    """
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
