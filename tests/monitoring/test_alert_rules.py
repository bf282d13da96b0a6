"""The alerting rules shipped in monitoring/: valid, and each fires on its case and not on its near miss
(`promtool test rules`, Debian's prometheus package, which `make cluster-tools` installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO

RULES = REPO / "monitoring" / "alerts.yml"
CASES = REPO / "monitoring" / "alerts_test.yml"
ALERTS = (
    "MemoriaInputDrift",
    "MemoriaServerErrors",
    "MemoriaSentimentLatency",
    "MemoriaTranslationLatency",
    "MemoriaBundleRefused",
    "MemoriaTaskNotReady",
    "MemoriaFeedbackDisagreement",
)


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make cluster-tools` installs Debian's prometheus package (needs root)"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_rules_are_valid_and_every_alert_is_tested() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    cases = CASES.read_text()
    for alert in ALERTS:
        assert f"alert: {alert}" in RULES.read_text()
        assert cases.count(f"alertname: {alert}") >= 1, f"{alert} has no promtool case"


def test_every_alert_fires_on_its_case_and_not_on_its_near_miss() -> None:
    out = promtool("test", "rules", str(CASES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_cases_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The promtool cases are not vacuous: with the drift threshold moved above the firing case, they fail."""
    (tmp_path / "alerts.yml").write_text(
        RULES.read_text().replace("(memoria_drift_distance) > 0.3", "(memoria_drift_distance) > 0.5")
    )
    shutil.copy(CASES, tmp_path / "alerts_test.yml")
    out = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert out.returncode != 0 and "MemoriaInputDrift" in out.stdout + out.stderr
