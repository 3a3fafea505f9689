"""The converter pool: real worker processes, killed, stopped and refused for real."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from service.audio.pool import Conversion, ConverterPool, EncodeOptions
from service.errors import AudiovaultError, Busy, InvalidAudio, UnsupportedMedia
from tests import wavgen
from tests.audio.expect import LIMITS, check_converted, check_facts, check_refused
from tests.audio.test_convert_generated import CONVERTS, REFUSES
from tests.conftest import CORPUS, corpus_manifest

ENTRIES = corpus_manifest()
SPEECH = wavgen.pcm_wav(wavgen.signal(20.0, 44100, 2), 44100)
SHORT = wavgen.pcm_wav(wavgen.signal(0.5, 22050, 1), 22050)
PIECE = 64 * 1024


async def _run(pool: ConverterPool, data: bytes) -> Conversion:
    async with pool.job(EncodeOptions()) as job:
        for start in range(0, len(data), PIECE):
            await job.feed(data[start : start + PIECE])
        return await job.finish()


def _leftovers(work_dir: Path) -> list[str]:
    return sorted(path.name for path in work_dir.iterdir())


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_pool(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ConverterPool]:
    pool = ConverterPool(
        workers=2,
        queue_size=64,
        limits=LIMITS,
        work_dir=tmp_path_factory.mktemp("shared-pool"),
    )
    await pool.start()
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def small_pool(tmp_path: Path) -> AsyncIterator[ConverterPool]:
    """One worker and one place in the queue, and a short time limit."""
    pool = ConverterPool(
        workers=1,
        queue_size=1,
        limits=LIMITS,
        work_dir=tmp_path / "pool",
        grace_s=2.0,
        seconds_per_audio_s=0.1,
    )
    await pool.start()
    yield pool
    await pool.close()


async def _convert_or_refuse(pool: ConverterPool, data: bytes) -> Any:
    try:
        return await _run(pool, data)
    except AudiovaultError as error:
        return error


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.skipif(not ENTRIES, reason="the shared corpus is not beside this clone")
@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["file"] for entry in ENTRIES])
async def test_corpus_file_through_the_pool(
    entry: dict[str, Any], shared_pool: ConverterPool
) -> None:
    data = (CORPUS / "wav" / entry["file"]).read_bytes()

    outcome = await _convert_or_refuse(shared_pool, data)

    if isinstance(outcome, AudiovaultError):
        assert entry["expect"] == "reject", f"refused: {outcome.detail}"
        check_refused(entry, outcome)
    else:
        assert entry["expect"] == "convert"
        check_converted(entry, data, outcome)
        outcome.mp3_path.unlink()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("kind", list(CONVERTS))
async def test_generated_file_converts_through_the_pool(
    kind: str, shared_pool: ConverterPool
) -> None:
    data = CONVERTS[kind].make()

    result = await _run(shared_pool, data)

    check_facts(data, result)
    assert result.mp3.channels == CONVERTS[kind].channels
    assert result.mp3_path.parent == shared_pool.work_dir
    result.mp3_path.unlink()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("kind", list(REFUSES))
async def test_generated_file_is_refused_through_the_pool(
    kind: str, shared_pool: ConverterPool
) -> None:
    make, error_class, reason = REFUSES[kind]

    outcome = await _convert_or_refuse(shared_pool, make())

    assert type(outcome) is error_class
    assert reason in outcome.detail


@pytest.mark.asyncio
async def test_busy_at_once_when_workers_and_queue_are_full(
    small_pool: ConverterPool,
) -> None:
    async with small_pool.job(EncodeOptions()) as running:
        queued = small_pool.job(EncodeOptions())

        with pytest.raises(Busy) as caught:
            small_pool.job(EncodeOptions())

        assert caught.value.retry_after_s >= 1
        await running.feed(SHORT)
        await running.finish()
    async with queued as job:
        await job.feed(SHORT)
        await job.finish()


@pytest.mark.asyncio
async def test_a_killed_worker_fails_only_its_job(tmp_path: Path) -> None:
    pool = ConverterPool(
        workers=2, queue_size=0, limits=LIMITS, work_dir=tmp_path / "pool"
    )
    await pool.start()
    try:
        async with pool.job(EncodeOptions()) as doomed:
            await doomed.feed(SPEECH[: len(SPEECH) // 2])
            other = asyncio.create_task(_run(pool, SPEECH))
            await asyncio.sleep(0.2)
            assert doomed.worker_pid is not None
            os.kill(doomed.worker_pid, signal.SIGKILL)

            with pytest.raises(InvalidAudio, match="killed by signal 9"):
                await doomed.feed(SPEECH[len(SPEECH) // 2 :])
                await doomed.finish()

        check_facts(SPEECH, await other)
        check_facts(SHORT, await _run(pool, SHORT))
        check_facts(SHORT, await _run(pool, SHORT))
        assert pool.healthy()
        assert [
            name for name in _leftovers(pool.work_dir) if name.startswith("job-")
        ] == []
    finally:
        await pool.close()


def test_a_killed_worker_is_refused_cleanly_on_uvloop(tmp_path: Path) -> None:
    # The service runs on uvloop, which reports a write to a dead worker's
    # pipe as a RuntimeError: the refusal must still be the one the job had.
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        pool = ConverterPool(
            workers=1, queue_size=0, limits=LIMITS, work_dir=tmp_path / "pool"
        )
        await pool.start()
        try:
            with pytest.raises(InvalidAudio, match="killed by signal 9"):
                async with pool.job(EncodeOptions()) as job:
                    await job.feed(SPEECH[:PIECE])
                    assert job.worker_pid is not None
                    os.kill(job.worker_pid, signal.SIGKILL)
                    await asyncio.sleep(0.5)
                    await job.feed(SPEECH[PIECE : 2 * PIECE])

            check_facts(SHORT, await _run(pool, SHORT))
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


@pytest.mark.asyncio
async def test_a_hung_worker_is_stopped_by_the_time_limit(
    small_pool: ConverterPool,
) -> None:
    async with small_pool.job(EncodeOptions()) as job:
        await job.feed(SPEECH[:PIECE])
        assert job.worker_pid is not None
        os.kill(job.worker_pid, signal.SIGSTOP)

        with pytest.raises(InvalidAudio, match="no progress"):
            async with asyncio.timeout(20):
                await job.feed(SPEECH[PIECE : 2 * PIECE])
                await job.finish()

    check_facts(SHORT, await _run(small_pool, SHORT))


@pytest.mark.asyncio
async def test_waiting_for_a_slow_client_is_not_a_hang(
    small_pool: ConverterPool,
) -> None:
    async with small_pool.job(EncodeOptions()) as job:
        await job.feed(SHORT[:1000])
        await asyncio.sleep(small_pool.grace_s + 1.0)
        await job.feed(SHORT[1000:])
        result = await job.finish()

    check_facts(SHORT, result)


@pytest.mark.asyncio
async def test_a_refusal_reaches_the_feeder_before_the_body_ends(
    small_pool: ConverterPool,
) -> None:
    fed = 0
    async with small_pool.job(EncodeOptions()) as job:
        with pytest.raises(UnsupportedMedia, match="text"):
            async with asyncio.timeout(10):
                while True:
                    await job.feed(b"Not audio at all, only words. " * 4)
                    fed += 120
                    await asyncio.sleep(0.01)

        # While the refused body is still being drained, the worker is free.
        async with asyncio.timeout(10):
            meanwhile = await _run(small_pool, SHORT)
        check_facts(SHORT, meanwhile)
        meanwhile.mp3_path.unlink()

    assert fed < 10_000
    assert _leftovers(small_pool.work_dir) == []


@pytest.mark.asyncio
async def test_leaving_without_finish_aborts_and_cleans_up(
    small_pool: ConverterPool,
) -> None:
    with pytest.raises(RuntimeError, match="upload over the limit"):
        async with small_pool.job(EncodeOptions()) as job:
            await job.feed(wavgen.fmt_after_data(wavgen.signal(5.0, 44100, 2), 44100))
            raise RuntimeError("upload over the limit")

    assert _leftovers(small_pool.work_dir) == []
    check_facts(SHORT, await _run(small_pool, SHORT))


@pytest.mark.asyncio
async def test_a_cancelled_upload_leaves_nothing_behind(
    small_pool: ConverterPool,
) -> None:
    async def slow_upload() -> None:
        async with small_pool.job(EncodeOptions()) as job:
            for start in range(0, len(SPEECH), PIECE):
                await job.feed(SPEECH[start : start + PIECE])
                await asyncio.sleep(0.01)
            await job.finish()

    task = asyncio.create_task(slow_upload())
    await asyncio.sleep(0.2)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert _leftovers(small_pool.work_dir) == []
    check_facts(SHORT, await _run(small_pool, SHORT))


@pytest.mark.asyncio
async def test_a_cancelled_finish_leaves_no_mp3_behind(
    small_pool: ConverterPool,
) -> None:
    long_upload = wavgen.pcm_wav(wavgen.signal(90.0, 44100, 2), 44100)

    async with small_pool.job(EncodeOptions()) as job:
        for start in range(0, len(long_upload), PIECE):
            await job.feed(long_upload[start : start + PIECE])
        finishing = asyncio.create_task(job.finish())
        await asyncio.sleep(0.01)
        finishing.cancel()

        with pytest.raises(asyncio.CancelledError):
            await finishing

    assert _leftovers(small_pool.work_dir) == []
    check_facts(SHORT, await _run(small_pool, SHORT))


@pytest.mark.asyncio
async def test_close_stops_every_worker(tmp_path: Path) -> None:
    pool = ConverterPool(workers=2, queue_size=0, limits=LIMITS, work_dir=tmp_path)
    await pool.start()
    assert pool.healthy()

    await pool.close()

    assert not pool.healthy()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux /proc")
async def test_a_worker_cannot_take_unbounded_memory(
    shared_pool: ConverterPool,
) -> None:
    async with shared_pool.job(EncodeOptions()) as job:
        proc = Path(f"/proc/{job.worker_pid}")
        limits = (proc / "limits").read_text()
        await job.feed(SHORT)
        (await job.finish()).mp3_path.unlink()

    line = next(row for row in limits.splitlines() if row.startswith("Max address"))
    soft_limit = line.split()[3]
    assert soft_limit != "unlimited"
    assert int(soft_limit) <= 2 * 1024**3 + 512 * 1024**2
