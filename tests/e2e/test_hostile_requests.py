"""Requests meant to hang, crash or confuse the service get a clear 4xx."""

from __future__ import annotations

import base64
import http.client
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.conftest import ApiUser
from tests.e2e.test_recordings import assert_problem, sine_wav
from tests.server import RunningService, running_service


def _raw_request(base_url: str, head: str, parts: list[bytes], pause_s: float) -> bytes:
    """Send a request in parts with pauses, and read the whole answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(head.encode())
        for part in parts:
            sock.sendall(part)
            time.sleep(pause_s)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_refusal_is_answered_while_the_body_is_still_arriving(
    service: RunningService, user: ApiUser
) -> None:
    text = b"This is not audio at all, only words in a file named .wav\n" * 40
    head = (
        f"POST {user.recordings} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: audio/wav\r\n"
        f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
    )

    started = time.monotonic()
    answer = _raw_request(service.base_url, head, [text[:64], text[64:]], 1.0)

    assert answer.startswith(b"HTTP/1.1 415"), answer[:200]
    assert time.monotonic() - started < 15


def test_a_stalled_upload_is_dropped_and_frees_its_converter(
    service: RunningService, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in service.env.items() if k.startswith("AUDIOVAULT_")},
        "AUDIOVAULT_UPLOAD_IDLE_TIMEOUT_S": "1",
        "AUDIOVAULT_WORKERS": "1",
        "AUDIOVAULT_QUEUE_SIZE": "0",
    }
    wav = sine_wav(seconds=1)
    with (
        running_service(env, log_path=tmp_path / "log") as small,
        httpx.Client(base_url=small.base_url, timeout=60) as http,
    ):
        owner = ApiUser(http)
        head = (
            f"POST {owner.recordings} HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {owner.token}\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {len(wav)}\r\nConnection: close\r\n\r\n"
        )

        stalled = _raw_request(small.base_url, head, [wav[:20000]], 3.0)
        after = http.post(
            owner.recordings,
            content=wav,
            headers={**owner.auth, "Content-Type": "audio/wav"},
        )

    assert stalled.startswith(b"HTTP/1.1 408"), stalled[:200]
    assert b'"code":"request_timeout"' in stalled
    assert after.status_code == 201, after.text


def test_a_forged_cursor_far_in_time_is_refused(
    client: httpx.Client, user: ApiUser
) -> None:
    for moment in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"):
        raw = f"{moment}|00000000-0000-0000-0000-000000000000".encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

        response = client.get(
            user.recordings, params={"cursor": cursor}, headers=user.auth
        )

        assert_problem(response, 400, "bad_request")


def test_deeply_nested_json_is_refused(client: httpx.Client) -> None:
    for body in ("[" * 5000 + "]" * 5000, '{"username": ' + "[" * 5000 + "]" * 5000):
        response = client.post(
            "/api/v1/users",
            content=body,
            headers={"Content-Type": "application/json"},
        )

        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_utf8_names_in_a_raw_upload_header_survive(
    client: httpx.Client, user: ApiUser
) -> None:
    header = 'attachment; filename="голос.wav"'.encode()

    response = client.post(
        user.recordings,
        content=sine_wav(seconds=0.2),
        headers={
            **user.auth,
            "Content-Type": "audio/wav",
            "Content-Disposition": header,
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "голос.mp3"


def test_a_latin1_name_in_a_multipart_header_is_kept(
    client: httpx.Client, user: ApiUser
) -> None:
    wav = sine_wav(seconds=0.2)
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="caf\xe9.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + wav + b"\r\n--b0undary--\r\n"
    )

    response = client.post(
        user.recordings,
        content=body,
        headers={**user.auth, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "café.mp3"


def test_two_file_parts_are_refused(client: httpx.Client, user: ApiUser) -> None:
    wav = sine_wav(seconds=0.2)

    response = client.post(
        user.recordings,
        files=[("file", ("a.wav", wav, "audio/wav")), ("file", ("b.wav", wav))],
        headers=user.auth,
    )

    assert_problem(response, 400, "bad_request")
    assert "one WAV per upload" in response.json()["detail"]


def test_record_link_answers_head_and_missing_ids(
    client: httpx.Client, user: ApiUser
) -> None:
    created = user.upload(client, sine_wav(seconds=0.2)).json()

    head = client.head(created["download_url"])

    assert head.status_code == 307
    assert head.headers["location"]
    assert_problem(client.get("/record"), 404, "not_found")
    assert_problem(
        client.get("/record", params={"id": created["id"]}), 404, "not_found"
    )


def test_a_username_of_only_a_combining_mark_is_refused(client: httpx.Client) -> None:
    response = client.post("/api/v1/users", json={"username": "\u0301"})

    assert_problem(response, 422, "validation_error")


def test_a_refused_upload_is_heard_by_a_client_that_sends_everything_first(
    service: RunningService, user: ApiUser
) -> None:
    address = urlsplit(service.base_url)
    body = bytes(12 * 1024 * 1024)  # more than the socket buffers hold
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)

    connection.request(
        "POST",
        user.recordings,
        body=body,
        headers={
            "Authorization": "Bearer not-a-token",
            "Content-Type": "audio/wav",
            "Connection": "close",
        },
    )
    response = connection.getresponse()

    assert response.status == 401
    assert b'"code":"unauthorized"' in response.read()
    connection.close()


def test_a_malformed_host_is_refused_before_anything_is_stored(
    service: RunningService, user: ApiUser
) -> None:
    wav = sine_wav(seconds=0.2)
    head = (
        f"POST {user.recordings} HTTP/1.1\r\nHost: x:notaport\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: audio/wav\r\n"
        f"Content-Length: {len(wav)}\r\nConnection: close\r\n\r\n"
    )

    answer = _raw_request(service.base_url, head, [wav], 0)

    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    listing = httpx.get(service.base_url + user.recordings, headers=user.auth)
    assert listing.json()["items"] == []


def test_concurrent_deletes_of_one_recording_succeed_once(
    client: httpx.Client, user: ApiUser
) -> None:
    created = user.upload(client, sine_wav(seconds=0.2)).json()
    url = f"{client.base_url}{user.recordings}/{created['id']}"

    with ThreadPoolExecutor(6) as threads:
        statuses = list(
            threads.map(
                lambda _: httpx.delete(url, headers=user.auth).status_code, range(6)
            )
        )

    assert sorted(statuses) == [204, 404, 404, 404, 404, 404]
