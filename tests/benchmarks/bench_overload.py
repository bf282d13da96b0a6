"""`make bench`'s overload benchmark: memoria under open-loop arrivals at 1x, 2x and 4x what it can serve.

One run, one server (`bentoml serve serving.service:Memoria`, default settings, on the champions that serving
resolves), one request body (by default /translate, 64 Spanish sentences at beam 8: the heaviest request the API
allows). First the saturation rate is measured closed loop (2 callers per worker, each waiting for its answer);
then requests are sent open loop (tests/benchmarks/openloop.py) at 1x, 2x and 4x that rate, then at 1x again,
each for --seconds, back to back. Reported per phase: requests sent, the share answered 200 / 503 / other,
accepted-request p50 and p99, the server's memory (RSS of all its processes: largest and last sample), and for the
last phase the seconds until accepted p99 is back near the first 1x figure.

--unbounded adds the same 4x phase on a second server whose limits are set out of reach (what memoria did before
it had back-pressure: every request accepted and queued).

    python -m tests.benchmarks.bench_overload                 # about 2 minutes (+1-2 with --unbounded)
    python -m tests.benchmarks.bench_overload --endpoint /sentiment --texts 1 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.openloop import Phase, closed_rate, percentile, run_phases
from tests.benchmarks.report import machine
from tests.benchmarks.servers import REPO, ServerProcess, ServerSpec, base_environment, bentoml_serve, http_json
from tests.benchmarks.workload import load_texts, request_bodies, resolve_champions
from tests.serving_harness import rss_kib

MULTIPLES = (1, 2, 4)
RECOVERY_BIN_S = 1.0
RECOVERED_P99_FACTOR = 1.5  # "back": p99 within 1.5x of the first 1x phase's (or 100 ms above it, if more)
UNBOUNDED = {
    "MEMORIA_MAX_CONCURRENT_REQUESTS": "1000000",
    "MEMORIA_MAX_QUEUED_TEXTS": "1000000000",
    "MEMORIA_MAX_QUEUE_WAIT_S": "100000",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_overload", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint", default="/translate", choices=["/translate", "/sentiment"])
    parser.add_argument("--texts", type=int, default=64, help="texts per request (default 64)")
    parser.add_argument("--beam", type=int, default=8, help="beam size for /translate (default 8)")
    parser.add_argument("--seconds", type=float, default=15, help="seconds per open-loop phase (default 15)")
    parser.add_argument("--saturation-seconds", type=float, default=10, help="closed-loop measurement (default 10)")
    parser.add_argument("--unbounded", action="store_true", help="also 4x on a server with its limits out of reach")
    parser.add_argument("--out", type=Path, default=REPO / "reports")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_rss(server: ServerProcess) -> int:
    """KiB resident in the server's process group (supervisor and workers)."""
    from tests.serving_harness import Server

    pids = Server.pids(server)  # type: ignore[arg-type]  # the same tree walk, from .proc
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile
            total += rss_kib(pid)
    return total


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 1)


def phase_row(phase: Phase, multiple: float, saturation: float) -> dict[str, Any]:
    accepted = phase.accepted
    statuses = phase.statuses()
    return {
        "phase": phase.name,
        "multiple_of_saturation": multiple,
        "rate_per_s": round(phase.rate, 2),
        "seconds": phase.seconds,
        "sent": len(phase.outcomes),
        "answered_200": statuses.get(200, 0),
        "share_503": round(phase.share(503), 3),
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
        "p50_ms": _ms(percentile(accepted, 50)),
        "p99_ms": _ms(percentile(accepted, 99)),
        "max_ms": _ms(max(accepted, default=math.nan)),
        "last_answer_after_s": round(max((o.sent_s + o.latency_s for o in phase.outcomes), default=0), 1),
        "retry_after_values": sorted({o.retry_after for o in phase.outcomes if o.retry_after}),
        "rss_mib_max": round(max(phase.rss_kib, default=0) / 1024, 1),
        "rss_mib_last": round((phase.rss_kib or [0])[-1] / 1024, 1),
        "saturation_per_s": round(saturation, 2),
    }


