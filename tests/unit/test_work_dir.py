"""Temporary files of a service that died are removed at the next start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.app import fresh_work_dir


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_folders_of_dead_processes_go_and_live_ones_stay(tmp_path: Path) -> None:
    dead = tmp_path / f"run-{_dead_pid()}"
    (dead / "job-1").mkdir(parents=True)
    (dead / "job-1" / "upload.mp3").write_bytes(b"left over")
    living = tmp_path / f"run-{os.getppid()}"
    living.mkdir()

    work_dir = fresh_work_dir(tmp_path)

    assert work_dir == tmp_path / f"run-{os.getpid()}"
    assert not dead.exists()
    assert living.exists()
