"""The streaming WAVE reader: what reaches the decoder, and how early it refuses."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from service.audio.wave import WaveStream, open_wave
from service.errors import InvalidAudio, UnsupportedMedia
from tests import wavgen
from tests.audio.expect import Pieces

MONO = wavgen.signal(0.1, 8000)


class Counting(Pieces):
    """Pieces that remembers how many bytes were asked for and handed out."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, piece=3)
        self.handed_out = 0

    def read(self, size: int = -1, /) -> bytes:
        data = super().read(size)
        self.handed_out += len(data)
        return data


def _payload(stream: WaveStream) -> bytes:
    everything = b""
    while data := stream.read(1000):
        everything += data
    header_size = everything.index(b"data") + 8
    return everything[header_size:]


def test_the_pad_byte_and_later_chunks_are_not_audio(tmp_path: Path) -> None:
    data = wavgen.odd_u8_with_pad(MONO, 8000)
    declared = struct.unpack_from("<I", data, data.index(b"data") + 4)[0]

    payload = _payload(open_wave(Pieces(data), spool_dir=tmp_path))

    assert declared % 2 == 1
    assert len(payload) == declared
    assert payload == wavgen.samples_bytes(MONO[:declared], bits=8)


def test_the_decoder_gets_a_canonical_fmt_chunk(tmp_path: Path) -> None:
    data = wavgen.extensible(MONO, 8000, bits=32, valid_bits=24)

    stream = open_wave(Pieces(data), spool_dir=tmp_path)
    head = stream.read(44)

    tag, channels, rate, byte_rate, align, bits = struct.unpack_from(
        "<HHIIHH", head, 20
    )
    assert (tag, channels, rate, byte_rate, align, bits) == (1, 1, 8000, 32000, 4, 32)
    assert stream.format.description == "24-bit integer PCM in 32-bit words"


def test_audio_before_fmt_is_spooled_and_replayed(tmp_path: Path) -> None:
    data = wavgen.fmt_after_data(MONO, 8000)

    payload = _payload(open_wave(Pieces(data), spool_dir=tmp_path))

    assert payload == wavgen.samples_bytes(MONO, bits=16)
    assert list(tmp_path.iterdir()) == []  # the spool file has no name


def test_a_data_size_of_zero_at_the_end_means_up_to_the_end(tmp_path: Path) -> None:
    data = wavgen.streaming_sizes_zero(MONO, 8000)

    payload = _payload(open_wave(Pieces(data), spool_dir=tmp_path))

    assert payload == wavgen.samples_bytes(MONO, bits=16)


def test_rf64_takes_the_data_size_from_ds64(tmp_path: Path) -> None:
    data = wavgen.rf64(MONO, 8000) + wavgen.chunk(b"LIST", b"INFOtrailing")

    payload = _payload(open_wave(Pieces(data), spool_dir=tmp_path))

    assert payload == wavgen.samples_bytes(MONO, bits=16)


def test_non_wave_content_is_refused_after_the_first_twelve_bytes(
    tmp_path: Path,
) -> None:
    source = Counting(wavgen.not_wave_text() * 1000)

    with pytest.raises(UnsupportedMedia):
        open_wave(source, spool_dir=tmp_path)

    assert source.handed_out == 12


def test_an_empty_data_chunk_with_chunks_after_it_is_refused_there(
    tmp_path: Path,
) -> None:
    data = wavgen.empty_data_then_chunks(MONO, 8000)
    source = Counting(data)

    with pytest.raises(InvalidAudio, match="declared empty"):
        open_wave(source, spool_dir=tmp_path)

    assert source.handed_out == data.index(b"regn") + 8
