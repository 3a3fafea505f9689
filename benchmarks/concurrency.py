"""Conversions in parallel, refusal when full, and a responsive event loop.

1. Two 10-minute WAV uploads at once against the same two one after the
   other. Target: at most 0.6x the time.
2. With every converter busy and the queue full, a new upload must get 503
   `busy` with Retry-After at once: prints how long that answer took.
3. The 99th percentile latency of `/record` while conversions run, against
   its value on an idle service. Target: at most 3x.

    uv run python -m benchmarks.concurrency               # the README figures
    uv run python -m benchmarks.concurrency --seconds 20  # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.support import GeneratedWav, machine, new_user, service, upload_raw

PARALLEL_TARGET = 0.6
LATENCY_TARGET = 3.0


def main() -> int:
    """Run the three measurements on one service and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="audio per upload")
    parser.add_argument("--probes", type=int, default=2000, help="/record requests")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    print(f"machine: {machine()}; converter workers: {workers}")

    with (
        tempfile.TemporaryDirectory(prefix="audiovault-bench-") as name,
        service(Path(name), workers=str(workers), queue_size="0") as running,
        httpx.Client(base_url=running.base_url, timeout=None) as client,
    ):
        path, auth = new_user(client)

        def upload() -> httpx.Response:
            # A client of its own: uploads sharing one client queue behind each other.
            with httpx.Client(base_url=running.base_url, timeout=None) as own:
                wav = GeneratedWav.seconds(args.seconds)
                return upload_raw(own, path, auth, wav)

        link = upload_raw(client, path, auth, GeneratedWav.seconds(1)).json()
        record = link["download_url"].replace(running.base_url, "")

        sequential = _timed(lambda: [upload(), upload()])
        parallel = _timed(lambda: _together(upload, count=2))
        busy_status, busy_retry, busy_s = _refusal_when_full(
            client, path, auth, upload, workers=workers
        )
        idle = _p99(client, record, args.probes)
        loaded = _p99_under_load(client, record, args.probes, upload, workers)

    ok = True
    ratio = parallel / sequential
    ok &= _line(
        "two uploads at once vs one after the other",
        f"{parallel:.2f} s vs {sequential:.2f} s",
        ratio,
        PARALLEL_TARGET,
    )
    refused_ok = busy_status == 503 and busy_retry is not None and busy_s < 0.5
    ok &= refused_ok
    verdict = "  ok" if refused_ok else "  OVER"
    if busy_status == 201:
        verdict = "  not measured: the conversions ended first; raise --seconds"
    print(
        f"{'upload while full':<44} status {busy_status}, Retry-After {busy_retry},"
        f" answered in {busy_s * 1000:.1f} ms{verdict}"
    )
    ok &= _line(
        "/record p99 while converting vs idle",
        f"{loaded * 1000:.2f} ms vs {idle * 1000:.2f} ms",
        loaded / idle,
        LATENCY_TARGET,
    )
    return 0 if ok or not args.strict else 1


def _timed(action: object) -> float:
    started = time.perf_counter()
    results = action()  # type: ignore[operator]
    for response in results:
        if response.status_code != 201:
            raise SystemExit(f"upload failed: {response.status_code} {response.text}")
    return time.perf_counter() - started


def _together(upload: object, *, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as threads:
        futures = [threads.submit(upload) for _ in range(count)]  # type: ignore[arg-type]
        return [future.result() for future in futures]


def _refusal_when_full(
    client: httpx.Client,
    path: str,
    auth: dict[str, str],
    upload: object,
    *,
    workers: int,
) -> tuple[int, str | None, float]:
    with ThreadPoolExecutor(workers) as threads:
        running = [threads.submit(upload) for _ in range(workers)]  # type: ignore[arg-type]
        time.sleep(1.0)
        with httpx.Client(base_url=str(client.base_url), timeout=None) as fresh:
            fresh.get("/health/live")
            started = time.perf_counter()
            refused = upload_raw(fresh, path, auth, GeneratedWav.seconds(1))
            elapsed = time.perf_counter() - started
        for future in running:
            future.result()
    return refused.status_code, refused.headers.get("retry-after"), elapsed


def _p99(client: httpx.Client, record: str, probes: int) -> float:
    latencies = []
    for _ in range(probes):
        started = time.perf_counter()
        response = client.get(record, follow_redirects=False)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 307:
            raise SystemExit(f"/record answered {response.status_code}")
    return statistics.quantiles(latencies, n=100)[98]


def _p99_under_load(
    client: httpx.Client, record: str, probes: int, upload: object, workers: int
) -> float:
    done = threading.Event()

    def convert() -> None:
        try:
            _together(upload, count=workers)
        finally:
            done.set()

    loader = threading.Thread(target=convert)
    loader.start()
    time.sleep(1.0)
    with httpx.Client(base_url=str(client.base_url), timeout=None) as probe:
        p99 = _p99(probe, record, probes)
    if done.is_set():
        print("warning: the conversions ended before the probes; raise --seconds")
    loader.join()
    return p99


def _line(label: str, figures: str, ratio: float, target: float) -> bool:
    fits = ratio <= target
    print(
        f"{label:<44} {figures}: ratio {ratio:.2f}x (target {target}x)"
        f"{'  ok' if fits else '  OVER'}"
    )
    return fits


if __name__ == "__main__":
    sys.exit(main())
