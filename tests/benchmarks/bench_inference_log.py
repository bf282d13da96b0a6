"""What the inference log costs: memoria's /sentiment with the log on and off, same champions, same load, rounds
interleaved (off, on, off, on ...) so that drift of the shared machine hits both alike; the answer is the ratio.

    python -m tests.benchmarks.bench_inference_log [--rounds 2] [--seconds 10] [--clients 32]
                                                   -> reports/bench-inference-log.json

Serves the champions of $MLFLOW_TRACKING_URI (as `make bench`); each server writes its log into a throwaway folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from tests.benchmarks.loadgen import run_load
from tests.benchmarks.servers import ServerProcess, ServerSpec, base_environment, bentoml_serve
from tests.benchmarks.workload import FALLBACK_SENTIMENT, request_bodies
from tests.conftest import REPO

REPORT = REPO / "reports" / "bench-inference-log.json"
BODIES = request_bodies(list(FALLBACK_SENTIMENT) * 8, 1)  # one tweet per request: the log's cost per answer shows most


def measure(logging_on: bool, folder: Path, seconds: float, clients: int) -> dict[str, float]:
    env = {"MEMORIA_INFERENCE_LOG": str(logging_on).lower(), "MEMORIA_PRODUCTION_DIR": str(folder / "production")}
    spec = ServerSpec(f"memoria-log-{'on' if logging_on else 'off'}", bentoml_serve("serving.service:Memoria"), env)
    with ServerProcess(spec, base_environment(), folder) as srv:
        result = run_load(srv.base, "/sentiment", BODIES, clients, seconds, warmup=2.0)
    return {
        "req_per_s": result.requests / seconds,
        "p50_ms": result.percentile(50),
        "p99_ms": result.percentile(99),
        "errors": result.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for on in (False, True):
                folder = Path(tmp) / f"{r}-{on}"
                folder.mkdir()
                runs["on" if on else "off"].append(measure(on, folder, args.seconds, args.clients))
                print(f"round {r + 1} log {'on ' if on else 'off'}: {runs['on' if on else 'off'][-1]}")
    median = {k: {m: statistics.median(run[m] for run in v) for m in v[0]} for k, v in runs.items()}
    ratios = {m: median["on"][m] / median["off"][m] for m in ("req_per_s", "p50_ms", "p99_ms")}
    report = {"clients": args.clients, "seconds": args.seconds, "runs": runs, "median": median, "on_over_off": ratios}
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"median": median, "on_over_off": ratios}, indent=2))


if __name__ == "__main__":
    main()
