"""A long-lived conversion process: jobs come as frames on stdin, answers go to stdout.

Run as `python -m service.audio.worker '<limits as JSON>'`. A crash, a hang or
a memory blow-up here costs one upload; the pool replaces the process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import traceback
from pathlib import Path

import av.logging

from service.audio import protocol
from service.audio.convert import convert
from service.audio.types import EncodeOptions, Limits
from service.errors import AudiovaultError

# Address space a worker may take beyond its size once the libraries are loaded.
MEMORY_HEADROOM_BYTES = 1 << 30
WORKER_NICENESS = 10


class Aborted(Exception):
    """The pool abandoned the job (client gone, upload too large)."""


class _Channel:
    """The worker's ends of the pipes to the pool."""

    def __init__(self, *, input_fd: int, output_fd: int) -> None:
        self.frames = protocol.FrameReader(input_fd)
        self._output_fd = output_fd

    def send(self, kind: bytes, value: object = None) -> None:
        frame = (
            protocol.pack(kind) if value is None else protocol.pack_json(kind, value)
        )
        protocol.write_all(self._output_fd, frame)


class _JobInput:
    """The upload as a read()-only stream of DATA frames, ended by END or ABORT."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._buffer = memoryview(b"")
        self._consumed = 0
        self.ended = False
        self.aborted = False

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer and not self.ended:
            self._next()
        if self.aborted:
            raise Aborted
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        self._buffer = self._buffer[size:]
        return data

    def skip_rest(self) -> None:
        """Discard input up to END or ABORT, keeping the pipe in step."""
        self._buffer = memoryview(b"")
        while not self.ended:
            self._next()

    def _next(self) -> None:
        if not self._channel.frames.ready():
            # Lets the pool stop the job's clock while it waits for the client.
            self._channel.send(protocol.WAIT, {"frames": self._consumed})
        frame = self._channel.frames.read()
        if frame is None:
            sys.exit(0)
        kind, payload = frame
        if kind == protocol.DATA:
            self._consumed += 1
            self._buffer = memoryview(payload)
        elif kind in (protocol.END, protocol.ABORT):
            self.ended = True
            self.aborted = kind == protocol.ABORT


def _run_job(channel: _Channel, request: dict[str, object], limits: Limits) -> None:
    job_dir = Path(str(request["job_dir"]))
    options = EncodeOptions(
        bitrate_kbps=_optional_int(request.get("bitrate_kbps")),
        quality=_optional_int(request.get("quality")),
    )
    upload = _JobInput(channel)

    def progress(done_s: float) -> None:
        channel.send(protocol.PROGRESS, {"done_s": done_s})

    try:
        conversion = convert(
            upload,
            mp3_path=job_dir / "out.mp3",
            options=options,
            limits=limits,
            work_dir=job_dir,
            progress=progress,
        )
    except Aborted:
        pass
    except AudiovaultError as error:
        channel.send(protocol.ERROR, {"code": error.code, "detail": error.detail})
    except Exception:  # noqa: BLE001 - one upload's bug must not end the worker
        traceback.print_exc()
        detail = "the conversion failed unexpectedly"
        channel.send(protocol.ERROR, {"code": "invalid_audio", "detail": detail})
    else:
        channel.send(
            protocol.RESULT,
            {
                "mp3": dataclasses.asdict(conversion.mp3),
                "source": dataclasses.asdict(conversion.source),
            },
        )

    upload.skip_rest()


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _cap_memory() -> None:
    # Relative to what the libraries took at import (thread pools and arenas
    # scale with the machine), so a blow-up fails one job, not the host.
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
    except OSError:
        return
    ceiling = pages * os.sysconf("SC_PAGE_SIZE") + MEMORY_HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def main() -> None:
    """Serve jobs until stdin closes."""
    limits = Limits(**json.loads(sys.argv[1]))
    av.logging.set_level(None)
    _cap_memory()
    # Conversions yield the CPU to the event loop, so requests stay quick
    # while every core encodes.
    os.nice(WORKER_NICENESS)

    # Frames go out on a private copy of stdout; anything a library prints
    # lands on stderr instead of corrupting them.
    output_fd = os.dup(1)
    os.dup2(2, 1)
    channel = _Channel(input_fd=0, output_fd=output_fd)

    channel.send(protocol.READY)
    while (frame := channel.frames.read()) is not None:
        kind, payload = frame
        if kind == protocol.JOB:
            _run_job(channel, json.loads(payload), limits)
            channel.send(protocol.READY)


if __name__ == "__main__":
    main()
