"""Settings, read once from the AUDIOVAULT_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PREFIX = "AUDIOVAULT_"
GIB = 1024**3


class SettingsError(ValueError):
    """A variable is present but cannot be used."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service can be told, with the embedded defaults."""

    data_dir: Path = Path("./var")
    database_url: str = ""
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_bucket: str = "recordings"
    s3_region: str = "us-east-1"
    public_base_url: str = ""
    secret_key: str = field(default="", repr=False)
    max_upload_bytes: int = GIB
    max_duration_s: float = 4 * 3600.0
    min_sample_rate: int = 1000
    max_channels: int = 32
    workers: int = 0
    queue_size: int = -1
    url_expires_s: int = 3600
    upload_idle_timeout_s: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = "console"
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, filling the derived defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = environ.get(PREFIX + spec.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[spec.name] = _parse(spec.name, raw.strip(), spec.type)
        return cls(**values)._with_defaults()  # type: ignore[arg-type]

    def _with_defaults(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        workers = self.workers if self.workers > 0 else os.cpu_count() or 1
        return replace(
            self,
            data_dir=data_dir,
            database_url=_async_driver(
                self.database_url or f"sqlite:///{data_dir / 'audiovault.db'}"
            ),
            s3_endpoint=self.s3_endpoint.rstrip("/"),
            s3_public_endpoint=(self.s3_public_endpoint or self.s3_endpoint).rstrip(
                "/"
            ),
            public_base_url=self.public_base_url.rstrip("/"),
            workers=workers,
            queue_size=self.queue_size if self.queue_size >= 0 else 2 * workers,
        )._validated()

    def _validated(self) -> Settings:
        if self.s3_endpoint and not (self.s3_access_key and self.s3_secret_key):
            raise SettingsError(
                "AUDIOVAULT_S3_ACCESS_KEY and AUDIOVAULT_S3_SECRET_KEY are required "
                "with AUDIOVAULT_S3_ENDPOINT"
            )
        for name in (
            "max_upload_bytes",
            "max_duration_s",
            "min_sample_rate",
            "upload_idle_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.max_channels < 1:
            raise SettingsError(f"{PREFIX}MAX_CHANNELS must be at least 1")
        return self

    @property
    def uses_s3(self) -> bool:
        """True when recordings live in an S3 store rather than in DATA_DIR."""
        return bool(self.s3_endpoint)

    def signing_key(self) -> bytes:
        """The key for token hashes and local download URLs.

        Taken from AUDIOVAULT_SECRET_KEY; without it, one is generated once and
        kept in DATA_DIR so tokens stay valid across restarts.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
        return path.read_text().strip().encode()


def _parse(name: str, raw: str, kind: object) -> object:
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if kind in ("Path", Path):
            return Path(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a number") from None
    return raw


def _async_driver(url: str) -> str:
    """Accept plain PostgreSQL and SQLite URLs and pick the async driver."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url
