"""The WAVE `fmt ` chunk: check what an upload declares, write what the decoder reads.

The decoder is handed a rewritten, canonical `fmt ` chunk rather than the upload's
own, because FFmpeg trusts fields it should not: it decodes 24 valid bits in a
32-bit container as 24-bit float, and it has no use for a wrong block align.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.errors import BadRequest, InvalidAudio, UnsupportedMedia

PCM = 0x0001
MS_ADPCM = 0x0002
FLOAT = 0x0003
ALAW = 0x0006
MULAW = 0x0007
IMA_ADPCM = 0x0011
GSM610 = 0x0031
MPEG_LAYER3 = 0x0055
EXTENSIBLE = 0xFFFE

# Sub-format GUIDs share these 14 bytes after the two that carry the format tag.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")

_CODED = {
    MS_ADPCM: "MS ADPCM",
    IMA_ADPCM: "IMA ADPCM",
    GSM610: "GSM 6.10",
    MPEG_LAYER3: "MPEG layer 3",
}
_UNSUPPORTED = {
    0x0050: "MPEG layer 1/2",
    0x0022: "DSP Group TrueSpeech",
    0x0040: "G.721 ADPCM",
    0x0064: "G.726 ADPCM",
    0x00FF: "AAC",
    0x0160: "WMA v1",
    0x0161: "WMA v2",
    0x0162: "WMA Pro",
    0x0163: "WMA Lossless",
    0x0270: "ATRAC3",
    0x1610: "HE-AAC",
    0x2000: "AC-3",
    0x2001: "DTS",
    0xF1AC: "FLAC",
}
_SUPPORTED_TEXT = (
    "integer PCM (8, 16, 24, 32 bits), float (32, 64 bits), A-law, mu-law, "
    "IMA ADPCM, MS ADPCM, GSM 6.10, MPEG layer 3"
)

# A fmt chunk of any supported encoding fits in far fewer bytes than this.
MAX_FMT_SIZE = 4096

# Above this the resampler fails (near 10 MHz) and nothing records audio.
MAX_SAMPLE_RATE = 8_000_000


@dataclass(frozen=True)
class WaveFormat:
    """An upload's audio encoding, checked and made canonical."""

    tag: int
    channels: int
    sample_rate: int
    bits: int
    block_align: int
    byte_rate: int
    channel_mask: int
    extra: bytes
    description: str

    def chunk(self) -> bytes:
        """Return a canonical `fmt ` chunk, header included."""
        if self.tag in (PCM, FLOAT) and self.channels > 2:
            body = self._extensible()
        else:
            body = struct.pack(
                "<HHIIHHH",
                self.tag,
                self.channels,
                self.sample_rate,
                self.byte_rate,
                self.block_align,
                self.bits,
                len(self.extra),
            )
            body += self.extra
        return b"fmt " + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)

    def _extensible(self) -> bytes:
        # Kept for more than two channels so FFmpeg learns the speaker layout.
        mask = self.channel_mask
        if mask.bit_count() != self.channels:
            mask = 0
        return (
            struct.pack(
                "<HHIIHHHHI",
                EXTENSIBLE,
                self.channels,
                self.sample_rate,
                self.byte_rate,
                self.block_align,
                self.bits,
                22,
                self.bits,
                mask,
            )
            + struct.pack("<H", self.tag)
            + _GUID_TAIL
        )


def parse_fmt(body: bytes) -> WaveFormat:
    """Check a `fmt ` chunk body; raise BadRequest, InvalidAudio or UnsupportedMedia."""
    if len(body) < 16:
        raise BadRequest(f"the fmt chunk is {len(body)} bytes, too short to read")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", body
    )
    extra = _extra(body)

    if channels == 0:
        raise InvalidAudio("the fmt chunk declares 0 channels")
    if rate == 0:
        raise InvalidAudio("the fmt chunk declares a sample rate of 0 Hz")
    if rate > MAX_SAMPLE_RATE:
        raise InvalidAudio(
            f"the sample rate of {rate} Hz is above the highest supported, "
            f"{MAX_SAMPLE_RATE} Hz"
        )

    valid_bits, mask = 0, 0
    if tag == EXTENSIBLE:
        if len(extra) < 22:
            raise InvalidAudio("the WAVE_FORMAT_EXTENSIBLE fmt chunk is cut short")
        valid_bits, mask = struct.unpack_from("<HI", extra)
        if extra[8:22] != _GUID_TAIL:
            guid = extra[6:22].hex()
            raise UnsupportedMedia(f"WAVE sub-format {guid} is not supported")
        tag = struct.unpack_from("<H", extra, 6)[0]
        extra = extra[22:]
        if tag in (PCM, FLOAT) and valid_bits > bits:
            raise InvalidAudio(
                f"the fmt chunk declares {valid_bits} valid bits in a {bits}-bit sample"
            )
    elif tag == PCM and bits % 8:
        # Plain PCM stores e.g. 20-bit samples left-justified in 3 bytes.
        valid_bits, bits = bits, bits + 8 - bits % 8

    if tag == PCM:
        return _linear(tag, channels, rate, bits, mask, valid_bits, "integer PCM")
    if tag == FLOAT:
        return _linear(tag, channels, rate, bits, mask, valid_bits, "float")
    if tag in (ALAW, MULAW):
        name = "A-law" if tag == ALAW else "mu-law"
        byte_rate = min(rate * channels, 0xFFFFFFFF)
        return WaveFormat(tag, channels, rate, 8, channels, byte_rate, mask, b"", name)
    if tag in _CODED:
        return WaveFormat(
            tag, channels, rate, bits, block_align, byte_rate, mask, extra, _CODED[tag]
        )
    name = _UNSUPPORTED.get(tag, "unknown")
    raise UnsupportedMedia(
        f"WAVE encoding {name} (format tag 0x{tag:04X}) is not supported; "
        f"supported are {_SUPPORTED_TEXT}"
    )


def wave_header(wave_format: WaveFormat) -> bytes:
    """Return a RIFF header whose data chunk runs to the end of the stream."""
    # A declared data size of 0 makes FFmpeg read to the end of its input.
    return b"RIFF\0\0\0\0WAVE" + wave_format.chunk() + b"data\0\0\0\0"


def _extra(body: bytes) -> bytes:
    if len(body) < 18:
        return b""
    (size,) = struct.unpack_from("<H", body, 16)
    return body[18 : 18 + size]


def _linear(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    mask: int,
    valid_bits: int,
    kind: str,
) -> WaveFormat:
    allowed = (8, 16, 24, 32) if tag == PCM else (32, 64)
    shown = valid_bits or bits
    description = f"{shown}-bit {kind}" + (
        "" if shown == bits else f" in {bits}-bit words"
    )
    if bits == 0:
        raise InvalidAudio(f"the fmt chunk declares {kind} with 0 bits per sample")
    if bits not in allowed:
        raise UnsupportedMedia(
            f"{description} is not supported; supported are {_SUPPORTED_TEXT}"
        )
    block_align = channels * bits // 8
    if block_align > 0xFFFF:
        raise InvalidAudio(f"{channels} channels do not fit a WAVE sample frame")
    return WaveFormat(
        tag,
        channels,
        rate,
        bits,
        block_align,
        min(rate * block_align, 0xFFFFFFFF),
        mask,
        b"",
        description,
    )
