"""One move of a task's `champion` alias at a time, on any MLflow store (local SQLite or a tracking server shared by
many machines): a ticket queue made of the registry's own model versions.

Why model versions: MLflow's REST API has no compare-and-set on an alias, but the registry numbers a registered
model's versions itself, under the database's unique (name, version) key, and never reuses a number (a deleted
version is only marked deleted). So `create_model_version("<task>.promotion-lock", ...)` is an atomic "take the
next ticket" that works through the REST API alone, for every client, whatever machine it runs on.

The rule: a ticket's owner holds the lock while its ticket is the lowest one not deleted, and releases it by
deleting its ticket. A deletion names one ticket by its number, so neither a release nor the break of a stale
ticket can ever remove somebody else's newer ticket (the trap of one named lock that is deleted by name: a late
owner or a second breaker deletes the lock its successor has just taken).

Leases: the owner of a ticket (holding or waiting) bumps a heartbeat counter on it every `heartbeat_s`. A waiter
that sees a ticket ahead of it keep the same counter for `lease_s` of its own monotonic clock deletes that ticket
(its gate crashed) and says so in the log and in the gate's record. Clocks of different machines are never
compared. A gate whose own ticket was deleted notices: `ensure_held` refuses the write.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.contract.names import LOCK_HEARTBEAT_TAG, LOCK_OWNER_TAG, PROMOTION_LOCK_SUFFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockTiming:
    """How long a silent ticket stays valid, how often a live one says so, how often a waiter looks, and for how
    long it waits before giving up."""

    lease_s: float = 30.0  # far above a critical section (a re-read and a few writes: well under a second)
    heartbeat_s: float = 3.0
    poll_s: float = 0.25
    wait_s: float = 900.0  # a queue of gates that each hold the lock for about a second never gets near this

    def __post_init__(self) -> None:
        for name in ("lease_s", "heartbeat_s", "poll_s", "wait_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LockTiming.{name} must be > 0, got {getattr(self, name)}")
        if self.heartbeat_s * 3 > self.lease_s:
            # two missed beats (a slow request) must not make a live ticket look stale
            raise ValueError(
                f"LockTiming.heartbeat_s ({self.heartbeat_s}) must be at most lease_s / 3 ({self.lease_s})"
            )


class PromotionLockError(RuntimeError):
    """The promotion lock could not be taken or was lost: the alias was not moved."""


@dataclass(frozen=True)
class LockReport:
    """What taking the lock looked like, for the gate's record and the alias history."""

    ticket: str
    owner: str
    waited_s: float
    behind: tuple[str, ...] = field(default_factory=tuple)  # the tickets that were ahead, with their owners
    broken: tuple[str, ...] = field(default_factory=tuple)  # stale tickets this gate deleted

    def line(self) -> str:
        """ "" when it took the lock at once; else whom it waited behind and which stale tickets it broke."""
        parts = []
        if self.behind:
            parts.append(f"waited {self.waited_s:.1f} s for the promotion lock behind {'; '.join(self.behind)}")
        if self.broken:
            parts.append(f"broke stale {'; '.join(self.broken)}")
        return ", ".join(parts)


def lock_name(task: str) -> str:
    return f"{task}{PROMOTION_LOCK_SUFFIX}"


def owner_of(purpose: str, task: str, version: str) -> str:
    return f"{purpose} of {task} v{version} by {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def _code(error: MlflowException) -> str:
    return str(getattr(error, "error_code", ""))


