"""`make bench`'s serving benchmark: memoria against the servers a user could have written instead, one run.

Each server is started in turn as a real process on 127.0.0.1, on the same champion bundles, and meets the same
closed-loop scenarios with the same request bodies (see plan.py for the line-up, loadgen.py for the client):

    memoria        bentoml serve serving.service:Memoria, default settings
    fastapi-torch  FastAPI + uvicorn running the champion's PyTorch weights eagerly (/sentiment only)
    fastapi-onnx   the same FastAPI app on the champion's ONNX bundles via serving's predictors, no batching
    noop-layout    memoria's own layout (BentoML service, HttpGuard, MicroBatcher, schemas) with no model
    memoria-*      memoria with one setting changed, single-text /sentiment at 32 clients only

Writes reports/bench-serving.json (every row, the machine, the models) and reports/bench-serving.md (also printed),
with memoria's req/s over each peer's and the goals judged from the numbers.

    python -m tests.benchmarks.bench_serving                      # everything, about 10 minutes
    python -m tests.benchmarks.bench_serving --quick --only memoria,fastapi-onnx
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from tests.benchmarks.loadgen import LoadResult, run_load
from tests.benchmarks.plan import FASTAPI_TORCH, MEMORIA, SETTINGS, Contender, Scenario, all_names, lineup
from tests.benchmarks.report import Row, goals, machine, markdown, ratios
from tests.benchmarks.servers import REPO, ServerError, ServerProcess, base_environment, http_json
from tests.benchmarks.workload import Champions, load_texts, pytorch_weights, request_bodies, resolve_champions

START_ESTIMATE_S = 10  # a server start, for the runtime estimate printed up front
MEMORIA_LAYOUT = {MEMORIA, *SETTINGS}  # servers that should answer with the champion's X-Memoria-Model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_serving", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per scenario (default 8; --quick: 2)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each scenario (default 2; --quick: 0.5)")
    parser.add_argument("--only", help=f"comma-separated servers, from: {','.join(all_names())}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer scenarios, 2 s each")
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="where the two report files go")
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 8.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else all_names()
    unknown = sorted(set(args.names) - set(all_names()))
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(all_names())}")
    return args


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries the markdown report only."""
    print(message, file=sys.stderr, flush=True)


# -- one scenario ---------------------------------------------------------------------------------------------
Bodies = dict[tuple[str, int, int | None], list[bytes]]


def build_bodies(sentiment: list[str], spanish: list[str], contenders: list[Contender]) -> Bodies:
    keys = {(s.endpoint, s.texts, s.beam) for c in contenders for s in c.scenarios}
    return {
        (endpoint, texts, beam): request_bodies(sentiment if endpoint == "/sentiment" else spanish, texts, beam)
        for endpoint, texts, beam in sorted(keys, key=str)
    }


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def to_row(server: str, scenario: Scenario, result: LoadResult, warmup: float, wall_s: float, load: float) -> Row:
    """One result row; `load` is the 1-minute load average when the scenario started (other work on the box)."""
    window = result.window_s
    return {
        "server": server,
        "endpoint": scenario.endpoint,
        "scenario": scenario.name,
        "key": scenario.key,
        "clients": scenario.clients,
        "texts_per_request": scenario.texts,
        "beam_size": scenario.beam,
        "after_burst": scenario.after_burst,
        "warmup_s": warmup,
        "window_s": window,
        "wall_s": round(wall_s, 2),
        "requests": result.requests,
        "req_per_s": round(result.requests / window, 1),
        "texts_per_s": round(result.requests * scenario.texts / window, 1),
        "p50_ms": _ms(result.percentile(50)),
        "p95_ms": _ms(result.percentile(95)),
        "p99_ms": _ms(result.percentile(99)),
        "max_ms": _ms(max(result.latencies_ms, default=math.nan)),
        "errors": result.errors,
        "error_samples": dict(result.error_kinds),
        "loadavg_1m_at_start": load,
    }


def measure(server: ServerProcess, scenario: Scenario, bodies: Bodies, seconds: float, warmup: float) -> Row:
    warmup = 0.0 if scenario.after_burst else warmup  # see plan.py: the first requests after a burst are the point
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    key = (scenario.endpoint, scenario.texts, scenario.beam)
    result = run_load(server.base, scenario.endpoint, bodies[key], scenario.clients, seconds, warmup)
    row = to_row(server.spec.name, scenario, result, warmup, time.perf_counter() - started, load)
    log(
        f"  {scenario.key:<42} {row['req_per_s']:>8.1f} req/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
        f"  errors {row['errors']}"
    )
    return row


# -- one server -----------------------------------------------------------------------------------------------
def preflight(server: ServerProcess, contender: Contender, bodies: Bodies) -> dict[str, str]:
    """One request per endpoint before any load: a wrong answer stops this server, not the benchmark.
    Returns the X-Memoria-Model header per endpoint (empty for the FastAPI peers, which don't send it)."""
    labels = {}
    for scenario in {s.endpoint: s for s in contender.scenarios}.values():
        body = json.loads(bodies[(scenario.endpoint, scenario.texts, scenario.beam)][0])
        status, answer, headers = http_json("POST", server.base + scenario.endpoint, body)
        if status != 200 or not isinstance(answer, list) or len(answer) != len(body["texts"]):
            raise ServerError(f"{server.spec.name} {scenario.endpoint}: HTTP {status}: {str(answer)[:300]}")
        labels[scenario.endpoint] = headers.get("x-memoria-model", "")
    return labels


