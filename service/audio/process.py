"""One worker process as the pool sees it: its pipes, its job, its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from service.audio import protocol

if TYPE_CHECKING:
    from service.audio.pool import ConversionJob

_STOP_TIMEOUT_S = 5.0


class WorkerProcess:
    """One worker process and the job it runs."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.job: ConversionJob | None = None
        self.alive = True
        self.retired = False
        self.started = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        """Write one frame, waiting while the pipe is full.

        Raises BrokenPipeError once the process is gone, whatever the event loop.
        """
        stdin = self.process.stdin
        assert stdin is not None
        if stdin.is_closing():
            raise BrokenPipeError("the worker's input pipe is closed")
        try:
            stdin.write(frame)
        except RuntimeError as error:
            # uvloop refuses a write to a pipe its peer closed with a
            # RuntimeError where asyncio's own loop raises an OSError.
            raise BrokenPipeError("the worker's input pipe is closed") from error
        await stdin.drain()

    async def listen(self, on_frame: Callable[[bytes, bytes], None]) -> None:
        """Pass on the worker's frames until its pipe closes, then reap it."""
        stdout = self.process.stdout
        assert stdout is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                on_frame(*await protocol.read_frame(stdout))
        self.alive = False
        await self.process.wait()

    def kill(self) -> None:
        """Kill the process (SIGKILL); its pipes then close."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def retire(self) -> None:
        """Stop the process on purpose; the pool starts another."""
        self.retired = True
        self.kill()

    async def stop(self) -> None:
        """Close its input so it exits; kill it if it does not."""
        stdin = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            self.kill()
            await self.process.wait()

    def exit_detail(self) -> str:
        """How the process ended, in words."""
        code = self.process.returncode
        if code is None:
            return "its pipe closed"
        if code < 0:
            return f"it was killed by signal {-code}"
        return f"it exited with status {code}"
