"""Which servers run which scenarios, in which order.

Order matters in one place: "1 client after burst" runs right after the 32-client scenario, without warm-up,
because the failure it guards against (a batcher that keeps holding lone requests after a burst, seen on the
old layout as 11 ms -> 180-200 ms) shows in the first requests after the burst.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.servers import ServerSpec, bentoml_serve, uvicorn_factory

MEMORIA = "memoria"
FASTAPI_TORCH = "fastapi-torch"
FASTAPI_ONNX = "fastapi-onnx"
NOOP = "noop-layout"
PEERS = (FASTAPI_TORCH, FASTAPI_ONNX, NOOP)


@dataclass(frozen=True)
class Scenario:
    endpoint: str  # "/sentiment" or "/translate"
    clients: int
    texts: int = 1  # per request
    beam: int | None = None  # /translate only
    after_burst: bool = False

    @property
    def name(self) -> str:
        what = f"beam {self.beam}" if self.beam is not None else f"{self.texts} text{'s' if self.texts > 1 else ''}"
        who = f"{self.clients} client{'s' if self.clients > 1 else ''}"
        return f"{what}, {who}" + (" after burst" if self.after_burst else "")

    @property
    def key(self) -> str:
        return f"{self.endpoint} {self.name}"


def _sentiment(clients: int, texts: int = 1, after_burst: bool = False) -> Scenario:
    return Scenario("/sentiment", clients, texts, after_burst=after_burst)


def _translate(clients: int, beam: int) -> Scenario:
    return Scenario("/translate", clients, beam=beam)


def sentiment_plan(quick: bool) -> list[Scenario]:
    if quick:
        return [_sentiment(1), _sentiment(32), _sentiment(1, after_burst=True), _sentiment(32, 16)]
    single = [_sentiment(1), _sentiment(8), _sentiment(32), _sentiment(1, after_burst=True), _sentiment(128)]
    return single + [_sentiment(c, 16) for c in (1, 8, 32, 128)]


def translate_plan(quick: bool) -> list[Scenario]:
    if quick:
        return [_translate(1, 1), _translate(8, 4)]
    return [_translate(c, beam) for beam in (1, 4) for c in (1, 8)]


# The settings comparison: one scenario, one server start per setting; memoria's own row is the default.
SETTINGS_SCENARIO = _sentiment(32)
SETTINGS = {
    "memoria-workers-1": ({"MEMORIA_WORKERS": "1"}, "MEMORIA_WORKERS=1 (onnxruntime threads default to cores/1)"),
    "memoria-workers-1-ort-1": (
        {"MEMORIA_WORKERS": "1", "MEMORIA_ORT_THREADS": "1"},
        "MEMORIA_WORKERS=1 MEMORIA_ORT_THREADS=1",
    ),
    "memoria-batch-1": ({"MEMORIA_MAX_BATCH_SIZE": "1"}, "MEMORIA_MAX_BATCH_SIZE=1 (batching off)"),
}
# (setting, what it is compared with) for the report
SETTINGS_COMPARISONS = (
    ("memoria-workers-1", MEMORIA),
    ("memoria-workers-1-ort-1", "memoria-workers-1"),
    ("memoria-batch-1", MEMORIA),
)


@dataclass(frozen=True)
class Contender:
    spec: ServerSpec
    scenarios: tuple[Scenario, ...]


def all_names() -> list[str]:
    return [MEMORIA, *PEERS, *SETTINGS]


def lineup(names: list[str], bundle_env: dict[str, str], torch_model_dir: Path | None, quick: bool) -> list[Contender]:
    """The contenders to run, in the order given by `all_names()` (memoria first: the baseline of every ratio)."""
    sentiment, translate = tuple(sentiment_plan(quick)), tuple(translate_plan(quick))
    peer = "tests.benchmarks.peers.fastapi_peer:create_app"
    out = []
    for name in all_names():
        if name not in names:
            continue
        if name == MEMORIA:
            spec = ServerSpec(name, bentoml_serve("serving.service:Memoria"), description="default settings")
            out.append(Contender(spec, sentiment + translate))
        elif name == FASTAPI_ONNX:
            spec = ServerSpec(name, uvicorn_factory(peer), {**bundle_env, "PEER_BACKEND": "onnx"})
            out.append(Contender(spec, sentiment + translate))
        elif name == FASTAPI_TORCH and torch_model_dir is not None:
            env = {**bundle_env, "PEER_BACKEND": "torch", "PEER_TORCH_MODEL_DIR": str(torch_model_dir)}
            out.append(Contender(ServerSpec(name, uvicorn_factory(peer), env), sentiment))
        elif name == NOOP:
            spec = ServerSpec(name, bentoml_serve("tests.benchmarks.peers.noop_service:Noop"))
            out.append(Contender(spec, sentiment))
        elif name in SETTINGS:
            env, description = SETTINGS[name]
            spec = ServerSpec(name, bentoml_serve("serving.service:Memoria"), env, description)
            out.append(Contender(spec, (SETTINGS_SCENARIO,)))
    return out
