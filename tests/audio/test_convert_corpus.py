"""Every corpus file through `convert`, in this process, as the manifest says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.audio.convert import convert
from service.audio.types import EncodeOptions
from service.errors import AudiovaultError
from tests.audio.expect import LIMITS, Pieces, check_converted, check_refused
from tests.conftest import CORPUS, corpus_manifest

ENTRIES = corpus_manifest()


@pytest.mark.skipif(not ENTRIES, reason="the shared corpus is not beside this clone")
@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["file"] for entry in ENTRIES])
def test_corpus_file(entry: dict[str, Any], tmp_path: Path) -> None:
    data = (CORPUS / "wav" / entry["file"]).read_bytes()
    mp3_path = tmp_path / "out.mp3"

    try:
        result = convert(
            Pieces(data),
            mp3_path=mp3_path,
            options=EncodeOptions(),
            limits=LIMITS,
            work_dir=tmp_path,
        )
    except AudiovaultError as error:
        assert entry["expect"] == "reject", f"refused: {error.detail}"
        check_refused(entry, error)
        assert not mp3_path.exists()
    else:
        assert entry["expect"] == "convert"
        check_converted(entry, data, result)
