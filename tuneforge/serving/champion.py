"""What is served: the registry's champion (and canary), loaded from its merged export, and followed as it changes.

The follower checks the ``champion`` and ``canary`` aliases every ``poll_seconds``. When a promotion or ``tuneforge
rollback`` moves the champion, the new version is loaded beside the old one (in the follower's thread, so requests
keep being answered) and swapped in between two batches. A canary gets an engine of its own. A version that cannot be
loaded is logged and the current one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from tuneforge.modeling.device import pick_device, use_bf16
from tuneforge.modeling.generate import eos_token_ids
from tuneforge.modeling.records import load_training_result
from tuneforge.registry import ChampionRegistry, RegisteredModel
from tuneforge.serving.engine import BatchEngine, ServedModel
from tuneforge.serving.router import Router

log = logging.getLogger("tuneforge.serving")


class NothingToServe(RuntimeError):
    """There is no champion, or its export is gone; the message says what to run."""


def load_champion(champions: ChampionRegistry, precision: str = "auto") -> ServedModel:
    champion = champions.champion()
    if champion is None:
        raise NothingToServe(f"the registry has no champion for {champions.model_name} yet: run `make demo` or "
                             "materialize promoted_model, then serve")
    return load_version(champions, champion, precision)


def load_version(champions: ChampionRegistry, registered: RegisteredModel, precision: str = "auto") -> ServedModel:
    """The registered version's merged export on this machine's device, its weights in the precision served: on a
    CPU, bf16 weights decode faster than fp32 weights under bf16 autocast, which casts every weight at every step
    (measured with bench/serving.py)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    export = Path(registered.export_dir)
    if not (export / "config.json").is_file():
        raise NothingToServe(f"{champions.model_name} version {registered.version}'s merged export {export} is "
                             "missing: materialize merged_export for it, or roll back to a version that has one")
    device = pick_device()
    bf16 = use_bf16(device, precision)
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.bfloat16 if bf16 else torch.float32)
    model.to(device).eval()
    adapter = champions.local_adapter(registered)
    trained = load_training_result(adapter) if adapter is not None else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return ServedModel(
        model=model, tokenizer=tokenizer, name=champions.model_name, version=registered.version,
        fingerprint=Path(registered.adapter_dir).name or registered.version,
        instructions=dict(trained.instructions) if trained is not None else {},
        eos=frozenset(eos_token_ids(model, tokenizer)), pad_id=pad_id, device=device, bf16=bf16,
        context=getattr(AutoConfig.from_pretrained(export), "max_position_embeddings", None), directory=export,
    )


class ChampionFollower:
    """Polls the ``champion`` and ``canary`` aliases. A new champion is swapped into the champion's engine; a new
    canary gets an engine of its own (or replaces the canary in it), and a canary gone is drained and stopped."""

    def __init__(self, open_registry: Callable[[], ChampionRegistry], router: Router,
                 make_engine: Callable[[ServedModel], BatchEngine], poll_seconds: float, precision: str = "auto",
                 on_change: Callable[[], None] = lambda: None) -> None:
        self._open, self.router, self._make_engine = open_registry, router, make_engine
        self.poll_seconds, self.precision, self.on_change = poll_seconds, precision, on_change
        self.current = router.champion.served.version
        self.canary: str | None = router.canary.served.version if router.canary else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuneforge-champion-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> bool:
        """Follow the aliases once; True when what is served changed."""
        champions = self._open()
        changed = self._follow_champion(champions)
        changed = self._follow_canary(champions) or changed
        if changed:
            self.on_change()
        return changed

    def _follow_champion(self, champions: ChampionRegistry) -> bool:
        champion = champions.champion()
        if champion is None:
            if self.router.withdrawn is not None or self.current is None:
                return False
            log.warning("the champion alias was removed (version %s withdrawn): answering 503 until a champion is "
                        "promoted", self.current)
            self.router.withdrawn, self.current = self.current, None
            return True
        if champion.version == self.current:
            return False
        log.info("champion moved from version %s to %s: loading it", self.current, champion.version)
        served = load_version(champions, champion, self.precision)
        self.router.champion.swap(served)
        self.router.withdrawn = None
        log.info("now serving version %s (adapter %s)", served.version, served.fingerprint)
        self.current = champion.version
        return True

    def _follow_canary(self, champions: ChampionRegistry) -> bool:
        canary = champions.canary()
        wanted = canary.version if canary is not None else None
        if wanted == self.canary:
            return False
        retired = self.router.canary
        if canary is None:
            self.router.canary = None
            log.info("canary version %s stopped: every request goes to the champion", self.canary)
        else:
            served = load_version(champions, canary, self.precision)
            if retired is None:
                self.router.canary = self._make_engine(served)
            else:
                retired.swap(served)
                retired = None
            log.info("canary version %s answers %.0f%% of requests", served.version, 100 * self.router.canary_share)
        if retired is not None:
            retired.stop()  # answers what it holds, then ends
        self.canary = wanted
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception as error:  # noqa: BLE001 - keep serving the current versions; try again next poll
                log.warning("could not follow the registry (still serving version %s): %s", self.current, error)
