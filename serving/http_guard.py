"""What every request meets before BentoML parses it: body cap, content type, bearer tokens, the concurrency cap,
and the watch for clients that hang up.

- Bodies over MEMORIA_MAX_BODY_BYTES (default 1 MiB) get 413 as soon as the declared length or the bytes read so
  far exceed it: a 50 MB body is never read whole.
- POST bodies must be declared `Content-Type: application/json` (415 otherwise, naming the header). A missing
  header is not read as JSON: a browser sends a cross-site "simple" POST (text/plain, form encodings, or no
  body type) without asking first, so reading those as JSON would let any web page call a service on localhost.
  (BentoML also tried its multipart parser on such bodies and answered 500 when the boundary was missing.) A POST
  with an empty body needs no type: it carries nothing to misread.
- MEMORIA_API_TOKEN, when set, is required as `Authorization: Bearer <token>` on the prediction endpoints (401
  otherwise), and on their explanations (/sentiment/explain, /translate/explain) and corrections
  (/feedback). Probes, /metrics, the OpenAPI
  page and /docs.json stay open.
- /admin/* is refused unless MEMORIA_ADMIN_TOKEN is set (401 without credentials, 403 with), and needs that
  token (401 otherwise).
- At most MEMORIA_MAX_CONCURRENT_REQUESTS (default 256) prediction and explanation requests are in flight per
  worker; past it, 503 with Retry-After at once, before the body is read. Why a cap beside the model queue's own
  bounds (serving/batcher.py): it bounds what a worker holds (bodies, parsed texts, pending answers) whatever the
  endpoint, and refuses in microseconds. The default is far above what the queue bounds let through on 2 cores,
  and above closed-loop loads that the service answers in time (128 clients over 2 workers).
- A client that disconnects before its answer: its request is cancelled, so its texts leave the model's queue
  unrun (the batcher drops cancelled jobs) instead of being computed for nobody.
Error bodies are `{"error": "<message>"}`, like BentoML's own; they never carry a trace or a path.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from typing import Any

Scope = dict[str, Any]
PREDICTION_PATHS = frozenset({"/sentiment", "/translate", "/sentiment/explain", "/translate/explain", "/feedback"})
ADMIN_PREFIX = "/admin/"
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_CONCURRENT = 256
CONCURRENCY_RETRY_AFTER_S = 1
WATCH_AFTER_S = 0.01  # requests answered sooner are not watched for a disconnect (nothing left to drop)
CLIENT_GONE = 499  # nginx's "client closed request": what the access log shows; nobody receives it

log = logging.getLogger("bentoml.memoria")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: must be a whole number of at least 1")
    return int(raw)


def max_body_bytes() -> int:
    return _env_int("MEMORIA_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)


def max_concurrent_requests() -> int:
    return _env_int("MEMORIA_MAX_CONCURRENT_REQUESTS", DEFAULT_MAX_CONCURRENT)


class BodyTooLarge(Exception):
    pass


class HttpGuard:
    """ASGI middleware (added with `Service.add_asgi_middleware`). Settings are read once, at start."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.max_body = max_body_bytes()
        self.max_concurrent = max_concurrent_requests()
        self.in_flight = 0  # prediction/explanation requests in this worker (one event loop: no lock needed)
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
        counted = path in PREDICTION_PATHS
        if counted and self.in_flight >= self.max_concurrent:
            limit = f"MEMORIA_MAX_CONCURRENT_REQUESTS={self.max_concurrent}"
            return await _busy(send, f"overloaded: {limit} requests in flight", CONCURRENCY_RETRY_AFTER_S)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type != "application/json":
            return await _error(send, 415, _type_message(media_type))
        try:
            body = await _read_body(receive, self.max_body)
        except BodyTooLarge:
            return await _error(send, 413, f"request body is larger than {self.max_body} bytes")
        if not media_type and body:  # no type declared, and a body to misread
            return await _error(send, 415, _type_message(media_type))
        if not counted:
            return await self.app(scope, _replay(body, receive), send)
        self.in_flight += 1
        try:
            await _run_watching(self.app, scope, body, receive, send)
        finally:
            self.in_flight -= 1


def _type_message(media_type: str) -> str:
    given = f"it is {media_type!r}" if media_type else "the header is missing"
    return f"Content-Type must be application/json ({given})"


async def _run_watching(app: Any, scope: Scope, body: bytes, receive: Any, send: Any) -> None:
    """Run the app on `body`; if the client disconnects before the answer starts, cancel it (its queued work is
    then dropped unrun) and answer 499 into the void, which ends the request for the middlewares outside.

    The app runs in this task (no task per request); the watcher cancels this task, and the cancellation it caused
    is told apart from one from outside (the timeout's) by Task.cancelling()."""
    responded = False
    hung_up = False
    gone = asyncio.Event()
    current = asyncio.current_task()
    assert current is not None

    async def tracked_send(message: dict[str, Any]) -> None:
        nonlocal responded
        if message["type"] == "http.response.start":
            responded = True
        await send(message)

    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()  # after the body only a disconnect can come, which the watcher below receives
        return {"type": "http.disconnect"}

    async def watch() -> None:
        nonlocal hung_up
        # The body was read whole, so the server's next message is the disconnect: when the client hangs up, or
        # when the answer is complete (uvicorn then reports one too).
        await receive()
        gone.set()
        if not responded:
            hung_up = True
            current.cancel()

    watcher: asyncio.Future[None] | None = None

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    # Only a request still unanswered after WATCH_AFTER_S gets a watcher: most are answered sooner, and a timer
    # costs a fraction of a task (measured per request over the old guard: +7 us, against +25-40 us with a task).
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        await app(scope, replay, tracked_send)
    except asyncio.CancelledError:
        if not hung_up or current.cancelling() > 1:  # cancelled from outside (the timeout), maybe as well
            raise
        current.uncancel()
        log.info("%s: client disconnected before the answer; its work was dropped", scope["path"])
        await _error(send, CLIENT_GONE, "client closed the request")
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


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


async def _busy(send: Any, message: str, retry_after_s: int) -> None:
    await _error(send, 503, message, retry_after_s=retry_after_s)


async def _error(send: Any, status: int, message: str, bearer: bool = False, retry_after_s: int | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="memoria"'))
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read; don't reuse the connection
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
