"""Precision: ``auto`` decided once per machine, ``TUNEFORGE_PRECISION`` over every config, and any number of
trainings in one process, each in its own precision."""

import json

import pytest
import torch
from training_support import training_job

from resources import Compute
from tuneforge.modeling import device as device_module
from tuneforge.modeling.device import cache_path, resolve_precision, training_precision
from tuneforge.modeling.records import load_training_result
from tuneforge.modeling.train import fresh_accelerator, run_training

CPU = torch.device("cpu")


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A CPU that advertises bf16, a private cache directory, and a matmul timer that counts its calls."""
    monkeypatch.delenv("TUNEFORGE_PRECISION", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: True)
    timings = {"fp32": 100e9, "bf16": 250e9, "calls": 0}

    def measure(dtypes):
        timings["calls"] += 1
        return [timings["fp32"], timings["bf16"]]

    monkeypatch.setattr(device_module, "matmul_flops_per_second", measure)
    device_module.cpu_bf16_is_faster.cache_clear()
    yield timings
    device_module.cpu_bf16_is_faster.cache_clear()


def test_auto_is_measured_once_per_machine_and_remembered_by_every_process(machine):
    assert resolve_precision("auto", CPU) == "bf16"
    assert machine["calls"] == 1
    recorded = json.loads(cache_path().read_text())
    (verdict,) = recorded.values()
    assert verdict["bf16"] is True and verdict["bf16_gflops"] == 250.0 and verdict["fp32_gflops"] == 100.0

    device_module.cpu_bf16_is_faster.cache_clear()  # as a new process would start
    machine["bf16"] = 1e9  # a noisy second measurement must not flip the choice
    assert resolve_precision("auto", CPU) == "bf16" and machine["calls"] == 1


def test_auto_keeps_fp32_where_bf16_is_not_clearly_faster_or_not_native(machine, monkeypatch):
    machine["bf16"] = 120e9  # 1.2x: within the noise margin
    assert resolve_precision("auto", CPU) == "fp32"
    device_module.cpu_bf16_is_faster.cache_clear()
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"


def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch):
    monkeypatch.delenv("TUNEFORGE_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"


def test_the_environment_overrides_every_configured_training_precision(machine, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_PRECISION", "fp32")
    assert training_precision("auto", CPU) == "fp32" and training_precision("bf16", CPU) == "fp32"
    monkeypatch.setenv("TUNEFORGE_PRECISION", "bf16")
    assert training_precision("fp32", CPU) == "bf16"
    assert machine["calls"] == 0, "a forced precision needs no measurement"
    monkeypatch.setenv("TUNEFORGE_PRECISION", "fp16")
    with pytest.raises(ValueError, match=r"TUNEFORGE_PRECISION='fp16' is not a precision; use one of: auto, bf16"):
        training_precision("auto", CPU)


def test_a_pod_resolves_auto_by_what_it_requests(monkeypatch):
    monkeypatch.delenv("TUNEFORGE_PRECISION", raising=False)
    pod = {"mode": "kubernetes", "image": "tuneforge:1", "workspace_claim": "workspace"}
    assert Compute(**pod, gpus=1).training_precision("auto") == "bf16"
    assert Compute(**pod, gpus=0).training_precision("auto") == "fp32"
    assert Compute(**pod, gpus=1).training_precision("fp32") == "fp32"
    monkeypatch.setenv("TUNEFORGE_PRECISION", "fp32")
    assert Compute(**pod, gpus=1).training_precision("auto") == "fp32"


@pytest.mark.parametrize("order", [("fp32", "bf16", "fp32"), ("bf16", "fp32", "bf16")])
def test_trainings_in_one_process_each_run_in_their_own_precision(tmp_path, smoke_base_models, monkeypatch, order):
    monkeypatch.delenv("TUNEFORGE_PRECISION", raising=False)
    for index, precision in enumerate(order):
        job = training_job(tmp_path / str(index), smoke_base_models, precision=precision, max_steps=3,
                           checkpoint_every=0)
        result = run_training(job)
        assert result.precision == precision and result.config["precision"] == precision
        assert load_training_result(tmp_path / str(index) / "adapter").precision == precision
        assert result.validation_loss < result.validation_loss_before


def test_state_another_caller_left_with_a_mixed_precision_is_reset():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    Accelerator(cpu=True, mixed_precision="bf16")  # e.g. a user's own script in the same process, first
    accelerator = fresh_accelerator(CPU)
    assert accelerator.mixed_precision == "no" and AcceleratorState().mixed_precision == "no"
