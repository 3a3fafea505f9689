"""MP3 output: interleaved 16-bit PCM in, an MP3 file with a Xing/LAME header out."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer

SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# fmt: off
BITRATES_KBPS = (
    8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320,
)
# fmt: on

# FFmpeg scales a VBR quality into a lambda with this factor (FF_QP2LAMBDA).
_QP2LAMBDA = 118


class Mp3Writer:
    """Encodes interleaved signed 16-bit PCM to an MP3 file with a Xing/LAME header."""

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int,
        bitrate_kbps: int | None,
        quality: int | None,
    ) -> None:
        _check_settings(sample_rate, channels, bitrate_kbps, quality)
        self._channels = channels
        self._sample_rate = sample_rate
        self._pts = 0
        self._container: OutputContainer = av.open(str(path), "w", format="mp3")
        stream = self._container.add_stream("libmp3lame", rate=sample_rate)
        assert isinstance(stream, AudioStream)
        stream.layout = "stereo" if channels == 2 else "mono"
        stream.format = "s16p"
        if bitrate_kbps is not None:
            stream.bit_rate = bitrate_kbps * 1000
        else:
            assert quality is not None
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = quality * _QP2LAMBDA
        self._stream = stream

    def write(self, pcm: bytes) -> None:
        """Encode a run of interleaved samples (a whole number of sample frames)."""
        if len(pcm) % (2 * self._channels):
            raise ValueError("PCM length is not a whole number of sample frames")
        if not pcm:
            return
        samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, self._channels)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T),
            format="s16p",
            layout=self._stream.layout.name,
        )
        frame.sample_rate = self._sample_rate
        frame.pts = self._pts
        self._pts += samples.shape[0]
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder, write the header and close the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_settings(
    sample_rate: int,
    channels: int,
    bitrate_kbps: int | None,
    quality: int | None,
) -> None:
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"MP3 has no sample rate {sample_rate}")
    if channels not in (1, 2):
        raise ValueError(f"MP3 carries 1 or 2 channels, not {channels}")
    if (bitrate_kbps is None) == (quality is None):
        raise ValueError("give exactly one of bitrate_kbps and quality")
    if bitrate_kbps is not None and bitrate_kbps not in BITRATES_KBPS:
        raise ValueError(f"MP3 has no bitrate {bitrate_kbps} kbit/s")
    if quality is not None and not 0 <= quality <= 9:
        raise ValueError(f"VBR quality must be 0..9, not {quality}")
