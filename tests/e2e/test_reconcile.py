"""The reconciler on both real setups: PostgreSQL with SeaweedFS, SQLite with files."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.cli import main
from service.db import create_engine, migrate_async, session_factory
from service.models import Recording, User, utc_now
from service.reconcile import ReconcileReport, reconcile
from service.recordings.service import object_key
from storage import LocalStore, ObjectStore
from tests.postgres import _psql
from tests.s3server import S3Server
from tests.storage.helpers import s3_store

ROOT = Path(__file__).resolve().parent.parent.parent
BUCKET = "recordings"
# Short, so a test can make an object older than it by waiting.
THRESHOLD = timedelta(seconds=2)
# Past the threshold even when a store stamps times to the whole second.
AGEING_S = THRESHOLD.total_seconds() + 1.5
# Any object already stored is older than this.
ANY_AGE = timedelta(0)


@dataclass(frozen=True)
class Setup:
    """A migrated database and a store with its bucket, as the service uses them."""

    sessions: async_sessionmaker[AsyncSession]
    store: ObjectStore
    env: dict[str, str]
    tmp_path: Path


@pytest_asyncio.fixture(params=["postgres_s3", "sqlite_local"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    """An empty database and an empty bucket, of each kind the service runs on."""
    data_dir = tmp_path / "data"
    env = {"AUDIOVAULT_DATA_DIR": str(data_dir), "AUDIOVAULT_LOG_FORMAT": "json"}
    if request.param == "postgres_s3":
        # A database of its own: the one the running service uses holds
        # recordings whose objects are in another bucket.
        host, port = request.getfixturevalue("postgres_server")
        name = f"audiovault_reconcile_{uuid.uuid4().hex[:10]}"
        _psql(host, port, f'CREATE DATABASE "{name}"')
        request.addfinalizer(
            lambda: _psql(host, port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )
        database_url = f"postgresql://postgres@{host}:{port}/{name}"
        server: S3Server = request.getfixturevalue("s3_server")
        store: ObjectStore = s3_store(server)
        env |= {
            "AUDIOVAULT_S3_ENDPOINT": server.endpoint,
            "AUDIOVAULT_S3_ACCESS_KEY": server.access_key,
            "AUDIOVAULT_S3_SECRET_KEY": server.secret_key,
            "AUDIOVAULT_S3_REGION": server.region,
            "AUDIOVAULT_S3_BUCKET": store.bucket_name,
        }
    else:
        database_url = f"sqlite:///{data_dir / 'audiovault.db'}"
        store = LocalStore(
            root=data_dir / "objects",
            bucket_name=BUCKET,
            secret_key=secrets.token_bytes(32),
        )
    env["AUDIOVAULT_DATABASE_URL"] = database_url
    async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    async_url = async_url.replace("sqlite://", "sqlite+aiosqlite://", 1)

    await migrate_async(async_url)
    await store.ensure_bucket()
    engine = create_engine(async_url)
    try:
        yield Setup(
            sessions=session_factory(engine),
            store=store,
            env=env,
            tmp_path=tmp_path,
        )
    finally:
        await engine.dispose()


async def add_user(setup: Setup) -> uuid.UUID:
    """A user row to hang recordings on."""
    user = User(
        username="reconcile",
        username_key=f"reconcile-{uuid.uuid4().hex}",
        token_hash=secrets.token_hex(32),
    )
    async with setup.sessions() as session:
        session.add(user)
        await session.commit()
    return user.id


async def add_recording(setup: Setup, *, user_id: uuid.UUID) -> Recording:
    """A recording row whose object is not stored (yet)."""
    recording_id = uuid.uuid4()
    recording = Recording(
        id=recording_id,
        user_id=user_id,
        filename="note.mp3",
        object_key=object_key(user_id=user_id, recording_id=recording_id),
        content_type="audio/mpeg",
        size_bytes=5,
        checksum_sha256="0" * 64,
        duration_s=1.0,
        sample_rate=44100,
        channels=1,
        bitrate=128000,
        source_filename="note.wav",
        source_size_bytes=10,
        source_checksum_sha256="1" * 64,
        source_duration_s=1.0,
        source_sample_rate=44100,
        source_channels=1,
        source_codec="pcm_s16le",
        created_at=utc_now(),
    )
    async with setup.sessions() as session:
        session.add(recording)
        await session.commit()
    return recording


async def put_object(setup: Setup, object_name: str) -> None:
    """Store a few bytes under `object_name`."""
    path = setup.tmp_path / f"{uuid.uuid4().hex}.mp3"
    path.write_bytes(b"ID3\x04\x00")
    await setup.store.put_file(object_name, path, content_type="audio/mpeg")


async def put_recorded(setup: Setup, *, user_id: uuid.UUID) -> str:
    """A recording with its object, as a finished upload leaves it."""
    recording = await add_recording(setup, user_id=user_id)
    await put_object(setup, recording.object_key)
    return recording.object_key


async def put_orphan(setup: Setup, *, user_id: uuid.UUID) -> str:
    """An object no row names, as a crash between put and commit leaves it."""
    key = object_key(user_id=user_id, recording_id=uuid.uuid4())
    await put_object(setup, key)
    return key


async def count_recordings(setup: Setup) -> int:
    """How many recording rows there are."""
    async with setup.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Recording)) or 0


@pytest.mark.asyncio
async def test_removes_only_old_objects_no_recording_names(setup: Setup) -> None:
    user_id = await add_user(setup)
    old_orphan = await put_orphan(setup, user_id=user_id)
    recorded = await put_recorded(setup, user_id=user_id)
    outside = "exports/report.mp3"
    await put_object(setup, outside)
    await asyncio.sleep(AGEING_S)
    young_orphan = await put_orphan(setup, user_id=user_id)

    report = await reconcile(
        sessions=setup.sessions, store=setup.store, older_than=THRESHOLD, dry_run=False
    )

    assert report == ReconcileReport(
        objects_checked=3,
        orphans_removed=1,
        orphans_too_young=1,
        recordings_checked=1,
        recordings_missing_object=0,
        dry_run=False,
    )
    assert not await setup.store.exists(old_orphan)
    assert await setup.store.exists(young_orphan)
    assert await setup.store.exists(recorded)
    assert await setup.store.exists(outside)


@pytest.mark.asyncio
async def test_reports_recordings_whose_object_is_missing(setup: Setup) -> None:
    user_id = await add_user(setup)
    await put_recorded(setup, user_id=user_id)
    lost = await add_recording(setup, user_id=user_id)

    report = await reconcile(
        sessions=setup.sessions, store=setup.store, older_than=THRESHOLD, dry_run=False
    )

    assert report.recordings_checked == 2
    assert report.recordings_missing_object == 1
    assert report.orphans_removed == 0
    assert await count_recordings(setup) == 2
    assert not await setup.store.exists(lost.object_key)


@pytest.mark.asyncio
async def test_dry_run_removes_nothing(setup: Setup) -> None:
    user_id = await add_user(setup)
    orphans = [await put_orphan(setup, user_id=user_id) for _ in range(2)]

    report = await reconcile(
        sessions=setup.sessions, store=setup.store, older_than=ANY_AGE, dry_run=True
    )

    assert report.orphans_removed == 2
    assert report.dry_run
    for orphan in orphans:
        assert await setup.store.exists(orphan)


@pytest.mark.asyncio
async def test_the_default_threshold_keeps_a_fresh_orphan(setup: Setup) -> None:
    user_id = await add_user(setup)
    orphan = await put_orphan(setup, user_id=user_id)

    report = await reconcile(sessions=setup.sessions, store=setup.store)

    assert report.orphans_too_young == 1
    assert report.orphans_removed == 0
    assert await setup.store.exists(orphan)


@pytest.mark.asyncio
async def test_counts_hold_across_many_small_batches(setup: Setup) -> None:
    user_id = await add_user(setup)
    orphans = [await put_orphan(setup, user_id=user_id) for _ in range(5)]
    recorded = [await put_recorded(setup, user_id=user_id) for _ in range(4)]
    for _ in range(3):
        await add_recording(setup, user_id=user_id)

    report = await reconcile(
        sessions=setup.sessions,
        store=setup.store,
        older_than=ANY_AGE,
        dry_run=False,
        batch_size=2,
    )

    assert report == ReconcileReport(
        objects_checked=9,
        orphans_removed=5,
        orphans_too_young=0,
        recordings_checked=7,
        recordings_missing_object=3,
        dry_run=False,
    )
    for orphan in orphans:
        assert not await setup.store.exists(orphan)
    for key in recorded:
        assert await setup.store.exists(key)


def run_command(
    settings: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run `audiovault` with these settings and none from our environment."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUDIOVAULT_")
    }
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env | settings,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def log_events(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines the command wrote."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def summary_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the command printed, once it has succeeded."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


@pytest.mark.asyncio
async def test_command_removes_orphans_and_reports_missing_objects(
    setup: Setup,
) -> None:
    user_id = await add_user(setup)
    orphan = await put_orphan(setup, user_id=user_id)
    recorded = await put_recorded(setup, user_id=user_id)
    lost = await add_recording(setup, user_id=user_id)

    result = await asyncio.to_thread(
        run_command, setup.env, "reconcile", "--older-than-minutes", "0"
    )

    assert summary_line(result) == (
        "reconcile: objects_checked=2 orphans_removed=1 orphans_too_young=0 "
        "older_than_minutes=0 recordings_checked=2 recordings_missing_object=1"
    )
    assert not await setup.store.exists(orphan)
    assert await setup.store.exists(recorded)
    events = log_events(result.stderr)
    removed = [
        event for event in events if event["event"] == "reconcile.object_removed"
    ]
    missing = [
        event for event in events if event["event"] == "reconcile.object_missing"
    ]
    assert [event["object_key"] for event in removed] == [orphan]
    assert [event["recording_id"] for event in missing] == [str(lost.id)]
    assert missing[0]["level"] == "error"


# The dry run itself is tested on both setups above; this checks the flag
# reaches it, and one setup is enough for that.
@pytest.mark.asyncio
@pytest.mark.parametrize("setup", ["sqlite_local"], indirect=True)
async def test_command_dry_run_removes_nothing(setup: Setup) -> None:
    user_id = await add_user(setup)
    orphan = await put_orphan(setup, user_id=user_id)

    result = await asyncio.to_thread(
        run_command, setup.env, "reconcile", "--older-than-minutes", "0", "--dry-run"
    )

    assert summary_line(result) == (
        "reconcile (dry run): objects_checked=1 orphans_to_remove=1 "
        "orphans_too_young=0 older_than_minutes=0 recordings_checked=0 "
        "recordings_missing_object=0"
    )
    assert await setup.store.exists(orphan)
    events = [event["event"] for event in log_events(result.stderr)]
    assert "reconcile.orphan_found" in events
    assert "reconcile.object_removed" not in events


@pytest.mark.parametrize("minutes", ["-5", "ten"])
def test_command_refuses_an_age_that_is_not_whole_minutes(
    minutes: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reconcile", "--older-than-minutes", minutes])

    assert exited.value.code == 2
    assert "--older-than-minutes" in capsys.readouterr().err
