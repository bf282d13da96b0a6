"""A live champion swap between two different models under load: failed requests, answers from the wrong model, and
the time from the alias move to the new model's first answer.

A throwaway SQLite registry (the real one is never touched) holds, for sentiment, the local store's champion
(version 1) and a second, different model (version 2: the smoke preset trained on the test fixture, signed with the
same key, so the service trusts both); translation holds the local champion. It is served with `bentoml serve`
under default settings (10 s alias poll) and loaded by 32 closed-loop clients. Mid-run the `champion` alias moves
to the other model: once by the poll alone (v1 -> v2) and once followed by `POST /admin/reload` (v2 -> v3, the
first model registered again). Every answer is checked against the scores that its model's own bundle gives
(the X-Memoria-Model header names the version), so a swap that served the old model under the new name, or mixed
them, would count as wrong. Usage: `python -m tests.benchmarks.bench_swap` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from mlflow import MlflowClient

from serving.contract.bundle import Bundle
from serving.contract.names import DIGEST_TAG
from serving.contract.registry import champion_bundle
from serving.contract.signing import key_dir
from serving.resolve import resolve_bundle
from serving.sentiment import SentimentPredictor
from tests.serving_harness import SENTIMENT_ARGS, Server, answered_by_its_model, cli, http, load

CLIENTS = 32
TEXT = "the crew was lovely but the flight was late"
BODY = {"texts": [TEXT]}
ADMIN_TOKEN = "bench-admin"


def other_sentiment_model(root: Path) -> Bundle:
    """A second sentiment bundle, different from the champion: the smoke preset on the test fixture, trained in a
    scratch store under `root` and signed with the key the service trusts (MEMORIA_SIGNING_DIR)."""
    env = {
        **os.environ,
        "MEMORIA_HOME": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "MEMORIA_SIGNING_DIR": os.environ.get("MEMORIA_SIGNING_DIR") or str(key_dir()),
    }
    cli(env, "train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS, "--set", "optim.seed=7")
    return champion_bundle("sentiment", env["MLFLOW_TRACKING_URI"], root / "cache").bundle


def add_version(client: MlflowClient, task: str, bundle: Bundle, folder: Path) -> str:
    source = folder / "bundle"  # named like a run's artifact folder, which serving expects
    shutil.copytree(bundle.path, source)
    return str(client.create_model_version(task, str(source), tags={DIGEST_TAG: bundle.digest}).version)


def throwaway_registry(root: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """The registry (see the module's docstring) and the scores each sentiment version's bundle gives TEXT."""
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    champions = {task: resolve_bundle(task).bundle for task in ("sentiment", "translation")}  # the real store's
    for task, bundle in champions.items():
        client.create_registered_model(task)
        version = add_version(client, task, bundle, root / task / "1")
        client.set_registered_model_alias(task, "champion", version)
    other = other_sentiment_model(root / "second")
    add_version(client, "sentiment", other, root / "sentiment" / "2")
    add_version(client, "sentiment", champions["sentiment"], root / "sentiment" / "3")
    first, second = (SentimentPredictor(b).predict([TEXT])[0]["scores"] for b in (champions["sentiment"], other))
    if first == second:
        raise SystemExit("the second model answers like the champion: the swap would not show")
    env = {"MLFLOW_TRACKING_URI": uri, "MEMORIA_BUNDLE_CACHE": str(root / "cache")}
    return env, {"1": first, "2": second, "3": first}


def swap_under_load(srv: Server, uri: str, seconds: float, to: str, expected: dict, reload_request: bool) -> dict:
    client = MlflowClient(tracking_uri=uri)
    current = str(client.get_model_version_by_alias("sentiment", "champion").version)
    moved: dict[str, float] = {}

    def move() -> None:
        time.sleep(seconds / 4)
        moved["at"] = time.time()
        client.set_registered_model_alias("sentiment", "champion", to)
        if reload_request:
            http("POST", srv.base + "/admin/reload", {"task": "sentiment"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    mover = threading.Thread(target=move)
    mover.start()
    result = load(
        srv.base + "/sentiment", BODY, clients=CLIENTS, seconds=seconds, check=answered_by_its_model(expected)
    )
    mover.join()
    label = next((m for m in result.models if m.startswith(f"sentiment/v{to} ")), None)
    return {
        "trigger": "POST /admin/reload" if reload_request else "alias poll (MEMORIA_RELOAD_INTERVAL_S=10)",
        "swap": f"v{current} -> v{to}",
        "clients": CLIENTS,
        "requests": result.requests,
        "failed": result.failures,
        "wrong_model_answers": result.wrong,
        "statuses": {str(k): v for k, v in result.statuses.items()},
        "answers_per_model": dict(result.models),
        "seconds_to_first_new_answer": round(result.first_seen[label] - moved["at"], 2) if label else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24, help="load duration per swap (the move comes at 1/4)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry, expected = throwaway_registry(root)
        env = {**os.environ, **registry, "MEMORIA_ADMIN_TOKEN": ADMIN_TOKEN}
        for name in ("MEMORIA_SENTIMENT_BUNDLE", "MEMORIA_TRANSLATION_BUNDLE", "MEMORIA_RELOAD_INTERVAL_S"):
            env.pop(name, None)
        srv = Server(env, root / "serve.log")
        uri = env["MLFLOW_TRACKING_URI"]
        try:
            srv.wait_ready(timeout=180)
            rows = [
                swap_under_load(srv, uri, args.seconds, "2", expected, reload_request=False),
                swap_under_load(srv, uri, args.seconds, "3", expected, reload_request=True),
            ]
        finally:
            srv.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-swap.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "| trigger | swap | clients | requests | failed | wrong model | alias move -> first answer from the new model |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        delay = r["seconds_to_first_new_answer"]
        print(
            f"| {r['trigger']} | {r['swap']} | {r['clients']} | {r['requests']} | {r['failed']} "
            f"| {r['wrong_model_answers']} | {delay} s |"
        )


if __name__ == "__main__":
    main()
