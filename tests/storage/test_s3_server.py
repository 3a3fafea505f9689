"""The test S3 server stays on loopback and demands its credentials."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.s3server import S3Server, require_loopback

_LISTEN = "0A"


def listening_addresses(pid: int) -> list[str]:
    """The local addresses of the TCP sockets process `pid` listens on."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with_target = os.readlink(descriptor)
        if with_target.startswith("socket:["):
            inodes.add(with_target.removeprefix("socket:[").removesuffix("]"))
    addresses = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                addresses.append(fields[1].rsplit(":", 1)[0])
    return addresses


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_server_listens_on_loopback_only(s3_server: S3Server) -> None:
    addresses = listening_addresses(s3_server.pid)

    # 0100007F is 127.0.0.1 as /proc/net/tcp writes it.
    assert len(addresses) >= 9
    assert set(addresses) == {"0100007F"}


def test_anonymous_request_is_refused(s3_server: S3Server) -> None:
    response = httpx.get(f"{s3_server.endpoint}/")

    assert response.status_code == 403


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://localhost:8333",
        "http://10.0.0.5:8333",
        "https://127.0.0.1:8333",
        "http://127.0.0.1.example.com:8333",
        "http://[::1]:8333",
    ],
)
def test_only_plain_http_on_127_0_0_1_is_accepted(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        require_loopback(endpoint)


def test_loopback_endpoint_is_accepted() -> None:
    require_loopback("http://127.0.0.1:8333")
