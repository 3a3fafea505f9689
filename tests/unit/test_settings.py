"""Settings come from AUDIOVAULT_* variables, and the example file matches."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from service.settings import GIB, PREFIX, Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent.parent


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"AUDIOVAULT_DATA_DIR": str(tmp_path)})

    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/audiovault.db"
    assert not settings.uses_s3
    assert settings.max_upload_bytes == GIB
    assert settings.max_duration_s == 4 * 3600
    assert settings.s3_bucket == "recordings"
    assert settings.workers >= 1 and settings.queue_size == 2 * settings.workers


def test_plain_urls_get_the_async_drivers() -> None:
    postgres = Settings.from_env({"AUDIOVAULT_DATABASE_URL": "postgres://u@h/db"})

    assert postgres.database_url == "postgresql+asyncpg://u@h/db"


def test_public_endpoint_defaults_to_the_endpoint() -> None:
    settings = Settings.from_env(
        {
            "AUDIOVAULT_S3_ENDPOINT": "http://minio:9000/",
            "AUDIOVAULT_S3_ACCESS_KEY": "a",
            "AUDIOVAULT_S3_SECRET_KEY": "b",
        }
    )

    assert settings.s3_public_endpoint == "http://minio:9000"
    assert settings.uses_s3


@pytest.mark.parametrize(
    "environ",
    [
        {"AUDIOVAULT_MAX_UPLOAD_BYTES": "lots"},
        {"AUDIOVAULT_MAX_DURATION_S": "0"},
        {"AUDIOVAULT_S3_ENDPOINT": "http://minio:9000"},
    ],
)
def test_unusable_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(environ)


def test_generated_secret_key_is_kept(tmp_path: Path) -> None:
    settings = Settings.from_env({"AUDIOVAULT_DATA_DIR": str(tmp_path)})

    first = settings.signing_key()

    assert first == settings.signing_key()
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_env_example_names_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(rf"^#?\s*{PREFIX}([A-Z0-9_]+)=", text, re.MULTILINE))

    assert named == {spec.name.upper() for spec in fields(Settings)}
