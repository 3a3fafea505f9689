"""The service as a real process on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningService:
    base_url: str
    pid: int
    env: Mapping[str, str]
    log_path: Path

    def log(self) -> str:
        """What the service wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    env: Mapping[str, str], *, log_path: Path, timeout_s: float = 60
) -> Iterator[RunningService]:
    """Start `audiovault serve` with these AUDIOVAULT_* variables; stop it after."""
    port = free_port()
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AUDIOVAULT_")
    }
    full_env.update(env)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    service = RunningService(
        base_url=f"http://127.0.0.1:{port}",
        pid=process.pid,
        env=full_env,
        log_path=log_path,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or _ready(service.base_url),
            timeout_s=timeout_s,
            what="audiovault",
        )
        if process.poll() is not None:
            raise RuntimeError(f"audiovault exited at start:\n{service.log()}")
        yield service
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll `check()` until it is true or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s} s")
