"""Awkward WAVE files made by tests/wavgen.py through `convert`; no corpus needed."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from service.audio.convert import convert
from service.audio.types import Conversion, EncodeOptions, Limits
from service.errors import AudiovaultError, BadRequest, InvalidAudio, UnsupportedMedia
from tests import wavgen
from tests.audio.audiocheck import (
    MP3_RATES,
    assert_same_audio,
    decode,
    duration_bounds,
    reference,
)
from tests.audio.expect import LIMITS, Pieces, check_facts

STEREO = wavgen.signal(1.0, 44100, 2)
MONO = wavgen.signal(0.5, 16000, 1)


@dataclasses.dataclass(frozen=True)
class Converts:
    make: Callable[[], bytes]
    duration_s: float
    channels: int
    rate: int


def _ffmpeg(codec: str) -> Callable[[], bytes]:
    return lambda: wavgen.encoded_by_ffmpeg(STEREO, 44100, codec=codec, container="wav")


CONVERTS = {
    "pcm_u8": Converts(lambda: wavgen.pcm_wav(STEREO, 44100, bits=8), 1.0, 2, 44100),
    "pcm_s16": Converts(lambda: wavgen.pcm_wav(STEREO, 44100), 1.0, 2, 44100),
    "pcm_s24": Converts(lambda: wavgen.pcm_wav(STEREO, 44100, bits=24), 1.0, 2, 44100),
    "pcm_s32": Converts(lambda: wavgen.pcm_wav(STEREO, 44100, bits=32), 1.0, 2, 44100),
    "float32": Converts(lambda: wavgen.float_wav(STEREO, 44100), 1.0, 2, 44100),
    "float64": Converts(lambda: wavgen.float_wav(MONO, 16000, bits=64), 0.5, 1, 16000),
    "sizes_ffffffff": Converts(
        lambda: wavgen.streaming_sizes_ffff(STEREO, 44100), 1.0, 2, 44100
    ),
    "sizes_zero": Converts(
        lambda: wavgen.streaming_sizes_zero(MONO, 16000), 0.5, 1, 16000
    ),
    "data_beyond_end": Converts(
        lambda: wavgen.data_size_beyond_end(MONO, 16000), 0.5, 1, 16000
    ),
    "fmt_after_data": Converts(
        lambda: wavgen.fmt_after_data(STEREO, 44100), 1.0, 2, 44100
    ),
    "extensible_24_in_32": Converts(
        lambda: wavgen.extensible(MONO, 16000, bits=32, valid_bits=24), 0.5, 1, 16000
    ),
    "rf64": Converts(lambda: wavgen.rf64(STEREO, 44100), 1.0, 2, 44100),
    "bw64": Converts(lambda: wavgen.rf64(STEREO, 44100, magic=b"BW64"), 1.0, 2, 44100),
    "odd_u8_pad_byte": Converts(
        lambda: wavgen.odd_u8_with_pad(MONO, 16000), 0.5, 1, 16000
    ),
    "metadata_before_fmt": Converts(
        lambda: wavgen.metadata_before_fmt(STEREO, 44100), 1.0, 2, 44100
    ),
    "wrong_block_align": Converts(
        lambda: wavgen.wrong_block_align(STEREO, 44100), 1.0, 2, 44100
    ),
    "20_bits_in_3_bytes": Converts(
        lambda: wavgen.twenty_bits(MONO, 16000), 0.5, 1, 16000
    ),
    "alaw": Converts(_ffmpeg("pcm_alaw"), 1.0, 2, 44100),
    "mulaw": Converts(_ffmpeg("pcm_mulaw"), 1.0, 2, 44100),
    "ima_adpcm": Converts(_ffmpeg("adpcm_ima_wav"), 1.0, 2, 44100),
    "ms_adpcm": Converts(_ffmpeg("adpcm_ms"), 1.0, 2, 44100),
    "mp3_in_wave": Converts(_ffmpeg("libmp3lame"), 1.0, 2, 44100),
    "20_channels": Converts(lambda: wavgen.many_channels(0.5, 44100), 0.5, 2, 44100),
    "5.1": Converts(lambda: wavgen.surround_5_1(0.5, 48000), 0.5, 2, 48000),
    "1000_hz_up_to_8000": Converts(
        lambda: wavgen.pcm_wav(wavgen.signal(1.0, 1000), 1000), 1.0, 1, 8000
    ),
    "96000_hz_down_to_48000": Converts(
        lambda: wavgen.pcm_wav(wavgen.signal(0.5, 96000, 2), 96000), 0.5, 2, 48000
    ),
    "30000_hz_to_nearest_32000": Converts(
        lambda: wavgen.pcm_wav(wavgen.signal(0.5, 30000), 30000), 0.5, 1, 32000
    ),
    "one_sample": Converts(lambda: wavgen.tiny(1, 48000), 0.0, 1, 48000),
    "three_samples_resampled": Converts(lambda: wavgen.tiny(3, 96000), 0.0, 1, 48000),
    "ten_samples_at_1234_hz": Converts(
        lambda: wavgen.tiny(10, 1234, bits=24), 0.01, 1, 8000
    ),
}

REFUSES: dict[str, tuple[Callable[[], bytes], type[AudiovaultError], str]] = {
    "empty_data_then_chunks": (
        lambda: wavgen.empty_data_then_chunks(MONO, 48000),
        InvalidAudio,
        "declared empty",
    ),
    "header_only": (wavgen.header_only, InvalidAudio, "no audio samples"),
    "no_data_chunk": (wavgen.no_data_chunk, InvalidAudio, "no data chunk"),
    "zero_channels": (wavgen.zero_channels, InvalidAudio, "0 channels"),
    "zero_hz": (wavgen.zero_rate, InvalidAudio, "0 Hz"),
    "20_mhz": (wavgen.absurd_sample_rate, InvalidAudio, "above the highest"),
    "unreadable_form_type": (
        wavgen.unreadable_form_type,
        BadRequest,
        "form type is not WAVE",
    ),
    "huge_fmt_size": (wavgen.huge_fmt_size, BadRequest, "fmt chunk"),
    "truncated_fmt": (wavgen.truncated_fmt, BadRequest, "fmt chunk"),
    "wma_tag": (wavgen.unsupported_tag, UnsupportedMedia, "WMA v1"),
    "pcm_36_bits": (wavgen.pcm_36_bits, UnsupportedMedia, "36-bit"),
    "rifx": (lambda: wavgen.rifx(STEREO, 44100), UnsupportedMedia, "RIFX"),
    "text": (wavgen.not_wave_text, UnsupportedMedia, "text"),
    "garbage": (wavgen.not_wave_garbage, BadRequest, "not a RIFF"),
    "four_bytes": (lambda: b"RIFF", BadRequest, "too short"),
    "empty_upload": (lambda: b"", BadRequest, "too short"),
    "wave64": (
        lambda: wavgen.not_wave_wave64(STEREO, 44100),
        UnsupportedMedia,
        "Wave64",
    ),
    "avi": (wavgen.riff_not_wave, UnsupportedMedia, "AVI"),
    "mp3": (
        lambda: wavgen.encoded_by_ffmpeg(
            STEREO, 44100, codec="libmp3lame", container="mp3"
        ),
        UnsupportedMedia,
        "MP3",
    ),
    "ogg": (
        lambda: wavgen.encoded_by_ffmpeg(
            wavgen.signal(0.5, 48000, 2), 48000, codec="libopus", container="ogg"
        ),
        UnsupportedMedia,
        "Ogg",
    ),
    "flac": (
        lambda: wavgen.encoded_by_ffmpeg(STEREO, 44100, codec="flac", container="flac"),
        UnsupportedMedia,
        "FLAC",
    ),
    "aiff": (
        lambda: wavgen.encoded_by_ffmpeg(
            STEREO, 44100, codec="pcm_s16be", container="aiff"
        ),
        UnsupportedMedia,
        "AIFF",
    ),
    "1_hz_bomb": (wavgen.low_rate_bomb, InvalidAudio, "below the limit of 1000 Hz"),
    "over_channel_limit": (
        lambda: wavgen.many_channels(0.1, 8000, channels=40),
        InvalidAudio,
        "the limit is 32 channels",
    ),
}


def _convert(
    data: bytes,
    work_dir: Path,
    *,
    options: EncodeOptions | None = None,
    limits: Limits = LIMITS,
    piece: int = 4099,
) -> Conversion:
    return convert(
        Pieces(data, piece=piece),
        mp3_path=work_dir / "out.mp3",
        options=options or EncodeOptions(),
        limits=limits,
        work_dir=work_dir,
    )


@pytest.mark.parametrize("kind", list(CONVERTS))
def test_awkward_file_converts_to_the_same_audio(kind: str, tmp_path: Path) -> None:
    case = CONVERTS[kind]
    data = case.make()

    result = _convert(data, tmp_path)

    decoded, rate = decode(result.mp3_path, container_format="mp3")
    low, high = duration_bounds(case.duration_s, rate)
    assert low <= len(decoded) / rate <= high
    assert decoded.shape[1] == result.mp3.channels == case.channels
    assert rate == result.mp3.sample_rate == case.rate
    assert rate in MP3_RATES
    assert_same_audio(reference(data), (decoded, rate))
    check_facts(data, result)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp3"]


@pytest.mark.parametrize("kind", list(REFUSES))
def test_awkward_file_is_refused_for_its_reason(kind: str, tmp_path: Path) -> None:
    make, error_class, reason = REFUSES[kind]

    with pytest.raises(AudiovaultError) as caught:
        _convert(make(), tmp_path)

    assert type(caught.value) is error_class
    assert reason in caught.value.detail
    assert list(tmp_path.iterdir()) == []


def test_the_duration_limit_counts_decoded_audio(tmp_path: Path) -> None:
    # The header claims far less than the file holds: only the samples count.
    data = wavgen.streaming_sizes_zero(wavgen.signal(2.0, 8000), 8000)
    limits = dataclasses.replace(LIMITS, max_duration_s=1.5)

    with pytest.raises(InvalidAudio, match=r"longer than the limit of 1\.5 s"):
        _convert(data, tmp_path, limits=limits)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("piece", [1, 7, 65536])
def test_any_read_size_gives_the_same_result(piece: int, tmp_path: Path) -> None:
    data = wavgen.fmt_after_data(wavgen.signal(0.1, 8000, 2), 8000)
    (tmp_path / "whole").mkdir()
    whole = _convert(data, tmp_path / "whole", piece=len(data))

    result = _convert(data, tmp_path, piece=piece)

    assert result.source == whole.source
    assert result.mp3.checksum_sha256 == whole.mp3.checksum_sha256


def test_vbr_reports_its_average_bitrate(tmp_path: Path) -> None:
    data = wavgen.pcm_wav(STEREO, 44100)

    result = _convert(data, tmp_path, options=EncodeOptions(quality=2))

    audio_bits = result.mp3.size_bytes * 8
    assert 32_000 <= result.mp3.bitrate <= 320_000
    assert result.mp3.bitrate == pytest.approx(audio_bits / result.mp3.duration_s, 0.1)


def test_a_bitrate_the_output_rate_cannot_carry_is_lowered(tmp_path: Path) -> None:
    data = wavgen.pcm_wav(MONO, 16000)

    result = _convert(data, tmp_path, options=EncodeOptions(bitrate_kbps=320))

    assert result.mp3.sample_rate == 16000
    assert result.mp3.bitrate <= 160_000


def test_every_short_noise_burst_converts(tmp_path: Path) -> None:
    # About one in fifty of these MP3s (two frames) once failed verification:
    # FFmpeg's content probe took them for raw video with no audio stream.
    for seed in range(60):
        data = wavgen.noise_burst(220, 44100, seed=seed)
        work_dir = tmp_path / str(seed)
        work_dir.mkdir()

        result = _convert(data, work_dir)

        check_facts(data, result)
        assert result.mp3.channels == 1


class _Broken:
    def __init__(self, data: bytes) -> None:
        self._pieces = Pieces(data)

    def read(self, size: int = -1, /) -> bytes:
        data = self._pieces.read(size)
        if not data:
            raise ConnectionAbortedError("client went away")
        return data


def test_a_failing_source_passes_its_own_error_through(tmp_path: Path) -> None:
    data = wavgen.pcm_wav(STEREO, 44100)[:50_000]

    with pytest.raises(ConnectionAbortedError, match="client went away"):
        convert(
            _Broken(data),
            mp3_path=tmp_path / "out.mp3",
            options=EncodeOptions(),
            limits=LIMITS,
            work_dir=tmp_path,
        )

    assert list(tmp_path.iterdir()) == []


def test_a_failed_conversion_leaves_no_thread_behind(tmp_path: Path) -> None:
    # Long enough that the encoder still has PCM queued when decoding stops.
    data = wavgen.pcm_wav(wavgen.signal(10.0, 44100, 2), 44100)
    limits = dataclasses.replace(LIMITS, max_duration_s=5.0)
    before = set(threading.enumerate())

    with pytest.raises(InvalidAudio, match="longer than the limit"):
        _convert(data, tmp_path, limits=limits)
    with pytest.raises(ConnectionAbortedError):
        convert(
            _Broken(data[: len(data) // 2]),
            mp3_path=tmp_path / "out.mp3",
            options=EncodeOptions(),
            limits=LIMITS,
            work_dir=tmp_path,
        )

    assert set(threading.enumerate()) == before
    assert list(tmp_path.iterdir()) == []
