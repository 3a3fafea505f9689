"""A converter process killed mid-upload costs that upload only, over real HTTP."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx

from tests import wavgen
from tests.audio.audiocheck import assert_same_audio, decode, reference
from tests.conftest import ApiUser
from tests.e2e.test_recordings import assert_problem, download
from tests.server import RunningService, wait_for

PIECE = 16 * 1024
UPLOAD = wavgen.pcm_wav(wavgen.signal(6.0, 22050, 2), 22050)
HALF = len(UPLOAD) // 2 // PIECE * PIECE


def _workers(service: RunningService) -> set[int]:
    """Process ids of the service's converter processes."""
    found: set[int] = set()
    for task in Path(f"/proc/{service.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"service.audio.worker" in cmdline:
                found.add(int(pid))
    return found


def _bytes_read(pid: int) -> int:
    """Bytes the process has read so far, from pipes included."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar for process {pid}")


def _gated_body(gate: threading.Event) -> Iterator[bytes]:
    """The upload in small, slow pieces, stopping halfway until `gate` opens."""
    for start in range(0, len(UPLOAD), PIECE):
        if start == HALF:
            assert gate.wait(60), "the gate never opened"
        yield UPLOAD[start : start + PIECE]
        time.sleep(0.005)


def _post_in_thread(
    pool: ThreadPoolExecutor,
    service: RunningService,
    user: ApiUser,
    body: Iterator[bytes],
) -> Future[httpx.Response]:
    def post() -> httpx.Response:
        with httpx.Client(base_url=service.base_url, timeout=120) as http:
            return http.post(
                user.recordings,
                content=body,
                headers={**user.auth, "Content-Type": "audio/wav"},
            )

    return pool.submit(post)


def _worker_that_reads(
    service: RunningService, before: dict[int, int], *, at_least: int
) -> int:
    """Wait until one worker has read `at_least` more bytes than `before`."""
    found: list[int] = []

    def grown() -> bool:
        found[:] = [
            pid
            for pid in _workers(service)
            if _bytes_read(pid) - before.get(pid, 0) >= at_least
        ]
        return bool(found)

    wait_for(grown, timeout_s=30, what="a worker reading the upload")
    assert len(found) == 1, found
    return found[0]


def _check_converted(client: httpx.Client, response: httpx.Response) -> None:
    assert response.status_code == 201, response.text
    mp3 = download(client, response.json()).content
    assert_same_audio(reference(UPLOAD), decode(mp3, container_format="mp3"))


def test_a_killed_worker_costs_only_its_upload(
    service: RunningService, client: httpx.Client, user: ApiUser
) -> None:
    workers = _workers(service)
    assert len(workers) == 2, workers
    read_at_start = {pid: _bytes_read(pid) for pid in workers}
    doomed_gate, other_gate = threading.Event(), threading.Event()

    with ThreadPoolExecutor(max_workers=2) as threads:
        doomed = _post_in_thread(threads, service, user, _gated_body(doomed_gate))
        doomed_pid = _worker_that_reads(service, read_at_start, at_least=HALF)
        read_now = {pid: _bytes_read(pid) for pid in workers}
        other = _post_in_thread(threads, service, user, _gated_body(other_gate))
        other_pid = _worker_that_reads(service, read_now, at_least=HALF)
        assert other_pid != doomed_pid

        os.kill(doomed_pid, signal.SIGKILL)

        # Both uploads are halfway through; the service answers meanwhile.
        health = client.get("/health/live")
        listing = client.get(user.recordings, headers=user.auth)
        doomed_gate.set()
        other_gate.set()
        doomed_response = doomed.result(timeout=120)
        other_response = other.result(timeout=120)

    assert health.status_code == 200
    assert listing.status_code == 200
    assert_problem(doomed_response, 422, "invalid_audio")
    assert "killed" in doomed_response.json()["detail"]
    _check_converted(client, other_response)
    next_upload = client.post(
        user.recordings,
        content=UPLOAD,
        headers={**user.auth, "Content-Type": "audio/wav"},
    )
    _check_converted(client, next_upload)
    wait_for(lambda: len(_workers(service)) == 2, timeout_s=30, what="a new worker")
    assert doomed_pid not in _workers(service)
