"""What the service benchmarks share: test audio, a running service, timing."""

from __future__ import annotations

import functools
import io
import os
import platform
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from tests.server import RunningService, running_service

RATE = 44100
CHANNELS = 2
BYTES_PER_SECOND = RATE * CHANNELS * 2
BLOCK_SECONDS = 10


@functools.cache
def _music_block(seconds: int = BLOCK_SECONDS, *, seed: int = 7) -> bytes:
    """Ten seconds of chords with a little noise: nothing an encoder finds trivial."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * RATE) / RATE
    left = sum(
        0.18 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
        for f in (220.0, 277.2, 329.6, 440.0)
    )
    right = sum(0.18 * np.sin(2 * np.pi * f * t + 0.3) for f in (196.0, 246.9, 392.0))
    stereo = np.stack([left, right], axis=1) + rng.normal(0, 0.02, (len(t), 2))
    return (np.clip(stereo, -1, 1) * 32000).astype("<i2").tobytes()


def wav_header(data_bytes: int) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit stereo PCM at 44.1 kHz."""
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, CHANNELS, RATE, BYTES_PER_SECOND, 4, 16)
        + b"data"
        + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
    )


class GeneratedWav(io.RawIOBase):
    """A WAV of any length made on the fly, never held whole in memory."""

    def __init__(self, data_bytes: int) -> None:
        self.data_bytes = data_bytes - data_bytes % 4
        self._header = wav_header(self.data_bytes)
        self._block = _music_block()
        self.size = len(self._header) + self.data_bytes
        self._position = 0

    @classmethod
    def seconds(cls, seconds: float) -> GeneratedWav:
        """A WAV of this many seconds of audio."""
        return cls(int(seconds * BYTES_PER_SECOND))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._position < self.size:
            if self._position < len(self._header):
                piece = self._header[self._position :]
            else:
                offset = (self._position - len(self._header)) % len(self._block)
                piece = self._block[offset:]
            piece = piece[: min(len(view) - written, self.size - self._position)]
            view[written : written + len(piece)] = piece
            written += len(piece)
            self._position += len(piece)
        return written

    def chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        """The whole file in pieces, for a raw streamed body."""
        while piece := self.read(size):
            yield piece

    def write_to(self, path: Path) -> Path:
        """Save the whole file (for the command-line baselines)."""
        with path.open("wb") as out:
            for piece in self.chunks(4 * 1024 * 1024):
                out.write(piece)
        return path


@contextmanager
def service(tmp: Path, **env: str) -> Iterator[RunningService]:
    """The service on the embedded defaults, as a real process."""
    settings = {"AUDIOVAULT_DATA_DIR": str(tmp / "data")}
    settings |= {f"AUDIOVAULT_{key.upper()}": value for key, value in env.items()}
    with running_service(settings, log_path=tmp / "service.log") as running:
        yield running


def new_user(client: httpx.Client) -> tuple[str, dict[str, str]]:
    """A fresh user: its recordings path and Authorization header."""
    name = f"bench-{time.monotonic_ns()}"
    body = client.post("/api/v1/users", json={"username": name}).json()
    return (
        f"/api/v1/users/{body['id']}/recordings",
        {"Authorization": f"Bearer {body['token']}"},
    )


def upload_raw(
    client: httpx.Client, path: str, headers: dict[str, str], wav: GeneratedWav
) -> httpx.Response:
    """Send a generated WAV as a raw streamed body."""
    return client.post(
        path,
        content=wav.chunks(),
        headers={**headers, "Content-Type": "audio/wav"},
    )


def upload_multipart(
    client: httpx.Client, path: str, headers: dict[str, str], wav: GeneratedWav
) -> httpx.Response:
    """Send a generated WAV as multipart/form-data, streamed."""
    return client.post(
        path, files={"file": ("bench.wav", wav, "audio/wav")}, headers=headers
    )


def best_of(runs: int, action: Callable[[], object]) -> float:
    """The shortest wall time of `runs` calls, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def machine() -> str:
    """One line naming the machine the figures come from."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {model}"
