"""The benchmark's report: machine description, result rows, memoria-over-peer ratios and the goals, as JSON
(everything, for later comparison) and markdown (for people and the README).

Goals are judged on single-text /sentiment at 32 clients, the load a chat or moderation front end produces, and
on a lone client before and after a burst. A goal whose inputs were not measured (a peer left out with --only,
or --quick skipping 128 clients) is reported as not evaluated, never as met.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.benchmarks.plan import (
    FASTAPI_ONNX,
    FASTAPI_TORCH,
    MEMORIA,
    NOOP,
    PEERS,
    SETTINGS,
    SETTINGS_COMPARISONS,
    SETTINGS_SCENARIO,
)

Row = dict[str, Any]
PACKAGES = ("onnxruntime", "bentoml", "torch", "fastapi", "uvicorn", "aiohttp", "pydantic")
GOAL_SCENARIO = "/sentiment 1 text, 32 clients"
LONE = "/sentiment 1 text, 1 client"
LONE_AFTER = "/sentiment 1 text, 1 client after burst"


def _cpuinfo_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """Read without importing torch or onnxruntime: the benchmark process stays light."""
    return {
        "cpu": _cpuinfo_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- lookups --------------------------------------------------------------------------------------------------
def find(rows: list[Row], server: str, key: str) -> Row | None:
    return next((r for r in rows if r["server"] == server and r["key"] == key), None)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """memoria's req/s over each peer's, per scenario both ran."""
    out = []
    for mine in (r for r in rows if r["server"] == MEMORIA):
        entry: dict[str, Any] = {"scenario": mine["key"]}
        for peer in PEERS:
            theirs = find(rows, peer, mine["key"])
            entry[peer] = ratio(mine["req_per_s"], theirs["req_per_s"]) if theirs else None
        out.append(entry)
    return out


# -- goals ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    text: str
    met: bool | None  # None: not evaluated (a number is missing)
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"goal": self.text, "met": self.met, "detail": self.detail}

    def line(self) -> str:
        verdict = {True: "met", False: "NOT MET", None: "not evaluated"}[self.met]
        return f"- **{verdict}**: {self.text} ({self.detail})"


def _compare(
    text: str, rows: list[Row], key: str, peer: str, field: str, check: Callable[[float, float], bool], unit: str
) -> Goal:
    mine, theirs = find(rows, MEMORIA, key), find(rows, peer, key)
    if mine is None or theirs is None:
        missing = MEMORIA if mine is None else peer
        return Goal(text, None, f"{missing} has no `{key}` row")
    a, b = mine[field], theirs[field]
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return Goal(text, None, f"no successful requests in `{key}`")
    return Goal(text, check(a, b), f"memoria {a:.1f} {unit} vs {peer} {b:.1f} {unit}: {ratio(a, b)}x")


def goals(rows: list[Row]) -> list[Goal]:
    k = GOAL_SCENARIO
    out = [
        _compare(
            "req/s >= 1.5x fastapi-torch", rows, k, FASTAPI_TORCH, "req_per_s", lambda a, b: a >= 1.5 * b, "req/s"
        ),
        _compare("req/s >= 1.0x fastapi-onnx", rows, k, FASTAPI_ONNX, "req_per_s", lambda a, b: a >= b, "req/s"),
        _compare("req/s >= 0.8x noop-layout", rows, k, NOOP, "req_per_s", lambda a, b: a >= 0.8 * b, "req/s"),
        _compare("p99 <= 2x noop-layout's p99", rows, k, NOOP, "p99_ms", lambda a, b: a <= 2 * b, "ms"),
    ]
    loaded = [r for r in rows if r["server"] == MEMORIA and r["endpoint"] == "/sentiment" and r["clients"] in (32, 128)]
    if not loaded:
        out.append(Goal("zero errors at 32 and 128 clients", None, "memoria ran no 32- or 128-client scenario"))
    else:
        errors = sum(r["errors"] for r in loaded)
        seen = sorted({r["clients"] for r in loaded})
        detail = f"{errors} errors in {len(loaded)} scenarios at {', '.join(map(str, seen))} clients"
        if 128 not in seen:
            detail += "; 128 clients not run"
        out.append(Goal("zero errors at 32 and 128 clients", errors == 0 if 128 in seen else None, detail))
    lone = "1 client p50 <= 1.2x fastapi-onnx's p50"
    out.append(_compare(lone, rows, LONE, FASTAPI_ONNX, "p50_ms", lambda a, b: a <= 1.2 * b, "ms"))
    out.append(
        _compare(f"{lone}, after the burst", rows, LONE_AFTER, FASTAPI_ONNX, "p50_ms", lambda a, b: a <= 1.2 * b, "ms")
    )
    return out


# -- markdown -------------------------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _result_table(rows: list[Row]) -> list[str]:
    lines = [
        "| scenario | server | req/s | texts/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {name: i for i, name in enumerate([MEMORIA, *PEERS, *SETTINGS])}
    keys = list(dict.fromkeys(r["key"] for r in rows))
    for key in keys:
        for r in sorted((r for r in rows if r["key"] == key), key=lambda r: order.get(r["server"], 99)):
            lines.append(
                f"| {r['scenario']} | {r['server']} | {_num(r['req_per_s'])} | {_num(r['texts_per_s'])} | "
                f"{_num(r['p50_ms'])} | {_num(r['p95_ms'])} | {_num(r['p99_ms'])} | {r['errors']} |"
            )
    return lines


def _ratio_table(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["| scenario | " + " | ".join(f"memoria ÷ {p}" for p in PEERS) + " |", "|---|" + "---:|" * len(PEERS)]
    for e in entries:
        cells = " | ".join(_num(e[p], 2) + ("×" if e[p] is not None else "") for p in PEERS)
        lines.append(f"| {e['scenario']} | {cells} |")
    return lines


def _settings_table(rows: list[Row]) -> list[str]:
    key = SETTINGS_SCENARIO.key
    lines = [
        f"Single-text /sentiment at {SETTINGS_SCENARIO.clients} clients, one server start per setting "
        "(the default is memoria's own row above).",
        "",
        "| setting | req/s | p50 ms | p99 ms | errors | compared with | req/s ratio |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    default = find(rows, MEMORIA, key)
    if default:
        lines.append(
            f"| default (memoria) | {_num(default['req_per_s'])} | {_num(default['p50_ms'])} | "
            f"{_num(default['p99_ms'])} | {default['errors']} | | |"
        )
    for name, base in SETTINGS_COMPARISONS:
        row, other = find(rows, name, key), find(rows, base, key)
        if row is None:
            continue
        lines.append(
            f"| {SETTINGS[name][1]} | {_num(row['req_per_s'])} | {_num(row['p50_ms'])} | {_num(row['p99_ms'])} | "
            f"{row['errors']} | {base} | {_num(ratio(row['req_per_s'], other['req_per_s']) if other else None, 2)} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    m, rows = report["machine"], report["rows"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    out = [
        "# Serving benchmark: memoria against peers",
        "",
        f"{report['date']}. {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python {m['python']}; {pkgs}.",
        f"Models: {report['models']['sentiment']}; {report['models']['translation']}. Texts: {report['texts']}.",
        f"Closed loop, keep-alive: {report['seconds']} s measured per scenario after {report['warmup']} s warm-up "
        "(none for the run right after a burst). The load generator (aiohttp, one asyncio loop) runs on the same "
        f"{m['cores']} cores as the server, so every figure is a floor. Load average at start: "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}.",
        "",
        "## Servers",
        "",
        "| server | command | extra environment | ready after s | status |",
        "|---|---|---|---:|---|",
    ]
    for s in report["servers"]:
        # settings only: the bundle and weight paths are the same champions for all (see the JSON for them)
        env = " ".join(f"{k}={v}" for k, v in s["env"].items() if not k.endswith(("_BUNDLE", "_DIR"))) or "–"
        out.append(f"| {s['name']} | `{s['command']}` | {env} | {_num(s.get('ready_s'))} | {s['status']} |")
    for endpoint in ("/sentiment", "/translate"):
        selected = [r for r in rows if r["endpoint"] == endpoint and r["server"] not in SETTINGS]
        if selected:
            out += ["", f"## {endpoint}", "", *_result_table(selected)]
    if report["ratios"]:
        out += ["", "## memoria req/s over each peer's", "", *_ratio_table(report["ratios"])]
    if any(r["server"] in SETTINGS for r in rows):
        out += ["", "## memoria's settings", "", *_settings_table(rows)]
    out += ["", f"## Goals (`{GOAL_SCENARIO}` unless stated)", ""]
    out += [Goal(g["goal"], g["met"], g["detail"]).line() for g in report["goals"]]
    notes = report.get("notes") or []
    if notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    return "\n".join(out) + "\n"
