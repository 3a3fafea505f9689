"""Peak memory of the service while it accepts very large WAV uploads.

Sends a 1 GiB WAV as a raw body, then as multipart, then four at once (each on
a fresh service), and samples every 20 ms the resident memory (RSS) of the
server process and the proportional memory (PSS) of its whole process tree,
converter workers included. Targets: under 200 MB for one upload, under
300 MB for four, for both figures. The tree at rest, just after start, is
printed beside them, so memory that grew with the file would stand out.

    uv run python -m benchmarks.memory              # 1 GiB uploads
    uv run python -m benchmarks.memory --mib 16     # smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.support import (
    GeneratedWav,
    machine,
    new_user,
    service,
    upload_multipart,
    upload_raw,
)

MB = 1_000_000
ONE_TARGET_MB = 200
FOUR_TARGET_MB = 300


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            pending += _children(current)
        except OSError:
            continue
    return pids


def _field_bytes(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes(pid: int) -> int:
    return _field_bytes(f"/proc/{pid}/status", "VmRSS:")


def _pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes using them."""
    return _field_bytes(f"/proc/{pid}/smaps_rollup", "Pss:")


class Sampler:
    """Peak resident memory of a process and of its tree, sampled in a thread."""

    def __init__(self, pid: int, *, every_s: float = 0.02) -> None:
        self.pid = pid
        self.every_s = every_s
        self.process_peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.process_peak = max(self.process_peak, _rss_bytes(self.pid))
            tree = sum(_pss_bytes(pid) for pid in _tree(self.pid))
            self.tree_peak = max(self.tree_peak, tree)
            time.sleep(self.every_s)

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        """Sample while the block runs."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def main() -> int:
    """Measure each scenario on a fresh service and print the peaks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of each WAV")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    print(f"machine: {machine()}")
    print(f"WAV size: {args.mib} MiB ({size / (44100 * 4) / 60:.0f} min of audio)")

    send_raw: Callable[..., httpx.Response] = upload_raw
    send_multipart: Callable[..., httpx.Response] = upload_multipart
    scenarios = [
        ("one upload, raw body", send_raw, 1, ONE_TARGET_MB),
        ("one upload, multipart", send_multipart, 1, ONE_TARGET_MB),
        ("four uploads at once, raw", send_raw, 4, FOUR_TARGET_MB),
        ("four uploads at once, multipart", send_multipart, 4, FOUR_TARGET_MB),
    ]
    ok = True
    for label, send, count, target in scenarios:
        ok &= _scenario(label, send, count=count, size=size, target_mb=target)
    return 0 if ok or not args.strict else 1


def _scenario(
    label: str,
    send: Callable[..., httpx.Response],
    *,
    count: int,
    size: int,
    target_mb: int,
) -> bool:
    with (
        tempfile.TemporaryDirectory(prefix="audiovault-bench-") as name,
        service(Path(name), max_upload_bytes=str(2 * size)) as running,
        httpx.Client(base_url=running.base_url, timeout=None) as client,
    ):
        path, auth = new_user(client)
        time.sleep(0.5)
        idle = sum(_pss_bytes(pid) for pid in _tree(running.pid))

        with (
            Sampler(running.pid).running() as sampler,
            ThreadPoolExecutor(count) as threads,
        ):
            started = time.perf_counter()
            results = list(
                threads.map(
                    lambda _: send(client, path, auth, GeneratedWav(size)),
                    range(count),
                )
            )
            elapsed = time.perf_counter() - started

    statuses = sorted({response.status_code for response in results})
    peak = max(sampler.process_peak, sampler.tree_peak)
    fits = peak <= target_mb * MB and statuses == [201]
    print(
        f"{label:<34} server peak {sampler.process_peak / MB:6.1f} MB"
        f" (target {target_mb}); with workers (PSS) {sampler.tree_peak / MB:6.1f} MB,"
        f" at rest {idle / MB:6.1f} MB, {elapsed:6.1f} s, statuses {statuses}"
        f"{'  ok' if fits else '  OVER'}"
    )
    return fits


if __name__ == "__main__":
    sys.exit(main())
