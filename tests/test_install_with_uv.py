"""scripts/install_with_uv.py: uv installs what pip would, because it gets pip's own settings (real pip, real uv)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install_with_uv.py"


def load_script():
    spec = importlib.util.spec_from_file_location("install_with_uv", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pip_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pip config file of our own, read last of the files; no PIP_* setting of this machine leaks in."""
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "pip.conf"
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    return config


def test_pip_settings_rank_global_then_install_then_environment(pip_config: Path, monkeypatch) -> None:
    pip_config.write_text(
        "[global]\nindex-url = https://mirror.example/simple\nfind-links = /srv/global-wheels\n"
        "constraint = /srv/caps.txt\n[install]\nfind-links = /srv/install-wheels /srv/more-wheels\n"
    )
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://a.example/simple https://b.example/simple")
    settings = load_script().pip_settings(sys.executable)
    assert settings["index-url"] == "https://mirror.example/simple"
    assert settings["find-links"] == "/srv/install-wheels /srv/more-wheels"  # [install] overrides [global]
    assert settings["constraint"] == "/srv/caps.txt"
    assert settings["extra-index-url"] == "https://a.example/simple https://b.example/simple"
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/env-wheels")
    assert load_script().pip_settings(sys.executable)["find-links"] == "/srv/env-wheels"  # the variable wins


def test_uv_flags_carry_every_setting_that_chooses_packages() -> None:
    settings = {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": "https://a.example/simple https://b.example/simple",
        "find-links": "/srv/wheels",
        "constraint": "/srv/caps.txt",
        "no-index": "true",
        "default-timeout": "180",  # not about which packages: left to uv's own default
    }
    flags = load_script().uv_flags(settings)
    assert flags[:2] == ["--index-strategy", "unsafe-best-match"]
    pairs = list(zip(flags[2::2], flags[3::2]))
    assert ("--index-url", "https://mirror.example/simple") in pairs
    assert ("--extra-index-url", "https://a.example/simple") in pairs
    assert ("--extra-index-url", "https://b.example/simple") in pairs
    assert ("--find-links", "/srv/wheels") in pairs
    assert ("--constraint", "/srv/caps.txt") in pairs
    assert flags[-1] == "--no-index"
    assert "180" not in flags


def build_wheel(tmp_path: Path, version: str) -> Path:
    """A one-module wheel, built by pip from source without an index (setuptools comes from the running venv)."""
    source = tmp_path / f"src-{version}"
    (source / "memoria_probe").mkdir(parents=True)
    (source / "memoria_probe" / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (source / "pyproject.toml").write_text(
        f'[project]\nname = "memoria-probe"\nversion = "{version}"\n[tool.setuptools]\npackages = ["memoria_probe"]\n'
    )
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    return wheels


def test_install_takes_the_constraint_and_find_links_from_pip_config(tmp_path: Path, pip_config: Path) -> None:
    # The trap this script exists for: without pip's find-links and constraint, uv would choose other wheels.
    build_wheel(tmp_path, "1.0")
    wheels = build_wheel(tmp_path, "2.0")
    caps = tmp_path / "caps.txt"
    caps.write_text("memoria-probe<2\n")
    pip_config.write_text(f"[global]\nno-index = true\nfind-links = {wheels}\nconstraint = {caps}\n")
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)  # the script asks this venv's pip for its settings
    python = target / "bin" / "python"
    (target / "bin" / "uv").symlink_to(Path(sys.executable).with_name("uv"))
    run = subprocess.run([python, SCRIPT, "memoria-probe"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "installing with pip" not in run.stderr  # uv did it
    version = subprocess.run([python, "-c", "import memoria_probe as m; print(m.VERSION)"], capture_output=True)
    assert version.stdout.decode().strip() == "1.0"
