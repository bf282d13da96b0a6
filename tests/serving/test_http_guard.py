"""The request guard (body cap, content type, tokens) and the completed OpenAPI document, as ASGI calls.

The downstream app records what reached it, so each test shows both the answer and whether the request got
through. The same guard is exercised over real HTTP in tests/test_e2e_http.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.http_guard import HttpGuard
from serving.openapi import complete


class Recorder:
    """An ASGI app that reads the whole body and answers 200 with its length."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


class Blocking:
    """An ASGI app that reads the body, then waits until released (or is cancelled)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = False
        self.cancelled = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await receive()
        self.entered = True
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def scope(path: str, method: str = "POST", headers: dict[str, str] | None = None) -> dict:
    headers = {"content-type": "application/json"} if headers is None else headers
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def call(
    app: Any,
    path: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    chunks=None,
    typed: bool = True,
) -> tuple[int, dict, bytes, int]:
    """(status, headers, body, bytes the app pulled from the client); `typed`: add a JSON Content-Type."""
    return asyncio.run(call_async(app, path, body, headers, method, chunks, typed))


async def call_async(
    app: Any,
    path: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    chunks=None,
    typed: bool = True,
) -> tuple[int, dict, bytes, int]:
    headers = {**({"content-type": "application/json"} if typed else {}), **(headers or {})}
    parts = list(chunks) if chunks is not None else [body]
    pulled = 0
    sent: list[dict] = []
    answered = asyncio.Event()

    async def receive() -> dict:
        nonlocal pulled
        if not parts:  # like uvicorn: after the body, the next message comes when the answer is complete
            await answered.wait()
            return {"type": "http.disconnect"}
        chunk = parts.pop(0)
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(scope(path, method, headers), receive, send)
    start = sent[0]
    response_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], response_headers, b"".join(m.get("body", b"") for m in sent[1:]), pulled


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch):
    def make(**env: str) -> tuple[HttpGuard, Recorder]:
        for name in (
            "MEMORIA_API_TOKEN",
            "MEMORIA_ADMIN_TOKEN",
            "MEMORIA_MAX_BODY_BYTES",
            "MEMORIA_MAX_CONCURRENT_REQUESTS",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = Recorder()
        return HttpGuard(app), app

    return make


def test_a_large_body_gets_413_without_being_read(guarded) -> None:
    guard, app = guarded(MEMORIA_MAX_BODY_BYTES="1000")
    status, _headers, body, pulled = call(guard, "/sentiment", headers={"content-length": str(50_000_000)})
    assert status == 413 and pulled == 0 and not app.bodies
    assert "larger than 1000 bytes" in json.loads(body)["error"]
    # Without a declared length (chunked upload): reading stops at the first chunk past the cap.
    status, _, _, pulled = call(guard, "/sentiment", chunks=[b"x" * 600] * 100)
    assert status == 413 and pulled == 1200 and not app.bodies
    # At the cap: passes through, whole.
    status, _, body, _ = call(guard, "/sentiment", chunks=[b"x" * 500, b"y" * 500])
    assert status == 200 and body == b"1000" and app.bodies == [b"x" * 500 + b"y" * 500]


def test_only_json_bodies_reach_the_api(guarded) -> None:
    guard, app = guarded()
    status, _, body, _ = call(guard, "/sentiment", headers={"content-type": "multipart/form-data"})
    assert status == 415 and "application/json" in json.loads(body)["error"] and not app.bodies
    assert call(guard, "/sentiment", headers={"content-type": "application/json; charset=utf-8"})[0] == 200


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_without_a_json_content_type_is_never_read_as_json(guarded, content_type: str | None) -> None:
    """A cross-site "simple" POST (no preflight) has one of these types, or none: 415 naming the header."""
    guard, app = guarded()
    headers = {"content-type": content_type} if content_type else {}
    status, _, body, _ = call(guard, "/sentiment", b'{"texts": ["hi"]}', headers=headers, typed=False)
    assert status == 415 and not app.bodies
    message = json.loads(body)["error"]
    assert "Content-Type must be application/json" in message
    assert ("missing" in message) if content_type is None else (content_type in message)
    # An empty body carries nothing to misread: it passes (and BentoML answers 400 for the missing field).
    assert call(guard, "/admin/reload", b"", typed=False)[0] == 401  # the admin guard still comes first
    assert call(guard, "/sentiment", b"", typed=False)[0] == 200


def test_past_the_concurrency_cap_a_request_gets_503_with_retry_after_before_its_body_is_read(guarded) -> None:
    guard, _ = guarded(MEMORIA_MAX_CONCURRENT_REQUESTS="2")
    guard.app = Blocking()

    async def main() -> list[tuple[int, dict, bytes, int]]:
        first = asyncio.ensure_future(call_async(guard, "/translate"))
        second = asyncio.ensure_future(call_async(guard, "/sentiment/explain"))
        while guard.in_flight < 2:
            await asyncio.sleep(0.001)
        third = await call_async(guard, "/sentiment")  # answered while the two are still running
        probe = asyncio.ensure_future(call_async(guard, "/readyz", method="GET"))  # not counted: reaches the app
        await asyncio.sleep(0.01)
        assert guard.app.entered and not probe.done()
        guard.app.release.set()
        return [await first, await second, third, await probe]

    first, second, third, probe = asyncio.run(main())
    assert first[0] == second[0] == 200 and probe[0] == 200
    status, headers, body, pulled = third
    assert status == 503 and headers["retry-after"] == "1" and pulled == 0
    assert json.loads(body) == {"error": "overloaded: MEMORIA_MAX_CONCURRENT_REQUESTS=2 requests in flight"}
    assert guard.in_flight == 0


def test_a_client_that_disconnects_cancels_its_request(guarded) -> None:
    guard, _ = guarded()
    guard.app = app = Blocking()

    async def main() -> list[dict]:
        sent: list[dict] = []
        hang_up = asyncio.Event()
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await hang_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        task = asyncio.ensure_future(guard(scope("/translate"), receive, send))
        while not app.entered:
            await asyncio.sleep(0.001)
        hang_up.set()
        await asyncio.wait_for(task, 2)  # ends without the app being released
        return sent

    sent = asyncio.run(main())
    assert app.cancelled and not app.release.is_set()
    assert sent[0]["status"] == 499  # for the access log; the client is gone
    assert guard.in_flight == 0


def test_api_token_guards_predictions_only_when_set(guarded) -> None:
    guard, _ = guarded()
    assert call(guard, "/sentiment")[0] == 200  # no token configured: open

    guard, app = guarded(MEMORIA_API_TOKEN="s3cret")
    status, headers, body, _ = call(guard, "/translate")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer") and not app.bodies
    assert call(guard, "/sentiment", headers={"authorization": "Bearer wrong"})[0] == 401
    assert call(guard, "/sentiment", headers={"authorization": "Bearer s3cret"})[0] == 200
    for open_path in ("/readyz", "/livez", "/metrics", "/docs.json"):
        assert call(guard, open_path, method="GET")[0] == 200, open_path
    assert list(json.loads(body)) == ["error"]  # a message, nothing else (no trace, no path)


def test_explanations_are_guarded_like_predictions_and_the_page_stays_open(guarded) -> None:
    guard, app = guarded(MEMORIA_API_TOKEN="s3cret")
    for path in ("/sentiment/explain", "/translate/explain"):
        assert call(guard, path)[0] == 401, path
        assert call(guard, path, headers={"authorization": "Bearer wrong"})[0] == 401, path
        assert call(guard, path, headers={"authorization": "Bearer s3cret"})[0] == 200, path
    assert len(app.bodies) == 2  # only the two with the token got through
    for open_path in ("/demo", "/models"):  # the page asks for the token itself when the service wants one
        assert call(guard, open_path, method="GET")[0] == 200, open_path


def test_admin_needs_its_own_token_and_is_off_without_one(guarded) -> None:
    guard, _ = guarded(MEMORIA_API_TOKEN="api")
    status, _, body, _ = call(guard, "/admin/reload", headers={"authorization": "Bearer api"})
    assert status == 403 and "MEMORIA_ADMIN_TOKEN" in json.loads(body)["error"]
    assert call(guard, "/admin/reload")[0] == 401  # no credentials at all: 401, as HTTP clients expect

    guard, _ = guarded(MEMORIA_ADMIN_TOKEN="adm")
    assert call(guard, "/admin/reload")[0] == 401
    assert call(guard, "/admin/reload", headers={"authorization": "Bearer api"})[0] == 401
    assert call(guard, "/admin/reload", headers={"authorization": "Bearer adm"})[0] == 200


def test_openapi_document_lists_the_errors_the_service_gives() -> None:
    bentoml_spec = {
        "paths": {
            "/sentiment": {"post": {"responses": {"200": {"description": "ok"}, "400": {}, "404": {}}}},
            "/admin/reload": {"post": {"responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": {}},
    }
    spec = complete(bentoml_spec)
    sentiment = spec["paths"]["/sentiment"]["post"]["responses"]
    assert set(sentiment) == {"200", "400", "401", "413", "415", "500", "503", "504"}
    assert sentiment["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorBody")
    assert spec["components"]["schemas"]["ValidationErrorBody"]["properties"]["detail"]["type"] == "array"
    assert (
        "Retry-After" in sentiment["503"]["headers"]
        and "MEMORIA_MAX_CONCURRENT_REQUESTS" in sentiment["503"]["description"]
    )
    assert "403" in spec["paths"]["/admin/reload"]["post"]["responses"]
    assert spec["paths"]["/readyz"] == bentoml_spec["paths"]["/readyz"]
    assert "401" not in bentoml_spec["paths"]["/sentiment"]["post"]["responses"], "the input is not modified"


def test_the_documented_not_blank_pattern_is_the_rule_the_validator_applies() -> None:
    """schemathesis (and generated clients) read the pattern; the validator uses str.strip(): they must agree."""
    import re

    from serving.schemas import NOT_BLANK

    pattern = re.compile(NOT_BLANK["pattern"])
    disagree = [hex(i) for i in range(0x3100) if (pattern.search(chr(i)) is None) != chr(i).isspace()]
    assert not disagree
