"""MP3 output: interleaved 16-bit PCM in, an MP3 file with a Xing/LAME header out.

LAME (through lameenc) encodes on a thread of its own, beside the caller's
decoding, since lameenc releases the GIL; PyAV's `mp3` muxer, on the caller's
thread, writes the frames and the Xing/LAME header. The muxer learns the
encoder delay and the end padding from skip-samples side data on the first and
last packets, so decoders that read the header (FFmpeg, `lame --decode`) trim
both and return exactly the input's sample count.

Files of a few frames (under about 0.1 s) are valid MP3, but FFmpeg's content
probe does not recognise them: open them with `format="mp3"`.
"""

from __future__ import annotations

import enum
import queue
import struct
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, cast

import av
import lameenc
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet, PacketSideData, packet_sidedata_type_from_literal
from av.stream import Stream

SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# fmt: off
MPEG1_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MPEG2_BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# fmt: on

# Samples LAME emits before the first input sample (ENCDELAY in LAME 3.100).
ENCODER_DELAY = 576
# Samples every MP3 decoder's synthesis filterbank adds in front (528 + 1);
# the LAME tag records only the encoder's share, so the muxer subtracts it.
DECODER_DELAY = 529
# LAME 3.100's default algorithm quality, the one `lame -b 128` reports as
# qval=3; with it lameenc's frames decode to exactly those of the `lame` command.
LAME_QUALITY = 3
# LAME's default VBR algorithm (vbr_mtrh), the one `lame -V n` uses.
_LAME_VBR_MTRH = 4
# Names the encoder in the LAME tag: the version lameenc's LAME reports and
# writes into the frames' stuffing. FFmpeg trusts the delay and padding fields
# only behind a "LAME", "Lavf" or "Lavc" name.
_ENCODER_TAG = "LAME4.0"

# PCM handed to the encoding thread at a time: 16384 stereo sample frames,
# about 0.37 s at 44.1 kHz and some 7 ms of LAME's time. Small enough that the
# queue stays a few hundred KB; large enough that passing chunks between the
# threads costs next to nothing. A multiple of every sample frame's size.
_CHUNK_BYTES = 1 << 16
# Chunks queued or being encoded at once: decoding runs at most this far ahead.
_QUEUED_CHUNKS = 3

_SKIP_SAMPLES = packet_sidedata_type_from_literal("skip_samples")
# PyAV's stubs omit this constructor: (side data type, size in bytes).
_new_side_data = cast(Callable[[int, int], PacketSideData], PacketSideData)


class _LameEncoder(Protocol):
    """The part of lameenc.Encoder used here (lameenc ships no type hints)."""

    def encode(self, pcm: bytes) -> bytearray: ...
    def flush(self) -> bytearray: ...


def bitrates_kbps(sample_rate: int) -> tuple[int, ...]:
    """Return the CBR bitrates MP3 allows at this sample rate."""
    if sample_rate >= 32000:
        return MPEG1_BITRATES_KBPS
    return MPEG2_BITRATES_KBPS


def samples_per_frame(sample_rate: int) -> int:
    """Return the samples per channel in one MP3 frame at this sample rate."""
    return 1152 if sample_rate >= 32000 else 576


