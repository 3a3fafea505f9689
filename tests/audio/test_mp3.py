"""Mp3Writer: the header, the decoded length and the audio, checked by real decoders."""

from __future__ import annotations

import gc
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import lameenc
import numpy as np
import numpy.typing as npt
import pytest
from av.container import InputContainer

from service.audio import mp3
from service.audio.mp3 import Mp3Writer

RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# (bitrate_kbps, quality): one CBR setting valid at every rate, and LAME's -V 4.
MODES = {"cbr": (64, None), "vbr": (None, 4)}
ENCODER_DELAY = 576

# Written out here, not imported, so the tests do not check the code with itself.
# fmt: off
MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# fmt: on
RATE_INDEX = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}

needs_lame = pytest.mark.skipif(shutil.which("lame") is None, reason="no lame command")
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="no ffmpeg command"
)


@dataclass(frozen=True)
class Frame:
    offset: int
    length: int
    sample_rate: int
    samples: int
    mono: bool
    mpeg1: bool


@dataclass(frozen=True)
class LameTag:
    kind: bytes
    frames: int
    size_bytes: int
    toc: bytes
    encoder: bytes
    delay: int
    padding: int


def sine(
    samples: int,
    *,
    sample_rate: int,
    freqs: tuple[float, ...],
    level: float = 0.5,
) -> npt.NDArray[np.int16]:
    t = np.arange(samples) / sample_rate
    columns = [level * np.sin(2 * np.pi * f * t) for f in freqs]
    return (np.stack(columns, axis=1) * 32767).round().astype("<i2")


def music(seconds: float, *, sample_rate: int = 44100) -> npt.NDArray[np.int16]:
    """Deterministic notes with overtones, decay and a little noise, in stereo."""
    rng = np.random.default_rng(7)
    note = sample_rate // 5
    t = np.arange(note) / sample_rate
    notes = []
    for _ in range(int(seconds * 5)):
        f = 220 * 2 ** (rng.integers(0, 24) / 12)
        tone = np.zeros(note)
        for k in range(1, 6):
            tone += np.sin(2 * np.pi * f * k * t) / k
        notes.append(tone * np.exp(-4 * t))
    left = np.concatenate(notes)
    signal = np.stack([left, np.roll(left, 30)], axis=1)
    signal += rng.normal(0, 0.02, size=signal.shape)
    scaled: npt.NDArray[np.int16] = (signal / np.abs(signal).max() * 24000).astype(
        "<i2"
    )
    return scaled


def encode(
    path: Path,
    pcm: npt.NDArray[np.int16],
    *,
    sample_rate: int,
    bitrate_kbps: int | None = 128,
    quality: int | None = None,
    chunk: int | None = None,
) -> Path:
    channels = pcm.shape[1]
    with Mp3Writer(
        path,
        sample_rate=sample_rate,
        channels=channels,
        bitrate_kbps=bitrate_kbps,
        quality=quality,
    ) as writer:
        step = chunk or max(len(pcm), 1)
        for start in range(0, len(pcm), step):
            writer.write(pcm[start : start + step].tobytes())
    return path


def decode(path: Path) -> npt.NDArray[np.float64]:
    """Decode with PyAV; samples by channel, scaled to -1..1."""
    # format="mp3": FFmpeg's content probe misses files of only a few frames.
    with av.open(str(path), format="mp3") as container:
        assert isinstance(container, InputContainer)
        planes = [
            frame.to_ndarray().astype(np.float64) for frame in container.decode(audio=0)
        ]
    if not planes:
        return np.zeros((0, 1))
    return np.concatenate(planes, axis=1).T


def frames(data: bytes) -> list[Frame]:
    """Walk the MPEG audio frames of a file that starts with one."""
    found = []
    offset = 0
    while offset + 4 <= len(data):
        b1, b2, b3 = data[offset + 1], data[offset + 2], data[offset + 3]
        assert data[offset] == 0xFF and b1 & 0xE0 == 0xE0, f"no sync at {offset}"
        version = (b1 >> 3) & 3
        mpeg1 = version == 3
        assert (b1 >> 1) & 3 == 1, "not layer III"
        kbps = (MPEG1_KBPS if mpeg1 else MPEG2_KBPS)[b2 >> 4]
        rate = RATE_INDEX[version][(b2 >> 2) & 3]
        length = (144 if mpeg1 else 72) * kbps * 1000 // rate + ((b2 >> 1) & 1)
        found.append(
            Frame(
                offset=offset,
                length=length,
                sample_rate=rate,
                samples=1152 if mpeg1 else 576,
                mono=b3 >> 6 == 3,
                mpeg1=mpeg1,
            )
        )
        offset += length
    assert offset == len(data), "the file ends inside a frame"
    return found


