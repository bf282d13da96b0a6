"""The drift alert on a live service: scrape its novelty distance from /metrics and evaluate monitoring/alerts.yml on
that series with `promtool test rules`, as Prometheus would after it held for 15 minutes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.serving_harness import http

THRESHOLD = 0.3  # monitoring/alerts.yml MemoriaInputDrift


def scraped_distance(base: str, task: str, model: str, signal: str = "novelty") -> tuple[str, float] | None:
    """(the series as /metrics names it, its value), or None when the service exports no such distance."""
    for line in http("GET", base + "/metrics")[1].splitlines():
        if (
            line.startswith("memoria_drift_distance{")
            and f'signal="{signal}"' in line
            and f'model="{model}"' in line
            and f'task="{task}"' in line
        ):
            series, value = line.rsplit(" ", 1)
            return series, float(value)
    return None


def drift_alert_fires(series: str, value: float, task: str, model: str, signal: str, folder: Path) -> str:
    """Run promtool on a case that holds `series` at `value` (and the model as served) for 20 minutes and expects
    MemoriaInputDrift to fire at 15; returns promtool's output (raises AssertionError when it does not fire)."""
    description = f"Run `make drift TASK={task}` to see what changed; retrain on feedback if it stays."
    expected = {
        "exp_labels": {"severity": "warning", "task": task, "model": model, "signal": signal},
        "exp_annotations": {
            "summary": f"{task}: {signal} drifted (JS distance {value:.2f})",
            "description": description,
        },
    }
    case = {
        "rule_files": [str(REPO / "monitoring" / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": f"{value}x20"},
                    {"series": f'memoria_model_served{{task="{task}",model="{model}"}}', "values": "1x20"},
                ],
                "alert_rule_test": [{"eval_time": "15m", "alertname": "MemoriaInputDrift", "exp_alerts": [expected]}],
            }
        ],
    }
    (folder / "drift_test.yml").write_text(json.dumps(case))  # JSON is YAML
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make cluster-tools`"
    out = subprocess.run([exe, "test", "rules", "drift_test.yml"], cwd=folder, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout
