"""The request-size limit: a body larger than the limit is answered 413 before it is read whole.

Starlette has no such limit of its own, hence this small ASGI middleware: a declared
``Content-Length`` above the limit is refused before a byte of the body is read; a body without
one (chunked) is counted as it arrives and refused at the first byte past the limit.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware answering 413 to HTTP requests whose body exceeds ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        too_large = started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started, refused
            if too_large:  # the application's answer to _TooLarge (a 500) becomes the 413
                if not refused and not started:
                    refused = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not refused and not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        limit_mb = self.max_bytes / 1e6
        body = json.dumps({"detail": f"request larger than the server's limit of {limit_mb:g} MB: send fewer or "
                                     "smaller photographs per request (funduskit serve --max-upload-mb)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
