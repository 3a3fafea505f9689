"""Name what an upload is when its first bytes are not a RIFF/RF64/BW64 WAVE header."""

from __future__ import annotations

from service.errors import AudiovaultError, BadRequest, UnsupportedMedia

WAVE_MAGICS = (b"RIFF", b"RF64", b"BW64")

# Bytes a header needs before anything can be decided.
HEAD_SIZE = 12

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"ID3", "MP3 (ID3-tagged)"),
    (b"OggS", "Ogg"),
    (b"fLaC", "FLAC"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (b"#!AMR", "AMR"),
    (b".snd", "Sun/NeXT AU"),
    (b"caff", "Core Audio (CAF)"),
    (b"wvpk", "WavPack"),
    (b"MAC ", "Monkey's Audio"),
    (b"MThd", "MIDI"),
    (b"0&\xb2u\x8ef\xcf\x11", "ASF/WMA"),
    (b"TTA1", "TTA"),
    (b"MPCK", "Musepack"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
)


def refusal(head: bytes) -> AudiovaultError | None:
    """Return the error for a header that is not WAVE, or None for a WAVE header."""
    if len(head) >= HEAD_SIZE and head[:4] in WAVE_MAGICS and head[8:12] == b"WAVE":
        return None

    if head.startswith(b"RIFX"):
        return UnsupportedMedia(
            "the upload is big-endian WAVE (RIFX), which is not supported; "
            "send little-endian RIFF WAVE"
        )
    if head[:4] in WAVE_MAGICS and len(head) >= HEAD_SIZE:
        return _other_riff(head)
    kind = _recognise(head)
    if kind is not None:
        return UnsupportedMedia(f"the upload is {kind}, not WAVE audio")
    if len(head) < HEAD_SIZE:
        return BadRequest(
            f"the upload is {len(head)} bytes long, too short for a WAVE header"
        )
    return BadRequest("the upload is not a RIFF/RF64/BW64 WAVE file")


def _other_riff(head: bytes) -> AudiovaultError:
    form = head[8:12]
    if head.startswith(b"RIFF") and all(0x20 <= byte < 0x7F for byte in form):
        # Another RIFF format: AVI, WebP, RMI, ...
        return UnsupportedMedia(
            f"the upload is a RIFF file of type '{form.decode()}', not WAVE audio"
        )
    magic = head[:4].decode()
    return BadRequest(f"the upload starts like {magic} but its form type is not WAVE")


def _recognise(head: bytes) -> str | None:
    if head.startswith(b"riff"):
        return "Sony Wave64"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "an MPEG audio stream (MP3 or AAC)"
    if _is_text(head):
        return "text"
    return None


def _is_text(head: bytes) -> bool:
    if len(head) < HEAD_SIZE:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The head may end inside a multi-byte character.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(char.isprintable() or char in "\t\r\n" for char in text)
