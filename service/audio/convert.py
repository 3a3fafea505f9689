"""One conversion, WAVE upload to verified MP3; runs inside a worker process."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import av
import av.error
from av.container import InputContainer

from service.audio.mp3 import Mp3Writer
from service.audio.pcm import PcmShaper
from service.audio.types import (
    AudioFacts,
    Conversion,
    EncodeOptions,
    Limits,
    SourceFacts,
)
from service.audio.wave import BLOCK_SIZE, Readable, WaveStream, open_wave
from service.errors import AudiovaultError, InvalidAudio, UnsupportedMedia

Progress = Callable[[float], None]

# The largest CBR rate an MPEG-2/2.5 frame (below 32 kHz) can carry.
_LSF_MAX_KBPS = 160
_PROGRESS_EVERY_S = 0.25


def convert(
    source: Readable,
    *,
    mp3_path: Path,
    options: EncodeOptions,
    limits: Limits,
    work_dir: Path,
    progress: Progress | None = None,
) -> Conversion:
    """Convert a WAVE upload read from `source` into a verified MP3 at `mp3_path`.

    Raises an AudiovaultError for any input that cannot be converted; an
    exception raised by `source.read` itself passes through unchanged. Nothing
    is left at `mp3_path` when this raises.
    """
    upload = _HashingReader(source)
    try:
        return _Conversion(
            upload, options=options, limits=limits, work_dir=work_dir, progress=progress
        ).run(mp3_path)
    except BaseException as error:
        mp3_path.unlink(missing_ok=True)
        if upload.failure is not None:
            raise upload.failure from None
        if isinstance(error, AudiovaultError) or not isinstance(error, Exception):
            raise
        raise _translate(error) from error


class _HashingReader:
    """Counts and hashes every byte of the upload as the pipeline reads it."""

    def __init__(self, source: Readable) -> None:
        self.size_bytes = 0
        self.failure: BaseException | None = None
        self._source = source
        self._sha256 = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self._source.read(size)
        except BaseException as error:
            self.failure = error
            raise
        self._sha256.update(data)
        self.size_bytes += len(data)
        return data

    def drain(self) -> None:
        while self.read(BLOCK_SIZE):
            pass

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class _Conversion:
    def __init__(
        self,
        upload: _HashingReader,
        *,
        options: EncodeOptions,
        limits: Limits,
        work_dir: Path,
        progress: Progress | None,
    ) -> None:
        self._upload = upload
        self._options = options
        self._limits = limits
        self._work_dir = work_dir
        self._progress = progress
        self._reported_at = 0.0

    def run(self, mp3_path: Path) -> Conversion:
        wave = open_wave(self._upload, spool_dir=self._work_dir)
        self._check_declared(wave)

        with contextlib.closing(wave):
            shaper, codec = self._encode(wave, mp3_path)
        self._upload.drain()

        source = SourceFacts(
            size_bytes=self._upload.size_bytes,
            checksum_sha256=self._upload.hexdigest(),
            duration_s=shaper.samples_in / shaper.rate_in,
            sample_rate=shaper.rate_in,
            channels=shaper.channels_in,
            codec=codec,
        )
        mp3 = self._verify(mp3_path, source=source)
        return Conversion(mp3_path=mp3_path, mp3=mp3, source=source)

    def _check_declared(self, wave: WaveStream) -> None:
        self._check_shape(wave.format.channels, wave.format.sample_rate)

    def _check_shape(self, channels: int, sample_rate: int) -> None:
        limits = self._limits
        if channels > limits.max_channels:
            raise InvalidAudio(
                f"the audio has {channels} channels; "
                f"the limit is {limits.max_channels} channels"
            )
        if sample_rate < limits.min_sample_rate:
            raise InvalidAudio(
                f"the sample rate of {sample_rate} Hz is below "
                f"the limit of {limits.min_sample_rate} Hz"
            )

    def _encode(self, wave: WaveStream, mp3_path: Path) -> tuple[PcmShaper, str]:
        with av.open(wave, mode="r", format="wav") as container:
            assert isinstance(container, InputContainer)
            if not container.streams.audio:
                raise InvalidAudio("the WAVE file holds no audio stream")
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise UnsupportedMedia(
                    f"there is no decoder for {wave.format.description}"
                )
            codec = stream.codec_context.name

            shaper: PcmShaper | None = None
            writer: Mp3Writer | None = None
            try:
                for frame in container.decode(stream):
                    if shaper is None:
                        self._check_shape(frame.layout.nb_channels, frame.sample_rate)
                        shaper = PcmShaper(
                            rate_in=frame.sample_rate,
                            channels_in=frame.layout.nb_channels,
                        )
                        writer = self._writer(mp3_path, shaper)
                    assert writer is not None
                    writer.write(shaper.push(frame))
                    self._check_duration(shaper)
                    self._report(shaper.samples_in / shaper.rate_in)
                if shaper is None or writer is None:
                    raise InvalidAudio("the upload holds no audio samples")
                writer.write(shaper.finish())
                writer.close()
            except BaseException:
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
                raise
        return shaper, codec

    def _writer(self, mp3_path: Path, shaper: PcmShaper) -> Mp3Writer:
        bitrate = self._options.bitrate_kbps
        if bitrate is not None and shaper.rate_out < 32000:
            bitrate = min(bitrate, _LSF_MAX_KBPS)
        return Mp3Writer(
            mp3_path,
            sample_rate=shaper.rate_out,
            channels=shaper.channels_out,
            bitrate_kbps=bitrate,
            quality=self._options.quality,
        )

    def _check_duration(self, shaper: PcmShaper) -> None:
        limit = self._limits.max_duration_s
        if shaper.samples_in > limit * shaper.rate_in:
            raise InvalidAudio(f"the audio is longer than the limit of {limit:g} s")

    def _report(self, done_s: float) -> None:
        now = time.monotonic()
        if self._progress is not None and now - self._reported_at >= _PROGRESS_EVERY_S:
            self._reported_at = now
            self._progress(done_s)

    def _verify(self, mp3_path: Path, *, source: SourceFacts) -> AudioFacts:
        """Decode the MP3 once and check its length against the source's."""
        samples = 0
        audio_bytes = 0
        # Named, not probed: FFmpeg's probe takes some MP3s of a frame or two
        # for other formats (raw VVC video, say) and finds no audio in them.
        with av.open(str(mp3_path), mode="r", format="mp3") as container:
            assert isinstance(container, InputContainer)
            if not container.streams.audio:
                raise InvalidAudio("the MP3 written for the audio holds no audio")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            channels = stream.codec_context.channels
            nominal = stream.codec_context.bit_rate
            for packet in container.demux(stream):
                audio_bytes += packet.size
                for frame in packet.decode():
                    samples += frame.samples
                    self._report(source.duration_s + samples / rate)

        duration_s = samples / rate if rate else 0.0
        if samples == 0:
            raise InvalidAudio(
                f"the audio is too short to make an MP3 ({source.duration_s:.4f} s)"
            )
        shortest = source.duration_s - 0.02
        longest = source.duration_s + 2 * 1152 / rate + 0.02
        if not shortest <= duration_s <= longest:
            raise InvalidAudio(
                f"the MP3 came out {duration_s:.3f} s long for "
                f"{source.duration_s:.3f} s of audio; it was not kept"
            )

        if self._options.quality is not None or not nominal:
            bitrate = round(audio_bytes * 8 / duration_s)
        else:
            bitrate = nominal
        return AudioFacts(
            size_bytes=mp3_path.stat().st_size,
            checksum_sha256=_file_sha256(mp3_path),
            duration_s=duration_s,
            sample_rate=rate,
            channels=channels,
            bitrate=bitrate,
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(BLOCK_SIZE * 4):
            digest.update(block)
    return digest.hexdigest()


def _translate(error: Exception) -> AudiovaultError:
    """Turn a decoder failure into an error a client can act on."""
    if isinstance(error, av.error.PatchWelcomeError | av.error.DecoderNotFoundError):
        return UnsupportedMedia(
            f"the decoder does not support this WAVE encoding ({_reason(error)})"
        )
    if isinstance(error, MemoryError):
        return InvalidAudio("decoding the audio needed more memory than allowed")
    if isinstance(error, av.error.FFmpegError):
        return InvalidAudio(f"the audio could not be decoded ({_reason(error)})")
    return InvalidAudio(f"the audio could not be converted ({_reason(error)})")


def _reason(error: Exception) -> str:
    if isinstance(error, av.error.FFmpegError) and error.strerror:
        return str(error.strerror)
    return str(error) or type(error).__name__