def server_entry(contender: Contender) -> dict[str, Any]:
    spec = contender.spec
    command = shlex.join(["python", *spec.command(0)[1:]]).replace("--port 0", "--port <free port>")
    return {"name": spec.name, "command": command, "env": dict(spec.env), "description": spec.description}


def run_contender(
    contender: Contender,
    bodies: Bodies,
    args: argparse.Namespace,
    log_dir: Path,
    expected: dict[str, str],
    rows: list[Row],
    notes: list[str],
    entries: list[dict[str, Any]],
) -> None:
    """Start, check, load, stop. Rows and the server's entry are appended as they come, so Ctrl-C keeps them."""
    entry = server_entry(contender)
    entry["status"] = "interrupted"
    entries.append(entry)
    name = contender.spec.name
    log(f"{name}: starting ({entry['command']})")
    try:
        with ServerProcess(contender.spec, base_environment(), log_dir) as server:
            entry["ready_s"] = round(server.ready_s, 1)
            entry["model_labels"] = preflight(server, contender, bodies)
            for scenario in contender.scenarios:
                rows.append(measure(server, scenario, bodies, args.seconds, args.warmup))
            after = preflight(server, contender, bodies)
            if name in MEMORIA_LAYOUT:
                for endpoint, label in (*entry["model_labels"].items(), *after.items()):
                    if label != expected[endpoint]:
                        notes.append(
                            f"{name} {endpoint} served {label!r}, the benchmark resolved {expected[endpoint]!r}"
                        )
            entry["status"] = "ok"
    except Exception as e:  # this server failed (start, answer, client): the others still run
        message = str(e) if isinstance(e, ServerError) else f"{type(e).__name__}: {e}"
        headline = (message.splitlines() or [type(e).__name__])[0][:300]
        entry["status"] = f"failed: {headline}"
        entry["log_tail"] = message
        notes.append(f"{name} failed: {headline}")
        log(f"{name}: FAILED\n{message}")


# -- the run --------------------------------------------------------------------------------------------------
def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """So that `kill <pid>` stops the servers exactly like Ctrl-C does (the `with` blocks unwind)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[Champions, list[Contender], list[str], dict[str, Any]]:
    """Champions, texts, the line-up (the PyTorch peer only if the champion's weights can be found)."""
    champions = resolve_champions()
    notes: list[str] = []
    skipped: dict[str, Any] = {}
    torch_dir = None
    if FASTAPI_TORCH in args.names:
        try:
            torch_dir = pytorch_weights(champions.sentiment, tmp / "torch")
        except Exception as e:
            reason = f"no PyTorch weights for {champions.sentiment.label}: {type(e).__name__}: {str(e)[:300]}"
            skipped[FASTAPI_TORCH] = {"name": FASTAPI_TORCH, "command": "", "env": {}, "status": f"skipped: {reason}"}
            notes.append(f"{FASTAPI_TORCH} skipped: {reason}")
    contenders = lineup(args.names, champions.bundle_env(), torch_dir, args.quick)
    return champions, contenders, notes, skipped


def write_reports(report: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-serving.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    text = markdown(report)
    (out / "bench-serving.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr to the progress lines
    started = time.perf_counter()
    machine_info = machine()  # before the run: its load average says what else was running
    rows: list[Row] = []
    entries: list[dict[str, Any]] = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp, sigterm_as_interrupt():
        champions, contenders, notes, skipped = prepare(args, Path(tmp))
        sentiment, spanish, origin = load_texts(champions)
        bodies = build_bodies(sentiment, spanish, contenders)
        expected = {"/sentiment": champions.sentiment.label, "/translate": champions.translation.label}
        per_scenario = args.seconds + args.warmup
        estimate = sum(len(c.scenarios) * per_scenario + START_ESTIMATE_S for c in contenders)
        log(f"models: {champions.sentiment.label}; {champions.translation.label}\ntexts: {origin}")
        log(f"{len(contenders)} servers, about {estimate / 60:.1f} minutes")
        entries += skipped.values()
        try:
            for contender in contenders:
                run_contender(contender, bodies, args, Path(tmp), expected, rows, notes, entries)
        except KeyboardInterrupt:
            interrupted = True
            notes.append("interrupted: the report holds the scenarios measured before the interruption")
            log("interrupted: servers stopped, writing what was measured")
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info,
        "models": {"sentiment": champions.sentiment.label, "translation": champions.translation.label},
        "texts": origin,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "quick": args.quick,
        "load_generator": "aiohttp closed loop in the benchmark process, on the same cores as the server",
        "total_s": round(time.perf_counter() - started, 1),
        "interrupted": interrupted,
        "servers": entries,
        "rows": rows,
        "ratios": ratios(rows),
        "goals": [g.as_dict() for g in goals(rows)],
        "notes": notes,
    }
    print(write_reports(report, args.out), end="")
    log(f"wrote {args.out / 'bench-serving.json'} and {args.out / 'bench-serving.md'} in {report['total_s']:.0f} s")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
