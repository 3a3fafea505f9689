"""Hypothesis strategies for fuzzing the converter, and what every outcome must be.

Two families of uploads: WAVE files built from random header fields and chunk
layouts, and real files (the corpus, or tests/wavgen.py outputs when the
corpus is absent) that are truncated, have bytes flipped and sizes rewritten.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import av.error
from hypothesis import strategies as st

from service.audio.types import Conversion, Limits
from service.errors import AudiovaultError
from service.problems import STATUS_BY_CODE
from tests import wavgen
from tests.audio.audiocheck import MP3_RATES, decode, duration_bounds
from tests.audio.expect import check_facts
from tests.conftest import CORPUS

# Cases per property test: a few hundred in CI, thousands in a campaign.
EXAMPLES = int(os.environ.get("AUDIOVAULT_FUZZ_EXAMPLES", "200"))

# No case is more than a few hundred KB of audio; anything this slow is a hang.
HANG_S = 30.0

# Longer inputs are cut here before they are mutated, to keep each case quick.
MAX_BASE_BYTES = 48 * 1024

_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")

# Values header fields take when they lie, and the edges of what is accepted.
SIZES: tuple[int, ...] = (0, 1, 2, 3, 4, 8, 15, 16, 17, 18, 39, 40, 0x7FFF, 0xFFFF)
SIZES += (0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
TAGS: tuple[int, ...] = (0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031)
TAGS += (0x0055, 0x0000, 0x0050, 0x0160, 0x2000, 0xF1AC, 0xFFFE, 0xFFFF)
CHANNELS = (0, 1, 2, 3, 6, 8, 20, 32, 33, 255, 0xFFFF)
RATES: tuple[int, ...] = (0, 1, 999, 1000, 1234, 8000, 11025, 22050, 44100, 48000)
RATES += (96000, 384000, 7_999_999, 8_000_000, 8_000_001, 0x7FFFFFFF, 0xFFFFFFFF)
BITS = (0, 1, 4, 8, 12, 16, 20, 24, 32, 36, 48, 64, 0xFFFF)


def _usually(
    draw: st.DrawFn,
    usual: int,
    edges: tuple[int, ...],
    *,
    bits: int,
    odds: int = 5,
) -> int:
    """`usual`, except one time in `odds`: an edge value, or anything that fits."""
    # Small rolls keep the usual value, so that cases shrink towards it.
    roll = draw(st.integers(0, 4 * odds - 1))
    if roll < 4 * odds - 4:
        return usual
    if roll < 4 * odds - 1:
        return draw(st.sampled_from(edges))
    return draw(st.integers(0, (1 << bits) - 1))


@dataclasses.dataclass(frozen=True)
class Case:
    """One fuzz upload and how it was made (the bytes are left out of its repr)."""

    data: bytes = dataclasses.field(repr=False)
    recipe: str

    def __repr__(self) -> str:
        return f"Case({len(self.data)} bytes: {self.recipe})"


# Random headers and chunk layouts


def _fmt_and_data(wav: bytes) -> tuple[bytes, bytes]:
    """The fmt chunk body and the audio payload of a well-formed WAVE file."""
    parts: dict[bytes, bytes] = {}
    position = 12
    while position + 8 <= len(wav):
        (size,) = struct.unpack_from("<I", wav, position + 4)
        parts[wav[position : position + 4]] = wav[position + 8 : position + 8 + size]
        position += 8 + size + size % 2
    return parts[b"fmt "], parts[b"data"]


@functools.cache
def encodings() -> dict[str, tuple[bytes, bytes]]:
    """Real encodings to start from: fmt chunk body and matching audio bytes."""
    audio = wavgen.signal(0.1, 8000, 2)
    found: dict[str, tuple[bytes, bytes]] = {}
    for bits in (8, 16, 24, 32):
        found[f"pcm{bits}"] = _fmt_and_data(wavgen.pcm_wav(audio, 8000, bits=bits))
    for bits in (32, 64):
        found[f"float{bits}"] = _fmt_and_data(wavgen.float_wav(audio, 8000, bits=bits))
    found["extensible"] = _fmt_and_data(
        wavgen.extensible(audio, 8000, bits=32, valid_bits=24, mask=3)
    )
    found["5.1"] = _fmt_and_data(wavgen.surround_5_1(0.05, 8000))
    for codec in ("pcm_alaw", "pcm_mulaw", "adpcm_ima_wav", "adpcm_ms", "libmp3lame"):
        wav = wavgen.encoded_by_ffmpeg(audio, 8000, codec=codec, container="wav")
        found[codec] = _fmt_and_data(wav)
    return found


@st.composite
def _fmt_chunk_body(draw: st.DrawFn, fmt: bytes) -> bytes:
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", fmt
    )
    body = struct.pack(
        "<HHIIHH",
        _usually(draw, tag, TAGS, bits=16),
        _usually(draw, channels, CHANNELS, bits=16),
        _usually(draw, rate, RATES, bits=32),
        _usually(draw, byte_rate, SIZES, bits=32),
        _usually(draw, block_align, (0, 1, 2, 3, 4, 6, 65, 1024), bits=16),
        _usually(draw, bits, BITS, bits=16),
    )

    tail = draw(st.sampled_from(["keep", "keep", "none", "cb0", "extensible", "any"]))
    if tail == "keep":
        body += fmt[16:]
    elif tail == "cb0":
        body += b"\0\0"
    elif tail == "extensible":
        valid_bits = draw(st.sampled_from((0, 8, 16, 20, 24, 32, 33)))
        mask = draw(st.sampled_from((0, 3, 4, 0x3F, 0x3FFFF, 0xFFFFFFFF)))
        sub_tag = draw(st.sampled_from(TAGS))
        guid_tail = draw(st.sampled_from([_GUID_TAIL, bytes(14)]))
        body = struct.pack("<H", 0xFFFE) + body[2:]
        body += struct.pack("<HHIH", 22, valid_bits, mask, sub_tag) + guid_tail
    elif tail == "any":
        extra = draw(st.binary(max_size=40))
        cb_size = draw(st.sampled_from([len(extra), 0, 2, 22, 0xFFFF]))
        body += struct.pack("<H", cb_size) + extra
    return body


@st.composite
def _payload(draw: st.DrawFn, audio: bytes) -> bytes:
    kind = draw(st.sampled_from(["audio", "audio", "audio", "silence", "random"]))
    size = draw(st.integers(0, len(audio)))
    if kind == "silence":
        return bytes(size)
    if kind == "random":
        return draw(st.binary(min_size=min(size, 64), max_size=size))
    return audio[:size] if draw(st.booleans()) else audio


@st.composite
def _chunk(draw: st.DrawFn, chunk_id: bytes, body: bytes) -> bytes:
    size = _usually(draw, len(body), SIZES, bits=32, odds=10)
    pad = b"\0" * (len(body) % 2) if draw(st.integers(0, 3)) < 3 else b""
    return chunk_id + struct.pack("<I", size) + body + pad


@st.composite
def _other_chunk(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["ds64", "fact", "LIST", "JUNK", "bext", "any"]))
    if kind == "ds64":
        sizes = [_usually(draw, 0, SIZES, bits=64) for _ in range(3)]
        body = struct.pack("<QQQI", *sizes, 0)
        return draw(_chunk(b"ds64", body))
    if kind == "fact":
        frames = _usually(draw, 800, SIZES, bits=32)
        return draw(_chunk(b"fact", struct.pack("<I", frames)))
    if kind == "any":
        chunk_id = draw(st.binary(min_size=4, max_size=4))
        return draw(_chunk(chunk_id, draw(st.binary(max_size=64))))
    return draw(_chunk(kind.encode(), draw(st.binary(max_size=64))))


_MAGICS = (b"RF64", b"BW64", b"RIFX", b"riff", b"RIF\0")


@st.composite
def random_headers(draw: st.DrawFn) -> Case:
    """A WAVE file from random header fields and a random chunk layout.

    Fields start from a real encoding and are each replaced now and then, so
    that many cases get past the header checks and reach the decoder.
    """
    encoding = draw(st.sampled_from(sorted(encodings())))
    fmt, audio = encodings()[encoding]
    chunks = draw(st.lists(_other_chunk(), max_size=3))
    fmt_count = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    chunks += [
        draw(_chunk(b"fmt ", draw(_fmt_chunk_body(fmt)))) for _ in range(fmt_count)
    ]
    data_count = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    chunks += [draw(_chunk(b"data", draw(_payload(audio)))) for _ in range(data_count)]
    ordered = draw(st.permutations(chunks))
    body = b"WAVE" + b"".join(ordered)

    magic = b"RIFF" if draw(st.integers(0, 4)) < 4 else draw(st.sampled_from(_MAGICS))
    riff_size = _usually(draw, len(body), SIZES, bits=32)
    data = magic + struct.pack("<I", riff_size) + body
    if draw(st.integers(0, 9)) == 9:
        data += draw(st.binary(min_size=1, max_size=32))
    if draw(st.integers(0, 9)) == 9:
        data = data[: len(data) - draw(st.integers(0, len(data)))]
    recipe = f"{encoding}, {len(ordered)} chunks, {magic!r} size {riff_size:#x}"
    return Case(data, recipe)


# Mutations of real files


def _generated_bases() -> dict[str, Callable[[], bytes]]:
    stereo = wavgen.signal(0.2, 8000, 2)
    mono = wavgen.signal(0.2, 16000, 1)

    def coded(codec: str) -> Callable[[], bytes]:
        return lambda: wavgen.encoded_by_ffmpeg(
            stereo, 8000, codec=codec, container="wav"
        )

    return {
        "pcm_u8": lambda: wavgen.pcm_wav(mono, 16000, bits=8),
        "pcm_s16": lambda: wavgen.pcm_wav(stereo, 8000),
        "pcm_s24": lambda: wavgen.pcm_wav(stereo, 8000, bits=24),
        "float64": lambda: wavgen.float_wav(mono, 16000, bits=64),
        "sizes_ffffffff": lambda: wavgen.streaming_sizes_ffff(stereo, 8000),
        "sizes_zero": lambda: wavgen.streaming_sizes_zero(mono, 16000),
        "fmt_after_data": lambda: wavgen.fmt_after_data(stereo, 8000),
        "extensible_24_in_32": lambda: wavgen.extensible(
            mono, 16000, bits=32, valid_bits=24
        ),
        "rf64": lambda: wavgen.rf64(stereo, 8000),
        "bw64": lambda: wavgen.rf64(stereo, 8000, magic=b"BW64"),
        "odd_u8_pad_byte": lambda: wavgen.odd_u8_with_pad(mono, 16000),
        "metadata_before_fmt": lambda: wavgen.metadata_before_fmt(stereo, 8000),
        "20_bits": lambda: wavgen.twenty_bits(mono, 16000),
        "20_channels": lambda: wavgen.many_channels(0.05, 8000),
        "5.1": lambda: wavgen.surround_5_1(0.1, 8000),
        "empty_data_then_chunks": lambda: wavgen.empty_data_then_chunks(mono, 16000),
        "pcm_36_bits": wavgen.pcm_36_bits,
        "alaw": coded("pcm_alaw"),
        "mulaw": coded("pcm_mulaw"),
        "ima_adpcm": coded("adpcm_ima_wav"),
        "ms_adpcm": coded("adpcm_ms"),
        "mp3_in_wave": lambda: wavgen.encoded_by_ffmpeg(
            wavgen.signal(0.2, 22050, 2), 22050, codec="libmp3lame", container="wav"
        ),
    }


@functools.cache
def bases() -> dict[str, bytes]:
    """Files to mutate: every corpus file when the corpus is there, and wavgen's."""
    found = {f"wavgen:{name}": make() for name, make in _generated_bases().items()}
    folder = CORPUS / "wav"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            found[f"corpus:{path.name}"] = path.read_bytes()[:MAX_BASE_BYTES]
    return found


