"""A sample of the fuzz uploads over real HTTP: a 201 with a good MP3, or a 4xx."""

from __future__ import annotations

import hashlib
import os

import httpx
from hypothesis import HealthCheck, event, given, settings

from tests.audio.audiocheck import MP3_RATES, decode, duration_bounds
from tests.audio.fuzzcases import Case, uploads
from tests.conftest import ApiUser
from tests.e2e.test_recordings import assert_problem, download

EXAMPLES = int(os.environ.get("AUDIOVAULT_FUZZ_HTTP_EXAMPLES", "50"))
REFUSALS = {400: "bad_request", 415: "unsupported_media", 422: "invalid_audio"}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=uploads())
def test_fuzz_upload_is_converted_or_refused(
    client: httpx.Client, user: ApiUser, case: Case
) -> None:
    # The client's timeout turns a hung conversion into a failure.
    response = client.post(
        user.recordings,
        content=case.data,
        headers={**user.auth, "Content-Type": "audio/wav"},
        timeout=60,
    )

    event(f"status {response.status_code}")
    if response.status_code != 201:
        status = response.status_code
        assert status in REFUSALS, response.text
        assert_problem(response, status, REFUSALS[status])
        assert "unexpectedly" not in response.json()["detail"]
        return
    recording = response.json()
    mp3 = download(client, recording).content
    assert hashlib.sha256(mp3).hexdigest() == recording["checksum_sha256"]
    decoded, rate = decode(mp3, container_format="mp3")
    assert rate == recording["sample_rate"] and rate in MP3_RATES
    assert decoded.shape[1] == recording["channels"] in (1, 2)
    low, high = duration_bounds(recording["source"]["duration_s"], rate)
    assert low <= len(decoded) / rate <= high
