"""The whole path over real HTTP: user, upload, download, list, delete."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from sqlalchemy import select

from service.db import create_engine
from service.models import Recording
from service.recordings.service import object_key
from service.settings import Settings
from tests.conftest import CORPUS, ApiUser, corpus_manifest, needs_corpus
from tests.server import RunningService

MP3_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def sine_wav(*, seconds: float, rate: int = 44100, channels: int = 2) -> bytes:
    """A 440 Hz tone as 16-bit PCM WAV."""
    frames = int(seconds * rate)
    samples = (
        int(12000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(frames)
    )
    pcm = b"".join(struct.pack("<h", s) * channels for s in samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def decode_mp3(data: bytes) -> tuple[float, int, int]:
    """Decoded duration (s), channels and sample rate of MP3 bytes."""
    with av.open(io.BytesIO(data), format="mp3") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate, stream.channels, stream.rate


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    """The response is problem+json with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert (body["status"], body["code"]) == (status, code)
    assert body["detail"]


def download(client: httpx.Client, recording: dict[str, Any]) -> httpx.Response:
    """Follow the stable link to the MP3, checking the redirect on the way."""
    link = client.get(recording["download_url"], follow_redirects=False)
    assert link.status_code == 307, link.text
    assert link.headers["cache-control"] == "no-store"
    mp3 = httpx.get(link.headers["location"], timeout=60)
    assert mp3.status_code == 200, mp3.text
    assert mp3.headers["content-type"] == "audio/mpeg"
    return mp3


def within_tolerance(decoded: float, expected: float, rate_out: int) -> bool:
    """The corpus README's rule for an MP3's decoded length."""
    return expected - 0.02 <= decoded <= expected + 2 * 1152 / rate_out + 0.02


E2E_FILES = [
    entry
    for entry in corpus_manifest()
    if entry["file"].startswith(("pluck-", "speech_", "голосовая"))
]


