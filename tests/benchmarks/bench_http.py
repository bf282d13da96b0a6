"""HTTP throughput and latency of the served champions, with locust against a real `bentoml serve`.

For each endpoint and number of concurrent users: requests/s, median and 99th percentile latency, and failures
(BentoML's batching answers 503 when it cannot keep up; the settings in serving/service.py aim at none).
Locust runs on the same machine as the server, so on 2 cores both share the CPU: the figures are a floor.
Usage: `make bench` (or python -m tests.benchmarks.bench_http [seconds]).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.test_e2e_http import Server

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = [("SentimentUser", 1), ("SentimentUser", 32), ("TranslationUser", 1), ("TranslationUser", 8)]


def run_locust(base: str, user_class: str, users: int, seconds: int, out: Path) -> dict:
    prefix = out / f"{user_class}-{users}"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "tests/benchmarks/locustfile.py"),
        user_class,
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        base,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO)
    with open(f"{prefix}_stats.csv") as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    return {
        "endpoint": "/sentiment" if user_class == "SentimentUser" else "/translate (beam 4)",
        "users": users,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "req_per_s": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
    }


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        server = Server(dict(os.environ), out / "serve.log")
        try:
            server.wait_ready(timeout=120)
            rows = [run_locust(server.base, user, users, seconds, out) for user, users in SCENARIOS]
        finally:
            server.stop()
    print(
        f"bentoml serve (API + one batched worker per model) and locust on the same {os.cpu_count()} cores, "
        f"{seconds}s per scenario"
    )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
