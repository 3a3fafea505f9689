"""Streaming RIFF/RF64/BW64 WAVE reader: walks the chunks up to the audio payload.

Sizes declared in headers are read but never trusted for memory or limits:
recorders that stream leave them at 0 or 0xFFFFFFFF, and a truncated file
declares far more than it holds. The reader never seeks, so an upload can be
decoded while it arrives.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import IO, Protocol

from service.audio.fmt import MAX_FMT_SIZE, WaveFormat, parse_fmt, wave_header
from service.audio.sniff import HEAD_SIZE, refusal
from service.errors import BadRequest, InvalidAudio

BLOCK_SIZE = 64 * 1024
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class Readable(Protocol):
    """A byte source with only `read()`: short reads allowed, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class WaveStream:
    """A canonical WAVE header followed by the upload's audio payload, read()-only."""

    def __init__(
        self,
        wave_format: WaveFormat,
        *,
        payload: Readable,
        payload_size: int | None,
        spool: IO[bytes] | None = None,
    ) -> None:
        self.format = wave_format
        self._head = wave_header(wave_format)
        self._payload = payload
        self._remaining = payload_size
        self._spool = spool

    def read(self, size: int = -1, /) -> bytes:
        """Return up to `size` bytes of the canonical WAVE stream, b"" at its end."""
        if size < 0:
            size = BLOCK_SIZE
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        if self._remaining is not None:
            size = min(size, self._remaining)
        if size == 0:
            return b""
        data = self._payload.read(size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        """Release the spool file, if the payload had to be spooled."""
        if self._spool is not None:
            self._spool.close()


def open_wave(source: Readable, *, spool_dir: Path) -> WaveStream:
    """Read an upload up to its audio payload; raise at once if it cannot convert."""
    upload = _Input(source)
    head = upload.read_exact(HEAD_SIZE)
    error = refusal(head)
    if error is not None:
        raise error

    (riff_size,) = struct.unpack_from("<I", head, 4)
    walker = _Walker(
        upload,
        is_rf64=head[:4] != b"RIFF",
        riff_size=riff_size,
        spool_dir=spool_dir,
    )
    return walker.walk()


class _Input:
    """Exact reads, skips and a push-back over a source that may read short."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._pending = b""

    def read(self, size: int = -1, /) -> bytes:
        if self._pending:
            data = self._pending[:size] if size >= 0 else self._pending
            self._pending = self._pending[len(data) :]
            return data
        return self._source.read(size)

    def read_exact(self, size: int) -> bytes:
        parts: list[bytes] = []
        missing = size
        while missing > 0:
            data = self.read(min(missing, BLOCK_SIZE))
            if not data:
                break
            parts.append(data)
            missing -= len(data)
        return b"".join(parts)

    def skip(self, size: int) -> None:
        while size > 0:
            data = self.read(min(size, BLOCK_SIZE))
            if not data:
                return
            size -= len(data)

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending


class _Walker:
    def __init__(
        self,
        upload: _Input,
        *,
        is_rf64: bool,
        riff_size: int,
        spool_dir: Path,
    ) -> None:
        self._input = upload
        self._is_rf64 = is_rf64
        self._riff_size = riff_size
        self._spool_dir = spool_dir
        self._ds64_data_size: int | None = None

    def walk(self) -> WaveStream:
        wave_format: WaveFormat | None = None
        spool: IO[bytes] | None = None
        try:
            while len(header := self._input.read_exact(8)) == 8:
                chunk_id = header[:4]
                (size,) = struct.unpack_from("<I", header, 4)
                if chunk_id == b"ds64" and self._is_rf64:
                    self._read_ds64(size)
                elif chunk_id == b"fmt " and wave_format is None:
                    wave_format = self._read_fmt(size)
                    if spool is not None:
                        spool.seek(0)
                        return WaveStream(
                            wave_format, payload=spool, payload_size=None, spool=spool
                        )
                elif chunk_id == b"data" and spool is None:
                    payload_size = self._payload_size(size)
                    if wave_format is not None:
                        return WaveStream(
                            wave_format, payload=self._input, payload_size=payload_size
                        )
                    # fmt comes later: keep the audio aside until it does.
                    spool = self._spool(payload_size)
                else:
                    self._input.skip(size + size % 2)
        except BaseException:
            if spool is not None:
                spool.close()
            raise

        if spool is not None:
            spool.close()
        if wave_format is None:
            raise InvalidAudio("the WAVE file has no fmt chunk describing its audio")
        raise InvalidAudio("the WAVE file has no data chunk: there is no audio")

    def _read_ds64(self, size: int) -> None:
        body = self._input.read_exact(min(size, 64))
        if len(body) < 16:
            raise InvalidAudio("the RF64 ds64 chunk is cut short")
        self._input.skip(size + size % 2 - len(body))
        (data_size,) = struct.unpack_from("<Q", body, 8)
        self._ds64_data_size = data_size

    def _read_fmt(self, size: int) -> WaveFormat:
        if size > MAX_FMT_SIZE:
            raise BadRequest(
                f"the fmt chunk declares {size} bytes, "
                f"more than any WAVE encoding needs ({MAX_FMT_SIZE})"
            )
        body = self._input.read_exact(size)
        if len(body) < size:
            raise BadRequest("the upload ends inside its fmt chunk")
        self._input.skip(size % 2)
        return parse_fmt(body)

    def _payload_size(self, size: int) -> int | None:
        """Bytes of audio the data chunk holds, or None for "up to the end"."""
        if self._is_rf64 and size == 0xFFFFFFFF:
            if self._ds64_data_size is None or self._ds64_data_size >= 1 << 63:
                return None
            size = self._ds64_data_size
        elif size == 0xFFFFFFFF:
            return None
        if size > 0:
            return size

        # Declared empty: a streaming recorder that never patched its header,
        # or a really empty chunk with others behind it (Pro Tools BWF).
        following = self._input.read_exact(8)
        if not following:
            raise InvalidAudio("the data chunk is empty: there are no audio samples")
        if self._riff_size not in _UNKNOWN_SIZES and _is_chunk_header(following):
            raise InvalidAudio(
                "the data chunk is declared empty and other chunks follow it: "
                "there are no audio samples"
            )
        self._input.unread(following)
        return None

    def _spool(self, payload_size: int | None) -> IO[bytes]:
        # Unnamed, so the file disappears with the process whatever happens;
        # the caller closes it once the decoder has read it.
        spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115
        try:
            self._copy(spool, payload_size)
        except BaseException:
            spool.close()
            raise
        return spool

    def _copy(self, spool: IO[bytes], payload_size: int | None) -> None:
        remaining = payload_size
        while remaining is None or remaining > 0:
            size = BLOCK_SIZE if remaining is None else min(remaining, BLOCK_SIZE)
            data = self._input.read(size)
            if not data:
                break
            spool.write(data)
            if remaining is not None:
                remaining -= len(data)
        if payload_size is not None:
            self._input.skip(payload_size % 2)


def _is_chunk_header(data: bytes) -> bool:
    chunk_id = data[:4]
    return (
        len(data) == 8
        and all(0x20 <= byte <= 0x7E for byte in chunk_id)
        and chunk_id.strip() != b""
    )
