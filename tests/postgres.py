"""A throwaway PostgreSQL database for the tests.

Uses the server on 127.0.0.1:5432 when one answers; otherwise starts a
temporary cluster (as the `postgres` user, since initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5432


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")):
        return str(candidate)
    raise RuntimeError(f"{name} not found: install PostgreSQL")


@contextmanager
def _temporary_cluster() -> Iterator[tuple[str, int]]:
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="audiovault-pg-"))
    if as_postgres:
        shutil.chown(directory, "postgres")
    data, port = directory / "data", _free_port()
    subprocess.run(
        [
            *as_postgres,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_postgres,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(directory / "log"),
            "-o",
            f"-p {port} -k {directory} -h 127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield DEFAULT_HOST, port
    finally:
        subprocess.run(
            [
                *as_postgres,
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _server() -> Iterator[tuple[str, int]]:
    if _answers(DEFAULT_HOST, DEFAULT_PORT):
        yield DEFAULT_HOST, DEFAULT_PORT
    else:
        with _temporary_cluster() as address:
            yield address


def _psql(host: str, port: int, sql: str) -> None:
    subprocess.run(
        [
            _pg_bin("psql"),
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    """Host and port of a PostgreSQL server the tests may create databases on."""
    with _server() as address:
        yield address


@pytest.fixture(scope="session")
def postgres_database(postgres_server: tuple[str, int]) -> Iterator[str]:
    """A fresh, empty database for the whole test session, dropped afterwards."""
    host, port = postgres_server
    name = f"audiovault_test_{uuid.uuid4().hex[:12]}"
    _psql(host, port, f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{host}:{port}/{name}"
    finally:
        _psql(host, port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
