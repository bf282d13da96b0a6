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


def call(
    app: Any, path: str, body: bytes = b"{}", headers: dict[str, str] | None = None, method: str = "POST", chunks=None
) -> tuple[int, dict, bytes, int]:
    """(status, headers, body, bytes the app pulled from the client)"""
    headers = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    parts = list(chunks) if chunks is not None else [body]
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if not parts:
            return {"type": "http.disconnect"}
        chunk = parts.pop(0)
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    response_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], response_headers, b"".join(m.get("body", b"") for m in sent[1:]), pulled


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch):
    def make(**env: str) -> tuple[HttpGuard, Recorder]:
        for name in ("MEMORIA_API_TOKEN", "MEMORIA_ADMIN_TOKEN", "MEMORIA_MAX_BODY_BYTES"):
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
