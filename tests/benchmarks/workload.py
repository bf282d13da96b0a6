"""What every server is fed: the same champion bundles, the same texts, the same request bodies in the same order.

The bundles are resolved once, here, the way serving resolves them (MEMORIA_<TASK>_BUNDLE, a packaged bundle,
else the registry's champion, copied into serving's own bundle cache), and the peers are pointed at those exact
folders, so no server can end up on another model version. The texts are the champion's own test split (real
tweets, real Spanish sentences) when the prepared data is on disk, else a fixed list of the same kinds.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.contract.names import tracking_uri
from serving.contract.registry import ServedBundle
from serving.resolve import resolve_bundle
from serving.schemas import MAX_SENTIMENT_CHARS, MAX_TRANSLATION_CHARS

log = logging.getLogger("bench_serving")

TEXTS_PER_TASK = 1024  # enough distinct bodies that no server can profit from a small repeating set
FALLBACK_SENTIMENT = (
    "@united thanks for the upgrade, the crew was lovely",
    "Two hours on the tarmac and no explanation. Unacceptable.",
    "@JetBlue what time does the first flight to Boston leave tomorrow?",
    "Worst flight ever, my bag is lost and nobody at the desk cares.",
    "I love this airline, great service and the seats were comfortable!",
    "@AmericanAir flight Cancelled Flightled again, third time this month #fail",
    "@SouthwestAir is there wifi on the 6pm flight from Denver?",
    "Landed early, friendly staff, smooth boarding. Would fly again.",
)
FALLBACK_SPANISH = (
    "En el principio creó Dios los cielos y la tierra.",
    "Jehová es mi pastor; nada me faltará.",
    "No tienes suficiente munición para disparar.",
    "El enemigo ha cruzado el río y avanza hacia el castillo.",
    "¿Dónde está la estación de tren más cercana?",
    "Mañana vamos a la playa si no llueve.",
    "La puerta está cerrada con llave.",
    "Y lloró Jesús.",
)


@dataclass(frozen=True)
class Champions:
    sentiment: ServedBundle
    translation: ServedBundle

    def bundle_env(self) -> dict[str, str]:
        """Points a peer at exactly these bundle folders."""
        return {
            "MEMORIA_SENTIMENT_BUNDLE": str(self.sentiment.bundle.path),
            "MEMORIA_TRANSLATION_BUNDLE": str(self.translation.bundle.path),
        }


def resolve_champions() -> Champions:
    return Champions(resolve_bundle("sentiment"), resolve_bundle("translation"))


def held_out_split(served: ServedBundle) -> Path:
    """data/<task>/<source>/test.jsonl of the data set the bundle was trained on."""
    source = served.bundle.manifest.get("config", {}).get("data", {}).get("source", "")
    root = Path(os.environ.get("MEMORIA_HOME") or Path.cwd())
    return root / "data" / served.bundle.task / source / "test.jsonl"


def read_field(path: Path, key: str, max_chars: int, limit: int) -> list[str]:
    texts: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            text = json.loads(line).get(key, "")
            if text.strip() and len(text) <= max_chars:
                texts.append(text)
            if len(texts) >= limit:
                break
    return texts


def _texts_of(served: ServedBundle, key: str, max_chars: int, fallback: Sequence[str], what: str) -> tuple[list, str]:
    """The champion's test-split texts, or the fixed fallback list when the split is not on this machine."""
    try:
        path = held_out_split(served)
        texts = read_field(path, key, max_chars, TEXTS_PER_TASK)
        return (texts or list(fallback)), f"{len(texts)} {what} of {path}"
    except OSError:
        return list(fallback), f"{len(fallback)} fixed {what} (no prepared test split)"


def load_texts(champions: Champions) -> tuple[list[str], list[str], str]:
    """(English tweets, Spanish sentences, where they came from)."""
    sentiment, s_origin = _texts_of(champions.sentiment, "text", MAX_SENTIMENT_CHARS, FALLBACK_SENTIMENT, "texts")
    spanish, t_origin = _texts_of(champions.translation, "source", MAX_TRANSLATION_CHARS, FALLBACK_SPANISH, "sentences")
    return sentiment, spanish, f"sentiment: {s_origin}; translation: {t_origin}"


def request_bodies(texts: list[str], per_request: int, beam_size: int | None = None) -> list[bytes]:
    """Encoded once, up front, so the load generator spends its CPU on HTTP, not on json.dumps."""
    bodies = []
    for start in range(0, len(texts) - per_request + 1, per_request):
        body: dict[str, object] = {"texts": texts[start : start + per_request]}
        if beam_size is not None:
            body["beam_size"] = beam_size
        bodies.append(json.dumps(body).encode())
    return bodies


def pytorch_weights(served: ServedBundle, dest: Path) -> Path:
    """The champion's training run `model` artifact (spec.json + state_dict.pt), for the PyTorch peer.

    Raises (with the reason) when the run is not in this MLflow store, e.g. a bundle served by path from
    elsewhere: the PyTorch peer is then skipped, not the whole benchmark."""
    from mlflow.artifacts import download_artifacts

    run_id = served.bundle.manifest.get("source_run_id")
    if not run_id:
        raise FileNotFoundError(f"{served.label}: the bundle's manifest names no source run")
    local = Path(
        download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(dest), tracking_uri=tracking_uri())
    )
    for name in ("spec.json", "state_dict.pt"):
        if not (local / name).is_file():
            raise FileNotFoundError(f"run {run_id}'s model artifact has no {name}")
    return local
