"""What every request meets before BentoML parses it: body cap, content type, bearer tokens.

- Bodies over MEMORIA_MAX_BODY_BYTES (default 1 MiB) get 413 as soon as the declared length or the bytes read so
  far exceed it: a 50 MB body is never read whole.
- POST bodies must be JSON (415 otherwise): BentoML would try its multipart parser on them and answer 500 when
  the boundary is missing.
- MEMORIA_API_TOKEN, when set, is required as `Authorization: Bearer <token>` on the prediction endpoints (401
  otherwise), and on their explanations (/sentiment/explain, /translate/explain). Probes, /metrics, the OpenAPI
  page and /docs.json stay open.
- /admin/* is refused unless MEMORIA_ADMIN_TOKEN is set (401 without credentials, 403 with), and needs that
  token (401 otherwise).
Error bodies are `{"error": "<message>"}`, like BentoML's own; they never carry a trace or a path.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

Scope = dict[str, Any]
PREDICTION_PATHS = frozenset({"/sentiment", "/translate", "/sentiment/explain", "/translate/explain"})
ADMIN_PREFIX = "/admin/"
DEFAULT_MAX_BODY_BYTES = 1 << 20


def max_body_bytes() -> int:
    return int(os.environ.get("MEMORIA_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


class BodyTooLarge(Exception):
    pass


class HttpGuard:
    """ASGI middleware (added with `Service.add_asgi_middleware`). Settings are read once, at start."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.max_body = max_body_bytes()
        self.api_token = os.environ.get("MEMORIA_API_TOKEN") or None
        self.admin_token = os.environ.get("MEMORIA_ADMIN_TOKEN") or None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        if path.startswith(ADMIN_PREFIX):
            if self.admin_token is None:
                # No credentials at all is a 401 (what HTTP clients expect); credentials that cannot be right: 403.
                status = 403 if "authorization" in headers else 401
                message = "admin endpoints are disabled: set MEMORIA_ADMIN_TOKEN to enable them"
                return await _error(send, status, message)
            if not _bearer_matches(headers, self.admin_token):
                return await _error(send, 401, "missing or wrong admin token (Authorization: Bearer ...)", bearer=True)
        elif path in PREDICTION_PATHS and self.api_token is not None and not _bearer_matches(headers, self.api_token):
            return await _error(send, 401, "missing or wrong API token (Authorization: Bearer ...)", bearer=True)

        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await _error(send, 413, f"request body is larger than {self.max_body} bytes")
        media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media_type != "application/json":
            return await _error(send, 415, "Content-Type must be application/json")
        try:
            body = await _read_body(receive, self.max_body)
        except BodyTooLarge:
            return await _error(send, 413, f"request body is larger than {self.max_body} bytes")
        return await self.app(scope, _replay(body, receive), send)


def _bearer_matches(headers: dict[str, str], token: str) -> bool:
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def _read_body(receive: Any, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


async def _error(send: Any, status: int, message: str, bearer: bool = False) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="memoria"'))
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read; don't reuse the connection
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
