"""The audio comparison itself must fail on silence, noise and known wrong decodes."""

from __future__ import annotations

import numpy as np
import pytest

from tests import wavgen
from tests.audio.audiocheck import assert_same_audio, decode, read_linear_wav
from tests.conftest import CORPUS, needs_corpus

RATE = 22050
AUDIO = wavgen.signal(1.0, RATE, 2)


def test_the_same_audio_passes() -> None:
    assert_same_audio((AUDIO, RATE), (AUDIO * 0.9, RATE))


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(np.zeros_like(AUDIO), id="silence"),
        pytest.param(
            np.random.default_rng(1).uniform(-0.3, 0.3, AUDIO.shape), id="noise"
        ),
        pytest.param(AUDIO / 256, id="quiet"),
        pytest.param(wavgen.signal(1.0, RATE, 2)[::-1].copy(), id="reversed"),
        pytest.param(np.roll(AUDIO, RATE // 8, axis=0), id="shifted"),
    ],
)
def test_wrong_audio_fails(wrong: np.ndarray) -> None:
    with pytest.raises(AssertionError):
        assert_same_audio((AUDIO, RATE), (wrong, RATE))


def test_the_numpy_reader_decodes_what_was_written() -> None:
    data = wavgen.extensible(AUDIO[:, :1], RATE, bits=32, valid_bits=24)

    decoded = read_linear_wav(data)

    assert decoded is not None
    assert np.allclose(decoded[0], AUDIO[:, :1], atol=1e-6)


@needs_corpus
def test_the_decoders_known_mistake_would_be_caught() -> None:
    # FFmpeg reads 24 valid bits in 32 as float; the check must notice.
    data = (
        CORPUS / "wav" / "wavefile_gem_extensible_24valid_in_32bit.wav"
    ).read_bytes()
    right = read_linear_wav(data)
    assert right is not None

    with pytest.raises(AssertionError):
        assert_same_audio(right, decode(data))
