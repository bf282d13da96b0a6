"""The OpenAPI document at /docs.json, with the error answers this service really gives.

BentoML 1.4 documents every 400 as `{"error": str, "detail": str}`, but a validation error's `detail` is
pydantic's list of errors, and it knows nothing of the answers serving/http_guard.py, the back-pressure and the
timeout give (401, 403, 413, 415, 503 with Retry-After, 504). Clients generated from the document, and
schemathesis, check answers against it, so the document is completed here, once, from BentoML's own.
"""

from __future__ import annotations

import copy
import json
from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what went wrong, in words"}},
}
VALIDATION_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "description": "one entry per problem; `loc` starts with the request field",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
PREDICTION_ERRORS = {
    "400": ("Invalid input: `detail` names each field", "ValidationErrorBody"),
    "401": ("MEMORIA_API_TOKEN is set and the request has no matching `Authorization: Bearer` token", "Error"),
    "413": ("Body larger than MEMORIA_MAX_BODY_BYTES", "Error"),
    "415": ("A body without `Content-Type: application/json` (missing, text/plain, form encodings)", "Error"),
    "500": ("Unexpected server error (details in the server log, never in the answer)", "Error"),
    "503": (
        "Overloaded: more than MEMORIA_MAX_CONCURRENT_REQUESTS in flight in the worker, or the model's queue is full "
        "(MEMORIA_MAX_QUEUED_TEXTS) or would keep the request longer than MEMORIA_MAX_QUEUE_WAIT_S; answered at once. "
        "Or the model is not loaded (yet, or its bundle was refused). Retry after `Retry-After` seconds",
        "Error",
    ),
    "504": ("Not answered within MEMORIA_REQUEST_TIMEOUT_S", "Error"),
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
ADMIN_ERRORS = {
    **PREDICTION_ERRORS,
    "401": ("Missing or wrong admin token", "Error"),
    "403": ("Admin endpoints are disabled (MEMORIA_ADMIN_TOKEN is not set) and credentials were sent", "Error"),
}

FEEDBACK_ERRORS = {
    **PREDICTION_ERRORS,
    "404": (
        "No answered request with this `request_id` in the inference log (`detail` names the field)",
        "ValidationErrorBody",
    ),
}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's document with documented error answers on every POST operation."""
    spec = copy.deepcopy(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    schemas["ValidationErrorBody"] = VALIDATION_ERROR
    for path, item in spec.get("paths", {}).items():
        post = item.get("post")
        if post is None:
            continue
        errors = (
            ADMIN_ERRORS
            if path.startswith("/admin/")
            else FEEDBACK_ERRORS
            if path == "/feedback"
            else PREDICTION_ERRORS
        )
        responses = {str(code): r for code, r in post.get("responses", {}).items() if str(code).startswith("2")}
        for code, (description, schema) in errors.items():
            ref = {"$ref": f"#/components/schemas/{schema}"}
            responses[code] = {"description": description, "content": {"application/json": {"schema": ref}}}
            if code == "503":
                responses[code]["headers"] = RETRY_AFTER
        post["responses"] = responses
        if "requestBody" in post:
            post["requestBody"]["required"] = True  # an empty body is a 400 (`texts` is required), so say so
        if path.startswith("/admin/"):
            post["security"] = [{"bearer": []}]
    spec["components"].setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    return spec


class OpenApiDocument:
    """ASGI middleware answering GET /docs.json with `complete(service.openapi_spec)` (built on first ask)."""

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.service = service
        self._body: bytes | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        if self._body is None:
            self._body = json.dumps(complete(self.service.openapi_spec.asdict())).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
