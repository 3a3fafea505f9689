"""Decoded frames in, interleaved signed 16-bit PCM at an MP3 rate and layout out."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

# Silence fed after the last frame: libswresample holds back the tail of very
# short inputs (ten samples at 1234 Hz come out as nothing) until more arrives.
_TAIL_PAD_S = 0.1
_TAIL_PAD_MIN = 64
_TAIL_PAD_MAX = 65536

_FULL_SCALE = {"u8": 128.0, "s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}


def mp3_rate(sample_rate: int) -> int:
    """Return the MP3 sample rate nearest to `sample_rate` (ties go up)."""
    return min(MP3_RATES, key=lambda rate: (abs(rate - sample_rate), -rate))


class PcmShaper:
    """Downmixes and resamples decoded frames for the MP3 encoder."""

    def __init__(self, *, rate_in: int, channels_in: int) -> None:
        self.rate_in = rate_in
        self.rate_out = mp3_rate(rate_in)
        self.channels_out = 1 if channels_in == 1 else 2
        self.samples_in = 0
        self.samples_out = 0
        self.channels_in = channels_in
        self._by_hand = False
        self._resampler = self._new_resampler()
        self._resampled = False
        self._last: av.AudioFrame | None = None

    def push(self, frame: av.AudioFrame) -> bytes:
        """Take one decoded frame; return whatever PCM is ready."""
        if not self._resampled and self._is_ready(frame):
            # Already 16-bit interleaved at an MP3 rate: the common case.
            self._last = frame
            self.samples_in += frame.samples
            self.samples_out += frame.samples
            size = frame.samples * self.channels_out * 2
            return bytes(memoryview(frame.planes[0])[:size])

        first = not self._resampled
        self._resampled = True
        frame.pts = self.samples_in
        frame.time_base = Fraction(1, self.rate_in)
        self.samples_in += frame.samples
        self._last = frame
        if self._by_hand:
            frame = self._downmix(frame)
        try:
            out = self._resampler.resample(frame)
        except av.error.FFmpegError:
            # libswresample has no matrix for some layouts (20 channels, say).
            if not first or self._by_hand or self.channels_in <= 2:
                raise
            self._by_hand = True
            self._resampler = self._new_resampler()
            out = self._resampler.resample(self._downmix(frame))
        return self._collect(out, limit=None)

    def finish(self) -> bytes:
        """Flush the resampler; return the last PCM, trimmed to the exact length."""
        if not self._resampled:
            return b""
        pad_samples = int(self.rate_in * _TAIL_PAD_S)
        pad = self._silence(min(max(_TAIL_PAD_MIN, pad_samples), _TAIL_PAD_MAX))
        pad.pts = self.samples_in
        pad.time_base = Fraction(1, self.rate_in)
        expected = round(self.samples_in * self.rate_out / self.rate_in)
        out = self._resampler.resample(pad) + self._resampler.resample(None)
        return self._collect(out, limit=max(0, expected - self.samples_out))

    def _is_ready(self, frame: av.AudioFrame) -> bool:
        packed = frame.format.name == "s16" or (
            frame.format.name == "s16p" and self.channels_out == 1
        )
        return (
            packed
            and frame.sample_rate == self.rate_out
            and frame.layout.nb_channels == self.channels_out
        )

    def _new_resampler(self) -> av.AudioResampler:
        layout = "mono" if self.channels_out == 1 else "stereo"
        return av.AudioResampler(format="s16", layout=layout, rate=self.rate_out)

    def _collect(self, frames: list[av.AudioFrame], *, limit: int | None) -> bytes:
        parts: list[bytes] = []
        for frame in frames:
            samples = frame.to_ndarray()[:, : frame.samples * self.channels_out]
            if limit is not None:
                samples = samples[:, : limit * self.channels_out]
                limit -= samples.shape[1] // self.channels_out
            parts.append(samples.tobytes())
            self.samples_out += samples.shape[1] // self.channels_out
        return b"".join(parts)

    def _downmix(self, frame: av.AudioFrame) -> av.AudioFrame:
        # Even channels to the left, odd to the right: WAVE order starts FL, FR.
        samples = _as_float(frame)
        stereo = np.stack([samples[0::2].mean(axis=0), samples[1::2].mean(axis=0)])
        out = av.AudioFrame.from_ndarray(
            stereo.astype(np.float32), format="fltp", layout="stereo"
        )
        out.sample_rate = self.rate_in
        out.pts = frame.pts
        out.time_base = frame.time_base
        return out

    def _silence(self, samples: int) -> av.AudioFrame:
        assert self._last is not None
        if self._by_hand:
            zeros = np.zeros((2, samples), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout="stereo")
        else:
            template = self._last.to_ndarray()
            rows = template.shape[0]
            width = samples * (1 if self._last.format.is_planar else self.channels_in)
            fill = 128 if template.dtype == np.uint8 else 0
            zeros = np.full((rows, width), fill, dtype=template.dtype)
            frame = av.AudioFrame.from_ndarray(
                zeros, format=self._last.format.name, layout=self._last.layout.name
            )
        frame.sample_rate = self.rate_in
        return frame


def _as_float(frame: av.AudioFrame) -> npt.NDArray[np.float64]:
    """Return a frame's samples as floats in [-1, 1], one row per channel."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    values = data.astype(np.float64)
    if name == "u8":
        values -= 128.0
    return values / _FULL_SCALE.get(name, 1.0)
