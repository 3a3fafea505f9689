"""Read what is left of a request body before answering, so clients hear the answer.

A client that writes its whole body before reading (many HTTP libraries do,
and `Connection: close` makes it certain) gets a connection reset instead of
the answer when the server replies early and closes with the body unread.
Refusals of uploads (401, 403, 415, 503 busy...) come early by design.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_IDLE_S = 2.0


def drain_unread_body(app: ASGIApp) -> ASGIApp:
    """Drain up to DRAIN_MAX_BYTES of an unread body before the answer starts.

    A client that waits for `100 Continue` has sent nothing yet and is told no
    without being asked for the body; a larger body is left unread.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        waits_for_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or (
            b"transfer-encoding" in headers
        )
        ended = not has_body
        read_any = False

        async def tracked_receive() -> ReceiveMessage:
            nonlocal ended, read_any
            message = await receive()
            read_any = True
            if message["type"] != "http.request" or not message.get("more_body"):
                ended = True
            return message

        async def draining_send(message: Message) -> None:
            # A 408 answers a client that stopped sending: waiting is pointless.
            if (
                message["type"] == "http.response.start"
                and message["status"] != HTTP_408_REQUEST_TIMEOUT
                and not ended
                and (read_any or not waits_for_continue)
            ):
                await _drain(tracked_receive)
            await send(message)

        await app(scope, tracked_receive, draining_send)

    return middleware


async def _drain(receive: Receive) -> None:
    drained = 0
    while drained <= DRAIN_MAX_BYTES:
        try:
            message = await asyncio.wait_for(receive(), DRAIN_IDLE_S)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            return
