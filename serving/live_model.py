"""A task's served model: loaded in the background, verified, and swapped live when the champion moves.

`LiveModel.current()` hands a request the model it will run on (predictor, bundle, batcher), so a request that
started on one model finishes on it even if a swap happens meanwhile; later requests get the new one. A model is
served only after its bundle passed `load_bundle` (manifest + every file's sha256), matched the digest recorded
in the registry, and answered a warm-up prediction. A candidate that fails any of that is refused: the old
model stays, the reason is logged and counted (`memoria_model_reloads{outcome="refused"}`), and the same
version is not retried until the alias moves again.

Only a registry champion can change. The watcher polls `models:/<task>@champion` every
MEMORIA_RELOAD_INTERVAL_S (default 10 s; 0 = never) and also reacts within a second to a reload request file
that `POST /admin/reload` touches, so every worker process follows, not only the one that took the request.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from bentoml.exceptions import ServiceUnavailable

from serving.batcher import MicroBatcher
from serving.contract.names import tracking_uri
from serving.contract.registry import ChampionRef, ServedBundle, champion_bundle, champion_ref
from serving.metrics import ServingMetrics
from serving.resolve import bundle_cache, bundle_origin, resolve_bundle
from serving.runtime import device_from_env, providers_for

log = logging.getLogger("bentoml.memoria")

P = TypeVar("P")
RELOAD_CHECK_S = 1.0  # how often a worker looks at the reload request file


@dataclass(frozen=True)
class TaskSpec(Generic[P]):
    """How to serve one task: build a predictor from a bundle, its batch function, and a warm-up call."""

    task: str
    build: Callable[[Any, list[Any], str], P]
    batch_fn: Callable[[P], Callable[[list[Any]], list[Any]]]
    warm_up: Callable[[P], object]
    max_batch_size: int
    inline: bool  # run batches in the event loop (short model calls) or on the model's thread (long ones)


@dataclass(frozen=True)
class LoadedModel(Generic[P]):
    predictor: P
    served: ServedBundle
    batcher: MicroBatcher

    @property
    def label(self) -> str:
        return self.served.label


def reload_interval() -> float:
    return float(os.environ.get("MEMORIA_RELOAD_INTERVAL_S", "10"))


def reload_request_file(task: str) -> Path:
    return bundle_cache() / task / ".reload-requested"


class LiveModel(Generic[P]):
    def __init__(self, spec: TaskSpec[P], metrics: ServingMetrics, watch: bool = True) -> None:
        self.spec = spec
        self.task = spec.task
        self.metrics = metrics
        self.error: str | None = None
        self._current: LoadedModel[P] | None = None
        self._refused: str | None = None  # registry version refused last; not retried until the alias moves
        self._lock = threading.Lock()  # one load at a time (watcher and /admin/reload)
        self._stop = threading.Event()
        self._settled = threading.Event()  # set once the first load has succeeded or failed
        self._watch = watch
        threading.Thread(target=self._run, name=f"model-{self.task}", daemon=True).start()

    # -- what requests use ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._current is not None

    def current(self) -> LoadedModel[P]:
        model = self._current  # one read: the request keeps this model even if a swap happens next
        if model is None:
            raise ServiceUnavailable(f"{self.task} model is not ready: {self.error or 'still loading'}")
        return model

    async def loaded(self, timeout: float) -> LoadedModel[P]:
        """`current()`, but a request that reaches this worker while its first load is still running waits for
        it (up to `timeout`) instead of failing: /readyz is answered per worker, so a client may see 200 from one
        worker and be sent to another that is a moment behind."""
        if self._current is None and not self._settled.is_set():
            await asyncio.to_thread(self._settled.wait, timeout)
        return self.current()

    # -- loading and swapping ------------------------------------------------------------------------------
    def _run(self) -> None:
        # Lets tests and demos watch /readyz go from 503 to 200 on a fast machine.
        time.sleep(float(os.environ.get("MEMORIA_LOAD_DELAY_SECONDS", "0")))
        try:
            self._install(self._verified(resolve_bundle(self.task)))
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            log.error("%s model NOT loaded, service stays unready: %s", self.task, self.error)
        finally:
            self._settled.set()
        # Everything loaded so far (mlflow, onnxruntime, the tokenizers: hundreds of thousands of objects) lives
        # as long as the process; moving it out of the collector's reach keeps full collections, which otherwise
        # walk all of it every few thousand requests, from stalling the event loop.
        gc.freeze()
        if self._watch and bundle_origin(self.task) == "registry" and reload_interval() > 0:
            self._watch_champion()

    def _verified(self, served: ServedBundle) -> LoadedModel[P]:
        """Build the predictor and make it answer once; raises on any problem."""
        device = device_from_env(self.task)
        predictor = self.spec.build(served.bundle, providers_for(device), device)
        self.spec.warm_up(predictor)
        batcher = MicroBatcher(
            self.spec.batch_fn(predictor), self.spec.max_batch_size, name=self.task, inline=self.spec.inline
        )
        batcher.on_batch = self.metrics.batch_size.labels(self.task).observe
        return LoadedModel(predictor, served, batcher)

    def _install(self, model: LoadedModel[P]) -> None:
        old, self._current = self._current, model
        self.error = None
        if old is not None:
            self.metrics.model_info.labels(self.task, old.label).set(0)
        self.metrics.model_info.labels(self.task, model.label).set(1)
        log.info("%s model ready: %s (from %s)", self.task, model.label, model.served.origin)

    def reload(self) -> dict[str, str]:
        """Check the champion now; swap if it moved. Returns what happened (for POST /admin/reload)."""
        if bundle_origin(self.task) != "registry":
            return {"task": self.task, "outcome": "fixed", "model": self._label()}
        with self._lock:
            try:
                ref = champion_ref(self.task, tracking_uri())
            except Exception as e:
                log.warning("%s: cannot read the champion alias: %s", self.task, e)
                return {"task": self.task, "outcome": "unreachable", "model": self._label(), "reason": str(e)}
            served = self._current.served if self._current else None
            if served is not None and served.registry_version == ref.version:
                return {"task": self.task, "outcome": "unchanged", "model": self._label()}
            if ref.version == self._refused:
                return {"task": self.task, "outcome": "refused", "model": self._label(), "reason": self.error or ""}
            return self._swap_to(ref)

    def _swap_to(self, ref: ChampionRef) -> dict[str, str]:
        started = time.perf_counter()
        try:
            model = self._verified(champion_bundle(self.task, tracking_uri(), bundle_cache(), ref))
        except Exception as e:
            self._refused = ref.version
            reason = f"{type(e).__name__}: {e}"
            log.error("%s champion v%s REFUSED, still serving %s: %s", self.task, ref.version, self._label(), reason)
            self.metrics.reloads.labels(self.task, "refused").inc()
            if self._current is None:
                self.error = reason
            return {"task": self.task, "outcome": "refused", "model": self._label(), "reason": reason}
        self._refused = None
        previous = self._label()
        self._install(model)
        self.metrics.reloads.labels(self.task, "swapped").inc()
        log.info("%s swapped %s -> %s in %.2fs", self.task, previous, model.label, time.perf_counter() - started)
        return {"task": self.task, "outcome": "swapped", "model": model.label, "previous": previous}

    def _label(self) -> str:
        return self._current.label if self._current else "none"

    def _watch_champion(self) -> None:
        request_file = reload_request_file(self.task)
        seen = _mtime(request_file)
        next_poll = time.monotonic() + reload_interval()
        while not self._stop.wait(RELOAD_CHECK_S):
            requested = _mtime(request_file)
            if requested != seen or time.monotonic() >= next_poll:
                seen = requested
                next_poll = time.monotonic() + reload_interval()
                try:
                    self.reload()
                except Exception:  # the watcher must outlive anything a registry can throw at it
                    log.exception("%s: champion check failed", self.task)

    def stop(self) -> None:
        self._stop.set()


def request_reload(task: str) -> None:
    """Ask every worker's watcher to check the champion now (they look at this file every second)."""
    path = reload_request_file(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