class Mp3Writer:
    """Encodes interleaved signed 16-bit PCM to an MP3 file with a Xing/LAME header.

    The file must be seekable: the header is rewritten on close. A bitrate gives
    CBR; otherwise `quality` is LAME's VBR quality, 0 (best) to 9 (smallest).
    Raises ValueError for settings MP3 cannot carry.

    LAME runs on a thread of its own, so the caller prepares the next PCM while
    the last is encoded. An error there is raised by the next write() or
    close(); close() waits for the thread, and a writer dropped without close()
    stops it.
    """

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
        self._frame_bytes = 2 * channels
        self._samples_in = 0
        self._pending = bytearray()
        self._closed = False

        self._muxer = _FrameMuxer(
            path, sample_rate=sample_rate, channels=channels, bitrate_kbps=bitrate_kbps
        )
        encoder = _lame_encoder(
            sample_rate=sample_rate,
            channels=channels,
            bitrate_kbps=bitrate_kbps,
            quality=quality,
        )
        try:
            self._lame = _LameThread(encoder)
        except BaseException:
            self._muxer.close()
            raise
        # The thread holds the encoder, never the writer, so a writer dropped
        # without close() can be collected; its finalizer then ends the thread.
        self._finalizer = weakref.finalize(self, self._lame.abandon)

    def write(self, pcm: bytes) -> None:
        """Encode interleaved little-endian samples; any whole number of frames."""
        if len(pcm) % self._frame_bytes:
            raise ValueError("PCM length is not a whole number of sample frames")
        if self._closed:
            raise ValueError("write to a closed Mp3Writer")
        self._lame.raise_failure()

        self._samples_in += len(pcm) // self._frame_bytes
        pending = self._pending
        pending += pcm
        while len(pending) >= _CHUNK_BYTES:
            self._lame.put(bytes(pending[:_CHUNK_BYTES]))
            del pending[:_CHUNK_BYTES]
        for mp3 in self._lame.take_encoded():
            self._muxer.mux(mp3)

    def close(self) -> None:
        """Flush the encoder, write the Xing/LAME header and close the file."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()

        try:
            self._lame.finish(bytes(self._pending))
            self._pending.clear()
            for mp3 in self._lame.take_encoded():
                self._muxer.mux(mp3)
            self._muxer.finish(samples_in=self._samples_in)
        finally:
            self._muxer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Stop(enum.Enum):
    FINISH = enum.auto()
    ABANDON = enum.auto()


class _LameThread:
    """Runs LAME on its own thread: PCM in through a bounded queue, MP3 out."""

    def __init__(self, encoder: _LameEncoder) -> None:
        self._encoder = encoder
        self._started = False
        self._failure: BaseException | None = None
        self._abandoned = False
        # SimpleQueue: its put() is safe in a finalizer, which may run on any
        # thread. The semaphore bounds the chunks queued or being encoded.
        self._inbox: queue.SimpleQueue[bytes | _Stop] = queue.SimpleQueue()
        self._room = threading.Semaphore(_QUEUED_CHUNKS)
        self._encoded: deque[bytes | bytearray] = deque()
        self._thread = threading.Thread(
            target=self._run, name="lame-encoder", daemon=True
        )
        self._thread.start()

    def raise_failure(self) -> None:
        """Raise what stopped the encoding, if anything did."""
        if self._failure is not None:
            raise self._failure

    def put(self, pcm: bytes) -> None:
        """Queue whole sample frames for encoding; wait while the queue is full."""
        self._room.acquire()
        self.raise_failure()
        self._inbox.put(pcm)

    def take_encoded(self) -> Iterator[bytes | bytearray]:
        """Yield the MP3 bytes encoded so far, in order."""
        encoded = self._encoded
        while encoded:
            yield encoded.popleft()

    def finish(self, pcm: bytes) -> None:
        """Encode the last PCM and flush LAME; return once the thread has ended."""
        if pcm and self._failure is None:
            self._room.acquire()
            self._inbox.put(pcm)
        self._inbox.put(_Stop.FINISH)
        self._thread.join()
        self.raise_failure()

    def abandon(self) -> None:
        """Stop at the next chunk without flushing; returns at once."""
        self._abandoned = True
        self._inbox.put(_Stop.ABANDON)

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as error:  # noqa: BLE001 - the caller raises it
            self._fail(error)
        finally:
            # Wakes a caller still waiting for room; it then sees the failure.
            self._room.release(_QUEUED_CHUNKS)

    def _serve(self) -> None:
        encoder = self._encoder
        while True:
            item = self._inbox.get()
            if item is _Stop.ABANDON:
                return
            if item is _Stop.FINISH:
                if self._failure is None:
                    self._encoded.append(self._flush())
                return
            try:
                # After a failure, or once abandoned, chunks are only drained so
                # the caller never waits for room that will not come.
                if self._failure is None and not self._abandoned:
                    self._started = True
                    self._encoded.append(encoder.encode(item))
            except BaseException as error:  # noqa: BLE001 - the caller raises it
                self._fail(error)
            finally:
                self._room.release()

    def _flush(self) -> bytearray:
        if not self._started:
            # lameenc starts LAME on the first encode; flush needs it started.
            self._encoder.encode(b"")
        return self._encoder.flush()

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error


class _FrameMuxer:
    """Writes LAME's frames through PyAV's mp3 muxer, one packet per frame."""

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int,
        bitrate_kbps: int | None,
    ) -> None:
        self._samples_per_frame = samples_per_frame(sample_rate)
        self._frames_out = 0
        self._held: Packet[Stream] | None = None
        self._splitter = _FrameSplitter(sample_rate)

        # No ID3v2 tag: the Xing/LAME frame comes first, as LAME writes it.
        self._container: OutputContainer = av.open(
            str(path),
            "w",
            format="mp3",
            container_options={"id3v2_version": "0"},
        )
        stream = self._container.add_stream(
            "mp3",
            rate=sample_rate,
            layout="stereo" if channels == 2 else "mono",
        )
        assert isinstance(stream, AudioStream)
        # The muxer sizes the header frame from the nominal bitrate.
        stream.bit_rate = 1000 * (bitrate_kbps or 128)
        stream.metadata["encoder"] = _ENCODER_TAG
        self._stream = stream
        self._time_base = Fraction(1, sample_rate)

    def mux(self, mp3: bytes | bytearray) -> None:
        """Write every MP3 frame `mp3` completes but the newest, held back."""
        # One packet per frame: the muxer counts packets as frames for the
        # header's frame count and seek table. The newest packet is held back
        # so the last one can carry the end padding.
        for frame in self._splitter.feed(mp3):
            self._release_held(end_skip=None)
            packet = av.Packet(frame)
            packet.stream = self._stream
            packet.time_base = self._time_base
            packet.pts = packet.dts = self._frames_out * self._samples_per_frame
            packet.duration = self._samples_per_frame
            self._frames_out += 1
            self._held = packet

    def finish(self, *, samples_in: int) -> None:
        """Write the last frame, marking what of it is padding past `samples_in`."""
        if self._splitter.pending:
            raise RuntimeError("LAME ended inside an MP3 frame")
        self._release_held(end_skip=self._end_skip(samples_in))

    def close(self) -> None:
        """Close the file; the muxer writes the Xing/LAME header if it started."""
        self._container.close()

    def _release_held(self, *, end_skip: int | None) -> None:
        # end_skip is given for the last packet only.
        packet = self._held
        if packet is None:
            return
        self._held = None

        first = packet.pts == 0
        if first or end_skip is not None:
            start = ENCODER_DELAY + DECODER_DELAY if first else 0
            side_data = _new_side_data(_SKIP_SAMPLES, 10)
            side_data.update(struct.pack("<IIBB", start, end_skip or 0, 0, 0))
            packet.set_sidedata(side_data)
        self._container.mux(packet)

    def _end_skip(self, samples_in: int) -> int:
        # What the decoder must drop at the end: the frames' room minus the
        # delay and the input; the muxer adds DECODER_DELAY back for the tag.
        encoded = self._frames_out * self._samples_per_frame
        padding = encoded - ENCODER_DELAY - samples_in
        return max(padding - DECODER_DELAY, 0)


class _FrameSplitter:
    """Cuts LAME's output into whole MPEG audio frames."""

    def __init__(self, sample_rate: int) -> None:
        slot = 144 if sample_rate >= 32000 else 72
        rates = (0, *bitrates_kbps(sample_rate), 0)
        # Frame length by (bitrate index, padding bit); 0 marks an index LAME
        # never writes (free format, reserved).
        self._lengths = [
            [slot * 1000 * kbps // sample_rate + pad if kbps else 0 for pad in (0, 1)]
            for kbps in rates
        ]
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> Iterator[bytes]:
        """Yield every frame completed by `data`; keep the rest for later."""
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            if buffer[start] != 0xFF or buffer[start + 1] & 0xE0 != 0xE0:
                raise RuntimeError("LAME output lost MPEG frame sync")
            header = buffer[start + 2]
            length = self._lengths[header >> 4][(header >> 1) & 1]
            if not length:
                raise RuntimeError("LAME wrote an MPEG frame of unknown length")
            if len(buffer) - start < length:
                break
            yield bytes(buffer[start : start + length])
            start += length
        del buffer[:start]


def _lame_encoder(
    *,
    sample_rate: int,
    channels: int,
    bitrate_kbps: int | None,
    quality: int | None,
) -> _LameEncoder:
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(sample_rate)
    # Without an explicit output rate LAME resamples low bitrates down.
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(LAME_QUALITY)
    if bitrate_kbps is not None:
        encoder.set_bit_rate(bitrate_kbps)
    else:
        assert quality is not None
        encoder.set_vbr(_LAME_VBR_MTRH)
        encoder.set_vbr_quality(quality)
    encoder.silence()
    return cast(_LameEncoder, encoder)


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
    if bitrate_kbps is not None and bitrate_kbps not in bitrates_kbps(sample_rate):
        raise ValueError(f"MP3 at {sample_rate} Hz has no {bitrate_kbps} kbit/s")
    if quality is not None and not 0 <= quality <= 9:
        raise ValueError(f"VBR quality must be 0..9, not {quality}")
