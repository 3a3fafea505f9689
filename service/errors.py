"""Domain errors with stable codes; only the HTTP layer maps codes to statuses."""

from __future__ import annotations


class AudiovaultError(Exception):
    """Root of every error the service reports to a client."""

    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(AudiovaultError):
    code = "bad_request"


class Unauthorized(AudiovaultError):
    code = "unauthorized"


class Forbidden(AudiovaultError):
    code = "forbidden"


class RequestTimeout(AudiovaultError):
    code = "request_timeout"


class NotFound(AudiovaultError):
    code = "not_found"


class UsernameTaken(AudiovaultError):
    code = "username_taken"


class PayloadTooLarge(AudiovaultError):
    code = "payload_too_large"


class UnsupportedMedia(AudiovaultError):
    code = "unsupported_media"


class InvalidAudio(AudiovaultError):
    code = "invalid_audio"


class ValidationFailed(AudiovaultError):
    code = "validation_error"


class Busy(AudiovaultError):
    code = "busy"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(AudiovaultError):
    code = "unavailable"
