"""Importing a library without one of its optional dependencies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_module(name: str) -> Iterator[None]:
    """Within the block, ``import name`` raises ImportError, as if it were not installed, so a library that imports
    it only optionally skips it; afterwards it imports normally. A module already imported stays available."""
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment] - None in sys.modules is Python's "not importable" mark
    try:
        yield
    finally:
        if sys.modules.get(name, "") is None:
            del sys.modules[name]
