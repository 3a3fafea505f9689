"""Object store adapters: buckets, object names and signed download URLs."""

from storage.base import ObjectStore, StoredObject, content_disposition
from storage.errors import (
    InvalidSignature,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from storage.local import LocalStore
from storage.s3 import S3Store

__all__ = [
    "InvalidSignature",
    "LocalStore",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "content_disposition",
]
