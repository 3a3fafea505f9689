"""The Content-Disposition value both stores send with a download."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import content_disposition


def parts(value: str) -> tuple[str, str]:
    """The quoted `filename` fallback and the decoded `filename*` of a header value."""
    head, star = value.split("; filename*=UTF-8''")
    assert head.startswith('attachment; filename="')
    assert head.endswith('"')
    return head.removeprefix('attachment; filename="')[:-1], unquote(star)


@pytest.mark.parametrize(
    ("filename", "fallback"),
    [
        ("interview.mp3", "interview.mp3"),
        ("голосовая запись (ru).mp3", "(ru).mp3"),
        ("запись.mp3", "download.mp3"),
        ("Café Müller.mp3", "Cafe Muller.mp3"),
        ('say "hi".mp3', "say hi.mp3"),
        ("back\\slash.mp3", "backslash.mp3"),
        ("line\r\nbreak.mp3", "line break.mp3"),
        ("tab\tand\u00a0 spaces .mp3", "tab and spaces.mp3"),
        ("录音", "download"),
        ("", "download"),
    ],
)
def test_fallback_keeps_the_ascii_of_the_name(filename: str, fallback: str) -> None:
    value = content_disposition(filename)

    assert parts(value) == (fallback, filename)


def test_rfc_5987_value_encodes_everything_outside_attr_char() -> None:
    value = content_disposition("a b(1);%.mp3")

    assert value.endswith("filename*=UTF-8''a%20b%281%29%3B%25.mp3")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80))
def test_any_name_gives_a_safe_ascii_header_that_decodes_back(filename: str) -> None:
    value = content_disposition(filename)

    fallback, decoded = parts(value)
    assert value.isascii()
    assert all(32 <= ord(character) < 127 for character in value)
    assert '"' not in fallback
    assert "\\" not in fallback
    assert decoded == filename
