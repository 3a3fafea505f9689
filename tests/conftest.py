"""Fixtures shared by every test: PostgreSQL, the S3 server, the corpus."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import RunningService, running_service

pytest_plugins = ["tests.postgres", "tests.s3server"]

CORPUS = Path(
    os.environ.get("AUDIOVAULT_TEST_CORPUS")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
)
BACKENDS = ("postgres_s3", "sqlite_local")


def corpus_manifest() -> list[dict[str, Any]]:
    """The corpus entries, or none when the corpus is not beside the repo."""
    manifest = CORPUS / "manifest.json"
    if not manifest.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text())
    return entries


needs_corpus = pytest.mark.skipif(
    not (CORPUS / "manifest.json").exists(),
    reason="the shared corpus is not beside this clone",
)


@pytest.fixture(scope="session", params=BACKENDS)
def service(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """The service running for real, once per storage setup."""
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(backend)
    env = {"AUDIOVAULT_DATA_DIR": str(data_dir), "AUDIOVAULT_WORKERS": "2"}
    if backend == "postgres_s3":
        s3 = request.getfixturevalue("s3_server")
        env |= {
            "AUDIOVAULT_DATABASE_URL": request.getfixturevalue("postgres_database"),
            "AUDIOVAULT_S3_ENDPOINT": s3.endpoint,
            "AUDIOVAULT_S3_ACCESS_KEY": s3.access_key,
            "AUDIOVAULT_S3_SECRET_KEY": s3.secret_key,
            "AUDIOVAULT_S3_REGION": s3.region,
            "AUDIOVAULT_S3_BUCKET": f"e2e-{uuid.uuid4().hex[:8]}",
        }
    with running_service(env, log_path=data_dir / "service.log") as running:
        yield running


@pytest.fixture
def client(service: RunningService) -> Iterator[httpx.Client]:
    """An HTTP client on the running service."""
    with httpx.Client(base_url=service.base_url, timeout=120) as http:
        yield http


class ApiUser:
    """A user created through the API, with its token at hand."""

    def __init__(self, client: httpx.Client, username: str | None = None) -> None:
        username = username or f"user-{uuid.uuid4().hex[:10]}"
        response = client.post("/api/v1/users", json={"username": username})
        assert response.status_code == 201, response.text
        body = response.json()
        self.id: str = body["id"]
        self.token: str = body["token"]
        self.username: str = body["username"]
        self.recordings = f"/api/v1/users/{self.id}/recordings"

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header of this user."""
        return {"Authorization": f"Bearer {self.token}"}

    def upload(self, client: httpx.Client, wav: bytes) -> httpx.Response:
        """Upload WAV bytes as a raw body with this user's token."""
        return client.post(
            self.recordings,
            content=wav,
            headers={**self.auth, "Content-Type": "audio/wav"},
        )


@pytest.fixture
def user(client: httpx.Client) -> ApiUser:
    """A fresh user."""
    return ApiUser(client)
