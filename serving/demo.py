"""GET /demo (a page that explains each answer) and GET /models (the served models' cards), mounted on the service.

The page is static files in serving/static/ (the HTML, a stylesheet and native ES modules whose entry is demo.js:
no build step, nothing loaded from elsewhere, which its Content-Security-Policy enforces), served at /demo and
/demo/<file> (demo.js, its modules, demo.css). It calls the
explain endpoints, asks for the API token when they answer 401, reads /models for the cards and polls /metrics
for the live input signals. None of these routes is guarded (serving/http_guard.py guards POST endpoints by path).

The routes live in a small Starlette app that service.py mounts with `Service.mount_asgi_app`; a handler reaches
the service instance of its worker through `bentoml.get_current_service()`, the documented way for mounted apps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from serving.contract.names import TASKS, tracking_uri
from serving.model_card import ModelCards

STATIC = Path(__file__).resolve().parent / "static"
# The assets, read once from static/: every .js file (the entry module and the modules it imports, which browsers
# only run when served as JavaScript) and .css file. A request's name is only ever a key of this dict, so no path
# from a request reaches the file system (no `..`, no unknown names), and a new module needs no edit here.
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
ASSETS = {path.name: MEDIA_TYPES[path.suffix] for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES}
# Everything the page loads comes from this service: scripts, styles, data. `connect-src 'self'` covers the
# explain calls, /models and /metrics; images are the SVG drawn in place (no `img-src` needed beyond 'self').
# `script-src 'self'` also covers the entry module's `import`s: module scripts from this origin, no inline code.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated each load: a redeploy's page and its assets arrive together
}


def demo_app() -> Starlette:
    cards = ModelCards()

    async def page(_: Request) -> Response:
        return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def to_page(_: Request) -> Response:
        return RedirectResponse("../demo", status_code=308)  # relative: works behind a proxy's path prefix too

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:  # the fixed dict above: no path from the request ever reaches the file system
            return JSONResponse({"error": f"no such asset: {name}"}, status_code=404)
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers=PAGE_HEADERS)

    async def models(_: Request) -> Response:
        service = bentoml.get_current_service()
        uri = tracking_uri()
        out: dict[str, Any] = {}
        for task in TASKS:
            live = getattr(service, f"{task}_model")  # the service's LiveModel of the task
            try:
                served = live.current().served
            except ServiceUnavailable:  # still loading or a broken bundle: the page says so, no 503
                # Why, in words (paths, exception text), is for the server log, which has it; the open page gets this.
                reason = "still loading, or its bundle was refused (the reason is in the server log)"
                out[task] = {"task": task, "status": "not loaded", "reason": reason}
                continue
            out[task] = await asyncio.to_thread(cards.card, served, uri)
        return JSONResponse(out, headers={"Cache-Control": "no-cache"})

    return Starlette(
        routes=[
            Route("/demo", page, methods=["GET"]),
            Route("/demo/", to_page, methods=["GET"]),
            Route("/demo/{name}", asset, methods=["GET"]),
            Route("/models", models, methods=["GET"]),
        ]
    )
