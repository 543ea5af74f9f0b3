"""A real ``tuneforge serve`` process for tests, and registry versions for it to serve."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from tuneforge.modeling.records import TrainingResult, save_training_result
from tuneforge.registry import Candidate

TUNEFORGE = Path(sys.executable).with_name("tuneforge")
MODEL = "tuneforge-summarizer"
INSTRUCTION = "Summarize the paper in one sentence."
KEY = "tf-test-key-5c1e8a"
START_TIMEOUT = 120


def candidate(root: Path, name: str, seed: int | None) -> Candidate:
    """An adapter directory holding the training manifest (its instructions), and a merged export: the smoke base
    model, with its weights perturbed when ``seed`` is given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = next((root / "models" / "base").iterdir())
    adapter = root / "models" / "adapters" / name
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    save_training_result(TrainingResult(adapter_dir=str(adapter), steps=1,
                                        instructions={"abstract": INSTRUCTION}), adapter)
    export = root / "models" / "exports" / name
    if seed is None:
        shutil.copytree(base, export, ignore=shutil.ignore_patterns("tuneforge_model.json"))
    else:
        model = AutoModelForCausalLM.from_pretrained(base)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.5)
        model.save_pretrained(export)
        AutoTokenizer.from_pretrained(base).save_pretrained(export)
    return Candidate(adapter, export, params={"fingerprint": name}, metrics={"candidate_rougeL": 30.0},
                     tags={"base_sha256": "abc", "dataset_version": "d41d8cd9.dir", "base_model": "tiny"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, root: Path, env: dict[str, str], *flags: str, extra_env: dict[str, str] | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "TUNEFORGE_API_KEYS")}
        self.log = root / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [str(TUNEFORGE), "serve", "--port", str(self.port), "--poll-seconds", "0.3", *flags],
            cwd=root, env={**environ, **env, **(extra_env or {})}, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the server did not become ready:\n{self.output()}")

    def client(self, key: str = "none", **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **options)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


