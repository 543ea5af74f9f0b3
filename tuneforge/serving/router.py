"""Which engine answers a request: the champion's, or, while the registry has a canary, the canary's for
``serving.canary_share`` of requests. The choice hashes the request id, so it is uniform over requests and the same
id always gets the same model."""

from __future__ import annotations

import hashlib

from tuneforge.serving.engine import BatchEngine


def share_of(request_id: str) -> float:
    """A number in [0, 1) fixed by ``request_id``."""
    return int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big") / 2 ** 64


class Router:
    def __init__(self, champion: BatchEngine, canary_share: float) -> None:
        self.champion = champion
        self.canary: BatchEngine | None = None
        self.canary_share = canary_share
        # The version whose champion alias was taken away without a successor (an erasure demoted it): it must not
        # answer again, so completions get a 503 until a champion is promoted.
        self.withdrawn: str | None = None

    def engine_for(self, request_id: str) -> BatchEngine:
        canary = self.canary
        if canary is not None and share_of(request_id) < self.canary_share:
            return canary
        return self.champion

    def depth(self) -> int:
        canary = self.canary
        return self.champion.depth() + (canary.depth() if canary is not None else 0)
