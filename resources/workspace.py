"""The workspace resource: one place that decides the root directory and the settings (profile and tuneforge.yaml)
for every asset."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from tuneforge.layout import Layout
from tuneforge.profiles import Profile
from tuneforge.project import Project, load_project

ROOT_ENV_VAR = "TUNEFORGE_ROOT"


def resolve_root(root: str = "") -> Path:
    return Path(root or os.environ.get(ROOT_ENV_VAR) or Path.cwd()).resolve()


class Workspace(dg.ConfigurableResource):
    root: str = Field("", description=f"Workspace directory; empty means ${ROOT_ENV_VAR} or the current directory.")
    profile: str = Field(
        "", description="Profile name; empty means $TUNEFORGE_PROFILE, else tuneforge.yaml's, else 'demo'."
    )

    @property
    def layout(self) -> Layout:
        return Layout(resolve_root(self.root))

    def project(self) -> Project:
        """The settings of tuneforge.yaml over the profile's (see tuneforge/project.py)."""
        return load_project(self.layout.root, self.profile or None)

    def load_profile(self) -> Profile:
        return self.project().profile
