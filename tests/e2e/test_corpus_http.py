"""Every corpus file through real HTTP, converted or refused as the manifest says."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio.audiocheck import (
    MP3_RATES,
    assert_same_audio,
    decode,
    duration_bounds,
    reference,
)
from tests.audio.expect import REASONS, suggested_status
from tests.conftest import CORPUS, ApiUser, corpus_manifest, needs_corpus
from tests.e2e.test_recordings import assert_problem, download

ENTRIES = corpus_manifest()
CODES = {400: "bad_request", 415: "unsupported_media", 422: "invalid_audio"}


def _upload(client: httpx.Client, user: ApiUser, entry: dict[str, Any]) -> Any:
    path = CORPUS / "wav" / entry["file"]
    with path.open("rb") as file:
        return client.post(
            user.recordings,
            files={"file": (entry["file"], file, "audio/wav")},
            headers=user.auth,
        )


@needs_corpus
@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["file"] for entry in ENTRIES])
def test_corpus_file_over_http(
    client: httpx.Client, user: ApiUser, entry: dict[str, Any]
) -> None:
    data = (CORPUS / "wav" / entry["file"]).read_bytes()

    response = _upload(client, user, entry)

    if entry["expect"] == "reject":
        _check_refused(response, entry)
        listing = client.get(user.recordings, headers=user.auth).json()
        assert listing["items"] == []
    else:
        _check_converted(client, response, entry, data)


def _check_refused(response: httpx.Response, entry: dict[str, Any]) -> None:
    status = suggested_status(entry)
    assert_problem(response, status, CODES[status])
    assert REASONS[entry["file"]] in response.json()["detail"]


def _check_converted(
    client: httpx.Client,
    response: httpx.Response,
    entry: dict[str, Any],
    data: bytes,
) -> None:
    assert response.status_code == 201, response.text
    recording = response.json()
    assert recording["filename"] == Path(entry["file"]).stem + ".mp3"
    assert recording["source"]["size_bytes"] == len(data)
    assert recording["source"]["checksum_sha256"] == hashlib.sha256(data).hexdigest()

    mp3 = download(client, recording).content

    assert hashlib.sha256(mp3).hexdigest() == recording["checksum_sha256"]
    assert len(mp3) == recording["size_bytes"]
    decoded, rate = decode(mp3, container_format="mp3")
    assert rate in MP3_RATES
    assert rate == recording["sample_rate"]
    rate_out = re.search(r"sample_rate_out=(\d+)", entry["notes"])
    if rate_out:
        assert rate == int(rate_out.group(1))
    assert decoded.shape[1] == entry["channels_out"] == recording["channels"]
    low, high = duration_bounds(entry["duration_s"], rate)
    assert low <= len(decoded) / rate <= high
    assert abs(recording["duration_s"] - len(decoded) / rate) < 0.06
    assert_same_audio(reference(data), (decoded, rate))
