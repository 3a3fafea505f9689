"""Prometheus metrics of the service, served at /metrics."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

UPLOADS = Counter(
    "audiovault_uploads",
    "Uploads by outcome: the stable error code, or 'stored'.",
    ["outcome"],
    registry=REGISTRY,
)
CONVERSION_SECONDS = Histogram(
    "audiovault_conversion_seconds",
    "Time from the first upload byte to a verified MP3.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
AUDIO_SECONDS = Counter(
    "audiovault_audio_seconds",
    "Seconds of audio converted and stored.",
    registry=REGISTRY,
)
STORED_BYTES = Counter(
    "audiovault_stored_bytes",
    "Bytes of MP3 put in the object store.",
    registry=REGISTRY,
)


@get("/metrics", summary="Prometheus metrics", sync_to_thread=False)
def metrics() -> Response[bytes]:
    """The metrics in Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
