"""The serving edge before and after a change: memoria at an older commit and at this checkout, on the same champion
bundles, started in turn, rounds interleaved (old, new, old, new, ...) so that a machine's drifting load falls on
both alike; the figure is the ratio new / old of each round's req/s and p99, and their medians.

Single-text `/sentiment` at 32 closed-loop clients (the Speed section's headline scenario), default settings.
The older commit runs from a git worktree made for the run (removed after); both serve the registry of
MLFLOW_TRACKING_URI. Bundle signatures: the older code ignores them, this checkout verifies them as it would serve.

    python -m tests.benchmarks.bench_edge --before 5884236 --rounds 4 --seconds 8
    python -m tests.benchmarks.bench_edge --before 5884236 --after c6d6e55   # two older commits
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.benchmarks.loadgen import run_load
from tests.benchmarks.report import machine
from tests.benchmarks.servers import REPO, ServerProcess, ServerSpec, base_environment, bentoml_serve

PROBE = REPO / "training" / "data" / "sentiment" / "review_probe.jsonl"


def bodies() -> list[bytes]:
    texts = [json.loads(line)["text"] for line in PROBE.read_text().splitlines() if line.strip()]
    return [json.dumps({"texts": [t]}).encode() for t in texts]


def measure(spec: ServerSpec, env: dict[str, str], logs: Path, args: argparse.Namespace) -> dict[str, float]:
    with ServerProcess(spec, env, logs) as server:
        result = run_load(server.base, "/sentiment", bodies(), args.clients, args.seconds, args.warmup)
    return {
        "req_s": result.requests / result.window_s,
        "p50_ms": result.percentile(50),
        "p99_ms": result.percentile(99),
        "errors": result.errors,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_edge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the older commit (e.g. the one before a change to the edge)")
    parser.add_argument("--after", help="the newer commit (default: this checkout as it is)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench-edge.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memoria-edge-") as tmp:
        trees = {"before": (Path(tmp) / "before", args.before)}
        if args.after:
            trees["now"] = (Path(tmp) / "after", args.after)
        for tree, ref in trees.values():
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), ref], check=True)
        try:
            env = {**base_environment(), "BENTOML_HOME": str(Path(tmp) / "bentoml")}
            specs = {
                "before": ServerSpec("before", bentoml_serve("serving.service:Memoria"), cwd=trees["before"][0]),
                "now": ServerSpec(
                    "now", bentoml_serve("serving.service:Memoria"), cwd=trees["now"][0] if args.after else None
                ),
            }
            rounds: list[dict[str, dict[str, float]]] = []
            for i in range(args.rounds):
                row = {name: measure(spec, env, Path(tmp), args) for name, spec in specs.items()}
                rounds.append(row)
                ratio = row["now"]["req_s"] / row["before"]["req_s"]
                print(
                    f"round {i + 1}: before {row['before']['req_s']:.0f} req/s p99 {row['before']['p99_ms']:.1f} ms, "
                    f"now {row['now']['req_s']:.0f} req/s p99 {row['now']['p99_ms']:.1f} ms: req/s ratio {ratio:.3f}",
                    flush=True,
                )
        finally:
            for tree, _ in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    summary = {
        "before": args.before,
        "after": args.after or "this checkout",
        "req_s_ratio_median": statistics.median(r["now"]["req_s"] / r["before"]["req_s"] for r in rounds),
        "p99_ratio_median": statistics.median(r["now"]["p99_ms"] / r["before"]["p99_ms"] for r in rounds),
        "errors": sum(r[n]["errors"] for r in rounds for n in r),
        "rounds": rounds,
        "clients": args.clients,
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(
        f"now / before (median of {args.rounds} rounds): req/s {summary['req_s_ratio_median']:.3f}, "
        f"p99 {summary['p99_ratio_median']:.3f}; errors {summary['errors']}"
    )


if __name__ == "__main__":
    main()
