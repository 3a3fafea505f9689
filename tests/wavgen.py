"""Generators of awkward WAVE (and not-WAVE) uploads, one function per kind.

Each returns the bytes of one upload. The audio is a deterministic plucked
chord (`signal`), so a test can tell the converted audio from silence or noise.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import numpy.typing as npt

Signal = npt.NDArray[np.float64]

PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


# Building blocks


def signal(seconds: float, rate: int, channels: int = 1) -> Signal:
    """A plucked chord: a note every 0.25 s decaying, one pitch per channel."""
    count = max(1, round(seconds * rate))
    t = np.arange(count) / rate
    envelope = np.exp(-12.0 * (t % 0.25))
    nyquist = rate / 2
    columns = []
    for channel in range(channels):
        pitch = 220.0 * 2 ** (channel * 4 / 12)
        pitch = pitch if pitch < nyquist * 0.8 else nyquist * 0.3
        columns.append(0.6 * envelope * np.sin(2 * np.pi * pitch * t + channel))
    return np.stack(columns, axis=1)


def samples_bytes(audio: Signal, *, bits: int, is_float: bool = False) -> bytes:
    """Little-endian interleaved samples; 8-bit integers are unsigned, as in WAVE."""
    flat = audio.reshape(-1)
    if is_float:
        return bytes(flat.astype("<f4" if bits == 32 else "<f8").tobytes())
    if bits == 8:
        return bytes(np.round(flat * 127 + 128).astype(np.uint8).tobytes())
    scaled = np.round(flat * (2 ** (bits - 1) - 1)).astype("<i8")
    if bits in (16, 32):
        return bytes(scaled.astype("<i2" if bits == 16 else "<i4").tobytes())
    # 24 bits: the low three bytes of each little-endian 32-bit value.
    return bytes(scaled.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes())


def chunk(chunk_id: bytes, body: bytes, *, size: int | None = None) -> bytes:
    """A RIFF chunk with its pad byte; `size` overrides the declared size."""
    declared = len(body) if size is None else size
    return chunk_id + struct.pack("<I", declared) + body + b"\0" * (len(body) % 2)


def fmt_body(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    *,
    block_align: int | None = None,
    byte_rate: int | None = None,
    valid_bits: int | None = None,
    mask: int = 0,
    sub_tag: int | None = None,
) -> bytes:
    """A `fmt ` chunk body; EXTENSIBLE when `sub_tag` is given."""
    align = channels * bits // 8 if block_align is None else block_align
    rate_bytes = rate * align if byte_rate is None else byte_rate
    head = struct.pack(
        "<HHIIHH",
        EXTENSIBLE if sub_tag is not None else tag,
        channels,
        rate,
        rate_bytes,
        align,
        bits,
    )
    if sub_tag is None:
        return head
    valid = bits if valid_bits is None else valid_bits
    return (
        head
        + struct.pack("<HHI", 22, valid, mask)
        + struct.pack("<H", sub_tag)
        + _GUID_TAIL
    )


def riff(*chunks: bytes, magic: bytes = b"RIFF", size: int | None = None) -> bytes:
    """A WAVE file from chunks; `size` overrides the RIFF size."""
    body = b"WAVE" + b"".join(chunks)
    declared = len(body) if size is None else size
    return magic + struct.pack("<I", declared) + body


def pcm_wav(audio: Signal, rate: int, *, bits: int = 16) -> bytes:
    """A plain, correct integer PCM WAVE file."""
    channels = audio.shape[1]
    return riff(
        chunk(b"fmt ", fmt_body(PCM, channels, rate, bits)),
        chunk(b"data", samples_bytes(audio, bits=bits)),
    )


# Kinds that must convert


def float_wav(audio: Signal, rate: int, *, bits: int = 32) -> bytes:
    """IEEE float samples, format tag 3."""
    return riff(
        chunk(b"fmt ", fmt_body(FLOAT, audio.shape[1], rate, bits)),
        chunk(b"data", samples_bytes(audio, bits=bits, is_float=True)),
    )


def streaming_sizes_ffff(audio: Signal, rate: int) -> bytes:
    """RIFF and data sizes 0xFFFFFFFF, as ffmpeg writes to a pipe."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 16)),
        chunk(b"data", samples_bytes(audio, bits=16), size=0xFFFFFFFF),
        size=0xFFFFFFFF,
    )


def streaming_sizes_zero(audio: Signal, rate: int) -> bytes:
    """RIFF and data sizes 0: a recorder that never patched its header."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 16)),
        chunk(b"data", samples_bytes(audio, bits=16), size=0),
        size=0,
    )


def data_size_beyond_end(audio: Signal, rate: int) -> bytes:
    """A data chunk that declares far more than the file holds (truncated upload)."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 16)),
        chunk(b"data", samples_bytes(audio, bits=16), size=0x7FFFFFFF),
        size=0x7FFFFFFF,
    )


