"""Which onnxruntime provider serves: CUDA settings on a machine without a GPU, checked on real sessions.

onnxruntime's CPU build, asked for the CUDA provider, falls back to the CPU silently: exactly what happens on a GPU
machine whose CUDA libraries fail to load. These tests provoke that fallback for real.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from serving import runtime


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    """A one-node ONNX graph: y = x + x."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    path = tmp_path / "double.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture
def gpu_wheel_listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """onnxruntime claims CUDA (as the GPU wheel does whether or not its libraries load); preload is recorded."""
    preloaded: list[str] = []
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, runtime.CPU])
    monkeypatch.setattr(runtime.ort, "preload_dlls", lambda: preloaded.append("yes"), raising=False)
    return preloaded


def test_cpu_only_onnxruntime_serves_on_the_cpu_for_auto_and_cpu() -> None:
    assert runtime.providers_for("cpu") == [runtime.CPU]
    if runtime.CUDA not in runtime.ort.get_available_providers():
        assert runtime.providers_for("auto") == [runtime.CPU]
        with pytest.raises(RuntimeError, match="MEMORIA_DEVICE=cuda but this onnxruntime offers only"):
            runtime.providers_for("cuda")
    with pytest.raises(ValueError, match="MEMORIA_DEVICE must be one of"):
        runtime.providers_for("tpu")


def test_each_task_may_have_its_own_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_DEVICE", "cuda")
    monkeypatch.setenv("MEMORIA_TRANSLATION_DEVICE", "CPU ")
    assert runtime.device_from_env("translation") == "cpu"
    assert runtime.device_from_env("sentiment") == "cuda"
    assert runtime.device_from_env() == "cuda"
    monkeypatch.delenv("MEMORIA_DEVICE")
    assert runtime.device_from_env("sentiment") == "auto"


def test_cuda_is_asked_for_without_tf32_after_preloading_its_libraries(gpu_wheel_listed: list[str]) -> None:
    providers = runtime.providers_for("auto")
    assert providers == [(runtime.CUDA, {"use_tf32": "0"}), runtime.CPU]
    assert runtime.providers_for("cuda") == providers
    assert gpu_wheel_listed == ["yes", "yes"]


def test_a_silent_fallback_to_the_cpu_fails_under_cuda(graph: Path, gpu_wheel_listed: list[str]) -> None:
    # Given CUDA listed but not loadable (this machine's onnxruntime is the CPU build)
    providers = runtime.providers_for("cuda")
    # When a session is created for MEMORIA_DEVICE=cuda, Then it refuses to serve on the CPU
    with pytest.raises(RuntimeError, match="asked onnxruntime for CUDAExecutionProvider but the session runs on CPU"):
        runtime.create_session(graph, providers, device="cuda")


def test_a_silent_fallback_is_logged_under_auto(
    graph: Path, gpu_wheel_listed: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bentoml.memoria"):
        session = runtime.create_session(graph, runtime.providers_for("auto"), device="auto")
    assert session.get_providers()[0] == runtime.CPU
    (out,) = session.run(None, {"x": np.array([1.0, 2.0], dtype=np.float32)})
    assert out.tolist() == [2.0, 4.0]
    messages = [r.getMessage() for r in caplog.records]
    assert any("runs on CPUExecutionProvider; serving on CPUExecutionProvider" in m for m in messages), messages
    assert any(m == "loaded double.onnx on CPUExecutionProvider" for m in messages)


def test_threads_given_to_a_session_win_over_the_environment(graph: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_ORT_THREADS", "2")
    assert runtime.create_session(graph).get_session_options().intra_op_num_threads == 2
    # export's scoring runs one-thread sessions side by side (training/export/quantize.py, score_graphs)
    assert runtime.create_session(graph, threads=1).get_session_options().intra_op_num_threads == 1
