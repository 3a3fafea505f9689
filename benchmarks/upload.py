"""Time uploads end to end against bare ffmpeg and against the conversion itself.

1. A 30-second WAV uploaded (multipart and raw) until the 201 arrives, against
   `ffmpeg -i in.wav -b:a 128k out.mp3` on the same file. Target: 1.15x.
2. A 10-minute WAV sent as a raw body until the 201, against the service's
   conversion function run in-process on the same file. Target: 1.1x, which
   needs decoding to start while the bytes arrive.

    uv run python -m benchmarks.upload                 # the figures of the README
    uv run python -m benchmarks.upload --short 2 --long 5 --runs 1   # smoke run
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from benchmarks.support import (
    GeneratedWav,
    best_of,
    machine,
    new_user,
    service,
    upload_raw,
)
from service.audio.convert import convert
from service.audio.types import EncodeOptions, Limits

SHORT_TARGET = 1.15
LONG_TARGET = 1.1


def main() -> int:
    """Run both comparisons and print their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=float, default=30, help="seconds of audio")
    parser.add_argument("--long", type=float, default=600, help="seconds of audio")
    parser.add_argument("--runs", type=int, default=5, help="best of N")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg is not installed (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")

    with tempfile.TemporaryDirectory(prefix="audiovault-bench-") as name:
        tmp = Path(name)
        short = GeneratedWav.seconds(args.short).write_to(tmp / "short.wav")
        long = GeneratedWav.seconds(args.long).write_to(tmp / "long.wav")
        baseline = best_of(
            args.runs,
            lambda: subprocess.run(
                [
                    ffmpeg,
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(short),
                    "-b:a",
                    "128k",
                    str(tmp / "ffmpeg.mp3"),
                ],
                check=True,
            ),
        )
        conversion = best_of(max(1, args.runs // 2), lambda: _convert(long, tmp))

        with (
            service(tmp) as running,
            httpx.Client(base_url=running.base_url, timeout=3600) as client,
        ):
            path, auth = new_user(client)
            _created(upload_raw(client, path, auth, GeneratedWav.seconds(0.5)))
            multipart = best_of(
                args.runs,
                lambda: _created(_send_file(client, path, auth, short, raw=False)),
            )
            raw = best_of(
                args.runs,
                lambda: _created(_send_file(client, path, auth, short, raw=True)),
            )
            long_raw = best_of(
                max(1, args.runs // 2),
                lambda: _created(_send_file(client, path, auth, long, raw=True)),
            )

    _report(f"{args.short:g} s WAV, ffmpeg -b:a 128k", baseline, None)
    ok = _report("  upload, multipart, to 201", multipart, baseline, SHORT_TARGET)
    ok &= _report("  upload, raw body, to 201", raw, baseline, SHORT_TARGET)
    _report(f"{args.long:g} s WAV, conversion in-process", conversion, None)
    ok &= _report("  upload, raw body, to 201", long_raw, conversion, LONG_TARGET)
    return 0 if ok or not args.strict else 1


def _convert(wav: Path, tmp: Path) -> None:
    with wav.open("rb") as source:
        convert(
            source,
            mp3_path=tmp / "inprocess.mp3",
            options=EncodeOptions(),
            limits=Limits(
                max_duration_s=6 * 3600, min_sample_rate=1000, max_channels=32
            ),
            work_dir=tmp,
        )


def _send_file(
    client: httpx.Client, path: str, auth: dict[str, str], wav: Path, *, raw: bool
) -> httpx.Response:
    with wav.open("rb") as file:
        if raw:
            return client.post(
                path, content=file, headers={**auth, "Content-Type": "audio/wav"}
            )
        return client.post(
            path, files={"file": (wav.name, file, "audio/wav")}, headers=auth
        )


def _created(response: httpx.Response) -> None:
    if response.status_code != 201:
        raise SystemExit(f"upload failed: {response.status_code} {response.text}")


def _report(
    label: str, seconds: float, baseline: float | None, target: float | None = None
) -> bool:
    if baseline is None:
        print(f"{label:<44} {seconds:8.3f} s")
        return True
    ratio = seconds / baseline
    verdict = "" if target is None else ("  ok" if ratio <= target else "  OVER")
    print(
        f"{label:<44} {seconds:8.3f} s  ratio {ratio:5.2f}x (target {target}x){verdict}"
    )
    return target is None or ratio <= target


if __name__ == "__main__":
    sys.exit(main())
