"""Errors raised by the object store adapters, each with a stable S3-like code."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every object store failure; `code` names it the way S3 would."""

    code: str = "StorageError"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class StorageUnavailable(StorageError):
    """The store cannot be reached, refuses the credentials, or lacks the bucket."""

    code = "ServiceUnavailable"


class ObjectNotFound(StorageError):
    """No object by that name in the bucket."""

    code = "NoSuchKey"


class InvalidSignature(StorageError):
    """A locally signed URL was tampered with, malformed or has expired."""

    code = "SignatureDoesNotMatch"
