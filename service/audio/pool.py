"""A bounded pool of long-lived conversion processes, fed while an upload arrives."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from service.audio import protocol
from service.audio.process import WorkerProcess
from service.audio.types import (
    AudioFacts,
    Conversion,
    EncodeOptions,
    Limits,
    SourceFacts,
)
from service.errors import (
    AudiovaultError,
    BadRequest,
    Busy,
    InvalidAudio,
    Unavailable,
    UnsupportedMedia,
    ValidationFailed,
)

__all__ = [
    "AudioFacts",
    "Conversion",
    "ConversionJob",
    "ConverterPool",
    "EncodeOptions",
    "Limits",
    "SourceFacts",
]

log = structlog.get_logger(__name__)

_ERRORS: dict[str, type[AudiovaultError]] = {
    error.code: error
    for error in (BadRequest, InvalidAudio, UnsupportedMedia, ValidationFailed)
}
_START_TIMEOUT_S = 60.0
_WATCH_EVERY_S = 0.2


class ConverterPool:
    """Worker processes that each convert one upload at a time, plus a bounded queue.

    A job's clock runs while its worker has input to work on; the job is
    killed once the clock passes `grace_s` plus `seconds_per_audio_s` for every
    second of audio the worker has reported done.
    """

    def __init__(
        self,
        *,
        workers: int,
        queue_size: int,
        limits: Limits,
        work_dir: Path,
        grace_s: float = 30.0,
        seconds_per_audio_s: float = 0.5,
    ) -> None:
        self.limits = limits
        self.work_dir = work_dir
        self.grace_s = grace_s
        self.seconds_per_audio_s = seconds_per_audio_s
        self._size = workers
        self._queue_size = queue_size
        self._admitted = 0
        self._workers: set[WorkerProcess] = set()
        self._idle: asyncio.Queue[WorkerProcess] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._mean_job_s = 5.0

    async def start(self) -> None:
        """Spawn the workers and wait until each is ready."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        workers = [await self._spawn() for _ in range(self._size)]
        waits = [worker.started.wait() for worker in workers]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), _START_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable("the converter processes did not start") from None

    async def close(self) -> None:
        """Stop every worker; jobs still running fail."""
        self._closing = True
        for worker in list(self._workers):
            await worker.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def healthy(self) -> bool:
        """Whether at least one worker process is alive."""
        return any(worker.alive for worker in self._workers)

    def job(self, options: EncodeOptions) -> ConversionJob:
        """Reserve a place for one conversion; raise Busy at once when there is none."""
        if self._admitted >= self._size + self._queue_size:
            retry_after_s = max(1, math.ceil(self._mean_job_s))
            raise Busy(
                "every converter is busy and the queue is full",
                retry_after_s=retry_after_s,
            )
        self._admitted += 1
        return ConversionJob(self, options)

    async def _spawn(self) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.audio.worker",
            json.dumps(dataclasses.asdict(self.limits)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = WorkerProcess(process)
        self._workers.add(worker)
        self._background(self._serve(worker))
        return worker

    async def _serve(self, worker: WorkerProcess) -> None:
        def dispatch(kind: bytes, payload: bytes) -> None:
            if worker.job is not None:
                worker.job._on_frame(kind, payload)
            elif kind == protocol.READY:
                worker.started.set()
                self._idle.put_nowait(worker)

        await worker.listen(dispatch)
        self._workers.discard(worker)
        if worker.job is not None:
            worker.job._on_worker_lost(worker.exit_detail())
        if worker.retired:
            log.info("converter.worker_retired")
        elif not self._closing:
            log.warning("converter.worker_lost", detail=worker.exit_detail())
        if not self._closing:
            try:
                await self._spawn()
            except OSError as error:
                log.error("converter.spawn_failed", error=str(error))

    async def _acquire(self) -> WorkerProcess:
        while True:
            worker = await self._idle.get()
            if worker.alive:
                return worker

    def _release(self, worker: WorkerProcess, *, busy_s: float) -> None:
        self._admitted -= 1
        self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * busy_s
        if worker.alive and not worker.retired:
            worker.job = None
            self._idle.put_nowait(worker)

    def _unreserve(self) -> None:
        self._admitted -= 1

    def _background(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class ConversionJob:
    """One upload's conversion; use as `async with pool.job(options) as job:`."""

    def __init__(self, pool: ConverterPool, options: EncodeOptions) -> None:
        self._pool = pool
        self._options = options
        self._dir = pool.work_dir / f"job-{uuid.uuid4().hex}"
        self._worker: WorkerProcess | None = None
        self._outcome: asyncio.Future[dict[str, Any]] | None = None
        self._released = asyncio.Event()
        self._ended = False
        self._frames_sent = 0
        self._clock = _Clock()
        self._done_s = 0.0
        self._started_at = 0.0
        self._cleaned: asyncio.Future[None] | None = None

    @property
    def worker_pid(self) -> int | None:
        """The process id of the worker running this job, once it has one."""
        return None if self._worker is None else self._worker.process.pid

    async def __aenter__(self) -> ConversionJob:
        try:
            worker = await self._pool._acquire()
        except BaseException:
            self._pool._unreserve()
            raise
        self._worker = worker
        self._outcome = asyncio.get_running_loop().create_future()
        self._started_at = time.monotonic()
        worker.job = self
        try:
            self._dir.mkdir(parents=True)
        except OSError as error:
            self._released.set()
            await self._cleanup()
            raise Unavailable("the converter's work directory is not usable") from error

        self._clock.resume()
        self._pool._background(self._watch())
        request = {"job_dir": str(self._dir), **dataclasses.asdict(self._options)}
        try:
            await self._send(protocol.pack_json(protocol.JOB, request))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._ended:
            self._ended = True
            with contextlib.suppress(AudiovaultError):
                await self._send(protocol.pack(protocol.ABORT))
        elif self._outcome is not None and not self._outcome.done():
            # The worker reads no more input, so it cannot see an ABORT: a
            # new process costs less than finishing a conversion nobody wants.
            assert self._worker is not None
            self._worker.retire()
        # Shielded: a cancelled request must still leave the worker reusable.
        await asyncio.shield(self._cleanup())

    async def feed(self, chunk: bytes) -> None:
        """Pass on upload bytes; raise the worker's error once it has refused."""
        self._raise_if_failed()
        if self._ended:
            raise RuntimeError("feed() after finish()")
        for start in range(0, len(chunk), protocol.MAX_DATA):
            self._frames_sent += 1
            piece = chunk[start : start + protocol.MAX_DATA]
            await self._send(protocol.pack(protocol.DATA, piece))
            self._raise_if_failed()

    async def finish(self) -> Conversion:
        """End the upload and wait for the verified MP3; raise AudiovaultError."""
        self._raise_if_failed()
        if not self._ended:
            self._ended = True
            await self._send(protocol.pack(protocol.END))
        assert self._outcome is not None
        facts = await asyncio.shield(self._outcome)

        mp3_path = self._pool.work_dir / f"{uuid.uuid4().hex}.mp3"
        os.replace(self._dir / "out.mp3", mp3_path)
        return Conversion(
            mp3_path=mp3_path,
            mp3=AudioFacts(**facts["mp3"]),
            source=SourceFacts(**facts["source"]),
        )

    def _on_frame(self, kind: bytes, payload: bytes) -> None:
        """Handle a frame from the worker (called by the pool)."""
        if kind == protocol.READY:
            self._released.set()
        elif kind == protocol.PROGRESS:
            self._done_s = float(json.loads(payload)["done_s"])
        elif kind == protocol.WAIT:
            if not self._ended and json.loads(payload)["frames"] == self._frames_sent:
                self._clock.pause()
        elif kind == protocol.RESULT:
            self._settle(json.loads(payload))
        elif kind == protocol.ERROR:
            body = json.loads(payload)
            self._settle(_ERRORS.get(body["code"], InvalidAudio)(body["detail"]))
            if not self._ended:
                # Frees the worker now, while the caller may still be
                # draining the request body before it leaves the job.
                self._ended = True
                self._pool._background(self._abort())

    def _on_worker_lost(self, detail: str) -> None:
        """The worker died (called by the pool)."""
        self._settle(InvalidAudio(f"the converter process failed: {detail}"))
        self._released.set()

    def _settle(self, outcome: dict[str, Any] | AudiovaultError) -> None:
        if self._outcome is None or self._outcome.done():
            return
        if isinstance(outcome, AudiovaultError):
            self._outcome.set_exception(outcome)
        else:
            self._outcome.set_result(outcome)

    def _raise_if_failed(self) -> None:
        if self._outcome is not None and self._outcome.done():
            error = self._outcome.exception()
            if error is not None:
                raise error

    async def _send(self, frame: bytes) -> None:
        assert self._worker is not None
        self._clock.resume()
        try:
            await self._worker.send(frame)
        except OSError:
            await self._released.wait()
            self._raise_if_failed()
            raise InvalidAudio("the converter process failed") from None

    async def _watch(self) -> None:
        pool = self._pool
        while not self._released.is_set():
            await asyncio.sleep(_WATCH_EVERY_S)
            budget = pool.grace_s + pool.seconds_per_audio_s * self._done_s
            if self._clock.elapsed() > budget and self._worker is not None:
                log.warning("converter.stalled", budget_s=budget)
                self._settle(
                    InvalidAudio(
                        f"the conversion made no progress for {budget:.0f} s "
                        "and was stopped"
                    )
                )
                self._worker.kill()
                return

    async def _abort(self) -> None:
        with contextlib.suppress(AudiovaultError):
            await self._send(protocol.pack(protocol.ABORT))
        await self._cleanup()

    def _cleanup(self) -> asyncio.Future[None]:
        """Release the worker once it is ready again; runs once, however called."""
        if self._cleaned is None:
            self._cleaned = asyncio.ensure_future(self._release_when_ready())
        return self._cleaned

    async def _release_when_ready(self) -> None:
        await self._released.wait()
        await asyncio.to_thread(shutil.rmtree, self._dir, ignore_errors=True)
        if self._outcome is not None and self._outcome.done():
            self._outcome.exception()  # marks a refusal nobody awaited as seen
        assert self._worker is not None
        self._pool._release(self._worker, busy_s=time.monotonic() - self._started_at)


class _Clock:
    """Time charged to a job: it stops while the worker waits for upload bytes."""

    def __init__(self) -> None:
        self._charged = 0.0
        self._since: float | None = None

    def pause(self) -> None:
        if self._since is not None:
            self._charged += time.monotonic() - self._since
            self._since = None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def elapsed(self) -> float:
        running = 0.0 if self._since is None else time.monotonic() - self._since
        return self._charged + running
