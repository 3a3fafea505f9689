"""What a conversion must produce, shared by the in-process and the pool tests."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from service.audio.types import Conversion, Limits
from service.errors import AudiovaultError, BadRequest, InvalidAudio, UnsupportedMedia
from tests.audio.audiocheck import (
    MP3_RATES,
    assert_same_audio,
    decode,
    duration_bounds,
    reference,
)

# The service's defaults: 20 channels and 1000 Hz must convert, 1 Hz must not.
LIMITS = Limits(max_duration_s=4 * 3600.0, min_sample_rate=1000, max_channels=32)

STATUS_ERRORS: dict[int, type[AudiovaultError]] = {
    400: BadRequest,
    415: UnsupportedMedia,
    422: InvalidAudio,
}

# Words each corpus refusal must contain, so that a vague message fails.
REASONS = {
    "mm_issue1163_protools_bwf_data_size_0.wav": "declared empty",
    "scipy_rifx_float32_be_stereo.wav": "RIFX",
    "scipy_rifx_s24_3ch_odd_data_pad.wav": "RIFX",
    "scipy_truncated_before_data_chunk.wav": "no data chunk",
    "scipy_pcm_36bit_3ch.wav": "36-bit",
    "hound_fuzz_huge_fmt_extradata.wav": "fmt chunk",
    "wavefile_gem_0_channels.wav": "0 channels",
    "wavefile_gem_0_sample_rate.wav": "0 Hz",
    "pydub_header_only_0_samples.wav": "no audio samples",
    "gen_bomb_1Hz_samplerate_10h_in_72KB.wav": "1000 Hz",
    "gen_wave64_content_named.wav": "Wave64",
    "gen_mp3_content_named.wav": "MP3",
    "gen_ogg_vorbis_content_named.wav": "Ogg",
    "gen_text_content_named.wav": "text",
}


class Pieces:
    """A read()-only source that hands out at most `piece` bytes per call."""

    def __init__(self, data: bytes, *, piece: int = 4099) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(self._piece if size < 0 else min(size, self._piece))


def suggested_status(entry: dict[str, Any]) -> int:
    """The status the manifest asks for a refused file."""
    found = re.search(r"suggested_status=(\d+)", entry["notes"])
    assert found, f"no suggested status for {entry['file']}"
    return int(found.group(1))


def check_converted(entry: dict[str, Any], data: bytes, result: Conversion) -> None:
    """Assert a manifest `convert` entry came out as the manifest says."""
    decoded, rate = decode(result.mp3_path, container_format="mp3")
    low, high = duration_bounds(entry["duration_s"], rate)
    assert low <= len(decoded) / rate <= high
    assert decoded.shape[1] == entry["channels_out"] == result.mp3.channels
    assert rate == result.mp3.sample_rate
    assert rate in MP3_RATES
    rate_out = re.search(r"sample_rate_out=(\d+)", entry["notes"])
    if rate_out:
        assert rate == int(rate_out.group(1))
    assert_same_audio(reference(data), (decoded, rate))
    check_facts(data, result)


def check_facts(data: bytes, result: Conversion) -> None:
    """Assert the reported sizes and checksums describe the actual bytes."""
    mp3 = result.mp3_path.read_bytes()
    assert result.mp3.size_bytes == len(mp3)
    assert result.mp3.checksum_sha256 == hashlib.sha256(mp3).hexdigest()
    assert result.source.size_bytes == len(data)
    assert result.source.checksum_sha256 == hashlib.sha256(data).hexdigest()
    assert abs(result.mp3.duration_s - result.source.duration_s) <= 0.1
    assert result.mp3.bitrate > 0


def check_refused(entry: dict[str, Any], error: AudiovaultError) -> None:
    """Assert a manifest `reject` entry was refused for the reason it deserves."""
    assert type(error) is STATUS_ERRORS[suggested_status(entry)], error.detail
    assert REASONS[entry["file"]] in error.detail