def _chunk_headers(data: bytes | bytearray) -> list[int]:
    """Offsets of the RIFF header and of every chunk header a walk finds."""
    offsets = [0]
    position = 12
    while position + 8 <= len(data):
        offsets.append(position)
        (size,) = struct.unpack_from("<I", data, position + 4)
        position += 8 + size + size % 2
    return offsets


def _fmt_fields(data: bytes | bytearray) -> list[tuple[int, int]]:
    """(offset, width) of each field of the first fmt chunk, extension included."""
    for offset in _chunk_headers(data)[1:]:
        if data[offset : offset + 4] == b"fmt ":
            start = offset + 8
            widths = (2, 2, 4, 4, 2, 2, 2, 2, 4, 2)
            fields = []
            for width in widths:
                fields.append((start, width))
                start += width
            return fields
    return []


_OP_KINDS = (
    "truncate",
    "flip",
    "set",
    "size",
    "field",
    "delete",
    "insert",
    "duplicate_chunk",
)
_Op = tuple[str, int, int, int]


def _op() -> st.SearchStrategy[_Op]:
    position = st.one_of(st.integers(0, 127), st.integers(0, 1 << 20))
    value = st.one_of(st.sampled_from(SIZES + RATES + TAGS), st.integers(0, 1 << 32))
    return st.tuples(
        st.sampled_from(_OP_KINDS),
        position,
        value,
        st.integers(0, 64),
    )