class PromotionLock:
    """One ticket in the task's queue. `acquire` blocks until it is the lowest; `release` deletes it."""

    def __init__(self, client: MlflowClient, task: str, version: str, purpose: str, timing: LockTiming) -> None:
        self.client = client
        self.task = task
        self.name = lock_name(task)
        self.version = str(version)  # the version the move concerns: the ticket points at it (a valid source)
        self.owner = owner_of(purpose, task, self.version)
        self.timing = timing
        self.ticket = ""
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._beat: threading.Thread | None = None

    # --- taking and giving back ------------------------------------------------------------------------------

    def acquire(self) -> LockReport:
        self._ensure_lock_model()
        created = self.client.create_model_version(
            self.name,
            f"models:/{self.task}/{self.version}",  # the server accepts a registry URI as a source, no run needed
            tags={LOCK_OWNER_TAG: self.owner, LOCK_HEARTBEAT_TAG: "0"},
            description=f"promotion ticket: {self.owner}",
            await_creation_for=0,
        )
        self.ticket = str(created.version)
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock-heartbeat-{self.name}", daemon=True)
        self._beat.start()
        try:
            return self._wait()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Stop the heartbeat and delete the ticket. A failed delete is only logged: the silent ticket goes stale
        and the next gate breaks it after one lease."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=self.timing.heartbeat_s + 30)
        if not self.ticket:
            return
        try:
            self.client.delete_model_version(self.name, self.ticket)
        except MlflowException as e:
            if _code(e) != "RESOURCE_DOES_NOT_EXIST":
                log.warning(
                    "could not delete promotion ticket %s of %s (%s): it expires after %.0f s",
                    self.ticket,
                    self.name,
                    e,
                    self.timing.lease_s,
                )

    def ensure_held(self) -> None:
        """Right before a write: the ticket must still exist (a waiter deletes it only after a full lease of
        silence, which the heartbeat prevents while this process runs)."""
        if self._lost.is_set():
            raise PromotionLockError(f"promotion ticket {self.ticket} of {self.name} was deleted as stale")
        try:
            self.client.get_model_version(self.name, self.ticket)
        except MlflowException as e:
            if _code(e) == "RESOURCE_DOES_NOT_EXIST":
                raise PromotionLockError(
                    f"promotion ticket {self.ticket} of {self.name} was deleted as stale: the alias was not moved"
                ) from e
            raise

    # --- the parts --------------------------------------------------------------------------------------------

    def _ensure_lock_model(self) -> None:
        try:
            self.client.get_registered_model(self.name)
            return
        except MlflowException as e:
            if _code(e) != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            self.client.create_registered_model(
                self.name,
                description=f"memoria's promotion lock for `{self.task}`: each version is one gate's ticket "
                "(training/registry/promotion_lock.py). Not a model; never served.",
            )
        except MlflowException as e:
            if _code(e) != "RESOURCE_ALREADY_EXISTS":  # another gate created it meanwhile: fine
                raise

    def _tickets(self) -> list[ModelVersion]:
        return self.client.search_model_versions(f"name = '{self.name}'")

    def _wait(self) -> LockReport:
        start = time.monotonic()
        seen: dict[str, tuple[str, float]] = {}  # ticket -> (its heartbeat, when this waiter first saw that value)
        behind: dict[str, str] = {}
        broken: list[str] = []
        while True:
            if self._lost.is_set():
                raise PromotionLockError(f"promotion ticket {self.ticket} of {self.name} was deleted while waiting")
            now = time.monotonic()
            tickets = {str(t.version): t for t in self._tickets()}
            if self.ticket not in tickets:
                raise PromotionLockError(f"promotion ticket {self.ticket} of {self.name} was deleted while waiting")
            ahead = sorted(int(v) for v in tickets if int(v) < int(self.ticket))
            if not ahead:
                report = LockReport(self.ticket, self.owner, now - start, tuple(behind.values()), tuple(broken))
                if report.line():
                    log.info("%s: %s", self.owner, report.line())
                return report
            for number in ahead:
                ticket = tickets[str(number)]
                owner = ticket.tags.get(LOCK_OWNER_TAG, "unknown owner")
                behind.setdefault(str(number), f"ticket {number} ({owner})")
                beat = ticket.tags.get(LOCK_HEARTBEAT_TAG, "")
                last = seen.get(str(number))
                if last is None or last[0] != beat:
                    seen[str(number)] = (beat, now)
                elif now - last[1] > self.timing.lease_s:
                    broken.append(self._break(number, owner, now - last[1]))
            if now - start > self.timing.wait_s:
                raise PromotionLockError(
                    f"waited {now - start:.0f} s for {self.name} (LockTiming.wait_s) behind "
                    + "; ".join(behind[str(n)] for n in ahead)
                )
            time.sleep(self.timing.poll_s)

    def _break(self, number: int, owner: str, silent_s: float) -> str:
        what = f"ticket {number} ({owner}, no heartbeat for {silent_s:.1f} s)"
        log.warning("%s: deleting stale promotion %s", self.owner, what)
        try:
            self.client.delete_model_version(self.name, str(number))
        except MlflowException as e:
            if _code(e) != "RESOURCE_DOES_NOT_EXIST":  # released or broken by another waiter meanwhile: fine
                raise
        return what

    def _heartbeat(self) -> None:
        count = 0
        while not self._stop.wait(self.timing.heartbeat_s):
            count += 1
            try:
                self.client.set_model_version_tag(self.name, self.ticket, LOCK_HEARTBEAT_TAG, str(count))
            except MlflowException as e:
                if _code(e) == "RESOURCE_DOES_NOT_EXIST":
                    self._lost.set()
                    log.error("%s: promotion ticket %s was deleted as stale", self.owner, self.ticket)
                    return
                log.warning("%s: heartbeat of ticket %s failed (%s); retrying", self.owner, self.ticket, e)
            except Exception as e:  # a network error: the next beat retries; a lease is ten beats long
                log.warning("%s: heartbeat of ticket %s failed (%s); retrying", self.owner, self.ticket, e)


@contextlib.contextmanager
def promotion_lock(
    client: MlflowClient, task: str, version: str, purpose: str, timing: LockTiming | None = None
) -> Iterator[tuple[PromotionLock, LockReport]]:
    """Hold the task's promotion lock for the block; `purpose` and `version` name the holder in its ticket."""
    lock = PromotionLock(client, task, str(version), purpose, timing or LockTiming())
    report = lock.acquire()
    try:
        yield lock, report
    finally:
        lock.release()
