"""A live champion swap under load: failed requests, and the time from the alias move to the new model's answer.

The champion bundles of the local store are registered in a throwaway SQLite registry (so the real one is never
touched), served with `bentoml serve` under default settings (10 s alias poll), loaded by 32 closed-loop clients;
mid-run the `champion` alias moves to a new version of the same bundle, once by the poll alone and once followed
by `POST /admin/reload`. Usage: `python -m tests.benchmarks.bench_swap` (part of `make bench`).
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

from serving.contract.names import DIGEST_TAG
from serving.resolve import resolve_bundle
from tests.serving_harness import Server, http, load

CLIENTS = 32
BODY = {"texts": ["the crew was lovely but the flight was late"]}
ADMIN_TOKEN = "bench-admin"


def throwaway_registry(root: Path) -> dict[str, str]:
    """A registry holding the current champions' bundles as version 1 of each task."""
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    for task in ("sentiment", "translation"):
        bundle = resolve_bundle(task).bundle  # from the real store (or MEMORIA_<TASK>_BUNDLE)
        source = root / task / "bundle"  # named like a run's artifact folder, which serving expects
        shutil.copytree(bundle.path, source)
        client.create_registered_model(task)
        version = client.create_model_version(task, str(source), tags={DIGEST_TAG: bundle.digest})
        client.set_registered_model_alias(task, "champion", version.version)
    return {"MLFLOW_TRACKING_URI": uri, "MEMORIA_BUNDLE_CACHE": str(root / "cache")}


def swap_under_load(srv: Server, uri: str, seconds: float, reload_request: bool) -> dict:
    client = MlflowClient(tracking_uri=uri)
    current = client.get_model_version_by_alias("sentiment", "champion")
    new = client.create_model_version("sentiment", current.source, tags={DIGEST_TAG: current.tags[DIGEST_TAG]})
    moved: dict[str, float] = {}

    def move() -> None:
        time.sleep(seconds / 4)
        moved["at"] = time.time()
        client.set_registered_model_alias("sentiment", "champion", new.version)
        if reload_request:
            http("POST", srv.base + "/admin/reload", {"task": "sentiment"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    mover = threading.Thread(target=move)
    mover.start()
    result = load(srv.base + "/sentiment", BODY, clients=CLIENTS, seconds=seconds)
    mover.join()
    label = next((m for m in result.models if m.startswith(f"sentiment/v{new.version} ")), None)
    return {
        "trigger": "POST /admin/reload" if reload_request else "alias poll (MEMORIA_RELOAD_INTERVAL_S=10)",
        "clients": CLIENTS,
        "requests": result.requests,
        "failed": result.failures,
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
        env = {**os.environ, **throwaway_registry(root), "MEMORIA_ADMIN_TOKEN": ADMIN_TOKEN}
        for name in ("MEMORIA_SENTIMENT_BUNDLE", "MEMORIA_TRANSLATION_BUNDLE", "MEMORIA_RELOAD_INTERVAL_S"):
            env.pop(name, None)
        srv = Server(env, root / "serve.log")
        try:
            srv.wait_ready(timeout=180)
            rows = [swap_under_load(srv, env["MLFLOW_TRACKING_URI"], args.seconds, flag) for flag in (False, True)]
        finally:
            srv.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-swap.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| trigger | clients | requests | failed | alias move -> first answer from the new model |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        delay = r["seconds_to_first_new_answer"]
        print(f"| {r['trigger']} | {r['clients']} | {r['requests']} | {r['failed']} | {delay} s |")


if __name__ == "__main__":
    main()
