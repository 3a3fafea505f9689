"""Every error as application/problem+json (RFC 9457), with a stable code."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.errors import AudiovaultError
from storage import StorageError, StorageUnavailable

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:audiovault:problem:"
log = structlog.get_logger()

STATUS_BY_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "username_taken": 409,
    "payload_too_large": 413,
    "unsupported_media": 415,
    "range_not_satisfiable": 416,
    "invalid_audio": 422,
    "validation_error": 422,
    "busy": 503,
    "unavailable": 503,
    "internal_error": 500,
}
TITLES = {
    "bad_request": "Malformed request",
    "unauthorized": "Missing or wrong token",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "request_timeout": "Upload stalled",
    "username_taken": "Username taken",
    "payload_too_large": "Upload too large",
    "unsupported_media": "Unsupported media",
    "range_not_satisfiable": "Range not satisfiable",
    "invalid_audio": "Audio cannot be converted",
    "validation_error": "Invalid field or parameter",
    "busy": "Converters busy",
    "unavailable": "Dependency unavailable",
    "internal_error": "Internal error",
}
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media",
    416: "range_not_satisfiable",
    422: "validation_error",
    503: "unavailable",
}


def problem(
    code: str, detail: str, *, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """A problem+json response for a stable error code."""
    status = STATUS_BY_CODE[code]
    body = {
        "type": TYPE_BASE + code,
        "title": TITLES[code],
        "status": status,
        "detail": detail,
        "code": code,
    }
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def domain_error(
    request: Request[Any, Any, Any], exc: AudiovaultError
) -> Response[bytes]:
    """A domain error as raised by the service."""
    headers = None
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    if exc.code in ("unavailable",):
        log.error("request.dependency_failed", detail=exc.detail)
    return problem(exc.code, exc.detail, headers=headers)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors: routing, parameters, body decoding."""
    if isinstance(exc, ValidationException):
        return problem("validation_error", _validation_detail(exc))
    code = CODE_BY_STATUS.get(exc.status_code)
    if code is None:
        code = "bad_request" if exc.status_code < 500 else "internal_error"
        if exc.status_code >= 500:
            log.error("request.failed", status=exc.status_code, detail=exc.detail)
    return problem(code, exc.detail or TITLES[code], headers=exc.headers)


def storage_error(
    request: Request[Any, Any, Any], exc: StorageError
) -> Response[bytes]:
    """The object store failed or refused: the client can only retry later."""
    if isinstance(exc, StorageUnavailable):
        log.error("storage.unavailable", code=exc.code)
        return problem("unavailable", "the object store cannot be reached")
    log.error("storage.failed", code=exc.code)
    return problem("unavailable", "the object store refused the request")


def database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The database (or another dependency's socket) cannot be reached."""
    log.error("dependency.unavailable", error=type(exc).__name__)
    return problem("unavailable", "a dependency of the service cannot be reached")


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    """A body nested so deeply that decoding it ran out of stack."""
    return problem("bad_request", "the request body is nested too deeply")


def unexpected_error(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[bytes]:
    """A bug: logged with its traceback, answered without internals."""
    log.exception("request.unexpected_error")
    return problem("internal_error", "an unexpected error occurred")


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            key = item.get("key")
            parts.append(f"{key}: {item['message']}" if key else str(item["message"]))
    return "; ".join(parts) or exc.detail or "invalid request"


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AudiovaultError: domain_error,
    HTTPException: http_error,
    StorageError: storage_error,
    OperationalError: database_error,
    DBAPIError: database_error,
    PoolTimeout: database_error,
    OSError: database_error,
    RecursionError: too_deep,
    Exception: unexpected_error,
}
