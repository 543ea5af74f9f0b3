"""API keys: from ``TUNEFORGE_API_KEYS`` (comma-separated) and ``serving.api_keys_file`` (one per line, ``#``
comments). Keys are compared in constant time and never logged; only how many there are is."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

KEYS_ENV_VAR = "TUNEFORGE_API_KEYS"


class ServingSetupError(ValueError):
    """The server cannot start as configured; the message names the setting."""


def load_keys(keys_file: str = "", environ: dict[str, str] | None = None) -> frozenset[str]:
    environ = os.environ if environ is None else environ
    keys = {key.strip() for key in environ.get(KEYS_ENV_VAR, "").split(",") if key.strip()}
    if keys_file:
        path = Path(keys_file).expanduser()
        if not path.is_file():
            raise ServingSetupError(f"serving.api_keys_file: {path} does not exist")
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.add(line)
    return frozenset(keys)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve beyond this machine


def require_keys_beyond_loopback(host: str, keys: frozenset[str]) -> None:
    if not keys and not is_loopback(host):
        raise ServingSetupError(
            f"serving.host: {host} is reachable beyond this machine, so API keys are required: set {KEYS_ENV_VAR} "
            "or serving.api_keys_file (or bind to 127.0.0.1)")


def authorized(header: str | None, keys: frozenset[str]) -> bool:
    """``Authorization: Bearer <key>`` names one of ``keys`` (always true when there are none)."""
    if not keys:
        return True
    if not header or not header.lower().startswith("bearer "):
        return False
    given = header[7:].strip().encode()
    return any(hmac.compare_digest(given, key.encode()) for key in keys)
