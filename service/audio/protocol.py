"""Frames between the pool and a worker process: one kind byte, a length, a payload.

Pool to worker: JOB (JSON options), DATA (upload bytes), END, ABORT.
Worker to pool: READY, WAIT (JSON: DATA frames consumed, sent before blocking
on input), PROGRESS (JSON: seconds of audio done), RESULT (JSON facts),
ERROR (JSON code and detail). Every job ends with READY from the worker once
it has seen END or ABORT, so the pipe is in step for the next job.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import struct
from typing import Any

JOB = b"J"
DATA = b"D"
END = b"E"
ABORT = b"A"
READY = b"R"
WAIT = b"W"
PROGRESS = b"P"
RESULT = b"O"
ERROR = b"X"

# Upload bytes travel in frames no larger than this, so no side buffers more.
MAX_DATA = 256 * 1024

_HEADER = struct.Struct(">cI")


def pack(kind: bytes, payload: bytes = b"") -> bytes:
    """Return one frame."""
    return _HEADER.pack(kind, len(payload)) + payload


def pack_json(kind: bytes, value: Any) -> bytes:
    """Return one frame carrying a JSON value."""
    return pack(kind, json.dumps(value).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one frame; raise asyncio.IncompleteReadError when the pipe closes."""
    header = await reader.readexactly(_HEADER.size)
    kind, size = _HEADER.unpack(header)
    return kind, await reader.readexactly(size)


class FrameReader:
    """Blocking frame reads from a file descriptor, for the worker side."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()

    def ready(self) -> bool:
        """Whether a read would find data (a frame or part of one) without waiting."""
        if self._buffer:
            return True
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable)

    def read(self) -> tuple[bytes, bytes] | None:
        """Read one frame; None when the pipe has closed."""
        if not self._fill(_HEADER.size):
            return None
        kind, size = _HEADER.unpack_from(self._buffer)
        if not self._fill(_HEADER.size + size):
            return None
        payload = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
        del self._buffer[: _HEADER.size + size]
        return kind, payload

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            data = os.read(self._fd, max(size - len(self._buffer), 64 * 1024))
            if not data:
                return False
            self._buffer += data
        return True


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a blocking file descriptor."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