def fmt_after_data(audio: Signal, rate: int) -> bytes:
    """The data chunk comes before the fmt chunk."""
    return riff(
        chunk(b"data", samples_bytes(audio, bits=16)),
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 16)),
    )


def extensible(
    audio: Signal, rate: int, *, bits: int, valid_bits: int, mask: int = 0
) -> bytes:
    """WAVE_FORMAT_EXTENSIBLE integer PCM (e.g. 24 valid bits in 32)."""
    channels = audio.shape[1]
    body = fmt_body(
        PCM, channels, rate, bits, valid_bits=valid_bits, mask=mask, sub_tag=PCM
    )
    # Samples left-justified: the valid bits are the high ones, low bits zero.
    ints = np.round(audio.reshape(-1) * (2 ** (valid_bits - 1) - 1)).astype("<i8")
    words = (ints << (bits - valid_bits)).astype("<i4" if bits == 32 else "<i2")
    return riff(chunk(b"fmt ", body), chunk(b"data", words.tobytes()))


def rf64(audio: Signal, rate: int, *, magic: bytes = b"RF64") -> bytes:
    """RF64 (or BW64) with a ds64 chunk and 0xFFFFFFFF in the 32-bit sizes."""
    data = samples_bytes(audio, bits=16)
    channels = audio.shape[1]
    fmt = chunk(b"fmt ", fmt_body(PCM, channels, rate, 16))
    riff_size = 4 + 36 + len(fmt) + 8 + len(data)
    ds64 = chunk(b"ds64", struct.pack("<QQQI", riff_size, len(data), len(audio), 0))
    return riff(
        ds64, fmt, chunk(b"data", data, size=0xFFFFFFFF), magic=magic, size=0xFFFFFFFF
    )


def odd_u8_with_pad(audio: Signal, rate: int) -> bytes:
    """8-bit PCM with an odd data size, a loud pad byte, then an odd JUNK chunk."""
    data = samples_bytes(audio[: len(audio) // 2 * 2 - 1], bits=8)
    return riff(
        chunk(b"LIST", b"INFOICMT\x03\0\0\0ab\0"),
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 8)),
        b"data" + struct.pack("<I", len(data)) + data + b"\xff",
        chunk(b"JUNK", b"123456789"),
    )


def metadata_before_fmt(audio: Signal, rate: int) -> bytes:
    """JUNK, bext, odd-sized LIST and id3 chunks before fmt."""
    return riff(
        chunk(b"JUNK", bytes(28)),
        chunk(b"bext", b"neutral description".ljust(602, b"\0")),
        chunk(b"LIST", b"INFOICMT\x05\0\0\0text\0"),
        chunk(b"id3 ", b"ID3\x03\0\0\0\0\0\0"),
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 16)),
        chunk(b"data", samples_bytes(audio, bits=16)),
    )


def wrong_block_align(audio: Signal, rate: int) -> bytes:
    """16-bit PCM whose block align and byte rate disagree with its bits."""
    body = fmt_body(PCM, audio.shape[1], rate, 16, block_align=1, byte_rate=1000)
    return riff(chunk(b"fmt ", body), chunk(b"data", samples_bytes(audio, bits=16)))


def twenty_bits(audio: Signal, rate: int) -> bytes:
    """Plain PCM declaring 20 bits per sample in 3-byte words."""
    channels = audio.shape[1]
    body = fmt_body(PCM, channels, rate, 20, block_align=3 * channels)
    ints = np.round(audio.reshape(-1) * (2**19 - 1)).astype("<i4") << 4
    data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return riff(chunk(b"fmt ", body), chunk(b"data", data))


def many_channels(seconds: float, rate: int, *, channels: int = 20) -> bytes:
    """EXTENSIBLE PCM with more channels than its mask (every defined speaker) names."""
    mask = 0x3FFFF
    return extensible(
        signal(seconds, rate, channels), rate, bits=16, valid_bits=16, mask=mask
    )


def surround_5_1(seconds: float, rate: int) -> bytes:
    """EXTENSIBLE 16-bit 5.1 with channel mask 0x3F."""
    audio = signal(seconds, rate, 6)
    return extensible(audio, rate, bits=16, valid_bits=16, mask=0x3F)


def tiny(samples: int, rate: int, *, bits: int = 16) -> bytes:
    """A handful of samples (resamplers may return none of them)."""
    audio = np.full((samples, 1), 0.5)
    return pcm_wav(audio, rate, bits=bits)


def noise_burst(samples: int, rate: int, *, seed: int, bits: int = 32) -> bytes:
    """A few ms of loud white noise: its MP3 of a frame or two can fool a probe."""
    audio = np.random.default_rng(seed).uniform(-1.0, 1.0, (samples, 1))
    return pcm_wav(audio, rate, bits=bits)