def lame_tag(data: bytes, first: Frame) -> LameTag:
    side_info = (
        (32 if not first.mono else 17) if first.mpeg1 else (17 if not first.mono else 9)
    )
    at = first.offset + 4 + side_info
    kind = data[at : at + 4]
    assert kind in (b"Xing", b"Info"), "no Xing/Info tag in the first frame"
    flags = int.from_bytes(data[at + 4 : at + 8], "big")
    assert flags & 0b111 == 0b111, "frames, bytes and seek table must be present"
    count = int.from_bytes(data[at + 8 : at + 12], "big")
    size = int.from_bytes(data[at + 12 : at + 16], "big")
    toc = data[at + 16 : at + 116]
    lame = at + 116 + (4 if flags & 8 else 0)
    delay_padding = int.from_bytes(data[lame + 21 : lame + 24], "big")
    return LameTag(
        kind=kind,
        frames=count,
        size_bytes=size,
        toc=toc,
        encoder=data[lame : lame + 9],
        delay=delay_padding >> 12,
        padding=delay_padding & 0xFFF,
    )


def read_tag(path: Path) -> tuple[LameTag, list[Frame]]:
    data = path.read_bytes()
    found = frames(data)
    return lame_tag(data, found[0]), found


def rms_db(x: npt.NDArray[np.float64]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2))))


def peak_hz(x: npt.NDArray[np.float64], sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[spectrum.argmax()])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", RATES)
def test_header_records_frames_delay_and_padding(
    tmp_path: Path, rate: int, channels: int, mode: str
) -> None:
    bitrate, quality = MODES[mode]
    samples = rate // 3 + 17
    pcm = sine(samples, sample_rate=rate, freqs=(440.0,) * channels)

    path = encode(
        tmp_path / "a.mp3", pcm, sample_rate=rate, bitrate_kbps=bitrate, quality=quality
    )

    tag, found = read_tag(path)
    audio_frames = found[1:]
    per_frame = audio_frames[0].samples
    assert tag.kind == (b"Info" if mode == "cbr" else b"Xing")
    assert tag.encoder.startswith(b"LAME")
    assert tag.frames == len(audio_frames)
    assert tag.size_bytes == path.stat().st_size
    assert tag.delay == ENCODER_DELAY
    assert tag.padding == tag.frames * per_frame - ENCODER_DELAY - samples
    assert {f.sample_rate for f in found} == {rate}
    assert {f.mono for f in audio_frames} == {channels == 1}
    assert tag.toc[0] == 0 and list(tag.toc) == sorted(tag.toc)


@pytest.mark.parametrize("samples", [1, 1151, 1152, 1153])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", RATES)
def test_decoded_length_matches_input(
    tmp_path: Path, rate: int, channels: int, mode: str, samples: int
) -> None:
    bitrate, quality = MODES[mode]
    pcm = sine(samples, sample_rate=rate, freqs=(300.0,) * channels)

    path = encode(
        tmp_path / "a.mp3", pcm, sample_rate=rate, bitrate_kbps=bitrate, quality=quality
    )
    decoded = decode(path)

    assert decoded.shape[1] == channels
    if rate < 32000 and samples < 47:
        # FFmpeg misses the start trim when it ends in the frame where the end
        # trim begins (MPEG-2 frames, under 47 samples; LAME's own files too).
        assert samples <= len(decoded) <= samples + 1152
    else:
        assert len(decoded) == samples


@needs_ffmpeg
@needs_lame
@pytest.mark.parametrize(
    ("rate", "channels", "bitrate", "quality", "samples"),
    [
        (44100, 2, 128, None, 44100 * 2 + 7),
        (48000, 1, None, 2, 48000 + 1153),
        (22050, 2, 64, None, 22050 + 575),
        (8000, 1, None, 6, 8000 * 3 + 1),
    ],
)
def test_ffmpeg_and_lame_commands_decode_the_exact_length(
    tmp_path: Path,
    rate: int,
    channels: int,
    bitrate: int | None,
    quality: int | None,
    samples: int,
) -> None:
    pcm = sine(samples, sample_rate=rate, freqs=(500.0,) * channels)
    path = encode(
        tmp_path / "a.mp3", pcm, sample_rate=rate, bitrate_kbps=bitrate, quality=quality
    )

    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(
        ["lame", "--quiet", "--decode", str(path), str(tmp_path / "lame.wav")],
        check=True,
    )
    with wave.open(str(tmp_path / "lame.wav")) as decoded:
        lame_samples = decoded.getnframes()

    assert len(raw) // (2 * channels) == samples
    assert lame_samples == samples
    assert len(decode(path)) == samples


