"""The Makefile is the user interface: every documented target exists and `make help` lists it."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

TARGETS = ["install", "data", "train", "export", "serve", "ui", "test", "run", "baseline", "lint", "bench", "bento"]


def make(*args: str) -> str:
    out = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_lists_every_target() -> None:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", make("help"))  # drop the colour codes
    listed = {line.split()[0] for line in plain.splitlines() if line.startswith("  ") and line.split()}
    assert set(TARGETS) <= listed


def test_run_trains_only_missing_champions_then_serves() -> None:
    plan = make("-n", "run")  # dry run: the commands `make run` would execute, in order (install is up to date)
    assert plan.index("ensure-champion --task all --preset default") < plan.index("serve")


def test_train_passes_task_preset_and_overrides() -> None:
    plan = make("-n", "train", "TASK=translation", "PRESET=smoke", "ARGS=--set model.decoder_cell=peephole")
    assert "-m training train --task translation --preset smoke --set model.decoder_cell=peephole" in plan


def test_serve_honours_host_and_port() -> None:
    assert "--host 0.0.0.0 --port 3999" in make("-n", "serve", "HOST=0.0.0.0", "PORT=3999")


def test_gpu_install_replaces_onnxruntime_with_the_gpu_build() -> None:
    plan = make("-n", "install", "GPU=1")
    assert plan.index("pip uninstall -y -q onnxruntime") < plan.index("-r serving/requirements-gpu.txt")
    assert "requirements-gpu" not in make("-n", "install")  # the CPU install stays as it is


def test_test_installs_the_browser_before_running_pytest() -> None:
    plan = make("-n", "test")  # the demo page's test needs Debian's chromium + chromium-driver (`make browser`)
    assert plan.index("apt-get install -y -q chromium chromium-driver") < plan.index("-m pytest")


def test_run_and_train_install_apertium_first() -> None:
    # `default` translation trains on back-translated tweets: without Apertium the domain is skipped (a warning)
    for target in ("run", "train", "data", "retrain"):
        plan = make("-n", target, "TASK=translation")
        assert "apt-get install -y -q apertium-eng-spa" in plan, target
