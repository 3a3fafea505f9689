"""Independent decoding and comparison: the input's audio, or silence, noise, junk."""

from __future__ import annotations

import io
import itertools
import struct
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer

Samples = npt.NDArray[np.float64]

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def decode(
    source: Path | bytes, *, container_format: str | None = None
) -> tuple[Samples, int]:
    """Decode with PyAV: samples as (frames, channels) floats.

    The format is probed unless named; name it for MP3s of a frame or two,
    which the probe can take for something else.
    """
    file = str(source) if isinstance(source, Path) else io.BytesIO(source)
    parts: list[Samples] = []
    rate = 0
    with av.open(file, format=container_format) as container:
        assert isinstance(container, InputContainer)
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            resampled = frame.to_ndarray().astype(np.float64)
            channels = frame.layout.nb_channels
            if frame.format.is_planar:
                resampled = resampled.T
            else:
                resampled = resampled.reshape(-1, channels)
            parts.append(_scale(resampled, frame.format.name.rstrip("p")))
    if not parts:
        return np.zeros((0, 1)), rate
    return np.concatenate(parts), rate


def read_linear_wav(data: bytes) -> tuple[Samples, int] | None:
    """Decode integer or float PCM WAVE with numpy, trusting no size that lies.

    Returns None for other encodings. Written apart from the service's reader
    so that the two are not checked against each other's mistakes.
    """
    fmt: bytes | None = None
    payload: bytes | None = None
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body_start = position + 8
        if chunk_id == b"data" and payload is None:
            if size in (0, 0xFFFFFFFF) or body_start + size > len(data):
                size = len(data) - body_start
            payload = data[body_start : body_start + size]
        elif chunk_id == b"fmt " and fmt is None:
            fmt = data[body_start : body_start + size]
        position = body_start + size + size % 2
    if fmt is None or payload is None:
        return None

    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and fmt[26:40] == _GUID_TAIL:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag not in (1, 3):
        return None
    width = (bits + 7) // 8
    frames = len(payload) // (width * channels)
    raw = np.frombuffer(payload[: frames * width * channels], dtype=np.uint8)
    raw = raw.reshape(-1, width)
    if tag == 3:
        kind = "<f4" if width == 4 else "<f8"
        values = raw.copy().view(kind).reshape(-1).astype(np.float64)
    elif width == 1:
        values = (raw[:, 0].astype(np.float64) - 128) / 128
    else:
        # Left-justified integers: put them at the top of 64 bits, then scale.
        wide = np.zeros((len(raw), 8), dtype=np.uint8)
        wide[:, 8 - width :] = raw
        values = wide.view("<i8").reshape(-1).astype(np.float64) / 2.0**63
    return values.reshape(-1, channels), rate


def reference(data: bytes) -> tuple[Samples, int]:
    """The input's audio: numpy for linear PCM, PyAV for coded formats."""
    linear = read_linear_wav(data)
    return linear if linear is not None else decode(data)


def assert_same_audio(
    expected: tuple[Samples, int], actual: tuple[Samples, int]
) -> None:
    """Fail unless `actual` has the level, envelope and spectrum of `expected`."""
    ref, ref_rate = _mono(_without_lfe(expected[0])), expected[1]
    out, out_rate = _mono(actual[0]), actual[1]
    ref_rms, out_rms = _rms(ref), _rms(out)
    if ref_rms < 1e-4:
        assert out_rms < 1e-3, f"silence came out as RMS {out_rms:.4f}"
        return
    ratio = out_rms / ref_rms
    if len(ref) / ref_rate < 0.02:
        # Shorter than an MP3 frame: the codec smears it, only the scale holds.
        assert 0.1 <= ratio <= 3.0, f"RMS {out_rms:.4f}, input {ref_rms:.4f}"
        return
    assert 0.5 <= ratio <= 2.0, f"RMS {out_rms:.4f}, input {ref_rms:.4f}"
    if len(ref) / ref_rate < 0.05:
        return  # too short for an envelope or a spectrum to mean anything

    ref_env, out_env = _envelope(ref, ref_rate), _envelope(out, out_rate)
    count = min(len(ref_env), len(out_env))
    ref_env, out_env = ref_env[:count], out_env[:count]
    if np.std(ref_env) > 0.1 * np.mean(ref_env):
        correlation = float(np.corrcoef(ref_env, out_env)[0, 1])
        assert correlation >= 0.9, f"envelope correlation {correlation:.3f}"
    else:
        deviation = float(np.mean(np.abs(out_env - ref_env)) / np.mean(ref_env))
        assert deviation <= 0.3, f"steady envelope off by {deviation:.2f}"

    top = min(min(ref_rate, out_rate) * 0.45, 12000.0)
    similarity = _cosine(_bands(ref, ref_rate, top), _bands(out, out_rate, top))
    assert similarity >= 0.9, f"spectrum similarity {similarity:.3f}"


def _scale(values: Samples, sample_format: str) -> Samples:
    if sample_format == "u8":
        return (values - 128) / 128
    full = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}.get(sample_format, 1.0)
    return values / full


def _without_lfe(samples: Samples) -> Samples:
    # A 5.1 or 7.1 downmix to stereo leaves out the LFE, the fourth channel.
    if samples.ndim == 2 and samples.shape[1] in (6, 8):
        kept: Samples = np.delete(samples, 3, axis=1)
        return kept
    return samples


def _mono(samples: Samples) -> Samples:
    mono: Samples = samples.mean(axis=1) if samples.ndim == 2 else samples
    return mono


def _rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _envelope(samples: Samples, rate: int) -> Samples:
    window = max(1, rate // 100)
    count = len(samples) // window
    frames = samples[: count * window].reshape(count, window)
    envelope: Samples = np.sqrt(np.mean(frames**2, axis=1))
    return envelope


def _bands(samples: Samples, rate: int, top: float) -> Samples:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    edges = np.geomspace(40.0, max(top, 80.0), 25)
    energy = [
        spectrum[(freqs >= low) & (freqs < high)].sum()
        for low, high in itertools.pairwise(edges)
    ]
    bands: Samples = np.sqrt(np.array(energy) / len(samples))
    return bands


def _cosine(a: Samples, b: Samples) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


def duration_bounds(duration_s: float, rate_out: int) -> tuple[float, float]:
    """The corpus README's accepted range for an MP3's decoded length."""
    return duration_s - 0.02, duration_s + 2 * 1152 / rate_out + 0.02