@pytest.mark.parametrize(
    ("rate", "bitrate", "quality"),
    [(44100, 128, None), (48000, None, 4), (16000, 64, None), (11025, None, 2)],
)
def test_audio_out_is_the_audio_in(
    tmp_path: Path, rate: int, bitrate: int | None, quality: int | None
) -> None:
    freqs = (440.0, 1000.0) if rate > 16000 else (300.0, 700.0)
    pcm = sine(rate, sample_rate=rate, freqs=freqs, level=0.5)

    path = encode(
        tmp_path / "a.mp3", pcm, sample_rate=rate, bitrate_kbps=bitrate, quality=quality
    )
    decoded = decode(path)

    source = pcm.astype(np.float64) / 32767
    middle = slice(rate // 10, rate - rate // 10)
    for channel, freq in enumerate(freqs):
        out = decoded[middle, channel]
        assert abs(peak_hz(out, rate) - freq) <= 1.5
        assert abs(rms_db(out) - rms_db(source[middle, channel])) < 0.5
        lags = range(-40, 41)
        match = [
            float(
                np.dot(
                    source[middle, channel], np.roll(decoded[:, channel], -lag)[middle]
                )
            )
            for lag in lags
        ]
        assert lags[int(np.argmax(match))] == 0, "the decode is shifted in time"


@needs_lame
@pytest.mark.parametrize(
    ("lame_args", "bitrate", "quality"),
    [(["-b", "128"], 128, None), (["-V", "4"], None, 4)],
)
def test_frames_are_those_of_the_lame_command(
    tmp_path: Path, lame_args: list[str], bitrate: int | None, quality: int | None
) -> None:
    pcm = music(4.0)
    with wave.open(str(tmp_path / "in.wav"), "wb") as source:
        source.setnchannels(2)
        source.setsampwidth(2)
        source.setframerate(44100)
        source.writeframes(pcm.tobytes())

    subprocess.run(
        [
            "lame",
            "--quiet",
            *lame_args,
            str(tmp_path / "in.wav"),
            str(tmp_path / "l.mp3"),
        ],
        check=True,
    )
    path = encode(
        tmp_path / "a.mp3",
        pcm,
        sample_rate=44100,
        bitrate_kbps=bitrate,
        quality=quality,
    )

    our_tag, our_frames = read_tag(path)
    lame_tag_, lame_frames = read_tag(tmp_path / "l.mp3")
    assert (our_tag.kind, our_tag.frames, our_tag.delay, our_tag.padding) == (
        lame_tag_.kind,
        lame_tag_.frames,
        lame_tag_.delay,
        lame_tag_.padding,
    )
    # Same bit allocation frame by frame, and the same samples out; only the
    # version string LAME writes into spare bits differs.
    assert [f.length for f in our_frames[1:]] == [f.length for f in lame_frames[1:]]
    assert np.array_equal(decode(path), decode(tmp_path / "l.mp3"))


def test_header_names_the_encoder_that_made_the_frames(tmp_path: Path) -> None:
    silence = np.zeros((44100, 2), dtype="<i2")

    path = encode(tmp_path / "a.mp3", silence, sample_rate=44100)

    tag, found = read_tag(path)
    name = tag.encoder.rstrip(b"\0 ")
    assert name.startswith(b"LAME")
    # LAME fills the spare bits of quiet frames with its own name and version.
    assert name + b"U" in path.read_bytes()[found[1].offset :]


def test_chunking_does_not_change_the_file(tmp_path: Path) -> None:
    pcm = music(1.5)

    whole = encode(tmp_path / "whole.mp3", pcm, sample_rate=44100)
    pieces = encode(tmp_path / "pieces.mp3", pcm, sample_rate=44100, chunk=333)

    assert whole.read_bytes() == pieces.read_bytes()


def test_vbr_quality_trades_size_for_fidelity(tmp_path: Path) -> None:
    pcm = music(3.0)

    best = encode(
        tmp_path / "v0.mp3", pcm, sample_rate=44100, bitrate_kbps=None, quality=0
    )
    small = encode(
        tmp_path / "v9.mp3", pcm, sample_rate=44100, bitrate_kbps=None, quality=9
    )

    assert best.stat().st_size > 2 * small.stat().st_size
    assert len(decode(best)) == len(decode(small)) == len(pcm)


@pytest.mark.parametrize(
    ("rate", "channels", "bitrate", "quality"),
    [
        (44000, 2, 128, None),
        (44100, 3, 128, None),
        (44100, 2, 130, None),
        (22050, 2, 192, None),
        (44100, 2, 8, None),
        (44100, 2, None, 10),
        (44100, 2, None, None),
        (44100, 2, 128, 2),
    ],
)
def test_refuses_settings_mp3_cannot_carry(
    tmp_path: Path, rate: int, channels: int, bitrate: int | None, quality: int | None
) -> None:
    with pytest.raises(ValueError):
        Mp3Writer(
            tmp_path / "a.mp3",
            sample_rate=rate,
            channels=channels,
            bitrate_kbps=bitrate,
            quality=quality,
        )

    assert not (tmp_path / "a.mp3").exists()


def test_refuses_a_partial_sample_frame(tmp_path: Path) -> None:
    writer = Mp3Writer(
        tmp_path / "a.mp3",
        sample_rate=44100,
        channels=2,
        bitrate_kbps=128,
        quality=None,
    )

    with pytest.raises(ValueError):
        writer.write(b"\x00" * 6)

    writer.close()


def test_close_twice_is_harmless_and_write_after_close_fails(tmp_path: Path) -> None:
    writer = Mp3Writer(
        tmp_path / "a.mp3", sample_rate=44100, channels=1, bitrate_kbps=64, quality=None
    )
    writer.write(sine(4410, sample_rate=44100, freqs=(440.0,)).tobytes())

    writer.close()
    size = (tmp_path / "a.mp3").stat().st_size
    writer.close()

    assert (tmp_path / "a.mp3").stat().st_size == size
    with pytest.raises(ValueError):
        writer.write(b"\x00\x00")


def _new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    return set(threading.enumerate()) - before


def _lame_refusing_to_start(**_: object) -> lameenc.Encoder:
    # A real encoder whose first encode fails: LAME accepts a 1 Hz input rate
    # when it is set and refuses it when encoding starts.
    encoder = lameenc.Encoder()
    encoder.silence()
    encoder.set_in_sample_rate(1)
    return encoder


def test_closing_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())

    encode(tmp_path / "a.mp3", music(2.0), sample_rate=44100, chunk=4096)

    assert _new_threads(before) == set()


