"""deploy/ cannot drift from the code: every manifest parses, and its port, probe paths, environment variable
names, drain time and metric names are checked against what BentoML and the serving package actually define.

The truth comes from the code, not from a list copied here: BentoML's own system routes and default port, the
`MEMORIA_*` names that appear in serving/'s source, MLflow's own client variables, `request_timeout()` of the
service, the metric names serving/ registers. The alert rules are run by Debian's `promtool` (`make
cluster-tools` installs it; this test fails without it, like the PostgreSQL tests)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
SERVING = REPO / "serving"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, over every file in deploy/k8s."""
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


def container() -> dict[str, Any]:
    (c,) = manifests()[("Deployment", "memoria")]["spec"]["template"]["spec"]["containers"]
    return c


def serving_env_names() -> set[str]:
    """Every MEMORIA_* name written in serving/'s source (a name read through a constant is written there too)."""
    names: set[str] = set()
    for path in SERVING.rglob("*.py"):
        names |= set(re.findall(r"\bMEMORIA_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return names


def bentoml_system_routes() -> dict[str, str]:
    """BentoML's own probe routes (name -> path), from the function that registers them on every service."""
    from bentoml._internal.server.base_app import BaseAppFactory

    endpoints = types.SimpleNamespace(livez=None, readyz=None, metrics=None)
    return {route.name: route.path for route in BaseAppFactory.get_system_routes(endpoints)}  # type: ignore[arg-type]


def test_every_file_in_deploy_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml")]
    assert len(files) >= 7
    for path in files:
        assert documents(path), f"{path} is empty"
    kinds = {kind for kind, _ in manifests()}
    assert {"Deployment", "Service", "Secret", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds


def test_port_and_probes_are_the_ones_bentoml_serves() -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    from serving.service import Memoria

    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": BentoMLContainer.http.port.get()}  # what `bentoml serve` in the image listens on
    routes = bentoml_system_routes()
    for probe, route in (("readinessProbe", "readyz"), ("livenessProbe", "livez"), ("startupProbe", "livez")):
        get = c[probe]["httpGet"]
        assert get["path"] == routes[route], probe
        assert get["port"] in ports, probe
    # readiness means "both models loaded": the service answers /readyz through its own check
    assert "__is_ready__" in vars(Memoria.inner)
    objects = manifests()
    assert objects[("Service", "memoria")]["spec"]["ports"][0]["targetPort"] == "http"
    (metrics_port,) = objects[("Service", "memoria-pods")]["spec"]["ports"]
    assert metrics_port["port"] == ports["http"]


def test_environment_names_are_ones_the_code_reads_and_secrets_come_from_secrets() -> None:
    import mlflow.environment_variables as mlflow_env

    env = {e["name"]: e for e in container()["env"]}
    read_by_serving = serving_env_names()
    for name, entry in env.items():
        if name.startswith("MEMORIA_"):
            assert name in read_by_serving, f"{name}: serving/ never reads it"
        else:
            assert name.startswith("MLFLOW_") and hasattr(mlflow_env, name), f"{name}: not an MLflow client setting"
        if re.search("TOKEN|PASSWORD|USERNAME", name):
            assert "valueFrom" in entry and "secretKeyRef" in entry["valueFrom"], f"{name} must come from a Secret"
    assert {"MEMORIA_API_TOKEN", "MEMORIA_ADMIN_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(
        env
    )
    objects = manifests()
    for entry in env.values():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = objects[("Secret", ref["name"])]
            assert ref["key"] in secret["stringData"], f"secret {ref['name']} has no key {ref['key']}"


def test_files_named_in_the_environment_lie_in_mounted_volumes() -> None:
    c = container()
    spec = manifests()[("Deployment", "memoria")]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    objects = manifests()
    for name in ("MEMORIA_SIGNING_PUBLIC_KEY", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MEMORIA_BUNDLE_CACHE"):
        value = next(e["value"] for e in c["env"] if e["name"] == name)
        mount = next((m for m in mounts if value.startswith(m + "/")), None)
        assert mount is not None, f"{name}={value} is outside every volume"
        source = volumes[mounts[mount]]
        if "configMap" in source:  # the file is a key of the ConfigMap
            assert Path(value).name in objects[("ConfigMap", source["configMap"]["name"])]["data"]


def test_termination_grace_outlasts_the_drain() -> None:
    """On SIGTERM the server finishes requests in flight, each bounded by the service's request timeout (then 504);
    the pod must not be killed before the preStop sleep plus that bound."""
    from serving.service import request_timeout

    c = container()
    spec = manifests()[("Deployment", "memoria")]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    saved = os.environ.pop("MEMORIA_REQUEST_TIMEOUT_S", None)
    try:
        if "MEMORIA_REQUEST_TIMEOUT_S" in env:
            os.environ["MEMORIA_REQUEST_TIMEOUT_S"] = env["MEMORIA_REQUEST_TIMEOUT_S"]
        drain = request_timeout()  # the service's own reading (its default when the manifest sets none)
    finally:
        os.environ.pop("MEMORIA_REQUEST_TIMEOUT_S", None)
        if saved is not None:
            os.environ["MEMORIA_REQUEST_TIMEOUT_S"] = saved
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > float(command[1]) + drain


def test_the_pod_runs_as_the_user_the_bento_image_creates() -> None:
    from bentoml._internal.container.generate import BENTO_UID_GID

    security = manifests()[("Deployment", "memoria")]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["fsGroup"] == BENTO_UID_GID  # owns the image's home and the volumes


def test_autoscaler_and_disruption_budget_point_at_the_deployment() -> None:
    objects = manifests()
    deployment = objects[("Deployment", "memoria")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = objects[("HorizontalPodAutoscaler", "memoria")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "memoria"}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = objects[("PodDisruptionBudget", "memoria")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["minAvailable"] < hpa["minReplicas"]  # a drain can always proceed
    for service in ("memoria", "memoria-pods"):
        assert objects[("Service", service)]["spec"]["selector"].items() <= labels.items()


def registered_metrics() -> dict[str, str]:
    """Metric names serving/ registers with prometheus_client -> their type."""
    found: dict[str, str] = {}
    for path in SERVING.rglob("*.py"):
        for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"(memoria_\w+)\"", path.read_text()):
            found[name] = kind
    return found


def test_alerts_name_only_metrics_the_service_exports() -> None:
    suffixes = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count")}
    exported = {name + s for name, kind in registered_metrics().items() for s in suffixes[kind]}
    assert {"memoria_model_reloads_total", "memoria_model_served"} <= exported
    # the fleet's rules and the service's own (monitoring/alerts.yml), both loaded by scrape.yaml
    rules = [
        rule
        for path in (DEPLOY / "prometheus" / "alerts.yaml", DEPLOY.parent / "monitoring" / "alerts.yml")
        for group in documents(path)[0]["groups"]
        for rule in group["rules"]
    ]
    used = {m for rule in rules for m in re.findall(r"\bmemoria_\w+", rule["expr"])}
    assert used and used <= exported, f"not exported by serving/: {used - exported}"
    source = "\n".join(p.read_text() for p in SERVING.rglob("*.py"))
    for value in {v for rule in rules for v in re.findall(r'(?:outcome|reason)="(\w+)"', rule["expr"])}:
        assert f'"{value}"' in source, f"label value {value} is never set by serving/"


def test_scrape_finds_the_pods_on_the_metrics_port() -> None:
    scrape = documents(DEPLOY / "prometheus" / "scrape.yaml")[0]
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == bentoml_system_routes()["metrics"]
    (sd,) = job["dns_sd_configs"]
    assert sd["port"] == container()["ports"][0]["containerPort"]
    assert sd["names"][0].split(".")[0] == "memoria-pods"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make cluster-tools` installs Debian's prometheus (as root)"
    return found


PROMTOOL_RUNS = [
    ["check", "config", "scrape.yaml"],
    ["check", "rules", "alerts.yaml"],
    ["test", "rules", "alerts.test.yaml"],
]


@pytest.mark.parametrize("args", PROMTOOL_RUNS)
def test_promtool_accepts_the_scrape_config_and_every_alert_fires_as_tested(args: list[str]) -> None:
    out = subprocess.run([promtool(), *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def requirement_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_gpu_bento_is_a_valid_build_config_with_serving_pins_and_onnxruntime_gpu() -> None:
    from bentoml._internal.bento.build_config import BentoBuildConfig

    gpu = DEPLOY / "gpu"
    with open(gpu / "bentofile.yaml") as f:
        config = BentoBuildConfig.from_yaml(f)
    main = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert config.service == main["service"]
    assert (REPO / config.python.requirements_txt) == gpu / "requirements.txt"
    expected = [
        line
        for line in requirement_lines(SERVING / "requirements.txt")
        for line in (
            requirement_lines(SERVING / "requirements-gpu.txt") if line.startswith("onnxruntime==") else [line]
        )
    ]
    assert requirement_lines(gpu / "requirements.txt") == expected
    assert {"name": "MEMORIA_DEVICE", "value": "cuda"} in [{"name": e.name, "value": e.value} for e in config.envs]


@pytest.mark.parametrize("bentofile", ["bentofile.yaml", "deploy/gpu/bentofile.yaml"])
def test_bentoml_build_writes_the_image_recipe_the_deployment_expects(bentofile: str, tmp_path: Path) -> None:
    """`bentoml build` (offline, seconds) writes the Dockerfile that `bentoml containerize` would build: it must
    listen on the Deployment's port, run as its user, and install exactly the Bento's pinned requirements; the
    GPU one must start from the CUDA image and have pip to install uv on it. (Building the image itself needs a
    container daemon, which the development machine has not.)"""
    from bentoml._internal.container.generate import BENTO_UID_GID

    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "build", "-f", bentofile, "."],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    config = yaml.safe_load((REPO / bentofile).read_text())
    (bento,) = (p for p in (tmp_path / "bentoml" / "bentos" / config["name"]).iterdir() if p.name != "latest")
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert f"EXPOSE {container()['ports'][0]['containerPort']}\n" in dockerfile
    assert f"ARG BENTO_USER_UID={BENTO_UID_GID}\n" in dockerfile and "\nUSER bentoml\n" in dockerfile
    installed = requirement_lines(bento / "env" / "python" / "requirements.txt")
    assert set(requirement_lines(REPO / config["python"]["requirements_txt"])) <= set(installed)
    if "docker" in config:  # the GPU variant
        assert f"FROM {config['docker']['base_image']} AS base-container" in dockerfile
        assert dockerfile.index("python3-pip") < dockerfile.index("pip install --no-cache-dir --require-hashes")
        assert f"uv venv --python {config['docker']['python_version']} " in dockerfile
        assert "onnxruntime-gpu==" in "\n".join(installed)
        assert not any(line.startswith("onnxruntime==") for line in installed)