def recovery_s(phase: Phase, baseline_p99: float) -> float | None:
    """Seconds into `phase` from which every 1-s bin (by send time) has accepted p99 near the baseline."""
    target = max(baseline_p99 * RECOVERED_P99_FACTOR, baseline_p99 + 0.1)
    bins: dict[int, list[float]] = {}
    for o in phase.outcomes:
        if o.status == 200:
            bins.setdefault(int(o.sent_s // RECOVERY_BIN_S), []).append(o.latency_s)
    if not bins:
        return None
    bad = [b for b, values in bins.items() if percentile(values, 99) > target]
    return 0.0 if not bad else (max(bad) + 1) * RECOVERY_BIN_S if max(bad) + 1 in bins else None


def measure(spec: ServerSpec, tmp: Path, body: bytes, args: argparse.Namespace, multiples: tuple[float, ...]) -> dict:
    with ServerProcess(spec, base_environment(), tmp) as server:
        status, answer, _ = http_json("POST", server.base + args.endpoint, json.loads(body))
        if status != 200:
            raise RuntimeError(f"{spec.name}: pre-flight answered {status}: {str(answer)[:300]}")
        clients = 2 * _workers()
        saturation = asyncio.run(closed_rate(server.base, args.endpoint, body, clients, args.saturation_seconds))
        log(f"{spec.name}: saturation {saturation:.2f} req/s ({clients} closed-loop callers)")
        phases = [Phase(f"{m:g}x", m * saturation, args.seconds) for m in multiples]
        asyncio.run(run_phases(server.base, args.endpoint, body, phases, lambda: server_rss(server)))
        rows = [phase_row(p, m, saturation) for p, m in zip(phases, multiples, strict=True)]
        for row in rows:
            log(
                f"  {row['phase']:>4} {row['rate_per_s']:>7.2f}/s sent {row['sent']:>5} 200 {row['answered_200']:>5}"
                f" 503 {row['share_503']:.0%} p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms"
                f" last answer {row['last_answer_after_s']} s RSS {row['rss_mib_max']} MiB"
            )
        # A server that answered every phase as it came keeps answering now.
        after = http_json("POST", server.base + args.endpoint, json.loads(body))[0]
        return {"saturation_per_s": saturation, "phases": phases, "rows": rows, "status_after": after}


def _workers() -> int:
    import os

    return int(os.environ.get("MEMORIA_WORKERS", "0") or 0) or os.cpu_count() or 1


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Open-loop overload, {report['request']} ({report['models'][report['task']]}), "
        f"{report['machine']['cores']} cores ({report['machine']['cpu']}), {report['date']}",
        f"saturation (closed loop, {report['saturation_clients']} callers): {report['saturation_per_s']:.2f} req/s",
        "",
        "| server | phase | rate /s | sent | 200 | 503 share | other | accepted p50 ms | accepted p99 ms | "
        "last answer s | RSS max MiB |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        other = ", ".join(f"{k}: {v}" for k, v in row["other_statuses"].items()) or "-"
        lines.append(
            f"| {row['server']} | {row['phase']} | {row['rate_per_s']} | {row['sent']} | {row['answered_200']} | "
            f"{row['share_503']:.1%} | {other} | {row['p50_ms']} | {row['p99_ms']} | {row['last_answer_after_s']} | "
            f"{row['rss_mib_max']} |"
        )
    recovered = report["recovery_s"]
    lines += [
        "",
        "recovery: after 4x, back at 1x, accepted p99 near the first 1x figure "
        + (f"from {recovered:g} s on" if recovered is not None else "NOT reached within the phase"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    info = machine()
    champions = resolve_champions()
    sentiment, spanish, origin = load_texts(champions)
    task = "translation" if args.endpoint == "/translate" else "sentiment"
    texts = spanish if task == "translation" else sentiment
    texts = (texts * math.ceil(args.texts / max(len(texts), 1)))[: max(args.texts, len(texts))]
    (body, *_) = request_bodies(texts, args.texts, args.beam if task == "translation" else None)
    what = f"{args.endpoint} {args.texts} texts" + (f" beam {args.beam}" if task == "translation" else "")
    log(f"{what}; models: {champions.sentiment.label}; {champions.translation.label}")
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "models": {"sentiment": champions.sentiment.label, "translation": champions.translation.label},
        "task": task,
        "request": what,
        "texts": origin,
        "saturation_clients": 2 * _workers(),
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        spec = ServerSpec("memoria", bentoml_serve("serving.service:Memoria"), description="default settings")
        result = measure(spec, Path(tmp), body, args, (*MULTIPLES, 1))
        result["rows"][-1]["phase"] = "1x again"
        report["saturation_per_s"] = round(result["saturation_per_s"], 2)
        report["rows"] += [{"server": "memoria", **row} for row in result["rows"]]
        baseline = percentile(result["phases"][0].accepted, 99)
        report["recovery_s"] = recovery_s(result["phases"][-1], baseline)
        report["status_after"] = result["status_after"]
        if args.unbounded:
            spec = ServerSpec("memoria-unbounded", bentoml_serve("serving.service:Memoria"), UNBOUNDED, "limits off")
            unbounded = measure(spec, Path(tmp), body, args, (4,))
            report["rows"] += [{"server": "limits out of reach", **row} for row in unbounded["rows"]]
    report["total_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-overload.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "bench-overload.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
