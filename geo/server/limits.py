"""A bound on request bodies: a huge upload is refused with a 413 before it is read whole."""

from __future__ import annotations

import json


class TooLarge(Exception):
    """Raised while a body is read past the limit (turned into a 413 by :class:`BodyLimit`)."""


class BodyLimit:
    """ASGI middleware: a body longer than ``limit`` bytes gets a 413 problem document, from its
    ``Content-Length`` when it says so, else as soon as the bytes received pass the limit."""

    def __init__(self, app, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge
            return message

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Envoi trop volumineux",
                "status": 413,
                "detail": f"corps de requête de plus de {self.limit // 1024} Kio",
                "correction": "envoyez un fichier de 2 Mo et 5 000 lignes au plus",
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
