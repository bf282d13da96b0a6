"""A task's served model: loaded in the background, verified, and swapped live when the champion moves.

`LiveModel.current()` hands a request the model it will run on (predictor, bundle, batcher), so a request that
started on one model finishes on it even if a swap happens meanwhile; later requests get the new one. A model is
served only after its bundle passed `load_bundle` (manifest + every file's sha256), matched the digest recorded
in the registry, and answered a warm-up prediction.

What a check of the champion can meet, and what the service does (the current model keeps serving in every case):
- the bundle is wrong (BundleError: a hash, the digest, a missing digest tag, a signature) or does not run:
  that version is REFUSED, logged and counted (`memoria_model_reloads{outcome="refused"}`), and not tried again
  until the alias moves;
- the registry or the download failed (server down, network, disk full, a locked database: anything else):
  nothing is refused; the check is repeated with backoff (1 s, doubling, at most MEMORIA_RETRY_MAX_S, default
  30 s), whatever the poll interval, until it succeeds;
- there is no champion yet: "train one first", checked again with the same backoff.
The first load is such a check too, so a service started while the registry is down becomes ready when it is back.

Only a registry champion can change. The watcher polls `models:/<task>@champion` every
MEMORIA_RELOAD_INTERVAL_S (default 10 s; 0 = no polling) and, at any interval, reacts within a second to the
reload trigger that `POST /admin/reload` writes, so every worker process follows, not only the one that took the
request. The trigger lives in the private bundle cache (serving/resolve.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from bentoml.exceptions import ServiceUnavailable

from serving.batcher import MicroBatcher
from serving.contract.bundle import BundleError
from serving.contract.files import atomic_write_bytes
from serving.contract.names import tracking_uri
from serving.contract.registry import (
    ChampionRef,
    NoChampion,
    ServedBundle,
    champion_bundle,
    champion_ref,
    private_folder,
)
from serving.metrics import ServingMetrics
from serving.resolve import bundle_cache, bundle_origin, resolve_bundle
from serving.runtime import device_from_env, providers_for

log = logging.getLogger("bentoml.memoria")

P = TypeVar("P")
RELOAD_CHECK_S = 1.0  # how often a worker looks at the reload trigger
RETRY_FIRST_S = 1.0  # the first retry after a failed check; doubled per failure up to retry_max_s()
# Outcomes of a check after which it is repeated with backoff rather than at the poll interval
RETRIED = ("unreachable", "fetch-failed", "no-champion")
# What clients are told while a task has no model (503): short and fixed, never a path or an exception's text
NOT_READY = {
    "loading": "still loading",
    "unreachable": "the model registry is unreachable; retrying",
    "fetch-failed": "the champion could not be fetched; retrying",
    "no-champion": "no champion in the registry: train one first",
    "refused": "the champion failed verification (see the service log)",
    "failed": "the model could not be loaded (see the service log)",
}


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


def retry_max_s() -> float:
    return float(os.environ.get("MEMORIA_RETRY_MAX_S", "30"))


def reload_request_file(task: str) -> Path:
    return bundle_cache() / task / ".reload-requested"


def quiet_registry_client() -> None:
    """MLflow's HTTP client retries a failed call 7 times with doubling waits and a 120 s timeout, which would hold
    one check for minutes; the service retries with its own backoff instead, so a check fails fast. Set only when
    not already set: an operator's values win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class LiveModel(Generic[P]):
    def __init__(self, spec: TaskSpec[P], metrics: ServingMetrics, watch: bool = True) -> None:
        self.spec = spec
        self.task = spec.task
        self.metrics = metrics
        self.error: str | None = None  # the last problem in full (logs, /admin/reload); never sent to clients
        self.state = "loading"  # a key of NOT_READY: what a 503 says while no model is served
        self._current: LoadedModel[P] | None = None
        self._refused: str | None = None  # registry version refused last; not retried until the alias moves
        self._failures = 0  # checks failed in a row for reasons the bundle is not to blame for
        self._next_check = 0.0  # time.monotonic() of the next check (poll or retry)
        self._lock = threading.Lock()  # one load at a time (watcher and /admin/reload)
        self._stop = threading.Event()
        self._settled = threading.Event()  # set once the first load has succeeded or failed
        self._watch = watch
        metrics.task_ready.labels(self.task).set(0)  # until a model is installed (alert: task not ready)
        threading.Thread(target=self._run, name=f"model-{self.task}", daemon=True).start()

    # -- what requests use ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._current is not None

    def current(self) -> LoadedModel[P]:
        model = self._current  # one read: the request keeps this model even if a swap happens next
        if model is None:
            raise ServiceUnavailable(f"{self.task} model is not ready: {NOT_READY.get(self.state, self.state)}")
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
        registry = bundle_origin(self.task) == "registry"
        if registry:
            quiet_registry_client()
            self.reload()  # the first load is a champion check like any other: retried if it fails
        else:
            self._load_fixed()
        self._settled.set()
        # Everything loaded so far (mlflow, onnxruntime, the tokenizers: hundreds of thousands of objects) lives
        # as long as the process; moving it out of the collector's reach keeps full collections, which otherwise
        # walk all of it every few thousand requests, from stalling the event loop.
        gc.freeze()
        if self._watch and registry:
            self._watch_champion()

    def _load_fixed(self) -> None:
        """A path or packaged bundle: it cannot change, so a failure is final (the log says why)."""
        try:
            self._install(self._verified(resolve_bundle(self.task)))
        except Exception as e:
            self.error, self.state = f"{type(e).__name__}: {e}", "failed"
            log.error("%s model NOT loaded, service stays unready: %s", self.task, self.error)

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
        self.metrics.task_ready.labels(self.task).set(1)
        log.info("%s model ready: %s (from %s)", self.task, model.label, model.served.origin)

    def reload(self) -> dict[str, str]:
        """Check the champion now; swap if it moved. Returns what happened (for POST /admin/reload)."""
        if bundle_origin(self.task) != "registry":
            return {"task": self.task, "outcome": "fixed", "model": self._label()}
        with self._lock:
            report = self._check()
            self._schedule(report["outcome"])
        return report

    def _check(self) -> dict[str, str]:
        try:
            ref = champion_ref(self.task, tracking_uri())
        except NoChampion as e:
            return self._not_now("no-champion", e)
        except Exception as e:  # RegistryUnavailable, or anything else a registry client can raise
            return self._not_now("unreachable", e)
        served = self._current.served if self._current else None
        if served is not None and served.registry_version == ref.version:
            return {"task": self.task, "outcome": "unchanged", "model": self._label()}
        if ref.version == self._refused:
            return {"task": self.task, "outcome": "refused", "model": self._label(), "reason": self.error or ""}
        return self._swap_to(ref)

    def _swap_to(self, ref: ChampionRef) -> dict[str, str]:
        started = time.perf_counter()
        try:
            served = champion_bundle(self.task, tracking_uri(), bundle_cache(), ref)
        except BundleError as e:  # the bundle is wrong: refuse this version
            return self._refuse(ref, e)
        except Exception as e:  # the fetch failed (registry, network, disk): not the bundle's fault, retry
            return self._not_now("fetch-failed", e)
        try:
            model = self._verified(served)
        except (OSError, MemoryError) as e:  # the machine, not the bundle
            return self._not_now("fetch-failed", e)
        except Exception as e:  # verified files that onnxruntime or the tokenizer cannot run: a bad bundle
            return self._refuse(ref, e)
        self._refused = None
        previous = self._label()
        first = self._current is None
        self._install(model)
        if first:  # the first load (at start, or once the registry answers): nothing was swapped
            return {"task": self.task, "outcome": "loaded", "model": model.label}
        self.metrics.reloads.labels(self.task, "swapped").inc()
        log.info("%s swapped %s -> %s in %.2fs", self.task, previous, model.label, time.perf_counter() - started)
        return {"task": self.task, "outcome": "swapped", "model": model.label, "previous": previous}

    def _refuse(self, ref: ChampionRef, e: BaseException) -> dict[str, str]:
        self._refused = ref.version
        reason = f"{type(e).__name__}: {e}"
        log.error("%s champion v%s REFUSED, still serving %s: %s", self.task, ref.version, self._label(), reason)
        self.metrics.reloads.labels(self.task, "refused").inc()
        self.error = reason
        if self._current is None:
            self.state = "refused"
        return {"task": self.task, "outcome": "refused", "model": self._label(), "reason": reason}

    def _not_now(self, outcome: str, e: BaseException) -> dict[str, str]:
        """A check that could not finish for a reason the bundle is not to blame for: nothing is refused."""
        self._failures += 1
        reason = f"{type(e).__name__}: {e}"
        self.error = reason
        if self._current is None:
            self.state = outcome
        log.warning(
            "%s: %s (%s); still serving %s, checking again in %.0f s",
            self.task,
            NOT_READY[outcome],
            reason,
            self._label(),
            self._backoff(),
        )
        self.metrics.reloads.labels(self.task, outcome).inc()
        return {"task": self.task, "outcome": outcome, "model": self._label(), "reason": reason}

    def _backoff(self) -> float:
        return min(retry_max_s(), RETRY_FIRST_S * 2 ** max(0, self._failures - 1))

    def _schedule(self, outcome: str) -> None:
        """When the watcher checks next: soon (with backoff and a little jitter, so workers don't retry in step)
        after a failure, else after the poll interval (never, with MEMORIA_RELOAD_INTERVAL_S=0)."""
        now = time.monotonic()
        if outcome in RETRIED and not (outcome == "no-champion" and self._current is not None):
            self._next_check = now + self._backoff() * random.uniform(0.8, 1.2)
            return
        self._failures = 0
        interval = reload_interval()
        self._next_check = now + interval if interval > 0 else float("inf")

    def _label(self) -> str:
        return self._current.label if self._current else "none"

    def _watch_champion(self) -> None:
        trigger = reload_request_file(self.task)
        seen = _trigger_state(trigger)
        while not self._stop.wait(RELOAD_CHECK_S):
            requested = _trigger_state(trigger)
            if requested != seen or time.monotonic() >= self._next_check:
                seen = requested
                try:
                    self.reload()
                except Exception:  # the watcher must outlive anything a registry can throw at it
                    log.exception("%s: champion check failed", self.task)
                    self._failures += 1
                    self._next_check = time.monotonic() + self._backoff()

    def stop(self) -> None:
        self._stop.set()


def request_reload(task: str) -> None:
    """Ask every worker's watcher to check the champion now (they look at this file every second, whatever the
    poll interval). A fresh random content each time: two requests within one mtime tick still differ."""
    private_folder(bundle_cache())
    atomic_write_bytes(reload_request_file(task), uuid.uuid4().hex.encode())


def _trigger_state(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
