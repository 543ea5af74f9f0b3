"""Patterns that must not survive redaction: the validation suites scan cleaned text for them, a net independent of
the detectors. Each is narrower than what its detector removes, so clean output never trips it."""

from __future__ import annotations

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

RESIDUAL_PATTERNS: dict[str, str] = {
    "CREDENTIALS": r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)",
    "EMAIL": r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|edu|gov|io|de|uk|fr)\b",
    "IP": rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])",
}