def low_rate_bomb(seconds: float = 36000.0, rate: int = 1) -> bytes:
    """A valid header at 1 Hz: a few KB that decode to hours of audio."""
    return pcm_wav(signal(seconds, rate), rate)


def encoded_by_ffmpeg(audio: Signal, rate: int, *, codec: str, container: str) -> bytes:
    """Audio encoded by FFmpeg (A-law, mu-law, ADPCM, MP3 in WAVE; or not WAVE)."""
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono" if audio.shape[1] == 1 else "stereo"
        step = 1024
        for start in range(0, len(audio), step):
            part = np.ascontiguousarray(audio[start : start + step].T, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(
                part, format="fltp", layout=stream.layout
            )
            frame.sample_rate = rate
            frame.pts = start
            muxer.mux(stream.encode(frame))
        muxer.mux(stream.encode(None))
    return out.getvalue()


# Kinds that must be refused


def empty_data_then_chunks(audio: Signal, rate: int) -> bytes:
    """Data declared empty with chunks after it (Pro Tools BWF): no audio."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, audio.shape[1], rate, 24)),
        chunk(b"data", b""),
        chunk(b"regn", samples_bytes(audio, bits=24)),
        chunk(b"umid", bytes(64)),
        size=28_500_000,
    )


def header_only(rate: int = 16000) -> bytes:
    """A valid header and an empty data chunk at the end of the file."""
    return riff(chunk(b"fmt ", fmt_body(PCM, 1, rate, 16)), chunk(b"data", b""))


def no_data_chunk(rate: int = 44100) -> bytes:
    """The file ends after fmt and fact."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, 1, rate, 16)),
        chunk(b"fact", struct.pack("<I", 4410)),
    )


def zero_channels(rate: int = 44100) -> bytes:
    """fmt declares 0 channels."""
    body = fmt_body(PCM, 0, rate, 16, block_align=4, byte_rate=rate * 4)
    return riff(chunk(b"fmt ", body), chunk(b"data", bytes(400)))


def zero_rate() -> bytes:
    """fmt declares 0 Hz."""
    return riff(
        chunk(b"fmt ", fmt_body(PCM, 1, 0, 16, byte_rate=88200)),
        chunk(b"data", bytes(400)),
    )


def absurd_sample_rate(rate: int = 20_000_000) -> bytes:
    """A header at tens of MHz: a resampler would need gigabytes for it."""
    return riff(chunk(b"fmt ", fmt_body(PCM, 1, rate, 16)), chunk(b"data", bytes(4000)))


def unreadable_form_type() -> bytes:
    """RIFF whose form type is binary junk instead of WAVE."""
    data = pcm_wav(signal(0.01, 8000), 8000)
    return data[:8] + b"\x00\x01\xfe\xff" + data[12:]


def huge_fmt_size() -> bytes:
    """A fmt chunk that claims megabytes in a file of a few bytes (fuzzer find)."""
    return b"RIFF\x50\x49\x46\x46WAVEfmt \x00\x00\x27\x00" + bytes(12)


def truncated_fmt() -> bytes:
    """The upload ends inside the fmt chunk."""
    return riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)))[:30]


def unsupported_tag(tag: int = 0x0160) -> bytes:
    """An encoding nobody here decodes (WMA v1 by default)."""
    return riff(
        chunk(b"fmt ", fmt_body(tag, 2, 44100, 16)), chunk(b"data", bytes(4000))
    )


def pcm_36_bits() -> bytes:
    """36-bit integer PCM (5-byte words)."""
    body = fmt_body(PCM, 3, 8000, 36, block_align=15, byte_rate=8000 * 15)
    return riff(chunk(b"fmt ", body), chunk(b"data", bytes(75)))


def rifx(audio: Signal, rate: int) -> bytes:
    """Big-endian RIFX with 16-bit samples."""
    channels = audio.shape[1]
    body = struct.pack(
        ">HHIIHH", PCM, channels, rate, rate * 2 * channels, 2 * channels, 16
    )
    data = (np.round(audio.reshape(-1) * 32767)).astype(">i2").tobytes()
    inner = b"WAVE" + b"fmt " + struct.pack(">I", len(body)) + body
    inner += b"data" + struct.pack(">I", len(data)) + data
    return b"RIFX" + struct.pack(">I", len(inner)) + inner


def not_wave_text() -> bytes:
    """Plain text named .wav."""
    return b"This is not audio, only text saved under a .wav name.\n" * 3


def not_wave_garbage() -> bytes:
    """Bytes that are no known format at all."""
    return bytes(range(7, 250, 3)) * 4


def not_wave_wave64(audio: Signal, rate: int) -> bytes:
    """Sony Wave64 content."""
    return encoded_by_ffmpeg(audio, rate, codec="pcm_s16le", container="w64")


def riff_not_wave() -> bytes:
    """A RIFF file of another form type (an AVI header)."""
    return b"RIFF" + struct.pack("<I", 100) + b"AVI LIST" + bytes(92)