def test_an_encoding_failure_is_raised_by_the_next_writes_and_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mp3, "_lame_encoder", _lame_refusing_to_start)
    before = set(threading.enumerate())
    writer = Mp3Writer(
        tmp_path / "a.mp3",
        sample_rate=44100,
        channels=2,
        bitrate_kbps=128,
        quality=None,
    )
    # About one chunk of the writer's queue per write.
    chunk = music(0.4)[:16384].tobytes()

    # The encoder runs at most a few chunks behind, so a failure in the first
    # must come back within the next few writes.
    with pytest.raises(RuntimeError, match="LAME") as caught:
        for _ in range(20):
            writer.write(chunk)
    with pytest.raises(RuntimeError) as again:
        writer.write(chunk)
    with pytest.raises(RuntimeError) as on_close:
        writer.close()

    assert again.value is on_close.value is caught.value
    assert _new_threads(before) == set()
    writer.close()


def test_an_encoding_failure_at_the_end_is_raised_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mp3, "_lame_encoder", _lame_refusing_to_start)
    before = set(threading.enumerate())
    writer = Mp3Writer(
        tmp_path / "a.mp3", sample_rate=44100, channels=1, bitrate_kbps=64, quality=None
    )
    # Less than one chunk: nothing reaches LAME before close.
    writer.write(sine(1000, sample_rate=44100, freqs=(440.0,)).tobytes())

    with pytest.raises(RuntimeError, match="LAME"):
        writer.close()

    assert _new_threads(before) == set()
    with pytest.raises(ValueError):
        writer.write(b"\x00\x00")


def test_a_writer_dropped_without_close_stops_its_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    writer = Mp3Writer(
        tmp_path / "a.mp3",
        sample_rate=44100,
        channels=2,
        bitrate_kbps=128,
        quality=None,
    )
    pcm = music(5.0)
    for start in range(0, len(pcm), 4096):
        writer.write(pcm[start : start + 4096].tobytes())
    started = _new_threads(before)

    del writer
    gc.collect()

    # It stops after the chunk it is encoding, asynchronously.
    for thread in started:
        thread.join(timeout=10)
    assert len(started) == 1
    assert _new_threads(before) == set()
