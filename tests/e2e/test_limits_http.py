"""The audio limits are settings, enforced on the decoded audio, named when hit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import wavgen
from tests.conftest import ApiUser
from tests.e2e.test_recordings import assert_problem
from tests.server import running_service

LIMITS = {
    "AUDIOVAULT_MAX_DURATION_S": "2",
    "AUDIOVAULT_MIN_SAMPLE_RATE": "8000",
    "AUDIOVAULT_MAX_CHANNELS": "2",
}


@pytest.fixture(scope="module")
def strict_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client on a service whose limits are low enough to hit cheaply."""
    data_dir = tmp_path_factory.mktemp("limits")
    env = {"AUDIOVAULT_DATA_DIR": str(data_dir), "AUDIOVAULT_WORKERS": "1", **LIMITS}
    with (
        running_service(env, log_path=data_dir / "service.log") as service,
        httpx.Client(base_url=service.base_url, timeout=120) as http,
    ):
        yield http


def _upload(client: httpx.Client, data: bytes) -> httpx.Response:
    user = ApiUser(client)
    return client.post(
        user.recordings,
        content=data,
        headers={**user.auth, "Content-Type": "audio/wav"},
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(
            # Sizes 0 in the header: only the decoded samples tell the length.
            wavgen.streaming_sizes_zero(wavgen.signal(3.0, 8000), 8000),
            "longer than the limit of 2 s",
            id="duration",
        ),
        pytest.param(
            wavgen.pcm_wav(wavgen.signal(0.5, 4000), 4000),
            "sample rate of 4000 Hz is below the limit of 8000 Hz",
            id="sample_rate",
        ),
        pytest.param(
            wavgen.surround_5_1(0.2, 8000),
            "6 channels; the limit is 2 channels",
            id="channels",
        ),
    ],
)
def test_a_limit_hit_is_named_with_its_value(
    strict_client: httpx.Client, data: bytes, reason: str
) -> None:
    response = _upload(strict_client, data)

    assert_problem(response, 422, "invalid_audio")
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(wavgen.pcm_wav(wavgen.signal(1.9, 8000, 2), 8000), id="at_limits"),
        pytest.param(
            # The header declares hours of audio; one second is there.
            wavgen.data_size_beyond_end(wavgen.signal(1.0, 8000), 8000),
            id="header_declares_hours",
        ),
    ],
)
def test_audio_within_the_limits_converts(
    strict_client: httpx.Client, data: bytes
) -> None:
    response = _upload(strict_client, data)

    assert response.status_code == 201, response.text
    assert response.json()["source"]["duration_s"] < 2