@needs_corpus
@pytest.mark.parametrize("entry", E2E_FILES, ids=[e["file"] for e in E2E_FILES])
def test_corpus_recording_round_trip(
    client: httpx.Client, user: ApiUser, entry: dict[str, Any]
) -> None:
    path = CORPUS / "wav" / entry["file"]
    data = path.read_bytes()

    with path.open("rb") as file:
        response = client.post(
            user.recordings,
            files={"file": (entry["file"], file, "audio/wav")},
            headers=user.auth,
        )

    assert response.status_code == 201, response.text
    recording = response.json()
    assert response.headers["location"].endswith(recording["id"])
    assert recording["filename"] == Path(entry["file"]).stem + ".mp3"
    assert recording["source"]["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    assert recording["source"]["size_bytes"] == len(data)
    mp3 = download(client, recording)
    assert hashlib.sha256(mp3.content).hexdigest() == recording["checksum_sha256"]
    assert len(mp3.content) == recording["size_bytes"]
    duration, channels, rate = decode_mp3(mp3.content)
    assert channels == entry["channels_out"] == recording["channels"]
    assert rate in MP3_RATES and rate == recording["sample_rate"]
    assert within_tolerance(duration, entry["duration_s"], rate)
    assert abs(recording["duration_s"] - duration) < 0.06


def test_raw_body_upload_names_the_recording(
    client: httpx.Client, user: ApiUser
) -> None:
    wav = sine_wav(seconds=1.5, channels=1, rate=22050)

    response = client.post(
        user.recordings,
        params={"filename": "notes/take 1.WAV", "bitrate": 64},
        content=wav,
        headers={**user.auth, "Content-Type": "audio/x-wav"},
    )

    assert response.status_code == 201, response.text
    recording = response.json()
    assert recording["filename"] == "take 1.mp3"
    assert recording["source"]["filename"] == "take 1.WAV"
    assert recording["bitrate"] == 64000
    assert (recording["channels"], recording["sample_rate"]) == (1, 22050)
    assert recording["source"]["codec"] == "pcm_s16le"
    duration, channels, rate = decode_mp3(download(client, recording).content)
    assert (channels, rate) == (1, 22050)
    assert within_tolerance(duration, 1.5, rate)


def test_raw_body_takes_its_name_from_content_disposition(
    client: httpx.Client, user: ApiUser
) -> None:
    response = client.post(
        user.recordings,
        content=sine_wav(seconds=0.3),
        headers={
            **user.auth,
            "Content-Type": "audio/wav",
            "Content-Disposition": "attachment; filename*=UTF-8''%C3%A9t%C3%A9.wav",
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "été.mp3"


def test_raw_body_without_a_name_is_called_recording(
    client: httpx.Client, user: ApiUser
) -> None:
    response = client.post(
        user.recordings,
        content=sine_wav(seconds=0.3),
        headers={**user.auth, "Content-Type": "application/octet-stream"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "recording.mp3"


def test_variable_bitrate_quality(client: httpx.Client, user: ApiUser) -> None:
    response = client.post(
        user.recordings,
        params={"quality": 2},
        content=sine_wav(seconds=2),
        headers={**user.auth, "Content-Type": "audio/wav"},
    )

    assert response.status_code == 201, response.text
    assert 32000 <= response.json()["bitrate"] <= 320000


@pytest.mark.parametrize(
    ("params", "detail_word"),
    [
        ({"bitrate": 100}, "bitrate"),
        ({"quality": 10}, "quality"),
        ({"bitrate": 128, "quality": 2}, "either"),
    ],
)
def test_encoder_options_out_of_range(
    client: httpx.Client, user: ApiUser, params: dict[str, int], detail_word: str
) -> None:
    response = client.post(
        user.recordings,
        params=params,
        content=sine_wav(seconds=0.2),
        headers={**user.auth, "Content-Type": "audio/wav"},
    )

    assert_problem(response, 422, "validation_error")
    assert detail_word in response.json()["detail"]


def test_content_that_is_not_wave_is_refused(
    client: httpx.Client, user: ApiUser
) -> None:
    ogg_like = b"OggS" + bytes(400)

    response = client.post(
        user.recordings,
        files={"file": ("song.wav", ogg_like, "audio/wav")},
        headers=user.auth,
    )

    assert_problem(response, 415, "unsupported_media")
    listing = client.get(user.recordings, headers=user.auth).json()
    assert listing["items"] == []


def test_unknown_body_type_is_refused(client: httpx.Client, user: ApiUser) -> None:
    response = client.post(
        user.recordings,
        content=sine_wav(seconds=0.2),
        headers={**user.auth, "Content-Type": "text/plain"},
    )

    assert_problem(response, 415, "unsupported_media")


def test_multipart_without_a_file_part(client: httpx.Client, user: ApiUser) -> None:
    response = client.post(
        user.recordings,
        files={"audio": ("a.wav", sine_wav(seconds=0.2), "audio/wav")},
        headers=user.auth,
    )

    assert_problem(response, 400, "bad_request")
    assert "'file'" in response.json()["detail"]


def test_upload_over_the_limit_is_refused_before_reading(
    service: RunningService, tmp_path: Path
) -> None:
    from tests.server import running_service

    env = {
        **{k: v for k, v in service.env.items() if k.startswith("AUDIOVAULT_")},
        "AUDIOVAULT_MAX_UPLOAD_BYTES": "50000",
    }
    with (
        running_service(env, log_path=tmp_path / "log") as small,
        httpx.Client(base_url=small.base_url, timeout=60) as http,
    ):
        owner = ApiUser(http)
        announced = http.post(
            owner.recordings,
            content=sine_wav(seconds=1),
            headers={**owner.auth, "Content-Type": "audio/wav"},
        )
        streamed = http.post(
            owner.recordings,
            content=iter([sine_wav(seconds=1)[:40000], bytes(40000)]),
            headers={**owner.auth, "Content-Type": "audio/wav"},
        )

    assert_problem(announced, 413, "payload_too_large")
    assert_problem(streamed, 413, "payload_too_large")


def test_tokens_guard_every_recording_route(
    client: httpx.Client, user: ApiUser
) -> None:
    other = ApiUser(client)
    created = user.upload(client, sine_wav(seconds=0.3)).json()
    one = f"{user.recordings}/{created['id']}"

    assert_problem(client.get(user.recordings), 401, "unauthorized")
    assert_problem(
        client.get(one, headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    assert_problem(client.get(one, headers=other.auth), 403, "forbidden")
    assert_problem(client.delete(one, headers=other.auth), 403, "forbidden")
    assert_problem(
        client.post(user.recordings, content=b"x", headers=other.auth),
        403,
        "forbidden",
    )
    assert_problem(
        client.get(f"{other.recordings}/{created['id']}", headers=other.auth),
        404,
        "not_found",
    )
    assert client.get(one, headers=user.auth).status_code == 200


def test_record_link_needs_the_matching_pair(
    client: httpx.Client, user: ApiUser
) -> None:
    other = ApiUser(client)
    created = user.upload(client, sine_wav(seconds=0.3)).json()

    wrong_user = client.get("/record", params={"id": created["id"], "user": other.id})
    not_ids = client.get("/record", params={"id": "x", "user": "y"})

    assert_problem(wrong_user, 404, "not_found")
    assert_problem(not_ids, 404, "not_found")


def test_list_is_newest_first_and_pages(client: httpx.Client, user: ApiUser) -> None:
    ids = []
    for n in range(5):
        response = client.post(
            user.recordings,
            params={"filename": f"take{n}.wav"},
            content=sine_wav(seconds=0.2),
            headers={**user.auth, "Content-Type": "audio/wav"},
        )
        ids.append(response.json()["id"])

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(user.recordings, params=params, headers=user.auth).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ids[::-1]
    assert_problem(
        client.get(user.recordings, params={"limit": 0}, headers=user.auth),
        422,
        "validation_error",
    )
    assert_problem(
        client.get(user.recordings, params={"cursor": "garbage"}, headers=user.auth),
        400,
        "bad_request",
    )


def test_delete_removes_the_object_and_the_row(
    client: httpx.Client, user: ApiUser, service: RunningService
) -> None:
    created = user.upload(client, sine_wav(seconds=0.3)).json()
    key = object_key(user_id=created["user_id"], recording_id=created["id"])
    settings = Settings.from_env(service.env)
    assert asyncio.run(_object_exists(settings, key))

    response = client.delete(f"{user.recordings}/{created['id']}", headers=user.auth)

    assert response.status_code == 204
    assert not asyncio.run(_object_exists(settings, key))
    assert asyncio.run(_row_count(settings, created["id"])) == 0
    assert_problem(
        client.get(f"{user.recordings}/{created['id']}", headers=user.auth),
        404,
        "not_found",
    )
    assert_problem(
        client.get(created["download_url"], follow_redirects=False), 404, "not_found"
    )
    assert_problem(
        client.delete(f"{user.recordings}/{created['id']}", headers=user.auth),
        404,
        "not_found",
    )


async def _object_exists(settings: Settings, key: str) -> bool:
    from service.app import build_store

    return await build_store(settings).exists(key)


async def _row_count(settings: Settings, recording_id: str) -> int:
    import uuid

    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Recording.id).where(Recording.id == uuid.UUID(recording_id))
            )
            return len(rows.all())
    finally:
        await engine.dispose()


def test_an_upload_cut_off_midway_leaves_nothing_behind(
    client: httpx.Client, user: ApiUser, service: RunningService
) -> None:
    wav = sine_wav(seconds=3)

    def cut_off() -> Iterator[bytes]:
        yield wav[:100_000]
        raise ConnectionAbortedError("the client gives up")

    with pytest.raises(ConnectionAbortedError):
        client.post(
            user.recordings,
            content=cut_off(),
            headers={**user.auth, "Content-Type": "audio/wav"},
        )

    after = client.post(
        user.recordings,
        content=wav,
        headers={**user.auth, "Content-Type": "audio/wav"},
    )
    assert after.status_code == 201, after.text
    listing = client.get(user.recordings, headers=user.auth).json()
    assert [item["id"] for item in listing["items"]] == [after.json()["id"]]
    work_dir = Path(service.env["AUDIOVAULT_DATA_DIR"]) / "tmp"
    assert not [path for path in work_dir.rglob("*") if path.is_file()]
