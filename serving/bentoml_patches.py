"""Fixes to bentoml 1.4.40 (pinned) that serving depends on, each with what was measured. Applied on import of
serving/service.py, before BentoML builds the HTTP app in each worker.

TimeoutMiddleware schedules a timer per request (`loop.call_later(timeout, ...)`) and never cancels it when the
request completes, so every request's timer, future and context (with its OpenTelemetry span) stay alive for the
whole timeout: at 60 s and ~1,000 req/s per worker that was ~2.3 KB per request of resident memory growing for a
minute (found with tracemalloc; the 64-client soak in tests/serving/test_e2e_http.py measures it). The version below
is the same middleware with the timer cancelled when the request ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse

PATCHED_VERSION = "1.4.40"


async def _timeout_middleware_call(self: Any, scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: dict) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            response = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"}, status_code=504
            )
            await response(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


def apply() -> None:
    import bentoml
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    if bentoml.__version__ != PATCHED_VERSION:
        raise RuntimeError(
            f"serving/bentoml_patches.py was written for bentoml {PATCHED_VERSION}, found {bentoml.__version__}: "
            "check whether TimeoutMiddleware still leaks its timer, then update or drop the patch"
        )
    TimeoutMiddleware.__call__ = _timeout_middleware_call
