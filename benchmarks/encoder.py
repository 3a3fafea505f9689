"""Time the service's WAV-to-MP3 conversion against the `lame` command on one file.

Makes a deterministic, music-like stereo 44.1 kHz 16-bit WAV in a temporary
directory, then alternates `lame` and the service's conversion on it, keeping
the best of N runs of each. Prints the ratio and checks both MP3s: Xing/LAME
header present, and decoded length against the source's, in samples.

    uv run python benchmarks/encoder.py                 # 10 minutes, 128 kbit/s
    uv run python benchmarks/encoder.py --quality 4     # VBR, against lame -V 4
    uv run python benchmarks/encoder.py --seconds 5 --runs 1   # smoke run

Exits 1 when a check fails, or when --max-ratio is given and exceeded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer

RATE = 44100
CHANNELS = 2
# The ratio the service must stay under (issue text): 1.25x `lame -b 128`.
TARGET_RATIO = 1.25
MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class Check:
    header: str
    delay: int
    padding: int
    decoded_samples: int
    source_samples: int

    @property
    def ok(self) -> bool:
        return self.header != "missing" and self.decoded_samples == self.source_samples


def main() -> int:
    """Run the comparison and print the figures; return the exit status."""
    args = _arguments()
    _print_machine()

    with tempfile.TemporaryDirectory(prefix="audiovault-bench-") as tmp:
        work = Path(tmp)
        wav = work / "source.wav"
        started = time.perf_counter()
        source_samples = make_wav(wav, seconds=args.seconds)
        print(
            f"source: {args.seconds:g} s stereo {RATE} Hz 16-bit, "
            f"{wav.stat().st_size / 1e6:.1f} MB, made in "
            f"{time.perf_counter() - started:.1f} s"
        )

        service_name, service_run = _service_conversion(args, work)
        lame_args = (
            ["-V", str(args.quality)]
            if args.quality is not None
            else [
                "-b",
                str(args.bitrate),
            ]
        )
        lame_times: list[Timing] = []
        service_times: list[Timing] = []
        for _ in range(args.runs):
            lame_times.append(_time_lame(lame_args, wav, work / "lame.mp3"))
            service_times.append(service_run(wav, work / "service.mp3"))

        lame_best = min(t.wall_s for t in lame_times)
        service_best = min(t.wall_s for t in service_times)
        ratio = service_best / lame_best
        cpu_ratio = min(t.cpu_s for t in service_times) / min(
            t.cpu_s for t in lame_times
        )
        print(f"lame {' '.join(lame_args)}: {_times(lame_times)}")
        print(f"{service_name}: {_times(service_times)}")
        print(
            f"ratio service/lame, best wall time: {ratio:.3f} "
            f"(target <= {TARGET_RATIO}; {args.seconds / service_best:.0f}x real time)"
        )
        # CPU time barely moves when other work shares the cores; wall time does.
        print(f"ratio service/lame, best CPU time: {cpu_ratio:.3f}")

        failed = False
        for name in ("lame", "service"):
            mp3 = work / f"{name}.mp3"
            check = check_mp3(mp3, source_samples=source_samples)
            failed |= not check.ok
            print(
                f"check {name}: header {check.header}, delay {check.delay}, "
                f"padding {check.padding}, decoded {check.decoded_samples} samples "
                f"for {check.source_samples} "
                f"({check.decoded_samples - check.source_samples:+d}), "
                f"{mp3.stat().st_size} bytes -> {'ok' if check.ok else 'FAILED'}"
            )

    if args.max_ratio is not None and ratio > args.max_ratio:
        print(f"ratio {ratio:.3f} is above --max-ratio {args.max_ratio}")
        failed = True
    return 1 if failed else 0


def make_wav(path: Path, *, seconds: float) -> int:
    """Write notes with overtones, decay, stereo offset and noise; return samples."""
    rng = np.random.default_rng(20240611)
    note = RATE // 4
    t = np.arange(note) / RATE
    envelope = np.exp(-3.0 * t)
    total = round(seconds * RATE)
    written = 0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(CHANNELS)
        out.setsampwidth(2)
        out.setframerate(RATE)
        while written < total:
            root = 110 * 2 ** (rng.integers(0, 36) / 12)
            tone = np.zeros(note)
            for k in range(1, 7):
                tone += np.sin(2 * np.pi * root * k * t + rng.uniform(0, 6.3)) / k
            tone *= envelope * rng.uniform(0.3, 1.0)
            block = np.stack([tone, np.roll(tone, 23) * 0.8], axis=1)
            block += rng.normal(0, 0.01, size=block.shape)
            block = block[: total - written]
            pcm = np.clip(block * 0.4 * 32767, -32768, 32767).astype("<i2")
            out.writeframes(pcm.tobytes())
            written += len(pcm)
    return total


def check_mp3(path: Path, *, source_samples: int) -> Check:
    """Read the Xing/LAME header and count the samples PyAV decodes."""
    header, delay, padding = _lame_header(path.read_bytes())
    with av.open(str(path), format="mp3") as container:
        assert isinstance(container, InputContainer)
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    return Check(
        header=header,
        delay=delay,
        padding=padding,
        decoded_samples=decoded,
        source_samples=source_samples,
    )


def _lame_header(data: bytes) -> tuple[str, int, int]:
    start = 0
    if data[:3] == b"ID3":
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        start = 10 + size
    if data[start] != 0xFF or data[start + 1] & 0xE0 != 0xE0:
        return "missing", -1, -1
    mpeg1 = (data[start + 1] >> 3) & 3 == 3
    mono = data[start + 3] >> 6 == 3
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    at = start + 4 + side_info
    kind = data[at : at + 4]
    if kind not in (b"Xing", b"Info"):
        return "missing", -1, -1
    flags = int.from_bytes(data[at + 4 : at + 8], "big")
    lame = at + 8 + 4 * bin(flags & 0b1011).count("1") + (100 if flags & 4 else 0)
    encoder = data[lame : lame + 9].rstrip(b"\0 ").decode("latin-1")
    delay_padding = int.from_bytes(data[lame + 21 : lame + 24], "big")
    return f"{kind.decode()}/{encoder}", delay_padding >> 12, delay_padding & 0xFFF


def _service_conversion(
    args: argparse.Namespace, work: Path
) -> tuple[str, Callable[[Path, Path], Timing]]:
    """The conversion the service runs; Mp3Writer fed by PyAV if it is absent."""
    try:
        from service.audio.convert import convert
        from service.audio.types import EncodeOptions, Limits
    except ImportError:
        return "Mp3Writer fed by PyAV decode", lambda wav, mp3: _time_writer(
            args, wav, mp3
        )

    options = (
        EncodeOptions(quality=args.quality)
        if args.quality is not None
        else EncodeOptions(bitrate_kbps=args.bitrate)
    )
    limits = Limits(max_duration_s=86400.0, min_sample_rate=8000, max_channels=8)

    def run(wav: Path, mp3: Path) -> Timing:
        mp3.unlink(missing_ok=True)
        with wav.open("rb") as source:
            wall, cpu = time.perf_counter(), time.process_time()
            convert(source, mp3_path=mp3, options=options, limits=limits, work_dir=work)
            return Timing(time.perf_counter() - wall, time.process_time() - cpu)

    return "service.audio.convert.convert", run


def _time_writer(args: argparse.Namespace, wav: Path, mp3: Path) -> Timing:
    from service.audio.mp3 import Mp3Writer

    wall, cpu = time.perf_counter(), time.process_time()
    with av.open(str(wav), format="wav") as container:
        assert isinstance(container, InputContainer)
        writer = Mp3Writer(
            mp3,
            sample_rate=RATE,
            channels=CHANNELS,
            bitrate_kbps=None if args.quality is not None else args.bitrate,
            quality=args.quality,
        )
        with writer:
            for frame in container.decode(audio=0):
                writer.write(frame.to_ndarray().tobytes())
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def _time_lame(lame_args: list[str], wav: Path, mp3: Path) -> Timing:
    before, wall = os.times(), time.perf_counter()
    subprocess.run(["lame", "--quiet", *lame_args, str(wav), str(mp3)], check=True)
    after = os.times()
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    return Timing(time.perf_counter() - wall, cpu)


def _times(timings: list[Timing]) -> str:
    walls = ", ".join(f"{t.wall_s:.2f}" for t in timings)
    cpus = ", ".join(f"{t.cpu_s:.2f}" for t in timings)
    best_wall = min(t.wall_s for t in timings)
    best_cpu = min(t.cpu_s for t in timings)
    return f"wall {walls} s (best {best_wall:.2f}); cpu {cpus} s (best {best_cpu:.2f})"


def _print_machine() -> None:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    lame = subprocess.run(["lame", "--version"], capture_output=True, text=True)
    print(f"machine: {os.cpu_count()} CPUs, {model}, {platform.platform()}")
    print(
        f"versions: Python {platform.python_version()}, "
        f"{lame.stdout.splitlines()[0] if lame.stdout else 'lame missing'}, "
        f"PyAV {av.__version__} (FFmpeg {av.library_versions['libavformat']}), "
        f"lameenc {importlib.metadata.version('lameenc')}"
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the conversion against lame.")
    parser.add_argument("--seconds", type=float, default=600.0, help="source length")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--bitrate", type=int, default=128, help="CBR kbit/s")
    parser.add_argument(
        "--quality", type=int, default=None, help="VBR quality 0..9 instead of CBR"
    )
    parser.add_argument(
        "--max-ratio", type=float, default=None, help="fail above this ratio"
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
