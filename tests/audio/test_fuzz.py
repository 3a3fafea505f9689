"""Fuzzing `convert`: every upload gives a verified MP3 or a 4xx domain error.

A few hundred cases per property by default. A long campaign:
`AUDIOVAULT_FUZZ_EXAMPLES=5000 uv run pytest tests/audio/test_fuzz.py
--hypothesis-show-statistics`.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings

from service.audio.convert import convert
from service.audio.types import EncodeOptions
from service.errors import AudiovaultError
from tests.audio.expect import LIMITS, Pieces
from tests.audio.fuzzcases import (
    EXAMPLES,
    HANG_S,
    Case,
    check_conversion,
    check_refusal,
    hang_deadline,
    mutated_files,
    random_headers,
)

# Low enough that no case takes long, high enough for most inputs to convert.
FUZZ_LIMITS = dataclasses.replace(LIMITS, max_duration_s=60.0)

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _convert_or_refuse(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work_dir = Path(folder)
        mp3_path = work_dir / "out.mp3"
        # A hang inside native code never reaches the alarm's handler: dump
        # every stack and end the run instead of blocking it forever.
        faulthandler.dump_traceback_later(2 * HANG_S, exit=True)
        try:
            with hang_deadline():
                result = convert(
                    Pieces(case.data, piece=8191),
                    mp3_path=mp3_path,
                    options=EncodeOptions(),
                    limits=FUZZ_LIMITS,
                    work_dir=work_dir,
                )
        except AudiovaultError as error:
            event(f"refused: {error.code}")
            check_refusal(error)
            assert list(work_dir.iterdir()) == []
        else:
            event("converted")
            check_conversion(case.data, result, limits=FUZZ_LIMITS)
            assert [path.name for path in work_dir.iterdir()] == ["out.mp3"]
        finally:
            faulthandler.cancel_dump_traceback_later()


@fuzz_settings
@given(case=random_headers())
def test_random_headers_give_a_verified_mp3_or_a_4xx(case: Case) -> None:
    _convert_or_refuse(case)


@fuzz_settings
@given(case=mutated_files())
def test_mutated_files_give_a_verified_mp3_or_a_4xx(case: Case) -> None:
    _convert_or_refuse(case)
