"""Health, schema and errors outside the recording routes."""

from __future__ import annotations

import httpx

from tests.conftest import ApiUser
from tests.e2e.test_recordings import assert_problem


def test_liveness_and_readiness(client: httpx.Client) -> None:
    assert client.get("/health/live").status_code == 200

    ready = client.get("/health/ready")

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": "ok",
        "bucket": "ok",
        "encoder": "ok",
    }


def test_openapi_schema_lists_the_routes(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/users" in paths
    assert "/api/v1/users/{user_id}/recordings" in paths
    assert "/record" in paths
    upload = paths["/api/v1/users/{user_id}/recordings"]["post"]["requestBody"]
    assert {"multipart/form-data", "audio/wav"} <= upload["content"].keys()
    assert client.get("/schema").status_code == 200


def test_unknown_routes_and_ids_are_problem_404(client: httpx.Client) -> None:
    assert_problem(client.get("/nowhere"), 404, "not_found")
    assert_problem(client.get("/api/v1/users/not-a-uuid/recordings"), 404, "not_found")


def test_wrong_method_is_a_problem(client: httpx.Client) -> None:
    response = client.put("/api/v1/users")

    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")


def test_metrics_count_uploads(client: httpx.Client, user: ApiUser) -> None:
    client.post(
        user.recordings,
        content=b"OggS" + bytes(100),
        headers={**user.auth, "Content-Type": "audio/wav"},
    )

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'audiovault_uploads_total{outcome="unsupported_media"}' in response.text
    assert "audiovault_conversion_seconds_bucket" in response.text
