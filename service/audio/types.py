"""Values passed into and out of a conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.errors import ValidationFailed

# The MP3 bit rates a client may ask for (MPEG-1 layer III).
BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode: constant bit rate in kbit/s, or VBR quality 0 (best) to 9.

    A quality wins over the bit rate, so `EncodeOptions(quality=2)` means VBR.
    """

    bitrate_kbps: int | None = 128
    quality: int | None = None

    def __post_init__(self) -> None:
        if self.quality is not None:
            # Frozen: the only way to normalise the field is past __setattr__.
            object.__setattr__(self, "bitrate_kbps", None)
        elif self.bitrate_kbps is None:
            raise ValidationFailed("give a bitrate or a quality")
        if self.bitrate_kbps is not None and self.bitrate_kbps not in BITRATES_KBPS:
            rates = ", ".join(str(rate) for rate in BITRATES_KBPS)
            raise ValidationFailed(f"bitrate must be one of {rates} (kbit/s)")
        if self.quality is not None and not 0 <= self.quality <= 9:
            raise ValidationFailed("quality must be between 0 and 9")


@dataclass(frozen=True)
class Limits:
    """What the service refuses to convert, measured on the decoded audio."""

    max_duration_s: float
    min_sample_rate: int
    max_channels: int


@dataclass(frozen=True)
class AudioFacts:
    """The MP3 as written and verified."""

    size_bytes: int
    checksum_sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    bitrate: int


@dataclass(frozen=True)
class SourceFacts:
    """The upload as received and decoded."""

    size_bytes: int
    checksum_sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    codec: str


@dataclass(frozen=True)
class Conversion:
    """A finished conversion; the caller owns `mp3_path` and deletes it."""

    mp3_path: Path
    mp3: AudioFacts
    source: SourceFacts
