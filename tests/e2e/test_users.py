"""Creating users over real HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from tests.e2e.test_recordings import assert_problem


def test_create_user_returns_id_token_and_time(client: httpx.Client) -> None:
    name = f"Алиса_{uuid.uuid4().hex[:6]}"

    response = client.post("/api/v1/users", json={"username": f"  {name} "})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == {"id", "username", "token", "created_at"}
    assert body["username"] == name
    assert uuid.UUID(body["id"])
    assert len(body["token"]) >= 32
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


def test_usernames_are_unique_ignoring_case(client: httpx.Client) -> None:
    name = f"Bob.{uuid.uuid4().hex[:6]}"
    assert client.post("/api/v1/users", json={"username": name}).status_code == 201

    again = client.post("/api/v1/users", json={"username": name.upper()})

    assert_problem(again, 409, "username_taken")


@pytest.mark.parametrize(
    "username", ["", "   ", "a" * 65, "white space", "semi;colon", "emoji🙂", "a/b"]
)
def test_bad_usernames_are_refused(client: httpx.Client, username: str) -> None:
    response = client.post("/api/v1/users", json={"username": username})

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"username": 5}', b"[]"],
)
def test_malformed_user_bodies_get_a_4xx_problem(
    client: httpx.Client, body: bytes
) -> None:
    response = client.post(
        "/api/v1/users", content=body, headers={"Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in {"bad_request", "validation_error"}