def mutate(data: bytes, ops: list[_Op]) -> bytes:
    """Apply mutations in order; every position is taken modulo what exists."""
    out = bytearray(data)
    for kind, at, value, extra in ops:
        if kind == "truncate":
            del out[at % (len(out) + 1) :]
        elif not out:
            continue
        elif kind == "flip":
            out[at % len(out)] ^= 1 << (extra % 8)
        elif kind == "set":
            width = (1, 2, 4)[extra % 3]
            where = at % len(out)
            out[where : where + width] = _le(value, width)
        elif kind == "size":
            headers = _chunk_headers(out)
            where = headers[at % len(headers)] + 4
            out[where : where + 4] = _le(value, 4)
        elif kind == "field":
            fields = _fmt_fields(out)
            if fields:
                where, width = fields[at % len(fields)]
                out[where : where + width] = _le(value, width)
        elif kind == "delete":
            where = at % len(out)
            del out[where : where + extra + 1]
        elif kind == "insert":
            where = at % (len(out) + 1)
            out[where:where] = _le(value, 4)[: extra % 5] * (1 + extra // 5)
        elif kind == "duplicate_chunk":
            headers = _chunk_headers(out)[1:]
            if headers:
                start = headers[at % len(headers)]
                (size,) = struct.unpack_from("<I", out, start + 4)
                piece = bytes(out[start : start + 8 + min(size, 4096)])
                out[start:start] = piece
    return bytes(out)


def _le(value: int, width: int) -> bytes:
    return (value % (1 << (8 * width))).to_bytes(width, "little")


@st.composite
def mutated_files(draw: st.DrawFn) -> Case:
    """A corpus or generated file, truncated, flipped and with sizes rewritten."""
    name = draw(st.sampled_from(sorted(bases())))
    ops = draw(st.lists(_op(), min_size=1, max_size=6))
    return Case(mutate(bases()[name], ops), f"{name} with {ops}")


def uploads() -> st.SearchStrategy[Case]:
    """Either family, for tests that sample both."""
    return random_headers() | mutated_files()


# What every outcome must be


class Hang(BaseException):
    """A case ran past HANG_S; BaseException so the converter cannot translate it."""


@contextmanager
def hang_deadline(seconds: float = HANG_S) -> Iterator[None]:
    """Interrupt the block once it runs for `seconds`."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no outcome after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_refusal(error: AudiovaultError) -> None:
    """A refusal is a 4xx with a detail, and not a bug dressed up as one."""
    status = STATUS_BY_CODE[error.code]
    assert 400 <= status < 500, (status, error.detail)
    assert error.detail.strip()
    cause = error.__cause__
    if cause is not None:
        # The decoder may refuse input; anything else is a fault of the service
        # that convert() turned into a 422.
        assert isinstance(cause, av.error.FFmpegError | MemoryError), repr(cause)


def check_conversion(data: bytes, result: Conversion, *, limits: Limits) -> None:
    """A conversion is a verified MP3 of the decoded length, within the limits."""
    check_facts(data, result)
    decoded, rate = decode(result.mp3_path, container_format="mp3")
    assert rate in MP3_RATES
    assert rate == result.mp3.sample_rate
    assert decoded.shape[1] == result.mp3.channels in (1, 2)
    low, high = duration_bounds(result.source.duration_s, rate)
    assert low <= len(decoded) / rate <= high
    assert result.source.duration_s <= limits.max_duration_s
    assert result.source.sample_rate >= limits.min_sample_rate
    assert result.source.channels <= limits.max_channels
